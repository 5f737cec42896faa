//! The system-call layer through its dispatcher, as a program would call it.

mod common;

use common::*;
use libos_linux::fs::{Node, Tree};
use libos_linux::sysno::*;
use libos_linux::{Config, Errno, Linux, Platform};

const ENOENT: i64 = -(Errno::ENOENT.0 as i64);
const EFAULT: i64 = -(Errno::EFAULT.0 as i64);
const EINVAL: i64 = -(Errno::EINVAL.0 as i64);
const ENOSYS: i64 = -(Errno::ENOSYS.0 as i64);
const EBADF: i64 = -(Errno::EBADF.0 as i64);
const EROFS: i64 = -(Errno::EROFS.0 as i64);
const ENOMEM: i64 = -(Errno::ENOMEM.0 as i64);
const EPERM: i64 = -(Errno::EPERM.0 as i64);
const EEXIST: i64 = -(Errno::EEXIST.0 as i64);
const AT_FDCWD: u64 = -100i64 as u64;
const RW: u64 = 3;
const PRIVATE_ANON: u64 = 0x22;

/// A program with a read-only tree, and a scratch page mapped for arguments.
struct Program {
    linux: Linux<FakePlatform>,
    scratch: u64,
    next: u64,
}

impl Program {
    fn new(config: Config) -> Program {
        let mut tree = Tree::new();
        tree.add("/etc/hostname", Node::File(b"tessera\n"));
        tree.add(
            "/usr/bin/prog",
            Node::File(leak(static_program(&SYSCALL_CODE, 0x2000))),
        );
        tree.add("/bin/prog", Node::Link("/usr/bin/prog".into()));
        let mut linux = Linux::new(FakePlatform::default(), tree, "/usr/bin/prog", config);
        let scratch = linux.syscall(MMAP, [0, 8 * PAGE, RW, PRIVATE_ANON, u64::MAX, 0]);
        assert!(scratch > 0, "scratch mapping: {scratch}");
        Program {
            linux,
            scratch: scratch as u64,
            next: scratch as u64,
        }
    }

    fn call(&mut self, number: u64, args: &[u64]) -> i64 {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        self.linux.syscall(number, a)
    }

    /// Places `bytes` in the scratch area; returns their address.
    fn put(&mut self, bytes: &[u8]) -> u64 {
        let at = self.next;
        self.linux.platform.write(at, bytes);
        self.next += (bytes.len() as u64 + 15) & !15;
        at
    }

    fn path(&mut self, text: &str) -> u64 {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        self.put(&bytes)
    }

    fn buffer(&mut self, len: usize) -> u64 {
        self.put(&vec![0; len])
    }

    fn bytes(&self, at: u64, len: usize) -> Vec<u8> {
        self.linux.platform.bytes(at, len)
    }
}

/// `mov $0x50f, %eax; syscall; ret`: one real site, one false pair.
const SYSCALL_CODE: [u8; 8] = [0xb8, 0x0f, 0x05, 0x00, 0x00, 0x0f, 0x05, 0xc3];

fn program() -> Program {
    Program::new(Config::default())
}

