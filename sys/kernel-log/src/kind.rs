//! The kinds of kernel entry we report, and which kind a log record is.
//!
//! A syscall record carries the syscall, the type tag of the capability it named and the
//! message label. The label alone means nothing (any IPC message has one); with the cap
//! type it tells an interrupt acknowledgement (label `IRQAckIRQ` on an IRQ handler) or
//! an I/O port access (`X86IOPort*` on the I/O port capability) from plain IPC.
//! Those numbers depend on the kernel build, so they come in as [`Codes`].

use crate::entry::{Entry, Path};

/// A kind of kernel entry, as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// An interrupt delivered (device or the kernel's timer).
    Interrupt,
    /// `IRQAckIRQ` on an IRQ handler capability.
    IrqAck,
    /// An `X86IOPort*` invocation (PIT, PIC-era devices).
    IoPort,
    /// Send, NBSend or Call on a notification (`seL4_Signal`).
    Signal,
    /// Send or NBSend on an endpoint.
    Send,
    /// Recv on a notification (`seL4_Wait`).
    Wait,
    /// NBRecv on anything (`seL4_Poll`, non-blocking receive).
    Poll,
    /// Recv on an endpoint (or other capability).
    Recv,
    /// Call on an endpoint taken by the IPC fastpath.
    CallFast,
    /// Call on an endpoint through the slow path.
    CallSlow,
    /// ReplyRecv taken by the IPC fastpath.
    ReplyRecvFast,
    /// ReplyRecv through the slow path.
    ReplyRecvSlow,
    /// Reply.
    Reply,
    /// Yield.
    Yield,
    /// Any other invocation of a kernel object (retype, map, TCB, CNode, ...).
    Invocation,
    /// A fault: page fault, CPU exception, debug exception or VCPU exit.
    Fault,
    /// Lazy FPU switching (the FPU used while switched out).
    Fpu,
    /// Debug and benchmark syscalls, and anything unrecognised.
    Other,
}

impl Kind {
    /// How many kinds there are.
    pub const COUNT: usize = 18;

    /// Every kind, in report order.
    pub const ALL: [Kind; Kind::COUNT] = [
        Kind::Interrupt,
        Kind::IrqAck,
        Kind::IoPort,
        Kind::Signal,
        Kind::Send,
        Kind::Wait,
        Kind::Poll,
        Kind::Recv,
        Kind::CallFast,
        Kind::CallSlow,
        Kind::ReplyRecvFast,
        Kind::ReplyRecvSlow,
        Kind::Reply,
        Kind::Yield,
        Kind::Invocation,
        Kind::Fault,
        Kind::Fpu,
        Kind::Other,
    ];

    /// The kind's key in the `KERNEL-SHARE` line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Interrupt => "interrupt",
            Kind::IrqAck => "irq_ack",
            Kind::IoPort => "io_port",
            Kind::Signal => "signal",
            Kind::Send => "send",
            Kind::Wait => "wait",
            Kind::Poll => "poll",
            Kind::Recv => "recv",
            Kind::CallFast => "call_fast",
            Kind::CallSlow => "call_slow",
            Kind::ReplyRecvFast => "reply_recv_fast",
            Kind::ReplyRecvSlow => "reply_recv_slow",
            Kind::Reply => "reply",
            Kind::Yield => "yield",
            Kind::Invocation => "invocation",
            Kind::Fault => "fault",
            Kind::Fpu => "fpu",
            Kind::Other => "other",
        }
    }

    /// The kind whose [`Kind::name`] is `name`.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Its position in [`Kind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The API syscall numbers, as the bindings number them (`sel4::sysno`: Call is -1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syscalls {
    /// `seL4_SysCall`.
    pub call: i64,
    /// `seL4_SysReplyRecv`.
    pub reply_recv: i64,
    /// `seL4_SysSend`.
    pub send: i64,
    /// `seL4_SysNBSend`.
    pub nb_send: i64,
    /// `seL4_SysRecv`.
    pub recv: i64,
    /// `seL4_SysReply`.
    pub reply: i64,
    /// `seL4_SysYield`.
    pub yield_: i64,
    /// `seL4_SysNBRecv`.
    pub nb_recv: i64,
}

