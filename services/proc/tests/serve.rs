//! proc's receive loop without seL4: which badge is what, which messages get a reply, and
//! when the timer thread is given a deadline.

use std::collections::BTreeMap;

use proc::grants::{fault_badge, FAULT_BADGE, TICK_BADGE};
use proc::serve::{message_words, Alarm, Event, Loop, Source, TimerUpdate};
use proc::{Effects, ProcServer, State};
use proto::memory::Usage;
use proto::proc::{self as api, ComponentInfo};
use proto::{ComponentId, Message};
use sysdesc::{Component, RestartPolicy, System};

/// Effects that record: lines printed, instances started, and a clock the test moves.
#[derive(Default)]
struct Log {
    lines: Vec<String>,
    started: Vec<(u16, u32)>,
    live: Vec<u16>,
    now: u64,
}

impl Effects for Log {
    fn start(&mut self, id: ComponentId, generation: u32) -> Result<(), String> {
        self.started.push((id.0, generation));
        self.live.push(id.0);
        Ok(())
    }
    fn can_destroy(&self, id: ComponentId) -> bool {
        self.live.contains(&id.0)
    }
    fn destroy(&mut self, id: ComponentId) {
        self.live.retain(|&l| l != id.0);
    }
    fn release_memory(&mut self, _: ComponentId) {}
    fn withdraw(&mut self, _: ComponentId) {}
    fn report(&mut self, line: &str) {
        self.lines.push(line.into());
    }
    fn now_ms(&self) -> u64 {
        self.now
    }
    fn halt(&mut self, _: u32) {}
    fn usage_of(&mut self, _: ComponentId) -> Option<Usage> {
        None
    }
}

/// The fundamental services, `app` (never restarted) and `svc` (restarted after 100 ms).
fn system() -> System {
    let component = |name: &str| Component {
        name: name.into(),
        binary: name.into(),
        priority: 100,
        memory: 1 << 20,
        fundamental: sysdesc::FUNDAMENTAL.contains(&name),
        provides: Vec::new(),
        routes: if matches!(name, "proc" | "devices") {
            vec!["memory".into()]
        } else {
            Vec::new()
        },
        devices: Vec::new(),
        shared: Vec::new(),
        restart: if name == "svc" {
            RestartPolicy::Always {
                max: 3,
                backoff_ms: 100,
            }
        } else {
            RestartPolicy::Never
        },
        args: BTreeMap::new(),
    };
    let s = System {
        name: "test".into(),
        description: String::new(),
        memory: 512 << 20,
        components: ["naming", "proc", "memory", "devices", "app", "svc"]
            .iter()
            .map(|n| component(n))
            .collect(),
        devices: Vec::new(),
        shared: Vec::new(),
    };
    s.validate().expect("valid");
    s
}

const APP: ComponentId = ComponentId(4);
const SVC: ComponentId = ComponentId(5);

fn started() -> Loop<Log> {
    let (serving, deadline) = Loop::start(ProcServer::new(system(), Log::default()));
    assert_eq!(deadline, None);
    serving
}

fn request(serving: &mut Loop<Log>, badge: u64, request: api::Request) -> proc::serve::Step {
    let message = request.encode().expect("encodes");
    serving.handle(Event::Request {
        badge,
        message: &message,
    })
}

/// A VM fault message at `addr`.
fn vm_fault(addr: u64) -> (u64, Vec<u64>) {
    use sel4::fault::vm_fault as v;
    let mut words = vec![0; v::LENGTH];
    words[v::IP] = 0x40_1000;
    words[v::ADDR] = addr;
    (sel4::FaultTag::VmFault as u64, words)
}

/// The message `rt::exit(status)` makes the kernel send.
fn exit_message(status: u64) -> (u64, Vec<u64>) {
    use sel4::fault::unknown_syscall as u;
    let mut words = vec![0; u::LENGTH];
    words[u::RDI] = status;
    words[u::FAULT_IP] = 0x40_2000;
    words[u::SYSCALL] = rt::startinfo::ending::EXIT as u64;
    (sel4::FaultTag::UnknownSyscall as u64, words)
}

#[test]
fn badges_name_the_tick_a_components_end_or_a_client() {
    assert_eq!(Source::of(TICK_BADGE), Source::Tick);
    // The tick bit wins over anything else in the badge.
    assert_eq!(Source::of(TICK_BADGE | fault_badge(APP)), Source::Tick);
    assert_eq!(Source::of(fault_badge(APP)), Source::Ending(APP));
    assert_eq!(
        Source::of(fault_badge(ComponentId(0))),
        Source::Ending(ComponentId(0))
    );
    // The fault bit without a component, a client's badge, and no badge are requests.
    assert_eq!(Source::of(FAULT_BADGE), Source::Client);
    assert_eq!(Source::of(proto::badge(APP)), Source::Client);
    assert_eq!(Source::of(0), Source::Client);
}

