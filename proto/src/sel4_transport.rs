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
    /// Slot `index` of the component's own CNode (`rt::startinfo::slots::CNODE`), looked up
    /// at full depth: where a component receives capabilities.
    pub const fn own(index: CPtr) -> ReceiveSlot {
        ReceiveSlot {
            cnode: rt::startinfo::slots::CNODE,
            index,
            depth: 64,
        }
    }

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

    /// A transport on `endpoint` whose replies' capabilities land in `slot` of the
    /// component's own CNode ([`ReceiveSlot::own`]).
    pub fn receiving(endpoint: CPtr, slot: CPtr) -> EndpointTransport {
        let mut t = EndpointTransport::new(endpoint);
        t.receive_in(slot);
        t
    }

    /// Makes `slot` of the component's own CNode where the next reply's capability lands.
    pub fn receive_in(&mut self, slot: CPtr) {
        self.receive_into(ReceiveSlot::own(slot));
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

/// Where a server keeps the reply capability of the call it is serving.
///
/// On this (non-MCS) kernel a caller's reply capability lives in the server's thread and
/// dies with it: a client blocked in a call to a server that dies would wait for ever.
/// A restartable server therefore moves it into its CNode on receipt
/// ([`rt::startinfo::slots::CALLER`]), where `proc` finds it when the server ends and answers
/// the caller [`SERVER_RESTARTED`](crate::SERVER_RESTARTED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Left in the thread and answered with `ReplyRecv` (one system call fewer per request):
    /// for the fundamental services, which are never restarted.
    InThread,
    /// Saved to [`rt::startinfo::slots::CALLER`] when a request arrives, answered from
    /// there: for every component `proc` may restart.
    Saved,
}

impl Reply {
    /// Takes the reply capability of the request just received with `badge` out of the
    /// thread (for [`Reply::Saved`]); call after the request's words were read, since the
    /// CNode invocation overwrites the message registers. Only a client's badge
    /// (`1..=0xffff`) marks a call: a signal of the thread's bound notification brings no
    /// reply capability. A failure (the slot was not empty) leaves it in the thread, and
    /// the answer goes from there.
    pub fn keep(self, badge: Word) -> Kept {
        match self {
            Reply::InThread => Kept(false),
            Reply::Saved if badge == 0 || badge & SIGNAL_BADGES != 0 => Kept(false),
            Reply::Saved => {
                let own = sel4::Cap::<sel4::cap_type::CNode>::from_raw(rt::startinfo::slots::CNODE);
                Kept(
                    own.cnode_save_caller(rt::startinfo::slots::CALLER, 64)
                        .is_ok(),
                )
            }
        }
    }
}

/// Where [`Reply::keep`] left the reply capability of the request being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "the request must be answered with Kept::reply or Kept::reply_recv"]
pub struct Kept(bool);

impl Kept {
    /// Answers the request. A caller that is gone (its saved capability was deleted with
    /// it) is skipped: the non-blocking send raises no fault on an empty slot.
    pub fn reply(self, info: MessageInfo, mrs: &[Word; 4]) {
        if self.0 {
            syscall::nb_send_with_mrs(rt::startinfo::slots::CALLER, info, mrs);
        } else {
            syscall::reply_with_mrs(info, mrs);
        }
    }

    /// Answers the request, then waits for the next message on `endpoint` (one
    /// `ReplyRecv` when the capability stayed in the thread); MR0..3 go out from and come
    /// back in `mrs`.
    pub fn reply_recv(
        self,
        endpoint: CPtr,
        info: MessageInfo,
        mrs: &mut [Word; 4],
    ) -> (MessageInfo, Word) {
        if self.0 {
            syscall::nb_send_with_mrs(rt::startinfo::slots::CALLER, info, mrs);
            syscall::recv_with_mrs(endpoint, mrs)
        } else {
            syscall::reply_recv_with_mrs(endpoint, info, mrs)
        }
    }
}

