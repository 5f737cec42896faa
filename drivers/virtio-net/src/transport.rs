//! The transport as the driver negotiates it: `virtio-drivers`' `PciTransport` with
//! `VIRTIO_F_EVENT_IDX` taken out of what the device offers, the checksum offloads
//! `virtio-drivers` does not know ([`crate::offload`]) added to what it accepts when the
//! device offers them, and its queue notifications (each an MMIO write, a QEMU exit)
//! counted.
//!
//! Why no EVENT_IDX: `virtio-drivers` 0.13 implements it in a way that suppresses
//! nothing. Its `should_notify` tests `avail_idx >= avail_event + 1` instead of the
//! spec's wrap-safe `vring_need_event`, so once the device's `avail_event` lies behind (it
//! does while QEMU is not waiting for buffers) every added buffer kicks the device; and
//! `pop_used` rewrites `used_event` on every pop, so interrupts cannot be kept off while
//! the driver polls. Without EVENT_IDX the queues use the flags instead: the device sets
//! `VRING_USED_F_NO_NOTIFY` while it is processing a queue (no kick needed then) and the
//! driver sets `VRING_AVAIL_F_NO_INTERRUPT` while its poll loop is busy
//! ([`crate::VirtioNet::set_interrupts`]).

#![deny(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{PhysAddr, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Feature bit of `VIRTIO_F_EVENT_IDX` (virtio 1.1, 6).
pub const EVENT_IDX: u64 = 1 << 29;

/// Features the driver never takes, whatever `virtio-drivers` supports.
pub const DECLINED_FEATURES: u64 = EVENT_IDX;

/// Queue notifications sent through every [`Negotiated`] transport of the program (a
/// component drives one NIC; `VirtIONetRaw` does not give its transport back, so the count
/// cannot live in it).
static NOTIFICATIONS: AtomicU64 = AtomicU64::new(0);
/// The features last written to a device through a [`Negotiated`] transport.
static NEGOTIATED: AtomicU64 = AtomicU64::new(0);

/// The features the driver last accepted (written to the device) through a
/// [`Negotiated`] transport (one NIC per component).
pub fn negotiated() -> u64 {
    NEGOTIATED.load(Ordering::Relaxed)
}

/// Queue notifications ("kicks") sent to virtio devices so far, by all [`Negotiated`]
/// transports together.
pub fn notifications() -> u64 {
    NOTIFICATIONS.load(Ordering::Relaxed)
}

/// A transport with [`DECLINED_FEATURES`] hidden, the `extra` features accepted where the
/// device offers them, and its notifications counted (in [`notifications`]).
pub struct Negotiated<T> {
    inner: T,
    extra: u64,
    offered: u64,
}

impl<T: Transport> Negotiated<T> {
    /// Wraps `inner`; `extra` are features the driver handles itself beyond what
    /// `virtio-drivers` asks for.
    pub fn new(inner: T, extra: u64) -> Negotiated<T> {
        Negotiated {
            inner,
            extra: extra & !DECLINED_FEATURES,
            offered: 0,
        }
    }
}

