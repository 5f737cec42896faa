//! Shared by the proto tests: a small random generator, message generators and one mock
//! server per interface.
#![allow(dead_code)]

use proto::codec::Field;
use proto::{console, devices, memory, naming, proc};
use proto::{Bytes, CapSlot, ComponentId, Message, Name, MAX_WORDS};

/// xorshift64*: deterministic, good enough to shake a decoder.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// A word that is often interesting to a decoder: small, a boundary, a packed name.
    pub fn word(&mut self) -> u64 {
        match self.below(6) {
            0 => self.below(4),
            1 => self.below(40),
            2 => [u64::MAX, u64::from(u32::MAX), 0x1_0000, 256, 33, 121][self.below(6) as usize],
            3 => u64::from_le_bytes(*b"serial\0\0"),
            4 => u64::from_le_bytes(*b"Ab-\xff\x00q1_"),
            _ => self.next(),
        }
    }
    /// A valid name, sometimes the longest allowed.
    pub fn name(&mut self) -> Name {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_";
        let len = if self.chance(20) {
            32
        } else {
            1 + self.below(32) as usize
        };
        let mut s = [0u8; 32];
        s[0] = b'a' + self.below(26) as u8;
        for c in s.iter_mut().take(len).skip(1) {
            *c = CHARS[self.below(CHARS.len() as u64) as usize];
        }
        Name::new(core::str::from_utf8(&s[..len]).unwrap()).unwrap()
    }
    pub fn bytes(&mut self) -> Bytes {
        let len = self.below(proto::MAX_BYTES as u64 + 1) as usize;
        let data: Vec<u8> = (0..len).map(|_| self.next() as u8).collect();
        Bytes::new(&data).unwrap()
    }
}

/// A random message: random label (usually a real op or near one), length, words and cap.
pub fn random_message(rng: &mut Rng) -> Message {
    let label = if rng.chance(80) {
        rng.below(9)
    } else {
        rng.word()
    };
    let mut m = Message::new(label);
    for _ in 0..rng.below(MAX_WORDS as u64 + 1) {
        m.push(rng.word()).unwrap();
    }
    if rng.chance(30) {
        m.cap = Some(rng.below(4096));
    }
    m
}

/// A small change to a valid message: one word, the length, the label or the cap.
pub fn mutate(rng: &mut Rng, valid: &Message) -> Message {
    let words = valid.words().to_vec();
    let mut label = valid.label;
    let mut cap = valid.cap;
    let mut out = words.clone();
    match rng.below(6) {
        0 if !out.is_empty() => {
            let i = rng.below(out.len() as u64) as usize;
            out[i] = rng.word();
        }
        1 if !out.is_empty() => out.truncate(rng.below(out.len() as u64) as usize),
        2 if out.len() < MAX_WORDS => out.push(rng.word()),
        3 => label = rng.word(),
        4 => cap = if cap.is_some() { None } else { Some(7) },
        _ if !out.is_empty() => {
            // Flip one bit of one byte: breaks names' charset, padding and ranges.
            let i = rng.below(out.len() as u64) as usize;
            out[i] ^= 1 << rng.below(64);
        }
        _ => label ^= 1,
    }
    let mut m = Message::with_words(label, &out).unwrap();
    m.cap = cap;
    m
}

pub fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

/// Words a value encodes to (for property tests).
pub fn encode_field<T: Field>(value: &T) -> Message {
    let mut w = proto::codec::Writer::new(0);
    value.put(&mut w);
    w.finish().unwrap()
}

// ---- Mock servers: answers are simple functions of the arguments. ----------------------

#[derive(Default)]
pub struct NamingMock {
    pub calls: u32,
}

