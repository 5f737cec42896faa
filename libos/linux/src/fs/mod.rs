//! Files a Linux program sees: a read-only tree (the boot image's), `/tmp` in memory,
//! `/dev/null`, `/dev/zero`, `/dev/urandom`, `/proc/self/exe`, and the descriptor table.
//!
//! Paths are absolute or relative to `/` (the only working directory); `.`, `..` and
//! symbolic links (at most [`MAX_LINKS`] per lookup) are resolved here. Writes go to
//! `/tmp` only, within a byte budget; the tree answers `EROFS`.

mod object;
mod tree;

pub use object::{
    flags, mode, Device, Entry, FileBytes, Object, Open, Source, Status, Stream, DT_CHR, DT_DIR,
    DT_LNK, DT_REG,
};
pub use tree::{Node, Tree};

use crate::errno::Errno;
use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;
use object::status;
use tree::{inode, join, normal, parent};

/// Most symbolic links followed in one lookup (Linux's `MAXSYMLINKS`).
pub const MAX_LINKS: usize = 40;
/// Longest path accepted, with its NUL (`PATH_MAX`).
pub const PATH_MAX: usize = 4096;
/// Most descriptors open at once (`RLIMIT_NOFILE`).
pub const MAX_FDS: usize = 1024;

/// A descriptor slot.
#[derive(Debug, Clone)]
struct Slot {
    open: Rc<RefCell<Open>>,
    cloexec: bool,
}

/// The file system view and the descriptor table of one program.
#[derive(Debug)]
pub struct Files {
    tree: Tree,
    tmp: BTreeMap<String, Rc<RefCell<Vec<u8>>>>,
    tmp_budget: usize,
    exe: String,
    fds: Vec<Option<Slot>>,
}

impl Files {
    /// The files of a program `exe` (its path in `tree`, what `/proc/self/exe` names),
    /// with `/tmp` limited to `tmp_budget` bytes; descriptors 0, 1 and 2 are standard
    /// input (at its end), standard output and standard error (the console).
    pub fn new(tree: Tree, exe: &str, tmp_budget: usize) -> Files {
        let std = |object, flags| {
            Some(Slot {
                open: Rc::new(RefCell::new(Open {
                    object,
                    offset: 0,
                    flags,
                })),
                cloexec: false,
            })
        };
        Files {
            tree,
            tmp: BTreeMap::new(),
            tmp_budget,
            exe: String::from(exe),
            fds: alloc::vec![
                std(Object::Stdin, flags::RDONLY),
                std(Object::Console(Stream::Stdout), flags::WRONLY),
                std(Object::Console(Stream::Stderr), flags::WRONLY),
            ],
        }
    }

    /// Whether `/tmp` has room for `file` to hold `len` bytes: the other files in `/tmp`
    /// plus `len` within the budget (an unlinked file still open counts while it grows).
    fn room_for(&self, file: &Rc<RefCell<Vec<u8>>>, len: usize) -> bool {
        let others: usize = self
            .tmp
            .values()
            .filter(|f| !Rc::ptr_eq(f, file))
            .map(|f| f.borrow().len())
            .sum();
        others.saturating_add(len) <= self.tmp_budget
    }

    /// The program's path (`/proc/self/exe`).
    pub fn exe(&self) -> &str {
        &self.exe
    }

    /// What `path` (absolute and normal) names, with no link followed.
    fn lookup(&self, path: &str) -> Option<Entry> {
        match path {
            "/" | "/tmp" | "/dev" | "/proc" | "/proc/self" => return Some(Entry::Dir),
            "/dev/null" => return Some(Entry::Dev(Device::Null)),
            "/dev/zero" => return Some(Entry::Dev(Device::Zero)),
            "/dev/urandom" | "/dev/random" => return Some(Entry::Dev(Device::Urandom)),
            "/proc/self/exe" => return Some(Entry::Link(self.exe.clone())),
            _ => {}
        }
        if let Some(name) = path.strip_prefix("/tmp/") {
            return self.tmp.get(name).map(|f| Entry::Tmp(f.clone()));
        }
        if path.starts_with("/dev/") || path.starts_with("/proc/") {
            return None;
        }
        match self.tree.get(path)? {
            Node::File(bytes) => Some(Entry::Ro(bytes)),
            Node::Dir => Some(Entry::Dir),
            Node::Link(target) => Some(Entry::Link(target.clone())),
        }
    }