impl<T: Transport> Transport for Negotiated<T> {
    fn device_type(&self) -> DeviceType {
        self.inner.device_type()
    }
    fn read_device_features(&mut self) -> u64 {
        self.offered = self.inner.read_device_features();
        self.offered & !DECLINED_FEATURES
    }
    fn write_driver_features(&mut self, driver_features: u64) {
        let features = (driver_features | (self.offered & self.extra)) & !DECLINED_FEATURES;
        NEGOTIATED.store(features, Ordering::Relaxed);
        self.inner.write_driver_features(features)
    }
    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.inner.max_queue_size(queue)
    }
    fn notify(&mut self, queue: u16) {
        NOTIFICATIONS.fetch_add(1, Ordering::Relaxed);
        self.inner.notify(queue)
    }
    fn get_status(&self) -> DeviceStatus {
        self.inner.get_status()
    }
    fn set_status(&mut self, status: DeviceStatus) {
        self.inner.set_status(status)
    }
    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.inner.set_guest_page_size(guest_page_size)
    }
    fn requires_legacy_layout(&self) -> bool {
        self.inner.requires_legacy_layout()
    }
    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.inner
            .queue_set(queue, size, descriptors, driver_area, device_area)
    }
    fn queue_unset(&mut self, queue: u16) {
        self.inner.queue_unset(queue)
    }
    fn queue_used(&mut self, queue: u16) -> bool {
        self.inner.queue_used(queue)
    }
    fn ack_interrupt(&mut self) -> InterruptStatus {
        self.inner.ack_interrupt()
    }
    fn read_config_generation(&self) -> u32 {
        self.inner.read_config_generation()
    }
    fn read_config_space<V: FromBytes + IntoBytes>(&self, offset: usize) -> Result<V> {
        self.inner.read_config_space(offset)
    }
    fn write_config_space<V: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: V,
    ) -> Result<()> {
        self.inner.write_config_space(offset, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offers `features`, records what the driver writes; nothing else is used.
    struct Fake {
        features: u64,
        written: u64,
        kicked: [u32; 2],
    }

    impl Transport for Fake {
        fn device_type(&self) -> DeviceType {
            DeviceType::Network
        }
        fn read_device_features(&mut self) -> u64 {
            self.features
        }
        fn write_driver_features(&mut self, driver_features: u64) {
            self.written = driver_features;
        }
        fn max_queue_size(&mut self, _: u16) -> u32 {
            16
        }
        fn notify(&mut self, queue: u16) {
            self.kicked[usize::from(queue)] += 1;
        }
        fn get_status(&self) -> DeviceStatus {
            DeviceStatus::empty()
        }
        fn set_status(&mut self, _: DeviceStatus) {}
        fn set_guest_page_size(&mut self, _: u32) {}
        fn requires_legacy_layout(&self) -> bool {
            false
        }
        fn queue_set(&mut self, _: u16, _: u32, _: PhysAddr, _: PhysAddr, _: PhysAddr) {}
        fn queue_unset(&mut self, _: u16) {}
        fn queue_used(&mut self, _: u16) -> bool {
            false
        }
        fn ack_interrupt(&mut self) -> InterruptStatus {
            InterruptStatus::empty()
        }
        fn read_config_generation(&self) -> u32 {
            0
        }
        fn read_config_space<V: FromBytes + IntoBytes>(&self, _: usize) -> Result<V> {
            Err(virtio_drivers::Error::ConfigSpaceMissing)
        }
        fn write_config_space<V: IntoBytes + Immutable>(&mut self, _: usize, _: V) -> Result<()> {
            Err(virtio_drivers::Error::ConfigSpaceMissing)
        }
    }

    #[test]
    fn event_idx_is_declined_and_notifications_are_counted() {
        let offered = EVENT_IDX | (1 << 32) | (1 << 5);
        // The extra features: bit 5 is offered, bit 6 is not, EVENT_IDX is never taken.
        let extra = (1 << 5) | (1 << 6) | EVENT_IDX;
        let mut transport = Negotiated::new(
            Fake {
                features: offered,
                written: 0,
                kicked: [0; 2],
            },
            extra,
        );
        assert_eq!(transport.read_device_features(), (1 << 32) | (1 << 5));
        // Even a driver that asks for EVENT_IDX does not get it.
        transport.write_driver_features(offered);
        assert_eq!(transport.inner.written, (1 << 32) | (1 << 5));
        transport.write_driver_features(1 << 32);
        assert_eq!(
            transport.inner.written,
            (1 << 32) | (1 << 5),
            "the extra bit added"
        );
        assert_eq!(negotiated(), (1 << 32) | (1 << 5));
        let before = notifications();
        transport.notify(1);
        transport.notify(0);
        transport.notify(1);
        assert_eq!(notifications() - before, 3);
        assert_eq!(
            transport.inner.kicked,
            [1, 2],
            "every kick still reaches the device"
        );
    }
}
