/*
 * Tessera's supplement to seL4 5.0.0 on x86_64 (concatenated into the kernel's
 * single compilation unit by tessera.mk).
 *
 * Kernel-entry tracking (BENCHMARK_TRACK_KERNEL_ENTRIES) records every kernel
 * entry into a log buffer that user level provides as a large-page frame
 * (seL4_BenchmarkSetLogBuffer). 5.0.0 implements the buffer for ARM and ia32
 * only. On x86_64 the kernel window already maps all of physical memory, so the
 * buffer needs no mapping of its own: remember the frame's physical address,
 * and tessera_kernel.h points KS_LOG_PPTR at the frame through the window.
 */
#include <config.h>

#ifdef CONFIG_BENCHMARK_USE_KERNEL_LOG_BUFFER
#include <types.h>
#include <api/failures.h>
#include <kernel/cspace.h>
#include <kernel/vspace.h>
#include <model/statedata.h>
#include <machine/io.h>

exception_t benchmark_arch_map_logBuffer(word_t frame_cptr)
{
    lookupCapAndSlot_ret_t lu_ret = lookupCapAndSlot(NODE_STATE(ksCurThread), frame_cptr);

    if (unlikely(lu_ret.status != EXCEPTION_NONE)) {
        userError("Invalid cap #%lu.", frame_cptr);
        current_fault = seL4_Fault_CapFault_new(frame_cptr, false);
        return EXCEPTION_SYSCALL_ERROR;
    }
    if (cap_get_capType(lu_ret.cap) != cap_frame_cap) {
        userError("Invalid cap. Log buffer should be of a frame cap");
        current_fault = seL4_Fault_CapFault_new(frame_cptr, false);
        return EXCEPTION_SYSCALL_ERROR;
    }
    if (cap_frame_cap_get_capFSize(lu_ret.cap) != X86_LargePage) {
        userError("Invalid size for log buffer: a 2 MiB large page is expected");
        current_fault = seL4_Fault_CapFault_new(frame_cptr, false);
        return EXCEPTION_SYSCALL_ERROR;
    }
    ksUserLogBuffer = pptr_to_paddr((void *) cap_frame_cap_get_capFBasePtr(lu_ret.cap));
    return EXCEPTION_NONE;
}
#endif /* CONFIG_BENCHMARK_USE_KERNEL_LOG_BUFFER */
