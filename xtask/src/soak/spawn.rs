//! Soak case `spawn`: a component of the default system that ends by itself ([`COMPONENT`],
//! which prints its checks and exits) is spawned from the shell `spawns` times, each run
//! awaited to its exit, and `mem`'s free memory (in bytes) is compared before and after.
//!
//! tried = spawns proc accepted, survived = runs that ended with `exit: ... status=0`,
//! crashed = runs that ended in a fault report instead, hung = runs that did not end within
//! [`RUN`] (the case stops there); leaked bytes = free memory before minus after.

use super::{shell, Case, CaseResult};
use crate::Result;
use std::path::Path;
use std::time::{Duration, Instant};

/// The system the component belongs to.
pub const SYSTEM: &str = "systems/default.toml";
/// The component spawned: the default system's demo, which exits after its checks.
pub const COMPONENT: &str = "hello";
/// How long one run may take from `spawn` to its exit.
pub const RUN: Duration = Duration::from_secs(30);
/// How long one shell command may take.
pub const COMMAND: Duration = Duration::from_secs(30);

/// How one run ended, from the output after its `spawn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// `exit: component=NAME status=S`.
    Exited(u32),
    /// `fault: component=NAME ...`.
    Faulted,
}

/// How the run of `name` ended in `output` (the output after its `spawn`), if it did.
pub fn ended(output: &str, name: &str) -> Option<End> {
    let exit = format!("exit: component={name} status=");
    let fault = format!("fault: component={name} ");
    output.lines().find_map(|line| {
        if let Some(i) = line.find(&exit) {
            let status: String = line[i + exit.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            Some(End::Exited(status.parse().unwrap_or(u32::MAX)))
        } else if line.contains(&fault) {
            Some(End::Faulted)
        } else {
            None
        }
    })
}

/// Runs the case with `spawns` spawn/exit cycles.
pub fn run(spawns: u64) -> Result<Vec<CaseResult>> {
    let timeout = Duration::from_secs(300) + Duration::from_secs(5) * spawns as u32;
    let mut session = shell::boot_to_prompt(Path::new(SYSTEM), "soak-spawn", timeout)?;
    let mut r = CaseResult::new(Case::Spawn, COMPONENT);
    // The boot's own run must be over first.
    let (row, done) = shell::wait_row(&mut session, COMPONENT, RUN, |row| {
        row.state != "running" && row.state != "starting"
    })?;
    if !done {
        r.skipped = Some(format!("{COMPONENT} did not end after boot: {row:?}"));
        return Ok(vec![r]);
    }
    let clock = Instant::now();
    let free_before = shell::free_bytes(&mut session, COMMAND)?;
    for i in 0..spawns {
        let from = session.output().len();
        let reply = match shell::command(&mut session, &format!("spawn {COMPONENT}"), COMMAND) {
            Ok(reply) => reply,
            Err(e) => {
                r.notes.push(format!("spawn {i}: no prompt: {e}"));
                break;
            }
        };
        if !reply.contains(&format!("spawned {COMPONENT}")) {
            r.notes
                .push(format!("spawn {i}: refused: {}", reply.trim()));
            break;
        }
        r.tried += 1;
        let deadline = Instant::now() + RUN;
        let end = loop {
            if let Some(end) = ended(&session.output()[from..], COMPONENT) {
                break Some(end);
            }
            if Instant::now() >= deadline || session.stopped() {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        match end {
            Some(End::Exited(0)) => r.survived += 1,
            Some(End::Exited(status)) => {
                if r.notes.len() < 5 {
                    r.notes.push(format!("run {i}: exit status {status}"));
                }
            }
            Some(End::Faulted) => {
                r.crashed += 1;
                // A faulted run may be restarted by its policy: let that settle.
                let _ = shell::wait_row(&mut session, COMPONENT, RUN, |row| {
                    row.state != "running" && row.state != "starting" && row.state != "restarting"
                });
            }
            None => {
                r.hung += 1;
                r.notes
                    .push(format!("run {i}: no exit within {} s", RUN.as_secs()));
                break;
            }
        }
        if (i + 1) % 100 == 0 || i + 1 == spawns {
            crate::step(&format!(
                "[{}] spawn {COMPONENT}: {}/{spawns}, {} exited cleanly",
                super::elapsed(clock),
                i + 1,
                r.survived
            ));
        }
    }
    // The last exit's clean-up (memory release) may still be on its way: wait for the
    // row to leave running.
    let _ = shell::wait_row(&mut session, COMPONENT, RUN, |row| {
        row.state != "running" && row.state != "starting"
    });
    match shell::free_bytes(&mut session, COMMAND) {
        Ok(free_after) => {
            r.leaked_bytes = Some(free_before as i64 - free_after as i64);
            r.notes.push(format!(
                "free memory {free_before} bytes before, {free_after} after"
            ));
        }
        Err(e) => r.notes.push(format!("no `mem` afterwards: {e}")),
    }
    r.duration_s = clock.elapsed().as_secs_f64();
    let _ = session.send("halt\r");
    Ok(vec![r])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_ends_in_an_exit_or_a_fault() {
        assert_eq!(ended("hello: done\r\n", "hello"), None);
        assert_eq!(
            ended("x\r\nproc: exit: component=hello status=0\r\n", "hello"),
            Some(End::Exited(0))
        );
        assert_eq!(
            ended("exit: component=hello status=3\n", "hello"),
            Some(End::Exited(3))
        );
        assert_eq!(
            ended("fault: component=hello kind=VmFault addr=0x10\n", "hello"),
            Some(End::Faulted)
        );
        assert_eq!(
            ended("exit: component=hello2 status=0\n", "hello"),
            None,
            "another component"
        );
    }
}
