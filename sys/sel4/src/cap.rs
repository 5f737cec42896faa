//! Typed capability addresses.

use crate::CPtr;
use core::fmt;
use core::marker::PhantomData;

/// A capability address whose object type is `T` (a marker from [`cap_type`]).
///
/// The type is a promise of the holder, not checked by anything but the kernel:
/// invoking a `Cap<T>` that addresses another kind of object fails with an error.
#[repr(transparent)]
pub struct Cap<T> {
    cptr: CPtr,
    _type: PhantomData<T>,
}

impl<T> Cap<T> {
    /// Wraps a raw capability address.
    pub const fn from_raw(cptr: CPtr) -> Self {
        Cap {
            cptr,
            _type: PhantomData,
        }
    }

    /// The raw capability address.
    pub const fn raw(self) -> CPtr {
        self.cptr
    }

    /// The same address seen as another object type.
    pub const fn cast<U>(self) -> Cap<U> {
        Cap::from_raw(self.cptr)
    }
}

impl<T> Clone for Cap<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Cap<T> {}
impl<T> PartialEq for Cap<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cptr == other.cptr
    }
}
impl<T> Eq for Cap<T> {}

impl<T: cap_type::CapType> fmt::Debug for Cap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cap<{}>({:#x})", T::NAME, self.cptr)
    }
}

/// Marker types naming what a [`Cap`] addresses.
pub mod cap_type {
    /// Implemented by every marker: its name, for debug output.
    pub trait CapType {
        /// The marker's name.
        const NAME: &'static str;
    }

    /// Frames of any size: page invocations accept each of them.
    pub trait Frame: CapType {
        /// log2 of the frame size in bytes.
        const SIZE_BITS: u64;
    }

    macro_rules! markers {
        ($($(#[$doc:meta])* $name:ident,)*) => {$(
            $(#[$doc])*
            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            pub enum $name {}
            impl CapType for $name {
                const NAME: &'static str = stringify!($name);
            }
        )*};
    }

    markers! {
        /// Untyped memory.
        Untyped,
        /// An IPC endpoint.
        Endpoint,
        /// A notification object.
        Notification,
        /// A thread control block.
        Tcb,
        /// A CNode (capability table).
        CNode,
        /// The IRQ controller.
        IrqControl,
        /// A handler for one interrupt.
        IrqHandler,
        /// The ASID controller.
        AsidControl,
        /// An ASID pool.
        AsidPool,
        /// The I/O port capability (all ports in seL4 5.0).
        IoPort,
        /// An IOMMU I/O space.
        IoSpace,
        /// The scheduling-domain controller.
        Domain,
        /// A PML4: the root of an x86_64 address space.
        X86Pml4,
        /// A page-directory-pointer table.
        X86Pdpt,
        /// A page directory.
        X86PageDirectory,
        /// A page table.
        X86PageTable,
        /// A 4 KiB frame.
        X86Page,
        /// A 2 MiB frame.
        X86LargePage,
        /// An IOMMU page table.
        X86IoPageTable,
        /// A virtual CPU (VT-x).
        X86Vcpu,
        /// An EPT PML4 (VT-x).
        X86EptPml4,
        /// An EPT PDPT (VT-x).
        X86EptPdpt,
        /// An EPT page directory (VT-x).
        X86EptPd,
        /// An EPT page table (VT-x).
        X86EptPt,
        /// An empty slot.
        Null,
    }

    /// The VSpace root of a thread on x86_64.
    pub type VSpace = X86Pml4;

    impl Frame for X86Page {
        const SIZE_BITS: u64 = crate::consts::PAGE_BITS;
    }
    impl Frame for X86LargePage {
        const SIZE_BITS: u64 = crate::consts::LARGE_PAGE_BITS;
    }
}