#[test]
fn message_words_come_from_registers_then_the_buffer() {
    let registers = [10, 11, 12, 13];
    let buffer = |i: usize| 100 + i as u64;
    assert_eq!(message_words(0, &registers, buffer), Vec::<u64>::new());
    assert_eq!(message_words(2, &registers, buffer), vec![10, 11]);
    assert_eq!(message_words(4, &registers, buffer), vec![10, 11, 12, 13]);
    // Longer than a request may be: every word is kept.
    let long = message_words(20, &registers, buffer);
    assert_eq!(long.len(), 20);
    assert_eq!(&long[..6], &[10, 11, 12, 13, 104, 105]);
    assert_eq!(long[19], 119);
}

#[test]
fn the_alarm_tells_the_timer_only_what_changed_and_always_after_a_tick() {
    let mut alarm = Alarm::default();
    assert_eq!(alarm.deadline(), None);
    assert_eq!(alarm.update(None, false), TimerUpdate::Keep);
    assert_eq!(alarm.update(Some(100), false), TimerUpdate::Set(Some(100)));
    assert_eq!(alarm.update(Some(100), false), TimerUpdate::Keep);
    assert_eq!(alarm.deadline(), Some(100));
    // The timer dropped its deadline when it fired: give it again even if unchanged.
    assert_eq!(alarm.update(Some(100), true), TimerUpdate::Set(Some(100)));
    assert_eq!(alarm.update(Some(50), false), TimerUpdate::Set(Some(50)));
    assert_eq!(alarm.update(None, false), TimerUpdate::Set(None));
    assert_eq!(alarm.update(None, true), TimerUpdate::Set(None));
    assert_eq!(alarm.deadline(), None);
}

#[test]
fn start_builds_the_others_and_reports_the_table() {
    let serving = started();
    let log = serving.server().effects();
    assert_eq!(log.started, vec![(4, 1), (5, 1)]);
    assert_eq!(log.lines[0], "ready, 6 components");
    assert_eq!(log.lines.len(), 7, "{:?}", log.lines);
    assert!(log.lines[5].contains("app"), "{:?}", log.lines);
    assert!(log.lines[6].contains("svc"), "{:?}", log.lines);
    assert_eq!(serving.alarm().deadline(), None);
}

#[test]
fn requests_are_answered_but_a_successful_exit_is_not() {
    let mut serving = started();
    let step = request(&mut serving, 0, api::Request::List { index: 4 });
    let reply = step.reply.expect("list is answered");
    assert_eq!(reply.label, 0);
    assert_eq!(step.timer, TimerUpdate::Keep);
    // The reply is the listing of `app`.
    let mut client = api::ProcClient::new(proto::Loopback(|_: &Message| reply));
    let info: ComponentInfo = client.list(4).expect("decodes");
    assert_eq!(info.name, "app");

    // An exit refused (a fundamental service may not exit) is answered with the error.
    let refused = request(
        &mut serving,
        proto::badge(ComponentId(2)),
        api::Request::Exit { status: 0 },
    );
    let refused = refused.reply.expect("a refusal is answered");
    assert_eq!(refused.label, api::Error::Denied as u64);

    // `app` exits: no reply, it is down and stays down.
    let step = request(
        &mut serving,
        proto::badge(APP),
        api::Request::Exit { status: 7 },
    );
    assert_eq!(step.reply, None);
    assert_eq!(step.timer, TimerUpdate::Keep);
    assert_eq!(
        serving.server().supervisor().state(APP),
        Some(State::Exited(7))
    );
    // A malformed request is answered (with an error), never dropped.
    let junk = Message::with_words(9999, &[1, 2]).unwrap();
    let step = serving.handle(Event::Request {
        badge: proto::badge(APP),
        message: &junk,
    });
    assert_ne!(step.reply.expect("answered").label, 0);
}

