//! The memory service's `proto::memory` server over a model of seL4's capability derivation
//! tree: every reply's untyped must be derivable (no children), every revoke must reach what
//! the client made, and slots must balance.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use memory::server::dispatch;
use memory::{Kernel, KernelError, MemoryServer};
use proto::memory::{self as mem, supervise, MemoryClient};
use proto::{ComponentId, Loopback, Message, Name};

/// A CDT model: each slot's capability and its children (derived copies or retyped objects).
#[derive(Default, Debug)]
struct Cdt {
    next: u64,
    parent: BTreeMap<u64, u64>,
    children: BTreeMap<u64, BTreeSet<u64>>,
    live: BTreeSet<u64>,
    limit: usize,
}

impl Cdt {
    fn with_roots(roots: &[u64]) -> Cdt {
        let mut c = Cdt {
            next: 1000,
            limit: 10_000,
            ..Cdt::default()
        };
        c.live.extend(roots);
        c
    }

    fn child_of(&mut self, parent: u64) -> u64 {
        assert!(
            self.live.contains(&parent),
            "retype from empty slot {parent}"
        );
        let slot = self.next;
        self.next += 1;
        self.live.insert(slot);
        self.parent.insert(slot, parent);
        self.children.entry(parent).or_default().insert(slot);
        slot
    }

    fn delete_tree(&mut self, slot: u64) {
        for c in self.children.remove(&slot).unwrap_or_default() {
            self.delete_tree(c);
            self.live.remove(&c);
            self.parent.remove(&c);
        }
    }

    /// What seL4's IPC transfer of an untyped does: derive (needs no children) a copy.
    fn transfer(&mut self, slot: u64) -> u64 {
        assert!(
            self.children.get(&slot).is_none_or(BTreeSet::is_empty),
            "an untyped with children cannot be derived (slot {slot})"
        );
        self.child_of(slot)
    }
}

impl Kernel for Cdt {
    fn split(&mut self, parent: u64, _size_bits: u8) -> Result<[u64; 2], KernelError> {
        assert!(
            self.children.get(&parent).is_none_or(BTreeSet::is_empty),
            "split of a parent with children"
        );
        Ok([self.child_of(parent), self.child_of(parent)])
    }

    fn revoke(&mut self, cap: u64) {
        assert!(self.live.contains(&cap), "revoke of empty slot {cap}");
        self.delete_tree(cap);
    }

    fn forget(&mut self, slot: u64) {
        assert!(!self.live.contains(&slot), "forgetting a live slot {slot}");
    }

    fn frames(&mut self, block: u64, size_bits: u8) -> Result<Vec<u64>, KernelError> {
        Ok((0..1u64 << (size_bits - 12))
            .map(|_| self.child_of(block))
            .collect())
    }

    fn free_slots(&self) -> usize {
        self.limit.saturating_sub(self.live.len())
    }
}

fn server() -> MemoryServer<Cdt> {
    let system = common::system();
    let mut s = MemoryServer::new(system, Cdt::with_roots(&[100, 101]), 1);
    s.add_untyped(100, 0x20_0000, 21).unwrap();
    s.add_untyped(101, 0x10_0000, 20).unwrap();
    s
}

fn badge(name: &str) -> u64 {
    proto::badge(common::id(&common::system(), name))
}

fn call(s: &mut MemoryServer<Cdt>, who: &str, m: &Message) -> Message {
    dispatch(s, badge(who), m)
}

