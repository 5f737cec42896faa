//! The bookkeeping of the builder's untyped blocks: which memory pays for an object, when a
//! new block is needed and how large, where each object lands in its block, and how many
//! capabilities the holding CNode still takes.
//!
//! The binary's pool asks [`Arena::block_needed`] before each retype, allocates the block
//! from `memory` as the arena's [`Source`] says, records it ([`Arena::add_block`]) and, once
//! the kernel retyped the object, [`Arena::placed`]. Every number here mirrors the kernel's
//! own watermark, so a full block is never asked for more.
//!
//! # Invariants
//! - An object of 2^`bits` bytes sits at the next multiple of its size in its block, as the
//!   kernel places it; a block's `used` never exceeds its size.
//! - Image memory comes in blocks rounded up ([`block_bits`]); a budget's heap and stack in
//!   blocks rounded down ([`floor_block_bits`]), so they add up to exactly what is used.

use loader::plan::Plan;
use proto::ComponentId;
use sel4::{consts, ObjectType, Word};
use sysdesc::Component;

use crate::image::{block_bits, floor_block_bits, Shape};

/// The size in bits of an object of type `ty` (`size_bits` for the sized types: untyped
/// memory and CNodes).
pub fn object_bits(ty: ObjectType, size_bits: Word) -> u32 {
    let bits = match ty {
        ObjectType::Untyped => size_bits,
        ObjectType::CapTable => size_bits + consts::SLOT_BITS,
        ObjectType::Tcb => consts::TCB_BITS,
        ObjectType::Endpoint => consts::ENDPOINT_BITS,
        ObjectType::Notification => consts::NOTIFICATION_BITS,
        ObjectType::X86LargePage => consts::LARGE_PAGE_BITS,
        _ => consts::PAGE_BITS,
    };
    bits as u32
}

/// Whose memory an [`Arena`] spends, and so which `memory` operation allocates its blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// proc's own budget (`alloc`).
    Own,
    /// The component's image memory (`alloc_for`).
    For(ComponentId),
    /// The component's budget (`alloc_within`): its heap and stack.
    Within(ComponentId),
}

/// An untyped block (the capability's slot in proc's CNode) and how far it is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// The block's capability.
    pub cap: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Bytes up to the end of the last object retyped from it.
    pub used: u64,
}

impl Block {
    /// Whether an object of 2^`bits` bytes still fits, at the next multiple of its size.
    pub fn fits(&self, bits: u32) -> bool {
        let size = 1u64 << bits;
        self.used
            .checked_next_multiple_of(size)
            .and_then(|start| start.checked_add(size))
            .is_some_and(|end| end <= self.size)
    }
}

/// Blocks of one [`Source`]: the current one and the bytes still expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arena {
    /// Whose memory.
    pub source: Source,
    /// The block objects are retyped from now.
    pub current: Option<Block>,
    /// Bytes still expected (sizes the next block).
    pub remaining: u64,
}

impl Arena {
    /// An arena with no block yet, expecting `remaining` bytes of objects.
    pub fn new(source: Source, remaining: u64) -> Arena {
        Arena {
            source,
            current: None,
            remaining,
        }
    }

    /// `None` if an object of 2^`object_bits` bytes fits in the current block; otherwise the
    /// size in bits of the block to allocate: for the budget the largest that the rest fits
    /// in exactly (it pays for whole blocks), for the others the rest rounded up (at most
    /// 2 MiB, at least the object).
    pub fn block_needed(&self, object_bits: u32) -> Option<u32> {
        if self.current.is_some_and(|b| b.fits(object_bits)) {
            return None;
        }
        Some(match self.source {
            Source::Within(_) => floor_block_bits(self.remaining, object_bits),
            Source::Own | Source::For(_) => block_bits(self.remaining, object_bits),
        })
    }

    /// Makes the block of 2^`bits` bytes at `cap` the current one (the previous one stays
    /// allocated, with what was retyped from it).
    pub fn add_block(&mut self, cap: u64, bits: u32) {
        self.current = Some(Block {
            cap,
            size: 1 << bits,
            used: 0,
        });
    }

    /// Records that an object of 2^`bits` bytes was retyped from the current block.
    pub fn placed(&mut self, bits: u32) {
        let size = 1u64 << bits;
        if let Some(b) = self.current.as_mut() {
            b.used = b.used.next_multiple_of(size) + size;
        }
        self.remaining = self.remaining.saturating_sub(size);
    }
}

/// The image arena and, for a component's instance, its budget's: which one pays for what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arenas {
    /// Every object of the image (and proc's own objects).
    pub image: Arena,
    /// Heap and stack frames, if they do not come from `image`.
    pub budget: Option<Arena>,
}

impl Arenas {
    /// proc's own objects: `bytes` expected, from its own budget, heap and stack included.
    pub fn own(bytes: u64) -> Arenas {
        Arenas {
            image: Arena::new(Source::Own, bytes),
            budget: None,
        }
    }

    /// An instance of `id`: `image_bytes` of image memory, `budget_bytes` of heap and stack
    /// from its budget.
    pub fn instance(id: ComponentId, image_bytes: u64, budget_bytes: u64) -> Arenas {
        Arenas {
            image: Arena::new(Source::For(id), image_bytes),
            budget: Some(Arena::new(Source::Within(id), budget_bytes)),
        }
    }

    /// The arena that pays: the budget's for a heap or stack frame (`budget`) if there is
    /// one, the image's otherwise.
    pub fn arena(&mut self, budget: bool) -> &mut Arena {
        match self.budget.as_mut() {
            Some(a) if budget => a,
            _ => &mut self.image,
        }
    }
}

/// A CNode of 2^`bits` slots of the instance where proc parks capabilities it no longer
/// invokes (mapped frames and paging structures), filled in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holding {
    /// The CNode's size in bits of slots.
    pub bits: u8,
    /// The next free slot.
    pub next: u64,
}

impl Holding {
    /// An empty holding CNode of 2^`bits` slots.
    pub fn new(bits: u8) -> Holding {
        Holding { bits, next: 0 }
    }

    /// The slot the next capability goes to, or `None` when full (the capability then stays
    /// in proc's CNode). Call [`Holding::filled`] once it moved.
    pub fn next_slot(&self) -> Option<u64> {
        (self.next < 1u64 << self.bits).then_some(self.next)
    }

    /// Records that the slot [`Holding::next_slot`] gave was filled.
    pub fn filled(&mut self) {
        self.next += 1;
    }
}

/// What the image planned by `plan` is made of, with a CNode of 2^`cnode_bits` slots.
pub fn shape_of(plan: &Plan, cnode_bits: u32) -> Shape {
    Shape {
        pages: plan.pages.len() as u64,
        tables: (plan.pdpts.len() + plan.pds.len() + plan.pts.len()) as u64,
        cnode_bits,
        budget_pages: plan.heap.frame_count() + plan.stack.frame_count(),
    }
}

/// Whether proc makes (and keeps across restarts) a service endpoint for `component`: it
/// builds it, and it provides a service.
pub fn keeps_endpoint(component: &Component) -> bool {
    !component.fundamental && !component.provides.is_empty()
}