impl naming::Server for NamingMock {
    fn register(&mut self, _: u64, name: Name, _: CapSlot) -> Result<(), naming::Error> {
        self.calls += 1;
        if name == "forbidden" {
            return Err(naming::Error::Denied);
        }
        Ok(())
    }
    fn lookup(&mut self, badge: u64, name: Name) -> Result<naming::Binding, naming::Error> {
        self.calls += 1;
        if name == "missing" {
            return Err(naming::Error::NotFound);
        }
        Ok(naming::Binding {
            endpoint: CapSlot(badge.wrapping_add(100)),
            generation: name.len() as u64,
        })
    }
    fn unregister(&mut self, _: u64, _: Name) -> Result<(), naming::Error> {
        self.calls += 1;
        Ok(())
    }
    fn withdraw(&mut self, _: u64, id: ComponentId) -> Result<u32, naming::Error> {
        self.calls += 1;
        Ok(u32::from(id.0))
    }
}

#[derive(Default)]
pub struct ProcMock {
    pub calls: u32,
}

impl proc::Server for ProcMock {
    fn spawn(&mut self, _: u64, name: Name) -> Result<ComponentId, proc::Error> {
        self.calls += 1;
        Ok(ComponentId(name.len() as u16))
    }
    fn exit(&mut self, _: u64, _: u64) -> Result<(), proc::Error> {
        self.calls += 1;
        Ok(())
    }
    fn wait(&mut self, _: u64, id: ComponentId) -> Result<u64, proc::Error> {
        self.calls += 1;
        match id.0 {
            0 => Err(proc::Error::StillRunning),
            n => Ok(u64::from(n) * 10),
        }
    }
    fn kill(&mut self, _: u64, id: ComponentId) -> Result<(), proc::Error> {
        self.calls += 1;
        if id.0 > 100 {
            return Err(proc::Error::NotFound);
        }
        Ok(())
    }
    fn list(&mut self, _: u64, index: u32) -> Result<proc::ComponentInfo, proc::Error> {
        self.calls += 1;
        if index >= 3 {
            return Err(proc::Error::NoEntry);
        }
        Ok(proc::ComponentInfo {
            id: ComponentId(index as u16),
            name: name(["naming", "proc", "memory"][index as usize]),
            state: proc::State::Running,
            restarts: index,
        })
    }
    fn caps(&mut self, _: u64, id: ComponentId, index: u32) -> Result<proc::CapInfo, proc::Error> {
        self.calls += 1;
        Ok(proc::CapInfo {
            slot: u64::from(index) + 16,
            kind: proc::CapKind::Endpoint,
            rights: 0b111,
            badge: u64::from(id.0) + 1,
            grant: (index == 0).then(|| name("serial")),
        })
    }
    fn halt(&mut self, _: u64, status: u32) -> Result<(), proc::Error> {
        self.calls += 1;
        if status == 0 {
            Ok(())
        } else {
            Err(proc::Error::Denied)
        }
    }
    fn usage(&mut self, _: u64, index: u32) -> Result<proc::ComponentUsage, proc::Error> {
        self.calls += 1;
        if index >= 3 {
            return Err(proc::Error::NoEntry);
        }
        Ok(proc::ComponentUsage {
            id: ComponentId(index as u16),
            name: name(["naming", "proc", "shell"][index as usize]),
            state: [
                proc::State::Running,
                proc::State::Running,
                proc::State::Exited,
            ][index as usize],
            measured: index != 1,
            used: u64::from(index) << 20,
            budget: 4 << 20,
            heap: 2 << 20,
            stack: 256 << 10,
        })
    }
}

#[derive(Default)]
pub struct MemoryMock {
    pub calls: u32,
    pub used: u64,
}

