//! The driver against a simulated virtio-blk device that reads the queue from "physical
//! memory" (a byte vector; physical addresses are offsets into it) as a device would.

use std::cell::RefCell;
use std::rc::Rc;

use virtio_blk::{
    feature, BlkTransport, Completion, InitError, Layout, Op, QueueMemory, RequestError, Segment,
    Status, VirtioBlk,
};

type Ram = Rc<RefCell<Vec<u8>>>;

const QUEUE_AT: u64 = 0x1_0000;
const DATA_AT: u64 = 0x2_0000;

struct QueueRam {
    ram: Ram,
    base: usize,
}

impl QueueMemory for QueueRam {
    fn read16(&self, o: usize) -> u16 {
        let r = self.ram.borrow();
        u16::from_le_bytes(r[self.base + o..][..2].try_into().unwrap())
    }
    fn read32(&self, o: usize) -> u32 {
        let r = self.ram.borrow();
        u32::from_le_bytes(r[self.base + o..][..4].try_into().unwrap())
    }
    fn read8(&self, o: usize) -> u8 {
        self.ram.borrow()[self.base + o]
    }
    fn write8(&mut self, o: usize, v: u8) {
        self.ram.borrow_mut()[self.base + o] = v;
    }
    fn write16(&mut self, o: usize, v: u16) {
        self.ram.borrow_mut()[self.base + o..][..2].copy_from_slice(&v.to_le_bytes());
    }
    fn write32(&mut self, o: usize, v: u32) {
        self.ram.borrow_mut()[self.base + o..][..4].copy_from_slice(&v.to_le_bytes());
    }
    fn write64(&mut self, o: usize, v: u64) {
        self.ram.borrow_mut()[self.base + o..][..8].copy_from_slice(&v.to_le_bytes());
    }
}

#[derive(Default)]
struct Device {
    features: u64,
    accepted: u64,
    status: u8,
    max_queue: u32,
    queue: Option<(u32, u64, u64, u64)>,
    seen: u16,
    used: u16,
    /// Hold requests until `run` (so several are in flight).
    hold: bool,
    /// Complete with this status byte instead of doing the work.
    fail_with: Option<u8>,
    /// Requests the device saw: (type, sector, data bytes, descriptors).
    log: Vec<(u32, u64, usize, usize)>,
    flushes: usize,
}

#[derive(Clone)]
struct Fake {
    ram: Ram,
    disk: Rc<RefCell<Vec<u8>>>,
    device: Rc<RefCell<Device>>,
}

fn rd(ram: &[u8], at: u64, n: usize) -> u64 {
    let mut v = 0u64;
    for i in (0..n).rev() {
        v = v << 8 | u64::from(ram[at as usize + i]);
    }
    v
}

fn wr(ram: &mut [u8], at: u64, n: usize, v: u64) {
    for i in 0..n {
        ram[at as usize + i] = (v >> (8 * i)) as u8;
    }
}

impl Fake {
    fn new(sectors: u64, features: u64) -> Fake {
        let ram = Rc::new(RefCell::new(vec![0u8; 0x10_0000]));
        let disk = Rc::new(RefCell::new(vec![0u8; (sectors * 512) as usize]));
        let device = Device {
            features,
            max_queue: 256,
            ..Default::default()
        };
        Fake {
            ram,
            disk,
            device: Rc::new(RefCell::new(device)),
        }
    }

