//! The far ends: the echo loop (a helper thread of the bench, and the peer's `PING`) and
//! the peer role's server (see `microbench::protocol`).

use microbench::protocol::{OK, PING, REFUSED, REPORT, WAKE_SERIES};
use microbench::Config;
use proto::naming::NamingClient;
use proto::sel4_transport::EndpointTransport;
use proto::{CapSlot, Name};
use rt::println;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::{CNode, Notification};
use sel4::{CPtr, Cap, MessageInfo, Word};

use crate::rdtsc;

const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);

/// The reply to a request that is not understood.
fn refused() -> MessageInfo {
    MessageInfo::new(REFUSED, 0, 0, 0)
}

/// The reply to `PING`: MR0 echoed.
fn pong() -> MessageInfo {
    MessageInfo::new(OK, 0, 0, 1)
}

/// Answers `PING` on `endpoint` for ever (anything else is refused).
pub fn echo(endpoint: CPtr) -> ! {
    let mut mrs = [0; 4];
    let (mut info, _) = sel4::syscall::recv_with_mrs(endpoint, &mut mrs);
    loop {
        let reply = if info.label() == PING {
            pong()
        } else {
            refused()
        };
        (info, _) = sel4::syscall::reply_recv_with_mrs(endpoint, reply, &mut mrs);
    }
}

/// The peer role: registers `config.service` and serves it for ever.
pub fn serve(info: &StartInfo, config: &Config) -> ! {
    let mut naming = NamingClient::new(EndpointTransport::new(slots::NAMING));
    let name = Name::new(config.service).unwrap_or_else(|_| {
        panic!(
            "{}: service {:?} is not a name",
            info.name(),
            config.service
        )
    });
    naming
        .register(name, CapSlot(slots::SERVICE))
        .unwrap_or_else(|e| panic!("{}: naming refused {name}: {e:?}", info.name()));
    println!("{}: serving {name}", info.name());

    // A notification sent with a wake-up series lands here.
    let received = slots::FIRST_FREE;
    let install = || sel4::ipc::set_receive_path(slots::CNODE, received, 64);
    let mut mrs = [0; 4];
    install();
    let (mut request, _) = sel4::syscall::recv_with_mrs(slots::SERVICE, &mut mrs);
    loop {
        let has_cap = request.extra_caps() >= 1 && request.caps_unwrapped() & 1 == 0;
        let reply = match request.label() {
            PING => pong(),
            WAKE_SERIES if has_cap && mrs[0] > 0 => {
                sel4::syscall::reply_with_mrs(MessageInfo::new(OK, 0, 0, 0), &mrs);
                let next = wake_series(Cap::from_raw(received), mrs[0], &mut mrs);
                let _ = OWN.cnode_delete(received, 64);
                install();
                request = match next {
                    Some(unanswered) => unanswered,
                    None => sel4::syscall::recv_with_mrs(slots::SERVICE, &mut mrs).0,
                };
                continue;
            }
            _ => refused(),
        };
        if has_cap {
            let _ = OWN.cnode_delete(received, 64);
            install();
        }
        (request, _) = sel4::syscall::reply_recv_with_mrs(slots::SERVICE, reply, &mut mrs);
    }
}

/// Runs `rounds` wake-ups on `ntfn`: waits, reads the TSC, and answers the next `REPORT`
/// with the reading. Returns `None` when done, or the first request that was not a
/// `REPORT` (not answered yet; its words are in `mrs`).
fn wake_series(ntfn: Cap<Notification>, rounds: Word, mrs: &mut [Word; 4]) -> Option<MessageInfo> {
    for _ in 0..rounds {
        sel4::syscall::wait(ntfn);
        let woke = rdtsc();
        let (request, _) = sel4::syscall::recv_with_mrs(slots::SERVICE, mrs);
        if request.label() != REPORT {
            return Some(request);
        }
        mrs[0] = woke;
        sel4::syscall::reply_with_mrs(MessageInfo::new(OK, 0, 0, 1), mrs);
    }
    None
}
