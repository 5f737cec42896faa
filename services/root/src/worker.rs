//! The root task's second thread: same address space, own stack, IPC buffer and
//! fault endpoint. It answers calls on an endpoint and faults on request.

use crate::objects::Allocator;
use sel4::bootinfo::BootInfoRef;
use sel4::cap_type::{Endpoint, Notification, Tcb};
use sel4::{init_caps, CPtr, Cap, CapData, MessageInfo, ObjectType, PrioProps, UserContext, Word};

/// Label of a ping: the worker echoes MR0.
pub const OP_PING: Word = 1;
/// Label of an addition: the worker replies MR0 + MR1.
pub const OP_ADD: Word = 2;
/// Label asking the worker to reply and then fault.
pub const OP_FAULT: Word = 3;
/// The badge of the notification capability the worker signals when it starts.
pub const READY_BADGE: Word = 0x5a;
/// The badge of the worker's fault endpoint capability.
pub const FAULT_BADGE: Word = 0xfa;
/// The address the worker reads to fault.
pub const FAULT_ADDRESS: Word = 0xdead_0000;

const STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

#[repr(C, align(4096))]
struct IpcPage([u8; 4096]);

static mut STACK: Stack = Stack([0; STACK_SIZE]);
static mut IPC_PAGE: IpcPage = IpcPage([0; 4096]);

extern "C" {
    /// First byte of the root task's image (GNU ld's default script defines it).
    static __executable_start: u8;
}

/// The capabilities the root task keeps to talk to the worker.
pub struct Worker {
    /// The endpoint the worker serves.
    pub endpoint: Cap<Endpoint>,
    /// The notification the worker signals when it is up.
    pub ready: Cap<Notification>,
    /// The endpoint the worker's faults arrive on.
    pub fault_endpoint: Cap<Endpoint>,
}

/// Creates and starts the worker thread.
pub fn start(alloc: &mut Allocator, bi: &BootInfoRef) -> Worker {
    let tcb: Cap<Tcb> = alloc.retype(ObjectType::Tcb.word(), 0);
    let endpoint: Cap<Endpoint> = alloc.retype(ObjectType::Endpoint.word(), 0);
    let ready: Cap<Notification> = alloc.retype(ObjectType::Notification.word(), 0);
    let fault_endpoint: Cap<Endpoint> = alloc.retype(ObjectType::Endpoint.word(), 0);
    let ready_badged = alloc.mint(ready, READY_BADGE);
    let fault_badged = alloc.mint(fault_endpoint, FAULT_BADGE);

    // The IPC buffer is a page of our own image: its frame capability is in the
    // boot info's user-image frame range, indexed by page from the image start.
    let ipc_addr = core::ptr::addr_of!(IPC_PAGE) as Word;
    let image_start = core::ptr::addr_of!(__executable_start) as Word;
    let frame = bi.user_image_frames.start + (ipc_addr - image_start) / 4096;

    // Same priority as the root task (255), no authority to raise others' (mcp 0).
    tcb.tcb_configure(
        fault_badged.raw(),
        PrioProps::new(0, 255),
        init_caps::CNODE,
        CapData::NIL,
        init_caps::VSPACE,
        CapData::NIL,
        ipc_addr,
        Cap::from_raw(frame),
    )
    .expect("configure the worker's TCB");

    let stack_top = core::ptr::addr_of!(STACK) as Word + STACK_SIZE as Word;
    let regs = UserContext {
        rip: worker_main as *const () as usize as Word,
        // As if `call` had pushed a return address: rsp = 8 (mod 16) at entry.
        rsp: stack_top - 8,
        rdi: ipc_addr,
        rsi: endpoint.raw(),
        rdx: ready_badged.raw(),
        ..Default::default()
    };
    let count = (core::mem::size_of::<UserContext>() / core::mem::size_of::<Word>()) as Word;
    tcb.tcb_write_registers(true, 0, count, &regs)
        .expect("start the worker");
    Worker {
        endpoint,
        ready,
        fault_endpoint,
    }
}

extern "C" fn worker_main(ipc_buffer: Word, endpoint: CPtr, ready: CPtr) -> ! {
    sel4::ipc::set_user_data(ipc_buffer);
    sel4::syscall::signal(Cap::<Notification>::from_raw(ready));
    let mut mrs = [0; 4];
    let (mut info, _) = sel4::syscall::recv_with_mrs(endpoint, &mut mrs);
    loop {
        let reply = match info.label() {
            OP_PING => MessageInfo::new(0, 0, 0, 1),
            OP_ADD => {
                mrs[0] = mrs[0].wrapping_add(mrs[1]);
                MessageInfo::new(0, 0, 0, 1)
            }
            OP_FAULT => {
                sel4::syscall::reply_with_mrs(MessageInfo::new(0, 0, 0, 0), &mrs);
                #[allow(unsafe_code, reason = "a deliberate fault, for the fault-report check")]
                // SAFETY: not safe at all, on purpose: nothing is mapped there, so the
                // kernel stops this thread and sends a VM fault to our fault endpoint.
                unsafe {
                    core::ptr::read_volatile(FAULT_ADDRESS as *const u64)
                };
                rt::stop_thread()
            }
            _ => MessageInfo::new(1, 0, 0, 0),
        };
        (info, _) = sel4::syscall::reply_recv_with_mrs(endpoint, reply, &mut mrs);
    }
}
