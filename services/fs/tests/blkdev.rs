//! The service's block device over `blkring` against an in-process block server: sectors
//! round-trip, a FAT volume made by `mkfs.fat` mounts and keeps files through it, a server
//! that goes away is attached again and the transfer repeated, and a server that does not
//! come back (or comes back with another window) is an error, never a hang or a wrong
//! buffer.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

use blkring::disk::{Disk, DiskError, Wait};
use blkring::{op, ClientRings, Limits, Response, ServerRings, Status, DATA_OFFSET};
use fs::blkdev::{device_error, Attach, BlkDevice, MAX_REATTACH};
use libos_fat::{BlockDevice, DeviceError, FileSystem, Options, Path};

const REGION: usize = 64 * 1024;

/// One instance of the block server: its rings over one attachment, the disk shared with
/// every other instance (the disk outlives the server, as a real one does).
struct Server {
    rings: ServerRings,
    region: &'static [AtomicU32],
    limits: Limits,
    disk: Rc<RefCell<Vec<u8>>>,
    /// Requests left before this instance dies (`None`: never).
    lives: Rc<RefCell<Option<usize>>>,
    dead: bool,
}

impl Server {
    fn serve(&mut self) {
        if self.dead {
            return;
        }
        while let Ok(Some(r)) = self.rings.pop() {
            {
                let mut lives = self.lives.borrow_mut();
                if let Some(n) = lives.as_mut() {
                    if *n == 0 {
                        *lives = None;
                        self.dead = true;
                        return;
                    }
                    *n -= 1;
                }
            }
            let status = match self.limits.check(&r) {
                Err(s) => s,
                Ok(c) => {
                    let mut disk = self.disk.borrow_mut();
                    let base = c.sector as usize * 512;
                    for i in 0..c.count as usize * 128 {
                        let at = base + 4 * i;
                        let word = &self.region[DATA_OFFSET / 4 + c.offset as usize / 4 + i];
                        match c.op {
                            op::READ => word.store(
                                u32::from_le_bytes(disk[at..at + 4].try_into().unwrap()),
                                Ordering::Relaxed,
                            ),
                            _ => disk[at..at + 4]
                                .copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes()),
                        }
                    }
                    Status::Ok
                }
            };
            let count = if status == Status::Ok { r.count } else { 0 };
            let response = Response {
                status,
                count,
                id: r.id,
            };
            self.rings.push(response).unwrap();
        }
        self.rings.publish();
        self.rings.prepare_wait();
    }
}

/// Signalling runs the server; waiting says whether it is still there.
struct Inline(Server);

impl Wait for Inline {
    fn signal(&mut self) {
        self.0.serve();
    }
    fn wait(&mut self) -> bool {
        self.0.serve();
        !self.0.dead
    }
}

/// Attaches a fresh server instance over a fresh region to the shared disk.
struct Attacher {
    disk: Rc<RefCell<Vec<u8>>>,
    lives: Rc<RefCell<Option<usize>>>,
    attaches: usize,
    /// Attaches that fail from the nth on.
    fail_from: Option<usize>,
    /// The window the next instances report (None: the whole disk).
    window: Option<u64>,
    /// Every new instance dies at its first request.
    always_dying: bool,
}

impl Attach for Attacher {
    type Wait = Inline;

    fn attach(&mut self) -> Result<Disk<Inline>, &'static str> {
        if self.fail_from.is_some_and(|n| self.attaches >= n) {
            return Err("blk is not there");
        }
        self.attaches += 1;
        if self.always_dying {
            *self.lives.borrow_mut() = Some(0);
        }
        let region: &'static [AtomicU32] =
            shmring::zeroed_words(REGION / 4).collect::<Vec<_>>().leak();
        let (rings, layout) = ClientRings::new(region, self.attaches as u64).unwrap();
        let (mut server_rings, _) = ServerRings::new(region).unwrap();
        assert!(server_rings.prepare_wait());
        let sectors = self
            .window
            .unwrap_or((self.disk.borrow().len() / 512) as u64);
        let limits = Limits {
            sectors,
            max_sectors: 16,
            data: shmring::Region::new(layout.data_bytes, 512).unwrap(),
        };
        let server = Server {
            rings: server_rings,
            region,
            limits,
            disk: self.disk.clone(),
            lives: self.lives.clone(),
            dead: false,
        };
        Ok(Disk::new(
            rings,
            layout.data_bytes,
            sectors,
            16,
            Inline(server),
        ))
    }
}

