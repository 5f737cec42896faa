//! Runs a [`Command`] against a [`Backend`] and formats the answer as text (lines end with
//! `\n`; tables have a header row and columns two spaces apart).

use crate::backend::{Backend, Failure};
use crate::command::{Command, COMMANDS};
use crate::files;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;
use proto::devices::PciFunction;
use proto::proc::{CapKind, ComponentInfo, ComponentUsage, State};
use proto::Name;

/// What a command printed, and whether the system is halting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The output, each line ending with `\n`.
    pub text: String,
    /// `halt` succeeded: the shell stops reading input.
    pub halted: bool,
}

impl Outcome {
    fn text(text: String) -> Outcome {
        Outcome {
            text,
            halted: false,
        }
    }

    fn line(line: impl Into<String>) -> Outcome {
        let mut text = line.into();
        text.push('\n');
        Outcome::text(text)
    }
}

/// Runs `command`.
pub fn execute(command: Command, backend: &mut impl Backend) -> Outcome {
    match command {
        Command::Help => Outcome::text(help()),
        Command::Ps => backend
            .components()
            .map(|list| Outcome::text(ps(&list)))
            .unwrap_or_else(|e| Outcome::line(error("ps", e))),
        Command::Caps(name) => caps(name, backend),
        Command::Lookup(name) => lookup(name, backend),
        Command::Spawn(name) => match backend.spawn(name) {
            Ok(id) => Outcome::line(format!("spawned {name} (id {})", id.0)),
            Err(e) => Outcome::line(error(&format!("spawn {name}"), e)),
        },
        Command::Kill(name) => kill(name, backend),
        Command::Mem => mem(backend),
        Command::Devices => backend
            .devices()
            .map(|list| Outcome::text(devices(&list)))
            .unwrap_or_else(|e| Outcome::line(error("devices", e))),
        Command::Ls(dir) => files::ls(dir.as_deref(), backend),
        Command::Cat(file) => files::cat(&file, backend),
        Command::Write(file, text) => files::write(&file, &text, backend),
        Command::Rm(path) => files::rm(&path, backend),
        Command::Mkdir(dir) => files::mkdir(&dir, backend),
        Command::Df => files::df(backend),
        Command::Halt => match backend.halt() {
            Ok(()) => Outcome {
                text: "halting\n".into(),
                halted: true,
            },
            Err(e) => Outcome::line(error("halt", e)),
        },
    }
}

/// The `help` text.
pub fn help() -> String {
    let mut out = String::from("commands:\n");
    for (command, arg, what) in COMMANDS {
        let usage = if arg.is_empty() {
            String::from(*command)
        } else {
            format!("{command} {arg}")
        };
        let _ = writeln!(out, "  {usage:<18} {what}");
    }
    out.push_str("keys: backspace erases, Ctrl-U clears the line, Ctrl-C abandons it\n");
    out
}

/// The one error line for `what` failing with `failure`.
pub fn error(what: &str, failure: Failure) -> String {
    use proto::{devices::Error as D, memory::Error as M, naming::Error as N, proc::Error as P};
    let why = match failure {
        Failure::Unavailable(service) => {
            return format!("error: service {service} is not available")
        }
        Failure::NotSupported(why) => why,
        Failure::Files(e) => return format!("error: {what}: {e}"),
        Failure::Proc(P::NotFound) => "no such component",
        Failure::Proc(P::Denied) => "proc does not allow it",
        Failure::Proc(P::AlreadyRunning) => "already running",
        Failure::Proc(P::StillRunning) => "still running",
        Failure::Proc(P::NotRunning) => "not running",
        Failure::Proc(P::NoEntry) => "no such entry",
        Failure::Proc(P::OutOfMemory) => "memory cannot provide its budget",
        Failure::Naming(N::NotFound) => "not found",
        Failure::Naming(N::Denied) => "denied",
        Failure::Naming(N::Exhausted) => "naming has no room for another capability",
        Failure::Memory(M::Denied) => "denied (only proc and the component itself may ask)",
        Failure::Memory(M::NotFound) => "no such component",
        Failure::Memory(M::OverBudget) => "over budget",
        Failure::Memory(M::OutOfMemory) => "out of memory",
        Failure::Memory(M::InvalidSize | M::OutOfRange) => "out of range",
        Failure::Devices(D::NotFound) => "no such device",
        Failure::Devices(D::NoEntry) => "no such entry",
        Failure::Devices(D::NotClaimed | D::OutOfRange | D::NoIrq) => "the device cannot do this",
        Failure::Devices(D::OutOfMemory) => "out of memory",
        Failure::Devices(D::InvalidSize) => "out of range",
        Failure::Proc(P::Malformed)
        | Failure::Naming(N::Malformed)
        | Failure::Memory(M::Malformed)
        | Failure::Devices(D::Malformed) => "the service did not understand the request",
        Failure::Proc(P::ServerRestarted)
        | Failure::Naming(N::ServerRestarted)
        | Failure::Memory(M::ServerRestarted)
        | Failure::Devices(D::ServerRestarted) => "the service restarted: try again",
        Failure::Proc(P::InvalidReply)
        | Failure::Naming(N::InvalidReply)
        | Failure::Memory(M::InvalidReply)
        | Failure::Devices(D::InvalidReply) => "the service's reply did not decode",
    };
    format!("error: {what}: {why}")
}