#[test]
fn files_open_read_seek_stat_and_close() {
    let mut p = program();
    let path = p.path("/etc/hostname");
    let fd = p.call(OPENAT, &[AT_FDCWD, path, 0, 0]);
    assert_eq!(fd, 3);
    let buf = p.buffer(64);
    assert_eq!(p.call(READ, &[3, buf, 4]), 4);
    assert_eq!(p.bytes(buf, 4), b"tess");
    assert_eq!(p.call(PREAD64, &[3, buf, 64, 1]), 7);
    assert_eq!(p.bytes(buf, 7), b"essera\n");
    assert_eq!(p.call(LSEEK, &[3, 0, 1]), 4, "pread left the offset");
    let stat = p.buffer(144);
    assert_eq!(p.call(FSTAT, &[3, stat]), 0);
    assert_eq!(
        u64::from_le_bytes(p.bytes(stat + 48, 8).try_into().unwrap()),
        8
    );
    assert_eq!(p.call(NEWFSTATAT, &[AT_FDCWD, path, stat, 0]), 0);
    let mode = u32::from_le_bytes(p.bytes(stat + 24, 4).try_into().unwrap());
    assert_eq!(mode & 0o170000, 0o100000);
    // A buffer the program does not have: EFAULT, and nothing is consumed.
    assert_eq!(p.call(READ, &[3, 0x1234_0000, 4]), EFAULT);
    assert_eq!(p.call(LSEEK, &[3, 0, 1]), 4);
    assert_eq!(p.call(CLOSE, &[3]), 0);
    assert_eq!(p.call(READ, &[3, buf, 4]), EBADF);
    let missing = p.path("/etc/localtime");
    assert_eq!(p.call(OPENAT, &[AT_FDCWD, missing, 0, 0]), ENOENT);
    assert_eq!(p.call(ACCESS, &[missing, 4]), ENOENT);
    assert_eq!(p.call(ACCESS, &[path, 2]), EROFS);
    assert_eq!(
        p.call(OPENAT, &[AT_FDCWD, 0x10, 0, 0]),
        EFAULT,
        "a path in page 0"
    );
    let link = p.path("/proc/self/exe");
    assert_eq!(p.call(READLINK, &[link, buf, 64]), 13);
    assert_eq!(p.bytes(buf, 13), b"/usr/bin/prog");
    assert_eq!(
        p.call(READLINK, &[link, buf, 4]),
        4,
        "truncated to the buffer"
    );
}

#[test]
fn a_path_without_its_nul_within_path_max_is_refused() {
    let mut p = program();
    let long = p.put(&vec![b'a'; 5000]);
    p.put(&[0]);
    assert_eq!(
        p.call(OPENAT, &[AT_FDCWD, long, 0, 0]),
        -(Errno::ENAMETOOLONG.0 as i64)
    );
    // A path that runs off the end of the mapped memory.
    let end = p.scratch + 8 * PAGE - 3;
    p.linux.platform.write(end, b"abc");
    assert_eq!(p.call(OPENAT, &[AT_FDCWD, end, 0, 0]), EFAULT);
}

#[test]
fn output_reaches_the_console_and_the_iperf3_temp_file_dance_works() {
    let mut p = program();
    let text = p.put(b"hello\n");
    assert_eq!(p.call(WRITE, &[1, text, 6]), 6);
    let iov = p.put(
        &[
            text.to_le_bytes(),
            2u64.to_le_bytes(),
            text.to_le_bytes(),
            6u64.to_le_bytes(),
        ]
        .concat(),
    );
    assert_eq!(p.call(WRITEV, &[2, iov, 2]), 8);
    assert_eq!(p.linux.platform.stdout, b"hello\n");
    assert_eq!(p.linux.platform.stderr, b"hehello\n");
    // iperf3: mkstemp, unlink, ftruncate, mmap shared.
    let name = p.path("/tmp/iperf3.XXXXXX");
    let fd = p.call(OPENAT, &[AT_FDCWD, name, 0o302, 0o600]) as u64; // RDWR|CREAT|EXCL
    assert_eq!(fd, 3);
    assert_eq!(p.call(OPENAT, &[AT_FDCWD, name, 0o302, 0o600]), EEXIST);
    assert_eq!(p.call(UNLINK, &[name]), 0);
    assert_eq!(p.call(FTRUNCATE, &[fd, 8192]), 0);
    let shared = p.call(MMAP, &[0, 8192, RW, 1, fd, 0]);
    assert!(shared > 0, "{shared}");
    assert_eq!(p.bytes(shared as u64, 8192), vec![0; 8192]);
    let etc = p.path("/etc/new");
    assert_eq!(p.call(OPENAT, &[AT_FDCWD, etc, 0o101, 0o644]), EROFS);
}