    /// Resolves `path` (relative ones against `base`, a directory's absolute path):
    /// returns the final absolute path and what it names (`None`: nothing yet, but its
    /// directory exists). Follows a final link only when `follow`.
    ///
    /// Errors: `ENOENT` (empty path, or a missing directory on the way), `ENOTDIR`,
    /// `ELOOP`, `ENAMETOOLONG`.
    pub fn resolve(
        &self,
        base: &str,
        path: &str,
        follow: bool,
    ) -> Result<(String, Option<Entry>), Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut pending: Vec<String> = Vec::new();
        let push_parts = |pending: &mut Vec<String>, p: &str| {
            for part in p.split('/').rev().filter(|s| !s.is_empty()) {
                pending.push(String::from(part));
            }
        };
        push_parts(&mut pending, path);
        let mut at = if path.starts_with('/') {
            String::from("/")
        } else {
            normal(base)
        };
        let trailing_slash = path.ends_with('/');
        let mut links = 0;
        let mut found = Some(Entry::Dir);
        while let Some(part) = pending.pop() {
            if !matches!(found, Some(Entry::Dir)) {
                return Err(if found.is_none() {
                    Errno::ENOENT
                } else {
                    Errno::ENOTDIR
                });
            }
            match part.as_str() {
                "." => continue,
                ".." => {
                    at = String::from(parent(&at));
                    continue;
                }
                _ => {}
            }
            let next = join(&at, &part);
            if next.len() >= PATH_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            found = self.lookup(&next);
            let last = pending.is_empty();
            if let Some(Entry::Link(target)) = &found {
                if !last || follow || trailing_slash {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Errno::ELOOP);
                    }
                    let target = target.clone();
                    if target.starts_with('/') {
                        at = String::from("/");
                    }
                    push_parts(&mut pending, &target);
                    found = Some(Entry::Dir);
                    continue;
                }
            }
            at = next;
        }
        if trailing_slash && !matches!(found, Some(Entry::Dir) | None) {
            return Err(Errno::ENOTDIR);
        }
        Ok((at, found))
    }

    /// The status of what `path` names (see [`Files::resolve`]).
    pub fn stat_path(&self, base: &str, path: &str, follow: bool) -> Result<Status, Errno> {
        match self.resolve(base, path, follow)? {
            (at, Some(entry)) => Ok(status(&at, &entry)),
            (_, None) => Err(Errno::ENOENT),
        }
    }

    /// The absolute path of the directory descriptor `fd`, for `*at` calls.
    pub fn dir_path(&self, fd: i32) -> Result<String, Errno> {
        let open = self.get(fd)?;
        let open = open.borrow();
        match &open.object {
            Object::Dir(path) => Ok(path.clone()),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn get(&self, fd: i32) -> Result<Rc<RefCell<Open>>, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get(i))
            .and_then(|s| s.as_ref())
            .map(|s| s.open.clone())
            .ok_or(Errno::EBADF)
    }

    fn install(&mut self, open: Open, cloexec: bool, lowest: usize) -> Result<i32, Errno> {
        let slot = Some(Slot {
            open: Rc::new(RefCell::new(open)),
            cloexec,
        });
        self.place(slot, lowest)
    }

    fn place(&mut self, slot: Option<Slot>, lowest: usize) -> Result<i32, Errno> {
        if let Some(i) = (lowest..self.fds.len()).find(|&i| self.fds[i].is_none()) {
            self.fds[i] = slot;
            return Ok(i as i32);
        }
        if self.fds.len() >= MAX_FDS {
            return Err(Errno::EMFILE);
        }
        while self.fds.len() < lowest {
            self.fds.push(None);
        }
        self.fds.push(slot);
        Ok(self.fds.len() as i32 - 1)
    }

    /// Opens `path` (relative to `base`) with `open` flags; returns the new descriptor.
    ///
    /// Errors as Linux: `ENOENT`, `EEXIST` (`O_CREAT|O_EXCL`), `EROFS` (writing or
    /// creating outside `/tmp`), `EISDIR`, `ENOTDIR`, `ELOOP` (`O_NOFOLLOW` on a link),
    /// `EMFILE`, `EINVAL` (`O_TMPFILE`, unsupported), `ENOSPC` (no room in `/tmp`).
    pub fn open(&mut self, base: &str, path: &str, open_flags: u32) -> Result<i32, Errno> {
        if open_flags & flags::TMPFILE == flags::TMPFILE {
            return Err(Errno::EINVAL);
        }
        let follow = open_flags & flags::NOFOLLOW == 0;
        let (at, found) = self.resolve(base, path, follow)?;
        let write = matches!(open_flags & flags::ACCMODE, flags::WRONLY | flags::RDWR);
        let create = open_flags & flags::CREAT != 0;
        let path_only = open_flags & flags::PATH != 0;
        let keep = open_flags & (flags::ACCMODE | flags::APPEND | flags::NONBLOCK | flags::PATH);
        let cloexec = open_flags & flags::CLOEXEC != 0;
        let object = match found {
            Some(_) if create && open_flags & flags::EXCL != 0 => return Err(Errno::EEXIST),
            Some(Entry::Link(_)) if path_only => Object::Ro(at, b""),
            Some(Entry::Link(_)) => return Err(Errno::ELOOP),
            Some(Entry::Dir) if write || create => return Err(Errno::EISDIR),
            Some(Entry::Dir) => Object::Dir(at),
            Some(_) if open_flags & flags::DIRECTORY != 0 => return Err(Errno::ENOTDIR),
            Some(Entry::Ro(_)) if write => return Err(Errno::EROFS),
            Some(Entry::Ro(bytes)) => Object::Ro(at, bytes),
            Some(Entry::Dev(device)) => Object::Dev(at, device),
            Some(Entry::Tmp(file)) => {
                if write && open_flags & flags::TRUNC != 0 {
                    file.borrow_mut().clear();
                }
                let name = String::from(at.strip_prefix("/tmp/").unwrap_or(&at));
                Object::Tmp(name, file)
            }
            None if !create => return Err(Errno::ENOENT),
            None => {
                let name = match at.strip_prefix("/tmp/") {
                    Some(name) if !name.contains('/') => String::from(name),
                    _ => return Err(Errno::EROFS),
                };
                if self.fds.iter().flatten().count() >= MAX_FDS {
                    return Err(Errno::EMFILE);
                }
                let file = Rc::new(RefCell::new(Vec::new()));
                self.tmp.insert(name.clone(), file.clone());
                Object::Tmp(name, file)
            }
        };
        let open = Open {
            object,
            offset: 0,
            flags: keep,
        };
        self.install(open, cloexec, 0)
    }

    /// Closes `fd`; `EBADF` if it is not open.
    pub fn close(&mut self, fd: i32) -> Result<(), Errno> {
        self.get(fd)?;
        self.fds[fd as usize] = None;
        Ok(())
    }

    /// A new descriptor (the lowest free one at or above `lowest`) for `fd`'s open file.
    pub fn dup(&mut self, fd: i32, lowest: usize, cloexec: bool) -> Result<i32, Errno> {
        let open = self.get(fd)?;
        if lowest >= MAX_FDS {
            return Err(Errno::EINVAL);
        }
        self.place(Some(Slot { open, cloexec }), lowest)
    }

    /// Makes `new` refer to `fd`'s open file (closing what `new` was).
    pub fn dup_to(&mut self, fd: i32, new: i32, cloexec: bool) -> Result<i32, Errno> {
        let open = self.get(fd)?;
        let new_index = usize::try_from(new)
            .ok()
            .filter(|&n| n < MAX_FDS)
            .ok_or(Errno::EBADF)?;
        while self.fds.len() <= new_index {
            self.fds.push(None);
        }
        self.fds[new_index] = Some(Slot { open, cloexec });
        Ok(new)
    }

    /// The descriptor's close-on-exec flag.
    pub fn cloexec(&self, fd: i32) -> Result<bool, Errno> {
        self.get(fd)?;
        Ok(self.fds[fd as usize].as_ref().is_some_and(|s| s.cloexec))
    }

    /// Sets the descriptor's close-on-exec flag.
    pub fn set_cloexec(&mut self, fd: i32, on: bool) -> Result<(), Errno> {
        self.get(fd)?;
        if let Some(slot) = self.fds[fd as usize].as_mut() {
            slot.cloexec = on;
        }
        Ok(())
    }

    /// Whether `fd` would not block now on a read and on a write, as (readable,
    /// writable). Files, directories and devices are always both (as on Linux); standard
    /// input is readable (at its end), the console writable. `EBADF` if not open.
    pub fn readiness(&self, fd: i32) -> Result<(bool, bool), Errno> {
        let open = self.get(fd)?;
        let open = open.borrow();
        Ok(match &open.object {
            Object::Stdin => (true, false),
            Object::Console(_) => (false, true),
            Object::Ro(..) | Object::Tmp(..) | Object::Dev(..) | Object::Dir(_) => (true, true),
        })
    }

    /// The open file's status flags (`F_GETFL`).
    pub fn status_flags(&self, fd: i32) -> Result<u32, Errno> {
        Ok(self.get(fd)?.borrow().flags)
    }

    /// Sets `O_APPEND` and `O_NONBLOCK` as in `flags_to_set` (`F_SETFL`; other bits kept).
    pub fn set_status_flags(&mut self, fd: i32, flags_to_set: u32) -> Result<(), Errno> {
        let open = self.get(fd)?;
        let mut open = open.borrow_mut();
        let settable = flags::APPEND | flags::NONBLOCK;
        open.flags = (open.flags & !settable) | (flags_to_set & settable);
        Ok(())
    }

    /// Reads up to `len` bytes at the file offset (or at `at`, leaving the offset, for
    /// `pread`), handing them to `sink` in one or more pieces; returns the bytes read.
    ///
    /// Errors: `EBADF` (not open for reading), `EISDIR`, `ESPIPE` (`pread` on the
    /// console), and whatever `sink` returns (nothing is consumed then).
    pub fn read(
        &mut self,
        fd: i32,
        len: usize,
        at: Option<u64>,
        sink: &mut dyn FnMut(Source<'_>) -> Result<(), Errno>,
    ) -> Result<usize, Errno> {
        let open = self.get(fd)?;
        let mut open = open.borrow_mut();
        if !open.readable() {
            return Err(Errno::EBADF);
        }
        let offset = at.unwrap_or(open.offset);
        let from = |bytes: &[u8], sink: &mut dyn FnMut(Source<'_>) -> Result<(), Errno>| {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let n = len.min(bytes.len() - start);
            if n > 0 {
                sink(Source::Bytes(&bytes[start..start + n]))?;
            }
            Ok::<usize, Errno>(n)
        };
        let n = match &open.object {
            Object::Ro(_, bytes) => from(bytes, sink)?,
            Object::Tmp(_, file) => from(&file.borrow(), sink)?,
            Object::Dev(_, Device::Null) | Object::Stdin => {
                if at.is_some() && matches!(open.object, Object::Stdin) {
                    return Err(Errno::ESPIPE);
                }
                0
            }
            Object::Dev(_, Device::Zero) => {
                sink(Source::Zeros(len))?;
                len
            }
            Object::Dev(_, Device::Urandom) => {
                sink(Source::Random(len))?;
                len
            }
            Object::Dir(_) => return Err(Errno::EISDIR),
            Object::Console(_) => return Err(Errno::EBADF),
        };
        if at.is_none() {
            open.offset = offset + n as u64;
        }
        Ok(n)
    }

    /// Writes `bytes` at the file offset (the end with `O_APPEND`; or at `at` for
    /// `pwrite`); console output goes to `console`. Returns the bytes written.
    ///
    /// Errors: `EBADF` (not open for writing), `EISDIR`, `ENOSPC` (`/tmp` full),
    /// `EFBIG` (an offset past what memory can hold), `ESPIPE` (`pwrite` on the console).
    pub fn write(
        &mut self,
        fd: i32,
        bytes: &[u8],
        at: Option<u64>,
        console: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<usize, Errno> {
        let open = self.get(fd)?;
        let mut open = open.borrow_mut();
        if !open.writable() {
            return Err(Errno::EBADF);
        }
        let append = open.flags & flags::APPEND != 0;
        match &open.object {
            Object::Console(stream) => {
                if at.is_some() {
                    return Err(Errno::ESPIPE);
                }
                console(*stream, bytes);
                Ok(bytes.len())
            }
            Object::Dev(..) => Ok(bytes.len()),
            Object::Dir(_) => Err(Errno::EISDIR),
            Object::Ro(..) | Object::Stdin => Err(Errno::EBADF),
            Object::Tmp(_, file) => {
                let file = file.clone();
                let mut data = file.borrow_mut();
                let start = match (at, append) {
                    (Some(at), _) => at,
                    (None, true) => data.len() as u64,
                    (None, false) => open.offset,
                };
                let start = usize::try_from(start).map_err(|_| Errno::EFBIG)?;
                let end = start.checked_add(bytes.len()).ok_or(Errno::EFBIG)?;
                if end > data.len() {
                    drop(data);
                    let room = self.room_for(&file, end);
                    data = file.borrow_mut();
                    if !room {
                        return Err(Errno::ENOSPC);
                    }
                    data.resize(end, 0);
                }
                data[start..end].copy_from_slice(bytes);
                if at.is_none() {
                    open.offset = end as u64;
                }
                Ok(bytes.len())
            }
        }
    }

    /// Moves the file offset (`whence`: 0 set, 1 current, 2 end); returns the new one.
    ///
    /// Errors: `EINVAL` (bad `whence`, a negative result), `ESPIPE` (the console).
    pub fn seek(&mut self, fd: i32, offset: i64, whence: u32) -> Result<u64, Errno> {
        let open = self.get(fd)?;
        let mut open = open.borrow_mut();
        let size = match &open.object {
            Object::Ro(_, bytes) => bytes.len() as u64,
            Object::Tmp(_, file) => file.borrow().len() as u64,
            Object::Dev(..) => return Ok(0),
            Object::Dir(_) if whence == 0 && offset == 0 => {
                open.offset = 0;
                return Ok(0);
            }
            Object::Dir(_) => return Err(Errno::EINVAL),
            Object::Console(_) | Object::Stdin => return Err(Errno::ESPIPE),
        };
        let origin = match whence {
            0 => 0,
            1 => open.offset as i64,
            2 => size as i64,
            _ => return Err(Errno::EINVAL),
        };
        let new = origin.checked_add(offset).ok_or(Errno::EINVAL)?;
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        open.offset = new as u64;
        Ok(new as u64)
    }

    /// Status of the open file `fd`.
    pub fn fstat(&self, fd: i32) -> Result<Status, Errno> {
        let open = self.get(fd)?;
        let open = open.borrow();
        Ok(match &open.object {
            Object::Ro(path, bytes) => status(path, &Entry::Ro(bytes)),
            Object::Tmp(name, file) => status(&join("/tmp", name), &Entry::Tmp(file.clone())),
            Object::Dev(path, device) => status(path, &Entry::Dev(*device)),
            Object::Dir(path) => status(path, &Entry::Dir),
            Object::Stdin | Object::Console(_) => Status {
                ino: inode("/dev/console"),
                mode: mode::CHAR | 0o620,
                size: 0,
                rdev: 5 << 8 | 1,
            },
        })
    }

    /// Resizes the `/tmp` file open as `fd` (`ftruncate`).
    ///
    /// Errors: `EINVAL` (not a `/tmp` file open for writing), `ENOSPC`, `EFBIG`.
    pub fn truncate(&mut self, fd: i32, len: u64) -> Result<(), Errno> {
        let open = self.get(fd)?;
        let open = open.borrow();
        let Object::Tmp(_, file) = &open.object else {
            return Err(Errno::EINVAL);
        };
        if !open.writable() {
            return Err(Errno::EINVAL);
        }
        let len = usize::try_from(len).map_err(|_| Errno::EFBIG)?;
        if len > file.borrow().len() && !self.room_for(file, len) {
            return Err(Errno::ENOSPC);
        }
        file.borrow_mut().resize(len, 0);
        Ok(())
    }

    /// The bytes of the file open as `fd`, for a file-backed `mmap`: a copy of `len`
    /// bytes from `offset` (short at the end of the file). `EACCES` for what is not a
    /// regular file, `EBADF` when `fd` is not open for reading.
    pub fn contents(&self, fd: i32, offset: u64, len: usize) -> Result<FileBytes, Errno> {
        let open = self.get(fd)?;
        let open = open.borrow();
        if !open.readable() {
            return Err(Errno::EACCES);
        }
        let piece = |bytes: &[u8]| {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let end = start.saturating_add(len).min(bytes.len());
            (start, end)
        };
        match &open.object {
            Object::Ro(path, bytes) => {
                let (start, end) = piece(bytes);
                Ok(FileBytes {
                    path: path.clone(),
                    whole: bytes,
                    start,
                    bytes: bytes[start..end].to_vec(),
                })
            }
            Object::Tmp(_, file) => {
                let data = file.borrow();
                let (start, end) = piece(&data);
                Ok(FileBytes {
                    path: String::new(),
                    whole: b"",
                    start,
                    bytes: data[start..end].to_vec(),
                })
            }
            Object::Dev(_, Device::Zero) => Ok(FileBytes {
                path: String::new(),
                whole: b"",
                start: 0,
                bytes: Vec::new(),
            }),
            _ => Err(Errno::EACCES),
        }
    }

    /// Removes the `/tmp` file at `path` (open descriptors keep it until closed).
    ///
    /// Errors: `ENOENT`, `EISDIR`, `EROFS` (outside `/tmp`).
    pub fn unlink(&mut self, base: &str, path: &str) -> Result<(), Errno> {
        let (at, found) = self.resolve(base, path, false)?;
        match found {
            None => Err(Errno::ENOENT),
            Some(Entry::Dir) => Err(Errno::EISDIR),
            Some(Entry::Tmp(_)) => {
                let name = at.strip_prefix("/tmp/").unwrap_or(&at);
                self.tmp.remove(name);
                Ok(())
            }
            Some(_) => Err(Errno::EROFS),
        }
    }

    /// The target of the link at `path`. `EINVAL` if it is not a link.
    pub fn readlink(&self, base: &str, path: &str) -> Result<String, Errno> {
        match self.resolve(base, path, false)? {
            (_, Some(Entry::Link(target))) => Ok(target),
            (_, Some(_)) => Err(Errno::EINVAL),
            (_, None) => Err(Errno::ENOENT),
        }
    }

    /// Whether `path` may be accessed as `mode` asks (`R_OK` 4, `W_OK` 2, `X_OK` 1).
    ///
    /// Errors: `ENOENT` and the lookup's errors, `EROFS` for `W_OK` outside `/tmp` and
    /// the devices, `EACCES` for `X_OK` on something that is not a file or directory.
    pub fn access(&self, base: &str, path: &str, access_mode: u32) -> Result<(), Errno> {
        if access_mode & !7 != 0 {
            return Err(Errno::EINVAL);
        }
        let (_, found) = self.resolve(base, path, true)?;
        let entry = found.ok_or(Errno::ENOENT)?;
        if access_mode & 2 != 0 && matches!(entry, Entry::Ro(_) | Entry::Dir) {
            return Err(Errno::EROFS);
        }
        if access_mode & 1 != 0 && matches!(entry, Entry::Dev(_)) {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    /// The entries of the directory open as `fd` not yet returned, from its offset on:
    /// (name, inode, `d_type`). `ENOTDIR` if `fd` is not a directory.
    pub fn entries(&self, fd: i32) -> Result<Vec<(String, u64, u8)>, Errno> {
        let open = self.get(fd)?;
        let open = open.borrow();
        let Object::Dir(path) = &open.object else {
            return Err(Errno::ENOTDIR);
        };
        let mut list: Vec<(String, u64, u8)> = alloc::vec![
            (String::from("."), inode(path), DT_DIR),
            (String::from(".."), inode(parent(path)), DT_DIR),
        ];
        let virtual_children: &[(&str, u8)] = match path.as_str() {
            "/" => &[("dev", DT_DIR), ("proc", DT_DIR), ("tmp", DT_DIR)],
            "/dev" => &[
                ("null", DT_CHR),
                ("random", DT_CHR),
                ("urandom", DT_CHR),
                ("zero", DT_CHR),
            ],
            "/proc" => &[("self", DT_DIR)],
            "/proc/self" => &[("exe", DT_LNK)],
            _ => &[],
        };
        for (name, kind) in virtual_children {
            list.push((name.to_string(), inode(&join(path, name)), *kind));
        }
        if path == "/tmp" {
            for name in self.tmp.keys() {
                list.push((name.clone(), inode(&join(path, name)), DT_REG));
            }
        } else if !(path.starts_with("/dev") || path.starts_with("/proc")) {
            for (name, node) in self.tree.children(path) {
                if virtual_children.iter().any(|(v, _)| *v == name) {
                    continue;
                }
                let kind = match node {
                    Node::File(_) => DT_REG,
                    Node::Dir => DT_DIR,
                    Node::Link(_) => DT_LNK,
                };
                list.push((name.to_string(), inode(&join(path, name)), kind));
            }
        }
        let skip = usize::try_from(open.offset).unwrap_or(usize::MAX);
        Ok(list.into_iter().skip(skip).collect())
    }

    /// The file offset of `fd` (for a directory: the entries already returned).
    pub fn offset(&self, fd: i32) -> Result<u64, Errno> {
        Ok(self.get(fd)?.borrow().offset)
    }

    /// Marks `count` more entries of the directory `fd` as returned.
    pub fn advance(&mut self, fd: i32, count: usize) -> Result<(), Errno> {
        let open = self.get(fd)?;
        open.borrow_mut().offset += count as u64;
        Ok(())
    }
}