impl memory::Server for MemoryMock {
    fn alloc(&mut self, _: u64, size_bits: u8) -> Result<memory::Allocation, memory::Error> {
        self.calls += 1;
        if !(12..=memory::MAX_SIZE_BITS).contains(&size_bits) {
            return Err(memory::Error::InvalidSize);
        }
        if self.used + (1 << size_bits) > 1 << 20 {
            return Err(memory::Error::OverBudget);
        }
        self.used += 1 << size_bits;
        Ok(memory::Allocation {
            handle: u64::from(size_bits),
            untyped: CapSlot(50),
        })
    }
    fn free(&mut self, _: u64, handle: u64) -> Result<(), memory::Error> {
        self.calls += 1;
        match handle {
            12..=30 => {
                self.used = self.used.saturating_sub(1 << handle);
                Ok(())
            }
            _ => Err(memory::Error::NotFound),
        }
    }
    fn usage(&mut self, _: u64) -> Result<memory::Usage, memory::Error> {
        self.calls += 1;
        Ok(memory::Usage {
            used: self.used,
            budget: 1 << 20,
            free_total: 1 << 28,
        })
    }
    fn usage_of(&mut self, badge: u64, id: ComponentId) -> Result<memory::Usage, memory::Error> {
        if proto::client(badge) != Some(id) {
            return Err(memory::Error::Denied);
        }
        self.usage(badge)
    }
    fn share(
        &mut self,
        _: u64,
        region: Name,
        page: u64,
    ) -> Result<memory::SharedPage, memory::Error> {
        self.calls += 1;
        if region != "net-rx" {
            return Err(memory::Error::NotFound);
        }
        if page >= 512 {
            return Err(memory::Error::OutOfRange);
        }
        Ok(memory::SharedPage {
            frame: CapSlot(60 + page),
            region_size: 2 << 20,
        })
    }
}

#[derive(Default)]
pub struct DevicesMock {
    pub calls: u32,
    pub claimed: bool,
}

pub const NIC: devices::PciFunction = devices::PciFunction {
    bus: 0,
    dev: 3,
    func: 0,
    vendor: 0x8086,
    device: 0x10d3,
    class: 0x02_00_00,
};

impl devices::Server for DevicesMock {
    fn list(&mut self, _: u64, index: u32) -> Result<devices::PciFunction, devices::Error> {
        self.calls += 1;
        match index {
            0 => Ok(NIC),
            _ => Err(devices::Error::NoEntry),
        }
    }
    fn claim(&mut self, _: u64, device: Name) -> Result<devices::DeviceInfo, devices::Error> {
        self.calls += 1;
        if device != "nic" {
            return Err(devices::Error::NotFound);
        }
        self.claimed = true;
        Ok(devices::DeviceInfo {
            is_pci: true,
            pci: NIC,
            bars: 0b1,
            first_port: 0,
            last_port: 0,
            irq: devices::IrqMode::Msi,
        })
    }
    fn bar(
        &mut self,
        _: u64,
        _: Name,
        bar: u8,
        page: u64,
    ) -> Result<devices::PhysFrame, devices::Error> {
        self.calls += 1;
        if !self.claimed {
            return Err(devices::Error::NotClaimed);
        }
        if bar != 0 || page >= 32 {
            return Err(devices::Error::OutOfRange);
        }
        Ok(devices::PhysFrame {
            frame: CapSlot(70),
            paddr: 0xfebc_0000 + page * 4096,
        })
    }
    fn irq(&mut self, _: u64, _: Name) -> Result<CapSlot, devices::Error> {
        self.calls += 1;
        if !self.claimed {
            return Err(devices::Error::NotClaimed);
        }
        Ok(CapSlot(80))
    }
    fn dma(&mut self, _: u64, size_bits: u8) -> Result<devices::PhysFrame, devices::Error> {
        self.calls += 1;
        if !(12..=21).contains(&size_bits) {
            return Err(devices::Error::InvalidSize);
        }
        Ok(devices::PhysFrame {
            frame: CapSlot(90),
            paddr: 0x100_0000,
        })
    }
}

#[derive(Default)]
pub struct ConsoleMock {
    pub calls: u32,
    pub buffer: Vec<u8>,
    /// The notification each badge asked to be woken with (at most two watchers).
    pub watchers: Vec<(u64, CapSlot)>,
}

