//! What the driver needs from a virtio transport, and that trait over `virtio-drivers`'
//! transports (on Tessera, its `PciTransport` over the modern PCI layout).

use virtio_drivers::transport::{DeviceStatus, Transport};

/// The few transport operations the block driver uses (virtio 1.2, section 4.1 for PCI).
pub trait BlkTransport {
    /// The feature bits the device offers.
    fn device_features(&mut self) -> u64;
    /// Accepts `features` (a subset of the offered ones).
    fn set_driver_features(&mut self, features: u64);
    /// The device status byte.
    fn status(&self) -> u8;
    /// Writes the device status byte (0 resets the device).
    fn set_status(&mut self, status: u8);
    /// The largest size queue `queue` may have (0: no such queue).
    fn max_queue_size(&mut self, queue: u16) -> u32;
    /// Gives queue `queue` of `size` entries its three areas (physical addresses) and
    /// enables it.
    fn queue_set(&mut self, queue: u16, size: u32, descriptors: u64, driver: u64, device: u64);
    /// Tells the device that queue `queue` has new available entries.
    fn notify(&mut self, queue: u16);
    /// Reads and clears the interrupt status (lowers an INTx line); whether a queue
    /// interrupt was pending.
    fn ack_interrupt(&mut self) -> bool;
    /// The 32-bit word at byte `offset` of the device-specific configuration.
    fn config32(&self, offset: usize) -> Option<u32>;
}

/// [`BlkTransport`] over any `virtio-drivers` transport.
pub struct Adapter<T: Transport>(pub T);

impl<T: Transport> BlkTransport for Adapter<T> {
    fn device_features(&mut self) -> u64 {
        self.0.read_device_features()
    }
    fn set_driver_features(&mut self, features: u64) {
        self.0.write_driver_features(features)
    }
    fn status(&self) -> u8 {
        self.0.get_status().bits() as u8
    }
    fn set_status(&mut self, status: u8) {
        self.0
            .set_status(DeviceStatus::from_bits_truncate(u32::from(status)))
    }
    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.0.max_queue_size(queue)
    }
    fn queue_set(&mut self, queue: u16, size: u32, descriptors: u64, driver: u64, device: u64) {
        self.0.queue_set(queue, size, descriptors, driver, device)
    }
    fn notify(&mut self, queue: u16) {
        self.0.notify(queue)
    }
    fn ack_interrupt(&mut self) -> bool {
        !self.0.ack_interrupt().is_empty()
    }
    fn config32(&self, offset: usize) -> Option<u32> {
        self.0.read_config_space::<u32>(offset).ok()
    }
}