    /// Does every available request, as a device would.
    fn run(&self) {
        let mut dev = self.device.borrow_mut();
        let (size, desc, avail, used) = dev.queue.expect("queue set up");
        let mut ram = self.ram.borrow_mut();
        let mut disk = self.disk.borrow_mut();
        loop {
            let index = rd(&ram, avail + 2, 2) as u16;
            if index == dev.seen {
                break;
            }
            let slot = u64::from(dev.seen) % u64::from(size);
            let head = rd(&ram, avail + 4 + 2 * slot, 2) as u16;
            dev.seen = dev.seen.wrapping_add(1);
            // Walk the chain.
            let mut parts = Vec::new();
            let mut i = head;
            loop {
                let d = desc + 16 * u64::from(i);
                let (addr, len, flags, next) = (
                    rd(&ram, d, 8),
                    rd(&ram, d + 8, 4),
                    rd(&ram, d + 12, 2),
                    rd(&ram, d + 14, 2),
                );
                parts.push((addr, len as usize, flags & 2 != 0));
                if flags & 1 == 0 {
                    break;
                }
                i = next as u16;
                assert!(parts.len() <= size as usize, "a descriptor loop");
            }
            let (header, _, header_writable) = parts[0];
            assert!(!header_writable, "the header is device-readable");
            let (status_at, status_len, status_writable) = *parts.last().unwrap();
            assert!(status_writable && status_len == 1);
            let kind = rd(&ram, header, 4) as u32;
            let sector = rd(&ram, header + 8, 8);
            let data = &parts[1..parts.len() - 1];
            let bytes: usize = data.iter().map(|p| p.1).sum();
            dev.log.push((kind, sector, bytes, parts.len()));
            let mut status = 0u8;
            if let Some(s) = dev.fail_with {
                status = s;
            } else {
                let mut at = sector as usize * 512;
                match kind {
                    0 => {
                        for &(addr, len, w) in data {
                            assert!(w, "read data is device-writable");
                            ram[addr as usize..][..len].copy_from_slice(&disk[at..][..len]);
                            at += len;
                        }
                    }
                    1 => {
                        for &(addr, len, w) in data {
                            assert!(!w, "write data is device-readable");
                            disk[at..][..len].copy_from_slice(&ram[addr as usize..][..len]);
                            at += len;
                        }
                    }
                    4 => dev.flushes += 1,
                    _ => status = 2,
                }
            }
            ram[status_at as usize] = status;
            let u = u64::from(dev.used) % u64::from(size);
            wr(&mut ram, used + 4 + 8 * u, 4, u64::from(head));
            wr(&mut ram, used + 4 + 8 * u + 4, 4, 1);
            dev.used = dev.used.wrapping_add(1);
            wr(&mut ram, used + 2, 2, u64::from(dev.used));
        }
    }

    /// Writes a used entry naming `id` without any request behind it.
    fn bogus_completion(&self, id: u32) {
        let mut dev = self.device.borrow_mut();
        let (size, _, _, used) = dev.queue.unwrap();
        let mut ram = self.ram.borrow_mut();
        let u = u64::from(dev.used) % u64::from(size);
        wr(&mut ram, used + 4 + 8 * u, 4, u64::from(id));
        dev.used = dev.used.wrapping_add(1);
        wr(&mut ram, used + 2, 2, u64::from(dev.used));
    }

    fn memory(&self) -> QueueRam {
        QueueRam {
            ram: self.ram.clone(),
            base: QUEUE_AT as usize,
        }
    }
}

impl BlkTransport for Fake {
    fn device_features(&mut self) -> u64 {
        self.device.borrow().features
    }
    fn set_driver_features(&mut self, features: u64) {
        let mut d = self.device.borrow_mut();
        assert_eq!(features & !d.features, 0, "only offered features");
        d.accepted = features;
    }
    fn status(&self) -> u8 {
        self.device.borrow().status
    }
    fn set_status(&mut self, status: u8) {
        self.device.borrow_mut().status = status;
    }
    fn max_queue_size(&mut self, _: u16) -> u32 {
        self.device.borrow().max_queue
    }
    fn queue_set(&mut self, queue: u16, size: u32, d: u64, a: u64, u: u64) {
        assert_eq!(queue, 0);
        self.device.borrow_mut().queue = Some((size, d, a, u));
    }
    fn notify(&mut self, _: u16) {
        if !self.device.borrow().hold {
            self.run();
        }
    }
    fn ack_interrupt(&mut self) -> bool {
        true
    }
    fn config32(&self, offset: usize) -> Option<u32> {
        let sectors = self.disk.borrow().len() as u64 / 512;
        Some(match offset {
            0 => sectors as u32,
            4 => (sectors >> 32) as u32,
            12 => 8, // seg_max
            _ => 0,
        })
    }
}

const ALL: u64 = feature::VERSION_1 | feature::FLUSH | feature::SEG_MAX;

fn driver(fake: &Fake, size: u16) -> VirtioBlk<Fake, QueueRam> {
    let bytes = Layout::new(size).unwrap().bytes;
    VirtioBlk::new(fake.clone(), fake.memory(), bytes, QUEUE_AT, size).expect("set up")
}