#[test]
fn directories_are_listed_with_getdents64() {
    let mut p = program();
    let root = p.path("/");
    let fd = p.call(OPENAT, &[AT_FDCWD, root, 0o200000, 0]) as u64;
    let buf = p.buffer(4096);
    let n = p.call(GETDENTS64, &[fd, buf, 4096]) as usize;
    assert!(n > 0);
    let bytes = p.bytes(buf, n);
    let mut names = Vec::new();
    let mut at = 0;
    while at < n {
        let reclen = u16::from_le_bytes([bytes[at + 16], bytes[at + 17]]) as usize;
        assert_eq!(reclen % 8, 0);
        let name = &bytes[at + 19..at + reclen];
        let end = name.iter().position(|&b| b == 0).unwrap();
        names.push(String::from_utf8(name[..end].to_vec()).unwrap());
        at += reclen;
    }
    for name in [".", "..", "etc", "usr", "bin", "tmp", "dev", "proc"] {
        assert!(names.contains(&name.to_string()), "{name} in {names:?}");
    }
    assert_eq!(p.call(GETDENTS64, &[fd, buf, 4096]), 0, "then the end");
    assert_eq!(
        p.call(GETDENTS64, &[1, buf, 4096]),
        -(Errno::ENOTDIR.0 as i64)
    );
    let fd2 = p.call(OPENAT, &[AT_FDCWD, root, 0o200000, 0]) as u64;
    assert_eq!(
        p.call(GETDENTS64, &[fd2, buf, 10]),
        EINVAL,
        "no room for one entry"
    );
}

#[test]
fn memory_calls_keep_the_map_and_the_pages_in_step() {
    let mut p = program();
    let start = p.call(BRK, &[0]);
    assert_eq!(start, 0, "no program loaded: the break starts at 0");
    let a = p.call(MMAP, &[0, 3 * PAGE, RW, PRIVATE_ANON, u64::MAX, 0]) as u64;
    assert!(p.linux.platform.pages.contains_key(&(a + 2 * PAGE)));
    assert_eq!(p.call(MUNMAP, &[a + PAGE, PAGE]), 0);
    assert!(!p.linux.platform.pages.contains_key(&(a + PAGE)));
    assert_eq!(p.call(READ, &[0, a + PAGE, 1]), EFAULT);
    assert_eq!(p.call(MPROTECT, &[a, PAGE, 1]), 0);
    let path = p.path("/etc/hostname");
    p.call(OPENAT, &[AT_FDCWD, path, 0, 0]);
    assert_eq!(p.call(READ, &[3, a, 4]), EFAULT, "read-only now");
    assert_eq!(
        p.call(MPROTECT, &[a, 2 * PAGE, 1]),
        ENOMEM,
        "a hole in the range"
    );
    assert_eq!(p.call(MMAP, &[0, 0, RW, PRIVATE_ANON, u64::MAX, 0]), EINVAL);
    assert_eq!(
        p.call(MMAP, &[a + 1, PAGE, RW, PRIVATE_ANON | 0x10, u64::MAX, 0]),
        EINVAL
    );
    assert_eq!(
        p.call(MMAP, &[0, PAGE, 8, PRIVATE_ANON, u64::MAX, 0]),
        EINVAL,
        "bad prot"
    );
    assert_eq!(
        p.call(MMAP, &[0, PAGE, RW, 0x20, u64::MAX, 0]),
        EINVAL,
        "neither shared nor private"
    );
    assert_eq!(
        p.call(MMAP, &[0, 1 << 40, RW, PRIVATE_ANON, u64::MAX, 0]),
        ENOMEM,
        "over the budget"
    );
    assert_eq!(
        p.call(MMAP, &[a, PAGE, RW, 0x100022, u64::MAX, 0]),
        EEXIST,
        "FIXED_NOREPLACE"
    );
    // MAP_FIXED replaces: fresh zeroed pages.
    p.linux.platform.write(a + 2 * PAGE, b"old");
    let fixed = p.call(
        MMAP,
        &[a + 2 * PAGE, PAGE, RW, PRIVATE_ANON | 0x10, u64::MAX, 0],
    );
    assert_eq!(fixed as u64, a + 2 * PAGE);
    assert_eq!(p.bytes(a + 2 * PAGE, 3), vec![0; 3]);
    // The platform running out of memory fails the call and leaves the map as it was.
    let used = p.linux.memory.used();
    p.linux.platform.max_pages = Some(p.linux.platform.pages.len());
    assert_eq!(
        p.call(MMAP, &[0, PAGE, RW, PRIVATE_ANON, u64::MAX, 0]),
        ENOMEM
    );
    assert_eq!(p.linux.memory.used(), used);
}

