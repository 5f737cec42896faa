//! Messages over seL4 IPC: the client transport and the two conversions a server loop needs.
//!
//! Words 0..4 travel in registers (`call_with_mrs`), the rest in the IPC buffer; a message's
//! capability is extra cap 0. This compiles on the host but runs only on seL4 (it uses the
//! IPC buffer through GS).

use crate::message::{Message, MAX_WORDS, OVERSIZED};
use crate::transport::Transport;
use sel4::{ipc, syscall, CPtr, MessageInfo, Word};

/// Where a capability received with a message is stored: a slot in the caller's CSpace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiveSlot {
    /// The CNode the slot is looked up in.
    pub cnode: CPtr,
    /// The slot's index in `cnode`.
    pub index: CPtr,
    /// The depth of the lookup, in bits.
    pub depth: Word,
}

impl ReceiveSlot {
    /// Makes this the slot the next received capability lands in.
    pub fn install(&self) {
        ipc::set_receive_path(self.cnode, self.index, self.depth);
    }
}

/// A client transport over an endpoint capability (usually a badged copy from naming).
#[derive(Clone, Copy, Debug)]
pub struct EndpointTransport {
    endpoint: CPtr,
    receive: Option<ReceiveSlot>,
}

impl EndpointTransport {
    /// Calls `endpoint`; replies carrying a capability need [`Self::receive_into`] first.
    pub const fn new(endpoint: CPtr) -> EndpointTransport {
        EndpointTransport {
            endpoint,
            receive: None,
        }
    }

    /// Capabilities in replies land in `slot` (which must be empty before each call).
    pub fn receive_into(&mut self, slot: ReceiveSlot) {
        self.receive = Some(slot);
    }

    /// The endpoint this transport calls.
    pub fn endpoint(&self) -> CPtr {
        self.endpoint
    }
}

impl Transport for EndpointTransport {
    fn call(&mut self, request: &Message) -> Message {
        let (info, mut mrs) = prepare(request);
        if let Some(slot) = self.receive {
            slot.install();
        }
        let reply = syscall::call_with_mrs(self.endpoint, info, &mut mrs);
        received(reply, &mrs, self.receive.map(|s| s.index))
    }
}

/// Loads `message` for sending: words 4.. and the capability go to the IPC buffer; returns the
/// message info and words 0..4 for the `_with_mrs` syscalls.
pub fn prepare(message: &Message) -> (MessageInfo, [Word; 4]) {
    let mut mrs = [0; 4];
    for (i, &w) in message.words().iter().enumerate() {
        match mrs.get_mut(i) {
            Some(r) => *r = w,
            None => ipc::set_mr(i, w),
        }
    }
    let extra_caps = match message.cap {
        Some(cap) => {
            ipc::set_cap(0, cap);
            1
        }
        None => 0,
    };
    let info = MessageInfo::new(message.label, 0, extra_caps, message.len() as Word);
    (info, mrs)
}

/// The message that arrived with `info`, its words 0..4 in `mrs` and the rest in the IPC
/// buffer. A transferred capability (not an unwrapped badge) is reported at `receive_slot`.
/// A message longer than [`MAX_WORDS`] gets the label [`OVERSIZED`], so it fails to decode.
pub fn received(info: MessageInfo, mrs: &[Word; 4], receive_slot: Option<CPtr>) -> Message {
    let len = info.length() as usize;
    if len > MAX_WORDS {
        return Message::new(OVERSIZED);
    }
    let mut message = Message::new(info.label());
    for i in 0..len {
        let w = mrs.get(i).copied().unwrap_or_else(|| ipc::get_mr(i));
        // Cannot overflow: len <= MAX_WORDS.
        let _ = message.push(w);
    }
    let transferred = info.extra_caps() >= 1 && info.caps_unwrapped() & 1 == 0;
    message.cap = receive_slot.filter(|_| transferred);
    message
}