fn device(disk: Vec<u8>) -> BlkDevice<Attacher> {
    BlkDevice::new(Attacher {
        disk: Rc::new(RefCell::new(disk)),
        lives: Rc::new(RefCell::new(None)),
        attaches: 0,
        fail_from: None,
        window: None,
        always_dying: false,
    })
    .unwrap()
}

/// Makes the current server instance die after `n` more requests.
fn kill_after(d: &mut BlkDevice<Attacher>, n: usize) {
    *d.attacher().lives.borrow_mut() = Some(n);
}

#[test]
fn sectors_round_trip_and_the_end_is_refused() {
    let mut d = device(vec![0; 64 * 512]);
    assert_eq!(d.sector_count(), 64);
    let sector = [0xa5u8; 512];
    d.write(63, &sector).unwrap();
    d.flush().unwrap();
    let mut back = [0u8; 512];
    d.read(63, &mut back).unwrap();
    assert_eq!(back, sector);
    assert_eq!(d.read(64, &mut back), Err(DeviceError::OutOfRange));
    assert_eq!(d.write(u64::MAX, &sector), Err(DeviceError::OutOfRange));
    assert_eq!(d.attacher().disk.borrow()[63 * 512], 0xa5);
}

#[test]
fn a_server_that_goes_away_is_attached_again_and_the_transfer_repeated() {
    let mut d = device(vec![0; 64 * 512]);
    kill_after(&mut d, 0);
    // The write is gathered and sent by the flush, which repeats it on the next instance.
    d.write(5, &[7u8; 512]).unwrap();
    d.flush().unwrap();
    assert_eq!(d.reattached(), 1);
    assert_eq!(d.attacher().attaches, 2);
    let mut back = [0u8; 512];
    kill_after(&mut d, 0);
    d.read(5, &mut back).unwrap();
    assert_eq!(back, [7u8; 512]);
    kill_after(&mut d, 0);
    d.flush().unwrap();
    assert_eq!(d.reattached(), 3);
}

#[test]
fn a_server_that_does_not_come_back_is_an_error() {
    let mut d = device(vec![0; 64 * 512]);
    d.attacher().fail_from = Some(1);
    kill_after(&mut d, 0);
    d.write(1, &[1u8; 512]).unwrap();
    assert_eq!(d.flush(), Err(DeviceError::Gone));
    assert_eq!(d.reattached(), 0);
    // Every instance dies at once: the transfer is given up after MAX_REATTACH attaches.
    let mut d = device(vec![0; 64 * 512]);
    d.attacher().always_dying = true;
    kill_after(&mut d, 0);
    assert_eq!(d.read(0, &mut [0u8; 512]), Err(DeviceError::Gone));
    assert_eq!(d.reattached(), u64::from(MAX_REATTACH));
    assert_eq!(d.attacher().attaches, 1 + MAX_REATTACH as usize);
}

#[test]
fn sequential_reads_are_read_ahead_and_consecutive_writes_gathered() {
    let disk: Vec<u8> = (0..512 * 512).map(|i| (i / 512) as u8).collect();
    let mut d = device(disk);
    let mut back = [0u8; 512];
    // 200 sectors in order: one read of the first, then two runs read ahead.
    for sector in 0..200u64 {
        d.read(sector, &mut back).unwrap();
        assert_eq!(back, [sector as u8; 512], "sector {sector}");
    }
    assert_eq!(d.transfers(), 3);
    // Scattered reads read one sector each.
    let before = d.transfers();
    for sector in [400u64, 300, 450] {
        d.read(sector, &mut back).unwrap();
        assert_eq!(back[0], sector as u8);
    }
    assert_eq!(d.transfers(), before + 3);
    // 100 consecutive writes and a flush: one write and the flush reach the disk.
    let before = d.transfers();
    for sector in 300..400u64 {
        d.write(sector, &[0xee; 512]).unwrap();
    }
    assert_eq!(
        d.attacher().disk.borrow()[300 * 512],
        44,
        "not sent before the flush"
    );
    d.flush().unwrap();
    assert_eq!(d.transfers(), before + 2);
    assert!(d.attacher().disk.borrow()[300 * 512..400 * 512]
        .iter()
        .all(|&b| b == 0xee));
}

