//! The serial console driver component: COM1 behind `proto::console`.
//!
//! Start-up: looks up `devices`, claims its device (`com1` unless the `device` argument says
//! otherwise), takes the I/O port capability (`proto::devices::ports`: on seL4 5.0 the global
//! one) and the IRQ handler (IOAPIC pin 4 for COM1), initialises the UART at the `baud`
//! argument (default 115200), registers `serial` with naming and serves. Every peer answer
//! is checked (`serial::setup`): a restarted peer is asked again with back-off, a refusal
//! ends the component with one line, `serial: cannot claim com1: REASON`.
//!
//! One thread serves IPC and takes interrupts: the IRQ handler signals a copy of the
//! component's notification badged [`IRQ_BADGE`], and that notification is bound to the
//! thread (`TCB_BindNotification`), so the `Recv` on the service endpoint also returns when
//! the interrupt fires, with the notification's badge in place of a client's. Client badges
//! are component ids + 1 (below 2^16), so the bit tells the two apart. After an interrupt
//! there is no caller to reply to, so the loop goes back to a plain `Recv`.
//!
//! Readers that asked to be woken (`watch`) have their notifications moved into slots set
//! aside here ([`WATCHERS`] of them); an interrupt that brought input signals each (a
//! non-blocking send, skipping a slot whose capability is gone).

#![no_std]
#![no_main]

extern crate alloc;

use proto::devices::ports::{self, PortsClient};
use proto::devices::{self, DeviceInfo, DevicesClient};
use proto::naming::{self, NamingClient};
use proto::retry::Backoff;
use proto::sel4_transport::{prepare, received, EndpointTransport, ReceiveSlot, Reply};
use proto::{CapSlot, Name};
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::{CNode, IoPort, IrqHandler, Notification, Tcb};
use sel4::{Cap, CapData, CapRights};
use serial::setup::{self, Peers};
use serial::{Console, Watchers};
use uart16550::{Registers, Uart};

rt::entry!(main);

/// The badge the IRQ's notification signals carry (no client badge has this bit).
const IRQ_BADGE: u64 = 1 << 27;
const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);
/// How many readers may ask to be woken.
const WATCHERS: usize = 8;

/// Moves the notification a reader sent (in the receive slot) into `into`.
fn keep(wake: CapSlot, into: u64) -> bool {
    let _ = OWN.cnode_delete(into, 64);
    OWN.cnode_move(into, 64, OWN, wake.0, 64).is_ok()
}

/// The UART's registers through the I/O port capability, from `base`.
struct PortRegs {
    ports: Cap<IoPort>,
    base: u16,
}

impl Registers for PortRegs {
    fn read(&mut self, offset: u8) -> u8 {
        self.ports
            .x86_io_port_in8(self.base + u16::from(offset))
            .unwrap_or(u8::MAX)
    }
    fn write(&mut self, offset: u8, value: u8) {
        let _ = self
            .ports
            .x86_io_port_out8((self.base + u16::from(offset)).into(), value.into());
    }
}

/// Empties `slot` (a capability from an earlier attempt) so a reply's capability can land
/// there; returns it. Deleting an empty slot succeeds.
fn fresh(slot: u64) -> u64 {
    let _ = OWN.cnode_delete(slot, 64);
    slot
}

/// serial's peers over its endpoints: naming in its well-known slot; devices' endpoint and
/// the capabilities devices hands out land in fixed slots of serial's own.
struct Endpoints {
    devices: u64,
    ports: u64,
    irq: u64,
}

impl Peers for Endpoints {
    fn lookup_devices(&mut self) -> Result<(), naming::Error> {
        let devices = Name::new("devices").expect("a valid name");
        let binding = NamingClient::new(EndpointTransport::receiving(
            slots::NAMING,
            fresh(self.devices),
        ))
        .lookup(devices)?;
        if binding.endpoint != CapSlot(self.devices) {
            return Err(naming::Error::InvalidReply);
        }
        Ok(())
    }

    fn claim(&mut self, device: Name) -> Result<DeviceInfo, devices::Error> {
        DevicesClient::new(EndpointTransport::new(self.devices)).claim(device)
    }

    fn ioport(&mut self, device: Name) -> Result<(), ports::Error> {
        let got = PortsClient::new(EndpointTransport::receiving(
            self.devices,
            fresh(self.ports),
        ))
        .ioport(device)?;
        if got != CapSlot(self.ports) {
            return Err(ports::Error::InvalidReply);
        }
        Ok(())
    }

    fn irq(&mut self, device: Name) -> Result<(), devices::Error> {
        let got = DevicesClient::new(EndpointTransport::receiving(self.devices, fresh(self.irq)))
            .irq(device)?;
        if got != CapSlot(self.irq) {
            return Err(devices::Error::InvalidReply);
        }
        Ok(())
    }

