//! Carrying a [`Plan`] out with seL4 invocations: a new component, from objects
//! to a running thread.
//!
//! Every capability pointer here is in the loader's own CNode (resolved with all
//! 64 bits), except those named by [`rt::startinfo::slots`], which are in the new
//! component's CNode.

use crate::plan::{plan_component, Plan, PlanError, PAGE};
use alloc::vec::Vec;
use rt::startinfo::{
    slots, StartInfo, CNODE_SIZE_BITS, DATA_VADDR, IPC_BUFFER_VADDR, STACK_TOP, START_INFO_VADDR,
};
use sel4::cap_type::{AsidPool, CNode, Tcb, X86LargePage, X86Page, X86Pml4};
use sel4::{
    consts, CPtr, Cap, CapData, CapRights, Error, ObjectType, PrioProps, UserContext, Word,
};

/// Depth that resolves a capability pointer in the loader's CNode.
const LOADER_DEPTH: u8 = 64;
/// Depth that resolves a slot index directly in a component's CNode.
const CHILD_DEPTH: u8 = CNODE_SIZE_BITS as u8;

/// Why a component could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadError {
    /// The ELF file was refused.
    Plan(PlanError),
    /// An invocation failed at `step`.
    Kernel {
        /// What the loader was doing.
        step: &'static str,
        /// The kernel's error.
        error: Error,
    },
}

trait Step<T> {
    fn at(self, step: &'static str) -> Result<T, LoadError>;
}

impl<T> Step<T> for Result<T, Error> {
    fn at(self, step: &'static str) -> Result<T, LoadError> {
        self.map_err(|error| LoadError::Kernel { step, error })
    }
}

/// Where the loader gets kernel objects and free slots (in its own CNode).
pub trait Objects {
    /// A new object of type `ty` (`size_bits` for the sized types) in a fresh slot.
    fn object(&mut self, ty: ObjectType, size_bits: Word) -> Result<CPtr, Error>;
    /// A new frame (2 MiB if `large`, else 4 KiB) for the component's heap or stack: memory
    /// its budget pays for. The default takes it like any other object.
    fn budget_frame(&mut self, large: bool) -> Result<CPtr, Error> {
        let ty = if large {
            ObjectType::X86LargePage
        } else {
            ObjectType::X86Page
        };
        self.object(ty, 0)
    }
    /// A free slot.
    fn slot(&mut self) -> Result<CPtr, Error>;
    /// The loader no longer invokes `cap` (a frame or paging structure it has mapped, or
    /// the IPC buffer's frame once the thread is configured): the implementation may move it
    /// out of the loader's CNode (a mapped frame's mapping lives as long as its capability,
    /// so it cannot simply be deleted). The default keeps it where it is.
    fn done_with(&mut self, cap: CPtr) -> Result<(), Error> {
        let _ = cap;
        Ok(())
    }
}

/// A page of the loader's own address space where a frame is mapped for a moment
/// to fill it.
pub struct Scratch {
    vaddr: Word,
    vspace: Cap<X86Pml4>,
}

impl Scratch {
    /// Prepares `vaddr` (page aligned, unused) in the loader's `vspace`, creating
    /// whatever paging structures are missing there.
    pub fn new(
        objects: &mut impl Objects,
        vspace: Cap<X86Pml4>,
        vaddr: Word,
    ) -> Result<Scratch, LoadError> {
        let attr = consts::X86_DEFAULT_VM_ATTRIBUTES;
        let pt = Cap::<sel4::cap_type::X86PageTable>::from_raw(
            objects
                .object(ObjectType::X86PageTable, 0)
                .at("scratch page table")?,
        );
        if pt.x86_page_table_map(vspace, vaddr, attr) == Err(Error::FailedLookup) {
            let pd = Cap::<sel4::cap_type::X86PageDirectory>::from_raw(
                objects
                    .object(ObjectType::X86PageDirectory, 0)
                    .at("scratch page directory")?,
            );
            if pd.x86_page_directory_map(vspace, vaddr, attr) == Err(Error::FailedLookup) {
                let pdpt = Cap::<sel4::cap_type::X86Pdpt>::from_raw(
                    objects.object(ObjectType::X86Pdpt, 0).at("scratch pdpt")?,
                );
                pdpt.x86_pdpt_map(vspace, vaddr, attr)
                    .at("map scratch pdpt")?;
                pd.x86_page_directory_map(vspace, vaddr, attr)
                    .at("map scratch page directory")?;
            }
            pt.x86_page_table_map(vspace, vaddr, attr)
                .at("map scratch page table")?;
        }
        Ok(Scratch { vaddr, vspace })
    }

