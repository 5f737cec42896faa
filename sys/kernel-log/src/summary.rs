//! Kernel time per entry kind over a window, and its one-line text form.
//!
//! The line (what the component prints, what the host tool reads back):
//!
//! ```text
//! KERNEL-SHARE window_cycles=W entries=N full=0|1 kernel=C/N interrupt=C/N irq_ack=C/N ...
//!     other=C/N irq11=C/N irq125=C/N
//! ```
//!
//! (one line). `W` is the window in TSC cycles: from the first logged entry's start to
//! the last one's end. `entries` counts the records; `full=1` says the log filled up, so
//! the window ended early (at the last record that fit). Each `KEY=C/N` is cycles spent
//! in the kernel and entries: `kernel` for all of them, then every [`Kind`] in
//! [`Kind::ALL`] order (zeros included), then `irqK` for each IRQ number `K` that was
//! delivered (vector minus `IRQ_INT_OFFSET`), in ascending order. A kind's share of the
//! CPU is `C / W`.

use core::fmt;

use crate::entry::{entries, Entry, MAX_ENTRIES};
use crate::kind::{Codes, Kind};

/// What starts a `KERNEL-SHARE` line.
pub const LINE_PREFIX: &str = "KERNEL-SHARE";
/// IRQ numbers a summary keeps apart (vectors 0x20..=0xFF).
pub const IRQS: usize = 224;

/// Cycles and entries of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// TSC cycles spent in the kernel.
    pub cycles: u64,
    /// Kernel entries.
    pub count: u64,
}

impl Tally {
    fn add(&mut self, cycles: u64, count: u64) {
        self.cycles = self.cycles.saturating_add(cycles);
        self.count = self.count.saturating_add(count);
    }
}

/// Kernel time per kind over a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The window in TSC cycles (first entry's start to last entry's end; summed over
    /// windows after [`Summary::merge`]).
    pub window_cycles: u64,
    /// Log records summarised.
    pub entries: u64,
    /// Whether the log was full (the window ended early). After a merge: any was.
    pub full: bool,
    kinds: [Tally; Kind::COUNT],
    irqs: [Tally; IRQS],
    first_start: u64,
    last_end: u64,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            window_cycles: 0,
            entries: 0,
            full: false,
            kinds: [Tally::default(); Kind::COUNT],
            irqs: [Tally::default(); IRQS],
            first_start: u64::MAX,
            last_end: 0,
        }
    }
}

impl Summary {
    /// Nothing yet.
    pub fn new() -> Summary {
        Summary::default()
    }

    /// Summarises the records in `log` (the first `n` records of the kernel's buffer, as
    /// many bytes as that); `full` is set when `n` reached the log's capacity.
    pub fn of_log(log: &[u8], codes: &Codes) -> Summary {
        let mut s = Summary::new();
        for e in entries(log) {
            s.add(&e, codes);
        }
        s.full = s.entries >= MAX_ENTRIES as u64;
        s
    }

    /// Counts entry `e`, widening the window to cover it.
    pub fn add(&mut self, e: &Entry, codes: &Codes) {
        let cycles = u64::from(e.duration);
        self.kinds[codes.classify(e).index()].add(cycles, 1);
        if let Some(irq) = codes.irq(e).filter(|&i| (i as usize) < IRQS) {
            self.irqs[irq as usize].add(cycles, 1);
        }
        self.entries += 1;
        self.first_start = self.first_start.min(e.start);
        self.last_end = self.last_end.max(e.end());
        self.window_cycles = self.last_end.saturating_sub(self.first_start);
    }

    /// Adds `other`'s windows, entries and tallies to this one (summaries of several
    /// windows, e.g. a steady state; shares are then over the summed windows).
    pub fn merge(&mut self, other: &Summary) {
        self.window_cycles = self.window_cycles.saturating_add(other.window_cycles);
        self.entries = self.entries.saturating_add(other.entries);
        self.full |= other.full;
        for (a, b) in self.kinds.iter_mut().zip(other.kinds.iter()) {
            a.add(b.cycles, b.count);
        }
        for (a, b) in self.irqs.iter_mut().zip(other.irqs.iter()) {
            a.add(b.cycles, b.count);
        }
        // A merged summary's window is a sum, not a span: further `add`s start afresh.
        self.first_start = u64::MAX;
        self.last_end = 0;
    }

