//! A simulated 82574L for host tests: registers with the side effects the driver relies
//! on (reset, ICR read-to-clear, IMS/IMC, RDLEN/TDLEN masking, RCTL capture), a fake DMA
//! space shared with the device model, and the model's transmit and receive engines.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use e1000e::regs::*;
use e1000e::{Delay, Dma, DmaRegion, Mmio};

/// Physical address of the first byte of the fake DMA space (above 4 GiB, so the high
/// halves of ring bases matter).
pub const MEM_BASE: u64 = 0x1_2000_0000;
/// The MAC address the model's "EEPROM" holds.
pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// Device-visible memory with a bump allocator.
pub struct Memory {
    pub bytes: Vec<u8>,
    next: usize,
}

impl Memory {
    fn index(&self, physical: u64, len: usize) -> Option<usize> {
        let start = usize::try_from(physical.checked_sub(MEM_BASE)?).ok()?;
        (start.checked_add(len)? <= self.bytes.len()).then_some(start)
    }

    /// Reads `len` bytes at a physical address (None outside the space).
    pub fn read(&self, physical: u64, len: usize) -> Option<Vec<u8>> {
        let at = self.index(physical, len)?;
        Some(self.bytes[at..at + len].to_vec())
    }

    /// Writes bytes at a physical address; returns false outside the space.
    pub fn write(&mut self, physical: u64, data: &[u8]) -> bool {
        match self.index(physical, data.len()) {
            Some(at) => {
                self.bytes[at..at + data.len()].copy_from_slice(data);
                true
            }
            None => false,
        }
    }

    pub fn read_u32(&self, physical: u64) -> u32 {
        let b = self.read(physical, 4).unwrap_or_default();
        b.try_into().map(u32::from_le_bytes).unwrap_or(0)
    }

    pub fn write_u32(&mut self, physical: u64, value: u32) {
        self.write(physical, &value.to_le_bytes());
    }

    pub fn read_u64(&self, physical: u64) -> u64 {
        u64::from(self.read_u32(physical)) | (u64::from(self.read_u32(physical + 4)) << 32)
    }
}

/// A region handed out by [`FakeDma`].
pub struct Region {
    memory: Rc<RefCell<Memory>>,
    physical: u64,
    size: usize,
}

impl DmaRegion for Region {
    fn physical_address(&self) -> u64 {
        self.physical
    }
    fn size(&self) -> usize {
        self.size
    }
    fn read_u32(&self, offset: usize) -> u32 {
        assert!(
            offset.is_multiple_of(4) && offset + 4 <= self.size,
            "read_u32 at {offset}"
        );
        self.memory.borrow().read_u32(self.physical + offset as u64)
    }
    fn write_u32(&mut self, offset: usize, value: u32) {
        assert!(
            offset.is_multiple_of(4) && offset + 4 <= self.size,
            "write_u32 at {offset}"
        );
        self.memory
            .borrow_mut()
            .write_u32(self.physical + offset as u64, value)
    }
    fn with_bytes<T>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> T) -> T {
        assert!(offset + len <= self.size, "with_bytes {offset}+{len}");
        let memory = self.memory.borrow();
        let at = memory.index(self.physical + offset as u64, len).unwrap();
        f(&memory.bytes[at..at + len])
    }
    fn with_bytes_mut<T>(
        &mut self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> T,
    ) -> T {
        assert!(offset + len <= self.size, "with_bytes_mut {offset}+{len}");
        let mut memory = self.memory.borrow_mut();
        let at = memory.index(self.physical + offset as u64, len).unwrap();
        f(&mut memory.bytes[at..at + len])
    }
    fn write_bytes(&mut self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= self.size, "write_bytes {offset}");
        assert!(self
            .memory
            .borrow_mut()
            .write(self.physical + offset as u64, data));
    }
}

/// The allocator over the shared memory.
pub struct FakeDma {
    memory: Rc<RefCell<Memory>>,
    /// Allocations that succeed before it returns `None`.
    pub remaining: usize,
    /// Hand out regions one byte off their alignment.
    pub misalign: bool,
    /// Every allocation: (physical address, size, alignment asked for).
    pub allocations: Vec<(u64, usize, usize)>,
}

