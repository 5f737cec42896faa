//! One record of the kernel-entry log, as seL4 5.0 writes it on x86_64.
//!
//! The kernel's `benchmark_track_kernel_entry_t` (include/benchmark/benchmark_track_types.h)
//! is `{ uint64_t start_time; uint32_t duration; kernel_entry_t entry; }`, where
//! `kernel_entry_t` is a packed struct of `seL4_Word` bitfields: `path: 3`, then a union of
//! `word: 29` and `{ syscall_no: 4, cap_type: 5, is_fastpath: 1, invocation_tag: 19 }`.
//! Compiled by gcc for x86_64: `path` is bits 0..3 of byte 12, the union starts at byte 13
//! (packing puts it on the next byte), its fields from bit 0 up; the record is 24 bytes
//! (8-byte aligned). The buffer holds [`MAX_ENTRIES`] records.

/// Bytes of one log record.
pub const ENTRY_BYTES: usize = 24;
/// Bytes of the kernel's log (`seL4_LogBufferSize`: 1 MiB of the 2 MiB frame).
pub const LOG_BYTES: usize = 1 << 20;
/// Records the log holds before it is full (the kernel's `MAX_LOG_SIZE`).
pub const MAX_ENTRIES: usize = LOG_BYTES / ENTRY_BYTES;

/// Why the kernel was entered (`entry_type_t`, in the kernel's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// A device or timer interrupt (`word` is the interrupt vector).
    Interrupt,
    /// A syscall number outside the API range: debug and benchmark syscalls.
    UnknownSyscall,
    /// A CPU exception other than a page fault (`word` is the vector).
    UserLevelFault,
    /// A hardware debug exception.
    DebugFault,
    /// A page fault.
    VmFault,
    /// One of the API syscalls (Call, ReplyRecv, Send, NBSend, Recv, Reply, Yield, NBRecv).
    Syscall,
    /// The FPU was used while switched out (lazy FPU switching).
    UnimplementedDevice,
    /// A virtual CPU exit (VT-x).
    VcpuFault,
}

impl Path {
    /// The path with the kernel's number `n` (its low 3 bits).
    pub fn from_bits(n: u8) -> Path {
        match n & 7 {
            0 => Path::Interrupt,
            1 => Path::UnknownSyscall,
            2 => Path::UserLevelFault,
            3 => Path::DebugFault,
            4 => Path::VmFault,
            5 => Path::Syscall,
            6 => Path::UnimplementedDevice,
            _ => Path::VcpuFault,
        }
    }
}

/// One kernel entry: when, how long and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// TSC value when the kernel's C entry code started.
    pub start: u64,
    /// TSC cycles until the kernel left again.
    pub duration: u32,
    /// Why the kernel was entered.
    pub path: Path,
    /// The 29-bit detail word: the vector for interrupts and faults, or the syscall
    /// fields (see the accessors).
    pub word: u32,
}

impl Entry {
    /// Decodes one record (exactly [`ENTRY_BYTES`] bytes as the kernel wrote them).
    pub fn decode(bytes: &[u8; ENTRY_BYTES]) -> Entry {
        let le64 = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let mut d = [0u8; 4];
        d.copy_from_slice(&bytes[8..12]);
        let union = le64(13);
        Entry {
            start: le64(0),
            duration: u32::from_le_bytes(d),
            path: Path::from_bits(bytes[12]),
            word: (union & 0x1FFF_FFFF) as u32,
        }
    }

    /// The record as the kernel would write it (padding zero); for tests and tools.
    pub fn encode(&self) -> [u8; ENTRY_BYTES] {
        let mut b = [0u8; ENTRY_BYTES];
        b[0..8].copy_from_slice(&self.start.to_le_bytes());
        b[8..12].copy_from_slice(&self.duration.to_le_bytes());
        b[12] = self.path as u8;
        b[13..17].copy_from_slice(&(self.word & 0x1FFF_FFFF).to_le_bytes());
        b
    }

