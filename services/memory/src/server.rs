//! `proto::memory` (and the `proc`-only `proto::memory::supervise`) served over a [`Memory`]
//! and the capability operations of [`Kernel`].
//!
//! The server keeps one capability per block of the tree (the boot untypeds it was granted,
//! and the halves each split retypes) and carries out the library's [`Step`]s with them. A
//! client receives the block's own capability in the reply: seL4 transfers a derived copy,
//! a child of the block's, so revoking the block later deletes the copy and everything the
//! client made from it. (seL4 derives an untyped only while it has no children, which holds
//! for every block handed out: fresh halves and revoked blocks have none.)

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use proto::memory::{self, supervise, Allocation, SharedPage, Usage};
use proto::{CapSlot, ComponentId, Name};
use sysdesc::System;

use crate::{BlockId, Error as PoolError, Memory, Step, MIN_BLOCK_BITS};

/// The kernel refused an operation, or no slot was left for its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelError;

/// The capability operations the memory service needs; on seL4, untyped retypes and CNode
/// revokes in the service's own CNode.
pub trait Kernel {
    /// Retypes the untyped `parent` (fresh, or revoked) into two untypeds of `size_bits`
    /// each, lower half first; returns their slots.
    fn split(&mut self, parent: u64, size_bits: u8) -> Result<[u64; 2], KernelError>;
    /// Revokes `cap`: everything derived from it is deleted.
    fn revoke(&mut self, cap: u64);
    /// Forgets `slot`, whose capability a revoke already deleted, so it can be reused.
    fn forget(&mut self, slot: u64);
    /// Retypes the untyped `block` of `2^size_bits` bytes into 4 KiB frames, in address
    /// order; returns their slots.
    fn frames(&mut self, block: u64, size_bits: u8) -> Result<Vec<u64>, KernelError>;
    /// Free slots left for new capabilities.
    fn free_slots(&self) -> usize;
}

/// Slots kept in reserve for the splits of one allocation (one per level of the tree).
const SPLIT_RESERVE: usize = 2 * (crate::MAX_BLOCK_BITS - MIN_BLOCK_BITS) as usize + 2;

/// The memory service: a [`Memory`] pool served as `proto::memory`.
#[derive(Debug)]
pub struct MemoryServer<K: Kernel> {
    pool: Memory,
    kernel: K,
    system: System,
    /// The capability of every block in the tree.
    caps: BTreeMap<BlockId, u64>,
    /// The frames of each allocated shared region, in page order.
    frames: BTreeMap<usize, Vec<u64>>,
    proc: Option<ComponentId>,
    /// This instance, in the high half of every handle.
    instance: u32,
}

impl<K: Kernel> MemoryServer<K> {
    /// A server for `system` with an empty pool; `instance` (say the generation + 1) tells its
    /// handles from an earlier instance's.
    pub fn new(system: System, kernel: K, instance: u32) -> MemoryServer<K> {
        MemoryServer {
            pool: Memory::new(&system),
            kernel,
            proc: system.component_id("proc"),
            system,
            caps: BTreeMap::new(),
            frames: BTreeMap::new(),
            instance,
        }
    }

    /// Adds a granted untyped, whose capability is `cap`, to the pool.
    ///
    /// Errors: as [`Memory::add_untyped`].
    pub fn add_untyped(&mut self, cap: u64, paddr: u64, size_bits: u8) -> Result<(), PoolError> {
        let id = self.pool.add_untyped(crate::Untyped {
            cap,
            paddr,
            size_bits,
        })?;
        self.caps.insert(id, cap);
        Ok(())
    }

    /// The pool.
    pub fn pool(&self) -> &Memory {
        &self.pool
    }

    /// The capability operations.
    pub fn kernel(&self) -> &K {
        &self.kernel
    }

