//! `cargo xtask soak`: how much abuse Tessera survives today, measured, not asserted.
//!
//! Six cases, each in its own file, each reporting what it tried and what survived:
//! - [`ipc`]: random and malformed IPC to every service (the `ipcfuzz` component);
//! - [`kill`]: every restartable, running component of the default system killed over and
//!   over while a client (the shell, and we through it) keeps using it;
//! - [`spawn`]: a component spawned and left to exit over and over, free memory compared;
//! - [`iperf_fuzz`]: fuzzed iperf3 control-channel inputs against the hosted iperf server,
//!   then a normal test;
//! - [`flood`]: idle TCP connections against the seL4 iperf unikernel, then a normal test;
//! - [`files`]: `fs` and `blk` killed under two writers, then the volume checked on the host.
//!
//! Nothing here is a pass/fail verdict: a case that sees a crash records it and goes on (or
//! stops that case and says why). The pure parts (profiles, [`CaseResult`], the JSON and the
//! table, the shell output parsers, the control-channel input generator) are host-tested.
//! Results go to `target/soak/soak.json` ([`Report::to_json`]).

pub mod control;
pub mod files;
pub mod flood;
pub mod ipc;
pub mod iperf_fuzz;
pub mod kill;
pub mod shell;
pub mod spawn;

use crate::Result;
use std::path::PathBuf;
use std::time::Instant;

/// How much work each case does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A few minutes for the whole command: every count divided by [`QUICK_DIVISOR`].
    Quick,
    /// The targets; well under 30 minutes on a 2-core host.
    Default,
}

/// What `--quick` divides every count by (each count stays at least its case's minimum).
pub const QUICK_DIVISOR: u64 = 100;

impl Profile {
    /// The name used in `soak.json` (`quick`, `default`).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Quick => "quick",
            Profile::Default => "default",
        }
    }

    /// `full` scaled to this profile: unchanged by default, divided by [`QUICK_DIVISOR`]
    /// (at least `min`) with `--quick`.
    pub fn scale(self, full: u64, min: u64) -> u64 {
        match self {
            Profile::Default => full,
            Profile::Quick => (full / QUICK_DIVISOR).max(min).min(full),
        }
    }
}

/// The counts one run uses, derived from the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// IPC messages per service.
    pub ipc_messages: u64,
    /// Kills per restartable component.
    pub kills: u64,
    /// Spawn/exit cycles.
    pub spawns: u64,
    /// Fuzzed iperf3 control-channel inputs.
    pub control_inputs: u64,
    /// Idle connections held open against the unikernel (not scaled: it is cheap and the
    /// number is what matters).
    pub flood_connections: u64,
}

impl Counts {
    /// The targets (default profile).
    pub const FULL: Counts = Counts {
        ipc_messages: 1_000_000,
        kills: 100,
        spawns: 1_000,
        control_inputs: 100_000,
        flood_connections: 60,
    };

    /// The counts for `profile`.
    pub fn for_profile(profile: Profile) -> Counts {
        let f = Counts::FULL;
        Counts {
            ipc_messages: profile.scale(f.ipc_messages, 1_000),
            kills: profile.scale(f.kills, 3),
            spawns: profile.scale(f.spawns, 10),
            control_inputs: profile.scale(f.control_inputs, 500),
            flood_connections: f.flood_connections,
        }
    }
}

/// One case (`cargo xtask soak CASE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// Random and malformed IPC to every service.
    Ipc,
    /// Restartable components killed while in use.
    Kill,
    /// Spawn/exit cycles with free memory compared.
    Spawn,
    /// Fuzzed iperf3 control inputs (hosted server).
    IperfFuzz,
    /// Idle connections against the seL4 iperf unikernel.
    Flood,
    /// `fs` and `blk` killed under two writers, then the volume checked on the host.
    Files,
}

