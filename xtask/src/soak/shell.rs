//! Driving the shell of a booted system for the soak cases, and reading what it prints
//! (`ps`, `mem`); the parsers are pure and host-tested.

use crate::qemu::{Boot, Session};
use crate::Result;
use kernel_support::Variant;
use std::path::Path;
use std::time::{Duration, Instant};

/// The shell's prompt.
pub const PROMPT: &str = "tessera> ";

/// One row of `ps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsRow {
    /// The component's name.
    pub name: String,
    /// Its state as printed (`running`, `restarting`, `stopped`, `exited 0`, ...).
    pub state: String,
    /// How many times proc restarted it.
    pub restarts: u64,
}

/// The rows of `ps` output (`ID NAME STATE RESTARTS`); lines that are no row are ignored.
pub fn parse_ps(text: &str) -> Vec<PsRow> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() < 4 || words[0].parse::<u64>().is_err() {
                return None;
            }
            let restarts = words[words.len() - 1].parse().ok()?;
            Some(PsRow {
                name: words[1].to_string(),
                state: words[2..words.len() - 1].join(" "),
                restarts,
            })
        })
        .collect()
}

/// The exact free memory in bytes from `mem`'s `free memory: 488.2 MiB (N bytes)` line.
pub fn parse_free_bytes(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("free memory:"))?;
    let inner = line.split_once('(')?.1.split_once(" bytes)")?.0;
    inner.trim().parse().ok()
}

/// Builds the image of the description at `system` (relative to the workspace root) with
/// the default kernel, boots it with `timeout` for the whole session, logs to
/// `target/logs/<log>.log`, and waits for the shell's prompt.
pub fn boot_to_prompt(system: &Path, log: &str, timeout: Duration) -> Result<Session> {
    let path = crate::workspace_root().join(system);
    let image = crate::build::image(&Variant::default(), Some(&path))?;
    let mut boot = Boot::new(
        image.kernel.elf32.clone(),
        image.root.clone(),
        crate::target_dir().join("logs").join(format!("{log}.log")),
    );
    boot.timeout = timeout;
    let session = Session::start(&boot, false)?;
    session.wait_for(PROMPT, Duration::from_secs(120))?;
    Ok(session)
}

/// Types `line` and returns what the shell printed up to its next prompt (line endings
/// normalised to `\n`), or an error after `wait`.
pub fn command(session: &mut Session, line: &str, wait: Duration) -> Result<String> {
    let before = session.output().len();
    session.send(&format!("{line}\r"))?;
    let end = session.wait_for_from(PROMPT, before, wait)?;
    let out = session.output();
    Ok(out[before..end - PROMPT.len()]
        .replace("\r\n", "\n")
        .replace('\r', ""))
}

/// `ps` as rows.
pub fn ps(session: &mut Session, wait: Duration) -> Result<Vec<PsRow>> {
    command(session, "ps", wait).map(|t| parse_ps(&t))
}

/// `mem`'s free memory in bytes.
pub fn free_bytes(session: &mut Session, wait: Duration) -> Result<u64> {
    let text = command(session, "mem", wait)?;
    parse_free_bytes(&text).ok_or_else(|| format!("no free memory line in `mem`: {text:?}"))
}

/// Polls `ps` (every 100 ms, until `wait` has passed) until `done` holds for `name`'s row;
/// returns the last row seen and whether `done` held.
pub fn wait_row(
    session: &mut Session,
    name: &str,
    wait: Duration,
    done: impl Fn(&PsRow) -> bool,
) -> Result<(Option<PsRow>, bool)> {
    let deadline = Instant::now() + wait;
    loop {
        let row = ps(session, wait)?.into_iter().find(|r| r.name == name);
        if row.as_ref().is_some_and(&done) {
            return Ok((row, true));
        }
        if Instant::now() >= deadline {
            return Ok((row, false));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Fault report lines in `output` for component `name` (`fault: component=NAME ...`).
pub fn faults_of(output: &str, name: &str) -> usize {
    let needle = format!("fault: component={name} ");
    output.lines().filter(|l| l.contains(&needle)).count()
}

/// Panic lines in `output` (a component's panic handler prints `panicked at` or
/// `panic at`).
pub fn panics(output: &str) -> usize {
    output
        .lines()
        .filter(|l| l.contains("panicked at") || l.contains("panic at"))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_are_parsed_with_multiword_states() {
        let rows = parse_ps(
            "ID  NAME     STATE       RESTARTS\n\
             0   naming   running     0\n\
             4   serial   running     1\n\
             6   hello    exited 0    2\n\
             error: something\n",
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].name, "serial");
        assert_eq!(rows[1].state, "running");
        assert_eq!(rows[1].restarts, 1);
        assert_eq!(rows[2].state, "exited 0");
        assert_eq!(rows[2].restarts, 2);
    }

    #[test]
    fn free_memory_in_bytes() {
        assert_eq!(
            parse_free_bytes("free memory: 488.2 MiB (512012288 bytes)\nNAME USED\n"),
            Some(512_012_288)
        );
        assert_eq!(parse_free_bytes("free memory: 488.2 MiB\n"), None);
        assert_eq!(parse_free_bytes("error: no memory\n"), None);
    }

    #[test]
    fn faults_and_panics_are_counted_by_component() {
        let out = "fault: component=serial kind=VmFault addr=0x10\n\
                   fault: component=serial2 kind=VmFault addr=0x10\n\
                   iperf: panic at alloc.rs: memory allocation failed\n\
                   x panicked at y\n";
        assert_eq!(faults_of(out, "serial"), 1);
        assert_eq!(faults_of(out, "shell"), 0);
        assert_eq!(panics(out), 2);
    }
}