    /// The capability operations, mutably.
    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.kernel
    }

    /// The capability of block `id`, if it is in the tree.
    pub fn cap_of(&self, id: BlockId) -> Option<u64> {
        self.caps.get(&id).copied()
    }

    fn handle(&self, id: BlockId) -> u64 {
        (u64::from(self.instance) << 32) | u64::from(id.0)
    }

    fn perform(&mut self, steps: &[Step]) -> Result<(), KernelError> {
        let mut result = Ok(());
        for step in steps {
            match *step {
                Step::Split {
                    parent,
                    children,
                    size_bits,
                } => {
                    let cap = *self.caps.get(&parent).ok_or(KernelError)?;
                    let halves = self.kernel.split(cap, size_bits)?;
                    self.caps.insert(children[0], halves[0]);
                    self.caps.insert(children[1], halves[1]);
                }
                Step::Revoke { block } => match self.caps.get(&block) {
                    Some(&cap) => self.kernel.revoke(cap),
                    None => result = Err(KernelError),
                },
                Step::Merge { parent, children } => {
                    match self.caps.get(&parent) {
                        Some(&cap) => self.kernel.revoke(cap),
                        None => result = Err(KernelError),
                    }
                    for c in children {
                        if let Some(slot) = self.caps.remove(&c) {
                            self.kernel.forget(slot);
                        }
                    }
                }
            }
        }
        result
    }

    /// Hands out `allocation`'s block after carrying out its splits.
    fn hand_out(&mut self, allocation: crate::Allocation) -> Result<Allocation, memory::Error> {
        if self.perform(&allocation.steps).is_err() {
            return Err(memory::Error::OutOfMemory);
        }
        let cap = self
            .caps
            .get(&allocation.block.id)
            .copied()
            .ok_or(memory::Error::OutOfMemory)?;
        Ok(Allocation {
            handle: self.handle(allocation.block.id),
            untyped: CapSlot(cap),
        })
    }

    /// Takes back everything `id` holds: its blocks are revoked and it leaves its shared
    /// regions (a region's frames go with its last member). Returns the bytes released.
    ///
    /// Errors: [`PoolError::UnknownClient`].
    pub fn release_all(&mut self, id: ComponentId) -> Result<u64, PoolError> {
        let before = self.pool.usage(id)?;
        let steps = self.pool.release_all(id)?;
        // A failed step leaves a capability behind; the pool has moved on regardless.
        let _ = self.perform(&steps);
        let gone: Vec<usize> = self
            .frames
            .keys()
            .copied()
            .filter(|&r| self.pool.region_allocated(&self.system.shared[r].name) == Some(false))
            .collect();
        for r in gone {
            for slot in self.frames.remove(&r).unwrap_or_default() {
                self.kernel.forget(slot);
            }
        }
        Ok(before.used + before.image)
    }

    fn caller(badge: u64) -> Option<ComponentId> {
        proto::client(badge)
    }
}

fn alloc_error(e: PoolError) -> memory::Error {
    match e {
        PoolError::OverBudget => memory::Error::OverBudget,
        PoolError::BadSize => memory::Error::InvalidSize,
        PoolError::UnknownClient => memory::Error::Denied,
        _ => memory::Error::OutOfMemory,
    }
}

impl<K: Kernel> memory::Server for MemoryServer<K> {
    fn alloc(&mut self, badge: u64, size_bits: u8) -> Result<Allocation, memory::Error> {
        let client = Self::caller(badge).ok_or(memory::Error::Denied)?;
        if !(MIN_BLOCK_BITS..=memory::MAX_SIZE_BITS).contains(&size_bits) {
            return Err(memory::Error::InvalidSize);
        }
        if self.kernel.free_slots() < SPLIT_RESERVE {
            return Err(memory::Error::OutOfMemory);
        }
        let allocation = self.pool.alloc(client, size_bits).map_err(alloc_error)?;
        self.hand_out(allocation)
    }

    fn free(&mut self, badge: u64, handle: u64) -> Result<(), memory::Error> {
        let client = Self::caller(badge).ok_or(memory::Error::NotFound)?;
        if handle >> 32 != u64::from(self.instance) {
            return Err(memory::Error::ServerRestarted);
        }
        let block = BlockId(handle as u32);
        let steps = self
            .pool
            .free(client, block)
            .map_err(|_| memory::Error::NotFound)?;
        let _ = self.perform(&steps);
        Ok(())
    }

    fn usage(&mut self, badge: u64) -> Result<Usage, memory::Error> {
        let client = Self::caller(badge).ok_or(memory::Error::NotFound)?;
        self.usage_of_id(client)
    }

    fn usage_of(&mut self, badge: u64, id: ComponentId) -> Result<Usage, memory::Error> {
        let caller = Self::caller(badge);
        if caller.is_none() || (caller != self.proc && caller != Some(id)) {
            return Err(memory::Error::Denied);
        }
        self.usage_of_id(id)
    }

