//! Who holds which block: per-component budgets from the system description, and the shared
//! regions, allocated on first attach and freed when their last member lets go.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use sysdesc::{ComponentId, System, PAGE_SIZE};

use crate::buddy::{Block, BlockId, Buddy, Step, Untyped};
use crate::{Error, MAX_BLOCK_BITS, MIN_BLOCK_BITS};

/// A block handed out, with the retypes that materialise it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The block.
    pub block: Block,
    /// The splits the binary performs, in order, before handing `block` over (empty when a
    /// free block of the right size already existed).
    pub steps: Vec<Step>,
}

/// A shared region as one member sees it after [`Memory::attach`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The region's index in [`System::shared`].
    pub region: usize,
    /// The blocks making up the region, largest first; together exactly its size.
    pub blocks: Vec<Block>,
    /// The splits to perform first; empty unless this attach allocated the region.
    pub steps: Vec<Step>,
}

/// One component's memory use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in the blocks it holds within its budget (shared regions and its image not
    /// included).
    pub used: u64,
    /// Its budget from the system description, in bytes.
    pub budget: u64,
    /// Bytes in the blocks its image was built from ([`Memory::alloc_image`]), outside the
    /// budget.
    pub image: u64,
}

/// The whole pool; `total == free + clients + shared` always holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    /// Bytes in every untyped added.
    pub total: u64,
    /// Bytes in free blocks.
    pub free: u64,
    /// Bytes held by components (within their budgets and their images).
    pub clients: u64,
    /// Bytes held by allocated shared regions.
    pub shared: u64,
}

/// Who holds a used block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Client(ComponentId),
    /// Image memory of a component: held by it, outside its budget.
    Image(ComponentId),
    Region(usize),
}

#[derive(Debug)]
struct Client {
    budget: u64,
    used: u64,
    image: u64,
    blocks: BTreeSet<BlockId>,
    images: BTreeSet<BlockId>,
}

#[derive(Debug)]
struct Region {
    size: u64,
    members: Vec<ComponentId>,
    attached: BTreeSet<ComponentId>,
    blocks: Vec<BlockId>,
}

/// The memory service's state: the block tree, each component's blocks and budget, and the
/// shared regions.
///
/// Shared-region memory is charged to no component: the description sizes each region, and
/// its validation already checks that budgets and regions together fit the machine.
#[derive(Debug)]
pub struct Memory {
    buddy: Buddy,
    clients: Vec<Client>,
    regions: Vec<Region>,
    names: Vec<String>,
    owners: BTreeMap<BlockId, Owner>,
    shared_bytes: u64,
}

impl Memory {
    /// An empty pool with one client per component of `system` (budget from
    /// `Component::memory`) and one region per shared region; add memory with
    /// [`Memory::add_untyped`].
    pub fn new(system: &System) -> Memory {
        let clients = system
            .components
            .iter()
            .map(|c| Client {
                budget: c.memory,
                used: 0,
                image: 0,
                blocks: BTreeSet::new(),
                images: BTreeSet::new(),
            })
            .collect();
        let regions = system
            .shared
            .iter()
            .map(|r| Region {
                size: r.size,
                members: system.members(&r.name).collect(),
                attached: BTreeSet::new(),
                blocks: Vec::new(),
            })
            .collect();
        Memory {
            buddy: Buddy::new(),
            clients,
            regions,
            names: system.shared.iter().map(|r| r.name.clone()).collect(),
            owners: BTreeMap::new(),
            shared_bytes: 0,
        }
    }

    /// Adds a boot untyped to the pool and returns its block's id.
    ///
    /// Errors: [`Error::BadSize`] if its size is outside
    /// [`MIN_BLOCK_BITS`]..=[`MAX_BLOCK_BITS`] (skip smaller ones), [`Error::Misaligned`] if its
    /// address is not a multiple of its size, [`Error::Overlap`] if it overlaps one added
    /// before.
    pub fn add_untyped(&mut self, untyped: Untyped) -> Result<BlockId, Error> {
        self.buddy.add(untyped)
    }

    /// Gives `client` a block of `2^size_bits` bytes, the free block of that size at the
    /// lowest address, splitting a larger one if needed.
    ///
    /// Errors: [`Error::UnknownClient`]; [`Error::BadSize`] outside
    /// [`MIN_BLOCK_BITS`]..=[`MAX_BLOCK_BITS`]; [`Error::OverBudget`] if the client's use would
    /// exceed its budget; [`Error::OutOfMemory`] if no free block is large enough. Nothing
    /// changes on error.
    pub fn alloc(&mut self, client: ComponentId, size_bits: u8) -> Result<Allocation, Error> {
        let c = self.client(client)?;
        if !(MIN_BLOCK_BITS..=MAX_BLOCK_BITS).contains(&size_bits) {
            return Err(Error::BadSize);
        }
        let within = c
            .used
            .checked_add(1 << size_bits)
            .is_some_and(|u| u <= c.budget);
        if !within {
            return Err(Error::OverBudget);
        }
        let mut steps = Vec::new();
        let block = self.buddy.alloc(size_bits, &mut steps)?;
        let c = &mut self.clients[client.index()];
        c.used += block.bytes();
        c.blocks.insert(block.id);
        self.owners.insert(block.id, Owner::Client(client));
        Ok(Allocation { block, steps })
    }