#[test]
fn executable_mappings_are_rewritten_before_they_run() {
    let mut p = program();
    let path = p.path("/bin/prog");
    let fd = p.call(OPENAT, &[AT_FDCWD, path, 0, 0]) as u64;
    let code = p.call(MMAP, &[0, PAGE, 5, 2, fd, 0]) as u64; // READ|EXEC, PRIVATE
    let at = code + 64 + 112;
    assert_eq!(p.bytes(at, 8), [0xb8, 0x0f, 0x05, 0, 0, 0xff, 0xd0, 0xc3]);
    // Data mapped without EXEC is left as it is.
    let data = p.call(MMAP, &[0, PAGE, 1, 2, fd, 0]) as u64;
    assert_eq!(p.bytes(data + 64 + 112, 8), SYSCALL_CODE);
    // Anonymous memory made executable by mprotect is swept then.
    let jit = p.call(MMAP, &[0, PAGE, RW, PRIVATE_ANON, u64::MAX, 0]) as u64;
    p.linux.platform.write(jit, &SYSCALL_CODE);
    assert_eq!(p.call(MPROTECT, &[jit, PAGE, 5]), 0);
    assert_eq!(p.bytes(jit, 8), [0xb8, 0x0f, 0x05, 0, 0, 0xff, 0xd0, 0xc3]);
}

#[test]
fn exec_loads_the_program_builds_the_stack_and_reserves_page_zero() {
    let mut p = program();
    let start = p
        .linux
        .exec("/bin/prog", &["prog", "-s"], &["HOME=/"])
        .unwrap();
    assert_eq!(start.rip, 0x400000 + 64 + 112);
    assert_eq!(start.rewritten, 1);
    assert_eq!(start.rsp % 16, 0);
    let fake = &p.linux.platform;
    assert_eq!(fake.u64_at(start.rsp), 2, "argc");
    assert_eq!(fake.cstr_at(fake.u64_at(start.rsp + 8)), "prog");
    assert_eq!(fake.cstr_at(fake.u64_at(start.rsp + 16)), "-s");
    assert_eq!(fake.cstr_at(fake.u64_at(start.rsp + 32)), "HOME=/");
    assert_eq!(
        fake.bytes(start.rip, 8),
        [0xb8, 0x0f, 0x05, 0, 0, 0xff, 0xd0, 0xc3]
    );
    assert_eq!(fake.bytes(0x600000, 16), vec![0; 16], "bss is zero");
    // The break starts past the last segment.
    assert_eq!(p.call(BRK, &[0]), 0x602000);
    assert_eq!(p.call(BRK, &[0x603000 + 10]), 0x603000 + 10);
    assert_eq!(p.call(WRITE, &[1, 0x603000, 8]), 8, "the heap is mapped");
    assert_eq!(
        p.call(BRK, &[0x10]),
        0x603000 + 10,
        "refused: the break stays"
    );
    // Page 0 holds the trampoline: no mapping, unmapping or pointer there.
    assert_eq!(
        p.call(MMAP, &[0, PAGE, RW, PRIVATE_ANON | 0x10, u64::MAX, 0]),
        EPERM
    );
    assert_eq!(p.call(MUNMAP, &[0, PAGE]), EINVAL);
    assert_eq!(p.call(MPROTECT, &[0, PAGE, 7]), EINVAL);
    assert_eq!(p.call(WRITE, &[1, 0, 8]), EFAULT);
}

#[test]
fn exec_refuses_bad_files_in_one_line_naming_them() {
    let mut tree = Tree::new();
    tree.add("/bin/sh", Node::File(b"#!/bin/sh\necho hi\n"));
    let whole = static_program(&[0xc3], 0);
    tree.add("/bin/trunc", Node::File(leak(whole[..100].to_vec())));
    let mut linux = Linux::new(FakePlatform::default(), tree, "/bin/sh", Config::default());
    let e = linux.exec("/bin/sh", &[], &[]).unwrap_err();
    assert_eq!(e.to_string(), "linux: cannot exec /bin/sh: not an ELF file");
    let e = linux.exec("/bin/none", &[], &[]).unwrap_err();
    assert_eq!(e.to_string(), "linux: cannot exec /bin/none: no such file");
    let e = linux.exec("/bin/trunc", &[], &[]).unwrap_err();
    assert!(
        e.to_string().starts_with("linux: cannot exec /bin/trunc: "),
        "{e}"
    );
    assert!(!e.to_string().contains('\n'));
    let e = linux.exec("/bin", &[], &[]).unwrap_err();
    assert_eq!(e.to_string(), "linux: cannot exec /bin: not a regular file");
}