    fn share(&mut self, badge: u64, region: Name, page: u64) -> Result<SharedPage, memory::Error> {
        let client = Self::caller(badge).ok_or(memory::Error::NotFound)?;
        let index = self
            .system
            .shared
            .iter()
            .position(|r| *r.name == *region)
            .ok_or(memory::Error::NotFound)?;
        let size = self.system.shared[index].size;
        let pages = size.div_ceil(sysdesc::PAGE_SIZE);
        if !self.frames.contains_key(&index) {
            // Room for every frame and the splits, before anything changes.
            let needed = usize::try_from(pages).unwrap_or(usize::MAX);
            if self.kernel.free_slots() < needed.saturating_add(SPLIT_RESERVE) {
                return Err(memory::Error::NotFound);
            }
        }
        let attachment = self
            .pool
            .attach(client, &region)
            .map_err(|_| memory::Error::NotFound)?;
        if !self.frames.contains_key(&index) {
            if self.perform(&attachment.steps).is_err() {
                return Err(memory::Error::NotFound);
            }
            let mut frames = Vec::new();
            for b in &attachment.blocks {
                let cap = self
                    .caps
                    .get(&b.id)
                    .copied()
                    .ok_or(memory::Error::NotFound)?;
                match self.kernel.frames(cap, b.size_bits) {
                    Ok(mut f) => frames.append(&mut f),
                    Err(KernelError) => return Err(memory::Error::NotFound),
                }
            }
            self.frames.insert(index, frames);
        }
        if page >= pages {
            return Err(memory::Error::OutOfRange);
        }
        let frame = self
            .frames
            .get(&index)
            .and_then(|f| f.get(usize::try_from(page).ok()?))
            .copied()
            .ok_or(memory::Error::OutOfRange)?;
        Ok(SharedPage {
            frame: CapSlot(frame),
            region_size: size,
        })
    }
}

impl<K: Kernel> MemoryServer<K> {
    fn usage_of_id(&self, id: ComponentId) -> Result<Usage, memory::Error> {
        let u = self.pool.usage(id).map_err(|_| memory::Error::NotFound)?;
        Ok(Usage {
            used: u.used,
            budget: u.budget,
            free_total: self.pool.totals().free,
        })
    }

    fn check_proc(&self, badge: u64) -> Result<(), supervise::Error> {
        match Self::caller(badge) {
            Some(c) if Some(c) == self.proc => Ok(()),
            _ => Err(supervise::Error::Denied),
        }
    }
}

impl<K: Kernel> MemoryServer<K> {
    /// A block for building component `id`, asked by `badge` (which must be proc): from its
    /// budget (`within`) or as image memory.
    fn alloc_supervised(
        &mut self,
        badge: u64,
        id: ComponentId,
        size_bits: u8,
        within: bool,
    ) -> Result<Allocation, supervise::Error> {
        self.check_proc(badge)?;
        if !(MIN_BLOCK_BITS..=memory::MAX_SIZE_BITS).contains(&size_bits) {
            return Err(supervise::Error::InvalidSize);
        }
        if self.kernel.free_slots() < SPLIT_RESERVE {
            return Err(supervise::Error::OutOfMemory);
        }
        let allocation = if within {
            self.pool.alloc(id, size_bits)
        } else {
            self.pool.alloc_image(id, size_bits)
        };
        let allocation = allocation.map_err(|e| match e {
            PoolError::UnknownClient => supervise::Error::NotFound,
            PoolError::BadSize => supervise::Error::InvalidSize,
            PoolError::OverBudget => supervise::Error::OverBudget,
            _ => supervise::Error::OutOfMemory,
        })?;
        self.hand_out(allocation)
            .map_err(|_| supervise::Error::OutOfMemory)
    }
}

impl<K: Kernel> supervise::Server for MemoryServer<K> {
    fn alloc_within(
        &mut self,
        badge: u64,
        id: ComponentId,
        size_bits: u8,
    ) -> Result<Allocation, supervise::Error> {
        self.alloc_supervised(badge, id, size_bits, true)
    }

    fn alloc_for(
        &mut self,
        badge: u64,
        id: ComponentId,
        size_bits: u8,
    ) -> Result<Allocation, supervise::Error> {
        self.alloc_supervised(badge, id, size_bits, false)
    }

    fn release(&mut self, badge: u64, id: ComponentId) -> Result<u64, supervise::Error> {
        self.check_proc(badge)?;
        self.release_all(id).map_err(|_| supervise::Error::NotFound)
    }
}

/// Serves one request on the memory endpoint: labels of `proto::memory::supervise` go to its
/// dispatcher, everything else to `proto::memory`'s.
pub fn dispatch<K: Kernel>(
    server: &mut MemoryServer<K>,
    badge: u64,
    request: &proto::Message,
) -> proto::Message {
    if supervise::Op::from_label(request.label).is_some() {
        supervise::dispatch(server, badge, request)
    } else {
        memory::dispatch(server, badge, request)
    }
}
