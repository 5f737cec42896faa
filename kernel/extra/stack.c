/*
 * Tessera's supplement to seL4 5.0.0 on x86_64 (concatenated into the kernel's
 * single compilation unit by tessera.mk, after the kernel's own sources).
 *
 * When the kernel polls for an interrupt (receivePendingIRQ: sti; nop; cli) and
 * one arrives, restore_user_context handles it before leaving the kernel: it
 * "resets" the stack by rounding the stack pointer down to a multiple of
 * 2^KERNEL_STACK_BITS and adding 2^KERNEL_STACK_BITS, then calls
 * c_handle_interrupt. That lands on the top of the kernel stack only if
 * kernel_stack_alloc starts on such a boundary, but 5.0.0 aligns it to
 * KERNEL_STACK_ALIGNMENT, which is 16 bytes on x86_64. Otherwise the rounded
 * pointer is past the end of the stack, in the variables the linker placed
 * after it (in our builds the IDT, x86KSidt), and the interrupt path's frames
 * overwrite interrupt gates: a later interrupt on such a vector raises #GP while
 * the CPU reads its gate (see docs/NETWORK.md, "Known limits").
 *
 * GCC keeps the largest alignment any declaration of a variable asks for, so
 * this declaration, read after the kernel's definition in the same unit, puts
 * the stack on a 2^KERNEL_STACK_BITS boundary.
 */
#include <config.h>
#include <util.h>

#ifdef CONFIG_ARCH_X86_64
extern char kernel_stack_alloc[CONFIG_MAX_NUM_NODES][BIT(CONFIG_KERNEL_STACK_BITS)]
ALIGN(BIT(CONFIG_KERNEL_STACK_BITS));
#endif /* CONFIG_ARCH_X86_64 */
