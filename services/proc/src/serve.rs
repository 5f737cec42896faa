//! proc's receive loop, minus the system calls: what woke it (a request, a component's end,
//! the timer), what to answer, and when to tell the timer thread a new deadline.
//!
//! The binary receives on its endpoint, reads the badge with [`Source::of`], builds the
//! [`Event`] (a fault message's words with [`message_words`], a request with the transport's
//! decoding) and hands it to [`Loop::handle`]; it replies with [`Step::reply`] if there is
//! one, otherwise it only receives again, and passes [`Step::timer`] on to its timer thread.
//!
//! # Invariants
//! - A component's end (an exit or a fault on its fault endpoint) and the timer's tick get no
//!   reply; neither does a successful `exit` request: the caller is gone for good.
//! - After every event the due restarts are started, and the timer is told the next deadline
//!   whenever it changed, and always after a tick (the timer drops a deadline once it fired).

use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;

use proto::{ComponentId, Message};

use crate::grants::{fault_source, TICK_BADGE};
use crate::{decode_ending, Effects, Ending, ProcServer};

/// Who sent what proc's `Recv` returned, told by the badge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// proc's timer thread, through the bound notification: a restart is due.
    Tick,
    /// Component `id`'s fault endpoint: it faulted, panicked or exited.
    Ending(ComponentId),
    /// A client's request (`proto::proc`).
    Client,
}

impl Source {
    /// What a message with `badge` is: the tick bit wins, then the fault bit with a valid
    /// component, and anything else is a client's request (its badge is checked by the
    /// operation).
    pub fn of(badge: u64) -> Source {
        if badge & TICK_BADGE != 0 {
            Source::Tick
        } else if let Some(id) = fault_source(badge) {
            Source::Ending(id)
        } else {
            Source::Client
        }
    }
}

/// One message proc's loop received, read.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// The timer thread's signal.
    Tick,
    /// The message component `id`'s fault endpoint delivered: its `label` and `words`.
    Ending {
        /// The component that ended.
        id: ComponentId,
        /// The message's label (the kernel's fault tag).
        label: u64,
        /// Every word of the message ([`message_words`]).
        words: &'a [u64],
    },
    /// A `proto::proc` request from the client with `badge`.
    Request {
        /// The caller's badge.
        badge: u64,
        /// The request.
        message: &'a Message,
    },
}

/// What the timer thread must be told after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerUpdate {
    /// Nothing: it already has the right deadline.
    Keep,
    /// The next deadline (ms, as `Effects::now_ms` counts), `None` for no restart pending.
    Set(Option<u64>),
}

/// What the binary does after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The reply to send, `None` to receive without replying.
    pub reply: Option<Message>,
    /// What to tell the timer thread.
    pub timer: TimerUpdate,
}

/// The last deadline the timer thread was given, and whether to give it a new one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Alarm {
    deadline: Option<u64>,
}

impl Alarm {
    /// The deadline the timer thread has now (`None`: it sleeps).
    pub fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// Records `next` as the deadline after an event, `ticked` if the timer fired: returns
    /// [`TimerUpdate::Set`] when `next` differs from the timer's deadline or after a tick
    /// (the timer forgot its deadline when it fired), [`TimerUpdate::Keep`] otherwise.
    pub fn update(&mut self, next: Option<u64>, ticked: bool) -> TimerUpdate {
        if next != self.deadline || ticked {
            self.deadline = next;
            TimerUpdate::Set(next)
        } else {
            TimerUpdate::Keep
        }
    }
}

/// The words of a message `length` words long whose first four arrived in `registers` and
/// the rest are read with `read` (the IPC buffer on seL4). A fault message can be longer than
/// a request (`proto::message::MAX_WORDS`), so every word is kept.
pub fn message_words(length: usize, registers: &[u64; 4], read: impl Fn(usize) -> u64) -> Vec<u64> {
    (0..length)
        .map(|i| registers.get(i).copied().unwrap_or_else(|| read(i)))
        .collect()
}

/// proc's loop: a [`ProcServer`] and the timer thread's deadline.
#[derive(Debug)]
pub struct Loop<E: Effects> {
    server: ProcServer<E>,
    alarm: Alarm,
}

impl<E: Effects> Loop<E> {
    /// Starts the system over `server` ([`ProcServer::start_all`]), reports `ready, N
    /// components` and one line per component, and starts the restarts already due. Returns
    /// the loop and the first deadline to give the timer thread.
    pub fn start(mut server: ProcServer<E>) -> (Loop<E>, Option<u64>) {
        server.start_all();
        let rows: Vec<_> = server
            .supervisor()
            .list()
            .iter()
            .map(ToString::to_string)
            .collect();
        let effects = server.effects_mut();
        effects.report(&format!("ready, {} components", rows.len()));
        for row in &rows {
            effects.report(row);
        }
        let deadline = server.tick();
        let this = Loop {
            server,
            alarm: Alarm { deadline },
        };
        (this, deadline)
    }

    /// Handles one event: an end is torn down and its policy applied, a request is
    /// dispatched; then the due restarts start. Returns the reply (none for a tick, an end or
    /// a successful `exit`) and what to tell the timer.
    pub fn handle(&mut self, event: Event<'_>) -> Step {
        let mut reply = None;
        let ticked = matches!(event, Event::Tick);
        match event {
            Event::Tick => {}
            Event::Ending { id, label, words } => match decode_ending(label, words) {
                Ending::Exit(status) => self.server.ended(id, status),
                Ending::Fault { kind, addr } => self.server.fault(id, kind, addr),
            },
            Event::Request { badge, message } => {
                let answer = proto::proc::dispatch(&mut self.server, badge, message);
                let exited = message.label == proto::proc::Op::Exit as u64 && answer.label == 0;
                if !exited {
                    reply = Some(answer);
                }
            }
        }
        let next = self.server.tick();
        Step {
            reply,
            timer: self.alarm.update(next, ticked),
        }
    }

    /// The server.
    pub fn server(&self) -> &ProcServer<E> {
        &self.server
    }

    /// The server, to change (tests move its clock).
    pub fn server_mut(&mut self) -> &mut ProcServer<E> {
        &mut self.server
    }

    /// The timer's deadline as last given.
    pub fn alarm(&self) -> Alarm {
        self.alarm
    }
}