    /// Maps `frame` here, lets `fill` write the page, and unmaps it again.
    pub fn fill(
        &mut self,
        frame: Cap<X86Page>,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), LoadError> {
        frame
            .x86_page_map(
                self.vspace,
                self.vaddr,
                CapRights::read_write(),
                consts::X86_DEFAULT_VM_ATTRIBUTES,
            )
            .at("map frame at scratch")?;
        // SAFETY: the frame is mapped read-write at `vaddr` for exactly one page,
        // and nothing else uses the scratch page while this borrow lives.
        let page = unsafe { core::slice::from_raw_parts_mut(self.vaddr as *mut u8, PAGE as usize) };
        fill(page);
        frame.x86_page_unmap().at("unmap frame from scratch")
    }
}

/// How a granted capability gets into the new component's CNode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// A copy; the loader keeps its own.
    Copy,
    /// A copy minted with this badge (endpoints and notifications).
    Badged(Word),
    /// Moved: the loader gives its capability away (for capabilities the kernel does
    /// not let anyone copy, such as IRQ control).
    Move,
}

/// A capability the new component receives at a slot of its CNode.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    /// The capability, in the loader's CNode.
    pub source: CPtr,
    /// Rights of a copy.
    pub rights: CapRights,
    /// Copy, mint or move.
    pub how: How,
}

impl Grant {
    /// A plain copy with all rights.
    pub fn copy(source: CPtr) -> Grant {
        Grant {
            source,
            rights: CapRights::all(),
            how: How::Copy,
        }
    }

    /// A copy with all rights, badged.
    pub fn badged(source: CPtr, badge: Word) -> Grant {
        Grant {
            source,
            rights: CapRights::all(),
            how: How::Badged(badge),
        }
    }

    /// The loader's capability itself, moved.
    pub fn moved(source: CPtr) -> Grant {
        Grant {
            source,
            rights: CapRights::all(),
            how: How::Move,
        }
    }
}

/// What to build.
pub struct Spec<'a> {
    /// The component's id (written to its start info).
    pub id: u64,
    /// How many times it was started before.
    pub generation: u64,
    /// Its name (start info, and the kernel's name for the thread).
    pub name: &'a str,
    /// Scheduling priority.
    pub priority: u8,
    /// Its maximum controlled priority: the highest priority it may give the threads it
    /// creates (0 for every component except `proc`, which starts the others).
    pub mcp: u8,
    /// The ELF file.
    pub elf: &'a [u8],
    /// Where its faults go: placed at `slots::FAULT` (badge it with the id).
    pub fault: Grant,
    /// The naming service's endpoint for it, placed at `slots::NAMING`.
    pub naming: Option<Grant>,
    /// The endpoint it serves, placed at `slots::SERVICE`.
    pub service: Option<Grant>,
    /// Role-specific capabilities, placed from `slots::GRANTS` on.
    pub grants: &'a [Grant],
    /// Arguments (`key`, `value`) for its start info.
    pub args: &'a [(&'a str, &'a str)],
    /// The data blob mapped read-only at `DATA_VADDR` (empty: none).
    pub data: &'a [u8],
    /// Bytes of heap (at `HEAP_VADDR`) and of stack (below `STACK_TOP`), from its budget
    /// (`Component::heap_bytes`, `Component::stack_bytes`); 0 leaves the binary's static one.
    pub heap: u64,
    /// See `heap`.
    pub stack: u64,
    /// The TSC's frequency in MHz (written to its start info; 0: unknown).
    pub tsc_mhz: u64,
}

/// The capabilities of a built component that the loader keeps.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Its thread.
    pub tcb: Cap<Tcb>,
    /// Its CNode.
    pub cnode: Cap<CNode>,
    /// Its address space.
    pub vspace: Cap<X86Pml4>,
    /// Every object created for it that is still in the loader's CNode (for teardown), in
    /// creation order: those handed to [`Objects::done_with`] are not listed.
    pub objects: Vec<CPtr>,
}

