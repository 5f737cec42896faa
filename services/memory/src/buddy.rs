//! A buddy allocator over a tree of untyped blocks: every split is one retype of a parent
//! untyped into its two halves, every merge is one revoke of that parent.
//!
//! The tree is always fully coalesced: a block is split exactly when some block below it is in
//! use, so two free halves of one parent never both exist.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use crate::{Error, MAX_BLOCK_BITS, MIN_BLOCK_BITS};

/// The identity of one block in the tree, stable while the block exists.
///
/// Ids of blocks that a [`Step::Merge`] retires may be handed out again by a later
/// [`Step::Split`]; the binary keeps its capability slot per id accordingly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub u32);

impl BlockId {
    fn index(self) -> usize {
        self.0 as usize
    }
}

/// A boot untyped region handed to the allocator: seL4 gives these as naturally aligned
/// power-of-two regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Untyped {
    /// The caller's opaque handle for its capability.
    pub cap: u64,
    /// Its physical address; a multiple of its size.
    pub paddr: u64,
    /// Its size, as a power of two.
    pub size_bits: u8,
}

/// One block as a client or the binary sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Its identity.
    pub id: BlockId,
    /// Its physical address, a multiple of its size.
    pub paddr: u64,
    /// Its size, as a power of two.
    pub size_bits: u8,
    /// The handle of the boot untyped it was carved from.
    pub untyped: u64,
}

impl Block {
    /// Its size in bytes.
    pub fn bytes(&self) -> u64 {
        1 << self.size_bits
    }
}

/// One kernel operation the binary performs, in the order given, to keep its capabilities in
/// step with the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Retype the untyped `parent` into two untypeds of `size_bits` each, `children[0]` at the
    /// parent's address and `children[1]` just above it.
    Split {
        /// The block being split.
        parent: BlockId,
        /// Its new halves, lower first.
        children: [BlockId; 2],
        /// The size of each half, as a power of two.
        size_bits: u8,
    },
    /// Revoke `block`: everything made from it is deleted and it is fresh again.
    Revoke {
        /// The block to revoke.
        block: BlockId,
    },
    /// Revoke `parent`: its two child untypeds, and everything made from them, are deleted;
    /// the children's ids are retired and `parent` is whole and fresh again.
    Merge {
        /// The block whose halves are joined.
        parent: BlockId,
        /// The halves, now gone.
        children: [BlockId; 2],
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    Used,
    Split([BlockId; 2]),
    /// Not in the tree; the id waits in `spare` for reuse.
    Retired,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    paddr: u64,
    size_bits: u8,
    parent: Option<BlockId>,
    untyped: u64,
    state: State,
}

/// The block tree over every untyped added so far.
#[derive(Debug, Default)]
pub(crate) struct Buddy {
    nodes: Vec<Node>,
    spare: Vec<BlockId>,
    /// Free blocks by size bits, then address.
    free: Vec<BTreeMap<u64, BlockId>>,
    roots: BTreeMap<u64, BlockId>,
    total: u64,
    free_bytes: u64,
}