    /// Cycles and entries of `kind`.
    pub fn tally(&self, kind: Kind) -> Tally {
        self.kinds[kind.index()]
    }

    /// Cycles and entries of all kinds together.
    pub fn kernel(&self) -> Tally {
        let mut t = Tally::default();
        for k in &self.kinds {
            t.add(k.cycles, k.count);
        }
        t
    }

    /// Cycles and entries of interrupts on IRQ `irq` (zero for an unknown number).
    pub fn irq(&self, irq: u32) -> Tally {
        self.irqs.get(irq as usize).copied().unwrap_or_default()
    }

    /// The IRQs delivered in the window, ascending, with their tallies.
    pub fn irqs(&self) -> impl Iterator<Item = (u32, Tally)> + '_ {
        self.irqs
            .iter()
            .enumerate()
            .filter(|(_, t)| t.count > 0)
            .map(|(i, t)| (i as u32, *t))
    }

    /// The share of the window `kind` took (0 for an empty window).
    pub fn share(&self, kind: Kind) -> f64 {
        ratio(self.tally(kind).cycles, self.window_cycles)
    }

    /// The share of the window spent in the kernel (0 for an empty window).
    pub fn kernel_share(&self) -> f64 {
        ratio(self.kernel().cycles, self.window_cycles)
    }

    /// Reads a line in the form [`Summary`]'s `Display` writes (leading text before
    /// [`LINE_PREFIX`], e.g. a log prefix, and a trailing `\r` are ignored).
    pub fn parse(line: &str) -> Result<Summary, ParseError> {
        let at = line.find(LINE_PREFIX).ok_or(ParseError::NotASummary)?;
        let rest = line[at + LINE_PREFIX.len()..].trim_end_matches(['\r', '\n']);
        if !rest.is_empty() && !rest.starts_with(' ') {
            return Err(ParseError::NotASummary);
        }
        let mut s = Summary::new();
        let (mut window, mut count, mut full, mut kernel) = (None, None, None, None);
        let mut seen = [false; Kind::COUNT];
        for token in rest.split_ascii_whitespace() {
            let (key, value) = token.split_once('=').ok_or(ParseError::Malformed)?;
            match key {
                "window_cycles" => window = Some(number(value)?),
                "entries" => count = Some(number(value)?),
                "full" => {
                    full = Some(match value {
                        "0" => false,
                        "1" => true,
                        _ => return Err(ParseError::Malformed),
                    })
                }
                "kernel" => kernel = Some(tally(value)?),
                _ => {
                    let t = tally(value)?;
                    if let Some(kind) = Kind::from_name(key) {
                        if core::mem::replace(&mut seen[kind.index()], true) {
                            return Err(ParseError::Malformed);
                        }
                        s.kinds[kind.index()] = t;
                    } else if let Some(irq) = key.strip_prefix("irq") {
                        let n = number(irq)? as usize;
                        if n >= IRQS || s.irqs[n].count != 0 {
                            return Err(ParseError::Malformed);
                        }
                        s.irqs[n] = t;
                    } else {
                        return Err(ParseError::UnknownKey);
                    }
                }
            }
        }
        s.window_cycles = window.ok_or(ParseError::Missing)?;
        s.entries = count.ok_or(ParseError::Missing)?;
        s.full = full.ok_or(ParseError::Missing)?;
        if seen.contains(&false) {
            return Err(ParseError::Missing);
        }
        let total = s.kernel();
        if kernel.is_some_and(|k| k != total) || total.count != s.entries {
            return Err(ParseError::Inconsistent);
        }
        Ok(s)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn number(text: &str) -> Result<u64, ParseError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Malformed);
    }
    text.parse().map_err(|_| ParseError::Malformed)
}