impl Dma for FakeDma {
    type Region = Region;
    fn allocate(&mut self, size: usize, align: usize) -> Option<Region> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let mut memory = self.memory.borrow_mut();
        let start = memory.next.next_multiple_of(align) + usize::from(self.misalign);
        if start + size > memory.bytes.len() {
            return None;
        }
        memory.next = start + size;
        // Garbage, not zeroes: the driver must initialise what it uses.
        memory.bytes[start..start + size].fill(0xA5);
        let physical = MEM_BASE + start as u64;
        self.allocations.push((physical, size, align));
        Some(Region {
            memory: self.memory.clone(),
            physical,
            size,
        })
    }
}

/// Counts the waits asked for.
#[derive(Default)]
pub struct FakeDelay {
    pub calls: usize,
    pub micros: u64,
}

impl Delay for FakeDelay {
    fn delay_us(&mut self, micros: u32) {
        self.calls += 1;
        self.micros += u64::from(micros);
    }
}

/// A frame the model transmitted, with its descriptor's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub data: Vec<u8>,
    pub command: u8,
}

/// The model's state.
pub struct Device {
    pub regs: BTreeMap<usize, u32>,
    /// Every register write, in order.
    pub writes: Vec<(usize, u32)>,
    /// Every register read, in order.
    pub reads: Vec<usize>,
    pub memory: Rc<RefCell<Memory>>,
    /// The registers as they were when RCTL was written with EN set.
    pub rctl_snapshot: Option<BTreeMap<usize, u32>>,
    /// Whether a cable is plugged in.
    pub cable: bool,
    /// CTRL.RST never clears.
    pub stuck_reset: bool,
    pub resets: usize,
}

impl Device {
    fn reg(&self, offset: usize) -> u32 {
        self.regs.get(&offset).copied().unwrap_or(0)
    }

    fn raise(&mut self, cause: u32) {
        *self.regs.entry(ICR).or_default() |= cause;
    }

    fn read(&mut self, offset: usize) -> u32 {
        self.reads.push(offset);
        match offset {
            STATUS => {
                let up = self.cable && self.reg(CTRL) & CTRL_SLU != 0;
                if up {
                    STATUS_LU | 1
                } else {
                    0
                }
            }
            ICR => {
                let icr = self.reg(ICR);
                // With MSI-X (modelled as: a vector allocated in IVAR) reading does not
                // clear the causes; the driver writes them back.
                if self.reg(IVAR) & IVAR_VALID == 0 {
                    self.regs.insert(ICR, 0);
                }
                if icr & self.reg(IMS) != 0 {
                    icr | INT_ASSERTED
                } else {
                    icr
                }
            }
            CRCERRS | MPC | RNBC | GPRC | GPTC | GORCL | GORCH | GOTCL | GOTCH => {
                self.regs.insert(offset, 0).unwrap_or(0)
            }
            _ => self.reg(offset),
        }
    }

    fn write(&mut self, offset: usize, value: u32) {
        self.writes.push((offset, value));
        match offset {
            CTRL if value & CTRL_RST != 0 => {
                // QEMU 7.2: reset reloads only the MAC; everything else keeps its value.
                self.resets += 1;
                let value = if self.stuck_reset {
                    value
                } else {
                    value & !CTRL_RST
                };
                self.regs.insert(CTRL, value);
                self.load_mac();
            }
            ICR => *self.regs.entry(ICR).or_default() &= !value,
            ICS => self.raise(value),
            IMS => *self.regs.entry(IMS).or_default() |= value,
            IMC => *self.regs.entry(IMS).or_default() &= !value,
            RDLEN | TDLEN => {
                self.regs.insert(offset, value & 0xF_FF80);
            }
            RCTL => {
                self.regs.insert(RCTL, value);
                if value & RCTL_EN != 0 {
                    self.rctl_snapshot = Some(self.regs.clone());
                }
            }
            _ => {
                self.regs.insert(offset, value);
            }
        }
    }

