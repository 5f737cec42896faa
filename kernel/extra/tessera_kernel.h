/*
 * Force-included (gcc -include) before every kernel source by Tessera's build.
 * Supplies what seL4 5.0.0 leaves undefined on x86_64 for the kernel log
 * buffer (see benchmark_log.c). Macros only: they expand where they are used,
 * after the kernel's own headers have declared ptrFromPAddr and ksUserLogBuffer.
 */
#ifndef TESSERA_KERNEL_H
#define TESSERA_KERNEL_H

/* The log buffer is the user's large-page frame, seen through the kernel window. */
#define KS_LOG_PPTR ((word_t) ptrFromPAddr(ksUserLogBuffer))
/* As on ia32 and ARM: 1 MiB of log entries. */
#define seL4_LogBufferSize (1ul << 20)

#endif /* TESSERA_KERNEL_H */
