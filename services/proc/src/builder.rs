//! Building and tearing down the components proc starts (part of the seL4 binary).
//!
//! Every object of an instance is retyped from untyped blocks `memory` allocates *for* that
//! component (`alloc_for`, charged to it as image memory): frames, paging structures, its
//! CNode, thread and notification, and a *holding* CNode where proc parks the capabilities of
//! the frames and paging structures once they are mapped (a mapping lives as long as its
//! capability, and proc's own CNode has 4096 slots while one component has thousands of
//! pages); its heap and stack frames come from blocks charged within its budget
//! (`alloc_within`). The blocks' accounts (when a new one is needed, how large, which memory
//! pays) are `proc::arena`'s; here are the calls to `memory` and the kernel. Tearing an
//! instance down is: suspend its thread, `release` it at memory (a revoke of
//! its blocks destroys every object and every capability derived from them, in proc's CNode
//! too), then give the slots proc used back to its allocator.
//!
//! What outlives instances comes from proc's own budget: the scratch mapping's paging
//! structures, the timer thread, and the endpoint of each service a component provides (its
//! clients keep that endpoint across restarts; the new instance registers it again).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use loader::build::{load, Objects, Scratch};
use proc::arena::{keeps_endpoint, object_bits, shape_of, Arenas, Holding, Source};
use proc::effects::Instances;
use proc::grants::{arguments, spec};
use proto::memory::supervise::SuperviseClient;
use proto::memory::MemoryClient;
use proto::sel4_transport::EndpointTransport;
use proto::ComponentId;
use proto::SERVER_RESTARTED;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, CNODE_SIZE_BITS, SERVICE_RESTARTED_BADGE};
use sel4::cap_type::{AsidPool, CNode, Tcb, Untyped};
use sel4::{CPtr, Cap, CapData, CapRights, Error, ObjectType, Word};
use sysdesc::System;

const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);

/// Where proc maps a frame for a moment to fill it: far above its image, its start info and
/// its data blob (the boot image).
const SCRATCH_VADDR: Word = 0x10_0000_0000;

/// [`Objects`] over untyped blocks from memory, retyped into proc's own CNode.
struct Pool<'a> {
    slots: &'a mut Slots,
    memory: EndpointTransport,
    /// Who pays for what, and how far each block is used.
    arenas: Arenas,
    /// Every slot of proc's CNode filled for this pool (blocks and objects) and not parked.
    used: Vec<CPtr>,
    /// The instance's holding CNode and how full it is.
    holding: Option<(Cap<CNode>, Holding)>,
}

impl Pool<'_> {
    /// Allocates a block of 2^`bits` bytes for the arena that pays (`budget`) and makes it
    /// the current one.
    fn refill(&mut self, budget: bool, bits: u32) -> Result<(), Error> {
        let source = self.arenas.arena(budget).source;
        let slot = self.slots.alloc().ok_or(Error::NotEnoughMemory)?;
        let t = EndpointTransport::receiving(self.memory.endpoint(), slot);
        let size_bits = bits as u8;
        let got = match source {
            Source::Own => MemoryClient::new(t).alloc(size_bits).is_ok(),
            Source::For(id) => SuperviseClient::new(t).alloc_for(id, size_bits).is_ok(),
            Source::Within(id) => SuperviseClient::new(t).alloc_within(id, size_bits).is_ok(),
        };
        if !got {
            self.slots.free(slot);
            return Err(Error::NotEnoughMemory);
        }
        self.used.push(slot);
        self.arenas.arena(budget).add_block(slot, bits);
        Ok(())
    }

    fn take(&mut self, budget: bool, ty: ObjectType, size_bits: Word) -> Result<CPtr, Error> {
        let bits = object_bits(ty, size_bits);
        if let Some(block_bits) = self.arenas.arena(budget).block_needed(bits) {
            self.refill(budget, block_bits)?;
        }
        let block = self
            .arenas
            .arena(budget)
            .current
            .ok_or(Error::NotEnoughMemory)?;
        let slot = self.slots.alloc().ok_or(Error::NotEnoughMemory)?;
        let untyped = Cap::<Untyped>::from_raw(block.cap);
        if let Err(e) = untyped.untyped_retype(ty.word(), size_bits, OWN, 0, 0, slot, 1) {
            self.slots.free(slot);
            return Err(e);
        }
        self.arenas.arena(budget).placed(bits);
        self.used.push(slot);
        Ok(slot)
    }

    fn forget(&mut self, slot: CPtr) {
        if let Some(i) = self.used.iter().rposition(|&s| s == slot) {
            self.used.remove(i);
        }
        self.slots.free(slot);
    }
}