#[test]
fn gathered_and_read_ahead_sectors_always_read_back_the_newest_bytes() {
    let mut d = device(vec![0; 512 * 512]);
    let mut back = [0u8; 512];
    // A gathered write is read back before it is sent.
    d.write(10, &[1; 512]).unwrap();
    d.read(10, &mut back).unwrap();
    assert_eq!(back, [1; 512]);
    // The next read is sequential: the run goes out first, and the window read ahead
    // holds the newest bytes.
    d.read(11, &mut back).unwrap();
    assert_eq!(back, [0; 512]);
    assert_eq!(d.attacher().disk.borrow()[10 * 512], 1);
    // A write inside the window read ahead is seen by the next read from it.
    d.write(12, &[2; 512]).unwrap();
    d.write(40, &[3; 512]).unwrap();
    d.read(12, &mut back).unwrap();
    assert_eq!(back, [2; 512]);
    // Rewriting a gathered sector out of order sends the run first: order is kept.
    d.write(41, &[4; 512]).unwrap();
    d.write(40, &[5; 512]).unwrap();
    assert_eq!(d.attacher().disk.borrow()[41 * 512], 4);
    d.flush().unwrap();
    assert_eq!(d.attacher().disk.borrow()[40 * 512], 5);
    assert_eq!(d.attacher().disk.borrow()[12 * 512], 2);
}

#[test]
fn a_server_with_another_window_is_refused() {
    let mut d = device(vec![0; 64 * 512]);
    d.attacher().window = Some(32);
    kill_after(&mut d, 0);
    assert_eq!(d.read(0, &mut [0u8; 512]), Err(DeviceError::Io));
}

#[test]
fn disk_errors_map_to_device_errors() {
    assert_eq!(device_error(DiskError::Gone), DeviceError::Gone);
    assert_eq!(
        device_error(DiskError::Refused(Status::ReadOnly)),
        DeviceError::ReadOnly
    );
    assert_eq!(
        device_error(DiskError::Refused(Status::OutOfRange)),
        DeviceError::OutOfRange
    );
    assert_eq!(device_error(DiskError::Server), DeviceError::Io);
    assert_eq!(
        device_error(DiskError::Refused(Status::IoError)),
        DeviceError::Io
    );
}

#[test]
fn a_fat_volume_lives_through_the_device_and_a_restart() {
    let Some(image) = common::image(8192) else {
        return;
    };
    let mut d = device(image);
    let disk = d.attacher().disk.clone();
    // The server dies in the middle of the mount's reads.
    kill_after(&mut d, 3);
    let options = Options {
        read_only: false,
        cache_sectors: 64,
    };
    let mut volume = FileSystem::mount_with(d, options).unwrap();
    volume.mkdir(&Path::parse("dir").unwrap()).unwrap();
    let path = Path::parse("dir/a long file name.txt").unwrap();
    volume.create(&path).unwrap();
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    volume.write(&path, 0, &data).unwrap();
    volume.sync().unwrap();
    assert_eq!(volume.device().reattached(), 1);
    let bytes = disk.borrow().clone();
    assert!(common::fsck_clean(&bytes));
    let mut again = FileSystem::mount_with(device(bytes), options).unwrap();
    let mut back = vec![0u8; data.len() + 10];
    assert_eq!(again.read(&path, 0, &mut back).unwrap(), data.len());
    assert_eq!(&back[..data.len()], &data[..]);
}

#[test]
fn the_raw_bench_writes_and_reads_back_through_the_disk() {
    let mut d = device(vec![0; 1024 * 512]);
    let mut tick = 0;
    let mut now = || {
        tick += 1;
        tick
    };
    let (w, r) =
        fs::blkdev::raw_sequential(d.disk(), 512, 200 * 1024, 64 * 1024, &mut now).unwrap();
    assert!(w > 0 && r > 0);
    let disk = d.attacher().disk.clone();
    assert!(
        disk.borrow()[..512 * 512].iter().all(|&b| b == 0),
        "nothing below `first`"
    );
    assert_ne!(disk.borrow()[512 * 512 + 1], 0);
    assert_eq!(
        fs::blkdev::raw_sequential(d.disk(), 0, 1000, 4096, &mut now),
        Err(DiskError::BadRange)
    );
    assert_eq!(
        fs::blkdev::raw_sequential(d.disk(), 1000, 64 * 512, 4096, &mut now),
        Err(DiskError::BadRange),
        "past the window"
    );
}