/// The kernel's capability type tags (`cap_tag` in its bitfield specification).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapTags {
    /// `endpoint_cap`.
    pub endpoint: u8,
    /// `notification_cap`.
    pub notification: u8,
    /// `irq_handler_cap`.
    pub irq_handler: u8,
    /// `io_port_cap`.
    pub io_port: u8,
}

/// seL4 5.0.0's tags on x86_64 (include/arch/x86/arch/64/mode/object/structures.bf).
pub const CAP_TAGS_X86_64: CapTags = CapTags {
    endpoint: 4,
    notification: 6,
    irq_handler: 16,
    io_port: 19,
};

/// The vector of IRQ 0 on pc99 (`IRQ_INT_OFFSET` in include/plat/pc99/plat/machine.h).
pub const IRQ_VECTOR_BASE_PC99: u32 = 0x20;

/// The numbers of the running kernel a record is classified with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codes {
    /// The API syscall numbers.
    pub syscalls: Syscalls,
    /// Capability type tags.
    pub caps: CapTags,
    /// The invocation label `IRQAckIRQ`.
    pub irq_ack_label: u32,
    /// The invocation labels `X86IOPortIn8` ..= `X86IOPortOut32`.
    pub io_port_labels: (u32, u32),
    /// The vector of IRQ 0 (`IRQ_INT_OFFSET`, 0x20 on pc99): IRQ numbers are vectors minus this.
    pub irq_vector_base: u32,
}

impl Codes {
    /// The kind of entry `e` is.
    pub fn classify(&self, e: &Entry) -> Kind {
        match e.path {
            Path::Interrupt => Kind::Interrupt,
            Path::Syscall => self.syscall(e),
            Path::UnknownSyscall => Kind::Other,
            Path::UserLevelFault | Path::DebugFault | Path::VmFault | Path::VcpuFault => {
                Kind::Fault
            }
            Path::UnimplementedDevice => Kind::Fpu,
        }
    }

    /// The IRQ number an interrupt entry delivered (its vector minus the base).
    pub fn irq(&self, e: &Entry) -> Option<u32> {
        (e.path == Path::Interrupt)
            .then(|| e.word.checked_sub(self.irq_vector_base))
            .flatten()
    }

