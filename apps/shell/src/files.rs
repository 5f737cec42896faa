//! The file commands (`ls`, `cat`, `write`, `rm`, `mkdir`, `df`) over the library OS's file
//! API, as the [`Backend`] gives it; every failure is one `error:` line.

use crate::backend::{Backend, Failure, FileApi};
use crate::exec::{error, Outcome, Table};
use alloc::format;
use alloc::string::{String, ToString};
use libos_core::fs::Error;

/// The most bytes `cat` prints of one file (a serial console is slow).
pub const CAT_LIMIT: usize = 16 * 1024;

/// Runs `body` with the file API, or says there is no file service. When the service
/// answers that it restarted, the error is printed and the backend told
/// ([`Backend::files_lost`]), so the next command attaches again.
fn with_files(
    what: &str,
    backend: &mut impl Backend,
    body: impl FnOnce(&mut FileApi) -> Result<String, Error>,
) -> Outcome {
    let result = match backend.files() {
        Err(failure) => Err(failure),
        Ok(files) => body(files).map_err(Failure::Files),
    };
    let text = match result {
        Ok(text) => text,
        Err(failure) => {
            if failure == Failure::Files(Error::ServerRestarted) {
                backend.files_lost();
            }
            format!("{}\n", error(what, failure))
        }
    };
    Outcome {
        text,
        halted: false,
    }
}

/// `ls [DIR]`: a table of size and name; directories end in `/`.
pub fn ls(dir: Option<&str>, backend: &mut impl Backend) -> Outcome {
    let dir = dir.unwrap_or("/");
    with_files(&format!("ls {dir}"), backend, |files| {
        let entries = files.readdir(dir)?;
        if entries.is_empty() {
            return Ok(format!("{dir}: empty\n"));
        }
        let mut t = Table::new(&["SIZE", "NAME"]);
        for e in entries {
            let (size, slash) = if e.metadata.is_directory {
                ("-".to_string(), "/")
            } else {
                (e.metadata.size.to_string(), "")
            };
            t.row(alloc::vec![size, format!("{}{slash}", e.name)]);
        }
        Ok(t.render())
    })
}

/// `cat FILE`: the file as text (invalid UTF-8 shown as U+FFFD), ending with a line end;
/// at most [`CAT_LIMIT`] bytes, then a line saying how much was left out.
pub fn cat(file: &str, backend: &mut impl Backend) -> Outcome {
    with_files(&format!("cat {file}"), backend, |files| {
        let fd = files.open(file, libos_core::fs::OpenFlags::READ)?;
        let mut buffer = alloc::vec![0u8; CAT_LIMIT];
        let read = files.read(fd, &mut buffer);
        let size = files.fstat(fd).map(|m| m.size);
        let _ = files.close(fd);
        let n = read?;
        let mut text = String::from_utf8_lossy(&buffer[..n]).into_owned();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        let size = size? as usize;
        if size > n {
            text.push_str(&format!("({} more bytes not shown)\n", size - n));
        }
        Ok(text)
    })
}

/// `write FILE TEXT`: replaces the file with `text` and a line end, synced.
pub fn write(file: &str, text: &str, backend: &mut impl Backend) -> Outcome {
    with_files(&format!("write {file}"), backend, |files| {
        let mut data = String::from(text);
        data.push('\n');
        files.write_file(file, data.as_bytes())?;
        Ok(format!("wrote {} bytes to {file}\n", data.len()))
    })
}

/// `rm PATH`: removes a file, or an empty directory.
pub fn rm(path: &str, backend: &mut impl Backend) -> Outcome {
    with_files(&format!("rm {path}"), backend, |files| {
        match files.unlink(path) {
            Err(Error::IsDirectory) => files.rmdir(path)?,
            other => other?,
        }
        Ok(format!("removed {path}\n"))
    })
}

/// `mkdir DIR`.
pub fn mkdir(dir: &str, backend: &mut impl Backend) -> Outcome {
    with_files(&format!("mkdir {dir}"), backend, |files| {
        files.mkdir(dir)?;
        Ok(format!("created {dir}\n"))
    })
}

/// `df`: size, used, free in KiB, and the share used.
pub fn df(backend: &mut impl Backend) -> Outcome {
    with_files("df", backend, |files| {
        let u = files.usage()?;
        let kib = |blocks: u64| blocks.saturating_mul(u.block_bytes) / 1024;
        let used = u.total_blocks.saturating_sub(u.free_blocks);
        let percent = (used * 100).checked_div(u.total_blocks).unwrap_or(0);
        let mut t = Table::new(&["SIZE-KIB", "USED-KIB", "FREE-KIB", "USE%"]);
        t.row(alloc::vec![
            kib(u.total_blocks).to_string(),
            kib(used).to_string(),
            kib(u.free_blocks).to_string(),
            format!("{percent}%"),
        ]);
        Ok(t.render())
    })
}
