/*
 * Tessera's supplement to seL4 5.0.0 on x86_64: with ENABLE_BENCHMARKS the
 * kernel calls arch_clean_invalidate_caches() (the benchmark "reset log"
 * path), which 5.0.0 defines for ARM and ia32 but not for x86_64.
 * Write back and invalidate every cache level.
 */
void arch_clean_invalidate_caches(void);

void arch_clean_invalidate_caches(void)
{
    __asm__ volatile("wbinvd" ::: "memory");
}