impl Objects for Pool<'_> {
    fn object(&mut self, ty: ObjectType, size_bits: Word) -> Result<CPtr, Error> {
        self.take(false, ty, size_bits)
    }

    fn budget_frame(&mut self, large: bool) -> Result<CPtr, Error> {
        let ty = if large {
            ObjectType::X86LargePage
        } else {
            ObjectType::X86Page
        };
        self.take(true, ty, 0)
    }

    fn slot(&mut self) -> Result<CPtr, Error> {
        let slot = self.slots.alloc().ok_or(Error::NotEnoughMemory)?;
        self.used.push(slot);
        Ok(slot)
    }

    fn done_with(&mut self, cap: CPtr) -> Result<(), Error> {
        let Some((cnode, holding)) = self.holding.as_mut() else {
            return Ok(());
        };
        let Some(next) = holding.next_slot() else {
            return Ok(());
        };
        cnode.cnode_move(next, holding.bits, OWN, cap, 64)?;
        holding.filled();
        self.forget(cap);
        Ok(())
    }
}

/// What proc keeps of an instance it built.
struct Instance {
    /// Its thread, while it may run.
    tcb: Option<Cap<Tcb>>,
    /// Its thread once proc stopped it (to read where it stopped).
    stopped: Option<Cap<Tcb>>,
    /// Its CNode (to signal its notification, [`Builder::tell_clients`]).
    cnode: Option<Cap<CNode>>,
    /// proc's slots that held its blocks and objects (emptied by memory's release).
    used: Vec<CPtr>,
}

/// The objects proc made for itself at start.
pub struct Own {
    /// A thread for the timer.
    pub tcb: CPtr,
    /// A notification the timer thread waits on while no restart is due.
    pub wake: CPtr,
}

/// Builds the components proc starts.
pub struct Builder {
    /// proc's own CNode slots.
    pub slots: Slots,
    memory: EndpointTransport,
    scratch: Scratch,
    asid_pool: Cap<AsidPool>,
    naming: CPtr,
    /// proc's endpoint for each component that provides a service.
    services: Vec<Option<CPtr>>,
    instances: Vec<Option<Instance>>,
    image: bootimage::Image<'static>,
    system: System,
    /// The TSC frequency (MHz) written into every component's start info (proc's own).
    pub tsc_mhz: u64,
}

impl Builder {
    /// Prepares the scratch mapping, the service endpoints and the timer thread's objects
    /// from proc's own budget. `asid_pool` and `naming` are proc's grants.
    ///
    /// Errors: what failed, for the report.
    pub fn new(
        mut slots: Slots,
        memory: EndpointTransport,
        asid_pool: Cap<AsidPool>,
        naming: CPtr,
        image: bootimage::Image<'static>,
        system: System,
    ) -> Result<(Builder, Own), String> {
        let mut pool = Pool {
            slots: &mut slots,
            memory,
            arenas: Arenas::own(1 << 16),
            used: Vec::new(),
            holding: None,
        };
        let scratch = Scratch::new(&mut pool, Cap::from_raw(slots::VSPACE), SCRATCH_VADDR)
            .map_err(|e| format!("scratch mapping: {e:?}"))?;
        let mut services = Vec::new();
        for c in &system.components {
            services.push(if keeps_endpoint(c) {
                Some(
                    pool.object(ObjectType::Endpoint, 0)
                        .map_err(|e| format!("endpoint for {}: {e:?}", c.name))?,
                )
            } else {
                None
            });
        }
        let tcb = pool
            .object(ObjectType::Tcb, 0)
            .map_err(|e| format!("timer thread: {e:?}"))?;
        let wake = pool
            .object(ObjectType::Notification, 0)
            .map_err(|e| format!("timer notification: {e:?}"))?;
        let instances = system.components.iter().map(|_| None).collect();
        Ok((
            Builder {
                slots,
                memory,
                scratch,
                asid_pool,
                naming,
                services,
                instances,
                image,
                system,
                tsc_mhz: 0,
            },
            Own { tcb, wake },
        ))
    }
}

impl Builder {
    /// Signals the notification of every running component routed to a service `id`
    /// provides with [`SERVICE_RESTARTED_BADGE`]: a new instance of its server is starting.
    fn tell_clients(&mut self, id: ComponentId) {
        let Some(server) = self.system.get(id) else {
            return;
        };
        let Some(slot) = self.slots.alloc() else {
            return;
        };
        for (index, c) in self.system.components.iter().enumerate() {
            let routed = c.routes.iter().any(|r| server.provides.contains(r));
            let cnode = match self.instances.get(index) {
                Some(Some(Instance {
                    tcb: Some(_),
                    cnode: Some(cnode),
                    ..
                })) if routed => *cnode,
                _ => continue,
            };
            let badge = CapData::new_badge(SERVICE_RESTARTED_BADGE);
            let depth = CNODE_SIZE_BITS as u8;
            let rights = CapRights::all();
            if OWN
                .cnode_mint(slot, 64, cnode, slots::NOTIFICATION, depth, rights, badge)
                .is_ok()
            {
                sel4::syscall::nb_signal(Cap::from_raw(slot));
                let _ = OWN.cnode_delete(slot, 64);
            }
        }
        self.slots.free(slot);
    }
}

