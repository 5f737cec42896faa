/*
 * Tessera's supplement to seL4 5.0.0 on x86_64 (concatenated into the kernel's
 * single compilation unit by tessera.mk).
 *
 * With ENABLE_BENCHMARKS the kernel calls arch_clean_invalidate_caches() (the
 * BenchmarkFlushCaches syscall), which 5.0.0 defines for ARM and ia32 but not
 * for x86_64: write back and invalidate every cache level.
 */
#include <config.h>

#ifdef CONFIG_ENABLE_BENCHMARKS
void arch_clean_invalidate_caches(void);

void arch_clean_invalidate_caches(void)
{
    __asm__ volatile("wbinvd" ::: "memory");
}
#endif /* CONFIG_ENABLE_BENCHMARKS */