/// A text table: a header row, then rows; columns left-aligned, two spaces apart, no
/// trailing spaces.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: alloc::vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as lines.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let width = |c: usize| {
            self.rows
                .iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..columns).map(width).collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (cell, w) in row.iter().zip(&widths) {
                let _ = write!(line, "{cell:<w$}  ");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn state(s: State) -> &'static str {
    match s {
        State::Idle => "idle",
        State::Running => "running",
        State::Restarting => "restarting",
        State::Exited => "exited",
        State::Failed => "failed",
    }
}

/// The `ps` table.
pub fn ps(list: &[ComponentInfo]) -> String {
    let mut t = Table::new(&["ID", "NAME", "STATE", "RESTARTS"]);
    for c in list {
        t.row(alloc::vec![
            c.id.0.to_string(),
            c.name.to_string(),
            state(c.state).into(),
            c.restarts.to_string(),
        ]);
    }
    t.render()
}

/// The component named `name`, from proc's list.
fn find(what: &str, name: Name, backend: &mut impl Backend) -> Result<ComponentInfo, String> {
    match backend.components() {
        Ok(list) => list
            .into_iter()
            .find(|c| c.name == name)
            .ok_or(format!("error: no component named '{name}' (see 'ps')")),
        Err(e) => Err(error(what, e)),
    }
}

fn kind(k: CapKind) -> &'static str {
    match k {
        CapKind::Endpoint => "endpoint",
        CapKind::Notification => "notification",
        CapKind::Untyped => "untyped",
        CapKind::Frame => "frame",
        CapKind::IrqHandler => "irq-handler",
        CapKind::IoPort => "io-port",
        CapKind::Tcb => "tcb",
        CapKind::CNode => "cnode",
        CapKind::VSpace => "vspace",
        CapKind::Other => "other",
    }
}

/// Rights as `rwg`, `-` for each one missing (bit 0 write, 1 read, 2 grant).
fn rights(bits: u8) -> String {
    let flag = |bit: u8, c: char| if bits & (1 << bit) != 0 { c } else { '-' };
    [flag(1, 'r'), flag(0, 'w'), flag(2, 'g')].iter().collect()
}

fn caps(name: Name, backend: &mut impl Backend) -> Outcome {
    let what = format!("caps {name}");
    let component = match find(&what, name, backend) {
        Ok(c) => c,
        Err(line) => return Outcome::line(line),
    };
    let list = match backend.caps(component.id) {
        Ok(list) => list,
        Err(e) => return Outcome::line(error(&what, e)),
    };
    if list.is_empty() {
        return Outcome::line(format!(
            "{name} (id {}): proc lists no capabilities",
            component.id.0
        ));
    }
    let mut t = Table::new(&["SLOT", "KIND", "RIGHTS", "BADGE", "GRANT"]);
    for c in &list {
        t.row(alloc::vec![
            c.slot.to_string(),
            kind(c.kind).into(),
            rights(c.rights),
            if c.badge == 0 {
                "-".into()
            } else {
                c.badge.to_string()
            },
            c.grant.map_or("-".into(), |g| g.to_string()),
        ]);
    }
    let plural = if list.len() == 1 { "y" } else { "ies" };
    let mut text = format!(
        "{name} (id {}) holds {} capabilit{plural}\n",
        component.id.0,
        list.len()
    );
    text.push_str(&t.render());
    Outcome::text(text)
}

