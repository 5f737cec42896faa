//! Soak case `ipc`: random and malformed IPC messages to every service, by the `ipcfuzz`
//! component (apps/ipcfuzz, the same generator and reply rule as system-tests/tests/ipc_fuzz.rs),
//! booted in a copy of systems/tests/ipcfuzz.toml whose args ask for `count` messages per
//! service. Per service: tried = messages sent, survived = replies that followed the rule
//! (`Malformed` for undecodable requests, else `Ok` or a declared error), crashed = fault
//! reports of that service, hung = 1 if ipcfuzz never finished with it.

use super::{shell, Case, CaseResult};
use crate::qemu::{Boot, Session};
use crate::Result;
use kernel_support::Variant;
use std::time::{Duration, Instant};

/// The description the case starts from.
pub const BASE: &str = "systems/tests/ipcfuzz.toml";
/// The name of the derived system (its image must not replace the tests' one).
pub const SYSTEM: &str = "soak-ipcfuzz";
/// The services ipcfuzz talks to, in its order.
pub const SERVICES: [&str; 5] = ["naming", "proc", "memory", "devices", "serial"];
/// The seed (the tests' one, so a failure here reproduces there with a larger count).
pub const SEED: u64 = 2_123_752_352;
/// Without a new line of output for this long, ipcfuzz is taken to hang.
pub const STALL: Duration = Duration::from_secs(180);

/// `base` (the text of [`BASE`]) with the system renamed to [`SYSTEM`] and `seed` and
/// `count` set in the args of the component that runs the `ipcfuzz` binary (edited as data,
/// [`crate::derive::Description`]).
pub fn derive(base: &str, seed: u64, count: u64) -> Result<String> {
    let mut description = crate::derive::Description::parse(base, BASE)?;
    let fuzzer = description
        .system()
        .components
        .iter()
        .find(|c| c.binary == "ipcfuzz")
        .map(|c| c.name.clone())
        .ok_or_else(|| format!("{BASE}: no component runs the ipcfuzz binary"))?;
    description.rename(SYSTEM)?;
    let (seed, count) = (seed.to_string(), count.to_string());
    description.set_args(&fuzzer, &[("seed", &seed), ("count", &count)])?;
    description.finish()
}

/// What ipcfuzz printed about one service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Messages sent (`sent=`), if it finished the service.
    pub sent: Option<u64>,
    /// Replies that broke the rule (`bad=`).
    pub bad: u64,
    /// Error replies (`errors=`).
    pub errors: u64,
    /// The highest progress count seen.
    pub progress: u64,
    /// The text after `CHECK ipcfuzz-NAME: `.
    pub check: Option<String>,
}

/// What ipcfuzz printed about `service` in `output`.
pub fn parse(output: &str, service: &str) -> Seen {
    let mut seen = Seen::default();
    let summary = format!("ipcfuzz: {service} sent=");
    let progress = format!("ipcfuzz: {service} progress ");
    let check = format!("CHECK ipcfuzz-{service}: ");
    let number = |text: &str, key: &str| -> Option<u64> {
        let rest = &text[text.find(key)? + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
    };
    for line in output.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(i) = line.find(&summary) {
            let text = &line[i..];
            seen.sent = number(text, "sent=");
            seen.bad = number(text, "bad=").unwrap_or(0);
            seen.errors = number(text, "errors=").unwrap_or(0);
        } else if let Some(i) = line.find(&progress) {
            if let Some(n) = number(&line[i + progress.len()..], "") {
                seen.progress = seen.progress.max(n);
            }
        } else if let Some(i) = line.find(&check) {
            seen.check = Some(line[i + check.len()..].to_string());
        }
    }
    seen
}

/// The result for one service from what ipcfuzz printed and the fault reports.
pub fn result(service: &str, seen: &Seen, faults: usize, count: u64) -> CaseResult {
    let mut r = CaseResult::new(Case::Ipc, service);
    match seen.sent {
        Some(sent) => {
            r.tried = sent;
            r.survived = sent.saturating_sub(seen.bad);
        }
        None => {
            // Never finished: what the progress lines showed was sent, and it hung.
            r.tried = seen.progress;
            r.survived = seen.progress;
            r.hung = 1;
            r.notes.push(format!(
                "ipcfuzz did not finish this service ({} of {count} sent by its last progress line)",
                seen.progress
            ));
        }
    }
    r.crashed = faults as u64;
    if let Some(check) = &seen.check {
        if !check.starts_with("PASS") {
            r.notes.push(check.clone());
        }
    }
    r
}

