//! One readable line for a fault message the kernel sent to a fault endpoint: the decoding
//! shared by every fault handler (the root task for the fundamental services, `proc` for
//! the components it builds).

use crate::fault::{cap_fault, unknown_syscall, user_exception, vm_fault};
use crate::{FaultTag, Word};
use core::fmt;

/// A decoded fault: which component, what kind, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultReport<'a> {
    /// The component (or thread) that faulted.
    pub component: &'a str,
    /// The kind, `None` when the label is not a known fault.
    pub kind: Option<FaultTag>,
    /// The label as received.
    pub label: Word,
    /// The faulting address: the data address of a VM fault, the capability address
    /// of a capability fault, else the instruction pointer.
    pub addr: Option<Word>,
    /// The instruction pointer at the fault.
    pub ip: Option<Word>,
    /// Kind-specific detail: VM fault status word, exception number, syscall number.
    pub detail: Option<Word>,
    /// The message was shorter than the kind's layout.
    pub truncated: bool,
}

impl<'a> FaultReport<'a> {
    /// Decodes the fault message with `label` and words `mrs` from `component`.
    /// Never panics: unknown labels and short messages are reported as such.
    pub fn decode(component: &'a str, label: Word, mrs: &[Word]) -> FaultReport<'a> {
        let kind = FaultTag::from_word(label);
        let get = |i: usize| mrs.get(i).copied();
        let (addr, ip, detail, need) = match kind {
            Some(FaultTag::VmFault) => (
                get(vm_fault::ADDR),
                get(vm_fault::IP),
                get(vm_fault::FSR),
                vm_fault::LENGTH,
            ),
            Some(FaultTag::CapFault) => (
                get(cap_fault::ADDR),
                get(cap_fault::IP),
                get(cap_fault::LOOKUP_FAILURE_TYPE),
                cap_fault::BITS_LEFT,
            ),
            Some(FaultTag::UserException) => (
                None,
                get(user_exception::FAULT_IP),
                get(user_exception::NUMBER),
                user_exception::LENGTH,
            ),
            Some(FaultTag::UnknownSyscall) => (
                None,
                get(unknown_syscall::FAULT_IP),
                get(unknown_syscall::SYSCALL),
                unknown_syscall::LENGTH,
            ),
            Some(FaultTag::NullFault) | None => (None, None, None, 0),
        };
        FaultReport {
            component,
            kind,
            label,
            addr,
            ip,
            detail,
            truncated: mrs.len() < need,
        }
    }

    /// Whether this is a VM fault at exactly `addr`.
    pub fn is_vm_fault_at(&self, addr: Word) -> bool {
        self.kind == Some(FaultTag::VmFault) && self.addr == Some(addr)
    }
}

impl fmt::Display for FaultReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault: component={} kind=", self.component)?;
        match self.kind {
            Some(k) => write!(f, "{k:?}")?,
            None => write!(f, "unknown(label {})", self.label)?,
        }
        if let Some(a) = self.addr {
            write!(f, " addr={a:#x}")?;
        }
        if let Some(ip) = self.ip {
            write!(f, " ip={ip:#x}")?;
        }
        match (self.kind, self.detail) {
            // x86 page-fault error code: bit 1 = write, bit 4 = instruction fetch.
            (Some(FaultTag::VmFault), Some(fsr)) => {
                let access = if fsr & 0x10 != 0 {
                    "execute"
                } else if fsr & 0x2 != 0 {
                    "write"
                } else {
                    "read"
                };
                write!(f, " {access}")?;
            }
            (Some(FaultTag::UserException), Some(n)) => write!(f, " exception={n}")?,
            (Some(FaultTag::UnknownSyscall), Some(n)) => write!(f, " syscall={}", n as i64)?,
            (Some(FaultTag::CapFault), Some(t)) => write!(f, " lookup_failure={t}")?,
            _ => {}
        }
        if self.truncated {
            write!(f, " (truncated message)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn vm_fault_line() {
        let mut mrs = [0; vm_fault::LENGTH];
        mrs[vm_fault::IP] = 0x401234;
        mrs[vm_fault::ADDR] = 0xdead0000;
        mrs[vm_fault::FSR] = 0x4; // user-mode read of an unmapped page
        let r = FaultReport::decode("root.worker", FaultTag::VmFault as Word, &mrs);
        assert!(r.is_vm_fault_at(0xdead0000));
        assert_eq!(
            r.to_string(),
            "fault: component=root.worker kind=VmFault addr=0xdead0000 ip=0x401234 read"
        );
        mrs[vm_fault::FSR] = 0x6;
        let w = FaultReport::decode("x", FaultTag::VmFault as Word, &mrs).to_string();
        assert!(w.ends_with(" write"), "{w}");
    }

    #[test]
    fn unknown_and_short_messages_do_not_panic() {
        let r = FaultReport::decode("c", 99, &[]);
        assert_eq!(r.to_string(), "fault: component=c kind=unknown(label 99)");
        let r = FaultReport::decode("c", FaultTag::VmFault as Word, &[0x10]);
        assert!(r.truncated);
        assert_eq!(r.addr, None);
        assert!(r.to_string().ends_with("(truncated message)"), "{r}");
        let r = FaultReport::decode(
            "c",
            FaultTag::UserException as Word,
            &[0x400000, 0, 0, 13, 0],
        );
        assert_eq!(
            r.to_string(),
            "fault: component=c kind=UserException ip=0x400000 exception=13"
        );
    }
}
