//! Device memory carving: which seL4 retypes turn device untypeds into frame capabilities for
//! exactly one physical range (a BAR) and nothing else.
//!
//! seL4 allocates from an untyped at a watermark that only moves up: a retype first rounds the
//! watermark up to the object size, then places the objects there. To reach a BAR that does
//! not start at the watermark, the plan first retypes *padding* untypeds that fill the gap
//! exactly (the caller may delete them; the watermark stays), then 4 KiB frames that cover the
//! BAR exactly. [`Carver`] keeps each untyped's watermark, so several BARs in one untyped work
//! when planned in address order ([`Carver::plan_all`] sorts them). Because the watermarks are
//! shared by every device, plan all granted BARs at once (at start), not as drivers claim them.

use alloc::vec::Vec;

/// Size of the frames a plan makes: 4 KiB (`seL4_X86_4K`).
pub const FRAME_BITS: u8 = 12;
/// Size of one frame in bytes.
pub const FRAME_SIZE: u64 = 1 << FRAME_BITS;
/// The largest untyped seL4 creates on x86_64 (`seL4_MaxUntypedBits`).
pub const MAX_UNTYPED_BITS: u8 = 47;
/// The most objects one retype may create (`CONFIG_RETYPE_FAN_OUT_LIMIT`); steps are split
/// to stay within it.
pub const RETYPE_FAN_OUT: u32 = 256;

/// One device untyped from the boot info, as the carver sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceUntyped {
    /// Physical address of its first byte.
    pub paddr: u64,
    /// Its size is `1 << size_bits` bytes.
    pub size_bits: u8,
}

impl DeviceUntyped {
    /// One past its last byte (saturating).
    pub fn end(&self) -> u64 {
        self.paddr.saturating_add(size_of_bits(self.size_bits))
    }

    /// Whether `paddr` lies in it.
    pub fn contains(&self, paddr: u64) -> bool {
        self.paddr <= paddr && paddr < self.end()
    }
}

/// The kind of object one retype step creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// Padding: untypeds of `1 << size_bits` bytes, created only to move the watermark.
    Untyped {
        /// Size of each.
        size_bits: u8,
    },
    /// 4 KiB frames ([`FRAME_BITS`]) covering the target.
    Frame,
}

/// One `Untyped_Retype` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetypeStep {
    /// Which untyped: an index into the list given to [`Carver::new`].
    pub untyped: usize,
    /// The object type and size.
    pub object: Object,
    /// How many objects, 1..=[`RETYPE_FAN_OUT`].
    pub count: u32,
    /// Physical address of the first object (the next ones follow contiguously).
    pub paddr: u64,
}

impl RetypeStep {
    /// Size of each object in bytes.
    pub fn object_size(&self) -> u64 {
        match self.object {
            Object::Untyped { size_bits } => size_of_bits(size_bits),
            Object::Frame => FRAME_SIZE,
        }
    }
}

/// Why a range cannot be carved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CarveError {
    /// The range is empty, or its base or size is not a multiple of 4 KiB.
    Misaligned,
    /// The range runs past the end of the physical address space.
    Overflow,
    /// This address of the range lies in no device untyped.
    Uncovered {
        /// The first uncovered address.
        paddr: u64,
    },
    /// A 4 KiB page of the range straddles two untypeds, so no frame can cover it.
    PageSplit {
        /// The page's address.
        paddr: u64,
    },
    /// The range starts below the untyped's watermark: memory there was already retyped
    /// (plan ranges in address order).
    BelowWatermark {
        /// Which untyped.
        untyped: usize,
        /// Its watermark.
        watermark: u64,
    },
}

/// Device untypeds with their watermarks.
#[derive(Clone, Debug)]
pub struct Carver {
    untypeds: Vec<DeviceUntyped>,
    watermarks: Vec<u64>,
}

impl Carver {
    /// A carver over `untypeds`, none of them retyped yet (each watermark at its start).
    /// The untypeds are expected not to overlap, as the kernel's do not.
    pub fn new(untypeds: &[DeviceUntyped]) -> Self {
        Self {
            untypeds: untypeds.to_vec(),
            watermarks: untypeds.iter().map(|u| u.paddr).collect(),
        }
    }

    /// The watermark of untyped `index` (the next physical address it hands out), or `None`
    /// if there is no such untyped.
    pub fn watermark(&self, index: usize) -> Option<u64> {
        self.watermarks.get(index).copied()
    }

    /// Plans the retypes producing frames for exactly `base..base + size` and advances the
    /// watermarks past it. The range may span several adjacent untypeds.
    ///
    /// Returns the steps in the order to run them: per untyped, padding then frames; the
    /// frames of all steps, in order, cover the range page by page. Errors: `Misaligned`,
    /// `Overflow`, `Uncovered`, `PageSplit`, `BelowWatermark`; on error no watermark moves.
    pub fn plan(&mut self, base: u64, size: u64) -> Result<Vec<RetypeStep>, CarveError> {
        let mut watermarks = self.watermarks.clone();
        let steps = self.plan_with(&mut watermarks, base, size)?;
        self.watermarks = watermarks;
        Ok(steps)
    }