/// Runs the case with `count` messages per service.
pub fn run(count: u64) -> Result<Vec<CaseResult>> {
    let base_path = crate::workspace_root().join(BASE);
    let base =
        std::fs::read_to_string(&base_path).map_err(|e| format!("{}: {e}", base_path.display()))?;
    let dir = crate::target_dir().join("systems");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{SYSTEM}.toml"));
    std::fs::write(&path, derive(&base, SEED, count)?)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let image = crate::build::image(&Variant::default(), Some(&path))?;
    let mut boot = Boot::new(
        image.kernel.elf32.clone(),
        image.root.clone(),
        crate::target_dir().join("logs/soak-ipc.log"),
    );
    // Bounded by the stall check below; this is the outer limit.
    boot.timeout = Duration::from_secs(600) + Duration::from_millis(count * 5);
    let clock = Instant::now();
    let mut session = Session::start(&boot, false)?;
    crate::step(&format!(
        "ipcfuzz: {count} messages to each of {} (log: {})",
        SERVICES.join(", "),
        session.log_path().display()
    ));
    let mut finished_at = Vec::new();
    let finished = follow(&session, clock, &mut finished_at);
    let output = session.output();
    let took = clock.elapsed().as_secs_f64();
    let mut previous = 0.0;
    let mut results: Vec<CaseResult> = SERVICES
        .iter()
        .map(|s| {
            let mut r = result(s, &parse(&output, s), shell::faults_of(&output, s), count);
            // From the previous service's end (or the boot) to this one's, to the 250 ms the
            // output is polled at; the boot counts to the first.
            let end = finished_at
                .iter()
                .find(|(name, _)| name == s)
                .map_or(took, |(_, at)| *at);
            r.duration_s = (end - previous).max(0.0);
            previous = end;
            r
        })
        .collect();
    // A panic line names no component: reported once, for the whole case.
    let panics = shell::panics(&output);
    if panics > 0 {
        results[0].notes.push(format!(
            "{panics} panic line(s) in the log (not attributed to a service)"
        ));
    }
    if !finished {
        results[0]
            .notes
            .push("ipcfuzz did not print `ipcfuzz: done`".to_string());
    }
    // Afterwards every service must still answer the shell.
    if finished {
        let wait = Duration::from_secs(60);
        // Typed before the shell's first prompt, a command would be lost (issue 9).
        let prompt = session.wait_for(shell::PROMPT, wait).map(|_| ());
        match prompt.and_then(|()| shell::ps(&mut session, wait)) {
            Ok(rows) => {
                for r in &mut results {
                    let row = rows.iter().find(|row| row.name == r.target);
                    if row.is_none_or(|row| row.state != "running") {
                        r.notes.push(format!(
                            "not running afterwards: {:?}",
                            row.map(|row| row.state.as_str())
                        ));
                    }
                }
            }
            Err(e) => results[0]
                .notes
                .push(format!("the shell did not answer `ps` afterwards: {e}")),
        }
        let _ = session.send("halt\r");
    }
    Ok(results)
}

/// Waits for `ipcfuzz: done`, printing ipcfuzz's progress lines as they come and noting in
/// `finished_at` when (seconds since `clock`) each service's summary line was seen; `false`
/// when it stalls for [`STALL`] or the system stops first.
fn follow(session: &Session, clock: Instant, finished_at: &mut Vec<(String, f64)>) -> bool {
    let mut shown = 0;
    let mut last_len = 0;
    let mut last_change = Instant::now();
    loop {
        let done = session
            .wait_for("ipcfuzz: done", Duration::from_millis(250))
            .is_ok();
        let out = session.output();
        // Only whole lines; the rest waits for its end.
        let end = out.rfind('\n').map_or(shown, |i| i + 1).max(shown);
        for line in out[shown..end].lines() {
            if line.contains("ipcfuzz: ") && (line.contains("progress") || line.contains("sent=")) {
                crate::step(&format!(
                    "[{}] {}",
                    super::elapsed(clock),
                    line.trim_end_matches('\r')
                ));
            }
            if let Some(service) = SERVICES
                .iter()
                .find(|s| line.contains(&format!("ipcfuzz: {s} sent=")))
            {
                finished_at.push((service.to_string(), clock.elapsed().as_secs_f64()));
            }
        }
        shown = end;
        if done {
            return true;
        }
        if out.len() != last_len {
            last_len = out.len();
            last_change = Instant::now();
        } else if last_change.elapsed() >= STALL {
            return false;
        }
        if session.stopped() {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_description_renames_the_system_and_sets_the_count() {
        let base = std::fs::read_to_string(crate::workspace_root().join(BASE)).unwrap();
        let text = derive(&base, 9, 1234).unwrap();
        assert!(text.contains("name = \"soak-ipcfuzz\""), "{text}");
        assert!(
            text.contains("args = { seed = \"9\", count = \"1234\", planted = \""),
            "{text}"
        );
        assert_eq!(
            text.matches("name = \"ipcfuzz\"").count(),
            1,
            "the component"
        );
        let path = std::env::temp_dir().join(format!("soak-ipc-{}.toml", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let system = sysdesc_toml::load(&path).expect("a valid description");
        let _ = std::fs::remove_file(&path);
        assert_eq!(system.name, SYSTEM);
        assert!(derive("[system]\nname = \"x\"\n", 1, 1).is_err());
    }

    #[test]
    fn ipcfuzz_output_is_read_per_service() {
        let out = "ipcfuzz: seed 0x1, 100 messages per service\r\n\
                   ipcfuzz: naming progress 10/100\r\n\
                   ipcfuzz: naming progress 90/100\r\n\
                   ipcfuzz: naming sent=100 bad=2 errors=80\r\n\
                   CHECK ipcfuzz-naming: FAIL (2 of 100 replies broke the rule; first: m)\r\n\
                   ipcfuzz: proc progress 30/100\r\n";
        let naming = parse(out, "naming");
        assert_eq!(naming.sent, Some(100));
        assert_eq!((naming.bad, naming.errors, naming.progress), (2, 80, 90));
        let r = result("naming", &naming, 0, 100);
        assert_eq!((r.tried, r.survived, r.crashed, r.hung), (100, 98, 0, 0));
        assert!(r.notes[0].starts_with("FAIL (2 of 100"), "{:?}", r.notes);

        let proc = parse(out, "proc");
        assert_eq!(proc.sent, None);
        let r = result("proc", &proc, 1, 100);
        assert_eq!((r.tried, r.survived, r.crashed, r.hung), (30, 30, 1, 1));

        let memory = parse(out, "memory");
        assert_eq!(memory, Seen::default());
    }
}
