//! What `cargo xtask bench net` measures: the catalogue of systems and, per profile, the
//! plan (run lengths, window, repetitions, offered loads).

use crate::bench::shared::Profile;

/// Period of the guest's `STAT` lines during the benchmark, in ms.
pub const STAT_MS: u32 = 500;

/// Seconds from the client's start until the window, beyond the ignored warm-up: room for
/// the iperf3 control exchange, which takes a moment under TCG.
pub(super) const SETUP_S: f64 = 1.0;
/// Seconds the client keeps sending after the window.
pub(super) const TAIL_S: f64 = 1.0;

/// Which operating system a benchmarked system runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Tessera (which of its systems: [`Composition`]).
    Tessera,
    /// The Linux baseline guest ([`crate::linux`]).
    Linux,
}

/// How a Tessera system is composed (the paper's Figure 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Composition {
    /// The iperf unikernel: application, library OS, stack and driver in one component
    /// (`systems/net-unikernel*.toml`; also what the Linux guest is).
    Unikernel,
    /// Two iperf3 servers sharing the `net` service, which drives the NIC
    /// (`systems/net-shared.toml`); measured with two clients at once.
    Shared,
    /// The same with the driver in its own `nic` component
    /// (`systems/net-shared-isolated.toml`).
    SharedIsolated,
}

impl Composition {
    /// The iperf3 servers' guest ports: one client runs against each at once.
    pub fn ports(self) -> &'static [u16] {
        match self {
            Composition::Unikernel => &[5201],
            Composition::Shared | Composition::SharedIsolated => &[5201, 5202],
        }
    }
}

/// One benchmarked system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemSpec {
    /// Operating system.
    pub os: Os,
    /// NIC: `e1000e` or `virtio-net`.
    pub nic: &'static str,
    /// Tessera's interrupt delivery: `msi`, `msix`, `ioapic` or `pic` (`None` for Linux).
    pub irq: Option<&'static str>,
    /// How the system is composed.
    pub composition: Composition,
}

impl SystemSpec {
    /// `tessera-<nic>-<irq>` (the unikernel), `tessera-shared-<nic>-<irq>`,
    /// `tessera-isolated-<nic>-<irq>` (the shared composition with the driver in `nic`) or
    /// `linux-<nic>`. At most 32 bytes: it names the derived system.
    pub fn name(&self) -> String {
        let kind = match self.composition {
            Composition::Unikernel => "",
            Composition::Shared => "shared-",
            Composition::SharedIsolated => "isolated-",
        };
        match (self.os, self.irq) {
            (Os::Tessera, Some(irq)) => format!("tessera-{kind}{}-{irq}", self.nic),
            (Os::Tessera, None) => format!("tessera-{kind}{}", self.nic),
            (Os::Linux, _) => format!("linux-{}", self.nic),
        }
    }

    /// Why this system cannot be measured, when that is known before building it.
    pub fn known_unsupported(&self) -> Option<&'static str> {
        (self.os == Os::Tessera && self.nic == "virtio-net" && self.irq == Some("msi"))
            .then_some("QEMU's virtio-net-pci offers MSI-X only (no MSI capability)")
    }
}

/// Every system the benchmark knows, in the order it measures them.
pub fn all_systems() -> Vec<SystemSpec> {
    let tessera = |nic, irq| SystemSpec {
        os: Os::Tessera,
        nic,
        irq: Some(irq),
        composition: Composition::Unikernel,
    };
    let shared = |composition| SystemSpec {
        os: Os::Tessera,
        nic: "e1000e",
        irq: Some("msi"),
        composition,
    };
    let linux = |nic| SystemSpec {
        os: Os::Linux,
        nic,
        irq: None,
        composition: Composition::Unikernel,
    };
    vec![
        tessera("e1000e", "msi"),
        tessera("e1000e", "msix"),
        tessera("e1000e", "ioapic"),
        tessera("e1000e", "pic"),
        tessera("virtio-net", "msix"),
        tessera("virtio-net", "ioapic"),
        tessera("virtio-net", "msi"),
        tessera("virtio-net", "pic"),
        shared(Composition::Shared),
        shared(Composition::SharedIsolated),
        linux("e1000e"),
        linux("virtio-net"),
    ]
}

/// How a profile measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Seconds of each run that are ignored before the window (after [`SETUP_S`]).
    pub warmup_s: f64,
    /// Seconds measured.
    pub window_s: f64,
    /// Runs per offered load.
    pub repetitions: usize,
    /// Unpaced runs per system.
    pub max_repetitions: usize,
    /// Offered loads as fractions of the lowest maximum.
    pub fractions: Vec<f64>,
    /// Names of the systems measured.
    pub systems: Vec<String>,
    /// Also measure each system's unpaced maximum in the reverse direction (`iperf3 -R`:
    /// the guest sends), for a table of its own.
    pub reverse: bool,
}