    fn load_mac(&mut self) {
        let low = u32::from_le_bytes(MAC[..4].try_into().unwrap());
        let high = u32::from(u16::from_le_bytes([MAC[4], MAC[5]])) | RAH_AV;
        self.regs.insert(RAL0, low);
        self.regs.insert(RAH0, high);
    }
}

/// A handle on the model: the driver's `Mmio`, and the test's view of the device.
#[derive(Clone)]
pub struct Sim(pub Rc<RefCell<Device>>);

impl Mmio for Sim {
    fn read32(&mut self, offset: usize) -> u32 {
        assert!(offset.is_multiple_of(4) && offset < e1000e::pci::BAR0_SIZE);
        self.0.borrow_mut().read(offset)
    }
    fn write32(&mut self, offset: usize, value: u32) {
        assert!(offset.is_multiple_of(4) && offset < e1000e::pci::BAR0_SIZE);
        self.0.borrow_mut().write(offset, value)
    }
}

/// Bytes of fake DMA memory.
const MEMORY_SIZE: usize = 8 << 20;

impl Sim {
    /// A powered-on device whose registers hold garbage (as after a warm reboot), and the
    /// DMA space it shares.
    pub fn new() -> (Sim, FakeDma) {
        let memory = Rc::new(RefCell::new(Memory {
            bytes: vec![0; MEMORY_SIZE],
            next: 0,
        }));
        let mut regs = BTreeMap::new();
        for offset in [
            CTRL, ITR, RCTL, TCTL, TIPG, RDBAL, RDBAH, RDLEN, RDH, RDT, RDTR, RADV, TDBAL, TDBAH,
            TDLEN, TDH, TDT, TIDV, TADV, RXCSUM, RFCTL,
        ] {
            regs.insert(offset, 0xDEAD_BE00);
        }
        for entry in 0..MTA_ENTRIES {
            regs.insert(MTA + 4 * entry, 0xFFFF_FFFF);
        }
        regs.insert(IMS, 0xFFFF_FFFF);
        regs.insert(ICR, INT_LSC | INT_RXT0);
        let mut device = Device {
            regs,
            writes: Vec::new(),
            reads: Vec::new(),
            memory: memory.clone(),
            rctl_snapshot: None,
            cable: true,
            stuck_reset: false,
            resets: 0,
        };
        device.load_mac();
        let dma = FakeDma {
            memory,
            remaining: usize::MAX,
            misalign: false,
            allocations: Vec::new(),
        };
        (Sim(Rc::new(RefCell::new(device))), dma)
    }

    pub fn reg(&self, offset: usize) -> u32 {
        self.0.borrow().reg(offset)
    }

    pub fn set_reg(&self, offset: usize, value: u32) {
        self.0.borrow_mut().regs.insert(offset, value);
    }

    pub fn raise(&self, cause: u32) {
        self.0.borrow_mut().raise(cause);
    }

    pub fn writes(&self) -> Vec<(usize, u32)> {
        self.0.borrow().writes.clone()
    }

    /// Index of the first write to `offset`, panicking if there is none.
    pub fn first_write(&self, offset: usize) -> usize {
        self.writes()
            .iter()
            .position(|&(o, _)| o == offset)
            .unwrap_or_else(|| panic!("no write to {offset:#x}"))
    }

    /// Index of the last write to `offset`, panicking if there is none.
    pub fn last_write(&self, offset: usize) -> usize {
        self.writes()
            .iter()
            .rposition(|&(o, _)| o == offset)
            .unwrap_or_else(|| panic!("no write to {offset:#x}"))
    }

    /// Writes to `offset` so far.
    pub fn count_writes(&self, offset: usize) -> usize {
        self.writes().iter().filter(|&&(o, _)| o == offset).count()
    }

    pub fn memory(&self) -> Rc<RefCell<Memory>> {
        self.0.borrow().memory.clone()
    }

    fn ring(&self, base_low: usize) -> (u64, usize) {
        let base = u64::from(self.reg(base_low)) | (u64::from(self.reg(base_low + 4)) << 32);
        (base & !0xF, self.reg(base_low + 8) as usize / 16)
    }