impl Instances for Builder {
    /// Builds and starts instance `generation` (1 for the first) of component `id`.
    ///
    /// Errors: why not, for the report. What was built stays recorded until
    /// [`Instances::forget`], after memory's release took it back.
    fn start(&mut self, id: ComponentId, generation: u32) -> Result<(), String> {
        self.forget(id);
        let c = self.system.get(id).ok_or("no such component")?;
        let elf = self
            .image
            .elf(&c.binary)
            .ok_or_else(|| format!("no binary `{}` in the boot image", c.binary))?;
        let (heap, stack) = (c.heap_bytes(), c.stack_bytes());
        let plan =
            loader::plan::plan_component(elf, 0, heap, stack).map_err(|e| format!("{e:?}"))?;
        let shape = shape_of(&plan, CNODE_SIZE_BITS as u32);
        let mut pool = Pool {
            slots: &mut self.slots,
            memory: self.memory,
            arenas: Arenas::instance(id, shape.bytes(), plan.budget_bytes()),
            used: Vec::new(),
            holding: None,
        };
        let bits = shape.holding_bits();
        let built = match pool.object(ObjectType::CapTable, Word::from(bits)) {
            Ok(h) => {
                pool.holding = Some((Cap::from_raw(h), Holding::new(bits as u8)));
                let args = arguments(c);
                let service = self.services[id.index()];
                let mut spec = spec(c, id, generation, elf, self.naming, service, &args);
                spec.tsc_mhz = self.tsc_mhz;
                load(&mut pool, &mut self.scratch, self.asid_pool, OWN, &spec)
                    .map(|l| (l.tcb, l.cnode))
                    .map_err(|e| format!("{e:?}"))
            }
            Err(e) => Err(format!("holding CNode: {e:?}")),
        };
        let used = core::mem::take(&mut pool.used);
        let (tcb, cnode, result) = match built {
            Ok((tcb, cnode)) => (Some(tcb), Some(cnode), Ok(())),
            Err(e) => (None, None, Err(e)),
        };
        self.instances[id.index()] = Some(Instance {
            tcb,
            stopped: None,
            cnode,
            used,
        });
        if result.is_ok() && generation > 1 {
            self.tell_clients(id);
        }
        result
    }

    /// Whether an instance of `id` that proc built may be running.
    fn is_live(&self, id: ComponentId) -> bool {
        matches!(
            self.instances.get(id.index()),
            Some(Some(Instance { tcb: Some(_), .. }))
        )
    }

    /// Stops the instance of `id` (its memory goes back with memory's release).
    fn suspend(&mut self, id: ComponentId) {
        if let Some(Some(i)) = self.instances.get_mut(id.index()) {
            if let Some(tcb) = i.tcb.take() {
                let _ = tcb.tcb_suspend();
                i.stopped = Some(tcb);
            }
        }
    }

    /// Moves the reply capability the ended instance of `id` saved (if any) out of its
    /// CNode and answers it with [`SERVER_RESTARTED`], without blocking: a caller that is
    /// gone costs nothing. A component that serves nothing, or whose thread stopped
    /// waiting in its receive (idle: it held no call), is skipped, so that the kernel's
    /// debug console does not report a move from an empty slot at every kill.
    fn fail_pending_call(&mut self, id: ComponentId) -> bool {
        if self.services.get(id.index()).copied().flatten().is_none() {
            return false;
        }
        let Some(Some(instance)) = self.instances.get(id.index()) else {
            return false;
        };
        let Some(cnode) = instance.cnode else {
            return false;
        };
        if let Some(thread) = instance.tcb.or(instance.stopped) {
            // rip, rsp, rflags, rax, rbx, rcx, rdx (system call number), rsi, rdi (its
            // capability).
            if let Ok(regs) = thread.tcb_read_registers(false, 0, 9) {
                if regs.rdx as i64 == sel4::sysno::RECV && regs.rdi == slots::SERVICE {
                    return false;
                }
            }
        }
        let Some(slot) = self.slots.alloc() else {
            return false;
        };
        let depth = CNODE_SIZE_BITS as u8;
        let moved = OWN
            .cnode_move(slot, 64, cnode, slots::CALLER, depth)
            .is_ok();
        if moved {
            let info = sel4::MessageInfo::new(SERVER_RESTARTED, 0, 0, 0);
            sel4::syscall::nb_send_with_mrs(slot, info, &[0; 4]);
            let _ = OWN.cnode_delete(slot, 64);
        }
        self.slots.free(slot);
        moved
    }

    /// Gives back the slots the instance of `id` used; call after memory's release revoked
    /// its blocks (a slot still holding something is cleared).
    fn forget(&mut self, id: ComponentId) {
        if let Some(i) = self.instances.get_mut(id.index()).and_then(Option::take) {
            for slot in i.used {
                let _ = OWN.cnode_delete(slot, 64);
                self.slots.free(slot);
            }
        }
    }
}
