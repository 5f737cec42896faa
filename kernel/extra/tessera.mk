# Tessera's additions to seL4's standalone build: read after the kernel's own
# Makefile (`make -f <seL4>/Makefile -f tessera.mk`). Our C supplements become
# extra prerequisites of kernel_all.c, so the kernel's cpp_gen step concatenates
# them into its single compilation unit after the kernel's own sources.
# TESSERA_EXTRA_SOURCES (absolute paths) is set by xtask.
kernel_all.c: $(TESSERA_EXTRA_SOURCES)