fn tally(text: &str) -> Result<Tally, ParseError> {
    let (cycles, count) = text.split_once('/').ok_or(ParseError::Malformed)?;
    Ok(Tally {
        cycles: number(cycles)?,
        count: number(count)?,
    })
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = self.kernel();
        write!(
            f,
            "{LINE_PREFIX} window_cycles={} entries={} full={} kernel={}/{}",
            self.window_cycles,
            self.entries,
            u8::from(self.full),
            k.cycles,
            k.count
        )?;
        for kind in Kind::ALL {
            let t = self.tally(kind);
            write!(f, " {}={}/{}", kind.name(), t.cycles, t.count)?;
        }
        for (irq, t) in self.irqs() {
            write!(f, " irq{irq}={}/{}", t.cycles, t.count)?;
        }
        Ok(())
    }
}

/// Why a line is not a summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// It has no `KERNEL-SHARE` word.
    NotASummary,
    /// A token is not `key=value` with the value's form (`N`, `C/N`, `0|1`), or repeats.
    Malformed,
    /// A key that is neither a field, a kind nor `irqN`.
    UnknownKey,
    /// A field or a kind is missing (the line was cut short).
    Missing,
    /// The kinds do not add up to `kernel` or to `entries` (the line was garbled).
    Inconsistent,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::NotASummary => "not a KERNEL-SHARE line",
            ParseError::Malformed => "a malformed or repeated key=value token",
            ParseError::UnknownKey => "an unknown key",
            ParseError::Missing => "a field or kind is missing",
            ParseError::Inconsistent => "the kinds do not add up to the totals",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Path, ENTRY_BYTES};
    use crate::kind::tests::CODES;
    use crate::kind::CAP_TAGS_X86_64 as T;
    use std::string::ToString;
    use std::vec::Vec;

    fn irq(start: u64, duration: u32, vector: u32) -> Entry {
        Entry {
            start,
            duration,
            path: Path::Interrupt,
            word: vector,
        }
    }

    /// A plausible slice of a busy network component: a NIC interrupt (vector 0x2b) and
    /// the kernel timer (0x9d), the interrupt thread's wait, ack and signal, the library
    /// OS thread's poll and yield, one fastpath Call, one page fault.
    fn sample() -> Vec<Entry> {
        std::vec![
            irq(1_000, 400, 0x2b),
            Entry::syscall(1_500, 300, 1, T.irq_handler, false, 24),
            Entry::syscall(2_000, 200, 3, T.notification, false, 0),
            Entry::syscall(2_300, 250, 5, T.notification, false, 0),
            Entry::syscall(3_000, 100, 8, T.notification, false, 0),
            Entry::syscall(3_200, 150, 7, 0, false, 0),
            irq(4_000, 500, 0x9d),
            Entry::syscall(5_000, 80, 1, T.endpoint, true, 3),
            irq(6_000, 420, 0x2b),
            Entry {
                start: 9_000,
                duration: 1_000,
                path: Path::VmFault,
                word: 0,
            },
        ]
    }

    fn log_of(entries: &[Entry]) -> Vec<u8> {
        entries.iter().flat_map(|e| e.encode()).collect()
    }

    #[test]
    fn sums_cycles_and_counts_per_kind_and_irq() {
        let s = Summary::of_log(&log_of(&sample()), &CODES);
        assert_eq!(s.entries, 10);
        assert!(!s.full);
        assert_eq!(s.window_cycles, 10_000 - 1_000);
        let t = |cycles, count| Tally { cycles, count };
        assert_eq!(s.tally(Kind::Interrupt), t(1_320, 3));
        assert_eq!(s.tally(Kind::IrqAck), t(300, 1));
        assert_eq!(s.tally(Kind::Signal), t(200, 1));
        assert_eq!(s.tally(Kind::Wait), t(250, 1));
        assert_eq!(s.tally(Kind::Poll), t(100, 1));
        assert_eq!(s.tally(Kind::Yield), t(150, 1));
        assert_eq!(s.tally(Kind::CallFast), t(80, 1));
        assert_eq!(s.tally(Kind::Fault), t(1_000, 1));
        assert_eq!(s.tally(Kind::IoPort), t(0, 0));
        assert_eq!(s.kernel(), t(3_400, 10));
        let irqs: Vec<(u32, Tally)> = s.irqs().collect();
        assert_eq!(irqs, [(0x0b, t(820, 2)), (0x7d, t(500, 1))]);
        assert!((s.kernel_share() - 3_400.0 / 9_000.0).abs() < 1e-12);
        assert!((s.share(Kind::Interrupt) - 1_320.0 / 9_000.0).abs() < 1e-12);
    }

    #[test]
    fn an_empty_log_has_an_empty_window() {
        let s = Summary::of_log(&[], &CODES);
        assert_eq!((s.entries, s.window_cycles, s.full), (0, 0, false));
        assert_eq!(s.kernel_share(), 0.0);
    }

    #[test]
    fn a_log_at_capacity_is_full() {
        let e = Entry::syscall(0, 10, 7, 0, false, 0);
        let mut log = Vec::with_capacity(MAX_ENTRIES * ENTRY_BYTES);
        for i in 0..MAX_ENTRIES as u64 {
            let mut e = e;
            e.start = i * 100;
            log.extend_from_slice(&e.encode());
        }
        let s = Summary::of_log(&log, &CODES);
        assert!(s.full);
        assert_eq!(s.tally(Kind::Yield).count, MAX_ENTRIES as u64);
        assert_eq!(s.window_cycles, (MAX_ENTRIES as u64 - 1) * 100 + 10);
        let short = Summary::of_log(&log[..ENTRY_BYTES * 3], &CODES);
        assert!(!short.full);
    }

    #[test]
    fn the_line_round_trips() {
        let s = Summary::of_log(&log_of(&sample()), &CODES);
        let line = s.to_string();
        assert!(line.starts_with(
            "KERNEL-SHARE window_cycles=9000 entries=10 full=0 kernel=3400/10 interrupt=1320/3 irq_ack=300/1 "
        ), "{line}");
        assert!(
            line.ends_with(" other=0/0 irq11=820/2 irq125=500/1"),
            "{line}"
        );
        let back = Summary::parse(&std::format!("iperf: {line}\r")).unwrap();
        assert_eq!(back.to_string(), line);
        assert_eq!(back.tally(Kind::Fault), s.tally(Kind::Fault));
        assert_eq!(back.irq(11), s.irq(11));
    }

    #[test]
    fn garbled_lines_are_refused() {
        let line = Summary::of_log(&log_of(&sample()), &CODES).to_string();
        assert_eq!(Summary::parse("hello"), Err(ParseError::NotASummary));
        assert_eq!(
            Summary::parse("KERNEL-SHAREX window_cycles=1"),
            Err(ParseError::NotASummary)
        );
        // Cut short: kinds missing.
        let cut = &line[..line.find(" yield=").unwrap()];
        assert_eq!(Summary::parse(cut), Err(ParseError::Missing));
        // A count changed: no longer adds up.
        let bad = line.replace("irq_ack=300/1", "irq_ack=300/2");
        assert_eq!(Summary::parse(&bad), Err(ParseError::Inconsistent));
        let bad = line.replace("kernel=3400/10", "kernel=3401/10");
        assert_eq!(Summary::parse(&bad), Err(ParseError::Inconsistent));
        let bad = line.replace("full=0", "full=2");
        assert_eq!(Summary::parse(&bad), Err(ParseError::Malformed));
        let bad = line.replace("poll=100/1", "poll=100");
        assert_eq!(Summary::parse(&bad), Err(ParseError::Malformed));
        let bad = std::format!("{line} wobble=1/1");
        assert_eq!(Summary::parse(&bad), Err(ParseError::UnknownKey));
        let bad = std::format!("{line} irq11=1/1");
        assert_eq!(Summary::parse(&bad), Err(ParseError::Malformed));
        let bad = line.replace("entries=10", "entries=-10");
        assert_eq!(Summary::parse(&bad), Err(ParseError::Malformed));
    }

    #[test]
    fn merging_sums_windows_and_tallies() {
        let one = Summary::of_log(&log_of(&sample()), &CODES);
        let mut two = one.clone();
        two.merge(&one);
        assert_eq!(two.window_cycles, 18_000);
        assert_eq!(two.entries, 20);
        assert_eq!(two.tally(Kind::Interrupt).count, 6);
        assert_eq!(two.irq(11).cycles, 1_640);
        assert!((two.kernel_share() - one.kernel_share()).abs() < 1e-12);
        let mut full = Summary::new();
        full.full = true;
        two.merge(&full);
        assert!(two.full);
    }
}
