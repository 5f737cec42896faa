//! The shadow configuration space against QEMU 7.2's transitional `virtio-net-pci` layout.

use virtio_drivers::transport::pci::bus::{BarInfo, DeviceFunction, PciRoot};
use virtio_net::{ConfigSpace, Region, ShadowConfig};

/// QEMU's layout: BAR0 I/O, BAR1 MSI-X, BAR4 64-bit memory with common (0x0, 0x38),
/// ISR (0x1000, 0x1000), device (0x2000, 0x1000) and notify (0x3000, 0x1000, multiplier 4).
fn qemu_words() -> [u32; 64] {
    let mut w = [0u32; 64];
    w[0] = 0x1000_1AF4;
    w[1] = 0x0010_0000 | 0x7; // status: capability list; command: io, memory, master
    w[4] = 0xC041; // BAR0 I/O
    w[5] = 0xFEBF_1000; // BAR1 MSI-X
    w[8] = 0xFE00_000C; // BAR4: 64-bit prefetchable
    w[9] = 0;
    w[0x34 / 4] = 0x98;
    // MSI-X at 0x98 -> 0x84
    w[0x98 / 4] = 0x0002_8411;
    let vendor =
        |w: &mut [u32; 64], at: usize, next: u32, kind: u32, len: u32, off: u32, size: u32| {
            w[at / 4] = kind << 24 | len << 16 | next << 8 | 0x09;
            w[at / 4 + 1] = 4;
            w[at / 4 + 2] = off;
            w[at / 4 + 3] = size;
        };
    vendor(&mut w, 0x84, 0x70, 1, 16, 0, 0x38); // wrong order is fine
    vendor(&mut w, 0x70, 0x60, 3, 16, 0x1000, 0x1000);
    vendor(&mut w, 0x60, 0x48, 4, 16, 0x2000, 0x1000);
    vendor(&mut w, 0x48, 0xA0, 2, 20, 0x3000, 0x1000);
    w[0x48 / 4 + 4] = 4;
    vendor(&mut w, 0xA0, 0x00, 5, 20, 0, 0); // PCI config access: ignored
    w
}

struct Words([u32; 64]);

impl ConfigSpace for Words {
    fn read32(&mut self, offset: u8) -> u32 {
        self.0[usize::from(offset / 4)]
    }
}

#[test]
fn finds_the_virtio_structures_and_sizes_bar4() {
    let shadow = ShadowConfig::read(&mut Words(qemu_words()));
    assert_eq!(shadow.ids(), (0x1AF4, 0x1000));
    let layout = shadow.layout();
    assert_eq!(
        layout.common,
        Some(Region {
            bar: 4,
            offset: 0,
            length: 0x38
        })
    );
    assert_eq!(
        layout.isr,
        Some(Region {
            bar: 4,
            offset: 0x1000,
            length: 0x1000
        })
    );
    assert_eq!(
        layout.device,
        Some(Region {
            bar: 4,
            offset: 0x2000,
            length: 0x1000
        })
    );
    assert_eq!(
        layout.notify,
        Some(Region {
            bar: 4,
            offset: 0x3000,
            length: 0x1000
        })
    );
    assert_eq!(layout.bar_size(4), 0x4000);
    assert_eq!(layout.bar_size(1), 0);
    assert_eq!(shadow.bar_address(4), Some(0xFE00_0000));
    assert_eq!(shadow.bar_address(0), None);
}

#[test]
fn bar_sizing_is_emulated_and_restored() {
    let mut root = PciRoot::new(ShadowConfig::from_words(qemu_words()));
    let f = DeviceFunction {
        bus: 0,
        device: 0,
        function: 0,
    };
    match root.bar_info(f, 4).unwrap() {
        Some(BarInfo::Memory { address, size, .. }) => {
            assert_eq!((address, size), (0xFE00_0000, 0x4000));
        }
        other => panic!("BAR4 is {other:?}"),
    }
    // Sizing again gives the same answer: the shadow restored the address.
    let again = root.bar_info(f, 4).unwrap().unwrap();
    assert_eq!(again.memory_address_size(), Some((0xFE00_0000, 0x4000)));
    // The capability list as virtio-drivers walks it.
    let ids: Vec<u8> = root.capabilities(f).map(|c| c.id).collect();
    assert_eq!(ids, [0x11, 9, 9, 9, 9, 9]);
}

#[test]
fn a_looping_or_absent_capability_list_is_harmless() {
    let mut w = qemu_words();
    w[0xA0 / 4] = 5 << 24 | 20 << 16 | 0xA0 << 8 | 0x09; // points at itself
    let s = ShadowConfig::from_words(w);
    assert!(s.layout().common.is_some());
    w[1] = 0;
    assert_eq!(ShadowConfig::from_words(w).layout().common, None);
}