impl Buddy {
    pub(crate) fn new() -> Buddy {
        Buddy {
            free: vec![BTreeMap::new(); usize::from(MAX_BLOCK_BITS) + 1],
            ..Buddy::default()
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn free_bytes(&self) -> u64 {
        self.free_bytes
    }

    /// The size bits of the largest free block.
    pub(crate) fn largest_free(&self) -> Option<u8> {
        (0..=MAX_BLOCK_BITS)
            .rev()
            .find(|&b| !self.free[usize::from(b)].is_empty())
    }

    /// The number of blocks in the tree (free, used or split).
    pub(crate) fn live_blocks(&self) -> usize {
        self.nodes.len() - self.spare.len()
    }

    pub(crate) fn add(&mut self, u: Untyped) -> Result<BlockId, Error> {
        if !(MIN_BLOCK_BITS..=MAX_BLOCK_BITS).contains(&u.size_bits) {
            return Err(Error::BadSize);
        }
        let size = 1u64 << u.size_bits;
        if !u.paddr.is_multiple_of(size) || u.paddr.checked_add(size).is_none() {
            return Err(Error::Misaligned);
        }
        let end = u.paddr + size;
        let below = self.roots.range(..end).next_back();
        if let Some((_, &id)) = below {
            let n = self.nodes[id.index()];
            if n.paddr + (1 << n.size_bits) > u.paddr {
                return Err(Error::Overlap);
            }
        }
        let id = self.insert(Node {
            paddr: u.paddr,
            size_bits: u.size_bits,
            parent: None,
            untyped: u.cap,
            state: State::Free,
        });
        self.roots.insert(u.paddr, id);
        self.free_list_add(id);
        self.total += size;
        Ok(id)
    }

    /// The block `id` if it is in the tree and in use.
    pub(crate) fn used(&self, id: BlockId) -> Option<Block> {
        let n = self.nodes.get(id.index())?;
        (n.state == State::Used).then(|| self.view(id))
    }

    pub(crate) fn view(&self, id: BlockId) -> Block {
        let n = &self.nodes[id.index()];
        Block {
            id,
            paddr: n.paddr,
            size_bits: n.size_bits,
            untyped: n.untyped,
        }
    }

    /// Takes a free block of exactly `size_bits`, splitting a larger one if needed; the splits
    /// are appended to `steps`.
    pub(crate) fn alloc(&mut self, size_bits: u8, steps: &mut Vec<Step>) -> Result<Block, Error> {
        if !(MIN_BLOCK_BITS..=MAX_BLOCK_BITS).contains(&size_bits) {
            return Err(Error::BadSize);
        }
        let from = (size_bits..=MAX_BLOCK_BITS)
            .find(|&b| !self.free[usize::from(b)].is_empty())
            .ok_or(Error::OutOfMemory)?;
        let (_, &first) = self.free[usize::from(from)]
            .iter()
            .next()
            .ok_or(Error::OutOfMemory)?;
        self.free_list_remove(first);
        let mut block = first;
        while self.nodes[block.index()].size_bits > size_bits {
            let n = self.nodes[block.index()];
            let half = n.size_bits - 1;
            let child = |paddr| Node {
                paddr,
                size_bits: half,
                parent: Some(block),
                untyped: n.untyped,
                state: State::Free,
            };
            let low = self.insert(child(n.paddr));
            let high = self.insert(child(n.paddr + (1 << half)));
            self.nodes[block.index()].state = State::Split([low, high]);
            self.free_list_add(high);
            steps.push(Step::Split {
                parent: block,
                children: [low, high],
                size_bits: half,
            });
            block = low;
        }
        self.nodes[block.index()].state = State::Used;
        Ok(self.view(block))
    }

    /// Returns the used block `id` to the free pool, merging it with free buddies as far up as
    /// they go; the revoke or merges are appended to `steps`.
    pub(crate) fn free(&mut self, id: BlockId, steps: &mut Vec<Step>) -> Result<(), Error> {
        if self.used(id).is_none() {
            return Err(Error::NotOwner);
        }
        self.nodes[id.index()].state = State::Free;
        let mut block = id;
        let mut merged = false;
        while let Some(parent) = self.nodes[block.index()].parent {
            let State::Split(children) = self.nodes[parent.index()].state else {
                break;
            };
            let buddy = if children[0] == block {
                children[1]
            } else {
                children[0]
            };
            if self.nodes[buddy.index()].state != State::Free {
                break;
            }
            self.free_list_remove(buddy);
            for c in children {
                self.nodes[c.index()].state = State::Retired;
                self.spare.push(c);
            }
            self.nodes[parent.index()].state = State::Free;
            steps.push(Step::Merge { parent, children });
            merged = true;
            block = parent;
        }
        if !merged {
            steps.push(Step::Revoke { block: id });
        }
        self.free_list_add(block);
        Ok(())
    }

    fn insert(&mut self, node: Node) -> BlockId {
        match self.spare.pop() {
            Some(id) => {
                self.nodes[id.index()] = node;
                id
            }
            None => {
                let id = BlockId(u32::try_from(self.nodes.len()).unwrap_or(u32::MAX));
                self.nodes.push(node);
                id
            }
        }
    }

    fn free_list_add(&mut self, id: BlockId) {
        let n = self.nodes[id.index()];
        self.free[usize::from(n.size_bits)].insert(n.paddr, id);
        self.free_bytes += 1 << n.size_bits;
    }

    fn free_list_remove(&mut self, id: BlockId) {
        let n = self.nodes[id.index()];
        self.free[usize::from(n.size_bits)].remove(&n.paddr);
        self.free_bytes -= 1 << n.size_bits;
    }

    /// Walks the whole tree and checks every invariant; returns the used blocks.
    pub(crate) fn check(&self) -> Result<Vec<BlockId>, &'static str> {
        let mut used = Vec::new();
        let mut free_seen = 0usize;
        let mut free_bytes = 0u64;
        let mut total = 0u64;
        let mut live = 0usize;
        let mut last_end = 0u64;
        for (&paddr, &root) in &self.roots {
            let n = &self.nodes[root.index()];
            if n.paddr != paddr || n.parent.is_some() {
                return Err("root entry does not match its node");
            }
            if paddr < last_end {
                return Err("roots overlap");
            }
            last_end = paddr + (1 << n.size_bits);
            total += 1 << n.size_bits;
            let mut stack = vec![root];
            while let Some(id) = stack.pop() {
                live += 1;
                let n = &self.nodes[id.index()];
                match n.state {
                    State::Retired => return Err("retired block reachable from a root"),
                    State::Used => used.push(id),
                    State::Free => {
                        free_seen += 1;
                        free_bytes += 1 << n.size_bits;
                        if self.free[usize::from(n.size_bits)].get(&n.paddr) != Some(&id) {
                            return Err("free block missing from its free list");
                        }
                    }
                    State::Split(children) => {
                        let half = n.size_bits - 1;
                        for (i, c) in children.into_iter().enumerate() {
                            let cn = &self.nodes[c.index()];
                            let want = n.paddr + ((i as u64) << half);
                            if cn.parent != Some(id) || cn.size_bits != half || cn.paddr != want {
                                return Err("child does not cover its half of the parent");
                            }
                            if cn.untyped != n.untyped {
                                return Err("child names another boot untyped");
                            }
                            stack.push(c);
                        }
                        let both_free = children
                            .iter()
                            .all(|c| self.nodes[c.index()].state == State::Free);
                        if both_free {
                            return Err("two free buddies left unmerged");
                        }
                    }
                }
            }
        }
        let listed: usize = self.free.iter().map(BTreeMap::len).sum();
        if listed != free_seen {
            return Err("free lists hold blocks outside the tree");
        }
        if free_bytes != self.free_bytes || total != self.total {
            return Err("byte counters disagree with the tree");
        }
        if live + self.spare.len() != self.nodes.len() {
            return Err("a block is neither in the tree nor spare");
        }
        if self
            .spare
            .iter()
            .any(|s| self.nodes[s.index()].state != State::Retired)
        {
            return Err("a spare id is still in use");
        }
        Ok(used)
    }
}
