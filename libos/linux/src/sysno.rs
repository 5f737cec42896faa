//! Linux x86_64 system call numbers (`arch/x86/entry/syscalls/syscall_64.tbl`), for the
//! calls the layer handles or that iperf3 and busybox are known to make.

macro_rules! sysnos {
    ($($name:ident = $value:literal, $args:literal, $text:literal;)*) => {
        $(#[doc = concat!("`", $text, "`")]
        pub const $name: u64 = $value;)*

        /// The call's name, if this table knows it.
        pub fn name(number: u64) -> Option<&'static str> {
            match number {
                $($value => Some($text),)*
                _ => None,
            }
        }

        /// How many arguments the call takes (6 for one this table does not know).
        pub fn arg_count(number: u64) -> usize {
            match number {
                $($value => $args,)*
                _ => 6,
            }
        }
    };
}

sysnos! {
    READ = 0, 3, "read";
    WRITE = 1, 3, "write";
    OPEN = 2, 3, "open";
    CLOSE = 3, 1, "close";
    STAT = 4, 2, "stat";
    FSTAT = 5, 2, "fstat";
    LSTAT = 6, 2, "lstat";
    POLL = 7, 3, "poll";
    LSEEK = 8, 3, "lseek";
    MMAP = 9, 6, "mmap";
    MPROTECT = 10, 3, "mprotect";
    MUNMAP = 11, 2, "munmap";
    BRK = 12, 1, "brk";
    RT_SIGACTION = 13, 4, "rt_sigaction";
    RT_SIGPROCMASK = 14, 4, "rt_sigprocmask";
    RT_SIGRETURN = 15, 0, "rt_sigreturn";
    IOCTL = 16, 3, "ioctl";
    PREAD64 = 17, 4, "pread64";
    PWRITE64 = 18, 4, "pwrite64";
    READV = 19, 3, "readv";
    WRITEV = 20, 3, "writev";
    ACCESS = 21, 2, "access";
    PIPE = 22, 1, "pipe";
    SELECT = 23, 5, "select";
    SCHED_YIELD = 24, 0, "sched_yield";
    MADVISE = 28, 3, "madvise";
    DUP = 32, 1, "dup";
    DUP2 = 33, 2, "dup2";
    NANOSLEEP = 35, 2, "nanosleep";
    GETPID = 39, 0, "getpid";
    SOCKET = 41, 3, "socket";
    CONNECT = 42, 3, "connect";
    ACCEPT = 43, 3, "accept";
    SENDTO = 44, 6, "sendto";
    RECVFROM = 45, 6, "recvfrom";
    SHUTDOWN = 48, 2, "shutdown";
    BIND = 49, 3, "bind";
    LISTEN = 50, 2, "listen";
    GETSOCKNAME = 51, 3, "getsockname";
    GETPEERNAME = 52, 3, "getpeername";
    SETSOCKOPT = 54, 5, "setsockopt";
    GETSOCKOPT = 55, 5, "getsockopt";
    CLONE = 56, 5, "clone";
    FORK = 57, 0, "fork";
    EXECVE = 59, 3, "execve";
    EXIT = 60, 1, "exit";
    WAIT4 = 61, 4, "wait4";
    KILL = 62, 2, "kill";
    UNAME = 63, 1, "uname";
    FCNTL = 72, 3, "fcntl";
    FTRUNCATE = 77, 2, "ftruncate";
    GETCWD = 79, 2, "getcwd";
    CHDIR = 80, 1, "chdir";
    UNLINK = 87, 1, "unlink";
    READLINK = 89, 3, "readlink";
    GETTIMEOFDAY = 96, 2, "gettimeofday";
    GETRLIMIT = 97, 2, "getrlimit";
    GETRUSAGE = 98, 2, "getrusage";
    GETUID = 102, 0, "getuid";
    GETGID = 104, 0, "getgid";
    GETEUID = 107, 0, "geteuid";
    GETEGID = 108, 0, "getegid";
    GETPPID = 110, 0, "getppid";
    PRCTL = 157, 5, "prctl";
    ARCH_PRCTL = 158, 2, "arch_prctl";
    GETTID = 186, 0, "gettid";
    TIME = 201, 1, "time";
    FUTEX = 202, 6, "futex";
    GETDENTS64 = 217, 3, "getdents64";
    SET_TID_ADDRESS = 218, 1, "set_tid_address";
    CLOCK_GETTIME = 228, 2, "clock_gettime";
    CLOCK_GETRES = 229, 2, "clock_getres";
    CLOCK_NANOSLEEP = 230, 4, "clock_nanosleep";
    EXIT_GROUP = 231, 1, "exit_group";
    EPOLL_WAIT = 232, 4, "epoll_wait";
    EPOLL_CTL = 233, 4, "epoll_ctl";
    OPENAT = 257, 4, "openat";
    NEWFSTATAT = 262, 4, "newfstatat";
    UNLINKAT = 263, 3, "unlinkat";
    READLINKAT = 267, 4, "readlinkat";
    FACCESSAT = 269, 3, "faccessat";
    PSELECT6 = 270, 6, "pselect6";
    PPOLL = 271, 5, "ppoll";
    SET_ROBUST_LIST = 273, 2, "set_robust_list";
    ACCEPT4 = 288, 4, "accept4";
    EPOLL_CREATE1 = 291, 1, "epoll_create1";
    DUP3 = 292, 3, "dup3";
    PIPE2 = 293, 2, "pipe2";
    PRLIMIT64 = 302, 4, "prlimit64";
    GETRANDOM = 318, 3, "getrandom";
    STATX = 332, 5, "statx";
    RSEQ = 334, 4, "rseq";
    FACCESSAT2 = 439, 4, "faccessat2";
}
