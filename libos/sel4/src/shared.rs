//! Shared regions: memory the system description lets this component share with others
//! (`[[shared]]`, joined through the component's `shared` list), mapped from the frames
//! `memory` hands the region's members (`proto::memory` `share`). Every member maps the
//! same frames, so what one writes the others read; protocols over them use `shmring`'s
//! offsets, never pointers, because each member maps the region at its own address.

use alloc::format;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::AtomicU32;

use proto::memory::MemoryClient;
use proto::sel4_transport::EndpointTransport;
use proto::Name;
use sel4::cap_type::X86Page;
use sel4::{CPtr, Cap, CapRights};
use vspace::{Pool, VSpace};

use crate::device::setup;

/// One shared region as this component maps it: `len` bytes from `base`, read-write,
/// cached, for as long as the component runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    base: usize,
    len: usize,
}

impl Region {
    /// The region's first byte in this component's address space.
    pub fn base(&self) -> usize {
        self.base
    }

    /// The region's size in bytes, as the description gives it.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty (never, for a mapped one).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The region as 32-bit words, each accessed atomically: what `shmring` rings and the
    /// links over them take. The other members may write any word at any time.
    pub fn words(&self) -> &'static [AtomicU32] {
        let base = NonNull::new(self.base as *mut u8).expect("a mapped region is not at 0");
        #[allow(
            unsafe_code,
            reason = "a region `map` mapped becomes the atomic words shmring works on"
        )]
        // SAFETY: `map` mapped `base..base + len` read-write for the rest of the program
        // (nothing unmaps a shared region), and this component reaches it only through the
        // atomic words returned here.
        let words = unsafe { shmring::shared_memory(base, self.len) };
        words.expect("a page-aligned region")
    }
}

/// Maps shared region `name` from `memory` (the service's endpoint) into `vspace`. Ends the
/// component with `component: cannot map shared region NAME: REASON` if it is not a member,
/// the region's size is not whole pages within [`vspace::SHARED_MAX`], a page's size
/// disagrees with the first's, or mapping fails.
pub fn map<F: FnMut(u8) -> Option<CPtr>>(
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
    memory: CPtr,
    name: Name,
    component: &'static str,
) -> Region {
    map_frames(pool, vspace, memory, name, component).0
}

/// Maps shared region `name` as [`map`] does and also returns the physical address of each
/// of its pages, in order (seL4's `X86_Page_GetAddress` on the frames), for a driver that
/// lets a device move data straight into the region. Ends the component as [`map`] does,
/// or if a frame's address cannot be read.
pub fn map_physical<F: FnMut(u8) -> Option<CPtr>>(
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
    memory: CPtr,
    name: Name,
    component: &'static str,
) -> (Region, Vec<u64>) {
    let (region, frames) = map_frames(pool, vspace, memory, name, component);
    let addresses = frames
        .iter()
        .map(|&frame| {
            Cap::<X86Page>::from_raw(frame)
                .x86_page_get_address()
                .unwrap_or_else(|e| {
                    rt::fail(
                        component,
                        format_args!("map shared region {name}"),
                        format_args!("frame address: {e:?}"),
                    )
                })
        })
        .collect();
    (region, addresses)
}

fn map_frames<F: FnMut(u8) -> Option<CPtr>>(
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
    memory: CPtr,
    name: Name,
    component: &'static str,
) -> (Region, Vec<CPtr>) {
    let action = format!("map shared region {name}");
    let fail = |reason: &dyn core::fmt::Display| -> ! { rt::fail(component, &action, reason) };
    let mut client = MemoryClient::new(EndpointTransport::new(memory));
    let mut frames: Vec<CPtr> = Vec::new();
    let mut size = None;
    let mut page = 0;
    loop {
        let slot = pool.slot().unwrap_or_else(|e| fail(&format_args!("{e:?}")));
        client.transport().receive_in(slot);
        let shared = setup(component, &action, || client.share(name, page));
        let pages = match size {
            None => vspace::shared_pages(shared.region_size).unwrap_or_else(|| {
                fail(&format_args!("memory reports {} bytes", shared.region_size))
            }),
            Some(first) if first != shared.region_size => fail(&format_args!(
                "page {page} reports {} bytes, page 0 {first}",
                shared.region_size
            )),
            Some(first) => first / vspace::PAGE,
        };
        size = Some(shared.region_size);
        frames.push(shared.frame.0);
        page += 1;
        if page == pages {
            break;
        }
    }
    let attr = sel4::consts::X86_DEFAULT_VM_ATTRIBUTES;
    let base = vspace
        .map(pool, &frames, CapRights::read_write(), attr)
        .unwrap_or_else(|e| fail(&format_args!("{e:?}")));
    let region = Region {
        base: base as usize,
        len: (frames.len() as u64 * vspace::PAGE) as usize,
    };
    (region, frames)
}
