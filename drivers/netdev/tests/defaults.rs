//! The copying `receive` and `transmit` that every device gets from its lending calls.

use netdev::{DeviceError, NetDevice};

/// A device with one pending received frame and a one-frame transmit queue.
struct OneFrame {
    rx: Option<Vec<u8>>,
    tx: Option<Vec<u8>>,
    tx_limit: usize,
}

impl NetDevice for OneFrame {
    fn mac_address(&self) -> [u8; 6] {
        [2, 0, 0, 0, 0, 1]
    }

    fn mtu(&self) -> usize {
        1500
    }

    fn rx_ready(&mut self) -> bool {
        self.rx.is_some()
    }

    fn receive_with(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<(), DeviceError> {
        let frame = self.rx.take().ok_or(DeviceError::WouldBlock)?;
        f(&frame);
        Ok(())
    }

    fn transmit_with(
        &mut self,
        len: usize,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), DeviceError> {
        if len == 0 || len > self.tx_limit {
            return Err(DeviceError::Failed);
        }
        if self.tx.is_some() {
            return Err(DeviceError::WouldBlock);
        }
        let mut buffer = vec![0xAA; len];
        f(&mut buffer);
        self.tx = Some(buffer);
        Ok(())
    }
}

fn device() -> OneFrame {
    OneFrame {
        rx: None,
        tx: None,
        tx_limit: 1514,
    }
}

#[test]
fn receive_copies_the_lent_frame() {
    let mut device = device();
    let mut buffer = [0u8; 1514];
    assert_eq!(device.receive(&mut buffer), Err(DeviceError::WouldBlock));
    device.rx = Some((1..=60).collect());
    assert!(device.rx_ready());
    assert_eq!(device.receive(&mut buffer), Ok(60));
    assert_eq!(&buffer[..60], &(1..=60).collect::<Vec<u8>>()[..]);
    assert!(!device.rx_ready());
}

#[test]
fn receive_drops_a_frame_longer_than_the_buffer() {
    let mut device = device();
    device.rx = Some(vec![7; 100]);
    let mut buffer = [0u8; 99];
    assert_eq!(device.receive(&mut buffer), Err(DeviceError::Truncated));
    assert_eq!(buffer, [0u8; 99]);
    // The frame is gone, not left for a larger buffer.
    assert_eq!(
        device.receive(&mut [0u8; 200]),
        Err(DeviceError::WouldBlock)
    );
}

#[test]
fn transmit_copies_the_whole_frame_and_passes_errors_on() {
    let mut device = device();
    device.transmit(&[1, 2, 3]).unwrap();
    assert_eq!(device.tx.as_deref(), Some(&[1u8, 2, 3][..]));
    assert_eq!(device.transmit(&[4]), Err(DeviceError::WouldBlock));
    device.tx = None;
    assert_eq!(device.transmit(&[]), Err(DeviceError::Failed));
    assert_eq!(device.transmit(&[0; 1515]), Err(DeviceError::Failed));
    assert_eq!(device.tx, None);
}

#[test]
fn the_trait_is_object_safe() {
    let mut device: Box<dyn NetDevice> = Box::new(device());
    assert_eq!(device.mtu(), 1500);
    assert_eq!(
        device.checksum_offload(),
        netdev::ChecksumOffload::default()
    );
    assert!(!device.rx_ready());
    device.transmit(&[9; 60]).unwrap();
}