    /// Gives `client` a block of `2^size_bits` bytes to build its image from (what `proc`
    /// creates the component with): charged to `client` but outside its budget, never freed
    /// by [`Memory::free`], and taken back by [`Memory::release_all`].
    ///
    /// Errors: [`Error::UnknownClient`]; [`Error::BadSize`]; [`Error::OutOfMemory`]. Nothing
    /// changes on error.
    pub fn alloc_image(&mut self, client: ComponentId, size_bits: u8) -> Result<Allocation, Error> {
        self.client(client)?;
        if !(MIN_BLOCK_BITS..=MAX_BLOCK_BITS).contains(&size_bits) {
            return Err(Error::BadSize);
        }
        let mut steps = Vec::new();
        let block = self.buddy.alloc(size_bits, &mut steps)?;
        let c = &mut self.clients[client.index()];
        c.image += block.bytes();
        c.images.insert(block.id);
        self.owners.insert(block.id, Owner::Image(client));
        Ok(Allocation { block, steps })
    }

    /// Takes back `block` from `client` and returns the revoke or merges to perform.
    ///
    /// Errors: [`Error::UnknownClient`]; [`Error::NotOwner`] if `client` does not hold
    /// `block` (a shared region's blocks are freed only with the region).
    pub fn free(&mut self, client: ComponentId, block: BlockId) -> Result<Vec<Step>, Error> {
        self.client(client)?;
        if self.owners.get(&block) != Some(&Owner::Client(client)) {
            return Err(Error::NotOwner);
        }
        let mut steps = Vec::new();
        self.free_client_block(client, block, &mut steps);
        Ok(steps)
    }

    /// Takes back everything `client` holds, for when it exits or is killed: its blocks are
    /// freed and it leaves every shared region it attached to; a region whose last attached
    /// member leaves is freed too. Returns the revokes and merges to perform, in order.
    ///
    /// Errors: [`Error::UnknownClient`].
    pub fn release_all(&mut self, client: ComponentId) -> Result<Vec<Step>, Error> {
        self.client(client)?;
        let mut steps = Vec::new();
        let blocks: Vec<BlockId> = self.clients[client.index()]
            .blocks
            .iter()
            .copied()
            .collect();
        for block in blocks {
            self.free_client_block(client, block, &mut steps);
        }
        let images = core::mem::take(&mut self.clients[client.index()].images);
        for block in images {
            self.clients[client.index()].image -= self.buddy.view(block).bytes();
            self.free_block(block, &mut steps);
        }
        for region in 0..self.regions.len() {
            let r = &mut self.regions[region];
            if r.attached.remove(&client) && r.attached.is_empty() {
                let blocks = core::mem::take(&mut r.blocks);
                for block in blocks {
                    self.free_block(block, &mut steps);
                    self.shared_bytes -= 1 << self.buddy.view(block).size_bits;
                }
            }
        }
        Ok(steps)
    }

    /// Attaches `client` to the shared region `name`, allocating the region if no member holds
    /// it yet, and returns its blocks. Attaching twice is harmless.
    ///
    /// Errors: [`Error::UnknownClient`]; [`Error::UnknownRegion`]; [`Error::Denied`] if the
    /// description does not list `client` as a member; [`Error::OutOfMemory`] if the region
    /// does not fit, or [`Error::BadSize`] if its size is zero or too large for the tree
    /// (nothing changes then).
    pub fn attach(&mut self, client: ComponentId, name: &str) -> Result<Attachment, Error> {
        self.client(client)?;
        let region = self
            .names
            .iter()
            .position(|n| n == name)
            .ok_or(Error::UnknownRegion)?;
        if !self.regions[region].members.contains(&client) {
            return Err(Error::Denied);
        }
        let mut steps = Vec::new();
        if self.regions[region].blocks.is_empty() {
            self.allocate_region(region, &mut steps)?;
        }
        let r = &mut self.regions[region];
        r.attached.insert(client);
        let blocks = r.blocks.iter().map(|&b| self.buddy.view(b)).collect();
        Ok(Attachment {
            region,
            blocks,
            steps,
        })
    }

    /// `client`'s use and budget.
    ///
    /// Errors: [`Error::UnknownClient`].
    pub fn usage(&self, client: ComponentId) -> Result<Usage, Error> {
        let c = self.client(client)?;
        Ok(Usage {
            used: c.used,
            budget: c.budget,
            image: c.image,
        })
    }

    /// The pool's totals.
    pub fn totals(&self) -> Totals {
        Totals {
            total: self.buddy.total(),
            free: self.buddy.free_bytes(),
            clients: self.clients.iter().map(|c| c.used + c.image).sum(),
            shared: self.shared_bytes,
        }
    }

