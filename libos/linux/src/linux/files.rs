//! File system calls: descriptors, paths, `stat`, directories.

use super::Linux;
use crate::errno::{Errno, SysResult};
use crate::fs::{Source, Status};
use crate::Platform;
use alloc::string::String;
use alloc::vec::Vec;

/// The "current directory" descriptor of the `*at` calls.
const AT_FDCWD: i32 = -100;
/// `*at` flag: operate on the descriptor itself when the path is empty.
const AT_EMPTY_PATH: u64 = 0x1000;
/// `*at` flag: do not follow a final symbolic link.
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
/// `unlinkat` flag: remove a directory.
const AT_REMOVEDIR: u64 = 0x200;
/// Most bytes one read or write moves (Linux's `MAX_RW_COUNT` is larger; a short count
/// is allowed and callers loop).
pub const MAX_IO: usize = 1 << 20;
/// Most `iovec`s in one `readv`/`writev` (`IOV_MAX`).
const IOV_MAX: u64 = 1024;
/// Size of the kernel's `struct stat` on x86_64.
const STAT_SIZE: usize = 144;

fn fd(arg: u64) -> i32 {
    arg as i32
}

/// The 144-byte `struct stat` for `s`.
fn stat_bytes(s: &Status) -> [u8; STAT_SIZE] {
    let mut b = [0u8; STAT_SIZE];
    let mut put = |at: usize, bytes: &[u8]| b[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &1u64.to_le_bytes()); // st_dev
    put(8, &s.ino.to_le_bytes());
    put(16, &1u64.to_le_bytes()); // st_nlink
    put(24, &s.mode.to_le_bytes());
    put(40, &s.rdev.to_le_bytes());
    put(48, &s.size.to_le_bytes());
    put(56, &4096u64.to_le_bytes()); // st_blksize
    put(64, &s.size.div_ceil(512).to_le_bytes()); // st_blocks
    b
}

impl<P: Platform> Linux<P> {
    /// The directory a `*at` call's relative path starts from.
    fn base(&self, dirfd: u64) -> Result<String, Errno> {
        if fd(dirfd) == AT_FDCWD {
            Ok(String::from("/"))
        } else {
            self.files.dir_path(fd(dirfd))
        }
    }

    pub(super) fn sys_openat(&mut self, a: &[u64; 6]) -> SysResult {
        let path = self.read_path(a[1])?;
        let base = if path.starts_with('/') {
            String::from("/")
        } else {
            self.base(a[0])?
        };
        self.files
            .open(&base, &path, a[2] as u32)
            .map(|fd| fd as u64)
    }

    pub(super) fn sys_open(&mut self, a: &[u64; 6]) -> SysResult {
        self.sys_openat(&[AT_FDCWD as u64, a[0], a[1], a[2], 0, 0])
    }

    pub(super) fn sys_close(&mut self, a: &[u64; 6]) -> SysResult {
        self.files.close(fd(a[0])).map(|()| 0)
    }