#[test]
fn alloc_hands_out_derivable_blocks_and_free_revokes_them() {
    let mut s = server();
    let a = badge("a");
    let mut handed = Vec::new();
    for bits in [12, 12, 16, 14] {
        let reply = {
            let mut client = MemoryClient::new(Loopback(|m: &Message| dispatch(&mut s, a, m)));
            client.alloc(bits).unwrap()
        };
        // The client's copy: derived from the block, so the block must have no children.
        let copy = s_kernel(&mut s).transfer(reply.untyped.0);
        let object = s_kernel(&mut s).child_of(copy);
        handed.push((reply.handle, copy, object));
    }
    s.pool().check().unwrap();
    let mut client = MemoryClient::new(Loopback(|m: &Message| dispatch(&mut s, a, m)));
    let u = client.usage().unwrap();
    assert_eq!(u.used, 2 * 4096 + 65536 + 16384);
    assert_eq!(u.budget, 1 << 20);
    for (handle, ..) in &handed {
        client.free(*handle).unwrap();
    }
    assert_eq!(client.free(handed[0].0), Err(mem::Error::NotFound));
    assert_eq!(
        client.free(handed[0].0 & 0xffff_ffff),
        Err(mem::Error::ServerRestarted)
    );
    assert_eq!(client.usage().unwrap().used, 0);
    // Everything the client had, and made, is gone; only the two boot untypeds remain.
    for (_, copy, object) in handed {
        assert!(!s.kernel().live.contains(&copy));
        assert!(!s.kernel().live.contains(&object));
    }
    assert_eq!(s.kernel().live, BTreeSet::from([100, 101]));
    assert_eq!(s.pool().block_count(), 2);
}

/// The server's kernel model, mutably: stands in for the client's side of a transfer.
fn s_kernel(s: &mut MemoryServer<Cdt>) -> &mut Cdt {
    s.kernel_mut()
}

#[test]
fn budgets_sizes_and_usage_rights() {
    let mut s = server();
    let b = badge("b");
    let mut client = MemoryClient::new(Loopback(|m: &Message| dispatch(&mut s, b, m)));
    assert_eq!(client.alloc(11), Err(mem::Error::InvalidSize));
    assert_eq!(client.alloc(31), Err(mem::Error::InvalidSize));
    assert_eq!(client.alloc(17), Err(mem::Error::OverBudget));
    client.alloc(16).unwrap();
    assert_eq!(client.alloc(12), Err(mem::Error::OverBudget));
    let system = common::system();
    let a = common::id(&system, "a");
    let me = common::id(&system, "b");
    assert_eq!(client.usage_of(a), Err(mem::Error::Denied));
    assert_eq!(client.usage_of(me).unwrap().used, 65536);
    let proc_badge = badge("proc");
    let mut proc = MemoryClient::new(Loopback(|m: &Message| dispatch(&mut s, proc_badge, m)));
    assert_eq!(proc.usage_of(me).unwrap().used, 65536);
    assert_eq!(proc.usage_of(ComponentId(999)), Err(mem::Error::NotFound));
    // Badge 0 (unbadged) names nobody.
    let r = dispatch(
        &mut s,
        0,
        &mem::Request::Alloc { size_bits: 12 }.encode().unwrap(),
    );
    assert_eq!(r.label, mem::Error::Denied as u64);
}

#[test]
fn only_proc_supervises_and_release_takes_everything_back() {
    let mut s = server();
    let system = common::system();
    let a = common::id(&system, "a");
    let a_badge = badge("a");
    {
        let mut client = MemoryClient::new(Loopback(|m: &Message| dispatch(&mut s, a_badge, m)));
        client.alloc(13).unwrap();
        client.share(Name::new("ring").unwrap(), 0).unwrap();
    }
    {
        let mut sup =
            supervise::SuperviseClient::new(Loopback(|m: &Message| dispatch(&mut s, a_badge, m)));
        assert_eq!(sup.release(a), Err(supervise::Error::Denied));
        assert_eq!(sup.alloc_for(a, 12), Err(supervise::Error::Denied));
    }
    let proc_badge = badge("proc");
    let mut sup =
        supervise::SuperviseClient::new(Loopback(|m: &Message| dispatch(&mut s, proc_badge, m)));
    // Image memory is outside the budget (1 MiB): 2 MiB fits the pool, not the budget.
    let image = sup.alloc_for(a, 20).unwrap();
    assert_eq!(sup.alloc_for(a, 29), Err(supervise::Error::OutOfMemory));
    assert_eq!(
        sup.alloc_for(ComponentId(999), 12),
        Err(supervise::Error::NotFound)
    );
    assert_eq!(sup.release(a).unwrap(), 8192 + (1 << 20));
    assert_eq!(
        sup.release(ComponentId(999)),
        Err(supervise::Error::NotFound)
    );
    assert!(!s.kernel().live.contains(&image.untyped.0) || s.pool().block_count() == 2);
    s.pool().check().unwrap();
    assert_eq!(s.pool().totals().free, 3 << 20);
    assert_eq!(s.kernel().live, BTreeSet::from([100, 101]));
}