impl console::Server for ConsoleMock {
    fn write(&mut self, _: u64, data: Bytes) -> Result<(), console::Error> {
        self.calls += 1;
        if self.buffer.len() + data.len() > 4096 {
            return Err(console::Error::Busy);
        }
        self.buffer.extend_from_slice(&data);
        Ok(())
    }
    fn read(&mut self, _: u64, max: u32) -> Result<Bytes, console::Error> {
        self.calls += 1;
        if self.buffer.is_empty() {
            return Err(console::Error::WouldBlock);
        }
        let n = self.buffer.len().min(max as usize).min(proto::MAX_BYTES);
        let out = Bytes::new(&self.buffer[..n]).unwrap();
        self.buffer.drain(..n);
        Ok(out)
    }
    fn watch(&mut self, badge: u64, wake: CapSlot) -> Result<(), console::Error> {
        self.calls += 1;
        self.watchers.retain(|(b, _)| *b != badge);
        if self.watchers.len() >= 2 {
            return Err(console::Error::Full);
        }
        self.watchers.push((badge, wake));
        Ok(())
    }
}

// ---- Random valid requests, one generator per interface. --------------------------------

fn id(rng: &mut Rng) -> ComponentId {
    ComponentId(rng.next() as u16)
}

pub fn naming_request(rng: &mut Rng) -> naming::Request {
    use naming::Request as R;
    match rng.below(4) {
        0 => R::Register {
            name: rng.name(),
            endpoint: CapSlot(rng.below(4096)),
        },
        1 => R::Lookup { name: rng.name() },
        2 => R::Unregister { name: rng.name() },
        _ => R::Withdraw { id: id(rng) },
    }
}

pub fn proc_request(rng: &mut Rng) -> proc::Request {
    use proc::Request as R;
    match rng.below(8) {
        0 => R::Spawn { name: rng.name() },
        1 => R::Exit { status: rng.next() },
        2 => R::Wait { id: id(rng) },
        3 => R::Kill { id: id(rng) },
        4 => R::List {
            index: rng.next() as u32,
        },
        5 => R::Halt {
            status: rng.next() as u32,
        },
        6 => R::Usage {
            index: rng.next() as u32,
        },
        _ => R::Caps {
            id: id(rng),
            index: rng.next() as u32,
        },
    }
}

pub fn memory_request(rng: &mut Rng) -> memory::Request {
    use memory::Request as R;
    match rng.below(5) {
        0 => R::Alloc {
            size_bits: rng.next() as u8,
        },
        1 => R::Free { handle: rng.next() },
        2 => R::Usage {},
        3 => R::UsageOf { id: id(rng) },
        _ => R::Share {
            region: rng.name(),
            page: rng.word(),
        },
    }
}

pub fn devices_request(rng: &mut Rng) -> devices::Request {
    use devices::Request as R;
    match rng.below(5) {
        0 => R::List {
            index: rng.next() as u32,
        },
        1 => R::Claim { device: rng.name() },
        2 => R::Bar {
            device: rng.name(),
            bar: rng.next() as u8,
            page: rng.word(),
        },
        3 => R::Irq { device: rng.name() },
        _ => R::Dma {
            size_bits: rng.next() as u8,
        },
    }
}

pub fn console_request(rng: &mut Rng) -> console::Request {
    use console::Request as R;
    match rng.below(2) {
        0 => R::Write { data: rng.bytes() },
        _ => R::Read {
            max: rng.next() as u32,
        },
    }
}

/// Attaches when the nonce is the region name's length; `full` refuses everyone.
#[derive(Default)]
pub struct NetMock {
    pub full: bool,
}

impl proto::net::Server for NetMock {
    fn attach(
        &mut self,
        badge: u64,
        region: Name,
        nonce: u64,
        wake: CapSlot,
    ) -> Result<CapSlot, proto::net::Error> {
        if self.full {
            return Err(proto::net::Error::Full);
        }
        if nonce != region.len() as u64 {
            return Err(proto::net::Error::NotFound);
        }
        Ok(CapSlot(wake.0 + badge))
    }
}
