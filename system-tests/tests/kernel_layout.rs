//! The kernel the tests boot keeps its stack 4 KiB aligned (seL4 5.0.0's nested
//! interrupt path relies on it; see kernel/extra/stack.c).

#[test]
fn kernel_stack_is_page_aligned() {
    let (kernel32, _) = system_tests::image();
    let elf = kernel32.with_file_name("kernel.elf");
    xtask::kernel::check_stack_alignment(&elf).expect("kernel_stack_alloc 4 KiB aligned");
}
