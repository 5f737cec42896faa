//! A shadow of the device's PCI configuration space for `virtio-drivers`' capability walk.
//!
//! The driver component may not touch configuration space (`devices` owns it), but
//! `PciTransport::new` walks the capability list and sizes BARs by writing all ones to
//! them. [`ShadowConfig`] snapshots the first 256 bytes through a read-only
//! [`ConfigSpace`] once, answers the walk from the snapshot and emulates BAR sizing with
//! the sizes the virtio capabilities imply. Writes never reach the device: `devices` has
//! already turned on memory decoding and bus mastering when it granted the claim.

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};

/// Read access to the claimed function's configuration space (on Tessera: `devices`'
/// `read_config`).
pub trait ConfigSpace {
    /// The 32-bit word at byte `offset` (a multiple of 4, below 256).
    fn read32(&mut self, offset: u8) -> u32;
}

/// Offset of BAR0 in the configuration header.
const BAR0: u8 = 0x10;
/// Offset of the capability pointer.
const CAP_POINTER: u8 = 0x34;
/// PCI capability id of vendor-specific (virtio) capabilities.
const CAP_VENDOR: u8 = 0x09;
/// Bit 4 of the status register: the capability list exists.
const STATUS_CAP_LIST: u32 = 1 << 20;

/// Where one virtio structure lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// BAR index.
    pub bar: u8,
    /// Byte offset in the BAR.
    pub offset: u32,
    /// Length in bytes.
    pub length: u32,
}

/// The virtio structures the capabilities describe (`cfg_type` 1 to 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// Common configuration (`cfg_type` 1).
    pub common: Option<Region>,
    /// Notifications (2).
    pub notify: Option<Region>,
    /// Interrupt status (3): reading its byte clears the INTx line.
    pub isr: Option<Region>,
    /// Device-specific configuration (4).
    pub device: Option<Region>,
}

impl Layout {
    /// The regions that are present.
    pub fn regions(&self) -> impl Iterator<Item = Region> + '_ {
        [self.common, self.notify, self.isr, self.device]
            .into_iter()
            .flatten()
    }

    /// The size of `bar` the structures need: the end of the last one, rounded up to a
    /// power of two and at least one 4 KiB page; 0 when no structure lives in it.
    pub fn bar_size(&self, bar: u8) -> u64 {
        let end = self
            .regions()
            .filter(|r| r.bar == bar)
            .map(|r| u64::from(r.offset) + u64::from(r.length))
            .max()
            .unwrap_or(0);
        if end == 0 {
            0
        } else {
            end.next_power_of_two().max(4096)
        }
    }
}

/// A snapshot of a function's configuration space, with emulated BAR sizing.
#[derive(Clone, Debug)]
pub struct ShadowConfig {
    words: [u32; 64],
    sizing: [bool; 6],
    layout: Layout,
}

impl ShadowConfig {
    /// Reads the 256 bytes through `config` and parses the virtio capabilities.
    pub fn read(config: &mut impl ConfigSpace) -> Self {
        let mut words = [0; 64];
        for (i, w) in words.iter_mut().enumerate() {
            *w = config.read32((i * 4) as u8);
        }
        Self::from_words(words)
    }

    /// A shadow of `words` (the first 256 bytes).
    pub fn from_words(words: [u32; 64]) -> Self {
        let mut s = Self {
            words,
            sizing: [false; 6],
            layout: Layout::default(),
        };
        s.layout = s.parse();
        s
    }

    fn byte(&self, offset: u8) -> u8 {
        (self.words[usize::from(offset / 4)] >> ((offset % 4) * 8)) as u8
    }

    fn word(&self, offset: u8) -> u32 {
        self.words[usize::from(offset / 4) % 64]
    }