impl Case {
    /// Every case, in the order `cargo xtask soak` runs them.
    pub const ALL: [Case; 6] = [
        Case::Ipc,
        Case::Kill,
        Case::Spawn,
        Case::IperfFuzz,
        Case::Flood,
        Case::Files,
    ];

    /// The case's name on the command line and in `soak.json`.
    pub fn name(self) -> &'static str {
        match self {
            Case::Ipc => "ipc",
            Case::Kill => "kill",
            Case::Spawn => "spawn",
            Case::IperfFuzz => "iperf-fuzz",
            Case::Flood => "flood",
            Case::Files => "files",
        }
    }

    /// The case called `name`; the error lists the names.
    pub fn parse(name: &str) -> Result<Case> {
        Case::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Case::ALL.iter().map(|c| c.name()).collect();
                format!("unknown soak case `{name}` ({})", names.join(", "))
            })
    }
}

/// What one case (or one target within a case) saw.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// The case's name ([`Case::name`]).
    pub case: String,
    /// What was abused within the case (a service, a component, `iperf-hosted`, ...).
    pub target: String,
    /// Attempts made (messages, kills, spawns, inputs, tests).
    pub tried: u64,
    /// Attempts the target came through as it should.
    pub survived: u64,
    /// Attempts after which the target crashed (faulted, panicked, was not restarted, died).
    pub crashed: u64,
    /// Attempts after which the target stopped answering within its time limit.
    pub hung: u64,
    /// Free memory lost over the case, in bytes (negative: gained); `None` if not measured.
    pub leaked_bytes: Option<i64>,
    /// Wall-clock seconds the case took.
    pub duration_s: f64,
    /// Why the case did not run (then the counts are zero).
    pub skipped: Option<String>,
    /// Anything else worth reading: first failure, restarts seen, the normal test's result.
    pub notes: Vec<String>,
}

impl CaseResult {
    /// A result for `case`/`target` with every count zero.
    pub fn new(case: Case, target: &str) -> CaseResult {
        CaseResult {
            case: case.name().to_string(),
            target: target.to_string(),
            tried: 0,
            survived: 0,
            crashed: 0,
            hung: 0,
            leaked_bytes: None,
            duration_s: 0.0,
            skipped: None,
            notes: Vec::new(),
        }
    }

    /// A result that says `case` did not run, and why.
    pub fn skipped(case: Case, target: &str, why: &str) -> CaseResult {
        let mut r = CaseResult::new(case, target);
        r.skipped = Some(why.to_string());
        r
    }

    /// Attempts that neither survived nor crashed nor hung (e.g. refused, wrong answer).
    pub fn other(&self) -> u64 {
        self.tried
            .saturating_sub(self.survived + self.crashed + self.hung)
    }

    /// The result as a JSON object (see [`Report::to_json`]).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "case": self.case,
            "target": self.target,
            "tried": self.tried,
            "survived": self.survived,
            "crashed": self.crashed,
            "hung": self.hung,
            "leaked_bytes": self.leaked_bytes,
            "duration_s": (self.duration_s * 10.0).round() / 10.0,
            "skipped": self.skipped,
            "notes": self.notes,
        })
    }
}