    /// Plans several ranges (say, all memory BARs of a grant) in address order, so that ranges
    /// sharing an untyped work. Returns the plans in the order of `ranges` (`(base, size)`
    /// each), or the first error, in which case no watermark moves.
    pub fn plan_all(&mut self, ranges: &[(u64, u64)]) -> Result<Vec<Vec<RetypeStep>>, CarveError> {
        let mut order: Vec<usize> = (0..ranges.len()).collect();
        order.sort_by_key(|&i| ranges[i].0);
        let mut watermarks = self.watermarks.clone();
        let mut plans = Vec::new();
        plans.resize_with(ranges.len(), Vec::new);
        for i in order {
            let (base, size) = ranges[i];
            plans[i] = self.plan_with(&mut watermarks, base, size)?;
        }
        self.watermarks = watermarks;
        Ok(plans)
    }

    fn plan_with(
        &self,
        watermarks: &mut [u64],
        base: u64,
        size: u64,
    ) -> Result<Vec<RetypeStep>, CarveError> {
        if size == 0 || !base.is_multiple_of(FRAME_SIZE) || !size.is_multiple_of(FRAME_SIZE) {
            return Err(CarveError::Misaligned);
        }
        let end = base.checked_add(size).ok_or(CarveError::Overflow)?;
        let mut steps = Vec::new();
        let mut at = base;
        while at < end {
            let untyped = self
                .untypeds
                .iter()
                .position(|u| u.contains(at))
                .ok_or(CarveError::Uncovered { paddr: at })?;
            let part_end = end.min(self.untypeds[untyped].end());
            if part_end % FRAME_SIZE != 0 {
                return Err(CarveError::PageSplit {
                    paddr: part_end & !(FRAME_SIZE - 1),
                });
            }
            let watermark = watermarks[untyped];
            if watermark > at {
                return Err(CarveError::BelowWatermark { untyped, watermark });
            }
            pad(&mut steps, untyped, watermark, at);
            push(
                &mut steps,
                untyped,
                Object::Frame,
                (part_end - at) / FRAME_SIZE,
                at,
            );
            watermarks[untyped] = part_end;
            at = part_end;
        }
        Ok(steps)
    }
}

/// The frame addresses a plan produces, in order.
pub fn frames(steps: &[RetypeStep]) -> impl Iterator<Item = u64> + '_ {
    steps
        .iter()
        .filter(|s| s.object == Object::Frame)
        .flat_map(|s| (0..u64::from(s.count)).map(move |i| s.paddr + i * FRAME_SIZE))
}

/// `1 << bits`, saturating at `u64::MAX` for 64 and above.
fn size_of_bits(bits: u8) -> u64 {
    1u64.checked_shl(u32::from(bits)).unwrap_or(u64::MAX)
}

/// Appends padding untypeds that move a watermark from `from` to exactly `to` (both page
/// aligned): at each point the largest untyped that is aligned there and does not pass `to`,
/// so the kernel's alignment never skips memory.
fn pad(steps: &mut Vec<RetypeStep>, untyped: usize, from: u64, to: u64) {
    let mut at = from;
    while at < to {
        let fits = 63 - (to - at).leading_zeros();
        let bits = at
            .trailing_zeros()
            .min(fits)
            .min(u32::from(MAX_UNTYPED_BITS)) as u8;
        push(steps, untyped, Object::Untyped { size_bits: bits }, 1, at);
        at += size_of_bits(bits);
    }
}

/// Appends `count` objects at `paddr`, merging with the previous step when it continues it,
/// and splitting at [`RETYPE_FAN_OUT`].
fn push(steps: &mut Vec<RetypeStep>, untyped: usize, object: Object, count: u64, paddr: u64) {
    let mut remaining = count;
    let mut at = paddr;
    while remaining > 0 {
        if let Some(last) = steps.last_mut() {
            let follows = last.untyped == untyped
                && last.object == object
                && last.paddr + u64::from(last.count) * last.object_size() == at
                && last.count < RETYPE_FAN_OUT;
            if follows {
                let n = remaining.min(u64::from(RETYPE_FAN_OUT - last.count));
                last.count += n as u32;
                remaining -= n;
                at += n * last.object_size();
                continue;
            }
        }
        let step = RetypeStep {
            untyped,
            object,
            count: 0,
            paddr: at,
        };
        let n = remaining.min(u64::from(RETYPE_FAN_OUT));
        at += n * step.object_size();
        steps.push(RetypeStep {
            count: n as u32,
            ..step
        });
        remaining -= n;
    }
}
