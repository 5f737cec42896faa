//! Soak case `kill`: every restartable component of the default system that is running
//! after boot (policy `always`, not fundamental) is killed `kills` times from the shell,
//! and after each kill the client side must be served again: the shell types `ps` (through
//! serial, to proc) until the component is running with one more restart.
//!
//! Per component: tried = kills proc accepted, survived = kills after which it came back
//! and `ps` was answered, crashed = kills after which it did not come back (stopped,
//! faulted; the component's remaining kills are not tried), hung = kills after which the
//! shell stopped answering (the case ends there).

use super::{shell, Case, CaseResult};
use crate::Result;
use std::path::Path;
use std::time::{Duration, Instant};

/// The system whose components are killed.
pub const SYSTEM: &str = "systems/default.toml";
/// How long a component may take to come back (its back-off plus start-up) before it
/// counts as not restarted.
pub const COME_BACK: Duration = Duration::from_secs(30);
/// How long one shell command may take.
pub const COMMAND: Duration = Duration::from_secs(30);

/// The components of `system` that proc restarts (policy `always`, not fundamental), in
/// description order.
pub fn restartable(system: &sysdesc::System) -> Vec<String> {
    system
        .components
        .iter()
        .filter(|c| !c.fundamental && matches!(c.restart, sysdesc::RestartPolicy::Always { .. }))
        .map(|c| c.name.clone())
        .collect()
}

/// Runs the case: `kills` kills of each restartable, running component.
pub fn run(kills: u64) -> Result<Vec<CaseResult>> {
    let system = crate::build::load_system(&crate::workspace_root().join(SYSTEM))?;
    let candidates = restartable(&system);
    let timeout = Duration::from_secs(300) + COME_BACK * 2 * (kills as u32) * 2;
    let mut session = shell::boot_to_prompt(Path::new(SYSTEM), "soak-kill", timeout)?;
    let rows = shell::ps(&mut session, COMMAND)?;
    let mut results = Vec::new();
    let mut shell_dead = false;
    for name in candidates {
        let mut r = CaseResult::new(Case::Kill, &name);
        let running = rows
            .iter()
            .any(|row| row.name == name && row.state == "running");
        if !running {
            let state = rows
                .iter()
                .find(|row| row.name == name)
                .map_or("absent", |row| row.state.as_str());
            r.skipped = Some(format!("not running after boot ({state}): nothing to kill"));
            results.push(r);
            continue;
        }
        if shell_dead {
            r.skipped = Some("the shell stopped answering earlier in this case".into());
            results.push(r);
            continue;
        }
        let clock = Instant::now();
        let faults_before = shell::faults_of(&session.output(), &name);
        for i in 0..kills {
            let before = match shell::ps(&mut session, COMMAND) {
                Ok(rows) => rows.into_iter().find(|row| row.name == name),
                Err(e) => {
                    r.notes.push(format!("kill {i}: `ps` before: {e}"));
                    shell_dead = true;
                    break;
                }
            };
            let Some(before) = before else {
                r.notes.push(format!("kill {i}: {name} missing from ps"));
                break;
            };
            let reply = match shell::command(&mut session, &format!("kill {name}"), COMMAND) {
                Ok(reply) => reply,
                Err(e) => {
                    r.tried += 1;
                    r.hung += 1;
                    r.notes
                        .push(format!("kill {i}: no prompt after `kill {name}`: {e}"));
                    shell_dead = true;
                    break;
                }
            };
            if reply.contains("error") {
                r.notes.push(format!("kill {i}: refused: {}", reply.trim()));
                break;
            }
            r.tried += 1;
            let back = shell::wait_row(&mut session, &name, COME_BACK, |row| {
                row.state == "running" && row.restarts > before.restarts
            });
            match back {
                Ok((_, true)) => r.survived += 1,
                Ok((row, false)) => {
                    r.crashed += 1;
                    r.notes.push(format!(
                        "kill {i}: not back within {} s: {:?}",
                        COME_BACK.as_secs(),
                        row.map(|row| row.state)
                    ));
                    break;
                }
                Err(e) => {
                    r.hung += 1;
                    r.notes
                        .push(format!("kill {i}: the shell stopped answering: {e}"));
                    shell_dead = true;
                    break;
                }
            }
            if (i + 1) % 10 == 0 || i + 1 == kills {
                crate::step(&format!(
                    "[{}] kill {name}: {}/{kills}, {} came back",
                    super::elapsed(clock),
                    i + 1,
                    r.survived
                ));
            }
        }
        let faults = shell::faults_of(&session.output(), &name) - faults_before;
        if faults > 0 {
            r.notes.push(format!("{faults} fault reports while killed"));
        }
        r.duration_s = clock.elapsed().as_secs_f64();
        results.push(r);
    }
    let panics = shell::panics(&session.output());
    if let (Some(first), true) = (results.first_mut(), panics > 0) {
        first.notes.push(format!(
            "{panics} panic line(s) in the log (not attributed to a component)"
        ));
    }
    if !shell_dead {
        let _ = session.send("halt\r");
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_systems_restartable_components() {
        let system =
            crate::build::load_system(&crate::workspace_root().join(SYSTEM)).expect("valid");
        let names = restartable(&system);
        assert!(names.contains(&"serial".to_string()), "{names:?}");
        assert!(names.contains(&"shell".to_string()), "{names:?}");
        for fundamental in ["naming", "proc", "memory", "devices"] {
            assert!(!names.contains(&fundamental.to_string()), "{names:?}");
        }
    }
}