/// Runs a server on `endpoint` for ever: receives a request (a transferred capability
/// lands in `receive`), answers it with `handle(badge, request)`, and replies, keeping the
/// reply capability as `reply` says.
///
/// Before each reply the receive slot is emptied, so a capability the handler did not
/// move out is dropped rather than clobbering the next one; `after_reply` runs once the
/// reply has been delivered (e.g. to delete minted copies the reply carried).
pub fn serve(
    endpoint: CPtr,
    receive: ReceiveSlot,
    reply: Reply,
    mut handle: impl FnMut(Word, &Message) -> Message,
    mut after_reply: impl FnMut(),
) -> ! {
    let receive_cnode = sel4::Cap::<sel4::cap_type::CNode>::from_raw(receive.cnode);
    let depth = receive.depth as u8;
    receive.install();
    let mut mrs = [0; 4];
    let (mut info, mut badge) = syscall::recv_with_mrs(endpoint, &mut mrs);
    loop {
        let request = received(info, &mrs, Some(receive.index));
        let kept = reply.keep(badge);
        let answer = handle(badge, &request);
        // Deleting an empty slot succeeds; a failure here leaves the slot for the
        // next delete, and the kernel refuses to overwrite it meanwhile.
        let _ = receive_cnode.cnode_delete(receive.index, depth);
        let (reply_info, reply_mrs) = prepare(&answer);
        mrs = reply_mrs;
        receive.install();
        (info, badge) = kept.reply_recv(endpoint, reply_info, &mut mrs);
        after_reply();
    }
}

/// Serves the requests already waiting on `endpoint` without blocking, as [`serve`] does
/// one at a time, and returns how many it answered: for a server whose thread also runs
/// other work and looks at its endpoint now and then. Requests with badge 0 (none from a
/// client: every client's copy is badged) end the round.
pub fn serve_waiting(
    endpoint: CPtr,
    receive: ReceiveSlot,
    reply: Reply,
    mut handle: impl FnMut(Word, &Message) -> Message,
) -> usize {
    let receive_cnode = sel4::Cap::<sel4::cap_type::CNode>::from_raw(receive.cnode);
    let depth = receive.depth as u8;
    let mut served = 0;
    loop {
        receive.install();
        let (info, badge) = syscall::nb_recv(endpoint);
        if badge == 0 {
            return served;
        }
        let mrs = [0, 1, 2, 3].map(ipc::get_mr);
        let request = received(info, &mrs, Some(receive.index));
        let kept = reply.keep(badge);
        let answer = handle(badge, &request);
        // As in `serve`: a capability the handler left in the slot is dropped.
        let _ = receive_cnode.cnode_delete(receive.index, depth);
        let (reply_info, reply_mrs) = prepare(&answer);
        kept.reply(reply_info, &reply_mrs);
        served += 1;
    }
}

/// Badge bits that mark a signal of a thread's bound notification rather than a client's
/// request: every client's badge is below 2^16 (`crate::badge`), and signallers of a
/// server's notification use bits from 16 up.
pub const SIGNAL_BADGES: Word = !0xffff;

/// Runs a server on `endpoint` for ever whose thread also has work signalled on its bound
/// notification (a driver: interrupts, a peer's rings). A request is answered with
/// `handle(badge, request)` as in [`serve`]; a signal (badge bits in [`SIGNAL_BADGES`])
/// calls `work(badge)`, and so does every return from a request. The reply capability is
/// kept as `reply` says. While `work` returns true (more to do at once), the next receive
/// does not block and `work(0)` runs when nothing arrived.
pub fn serve_with_work(
    endpoint: CPtr,
    receive: ReceiveSlot,
    reply: Reply,
    mut handle: impl FnMut(Word, &Message) -> Message,
    mut work: impl FnMut(Word) -> bool,
) -> ! {
    let receive_cnode = sel4::Cap::<sel4::cap_type::CNode>::from_raw(receive.cnode);
    let depth = receive.depth as u8;
    let mut busy = work(0);
    loop {
        receive.install();
        let (info, badge) = if busy {
            syscall::nb_recv(endpoint)
        } else {
            syscall::recv(endpoint)
        };
        if badge == 0 || badge & SIGNAL_BADGES != 0 {
            busy = work(badge);
            continue;
        }
        let mrs = [0, 1, 2, 3].map(ipc::get_mr);
        let request = received(info, &mrs, Some(receive.index));
        let kept = reply.keep(badge);
        let answer = handle(badge, &request);
        let _ = receive_cnode.cnode_delete(receive.index, depth);
        let (reply_info, reply_mrs) = prepare(&answer);
        kept.reply(reply_info, &reply_mrs);
        busy = work(0);
    }
}