impl Plan {
    /// The plan of `profile`.
    ///
    /// - `full`: the paper's method: 20 s runs whose first 10 s are ignored, 5 repetitions,
    ///   loads at 20/40/60/80/100 % of the lowest maximum, every system.
    /// - default: the same systems and loads, 7 s runs with 2 s ignored (4 s measured),
    ///   3 repetitions, and each system's reverse maximum (`-R`).
    /// - `quick`: Tessera and Linux on the e1000e (MSI for Tessera), loads at 20/60/100 %,
    ///   5 s runs with 1 s ignored (2 s measured), one repetition, no reverse runs; a few
    ///   minutes.
    ///
    /// `full` measures the reverse maxima too.
    pub fn of(profile: Profile) -> Plan {
        let every = || all_systems().iter().map(SystemSpec::name).collect();
        let fifths = vec![0.2, 0.4, 0.6, 0.8, 1.0];
        match profile {
            Profile::Full => Plan {
                warmup_s: 10.0 - SETUP_S,
                window_s: 10.0 - TAIL_S,
                repetitions: 5,
                max_repetitions: 5,
                fractions: fifths,
                systems: every(),
                reverse: true,
            },
            Profile::Default => Plan {
                warmup_s: 2.0 - SETUP_S,
                window_s: 4.0,
                repetitions: 3,
                max_repetitions: 3,
                fractions: fifths,
                systems: every(),
                reverse: true,
            },
            Profile::Quick => Plan {
                warmup_s: 1.0 - SETUP_S,
                window_s: 3.0,
                repetitions: 1,
                max_repetitions: 1,
                fractions: vec![0.2, 0.6, 1.0],
                systems: vec!["tessera-e1000e-msi".into(), "linux-e1000e".into()],
                reverse: false,
            },
        }
    }

    /// The plan of `profile` for one NIC (`--nic`): that NIC's systems only. The quick
    /// profile takes the NIC's Tessera systems whose interrupts are messages or IOAPIC
    /// lines (the PIC and what is known unsupported left out) and the Linux guest.
    ///
    /// Errors: a NIC no system uses.
    pub fn for_nic(profile: Profile, nic: &str) -> Result<Plan, String> {
        let mut plan = Plan::of(profile);
        let of_nic: Vec<SystemSpec> = all_systems().into_iter().filter(|s| s.nic == nic).collect();
        if of_nic.is_empty() {
            return Err(format!("unknown NIC `{nic}` (e1000e or virtio-net)"));
        }
        plan.systems = of_nic
            .iter()
            .filter(|s| {
                profile != Profile::Quick
                    || (s.irq != Some("pic") && s.known_unsupported().is_none())
            })
            .map(SystemSpec::name)
            .collect();
        Ok(plan)
    }

    /// The `iperf3 -t` of every run: set-up, warm-up, window and tail, whole seconds.
    pub fn run_s(&self) -> u64 {
        (SETUP_S + self.warmup_s + self.window_s + TAIL_S).ceil() as u64
    }

    /// Seconds from the client's start to the window.
    pub fn skip_s(&self) -> f64 {
        SETUP_S + self.warmup_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_names_are_unique_and_virtio_msi_is_known_unsupported() {
        let names: Vec<String> = all_systems().iter().map(SystemSpec::name).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        // Each names a derived system description, whose names are at most 32 bytes.
        assert!(names.iter().all(|n| n.len() <= 32), "{names:?}");
        assert!(names.contains(&"tessera-e1000e-pic".to_string()));
        assert!(names.contains(&"linux-virtio-net".to_string()));
        let unsupported: Vec<String> = all_systems()
            .iter()
            .filter(|s| s.known_unsupported().is_some())
            .map(SystemSpec::name)
            .collect();
        assert_eq!(unsupported, ["tessera-virtio-net-msi"]);
    }

    #[test]
    fn one_nic_plans_keep_that_nic_and_its_linux_guest() {
        let quick = Plan::for_nic(Profile::Quick, "virtio-net").unwrap();
        assert_eq!(
            quick.systems,
            [
                "tessera-virtio-net-msix",
                "tessera-virtio-net-ioapic",
                "linux-virtio-net"
            ]
        );
        assert!(!quick.reverse);
        let quick = Plan::for_nic(Profile::Quick, "e1000e").unwrap();
        assert_eq!(
            quick.systems,
            [
                "tessera-e1000e-msi",
                "tessera-e1000e-msix",
                "tessera-e1000e-ioapic",
                "tessera-shared-e1000e-msi",
                "tessera-isolated-e1000e-msi",
                "linux-e1000e"
            ]
        );
        let default = Plan::for_nic(Profile::Default, "e1000e").unwrap();
        assert!(default.reverse);
        assert!(default.systems.contains(&"tessera-e1000e-pic".to_string()));
        assert!(default.systems.iter().all(|s| s.contains("e1000e")));
        assert!(Plan::for_nic(Profile::Quick, "rtl8139").is_err());
    }

    #[test]
    fn plans_keep_the_paper_shape() {
        let full = Plan::of(Profile::Full);
        assert_eq!(full.run_s(), 20);
        assert_eq!(full.skip_s(), 10.0);
        assert_eq!(full.repetitions, 5);
        assert_eq!(full.fractions, [0.2, 0.4, 0.6, 0.8, 1.0]);
        let default = Plan::of(Profile::Default);
        assert_eq!(default.systems.len(), all_systems().len());
        assert!(default.run_s() < full.run_s());
        let quick = Plan::of(Profile::Quick);
        for name in &quick.systems {
            assert!(default.systems.contains(name), "{name}");
        }
        assert!(quick.skip_s() >= SETUP_S);
    }
}
