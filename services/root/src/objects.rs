//! Capability slots and kernel objects carved from untyped memory.

use root::summary::Untyped;
use sel4::bootinfo::BootInfoRef;
use sel4::cap_type::{CNode, Untyped as UntypedCap};
use sel4::{init_caps, CPtr, Cap, CapData, CapRights, Word};

/// Hands out the root CNode's free slots and retypes objects from one RAM untyped.
pub struct Allocator {
    next_slot: CPtr,
    end_slot: CPtr,
    untyped: Cap<UntypedCap>,
    desc: Untyped,
}

impl Allocator {
    /// Uses the free slot range of the boot info and its largest RAM untyped.
    pub fn new(bi: &BootInfoRef) -> Allocator {
        let (cptr, u) = bi
            .untypeds()
            .filter(|(_, u)| !u.is_device())
            .max_by_key(|(_, u)| u.size_bits())
            .expect("the kernel hands over RAM untypeds");
        let empty = bi.empty();
        Allocator {
            next_slot: empty.start,
            end_slot: empty.end,
            untyped: Cap::from_raw(cptr),
            desc: Untyped {
                paddr: u.paddr(),
                size_bits: u.size_bits(),
                is_device: false,
            },
        }
    }

    /// A free slot of the root CNode.
    pub fn slot(&mut self) -> CPtr {
        assert!(self.next_slot < self.end_slot, "root CNode slots exhausted");
        self.next_slot += 1;
        self.next_slot - 1
    }

    /// The capability pointer of the untyped objects are carved from.
    pub fn untyped_cptr(&self) -> CPtr {
        self.untyped.raw()
    }

    /// The untyped objects are carved from, and its description.
    pub fn some_untyped(&self) -> (Cap<UntypedCap>, Untyped) {
        (self.untyped, self.desc)
    }

    /// Retypes one object of `object_type` (size `size_bits` where the type needs one)
    /// into a fresh slot.
    pub fn retype<T>(&mut self, object_type: Word, size_bits: Word) -> Cap<T> {
        let slot = self.slot();
        self.untyped
            .untyped_retype(object_type, size_bits, init_caps::CNODE, 0, 0, slot, 1)
            .unwrap_or_else(|e| panic!("retype of object type {object_type} failed: {e:?}"));
        Cap::from_raw(slot)
    }

    /// Mints a copy of `src` with `badge` into a fresh slot.
    pub fn mint<T>(&mut self, src: Cap<T>, badge: Word) -> Cap<T> {
        let slot = self.slot();
        let root: Cap<CNode> = init_caps::CNODE;
        root.cnode_mint(
            slot,
            64,
            root,
            src.raw(),
            64,
            CapRights::all(),
            CapData::new_badge(badge),
        )
        .unwrap_or_else(|e| panic!("mint failed: {e:?}"));
        Cap::from_raw(slot)
    }
}

impl loader::build::Objects for Allocator {
    fn object(&mut self, ty: sel4::ObjectType, size_bits: Word) -> Result<CPtr, sel4::Error> {
        if self.next_slot >= self.end_slot {
            return Err(sel4::Error::NotEnoughMemory);
        }
        let slot = self.slot();
        self.untyped
            .untyped_retype(ty.word(), size_bits, init_caps::CNODE, 0, 0, slot, 1)?;
        Ok(slot)
    }

    fn slot(&mut self) -> Result<CPtr, sel4::Error> {
        if self.next_slot >= self.end_slot {
            return Err(sel4::Error::NotEnoughMemory);
        }
        Ok(Allocator::slot(self))
    }
}
