//! `cargo xtask bench net`: guest CPU utilisation against TCP throughput for Tessera's
//! iperf unikernel (each NIC and interrupt delivery method) and the Linux guest (the
//! paper's Figure 4).
//!
//! Every system boots under QEMU behind a TAP device whose peer is a private network
//! namespace ([`crate::qemu::net::TapNet`]); the stock `iperf3` client runs there. The
//! benchmark first finds each system's maximum throughput (unpaced `iperf3 -c`), then
//! offers every system the same loads, fractions of the lowest maximum (`iperf3 -b`).
//! For each run it measures, over a window that leaves out the first seconds:
//! - the achieved throughput: the receiver side of the iperf3 report (`end.sum_received`,
//!   over the whole run), and the sender's own figure over the window;
//! - guest CPU utilisation from the guest's `STAT up_us=.. idle_us=..` lines (first to last
//!   line inside the window): 1 − Δidle/Δup;
//! - host CPU time of the QEMU process (`/proc/<pid>/stat` utime + stime) as a share of
//!   one host CPU over the window's wall time.
//!
//! [`plan`] holds the catalogue of systems and the plan of each profile, [`guest`] boots
//! and measures one system, [`report`] writes and draws the results; this module runs the
//! benchmark.

pub mod guest;
pub mod plan;
pub mod report;

use plan::{all_systems, Plan, SystemSpec};

use crate::bench::shared::{self, Profile};
use crate::{step, Result};
use guest::{boot, measure_all, prepare, Direction};
use report::{loadavg, plot, report_json, table, Outcome};
use serde_json::Value;
use std::time::Instant;

