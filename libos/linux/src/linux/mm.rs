//! Memory system calls: `brk`, `mmap`, `munmap`, `mprotect`, `madvise`.

use super::Linux;
use crate::errno::{Errno, SysResult};
use crate::image::{Prot, PAGE};
use crate::memory::{page_round, BrkChange, Use};
use crate::rewrite;
use crate::Platform;

/// `MAP_SHARED`.
const MAP_SHARED: u64 = 0x01;
/// `MAP_PRIVATE`.
const MAP_PRIVATE: u64 = 0x02;
/// `MAP_SHARED_VALIDATE`.
const MAP_SHARED_VALIDATE: u64 = 0x03;
/// `MAP_FIXED`.
const MAP_FIXED: u64 = 0x10;
/// `MAP_ANONYMOUS`.
const MAP_ANONYMOUS: u64 = 0x20;
/// `MAP_FIXED_NOREPLACE`.
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
/// Flags accepted and ignored: `MAP_GROWSDOWN`, `MAP_DENYWRITE`, `MAP_EXECUTABLE`,
/// `MAP_LOCKED`, `MAP_NORESERVE`, `MAP_POPULATE`, `MAP_NONBLOCK`, `MAP_STACK`.
const MAP_IGNORED: u64 = 0x100 | 0x800 | 0x1000 | 0x2000 | 0x4000 | 0x8000 | 0x1_0000 | 0x2_0000;

fn prot_of(arg: u64) -> Result<Prot, Errno> {
    if arg & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Prot(arg as u32))
}

impl<P: Platform> Linux<P> {
    pub(super) fn sys_brk(&mut self, a: &[u64; 6]) -> SysResult {
        if a[0] == 0 {
            return Ok(self.memory.brk());
        }
        let before = self.memory.brk();
        match self.memory.move_brk(a[0]) {
            BrkChange::Map(start, end) => {
                let rw = Prot(Prot::READ | Prot::WRITE);
                if self.platform.map(start, end - start, rw).is_err() {
                    // Undo the bookkeeping: the break stays where it was.
                    self.memory.move_brk(before);
                }
            }
            BrkChange::Unmap(start, end) => self.platform.unmap(start, end - start),
            BrkChange::None => {}
        }
        Ok(self.memory.brk())
    }

    pub(super) fn sys_mmap(&mut self, a: &[u64; 6]) -> SysResult {
        let (addr, len, flags, file, offset) = (a[0], a[1], a[3], a[4] as i32, a[5]);
        let prot = prot_of(a[2])?;
        let sharing = flags & 3;
        let known = 3 | MAP_FIXED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_IGNORED;
        if len == 0 || offset % PAGE != 0 || sharing == 0 || flags & !known != 0 {
            return Err(Errno::EINVAL);
        }
        // One process and no fork: a shared mapping has no one to share with, so
        // MAP_SHARED is a private copy (writes through it do not reach the file).
        debug_assert!(matches!(
            sharing,
            MAP_SHARED | MAP_PRIVATE | MAP_SHARED_VALIDATE
        ));
        let len = page_round(len).ok_or(Errno::ENOMEM)?;
        let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
        let addr = if fixed {
            if addr % PAGE != 0 {
                return Err(Errno::EINVAL);
            }
            let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
            if self.memory.touches_trampoline(addr, len) {
                return Err(Errno::EPERM);
            }
            if flags & MAP_FIXED_NOREPLACE != 0
                && self
                    .memory
                    .areas()
                    .any(|(s, area)| s < end && area.end > addr)
            {
                return Err(Errno::EEXIST);
            }
            addr
        } else {
            self.memory.find_free(addr & !(PAGE - 1), len)?
        };
        let anonymous = flags & MAP_ANONYMOUS != 0;
        let mut contents = None;
        if !anonymous {
            let mut bytes = self.files.contents(file, offset, len as usize)?;
            if prot.exec() && !bytes.path.is_empty() {
                let (path, whole) = (bytes.path.clone(), bytes.whole);
                if let Some(sites) = self.sites_of(&path, whole) {
                    sites.apply(&mut bytes.bytes, bytes.start as u64);
                }
            }
            contents = Some(bytes.bytes);
        }
        let kind = if anonymous { Use::Anonymous } else { Use::File };
        let replaced = self.memory.mapped_ranges(addr, len);
        self.memory.insert(addr, len, prot, kind)?;
        for (start, end) in replaced {
            self.platform.unmap(start, end - start);
        }
        if let Err(e) = self.platform.map(addr, len, prot) {
            let _ = self.memory.unmap(addr, len);
            return Err(e);
        }
        if let Some(bytes) = contents.filter(|b| !b.is_empty()) {
            self.platform.write(addr, &bytes);
        }
        Ok(addr)
    }

    pub(super) fn sys_munmap(&mut self, a: &[u64; 6]) -> SysResult {
        if self.memory.touches_trampoline(a[0], a[1]) {
            return Err(Errno::EINVAL);
        }
        for (start, end) in self.memory.unmap(a[0], a[1])? {
            self.platform.unmap(start, end - start);
        }
        Ok(0)
    }

    pub(super) fn sys_mprotect(&mut self, a: &[u64; 6]) -> SysResult {
        let prot = prot_of(a[2])?;
        if self.memory.touches_trampoline(a[0], a[1]) {
            return Err(Errno::EINVAL);
        }
        let became_exec = self.memory.protect(a[0], a[1], prot)?;
        // Code made executable now is swept first: no `syscall` runs unrewritten.
        for (start, end) in became_exec {
            let mut code = alloc::vec![0u8; (end - start) as usize];
            self.platform.read(start, &mut code);
            let sweep = rewrite::rewrite(&mut code, start, &[]);
            if !sweep.sites.is_empty() {
                self.platform.write(start, &code);
            }
        }
        let len = page_round(a[1]).ok_or(Errno::ENOMEM)?;
        self.platform.protect(a[0], len, prot)?;
        Ok(0)
    }

    pub(super) fn sys_madvise(&mut self, a: &[u64; 6]) -> SysResult {
        if !a[0].is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        // Advice only: nothing is paged, so every piece of advice is taken as given.
        Ok(0)
    }
}