    /// A syscall entry built from its fields (each truncated to its width).
    pub fn syscall(
        start: u64,
        duration: u32,
        syscall_no: u8,
        cap_type: u8,
        fastpath: bool,
        label: u32,
    ) -> Entry {
        let word = u32::from(syscall_no & 0xF)
            | u32::from(cap_type & 0x1F) << 4
            | u32::from(fastpath) << 9
            | (label & 0x7_FFFF) << 10;
        Entry {
            start,
            duration,
            path: Path::Syscall,
            word,
        }
    }

    /// TSC value when the kernel left.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(u64::from(self.duration))
    }

    /// For syscalls: the negated syscall number, low 4 bits (Call is 1, NBRecv 8).
    pub fn syscall_no(&self) -> u8 {
        (self.word & 0xF) as u8
    }

    /// For syscalls: the kernel's type tag of the capability in the first argument.
    pub fn cap_type(&self) -> u8 {
        (self.word >> 4 & 0x1F) as u8
    }

    /// For Call and ReplyRecv: whether the IPC fastpath handled it.
    pub fn fastpath(&self) -> bool {
        self.word >> 9 & 1 == 1
    }

    /// For syscalls: the message label (the invocation label on kernel objects).
    pub fn label(&self) -> u32 {
        self.word >> 10
    }
}

/// The records in `log` (whole records only; a trailing part is ignored).
pub fn entries(log: &[u8]) -> impl Iterator<Item = Entry> + '_ {
    log.chunks_exact(ENTRY_BYTES).map(|c| {
        let mut b = [0u8; ENTRY_BYTES];
        b.copy_from_slice(c);
        Entry::decode(&b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record gcc 12 laid out for x86_64 from the kernel's struct definitions:
    /// start 0x1122334455667788, duration 0xAABBCCDD, path 5, syscall_no 0xF,
    /// cap_type 0x15, is_fastpath 1, invocation_tag 0x5A5A5.
    const GCC_SYSCALL: [u8; ENTRY_BYTES] = [
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xdd, 0xcc, 0xbb, 0xaa, 0x05, 0x5f, 0x97,
        0x96, 0x16, 0, 0, 0, 0, 0, 0, 0,
    ];
    /// The same compiler's layout of path 0 with word 0x1ABCDEF1.
    const GCC_WORD: [u8; ENTRY_BYTES] = [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf1, 0xde, 0xbc, 0x1a, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn decodes_the_compilers_layout() {
        let e = Entry::decode(&GCC_SYSCALL);
        assert_eq!(e.start, 0x1122_3344_5566_7788);
        assert_eq!(e.duration, 0xAABB_CCDD);
        assert_eq!(e.path, Path::Syscall);
        assert_eq!(e.syscall_no(), 0xF);
        assert_eq!(e.cap_type(), 0x15);
        assert!(e.fastpath());
        assert_eq!(e.label(), 0x5A5A5);
        assert_eq!(e.end(), 0x1122_3344_5566_7788 + 0xAABB_CCDD);
        let w = Entry::decode(&GCC_WORD);
        assert_eq!((w.path, w.word), (Path::Interrupt, 0x1ABC_DEF1));
    }

    #[test]
    fn encoding_reproduces_the_kernels_bytes() {
        let e = Entry::syscall(0x1122_3344_5566_7788, 0xAABB_CCDD, 0xF, 0x15, true, 0x5A5A5);
        assert_eq!(e.encode(), GCC_SYSCALL);
        let w = Entry {
            start: 0,
            duration: 0,
            path: Path::Interrupt,
            word: 0x1ABC_DEF1,
        };
        assert_eq!(w.encode(), GCC_WORD);
    }

    #[test]
    fn every_path_number_decodes_and_sizes_match_the_kernel() {
        for n in 0..8u8 {
            assert_eq!(Path::from_bits(n) as u8, n);
        }
        assert_eq!(Path::from_bits(0b1101), Path::Syscall, "only 3 bits count");
        assert_eq!(MAX_ENTRIES, 43_690);
    }

    #[test]
    fn entries_skips_a_trailing_partial_record() {
        let mut log = std::vec::Vec::new();
        log.extend_from_slice(&GCC_SYSCALL);
        log.extend_from_slice(&GCC_WORD);
        log.extend_from_slice(&[0xff; 5]);
        let all: std::vec::Vec<Entry> = entries(&log).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].word, 0x1ABC_DEF1);
    }
}
