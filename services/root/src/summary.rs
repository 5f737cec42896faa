//! The one-screen boot summary the root task prints.

use alloc::vec::Vec;
use core::fmt;

/// One untyped memory region the kernel handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Untyped {
    /// Physical start address.
    pub paddr: u64,
    /// The region is 2^size_bits bytes.
    pub size_bits: u8,
    /// Device memory (not RAM): MMIO ranges such as PCI BARs and the HPET.
    pub is_device: bool,
}

impl Untyped {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        1u64 << self.size_bits
    }
}

/// What the summary shows, gathered from the boot info.
#[derive(Debug, Clone)]
pub struct BootSummary {
    /// This node and the number of nodes.
    pub node: (u64, u64),
    /// log2 of the root CNode's slot count.
    pub cnode_size_bits: u8,
    /// The first free slot and the first slot after the free range.
    pub free_slots: (u64, u64),
    /// The untyped regions, in capability order.
    pub untypeds: Vec<Untyped>,
    /// TSC frequency in MHz (the kernel's calibration).
    pub tsc_mhz: u64,
    /// Bytes of extra boot info after the boot-info frame.
    pub extra_len: u64,
}

/// A maximal run of physically contiguous device untypeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRegion {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl BootSummary {
    /// Total RAM (non-device untyped) bytes and the number of RAM untypeds.
    pub fn ram(&self) -> (u64, usize) {
        let ram = self.untypeds.iter().filter(|u| !u.is_device);
        (ram.clone().map(Untyped::size).sum(), ram.count())
    }

    /// The largest RAM untyped.
    pub fn largest_ram(&self) -> Option<Untyped> {
        self.untypeds
            .iter()
            .filter(|u| !u.is_device)
            .max_by_key(|u| u.size_bits)
            .copied()
    }

    /// Device untypeds merged into contiguous physical ranges, in address order.
    pub fn device_regions(&self) -> Vec<DeviceRegion> {
        let mut devs: Vec<DeviceRegion> = self
            .untypeds
            .iter()
            .filter(|u| u.is_device)
            .map(|u| DeviceRegion {
                start: u.paddr,
                end: u.paddr.saturating_add(u.size()),
            })
            .collect();
        devs.sort_by_key(|d| d.start);
        let mut merged: Vec<DeviceRegion> = Vec::new();
        for d in devs {
            match merged.last_mut() {
                Some(last) if last.end == d.start => last.end = d.end,
                _ => merged.push(d),
            }
        }
        merged
    }
}

/// `bytes` in the largest binary unit that keeps the number at least 1 (rounded down).
fn human(bytes: u64) -> (u64, &'static str) {
    const UNITS: [(u32, &str); 5] = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB"), (0, "B")];
    UNITS
        .iter()
        .find(|(shift, _)| bytes >> shift > 0)
        .map(|&(shift, unit)| (bytes >> shift, unit))
        .unwrap_or((0, "B"))
}

impl fmt::Display for BootSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ram, ram_count) = self.ram();
        let devices = self.untypeds.iter().filter(|u| u.is_device).count();
        writeln!(
            f,
            "boot info: node {} of {}, root cnode 2^{} slots, {} bytes of extra boot info",
            self.node.0, self.node.1, self.cnode_size_bits, self.extra_len
        )?;
        write!(f, "memory: {} MiB RAM in {} untypeds", ram >> 20, ram_count)?;
        if let Some(l) = self.largest_ram() {
            write!(f, " (largest 2^{} bytes at {:#x})", l.size_bits, l.paddr)?;
        }
        writeln!(f, ", {devices} device untypeds")?;
        let (lo, hi) = self.free_slots;
        writeln!(
            f,
            "free slots: {lo:#x}..{hi:#x} ({} slots)",
            hi.saturating_sub(lo)
        )?;
        for d in self.device_regions() {
            let (n, unit) = human(d.end - d.start);
            writeln!(
                f,
                "device region {:#011x}-{:#011x} ({n} {unit})",
                d.start,
                d.end - 1
            )?;
        }
        writeln!(f, "tsc: {} MHz", self.tsc_mhz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn summary() -> BootSummary {
        let u = |paddr, size_bits, is_device| Untyped {
            paddr,
            size_bits,
            is_device,
        };
        BootSummary {
            node: (0, 1),
            cnode_size_bits: 16,
            free_slots: (0x1c4, 0x10000),
            untypeds: vec![
                u(0x0, 19, true),
                u(0x80000, 17, true),
                u(0x100000, 20, false),
                u(0x200000, 21, false),
                u(0xfed00000, 20, true),
                u(0xfe000000, 23, true),
            ],
            tsc_mhz: 2445,
            extra_len: 0,
        }
    }

    #[test]
    fn ram_and_device_ranges() {
        let s = summary();
        assert_eq!(s.ram(), (3 << 20, 2));
        assert_eq!(s.largest_ram().unwrap().paddr, 0x200000);
        assert_eq!(
            s.device_regions(),
            vec![
                DeviceRegion {
                    start: 0,
                    end: 0xa0000
                },
                DeviceRegion {
                    start: 0xfe000000,
                    end: 0xfe800000
                },
                DeviceRegion {
                    start: 0xfed00000,
                    end: 0xfee00000
                },
            ]
        );
    }

    #[test]
    fn sizes_in_the_largest_unit() {
        assert_eq!(human(640 << 10), (640, "KiB"));
        assert_eq!(human(3564 << 20), (3, "GiB"));
        assert_eq!(human((1 << 47) - 0x8000000010), (127, "TiB"));
        assert_eq!(human(16), (16, "B"));
        assert_eq!(human(0), (0, "B"));
    }

    #[test]
    fn rendering() {
        let text = summary().to_string();
        assert!(text.contains("memory: 3 MiB RAM in 2 untypeds (largest 2^21 bytes at 0x200000), 4 device untypeds\n"), "{text}");
        assert!(
            text.contains("free slots: 0x1c4..0x10000 (65084 slots)\n"),
            "{text}"
        );
        assert!(
            text.contains("device region 0x000000000-0x00009ffff (640 KiB)\n"),
            "{text}"
        );
        assert!(text.contains("tsc: 2445 MHz\n"), "{text}");
    }
}
