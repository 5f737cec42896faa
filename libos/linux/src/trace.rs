//! strace-style lines: `openat(AT_FDCWD, "/etc/ld.so.cache", 0x80000) = -1 ENOENT (No
//! such file or directory)`.

use crate::errno::{Errno, SysResult};
use crate::sysno;
use alloc::format;
use alloc::string::String;
use core::fmt::Write;

/// Which argument of `number` is a path (shown as a string), if any.
pub fn path_argument(number: u64) -> Option<usize> {
    match number {
        sysno::OPEN
        | sysno::STAT
        | sysno::LSTAT
        | sysno::ACCESS
        | sysno::UNLINK
        | sysno::READLINK
        | sysno::CHDIR
        | sysno::EXECVE => Some(0),
        sysno::OPENAT
        | sysno::NEWFSTATAT
        | sysno::UNLINKAT
        | sysno::READLINKAT
        | sysno::FACCESSAT
        | sysno::FACCESSAT2
        | sysno::STATX => Some(1),
        _ => None,
    }
}

/// Formats one call: its name (or `syscall_N`), its arguments (a path argument as the
/// quoted string `path` gives, `AT_FDCWD` for -100 as a directory descriptor, small
/// numbers in decimal, others in hex) and its result.
pub fn line(number: u64, args: &[u64; 6], path: Option<&str>, result: &SysResult) -> String {
    let mut out = String::new();
    match sysno::name(number) {
        Some(name) => out.push_str(name),
        None => {
            let _ = write!(out, "syscall_{number}");
        }
    }
    out.push('(');
    let path_at = path_argument(number);
    for (i, &arg) in args.iter().take(sysno::arg_count(number)).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if path_at == Some(i) {
            match path {
                Some(p) => {
                    let _ = write!(out, "{p:?}");
                }
                None => {
                    let _ = write!(out, "{arg:#x}");
                }
            }
        } else if path_at == Some(1) && i == 0 && arg as i32 == -100 {
            out.push_str("AT_FDCWD");
        } else if arg < 4096 {
            let _ = write!(out, "{arg}");
        } else if (arg as i64) < 0 && (arg as i64) > -4096 {
            let _ = write!(out, "{}", arg as i64);
        } else {
            let _ = write!(out, "{arg:#x}");
        }
    }
    out.push_str(") = ");
    match result {
        Ok(v) if *v >= 4096 => {
            let _ = write!(out, "{v:#x}");
        }
        Ok(v) => {
            let _ = write!(out, "{v}");
        }
        Err(e) => out.push_str(&error(*e)),
    }
    out
}

/// `-1 ENOENT (No such file or directory)`.
pub fn error(e: Errno) -> String {
    match e.name() {
        Some(name) => format!("-1 {name} ({})", e.text()),
        None => format!("-1 errno {}", e.0),
    }
}
