//! The kernel's share of the CPU, by entry kind (`kernel_log_ms` arg; kernel variant
//! `bench=entries`): a task that opens a window on the kernel's entry log, sleeps
//! `kernel_log_ms`, closes it and prints the summary as one `KERNEL-SHARE ...` line
//! (format in `kernel-log`), over and over. At high load the log (43690 entries) may
//! fill before the window ends: the line then says `full=1` and its window is the part
//! that was logged. Printing happens between windows, so it is not counted.

use libos_core::Runtime;
use libos_sel4::kernel_log::KernelLog;
use rt::println;
use sel4::CPtr;
use vspace::{Pool, VSpace};

/// Starts the reporting task when `window_ms` (the `kernel_log_ms` arg) is given: sets
/// up the log buffer from `pool` and `vspace`, then [`spawn`]s. Says on the console why
/// not when the value is bad or the kernel has no entry log; without the arg does nothing.
pub fn start<F: FnMut(u8) -> Option<CPtr>>(
    window_ms: Option<&str>,
    runtime: &Runtime,
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
) {
    let Some(text) = window_ms else { return };
    let ms = match text.parse::<u64>() {
        Ok(ms) if ms > 0 => ms,
        _ => {
            println!("iperf: kernel_log_ms = {text:?} is not a positive number of milliseconds: no kernel share");
            return;
        }
    };
    match KernelLog::new(pool, vspace) {
        Ok(log) => {
            println!("iperf: kernel share every {ms} ms");
            spawn(runtime, log, ms);
        }
        Err(e) => println!("iperf: no kernel share ({e:?}; needs the bench=entries kernel)"),
    }
}

/// Spawns the task that prints a `KERNEL-SHARE` line for every `window_ms` window.
pub fn spawn(runtime: &Runtime, log: KernelLog, window_ms: u64) {
    let rt = runtime.clone();
    runtime.spawn(async move {
        loop {
            if let Err(e) = log.reset() {
                println!("iperf: kernel share stopped: {e:?}");
                return;
            }
            rt.sleep(window_ms * 1_000_000).await;
            match log.finish() {
                Ok(summary) => println!("{summary}"),
                Err(e) => {
                    println!("iperf: kernel share stopped: {e:?}");
                    return;
                }
            }
        }
    });
}