/// A whole run: the profile and every result.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The profile the counts came from.
    pub profile: Profile,
    /// The counts used.
    pub counts: Counts,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    /// Wall-clock seconds of the whole run.
    pub duration_s: f64,
    /// One entry per case and target, in the order they ran.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// `{"schema": "tessera-soak/1", "profile", "counts": {..}, "started_unix",
    /// "duration_s", "cases": [..]}` with one object per [`CaseResult`]: `case`, `target`,
    /// `tried`, `survived`, `crashed`, `hung`, `leaked_bytes` (null: not measured),
    /// `duration_s`, `skipped` (null, or why it did not run), `notes`.
    pub fn to_json(&self) -> serde_json::Value {
        let c = &self.counts;
        serde_json::json!({
            "schema": "tessera-soak/1",
            "profile": self.profile.name(),
            "counts": {
                "ipc_messages_per_service": c.ipc_messages,
                "kills_per_component": c.kills,
                "spawns": c.spawns,
                "control_inputs": c.control_inputs,
                "flood_connections": c.flood_connections,
            },
            "started_unix": self.started_unix,
            "duration_s": (self.duration_s * 10.0).round() / 10.0,
            "cases": self.results.iter().map(CaseResult::to_json).collect::<Vec<_>>(),
        })
    }

    /// The table `cargo xtask soak` prints: one row per result, notes below.
    pub fn table(&self) -> String {
        let header = [
            "CASE", "TARGET", "TRIED", "SURVIVED", "CRASHED", "HUNG", "LEAKED", "TIME",
        ];
        let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
        for r in &self.results {
            let time = format!("{:.1} s", r.duration_s);
            if let Some(why) = &r.skipped {
                rows.push(vec![
                    r.case.clone(),
                    r.target.clone(),
                    format!("skipped: {why}"),
                ]);
                continue;
            }
            rows.push(vec![
                r.case.clone(),
                r.target.clone(),
                r.tried.to_string(),
                r.survived.to_string(),
                r.crashed.to_string(),
                r.hung.to_string(),
                r.leaked_bytes
                    .map_or_else(|| "-".to_string(), |b| format!("{b} B")),
                time,
            ]);
        }
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                rows.iter()
                    .filter(|r| r.len() == header.len())
                    .map(|r| r[i].len())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &rows {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    if row.len() == header.len() && i + 1 < row.len() {
                        format!("{cell:<w$}", w = widths[i])
                    } else {
                        cell.clone()
                    }
                })
                .collect();
            let line = if row.len() == header.len() {
                cells.join("  ")
            } else {
                format!(
                    "{:<w0$}  {:<w1$}  {}",
                    cells[0],
                    cells[1],
                    cells[2],
                    w0 = widths[0],
                    w1 = widths[1]
                )
            };
            out.push_str(line.trim_end());
            out.push('\n');
        }
        for r in &self.results {
            for note in &r.notes {
                out.push_str(&format!("{} {}: {note}\n", r.case, r.target));
            }
        }
        out
    }
}

/// Where results go: `target/soak/`.
pub fn dir() -> PathBuf {
    crate::target_dir().join("soak")
}

/// Runs `cases` (all when empty) with `profile`, prints the table and writes
/// `target/soak/soak.json`. A case that cannot run is recorded as skipped with the reason;
/// the command fails only when the harness itself cannot work (build, file system).
pub fn run(profile: Profile, cases: &[Case]) -> Result<()> {
    let cases: Vec<Case> = if cases.is_empty() {
        Case::ALL.to_vec()
    } else {
        cases.to_vec()
    };
    let counts = Counts::for_profile(profile);
    let clock = Instant::now();
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut results = Vec::new();
    for case in cases {
        crate::step(&format!("soak {} ({})", case.name(), profile.name()));
        let case_clock = Instant::now();
        let outcome = match case {
            Case::Ipc => ipc::run(counts.ipc_messages),
            Case::Kill => kill::run(counts.kills),
            Case::Spawn => spawn::run(counts.spawns),
            Case::IperfFuzz => iperf_fuzz::run(counts.control_inputs),
            Case::Flood => flood::run(counts.flood_connections),
            Case::Files => files::run(counts.kills),
        };
        let mut got = outcome.unwrap_or_else(|e| {
            vec![CaseResult::skipped(
                case,
                "-",
                &format!("could not run: {e}"),
            )]
        });
        let took = case_clock.elapsed().as_secs_f64();
        // Targets that did not time themselves share the case's time.
        for r in &mut got {
            if r.duration_s == 0.0 {
                r.duration_s = took;
            }
        }
        crate::step(&format!("soak {} took {took:.0} s", case.name()));
        results.extend(got);
    }
    let report = Report {
        profile,
        counts,
        started_unix,
        duration_s: clock.elapsed().as_secs_f64(),
        results,
    };
    let dir = dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("soak.json");
    let text = serde_json::to_string_pretty(&report.to_json()).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    println!();
    print!("{}", report.table());
    crate::step(&format!(
        "cargo xtask soak ({}) took {:.1} min; wrote {}",
        profile.name(),
        report.duration_s / 60.0,
        path.display()
    ));
    Ok(())
}