fn fill(fake: &Fake, at: u64, bytes: &[u8]) {
    fake.ram.borrow_mut()[at as usize..][..bytes.len()].copy_from_slice(bytes);
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

#[test]
fn set_up_negotiates_and_reads_the_capacity() {
    let fake = Fake::new(2048, ALL | feature::BLK_SIZE | (1 << 4));
    let blk = driver(&fake, 128);
    let g = blk.geometry();
    assert_eq!(g.sectors, 2048);
    assert_eq!(g.max_segments, 8);
    assert!(g.flush && !g.read_only);
    let d = fake.device.borrow();
    assert_eq!(d.accepted, ALL | feature::BLK_SIZE, "bit 4 not accepted");
    assert_eq!(d.status, 1 | 2 | 4 | 8);
    assert_eq!(d.queue.unwrap().0, 128);
}

#[test]
fn a_legacy_device_is_refused_and_marked_failed() {
    let fake = Fake::new(8, feature::FLUSH);
    let bytes = Layout::new(16).unwrap().bytes;
    let r = VirtioBlk::new(fake.clone(), fake.memory(), bytes, QUEUE_AT, 16);
    assert_eq!(r.err(), Some(InitError::Legacy));
    assert_eq!(fake.device.borrow().status, 128);
}

#[test]
fn the_queue_follows_the_device_and_the_memory() {
    let fake = Fake::new(8, ALL);
    fake.device.borrow_mut().max_queue = 100;
    let blk = driver(&fake, 256);
    assert_eq!(blk.queue_size(), 64, "the largest power of two under 100");
    let fake = Fake::new(8, ALL);
    let small = Layout::new(256).unwrap().bytes - 1;
    let r = VirtioBlk::new(fake.clone(), fake.memory(), small, QUEUE_AT, 256);
    assert_eq!(r.err(), Some(InitError::Memory));
}

#[test]
fn writes_then_reads_move_data_through_scattered_pages() {
    let fake = Fake::new(2048, ALL);
    let mut blk = driver(&fake, 64);
    // Two pages far apart in physical memory make one 8 KiB write at sector 10.
    let data = pattern(3, 8192);
    fill(&fake, DATA_AT + 0x5000, &data[..4096]);
    fill(&fake, DATA_AT, &data[4096..]);
    let segments = [
        Segment {
            paddr: DATA_AT + 0x5000,
            len: 4096,
        },
        Segment {
            paddr: DATA_AT,
            len: 4096,
        },
    ];
    blk.submit(7, Op::Write, 10, &segments).unwrap();
    blk.notify();
    assert_eq!(
        blk.complete(),
        Some(Completion {
            id: 7,
            status: Status::Ok
        })
    );
    assert_eq!(blk.complete(), None);
    assert_eq!(&fake.disk.borrow()[10 * 512..][..8192], &data[..]);
    // Read sectors 14..18 (the second half) into one page elsewhere.
    let out = DATA_AT + 0x9000;
    blk.submit(
        8,
        Op::Read,
        18,
        &[Segment {
            paddr: out,
            len: 4096,
        }],
    )
    .unwrap();
    blk.notify();
    assert_eq!(
        blk.complete(),
        Some(Completion {
            id: 8,
            status: Status::Ok
        })
    );
    assert_eq!(&fake.ram.borrow()[out as usize..][..4096], &data[4096..]);
    assert_eq!(blk.free_descriptors(), 64, "every descriptor back");
    let c = blk.counters();
    assert_eq!((c.submitted, c.completed, c.bogus), (2, 2, 0));
}

#[test]
fn many_requests_are_in_flight_at_once_and_complete_by_id() {
    let fake = Fake::new(4096, ALL);
    let mut blk = driver(&fake, 64);
    fake.device.borrow_mut().hold = true;
    // 64 descriptors, 3 per one-segment request: 21 in flight, the 22nd waits.
    for i in 0..21u32 {
        let page = DATA_AT + u64::from(i) * 4096;
        fill(&fake, page, &pattern(i as u8, 4096));
        blk.submit(
            100 + i,
            Op::Write,
            u64::from(i) * 8,
            &[Segment {
                paddr: page,
                len: 4096,
            }],
        )
        .unwrap();
    }
    let extra = [Segment {
        paddr: DATA_AT,
        len: 512,
    }];
    assert_eq!(
        blk.submit(999, Op::Write, 0, &extra),
        Err(RequestError::Full)
    );
    blk.notify();
    assert_eq!(fake.device.borrow().log.len(), 0, "held");
    fake.run();
    let mut ids: Vec<u32> = std::iter::from_fn(|| blk.complete())
        .map(|c| c.id)
        .collect();
    ids.sort();
    assert_eq!(ids, (100..121).collect::<Vec<_>>());
    for i in 0..21usize {
        assert_eq!(
            &fake.disk.borrow()[i * 4096..][..4096],
            &pattern(i as u8, 4096)[..]
        );
    }
    // The queue wraps: ten more rounds reuse descriptors and ring slots.
    for round in 0..10u32 {
        for i in 0..20u32 {
            blk.submit(
                round * 100 + i,
                Op::Read,
                0,
                &[Segment {
                    paddr: DATA_AT + 0x8_0000,
                    len: 512,
                }],
            )
            .unwrap();
        }
        blk.notify();
        fake.run();
        assert_eq!(std::iter::from_fn(|| blk.complete()).count(), 20);
    }
    assert_eq!(blk.free_descriptors(), 64);
}

#[test]
fn bad_requests_are_refused_before_the_device_sees_them() {
    let fake = Fake::new(100, ALL);
    let mut blk = driver(&fake, 32);
    let page = |len| {
        [Segment {
            paddr: DATA_AT,
            len,
        }]
    };
    assert_eq!(
        blk.submit(1, Op::Read, 99, &page(1024)),
        Err(RequestError::OutOfRange)
    );
    assert_eq!(
        blk.submit(1, Op::Read, 100, &page(512)),
        Err(RequestError::OutOfRange)
    );
    assert_eq!(
        blk.submit(1, Op::Read, u64::MAX, &page(512)),
        Err(RequestError::OutOfRange)
    );
    assert_eq!(
        blk.submit(1, Op::Write, 0, &page(100)),
        Err(RequestError::Misaligned)
    );
    let odd = [Segment {
        paddr: DATA_AT + 8,
        len: 512,
    }];
    assert_eq!(
        blk.submit(1, Op::Write, 0, &odd),
        Err(RequestError::Misaligned)
    );
    assert_eq!(
        blk.submit(1, Op::Write, 0, &[]),
        Err(RequestError::Malformed)
    );
    assert_eq!(
        blk.submit(1, Op::Write, 0, &page(0)),
        Err(RequestError::Malformed)
    );
    assert_eq!(
        blk.submit(1, Op::Flush, 0, &page(512)),
        Err(RequestError::Malformed)
    );
    let nine = [Segment {
        paddr: DATA_AT,
        len: 512,
    }; 9];
    assert_eq!(
        blk.submit(1, Op::Read, 0, &nine),
        Err(RequestError::Malformed),
        "seg_max 8"
    );
    blk.notify();
    assert!(fake.device.borrow().log.is_empty());
    // The last sector is fine.
    blk.submit(2, Op::Read, 99, &page(512)).unwrap();
    blk.notify();
    assert_eq!(blk.complete().unwrap().status, Status::Ok);
}

#[test]
fn flushes_reach_the_device_only_if_it_has_a_cache() {
    let fake = Fake::new(8, ALL);
    let mut blk = driver(&fake, 16);
    blk.submit(5, Op::Flush, 0, &[]).unwrap();
    blk.notify();
    assert_eq!(
        blk.complete(),
        Some(Completion {
            id: 5,
            status: Status::Ok
        })
    );
    assert_eq!(fake.device.borrow().flushes, 1);
    assert_eq!(fake.device.borrow().log[0].3, 2, "header and status only");
    let fake = Fake::new(8, feature::VERSION_1 | feature::RO);
    let mut blk = driver(&fake, 16);
    assert_eq!(
        blk.submit(5, Op::Flush, 0, &[]),
        Err(RequestError::Unsupported)
    );
    let page = [Segment {
        paddr: DATA_AT,
        len: 512,
    }];
    assert_eq!(
        blk.submit(6, Op::Write, 0, &page),
        Err(RequestError::ReadOnly)
    );
    assert!(blk.submit(7, Op::Read, 0, &page).is_ok());
}

#[test]
fn device_errors_and_bogus_completions_are_reported_not_trusted() {
    let fake = Fake::new(8, ALL);
    let mut blk = driver(&fake, 16);
    let page = [Segment {
        paddr: DATA_AT,
        len: 512,
    }];
    fake.device.borrow_mut().fail_with = Some(1);
    blk.submit(1, Op::Read, 0, &page).unwrap();
    blk.notify();
    assert_eq!(blk.complete().unwrap().status, Status::IoError);
    fake.device.borrow_mut().fail_with = Some(0x42);
    blk.submit(2, Op::Read, 0, &page).unwrap();
    blk.notify();
    assert_eq!(blk.complete().unwrap().status, Status::Invalid(0x42));
    // Completions for chains that are not in flight, or past the table: skipped, counted.
    fake.bogus_completion(3);
    fake.bogus_completion(70_000);
    fake.bogus_completion(15);
    assert_eq!(blk.complete(), None);
    assert_eq!(blk.counters().bogus, 3);
    assert_eq!(blk.free_descriptors(), 16, "nothing freed twice");
    fake.device.borrow_mut().fail_with = None;
    blk.submit(4, Op::Read, 0, &page).unwrap();
    blk.notify();
    assert_eq!(
        blk.complete(),
        Some(Completion {
            id: 4,
            status: Status::Ok
        })
    );
}