/// `cargo xtask bench net`: measures the systems `only` names (all of the profile's, or of
/// the profile's for `nic` ([`Plan::for_nic`]), when empty), writes `target/bench/net.json`
/// and `net.png`, and prints the tables.
pub fn run(profile: Profile, only: &[String], nic: Option<&str>) -> Result<()> {
    crate::qemu::net::require_root()
        .map_err(|_| "cargo xtask bench net needs root: it runs each system behind a TAP device in a private network namespace".to_string())?;
    crate::host::ensure(crate::host::Purpose::Qemu)?;
    crate::host::ensure(crate::host::Purpose::Iperf)?;
    let mut plan = match nic {
        Some(nic) => Plan::for_nic(profile, nic)?,
        None => Plan::of(profile),
    };
    if !only.is_empty() {
        let known: Vec<String> = all_systems().iter().map(SystemSpec::name).collect();
        if let Some(bad) = only.iter().find(|n| !known.contains(n)) {
            return Err(format!(
                "unknown system `{bad}`; known: {}",
                known.join(", ")
            ));
        }
        plan.systems = only.to_vec();
    }
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let clock = Instant::now();
    let load_start = loadavg();
    let specs: Vec<SystemSpec> = all_systems()
        .into_iter()
        .filter(|s| plan.systems.contains(&s.name()))
        .collect();
    step(&format!(
        "bench net ({}): {} systems, runs of {} s (window {:.0} s after {:.0} s), {} repetitions, loads {:?} of the lowest maximum",
        profile.name(),
        specs.len(),
        plan.run_s(),
        plan.window_s,
        plan.skip_s(),
        plan.repetitions,
        plan.fractions
    ));
    let mut outcomes = Vec::new();
    let mut prepared = Vec::new();
    for spec in &specs {
        step(&format!("bench net: preparing {}", spec.name()));
        let p = prepare(spec);
        let (supported, error) = match &p {
            Ok(_) => (true, None),
            Err(e) => {
                step(&format!("bench net: {} is not measured: {e}", spec.name()));
                (false, Some(e.clone()))
            }
        };
        outcomes.push(Outcome {
            spec: spec.clone(),
            error,
            supported,
            max: Vec::new(),
            points: Vec::new(),
            reverse_max: Vec::new(),
        });
        prepared.push(p.ok());
    }
    // Phase 1: every system's maximum.
    for (outcome, p) in outcomes.iter_mut().zip(&prepared) {
        let Some(p) = p else { continue };
        let label = outcome.spec.name();
        step(&format!("bench net: {label}: booting for its maximum"));
        match boot(&outcome.spec, p, "max") {
            Ok(guest) => {
                outcome.max = measure_all(
                    &guest,
                    &plan,
                    &[None],
                    plan.max_repetitions,
                    &label,
                    Direction::Normal,
                )
                .pop()
                .unwrap_or_default();
                if outcome.max_median().is_none() {
                    outcome.error = Some("no unpaced run succeeded".into());
                }
            }
            Err(e) => {
                step(&format!("bench net: {label}: {e}"));
                outcome.error = Some(e);
            }
        }
    }
    let lowest = outcomes
        .iter()
        .filter_map(Outcome::max_median)
        .min_by(f64::total_cmp);
    let loads: Vec<f64> = lowest
        .map(|l| plan.fractions.iter().map(|f| f * l).collect())
        .unwrap_or_default();
    if let Some(l) = lowest {
        step(&format!(
            "bench net: lowest maximum {l:.0} Mbit/s; offered loads {:?} Mbit/s",
            loads.iter().map(|x| x.round()).collect::<Vec<_>>()
        ));
    }
    // Phase 2: the same loads for every system.
    let rates: Vec<Option<f64>> = loads.iter().copied().map(Some).collect();
    for (outcome, p) in outcomes.iter_mut().zip(&prepared) {
        let (Some(p), None) = (p, &outcome.error) else {
            continue;
        };
        let label = outcome.spec.name();
        step(&format!(
            "bench net: {label}: booting for the offered loads"
        ));
        match boot(&outcome.spec, p, "loads") {
            Ok(guest) => {
                outcome.points = measure_all(
                    &guest,
                    &plan,
                    &rates,
                    plan.repetitions,
                    &label,
                    Direction::Normal,
                );
                // The reverse maxima on the same boot (the guest's server sends unpaced:
                // Tessera's iperf3 server does not pace, so only maxima compare).
                if plan.reverse {
                    outcome.reverse_max = measure_all(
                        &guest,
                        &plan,
                        &[None],
                        plan.max_repetitions,
                        &label,
                        Direction::Reverse,
                    )
                    .pop()
                    .unwrap_or_default();
                }
            }
            Err(e) => {
                step(&format!("bench net: {label}: {e}"));
                outcome.error = Some(e);
            }
        }
    }
    let report = report_json(
        profile,
        &plan,
        started,
        &load_start,
        &loads,
        lowest,
        &outcomes,
    );
    let dir = shared::dir();
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let json_path = dir.join("net.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
    step(&format!("bench net: results in {}", json_path.display()));
    print!("{}", table(&report));
    match plot(&json_path, &dir.join("net.png")) {
        Ok(png) => step(&format!("bench net: plot in {}", png.display())),
        Err(e) => step(&format!("bench net: no plot: {e}")),
    }
    step(&format!(
        "bench net took {:.1} min",
        clock.elapsed().as_secs_f64() / 60.0
    ));
    Ok(())
}

/// `cargo xtask bench net --plot`: redraws `target/bench/net.png` and prints the table
/// from the last `target/bench/net.json`.
pub fn replot() -> Result<()> {
    let dir = shared::dir();
    let json_path = dir.join("net.json");
    let text = std::fs::read_to_string(&json_path).map_err(|e| {
        format!(
            "{}: {e} (run `cargo xtask bench net` first)",
            json_path.display()
        )
    })?;
    let report: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json_path.display()))?;
    print!("{}", table(&report));
    let png = plot(&json_path, &dir.join("net.png"))?;
    step(&format!("bench net: plot in {}", png.display()));
    Ok(())
}
