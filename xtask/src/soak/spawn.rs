//! Soak case `spawn`: a component that is never restarted ([`COMPONENT`] of
//! systems/tests/procsup.toml: the `hello` demo with restart policy `never` that exits with status 0) is spawned from
//! the shell `spawns` times, and `mem`'s free memory (in bytes) is compared before and
//! after.
//!
//! Each run should end by itself (it prints its checks and returns from `main`) with proc
//! reporting `exit: component=oneshot status=0`. If a run does not end within [`RUN`], the case
//! notes it and ends that run and every later one with `kill` instead, so the memory
//! comparison still covers the spawn/teardown path.
//!
//! tried = spawns proc accepted, survived = runs that ended and were cleaned up (by
//! themselves, or by `kill` once the case switched to it), crashed = runs that ended in a
//! fault report, hung = runs that neither ended nor could be killed (the case stops there);
//! leaked bytes = free memory before minus after.

use super::{shell, Case, CaseResult};
use crate::Result;
use std::path::Path;
use std::time::{Duration, Instant};

/// The system the component belongs to.
pub const SYSTEM: &str = "systems/tests/procsup.toml";
/// The component spawned: policy `never`, so it is not restarted behind the case's back.
pub const COMPONENT: &str = "oneshot";
/// How long a run may take from `spawn` to its own exit.
pub const RUN: Duration = Duration::from_secs(5);
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

/// Whether a row shows the component ended (not starting, running or restarting).
fn over(row: &shell::PsRow) -> bool {
    !matches!(row.state.as_str(), "starting" | "running" | "restarting")
}

/// Waits (up to [`RUN`]) for the run whose output starts at byte `from` to end.
fn wait_end(session: &crate::qemu::Session, from: usize) -> Option<End> {
    let deadline = Instant::now() + RUN;
    loop {
        if let Some(end) = ended(&session.output()[from..], COMPONENT) {
            return Some(end);
        }
        if Instant::now() >= deadline || session.stopped() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the case with `spawns` spawn/exit cycles.
pub fn run(spawns: u64) -> Result<Vec<CaseResult>> {
    let timeout = Duration::from_secs(300) + Duration::from_secs(8) * spawns as u32;
    let mut session = shell::boot_to_prompt(Path::new(SYSTEM), "soak-spawn", timeout)?;
    let mut r = CaseResult::new(Case::Spawn, COMPONENT);
    // Started at boot: its own run must be over first, by itself or else by kill.
    let mut kill_mode = false;
    if wait_end(&session, 0).is_none() {
        let (row, _) = shell::wait_row(&mut session, COMPONENT, COMMAND, |_| true)?;
        if row.as_ref().is_some_and(|row| !over(row)) {
            kill_mode = true;
            r.notes.push(format!(
                "its boot-time run never reported an exit within {} s (still `{}` in ps): every run is ended with `kill`",
                RUN.as_secs(),
                row.map_or(String::new(), |row| row.state)
            ));
            shell::command(&mut session, &format!("kill {COMPONENT}"), COMMAND)?;
        }
    }
    let clock = Instant::now();
    let free_before = shell::free_bytes(&mut session, COMMAND)?;
    let (mut natural, mut killed) = (0u64, 0u64);
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
        let end = if kill_mode {
            None
        } else {
            wait_end(&session, from)
        };
        match end {
            Some(End::Exited(0)) => {
                r.survived += 1;
                natural += 1;
            }
            Some(End::Exited(status)) => {
                if r.notes.len() < 5 {
                    r.notes.push(format!("run {i}: exit status {status}"));
                }
            }
            Some(End::Faulted) => {
                r.crashed += 1;
                let _ = shell::wait_row(&mut session, COMPONENT, RUN, over);
            }
            None => {
                if !kill_mode {
                    kill_mode = true;
                    r.notes.push(format!(
                        "run {i} did not end by itself within {} s: this and later runs are ended with `kill`",
                        RUN.as_secs()
                    ));
                }
                let reply = shell::command(&mut session, &format!("kill {COMPONENT}"), COMMAND);
                match reply {
                    Ok(reply) if reply.contains(&format!("killed {COMPONENT}")) => {
                        r.survived += 1;
                        killed += 1;
                    }
                    other => {
                        r.hung += 1;
                        r.notes
                            .push(format!("run {i}: could not be killed: {other:?}"));
                        break;
                    }
                }
            }
        }
        if (i + 1) % 100 == 0 || i + 1 == spawns {
            crate::step(&format!(
                "[{}] spawn {COMPONENT}: {}/{spawns}, {natural} exited by themselves, {killed} killed",
                super::elapsed(clock),
                i + 1,
            ));
        }
    }
    // The last run's clean-up (memory release) may still be on its way.
    let _ = shell::wait_row(&mut session, COMPONENT, RUN, over);
    match shell::free_bytes(&mut session, COMMAND) {
        Ok(free_after) => {
            r.leaked_bytes = Some(free_before as i64 - free_after as i64);
            r.notes.push(format!(
                "{natural} runs exited by themselves, {killed} were killed; free memory {free_before} bytes before, {free_after} after"
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
        assert_eq!(ended("once: done\r\n", "once"), None);
        assert_eq!(
            ended("x\r\nproc: exit: component=once status=0\r\n", "once"),
            Some(End::Exited(0))
        );
        assert_eq!(
            ended("exit: component=once status=3\n", "once"),
            Some(End::Exited(3))
        );
        assert_eq!(
            ended("fault: component=once kind=VmFault addr=0x10\n", "once"),
            Some(End::Faulted)
        );
        assert_eq!(
            ended("exit: component=once2 status=0\n", "once"),
            None,
            "another component"
        );
    }
}
