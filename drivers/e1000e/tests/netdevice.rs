//! The driver as the library OS's `NetDevice` (feature `libos`).
#![cfg(feature = "libos")]

mod sim;

use libos_core::{DeviceError, NetDevice};
use sim::{frame, rings, start, MAC};

#[test]
fn the_driver_is_a_net_device() {
    let (driver, sim) = start(rings(8, 8));
    let mut device: Box<dyn NetDevice> = Box::new(driver);
    assert_eq!(device.mac_address(), MAC);
    assert_eq!(device.mtu(), 1500);
    assert_eq!(
        device.checksum_offload(),
        libos_core::ChecksumOffload::default()
    );

    let mut buffer = [0u8; 1514];
    assert_eq!(device.receive(&mut buffer), Err(DeviceError::WouldBlock));
    assert!(sim.deliver(&frame(1, 1514)));
    assert!(sim.deliver(&frame(2, 60)));
    assert_eq!(
        device.receive(&mut buffer[..100]),
        Err(DeviceError::Truncated)
    );
    assert_eq!(device.receive(&mut buffer), Ok(60));
    assert_eq!(&buffer[..60], &frame(2, 60)[..]);

    for tag in 0..7 {
        device.transmit(&frame(tag, 60)).unwrap();
    }
    assert_eq!(device.transmit(&frame(7, 60)), Err(DeviceError::WouldBlock));
    assert_eq!(device.transmit(&[]), Err(DeviceError::Failed));
    assert_eq!(sim.process_tx().len(), 7);
    device.transmit(&frame(7, 60)).unwrap();
}