#[test]
fn a_malformed_usage_request_gets_an_error_and_proc_keeps_serving() {
    let mut serving = started();
    let usage = api::Request::Usage { index: 4 }.encode().expect("encodes");
    let bad = [
        // An index past u32, a spare word, and no index at all.
        Message::with_words(usage.label, &[u64::from(u32::MAX) + 1]).unwrap(),
        Message::with_words(usage.label, &[4, 0]).unwrap(),
        Message::new(usage.label),
    ];
    for message in &bad {
        let step = serving.handle(Event::Request {
            badge: proto::badge(APP),
            message,
        });
        let reply = step.reply.expect("a malformed request is answered");
        assert_eq!(reply.label, api::Error::Malformed as u64);
        assert_eq!(step.timer, TimerUpdate::Keep);
    }
    // The next good request is served: `app`'s row, unmeasured (no memory in this test).
    let reply = request(
        &mut serving,
        proto::badge(APP),
        api::Request::Usage { index: 4 },
    )
    .reply
    .expect("usage is answered");
    let mut client = api::ProcClient::new(proto::Loopback(|_: &Message| reply));
    let row = client.usage(4).expect("decodes");
    assert_eq!(row.name, "app");
    assert_eq!(row.state, api::State::Running);
    assert!(!row.measured);
    assert_eq!(row.budget, 1 << 20);
    assert_eq!(serving.server().effects().started, vec![(4, 1), (5, 1)]);
}

#[test]
fn a_fault_arms_the_timer_and_the_tick_restarts() {
    let mut serving = started();
    let (label, words) = vm_fault(0xdead);
    let step = serving.handle(Event::Ending {
        id: SVC,
        label,
        words: &words,
    });
    assert_eq!(step.reply, None, "a fault gets no reply");
    assert_eq!(step.timer, TimerUpdate::Set(Some(100)));
    let log = serving.server().effects();
    assert!(log
        .lines
        .iter()
        .any(|l| l == "fault: component=svc kind=VmFault addr=0xdead"));
    assert!(matches!(
        serving.server().supervisor().state(SVC),
        Some(State::Restarting { at_ms: 100 })
    ));

    // A request meanwhile leaves the timer alone.
    let step = request(&mut serving, 0, api::Request::List { index: 0 });
    assert_eq!(step.timer, TimerUpdate::Keep);

    // An early tick (the TSC is rough): nothing starts, the deadline is given again.
    serving.server_mut().effects_mut().now = 60;
    let step = serving.handle(Event::Tick);
    assert_eq!(
        step,
        proc::serve::Step {
            reply: None,
            timer: TimerUpdate::Set(Some(100))
        }
    );
    assert_eq!(serving.server().effects().started.len(), 2);

    // The due tick restarts it, and the timer is told nothing is pending.
    serving.server_mut().effects_mut().now = 100;
    let step = serving.handle(Event::Tick);
    assert_eq!(step.reply, None);
    assert_eq!(step.timer, TimerUpdate::Set(None));
    assert_eq!(serving.server().effects().started.last(), Some(&(5, 2)));
    assert_eq!(
        serving.server().supervisor().state(SVC),
        Some(State::Running)
    );
    // Once idle, events do not touch the timer.
    let step = request(&mut serving, 0, api::Request::List { index: 0 });
    assert_eq!(step.timer, TimerUpdate::Keep);
    serving.server().supervisor().check().unwrap();
}

#[test]
fn a_due_restart_starts_after_any_event_not_only_a_tick() {
    let mut serving = started();
    let (label, words) = vm_fault(0x10);
    serving.handle(Event::Ending {
        id: SVC,
        label,
        words: &words,
    });
    // The timer thread has not run yet, but a request arrives after the deadline.
    serving.server_mut().effects_mut().now = 150;
    let step = request(&mut serving, 0, api::Request::List { index: 5 });
    assert!(step.reply.is_some());
    assert_eq!(step.timer, TimerUpdate::Set(None));
    assert_eq!(
        serving.server().supervisor().state(SVC),
        Some(State::Running)
    );
}

#[test]
fn an_exit_on_the_fault_endpoint_ends_without_restart() {
    let mut serving = started();
    let (label, words) = exit_message(3);
    let step = serving.handle(Event::Ending {
        id: SVC,
        label,
        words: &words,
    });
    assert_eq!(step.reply, None);
    assert_eq!(
        step.timer,
        TimerUpdate::Keep,
        "an exit schedules no restart"
    );
    assert_eq!(
        serving.server().supervisor().state(SVC),
        Some(State::Exited(3))
    );
    assert!(serving
        .server()
        .effects()
        .lines
        .iter()
        .any(|l| l == "exit: component=svc status=3"));
    // The same end again (a stale message) is reported as ignored, still without a reply.
    let step = serving.handle(Event::Ending {
        id: SVC,
        label,
        words: &words,
    });
    assert_eq!(step.reply, None);
    assert!(serving
        .server()
        .effects()
        .lines
        .last()
        .is_some_and(|l| l.contains("ignored")));
}