    /// Physical address of receive descriptor `index`.
    pub fn rx_descriptor(&self, index: usize) -> u64 {
        self.ring(RDBAL).0 + 16 * index as u64
    }

    /// Physical address of transmit descriptor `index`.
    pub fn tx_descriptor(&self, index: usize) -> u64 {
        self.ring(TDBAL).0 + 16 * index as u64
    }

    /// Sends every descriptor from TDH to TDT (QEMU's transmit engine): returns the
    /// frames, writes DD back where RS is set and raises TXDW.
    pub fn process_tx(&self) -> Vec<Sent> {
        let (base, count) = self.ring(TDBAL);
        let mut sent = Vec::new();
        if self.reg(TCTL) & TCTL_EN == 0 || count == 0 {
            return sent;
        }
        let memory = self.memory();
        let mut memory = memory.borrow_mut();
        let mut head = self.reg(TDH) as usize;
        let tail = self.reg(TDT) as usize;
        while head != tail && head < count {
            let at = base + 16 * head as u64;
            let address = memory.read_u64(at);
            let word2 = memory.read_u32(at + 8);
            let length = (word2 & 0xFFFF) as usize;
            let command = (word2 >> 24) as u8;
            let data = memory.read(address, length).expect("TX buffer outside DMA");
            sent.push(Sent { data, command });
            if command & e1000e::desc::TX_CMD_RS != 0 {
                let word3 = memory.read_u32(at + 12);
                memory.write_u32(at + 12, word3 | 1);
            }
            head = (head + 1) % count;
        }
        self.set_reg(TDH, head as u32);
        if !sent.is_empty() {
            self.raise(INT_TXDW);
        }
        sent
    }

    /// Receives `frame` into the descriptor at RDH (QEMU's receive engine); false when the
    /// receiver is off or the ring has no free descriptor (head == tail).
    pub fn deliver(&self, frame: &[u8]) -> bool {
        self.deliver_raw(frame, frame.len() as u16, 0b11, 0)
    }

    /// Like [`Sim::deliver`] with the descriptor's length, status and errors given.
    pub fn deliver_raw(&self, data: &[u8], length: u16, status: u8, errors: u8) -> bool {
        let (base, count) = self.ring(RDBAL);
        let head = self.reg(RDH) as usize;
        if self.reg(RCTL) & RCTL_EN == 0 || count == 0 || head == self.reg(RDT) as usize {
            *self.0.borrow_mut().regs.entry(RNBC).or_default() += 1;
            return false;
        }
        let memory = self.memory();
        let mut memory = memory.borrow_mut();
        let at = base + 16 * head as u64;
        let address = memory.read_u64(at);
        assert!(data.len() <= 2048, "the model's buffers are 2 KiB");
        assert!(memory.write(address, data), "RX buffer outside DMA");
        memory.write_u32(at + 8, u32::from(length));
        memory.write_u32(at + 12, u32::from(status) | (u32::from(errors) << 8));
        drop(memory);
        self.set_reg(RDH, ((head + 1) % count) as u32);
        self.raise(INT_RXT0);
        true
    }
}

/// A frame of `len` bytes whose contents identify `tag`.
pub fn frame(tag: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(31)
                .wrapping_add(tag.wrapping_mul(7)) as u8
        })
        .collect()
}

/// A driver initialised over a fresh model with `config`.
pub fn start(config: e1000e::Config) -> (e1000e::E1000e<Sim, Region>, Sim) {
    let (sim, mut dma) = Sim::new();
    let driver = e1000e::E1000e::new(sim.clone(), &mut dma, &mut FakeDelay::default(), config)
        .expect("init");
    (driver, sim)
}

/// A configuration with `rx` receive and `tx` transmit descriptors.
pub fn rings(rx: usize, tx: usize) -> e1000e::Config {
    e1000e::Config {
        rx_descriptors: rx,
        tx_descriptors: tx,
        ..e1000e::Config::default()
    }
}