#[test]
fn time_identity_limits_and_randomness() {
    let mut p = program();
    p.linux.platform.now_ns = 5_000_000_123;
    let ts = p.buffer(16);
    assert_eq!(p.call(CLOCK_GETTIME, &[1, ts]), 0);
    assert_eq!(
        p.bytes(ts, 16),
        [5u64.to_le_bytes(), 123u64.to_le_bytes()].concat()
    );
    assert_eq!(p.call(CLOCK_GETTIME, &[99, ts]), EINVAL);
    assert_eq!(p.call(CLOCK_GETTIME, &[1, 8]), EFAULT);
    let tv = p.buffer(16);
    assert_eq!(p.call(GETTIMEOFDAY, &[tv, 0]), 0);
    let sec = u64::from_le_bytes(p.bytes(tv, 8).try_into().unwrap());
    assert_eq!(sec, 1_700_000_005);
    let req = p.put(&[1u64.to_le_bytes(), 500u64.to_le_bytes()].concat());
    assert_eq!(p.call(NANOSLEEP, &[req, 0]), 0);
    assert_eq!(p.linux.platform.slept_ns, 1_000_000_500);
    let bad = p.put(&[1u64.to_le_bytes(), 1_000_000_000u64.to_le_bytes()].concat());
    assert_eq!(p.call(NANOSLEEP, &[bad, 0]), EINVAL);
    let uts = p.buffer(390);
    assert_eq!(p.call(UNAME, &[uts]), 0);
    assert_eq!(&p.bytes(uts, 6), b"Linux\0");
    assert_eq!(&p.bytes(uts + 65, 8), b"tessera\0");
    assert_eq!(&p.bytes(uts + 4 * 65, 7), b"x86_64\0");
    let rnd = p.buffer(300);
    assert_eq!(p.call(GETRANDOM, &[rnd, 300, 0]), 300);
    assert_ne!(p.bytes(rnd, 300), vec![0; 300]);
    assert_eq!(p.call(GETRANDOM, &[rnd, 16, 8]), EINVAL);
    assert_eq!(p.call(GETPID, &[]), 1);
    assert_eq!(p.call(GETUID, &[]), 0);
    assert_eq!(p.call(SET_TID_ADDRESS, &[rnd]), 1);
    let lim = p.buffer(16);
    assert_eq!(p.call(PRLIMIT64, &[0, 7, 0, lim]), 0);
    assert_eq!(
        p.bytes(lim, 16),
        [1024u64.to_le_bytes(), 1024u64.to_le_bytes()].concat()
    );
    let raise = p.put(&[10u64.to_le_bytes(), 4096u64.to_le_bytes()].concat());
    assert_eq!(p.call(PRLIMIT64, &[0, 7, raise, 0]), EPERM);
    let inverted = p.put(&[20u64.to_le_bytes(), 10u64.to_le_bytes()].concat());
    assert_eq!(p.call(PRLIMIT64, &[0, 7, inverted, 0]), EINVAL);
    assert_eq!(p.call(PRLIMIT64, &[0, 99, 0, lim]), EINVAL);
    assert_eq!(
        p.call(PRLIMIT64, &[42, 7, 0, lim]),
        -(Errno::ESRCH.0 as i64)
    );
}