fn lookup(name: Name, backend: &mut impl Backend) -> Outcome {
    match backend.lookup(name) {
        Ok(generation) => Outcome::line(format!(
            "{name}: found (generation {generation}): the shell is routed to it"
        )),
        Err(Failure::Naming(proto::naming::Error::NotFound)) => Outcome::line(format!(
            "{name}: not found: no such service, not running yet, or the shell is not routed \
             to it (naming does not say which)"
        )),
        Err(e) => Outcome::line(error(&format!("lookup {name}"), e)),
    }
}

fn kill(name: Name, backend: &mut impl Backend) -> Outcome {
    let what = format!("kill {name}");
    let component = match find(&what, name, backend) {
        Ok(c) => c,
        Err(line) => return Outcome::line(line),
    };
    match backend.kill(component.id) {
        Ok(()) => Outcome::line(format!(
            "killed {name} (id {}): 'ps' shows what proc does next",
            component.id.0
        )),
        Err(e) => Outcome::line(error(&what, e)),
    }
}

/// `bytes` in the largest unit it reaches: `512 MiB`, `1.5 MiB`, `4 KiB`, `100 B`; one
/// decimal (rounded down) when not whole.
pub fn size(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("GiB", 30), ("MiB", 20), ("KiB", 10), ("B", 0)];
    let (unit, shift) = UNITS
        .iter()
        .copied()
        .find(|&(_, s)| bytes >> s > 0)
        .unwrap_or(("B", 0));
    let whole = bytes >> shift;
    let tenths = ((u128::from(bytes) - (u128::from(whole) << shift)) * 10) >> shift;
    if tenths == 0 {
        format!("{whole} {unit}")
    } else {
        format!("{whole}.{tenths} {unit}")
    }
}

/// The `mem` table: one row per component, as proc's `usage` answered; `-` where memory did
/// not answer proc, with a footnote saying so.
pub fn mem_table(rows: &[ComponentUsage]) -> String {
    let mut t = Table::new(&["NAME", "STATE", "USED", "BUDGET", "HEAP", "STACK"]);
    for r in rows {
        let used = if r.measured { size(r.used) } else { "-".into() };
        t.row(alloc::vec![
            r.name.to_string(),
            state(r.state).into(),
            used,
            size(r.budget),
            size(r.heap),
            size(r.stack),
        ]);
    }
    let mut text = t.render();
    if rows.iter().any(|r| !r.measured) {
        text.push_str("-: memory did not tell proc\n");
    }
    text
}

/// `mem`: the system's free memory (memory `usage`, the shell's own question), then every
/// component's row (proc `usage`). Either part failing is one error line; without proc's
/// rows the shell's own use is shown.
fn mem(backend: &mut impl Backend) -> Outcome {
    let own = backend.usage();
    let mut text = match own {
        Ok(u) => format!(
            "free memory: {} ({} bytes)\n",
            size(u.free_total),
            u.free_total
        ),
        Err(e) => format!("{}\n", error("free memory", e)),
    };
    match backend.component_usage() {
        Ok(rows) => text.push_str(&mem_table(&rows)),
        Err(e) => {
            if let Ok(u) = own {
                let _ = writeln!(
                    text,
                    "this shell: {} used of {}",
                    size(u.used),
                    size(u.budget)
                );
            }
            text.push_str(&error("per-component usage", e));
            text.push('\n');
        }
    }
    Outcome::text(text)
}

/// A PCI base class in words.
fn class_name(class: u32) -> &'static str {
    match class >> 16 {
        0x00 => "unclassified",
        0x01 => "storage",
        0x02 => "network",
        0x03 => "display",
        0x04 => "multimedia",
        0x05 => "memory",
        0x06 => "bridge",
        0x07 => "communication",
        0x08 => "system",
        0x09 => "input",
        0x0c => "serial bus",
        _ => "other",
    }
}

/// The `devices` table.
pub fn devices(list: &[PciFunction]) -> String {
    if list.is_empty() {
        return "no PCI functions\n".into();
    }
    let mut t = Table::new(&["BUS:DEV.FN", "VENDOR:DEVICE", "CLASS", "KIND"]);
    for f in list {
        t.row(alloc::vec![
            format!("{:02x}:{:02x}.{:x}", f.bus, f.dev, f.func),
            format!("{:04x}:{:04x}", f.vendor, f.device),
            format!("{:06x}", f.class),
            class_name(f.class).into(),
        ]);
    }
    t.render()
}