/// A new object, recorded for teardown.
fn new_object(
    objects: &mut impl Objects,
    created: &mut Vec<CPtr>,
    ty: ObjectType,
    bits: Word,
    step: &'static str,
) -> Result<CPtr, LoadError> {
    let c = objects.object(ty, bits).at(step)?;
    created.push(c);
    Ok(c)
}

/// Hands `cap` to [`Objects::done_with`] and drops it from the teardown list.
fn retire(objects: &mut impl Objects, created: &mut Vec<CPtr>, cap: CPtr) -> Result<(), LoadError> {
    objects.done_with(cap).at("retire a capability")?;
    if let Some(i) = created.iter().rposition(|&c| c == cap) {
        created.remove(i);
    }
    Ok(())
}

/// Builds the component `spec` describes and starts its thread.
pub fn load(
    objects: &mut impl Objects,
    scratch: &mut Scratch,
    asid_pool: Cap<AsidPool>,
    loader_cnode: Cap<CNode>,
    spec: &Spec,
) -> Result<Loaded, LoadError> {
    let plan: Plan = plan_component(spec.elf, spec.data.len(), spec.heap, spec.stack)
        .map_err(LoadError::Plan)?;
    let mut created = Vec::new();
    let attr = consts::X86_DEFAULT_VM_ATTRIBUTES;

    let vspace = Cap::<X86Pml4>::from_raw(new_object(
        objects,
        &mut created,
        ObjectType::X64Pml4,
        0,
        "vspace",
    )?);
    asid_pool
        .x86_asid_pool_assign(vspace)
        .at("assign an ASID")?;
    for &base in &plan.pdpts {
        let c = new_object(objects, &mut created, ObjectType::X86Pdpt, 0, "pdpt")?;
        Cap::<sel4::cap_type::X86Pdpt>::from_raw(c)
            .x86_pdpt_map(vspace, base, attr)
            .at("map pdpt")?;
        retire(objects, &mut created, c)?;
    }
    for &base in &plan.pds {
        let c = new_object(
            objects,
            &mut created,
            ObjectType::X86PageDirectory,
            0,
            "page directory",
        )?;
        Cap::<sel4::cap_type::X86PageDirectory>::from_raw(c)
            .x86_page_directory_map(vspace, base, attr)
            .at("map page directory")?;
        retire(objects, &mut created, c)?;
    }
    for &base in &plan.pts {
        let c = new_object(
            objects,
            &mut created,
            ObjectType::X86PageTable,
            0,
            "page table",
        )?;
        Cap::<sel4::cap_type::X86PageTable>::from_raw(c)
            .x86_page_table_map(vspace, base, attr)
            .at("map page table")?;
        retire(objects, &mut created, c)?;
    }

    let mut info = StartInfo::new(spec.id, spec.generation, spec.name);
    for (k, v) in spec.args {
        // An argument that does not fit is left out; the component sees it missing.
        let _ = info.push_arg(k, v);
    }
    info.grants = spec.grants.len() as u64;
    info.priority = u64::from(spec.priority);
    info.mcp = u64::from(spec.mcp);
    info.data_len = spec.data.len() as u64;
    info.heap_len = plan.heap.len;
    info.stack_len = plan.stack.len;
    info.tsc_mhz = spec.tsc_mhz;

    let mut ipc_frame = None;
    for page in &plan.pages {
        let frame = Cap::<X86Page>::from_raw(new_object(
            objects,
            &mut created,
            ObjectType::X86Page,
            0,
            "frame",
        )?);
        if page.vaddr == START_INFO_VADDR {
            scratch.fill(frame, |p| {
                p[..info.as_bytes().len()].copy_from_slice(info.as_bytes())
            })?;
        } else if !page.copies.is_empty() {
            let source = if page.vaddr >= DATA_VADDR {
                spec.data
            } else {
                spec.elf
            };
            scratch.fill(frame, |p| {
                for c in &page.copies {
                    p[c.page_offset..c.page_offset + c.len]
                        .copy_from_slice(&source[c.file_offset..c.file_offset + c.len]);
                }
            })?;
        }
        let rights = if page.writable {
            CapRights::read_write()
        } else {
            CapRights::read()
        };
        frame
            .x86_page_map(vspace, page.vaddr, rights, attr)
            .at("map page")?;
        if page.vaddr == IPC_BUFFER_VADDR {
            ipc_frame = Some(frame);
        } else {
            retire(objects, &mut created, frame.raw())?;
        }
    }
    let ipc_frame = ipc_frame.expect("plans always contain the IPC buffer page");
    for (vaddr, large) in plan.heap.frames().chain(plan.stack.frames()) {
        let frame = objects.budget_frame(large).at("heap or stack frame")?;
        created.push(frame);
        let mapped = if large {
            Cap::<X86LargePage>::from_raw(frame).x86_page_map(
                vspace,
                vaddr,
                CapRights::read_write(),
                attr,
            )
        } else {
            Cap::<X86Page>::from_raw(frame).x86_page_map(
                vspace,
                vaddr,
                CapRights::read_write(),
                attr,
            )
        };
        mapped.at("map heap or stack frame")?;
        retire(objects, &mut created, frame)?;
    }

    let cnode = Cap::<CNode>::from_raw(new_object(
        objects,
        &mut created,
        ObjectType::CapTable,
        CNODE_SIZE_BITS,
        "cnode",
    )?);
    let tcb = Cap::<Tcb>::from_raw(new_object(
        objects,
        &mut created,
        ObjectType::Tcb,
        0,
        "tcb",
    )?);
    let ntfn = new_object(
        objects,
        &mut created,
        ObjectType::Notification,
        0,
        "notification",
    )?;

    let guard = CapData::new_guard(0, 64 - CNODE_SIZE_BITS);
    let place = |slot: Word, g: Grant, step: &'static str| -> Result<(), LoadError> {
        let (dest, src) = ((slot, CHILD_DEPTH), (loader_cnode, g.source, LOADER_DEPTH));
        match g.how {
            How::Badged(b) => cnode
                .cnode_mint(
                    dest.0,
                    dest.1,
                    src.0,
                    src.1,
                    src.2,
                    g.rights,
                    CapData::new_badge(b),
                )
                .at(step),
            How::Copy => cnode
                .cnode_copy(dest.0, dest.1, src.0, src.1, src.2, g.rights)
                .at(step),
            How::Move => cnode
                .cnode_move(dest.0, dest.1, src.0, src.1, src.2)
                .at(step),
        }
    };
    place(slots::TCB, Grant::copy(tcb.raw()), "grant its TCB")?;
    cnode
        .cnode_mint(
            slots::CNODE,
            CHILD_DEPTH,
            loader_cnode,
            cnode.raw(),
            LOADER_DEPTH,
            CapRights::all(),
            guard,
        )
        .at("grant its CNode")?;
    place(slots::VSPACE, Grant::copy(vspace.raw()), "grant its VSpace")?;
    place(slots::FAULT, spec.fault, "grant its fault endpoint")?;
    if let Some(n) = spec.naming {
        place(slots::NAMING, n, "grant the naming endpoint")?;
    }
    if let Some(s) = spec.service {
        place(slots::SERVICE, s, "grant its service endpoint")?;
    }
    place(
        slots::NOTIFICATION,
        Grant::copy(ntfn),
        "grant its notification",
    )?;
    for (i, g) in spec.grants.iter().enumerate() {
        place(slots::GRANTS + i as Word, *g, "grant a role capability")?;
    }

    tcb.tcb_configure(
        slots::FAULT,
        PrioProps::new(spec.mcp as Word, spec.priority as Word),
        cnode,
        guard,
        vspace,
        CapData::NIL,
        IPC_BUFFER_VADDR,
        ipc_frame,
    )
    .at("configure the thread")?;
    retire(objects, &mut created, ipc_frame.raw())?;
    sel4::syscall::debug_name_thread(tcb, spec.name);
    let regs = UserContext {
        rip: plan.entry,
        rdi: START_INFO_VADDR,
        // 0 (no stack planned) makes `_start` load the binary's static stack.
        rsp: if plan.stack.len > 0 { STACK_TOP } else { 0 },
        ..Default::default()
    };
    let count = (core::mem::size_of::<UserContext>() / core::mem::size_of::<Word>()) as Word;
    tcb.tcb_write_registers(true, 0, count, &regs)
        .at("start the thread")?;
    Ok(Loaded {
        tcb,
        cnode,
        vspace,
        objects: created,
    })
}