#[test]
fn tls_signals_and_exit_are_recorded() {
    let mut p = program();
    assert_eq!(p.call(ARCH_PRCTL, &[0x1002, 0x7000_0000]), 0);
    assert_eq!(p.linux.platform.fs_base, Some(0x7000_0000));
    let out = p.buffer(8);
    assert_eq!(p.call(ARCH_PRCTL, &[0x1003, out]), 0);
    assert_eq!(p.bytes(out, 8), 0x7000_0000u64.to_le_bytes());
    assert_eq!(
        p.call(ARCH_PRCTL, &[0x1001, 0]),
        EPERM,
        "GS is the library OS's"
    );
    assert_eq!(p.call(ARCH_PRCTL, &[0x1002, 1 << 63]), EPERM);
    assert_eq!(p.call(ARCH_PRCTL, &[0x9999, 0]), EINVAL);
    // SIGPIPE ignored, as iperf3 does; the old disposition comes back.
    let act = p.put(
        &[
            1u64.to_le_bytes(),
            0x0400_0000u64.to_le_bytes(),
            0x1234u64.to_le_bytes(),
            0u64.to_le_bytes(),
        ]
        .concat(),
    );
    let old = p.buffer(32);
    assert_eq!(p.call(RT_SIGACTION, &[13, act, old, 8]), 0);
    assert_eq!(p.bytes(old, 32), vec![0; 32]);
    assert_eq!(p.linux.sigaction(13).unwrap().handler, 1);
    assert_eq!(p.call(RT_SIGACTION, &[13, 0, old, 8]), 0);
    assert_eq!(p.bytes(old, 8), 1u64.to_le_bytes());
    assert_eq!(p.call(RT_SIGACTION, &[9, act, 0, 8]), EINVAL, "SIGKILL");
    assert_eq!(p.call(RT_SIGACTION, &[65, act, 0, 8]), EINVAL);
    assert_eq!(p.call(RT_SIGACTION, &[13, act, 0, 4]), EINVAL, "sigsetsize");
    let set = p.put(&u64::MAX.to_le_bytes());
    assert_eq!(p.call(RT_SIGPROCMASK, &[0, set, 0, 8]), 0);
    assert_eq!(
        p.linux.sigmask(),
        !(1 << 8 | 1 << 18),
        "KILL and STOP stay open"
    );
    assert_eq!(p.call(RT_SIGPROCMASK, &[7, set, 0, 8]), EINVAL);
    assert_eq!(p.call(EXIT_GROUP, &[0x103]), 0);
    assert_eq!(p.linux.exited(), Some(3));
    assert_eq!(p.linux.platform.exit, Some(3));
}

#[test]
fn unsupported_calls_answer_enosys_and_are_reported_once_per_number() {
    let mut p = program();
    assert_eq!(p.call(CLONE, &[]), ENOSYS);
    assert_eq!(p.call(CLONE, &[]), ENOSYS);
    assert_eq!(p.call(999, &[]), ENOSYS);
    assert_eq!(
        p.linux.platform.reports,
        vec![
            "linux: unsupported syscall 56 (clone): ENOSYS".to_string(),
            "linux: unsupported syscall 999 (?): ENOSYS".to_string(),
        ]
    );
    assert_eq!(p.linux.unsupported().collect::<Vec<_>>(), vec![56, 999]);
    assert!(libos_linux::linux::supported(OPENAT));
    assert!(!libos_linux::linux::supported(CLONE));
}

#[test]
fn trace_prints_every_call_strace_style() {
    let mut p = Program::new(Config {
        trace: true,
        ..Config::default()
    });
    let path = p.path("/etc/hostname");
    let missing = p.path("/etc/ld.so.cache");
    p.linux.platform.reports.clear();
    p.call(OPENAT, &[AT_FDCWD, path, 0x80000, 0]);
    p.call(OPENAT, &[AT_FDCWD, missing, 0x80000, 0]);
    p.call(CLOSE, &[3]);
    p.call(GETPID, &[]);
    assert_eq!(
        p.linux.platform.reports,
        vec![
            "openat(AT_FDCWD, \"/etc/hostname\", 0x80000, 0) = 3".to_string(),
            "openat(AT_FDCWD, \"/etc/ld.so.cache\", 0x80000, 0) = -1 ENOENT (No such file or directory)".to_string(),
            "close(3) = 0".to_string(),
            "getpid() = 1".to_string(),
        ]
    );
}

