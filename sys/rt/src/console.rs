//! Console output over the kernel's debug serial port (`seL4_DebugPutChar`).

use core::fmt::{self, Write};

/// A writer that sends every byte to the kernel's serial console.
pub struct DebugConsole;

impl Write for DebugConsole {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            sel4::syscall::debug_put_char(b);
        }
        Ok(())
    }
}

/// A line buffer so one `println!` leaves the component as one burst of output.
struct LineBuffer {
    buf: [u8; 256],
    len: usize,
}

impl LineBuffer {
    fn flush(&mut self) {
        for &b in &self.buf[..self.len] {
            sel4::syscall::debug_put_char(b);
        }
        self.len = 0;
    }
}

impl Write for LineBuffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

/// Writes formatted text to the console; used by [`print!`](crate::print).
pub fn print(args: fmt::Arguments) {
    let mut line = LineBuffer {
        buf: [0; 256],
        len: 0,
    };
    let _ = line.write_fmt(args);
    line.flush();
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