    /// Walks the capability list (bounded: at most 48 entries, offsets 0x40..=0xFC).
    fn parse(&self) -> Layout {
        let mut layout = Layout::default();
        if self.words[1] & STATUS_CAP_LIST == 0 {
            return layout;
        }
        let mut at = self.byte(CAP_POINTER) & !3;
        for _ in 0..48 {
            if !(0x40..=0xF0).contains(&at) {
                break;
            }
            let head = self.word(at);
            if head as u8 == CAP_VENDOR && (head >> 16) as u8 >= 16 {
                let region = Region {
                    bar: self.word(at + 4) as u8,
                    offset: self.word(at + 8),
                    length: self.word(at + 12),
                };
                let slot = match (head >> 24) as u8 {
                    1 => &mut layout.common,
                    2 => &mut layout.notify,
                    3 => &mut layout.isr,
                    4 => &mut layout.device,
                    _ => {
                        at = (head >> 8) as u8 & !3;
                        continue;
                    }
                };
                if slot.is_none() && region.bar < 6 {
                    *slot = Some(region);
                }
            }
            at = (head >> 8) as u8 & !3;
        }
        layout
    }

    /// The virtio structures.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Vendor and device id.
    pub fn ids(&self) -> (u16, u16) {
        (self.words[0] as u16, (self.words[0] >> 16) as u16)
    }

    /// The physical address of memory BAR `bar` (64-bit BARs read both halves); `None` for
    /// an I/O BAR or an index past the last.
    pub fn bar_address(&self, bar: u8) -> Option<u64> {
        let lo = *self.words.get(usize::from(BAR0 / 4 + bar))?;
        if bar > 5 || lo & 1 != 0 {
            return None;
        }
        let hi = if lo & 0b110 == 0b100 && bar < 5 {
            self.words[usize::from(BAR0 / 4 + bar + 1)]
        } else {
            0
        };
        Some(u64::from(hi) << 32 | u64::from(lo & !0xF))
    }

    /// The BAR index that `offset` addresses, and whether it is the upper half of a 64-bit
    /// BAR (then the index is of the lower half).
    fn bar_at(&self, offset: u8) -> Option<(u8, bool)> {
        if !(BAR0..BAR0 + 24).contains(&offset) {
            return None;
        }
        let i = (offset - BAR0) / 4;
        if i > 0 {
            let below = self.words[usize::from(BAR0 / 4 + i - 1)];
            if below & 0b111 == 0b100 {
                return Some((i - 1, true));
            }
        }
        Some((i, false))
    }

    fn sizing_word(&self, bar: u8, upper: bool) -> u32 {
        let size = self.layout.bar_size(bar);
        let mask = if size == 0 { 0 } else { !(size - 1) };
        if upper {
            (mask >> 32) as u32
        } else {
            let flags = self.word(BAR0 + bar * 4) & 0xF;
            mask as u32 & !0xF | flags
        }
    }
}

impl ConfigurationAccess for ShadowConfig {
    fn read_word(&self, _: DeviceFunction, offset: u8) -> u32 {
        if let Some((bar, upper)) = self.bar_at(offset) {
            let index = usize::from(bar + u8::from(upper));
            if self.sizing[index] {
                return self.sizing_word(bar, upper);
            }
        }
        self.word(offset & !3)
    }

    fn write_word(&mut self, _: DeviceFunction, offset: u8, data: u32) {
        if let Some((bar, upper)) = self.bar_at(offset) {
            let index = usize::from(bar + u8::from(upper));
            if data == u32::MAX {
                self.sizing[index] = true;
                return;
            }
            // Restoring the original value ends the sizing; the address never changes.
            self.sizing[index] = false;
            return;
        }
        // Command register and others: kept in the shadow only. The status half of word 1
        // is write-one-to-clear on hardware; the shadow keeps it as read.
        let index = usize::from(offset / 4) % 64;
        self.words[index] = if index == 1 {
            self.words[1] & 0xFFFF_0000 | data & 0xFFFF
        } else {
            data
        };
    }

    unsafe fn unsafe_clone(&self) -> Self {
        self.clone()
    }
}