#[test]
fn shared_regions_give_members_the_same_frames() {
    let mut s = server();
    let ring = Name::new("ring").unwrap();
    let page = |s: &mut MemoryServer<Cdt>, who: &str, p: u64| {
        let m = mem::Request::Share {
            region: ring,
            page: p,
        }
        .encode()
        .unwrap();
        let reply = call(s, who, &m);
        proto::codec::decode_reply::<mem::SharedPage, mem::Error>(&reply)
    };
    let a0 = page(&mut s, "a", 0).unwrap();
    let b0 = page(&mut s, "b", 0).unwrap();
    assert_eq!(a0, b0);
    assert_eq!(a0.region_size, 12 * 1024);
    let a2 = page(&mut s, "a", 2).unwrap();
    assert_ne!(a2.frame, a0.frame);
    assert_eq!(page(&mut s, "a", 3), Err(mem::Error::OutOfRange));
    assert_eq!(page(&mut s, "c", 0), Err(mem::Error::NotFound));
    let nowhere = mem::Request::Share {
        region: Name::new("nowhere").unwrap(),
        page: 0,
    }
    .encode()
    .unwrap();
    assert_eq!(
        call(&mut s, "a", &nowhere).label,
        mem::Error::NotFound as u64
    );
    s.pool().check().unwrap();
    // The region stays while one member is attached, and goes with the last.
    let system = common::system();
    s.release_all(common::id(&system, "a")).unwrap();
    assert_eq!(s.pool().region_allocated("ring"), Some(true));
    s.release_all(common::id(&system, "b")).unwrap();
    assert_eq!(s.pool().region_allocated("ring"), Some(false));
    assert_eq!(s.kernel().live, BTreeSet::from([100, 101]));
    s.pool().check().unwrap();
}

#[test]
fn garbage_never_panics() {
    let mut s = server();
    let mut rng = common::Rng(7);
    for _ in 0..2000 {
        let label = rng.below(20);
        let n = rng.below(5) as usize;
        let words: Vec<u64> = (0..n).map(|_| rng.below(64)).collect();
        let m = Message::with_words(label, &words).unwrap();
        let _ = call(&mut s, "a", &m);
        let _ = call(&mut s, "proc", &m);
    }
    s.pool().check().unwrap();
}

#[test]
fn heap_and_stack_blocks_are_charged_within_the_budget() {
    let mut s = server();
    let system = common::system();
    let a = common::id(&system, "a");
    {
        let a_badge = badge("a");
        let mut sup =
            supervise::SuperviseClient::new(Loopback(|m: &Message| dispatch(&mut s, a_badge, m)));
        assert_eq!(sup.alloc_within(a, 12), Err(supervise::Error::Denied));
    }
    let proc_badge = badge("proc");
    {
        let mut sup = supervise::SuperviseClient::new(Loopback(|m: &Message| {
            dispatch(&mut s, proc_badge, m)
        }));
        // a's budget is 1 MiB: half and a quarter fit, another half does not.
        sup.alloc_within(a, 19).unwrap();
        sup.alloc_within(a, 18).unwrap();
        assert_eq!(sup.alloc_within(a, 19), Err(supervise::Error::OverBudget));
        assert_eq!(sup.alloc_within(a, 11), Err(supervise::Error::InvalidSize));
        assert_eq!(
            sup.alloc_within(ComponentId(999), 12),
            Err(supervise::Error::NotFound)
        );
    }
    // The component itself now has only the last quarter left to allocate at run time.
    {
        let a_badge = badge("a");
        let mut client = MemoryClient::new(Loopback(|m: &Message| dispatch(&mut s, a_badge, m)));
        let usage = client.usage().unwrap();
        assert_eq!(usage.used, 3 << 18);
        client.alloc(18).unwrap();
        assert!(client.alloc(12).is_err());
    }
    let mut sup =
        supervise::SuperviseClient::new(Loopback(|m: &Message| dispatch(&mut s, proc_badge, m)));
    assert_eq!(sup.release(a).unwrap(), 1 << 20);
    s.pool().check().unwrap();
}