#[test]
fn poll_and_select_report_readiness_and_honour_timeouts() {
    let mut p = program();
    let path = p.path("/etc/hostname");
    assert_eq!(p.call(OPENAT, &[AT_FDCWD, path, 0, 0]), 3);
    let entry = |fd: i32, events: u16| {
        let mut e = fd.to_le_bytes().to_vec();
        e.extend_from_slice(&events.to_le_bytes());
        e.extend_from_slice(&[0xaa, 0xaa]); // revents: overwritten
        e
    };
    let table = [
        entry(3, 1),     // file, POLLIN
        entry(1, 1 | 4), // console, POLLIN|POLLOUT
        entry(-1, 1),    // ignored
        entry(99, 1),    // not open
    ]
    .concat();
    let fds = p.put(&table);
    assert_eq!(p.call(POLL, &[fds, 4, 0]), 3);
    let revents =
        |p: &Program, i: u64| u16::from_le_bytes(p.bytes(fds + i * 8 + 6, 2).try_into().unwrap());
    assert_eq!(revents(&p, 0), 1, "the file is readable");
    assert_eq!(revents(&p, 1), 4, "the console is writable, not readable");
    assert_eq!(revents(&p, 2), 0);
    assert_eq!(revents(&p, 3), 0x20, "POLLNVAL");
    // Nothing asked for: waits out the timeout, then 0.
    let quiet = p.put(&entry(3, 0));
    assert_eq!(p.call(POLL, &[quiet, 1, 1500]), 0);
    assert_eq!(p.linux.platform.slept_ns, 1_500_000_000);
    // Without a timeout, a wait nothing can end ends with EINTR.
    assert_eq!(
        p.call(POLL, &[quiet, 1, -1i64 as u64]),
        -(Errno::EINTR.0 as i64)
    );
    // (The fake clock saturated in that endless sleep: start it again.)
    p.linux.platform.now_ns = 0;
    p.linux.platform.slept_ns = 0;
    assert_eq!(
        p.call(POLL, &[fds, 2000, 0]),
        EINVAL,
        "more than RLIMIT_NOFILE"
    );
    assert_eq!(p.call(POLL, &[0x10, 1, 0]), EFAULT);
    let mask = p.put(&0u64.to_le_bytes());
    assert_eq!(p.call(PPOLL, &[fds, 1, 0, mask, 4]), EINVAL, "sigsetsize");
    assert_eq!(p.call(PPOLL, &[fds, 1, 0, mask, 8]), 1);

    // pselect6: read {0, 3}, write {1}; a 2 s timeout comes back untouched.
    let read = p.put(&(1u64 | 1 << 3).to_le_bytes());
    let write = p.put(&(1u64 << 1).to_le_bytes());
    let ts = p.put(&[2u64.to_le_bytes(), 0u64.to_le_bytes()].concat());
    assert_eq!(p.call(PSELECT6, &[4, read, write, 0, ts, 0]), 3);
    assert_eq!(p.bytes(read, 8), (1u64 | 1 << 3).to_le_bytes());
    assert_eq!(p.bytes(write, 8), (1u64 << 1).to_le_bytes());
    assert_eq!(p.bytes(ts, 8), 2u64.to_le_bytes());
    // Writing to standard input never gets ready: the timeout passes, the bit clears.
    let slept = p.linux.platform.slept_ns;
    let stdin_write = p.put(&1u64.to_le_bytes());
    let short = p.put(&[0u64.to_le_bytes(), 5000u64.to_le_bytes()].concat());
    assert_eq!(p.call(PSELECT6, &[1, 0, stdin_write, 0, short, 0]), 0);
    assert_eq!(p.linux.platform.slept_ns - slept, 5000);
    assert_eq!(p.bytes(stdin_write, 8), 0u64.to_le_bytes());
    assert_eq!(p.bytes(short, 16), vec![0; 16], "no time left");
    // Descriptors past nfds are not looked at; a closed one inside is EBADF.
    let far = p.put(&(1u64 << 9).to_le_bytes());
    assert_eq!(p.call(PSELECT6, &[4, far, 0, 0, short, 0]), 0);
    let closed = p.put(&(1u64 << 9).to_le_bytes());
    assert_eq!(p.call(PSELECT6, &[10, closed, 0, 0, short, 0]), EBADF);
    assert_eq!(p.call(PSELECT6, &[5000, read, 0, 0, short, 0]), EINVAL);
    let bad_mask = p.put(&[mask.to_le_bytes(), 4u64.to_le_bytes()].concat());
    assert_eq!(p.call(PSELECT6, &[4, read, 0, 0, short, bad_mask]), EINVAL);
    // select: a timeval; microseconds out of range are refused.
    let tv = p.put(&[0u64.to_le_bytes(), 2_000_000u64.to_le_bytes()].concat());
    assert_eq!(p.call(SELECT, &[4, read, 0, 0, tv]), EINVAL);
}