    fn register(&mut self) -> Result<(), naming::Error> {
        NamingClient::new(EndpointTransport::new(slots::NAMING)).register(
            Name::new("serial").expect("a valid name"),
            CapSlot(slots::SERVICE),
        )
    }
}

fn main(info: &'static StartInfo) {
    let baud: u32 = info
        .arg("baud")
        .and_then(|b| b.parse().ok())
        .unwrap_or(115_200);
    let echo = info.arg("echo") != Some("off");
    let device_arg = info.arg("device").unwrap_or("com1");
    let device = Name::new(device_arg).unwrap_or_else(|e| {
        rt::fail(
            "serial",
            "start",
            format_args!("device {device_arg:?}: {e:?}"),
        )
    });
    let mut free = Slots::new();
    let mut slot = || {
        free.alloc()
            .unwrap_or_else(|| rt::fail("serial", "start", "no free slot"))
    };

    // The device, through devices, through naming; a peer that restarted is asked again.
    let mut peers = Endpoints {
        devices: slot(),
        ports: slot(),
        irq: slot(),
    };
    let dev = setup::claim_device(&mut peers, device, &Backoff::STARTUP, rt::yield_times)
        .unwrap_or_else(|e| rt::fail("serial", format_args!("claim {device}"), e));
    let (ports_slot, irq_slot) = (peers.ports, peers.irq);

    // The interrupt: a badged copy of our notification, bound to this thread.
    let badged = slot();
    OWN.cnode_mint(
        badged,
        64,
        OWN,
        slots::NOTIFICATION,
        64,
        CapRights::all(),
        CapData::new_badge(IRQ_BADGE),
    )
    .unwrap_or_else(|e| rt::fail("serial", "mint the IRQ notification", format_args!("{e:?}")));
    let handler: Cap<IrqHandler> = Cap::from_raw(irq_slot);
    handler
        .irq_handler_set_notification(Cap::<Notification>::from_raw(badged))
        .unwrap_or_else(|e| {
            rt::fail(
                "serial",
                "set the IRQ's notification",
                format_args!("{e:?}"),
            )
        });
    Cap::<Tcb>::from_raw(slots::TCB)
        .tcb_bind_notification(Cap::from_raw(slots::NOTIFICATION))
        .unwrap_or_else(|e| rt::fail("serial", "bind the notification", format_args!("{e:?}")));

    let uart = Uart::new(PortRegs {
        ports: Cap::from_raw(ports_slot),
        base: dev.first_port,
    });
    // Keeps what was typed before this point (see `Console::start`).
    let watcher_slots = (0..WATCHERS).map(|_| slot()).collect();
    let receive = slot();
    let mut console = match Console::start(uart, baud, echo) {
        Ok(console) => console.with_watchers(Watchers::new(watcher_slots), keep),
        Err(e) => rt::fail(
            "serial",
            format_args!("use {device}"),
            format_args!("UART at {:#x}: {e:?}", dev.first_port),
        ),
    };
    let _ = handler.irq_handler_ack();
    // Input that arrived while the UART was being set up may have raised the interrupt
    // before anyone listened: take it now rather than wait for the next byte.
    console.interrupt();

    setup::register(&mut peers, &Backoff::STARTUP, rt::yield_times)
        .unwrap_or_else(|e| rt::fail("serial", "register serial", e));
    println!(
        "serial: {device} at ports {:#x}-{:#x}, {baud} baud, IRQ {:?}, echo {}: ready",
        dev.first_port,
        dev.last_port,
        dev.irq,
        if echo { "on" } else { "off" }
    );

    let mut mrs = [0; 4];
    let receive_path = ReceiveSlot::own(receive);
    receive_path.install();
    let (mut info, mut badge) = sel4::syscall::recv_with_mrs(slots::SERVICE, &mut mrs);
    loop {
        if badge & IRQ_BADGE != 0 {
            let before = console.received;
            console.interrupt();
            let _ = handler.irq_handler_ack();
            if console.received != before {
                for kept in console.watchers() {
                    if sel4::syscall::cap_present(kept) {
                        sel4::syscall::nb_signal(Cap::from_raw(kept));
                    }
                }
            }
            receive_path.install();
            (info, badge) = sel4::syscall::recv_with_mrs(slots::SERVICE, &mut mrs);
            continue;
        }
        let request = received(info, &mrs, Some(receive));
        let kept = Reply::Saved.keep(badge);
        let reply = proto::console::dispatch(&mut console, badge, &request);
        // A capability the request brought and nobody kept is dropped.
        let _ = OWN.cnode_delete(receive, 64);
        let (reply_info, reply_mrs) = prepare(&reply);
        mrs = reply_mrs;
        receive_path.install();
        (info, badge) = kept.reply_recv(slots::SERVICE, reply_info, &mut mrs);
    }
}