    fn syscall(&self, e: &Entry) -> Kind {
        let s = &self.syscalls;
        // The record keeps the negated number's low 4 bits.
        let no = |sysno: i64| (sysno.wrapping_neg() & 0xF) as u8;
        let n = e.syscall_no();
        let cap = e.cap_type();
        let caps = &self.caps;
        if n == no(s.call) || n == no(s.send) || n == no(s.nb_send) {
            let label = e.label();
            if cap == caps.notification {
                Kind::Signal
            } else if cap == caps.endpoint {
                match (n == no(s.call), e.fastpath()) {
                    (true, true) => Kind::CallFast,
                    (true, false) => Kind::CallSlow,
                    (false, _) => Kind::Send,
                }
            } else if cap == caps.irq_handler && label == self.irq_ack_label {
                Kind::IrqAck
            } else if cap == caps.io_port
                && (self.io_port_labels.0..=self.io_port_labels.1).contains(&label)
            {
                Kind::IoPort
            } else {
                Kind::Invocation
            }
        } else if n == no(s.reply_recv) {
            if e.fastpath() {
                Kind::ReplyRecvFast
            } else {
                Kind::ReplyRecvSlow
            }
        } else if n == no(s.recv) {
            if cap == caps.notification {
                Kind::Wait
            } else {
                Kind::Recv
            }
        } else if n == no(s.nb_recv) {
            Kind::Poll
        } else if n == no(s.reply) {
            Kind::Reply
        } else if n == no(s.yield_) {
            Kind::Yield
        } else {
            Kind::Other
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Codes as our x86_64 configuration has them (labels are this test's choice).
    pub(crate) const CODES: Codes = Codes {
        syscalls: Syscalls {
            call: -1,
            reply_recv: -2,
            send: -3,
            nb_send: -4,
            recv: -5,
            reply: -6,
            yield_: -7,
            nb_recv: -8,
        },
        caps: CAP_TAGS_X86_64,
        irq_ack_label: 24,
        io_port_labels: (44, 49),
        irq_vector_base: IRQ_VECTOR_BASE_PC99,
    };

    fn sys(no: u8, cap: u8, fast: bool, label: u32) -> Entry {
        Entry::syscall(0, 1, no, cap, fast, label)
    }

    fn other_path(path: Path, word: u32) -> Entry {
        Entry {
            start: 0,
            duration: 1,
            path,
            word,
        }
    }

    #[test]
    fn names_are_unique_and_round_trip() {
        for (i, k) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i);
            assert_eq!(Kind::from_name(k.name()), Some(k));
        }
        assert_eq!(Kind::from_name("kernel"), None);
    }

    #[test]
    fn syscalls_are_told_apart_by_number_cap_and_label() {
        let c = CODES;
        let t = CAP_TAGS_X86_64;
        assert_eq!(c.classify(&sys(1, t.irq_handler, false, 24)), Kind::IrqAck);
        assert_eq!(
            c.classify(&sys(1, t.irq_handler, false, 25)),
            Kind::Invocation
        );
        assert_eq!(c.classify(&sys(1, t.io_port, false, 44)), Kind::IoPort);
        assert_eq!(c.classify(&sys(1, t.io_port, false, 49)), Kind::IoPort);
        assert_eq!(c.classify(&sys(1, t.io_port, false, 50)), Kind::Invocation);
        // The same label on an endpoint is plain IPC.
        assert_eq!(c.classify(&sys(1, t.endpoint, true, 24)), Kind::CallFast);
        assert_eq!(c.classify(&sys(1, t.endpoint, false, 24)), Kind::CallSlow);
        assert_eq!(c.classify(&sys(3, t.endpoint, false, 0)), Kind::Send);
        assert_eq!(c.classify(&sys(4, t.endpoint, false, 0)), Kind::Send);
        assert_eq!(c.classify(&sys(3, t.notification, false, 0)), Kind::Signal);
        assert_eq!(
            c.classify(&sys(2, t.endpoint, true, 0)),
            Kind::ReplyRecvFast
        );
        assert_eq!(
            c.classify(&sys(2, t.endpoint, false, 0)),
            Kind::ReplyRecvSlow
        );
        assert_eq!(c.classify(&sys(5, t.notification, false, 0)), Kind::Wait);
        assert_eq!(c.classify(&sys(5, t.endpoint, false, 0)), Kind::Recv);
        assert_eq!(c.classify(&sys(8, t.notification, false, 0)), Kind::Poll);
        assert_eq!(c.classify(&sys(6, 0, false, 0)), Kind::Reply);
        assert_eq!(c.classify(&sys(7, 0, false, 0)), Kind::Yield);
        assert_eq!(c.classify(&sys(0, 0, false, 0)), Kind::Other);
        // A frame map: Call on a frame capability (tag 1).
        assert_eq!(c.classify(&sys(1, 1, false, 37)), Kind::Invocation);
    }

    #[test]
    fn other_paths_map_to_their_kinds() {
        let c = CODES;
        assert_eq!(
            c.classify(&other_path(Path::Interrupt, 0x9d)),
            Kind::Interrupt
        );
        assert_eq!(c.irq(&other_path(Path::Interrupt, 0x9d)), Some(0x7d));
        assert_eq!(c.irq(&other_path(Path::Interrupt, 0x10)), None);
        assert_eq!(c.irq(&sys(1, 4, true, 0)), None);
        assert_eq!(c.classify(&other_path(Path::VmFault, 1)), Kind::Fault);
        assert_eq!(
            c.classify(&other_path(Path::UserLevelFault, 6)),
            Kind::Fault
        );
        assert_eq!(c.classify(&other_path(Path::DebugFault, 0)), Kind::Fault);
        assert_eq!(c.classify(&other_path(Path::VcpuFault, 0)), Kind::Fault);
        assert_eq!(
            c.classify(&other_path(Path::UnimplementedDevice, 7)),
            Kind::Fpu
        );
        assert_eq!(
            c.classify(&other_path(Path::UnknownSyscall, 0)),
            Kind::Other
        );
    }
}