    /// Reads into the program's buffer at `buf`, at most `len` bytes.
    fn read_into(&mut self, file: i32, buf: u64, len: u64, at: Option<u64>) -> SysResult {
        let len = (len as usize).min(MAX_IO);
        self.memory
            .check(buf, len as u64, crate::memory::Access::Write)?;
        let mut written = 0u64;
        let platform = &mut self.platform;
        let mut sink = |source: Source<'_>| {
            match source {
                Source::Bytes(bytes) => {
                    platform.write(buf + written, bytes);
                    written += bytes.len() as u64;
                }
                Source::Zeros(n) | Source::Random(n) => {
                    let random = matches!(source, Source::Random(_));
                    let mut chunk = [0u8; 256];
                    let mut left = n;
                    while left > 0 {
                        let k = left.min(chunk.len());
                        if random {
                            platform.random(&mut chunk[..k]);
                        }
                        platform.write(buf + written, &chunk[..k]);
                        written += k as u64;
                        left -= k;
                    }
                }
            }
            Ok(())
        };
        self.files.read(file, len, at, &mut sink).map(|n| n as u64)
    }

    pub(super) fn sys_read(&mut self, a: &[u64; 6]) -> SysResult {
        self.read_into(fd(a[0]), a[1], a[2], None)
    }

    pub(super) fn sys_pread64(&mut self, a: &[u64; 6]) -> SysResult {
        if (a[3] as i64) < 0 {
            return Err(Errno::EINVAL);
        }
        self.read_into(fd(a[0]), a[1], a[2], Some(a[3]))
    }

    fn write_from(&mut self, file: i32, buf: u64, len: u64, at: Option<u64>) -> SysResult {
        let len = (len as usize).min(MAX_IO);
        let bytes = self.read_user(buf, len)?;
        let platform = &mut self.platform;
        self.files
            .write(file, &bytes, at, &mut |stream, b| {
                platform.console(stream, b)
            })
            .map(|n| n as u64)
    }

    pub(super) fn sys_write(&mut self, a: &[u64; 6]) -> SysResult {
        self.write_from(fd(a[0]), a[1], a[2], None)
    }

    pub(super) fn sys_pwrite64(&mut self, a: &[u64; 6]) -> SysResult {
        if (a[3] as i64) < 0 {
            return Err(Errno::EINVAL);
        }
        self.write_from(fd(a[0]), a[1], a[2], Some(a[3]))
    }

    /// The program's `iovec` array: (base, len) pairs, checked.
    fn iovecs(&self, at: u64, count: u64) -> Result<Vec<(u64, u64)>, Errno> {
        if count > IOV_MAX {
            return Err(Errno::EINVAL);
        }
        let bytes = self.read_user(at, count as usize * 16)?;
        let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or([0; 8]));
        let list: Vec<(u64, u64)> = (0..count as usize)
            .map(|i| (word(i * 16), word(i * 16 + 8)))
            .collect();
        if list.iter().any(|&(_, len)| (len as i64) < 0) {
            return Err(Errno::EINVAL);
        }
        Ok(list)
    }

    pub(super) fn sys_writev(&mut self, a: &[u64; 6]) -> SysResult {
        let mut total = 0u64;
        for (base, len) in self.iovecs(a[1], a[2])? {
            match self.write_from(fd(a[0]), base, len, None) {
                Ok(n) => {
                    total += n;
                    if n < len {
                        break;
                    }
                }
                Err(e) if total == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(total)
    }

    pub(super) fn sys_readv(&mut self, a: &[u64; 6]) -> SysResult {
        let mut total = 0u64;
        for (base, len) in self.iovecs(a[1], a[2])? {
            match self.read_into(fd(a[0]), base, len, None) {
                Ok(n) => {
                    total += n;
                    if n < len {
                        break;
                    }
                }
                Err(e) if total == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(total)
    }

    pub(super) fn sys_lseek(&mut self, a: &[u64; 6]) -> SysResult {
        self.files.seek(fd(a[0]), a[1] as i64, a[2] as u32)
    }

    fn put_stat(&mut self, buf: u64, status: &Status) -> SysResult {
        self.write_user(buf, &stat_bytes(status))?;
        Ok(0)
    }

    pub(super) fn sys_fstat(&mut self, a: &[u64; 6]) -> SysResult {
        let status = self.files.fstat(fd(a[0]))?;
        self.put_stat(a[1], &status)
    }

    pub(super) fn sys_newfstatat(&mut self, a: &[u64; 6]) -> SysResult {
        let flags = a[3];
        if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | 0x800) != 0 {
            return Err(Errno::EINVAL);
        }
        let path = self.read_path(a[1])?;
        let status = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
            if fd(a[0]) == AT_FDCWD {
                self.files.stat_path("/", "/", true)?
            } else {
                self.files.fstat(fd(a[0]))?
            }
        } else {
            let base = if path.starts_with('/') {
                String::from("/")
            } else {
                self.base(a[0])?
            };
            let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
            self.files.stat_path(&base, &path, follow)?
        };
        self.put_stat(a[2], &status)
    }

    pub(super) fn sys_stat(&mut self, a: &[u64; 6]) -> SysResult {
        self.sys_newfstatat(&[AT_FDCWD as u64, a[0], a[1], 0, 0, 0])
    }

    pub(super) fn sys_lstat(&mut self, a: &[u64; 6]) -> SysResult {
        self.sys_newfstatat(&[AT_FDCWD as u64, a[0], a[1], AT_SYMLINK_NOFOLLOW, 0, 0])
    }

    pub(super) fn sys_faccessat(&mut self, a: &[u64; 6]) -> SysResult {
        let path = self.read_path(a[1])?;
        let base = if path.starts_with('/') {
            String::from("/")
        } else {
            self.base(a[0])?
        };
        self.files.access(&base, &path, a[2] as u32).map(|()| 0)
    }

    pub(super) fn sys_access(&mut self, a: &[u64; 6]) -> SysResult {
        self.sys_faccessat(&[AT_FDCWD as u64, a[0], a[1], 0, 0, 0])
    }

    pub(super) fn sys_readlinkat(&mut self, a: &[u64; 6]) -> SysResult {
        if (a[3] as i64) <= 0 {
            return Err(Errno::EINVAL);
        }
        let path = self.read_path(a[1])?;
        let base = if path.starts_with('/') {
            String::from("/")
        } else {
            self.base(a[0])?
        };
        let target = self.files.readlink(&base, &path)?;
        let n = target.len().min(a[3] as usize);
        self.write_user(a[2], &target.as_bytes()[..n])?;
        Ok(n as u64)
    }

    pub(super) fn sys_readlink(&mut self, a: &[u64; 6]) -> SysResult {
        self.sys_readlinkat(&[AT_FDCWD as u64, a[0], a[1], a[2], 0, 0])
    }

    pub(super) fn sys_unlinkat(&mut self, a: &[u64; 6]) -> SysResult {
        if a[2] & !AT_REMOVEDIR != 0 {
            return Err(Errno::EINVAL);
        }
        let path = self.read_path(a[1])?;
        let base = if path.starts_with('/') {
            String::from("/")
        } else {
            self.base(a[0])?
        };
        if a[2] & AT_REMOVEDIR != 0 {
            // No directories can be made, so none can be removed.
            return Err(match self.files.resolve(&base, &path, false)? {
                (_, None) => Errno::ENOENT,
                (_, Some(crate::fs::Entry::Dir)) => Errno::EROFS,
                _ => Errno::ENOTDIR,
            });
        }
        self.files.unlink(&base, &path).map(|()| 0)
    }

    pub(super) fn sys_unlink(&mut self, a: &[u64; 6]) -> SysResult {
        self.sys_unlinkat(&[AT_FDCWD as u64, a[0], 0, 0, 0, 0])
    }

    pub(super) fn sys_ftruncate(&mut self, a: &[u64; 6]) -> SysResult {
        if (a[1] as i64) < 0 {
            return Err(Errno::EINVAL);
        }
        self.files.truncate(fd(a[0]), a[1]).map(|()| 0)
    }

    pub(super) fn sys_getdents64(&mut self, a: &[u64; 6]) -> SysResult {
        let room = (a[2] as usize).min(MAX_IO);
        let entries = self.files.entries(fd(a[0]))?;
        let first = self.files.offset(fd(a[0]))?;
        let mut out: Vec<u8> = Vec::new();
        let mut taken = 0;
        for (name, ino, kind) in &entries {
            let len = (19 + name.len() + 1).div_ceil(8) * 8;
            if out.len() + len > room {
                break;
            }
            let start = out.len();
            out.resize(start + len, 0);
            let rec = &mut out[start..];
            rec[0..8].copy_from_slice(&ino.to_le_bytes());
            let next = first + taken as u64 + 1;
            rec[8..16].copy_from_slice(&next.to_le_bytes());
            rec[16..18].copy_from_slice(&(len as u16).to_le_bytes());
            rec[18] = *kind;
            rec[19..19 + name.len()].copy_from_slice(name.as_bytes());
            taken += 1;
        }
        if taken == 0 && !entries.is_empty() {
            return Err(Errno::EINVAL);
        }
        self.write_user(a[1], &out)?;
        self.files.advance(fd(a[0]), taken)?;
        Ok(out.len() as u64)
    }

    pub(super) fn sys_dup(&mut self, a: &[u64; 6]) -> SysResult {
        self.files.dup(fd(a[0]), 0, false).map(|fd| fd as u64)
    }

    pub(super) fn sys_dup2(&mut self, a: &[u64; 6]) -> SysResult {
        if a[0] == a[1] {
            self.files.status_flags(fd(a[0]))?;
            return Ok(a[1]);
        }
        self.files
            .dup_to(fd(a[0]), fd(a[1]), false)
            .map(|fd| fd as u64)
    }

    pub(super) fn sys_dup3(&mut self, a: &[u64; 6]) -> SysResult {
        let cloexec = crate::fs::flags::CLOEXEC as u64;
        if a[0] == a[1] || a[2] & !cloexec != 0 {
            return Err(Errno::EINVAL);
        }
        self.files
            .dup_to(fd(a[0]), fd(a[1]), a[2] & cloexec != 0)
            .map(|fd| fd as u64)
    }

    pub(super) fn sys_fcntl(&mut self, a: &[u64; 6]) -> SysResult {
        const F_DUPFD: u64 = 0;
        const F_GETFD: u64 = 1;
        const F_SETFD: u64 = 2;
        const F_GETFL: u64 = 3;
        const F_SETFL: u64 = 4;
        const F_DUPFD_CLOEXEC: u64 = 1030;
        let file = fd(a[0]);
        match a[1] {
            F_DUPFD | F_DUPFD_CLOEXEC => self
                .files
                .dup(file, a[2] as usize, a[1] == F_DUPFD_CLOEXEC)
                .map(|fd| fd as u64),
            F_GETFD => self.files.cloexec(file).map(u64::from),
            F_SETFD => self.files.set_cloexec(file, a[2] & 1 != 0).map(|()| 0),
            F_GETFL => self.files.status_flags(file).map(u64::from),
            F_SETFL => self.files.set_status_flags(file, a[2] as u32).map(|()| 0),
            _ => {
                self.files.status_flags(file)?;
                Err(Errno::EINVAL)
            }
        }
    }

    pub(super) fn sys_ioctl(&mut self, a: &[u64; 6]) -> SysResult {
        // No terminals: every descriptor that exists answers ENOTTY (so `isatty` is 0).
        self.files.status_flags(fd(a[0]))?;
        Err(Errno::ENOTTY)
    }

    pub(super) fn sys_getcwd(&mut self, a: &[u64; 6]) -> SysResult {
        if a[1] < 2 {
            return Err(Errno::ERANGE);
        }
        self.write_user(a[0], b"/\0")?;
        Ok(2)
    }
}