    /// The size bits of the largest free block, `None` when nothing is free.
    pub fn largest_free(&self) -> Option<u8> {
        self.buddy.largest_free()
    }

    /// The number of blocks in the tree: the boot untypeds plus two per split in place.
    pub fn block_count(&self) -> usize {
        self.buddy.live_blocks()
    }

    /// The blocks `client` holds, by id (empty for an unknown client).
    pub fn blocks(&self, client: ComponentId) -> Vec<Block> {
        self.clients
            .get(client.index())
            .map(|c| c.blocks.iter().map(|&b| self.buddy.view(b)).collect())
            .unwrap_or_default()
    }

    /// Whether the shared region `name` is allocated now (`None` for an unknown region).
    pub fn region_allocated(&self, name: &str) -> Option<bool> {
        let i = self.names.iter().position(|n| n == name)?;
        Some(!self.regions[i].blocks.is_empty())
    }

    /// Checks every invariant of the tree and the ledgers: blocks tile each untyped without
    /// overlap, free buddies are merged, every used block has exactly one holder, counters
    /// match, and no client is over budget. For tests and debugging.
    ///
    /// Errors: a description of the first broken invariant.
    pub fn check(&self) -> Result<(), &'static str> {
        let used = self.buddy.check()?;
        if used.len() != self.owners.len() || used.iter().any(|b| !self.owners.contains_key(b)) {
            return Err("used blocks and owners disagree");
        }
        let mut per_client = alloc::vec![0u64; self.clients.len()];
        let mut per_image = alloc::vec![0u64; self.clients.len()];
        let mut shared = 0u64;
        for (&block, &owner) in &self.owners {
            let bytes = self.buddy.view(block).bytes();
            match owner {
                Owner::Client(c) => {
                    if !self.clients[c.index()].blocks.contains(&block) {
                        return Err("owned block missing from its client's set");
                    }
                    per_client[c.index()] += bytes;
                }
                Owner::Image(c) => {
                    if !self.clients[c.index()].images.contains(&block) {
                        return Err("image block missing from its client's set");
                    }
                    per_image[c.index()] += bytes;
                }
                Owner::Region(r) => {
                    if !self.regions[r].blocks.contains(&block) {
                        return Err("owned block missing from its region");
                    }
                    shared += bytes;
                }
            }
        }
        for ((c, bytes), image) in self.clients.iter().zip(per_client).zip(per_image) {
            if c.used != bytes || c.image != image {
                return Err("client use disagrees with its blocks");
            }
            if c.used > c.budget {
                return Err("client over budget");
            }
        }
        for r in &self.regions {
            if r.attached.is_empty() != r.blocks.is_empty() {
                return Err("region allocated without members, or attached but empty");
            }
        }
        if shared != self.shared_bytes {
            return Err("shared byte counter disagrees with the regions");
        }
        let t = self.totals();
        if t.free + t.clients + t.shared != t.total {
            return Err("free + used != total");
        }
        Ok(())
    }

    fn client(&self, client: ComponentId) -> Result<&Client, Error> {
        self.clients.get(client.index()).ok_or(Error::UnknownClient)
    }

    fn free_client_block(&mut self, client: ComponentId, block: BlockId, steps: &mut Vec<Step>) {
        let bytes = self.buddy.view(block).bytes();
        let c = &mut self.clients[client.index()];
        c.used -= bytes;
        c.blocks.remove(&block);
        self.free_block(block, steps);
    }

    fn free_block(&mut self, block: BlockId, steps: &mut Vec<Step>) {
        self.owners.remove(&block);
        // The ledgers only ever name used blocks, so this cannot fail.
        let _ = self.buddy.free(block, steps);
    }

    /// Allocates region `region` as one block per set bit of its page-rounded size, largest
    /// first; on failure frees what it took and leaves `steps` as it was.
    fn allocate_region(&mut self, region: usize, steps: &mut Vec<Step>) -> Result<(), Error> {
        let size = self.regions[region]
            .size
            .checked_next_multiple_of(PAGE_SIZE)
            .unwrap_or(0);
        if size == 0 || size >> (MAX_BLOCK_BITS + 1) != 0 {
            return Err(Error::BadSize);
        }
        let mut taken = Vec::new();
        let mut new_steps = Vec::new();
        for bits in (MIN_BLOCK_BITS..=MAX_BLOCK_BITS).rev() {
            if size & (1 << bits) == 0 {
                continue;
            }
            match self.buddy.alloc(bits, &mut new_steps) {
                Ok(b) => taken.push(b.id),
                Err(e) => {
                    // Undo in reverse: the tree returns to its exact former shape, and the
                    // binary never saw the splits, so the undo steps are dropped too.
                    let mut undo = Vec::new();
                    for id in taken.into_iter().rev() {
                        let _ = self.buddy.free(id, &mut undo);
                    }
                    return Err(e);
                }
            }
        }
        for &id in &taken {
            self.owners.insert(id, Owner::Region(region));
            self.shared_bytes += self.buddy.view(id).bytes();
        }
        self.regions[region].blocks = taken;
        steps.append(&mut new_steps);
        Ok(())
    }
}