/// Seconds since `since`, for progress lines.
fn elapsed(since: Instant) -> String {
    format!("{:.0} s", since.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_divides_counts_but_keeps_minimums() {
        assert_eq!(Counts::for_profile(Profile::Default), Counts::FULL);
        let q = Counts::for_profile(Profile::Quick);
        assert_eq!(q.ipc_messages, 10_000);
        assert_eq!(q.kills, 3);
        assert_eq!(q.spawns, 10);
        assert_eq!(q.control_inputs, 1_000);
        assert_eq!(q.flood_connections, 60);
        assert_eq!(
            Profile::Quick.scale(5, 10),
            5,
            "never more than the full count"
        );
        assert_eq!(Profile::Quick.scale(100_000, 1), 1_000);
    }

    #[test]
    fn cases_parse_by_name() {
        for c in Case::ALL {
            assert_eq!(Case::parse(c.name()), Ok(c));
        }
        let e = Case::parse("nope").unwrap_err();
        assert!(e.contains("iperf-fuzz") && e.contains("flood"), "{e}");
    }

    fn sample() -> Report {
        let mut ipc = CaseResult::new(Case::Ipc, "naming");
        ipc.tried = 1000;
        ipc.survived = 998;
        ipc.crashed = 1;
        ipc.duration_s = 12.34;
        ipc.notes.push("first bad reply: x".into());
        let mut spawn = CaseResult::new(Case::Spawn, "hello");
        spawn.tried = 10;
        spawn.survived = 10;
        spawn.leaked_bytes = Some(-4096);
        Report {
            profile: Profile::Quick,
            counts: Counts::for_profile(Profile::Quick),
            started_unix: 7,
            duration_s: 60.0,
            results: vec![
                ipc,
                spawn,
                CaseResult::skipped(Case::Flood, "iperf", "no iperf3"),
            ],
        }
    }

    #[test]
    fn json_has_every_count_per_case() {
        let json = sample().to_json();
        assert_eq!(json["schema"], "tessera-soak/1");
        assert_eq!(json["profile"], "quick");
        assert_eq!(json["counts"]["ipc_messages_per_service"], 10_000);
        let cases = json["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[0]["tried"], 1000);
        assert_eq!(cases[0]["survived"], 998);
        assert_eq!(cases[0]["crashed"], 1);
        assert_eq!(cases[0]["duration_s"], 12.3);
        assert!(cases[0]["leaked_bytes"].is_null());
        assert_eq!(cases[1]["leaked_bytes"], -4096);
        assert_eq!(cases[2]["skipped"], "no iperf3");
        assert_eq!(cases[0]["notes"][0], "first bad reply: x");
    }

    #[test]
    fn the_table_has_a_row_per_result_and_the_notes() {
        let table = sample().table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("CASE"), "{table}");
        assert!(
            lines[1].starts_with("ipc") && lines[1].contains("998"),
            "{table}"
        );
        assert!(lines[2].contains("-4096 B"), "{table}");
        assert!(lines[3].contains("skipped: no iperf3"), "{table}");
        assert!(lines[4].contains("first bad reply"), "{table}");
        // Columns line up: SURVIVED starts at the same place in the header and rows.
        let col = lines[0].find("SURVIVED").unwrap();
        assert_eq!(&lines[1][col..col + 3], "998");
    }

    #[test]
    fn other_counts_what_is_neither_survived_crashed_nor_hung() {
        let mut r = CaseResult::new(Case::Kill, "serial");
        r.tried = 10;
        r.survived = 6;
        r.crashed = 1;
        r.hung = 1;
        assert_eq!(r.other(), 2);
    }
}
