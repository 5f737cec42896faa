//! The driver as a `netdev::NetDevice`: frames lent in place, copying fallbacks.

mod sim;

use netdev::{ChecksumOffload, DeviceError, NetDevice};
use sim::{frame, rings, start, MAC};

#[test]
fn the_driver_is_a_net_device() {
    let (driver, sim) = start(rings(8, 8));
    let mut device: Box<dyn NetDevice> = Box::new(driver);
    assert_eq!(device.mac_address(), MAC);
    assert_eq!(device.mtu(), 1500);
    assert_eq!(device.checksum_offload(), ChecksumOffload::default());

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

#[test]
fn received_frames_are_lent_from_dma_memory() {
    let (driver, sim) = start(rings(8, 8));
    let mut device: Box<dyn NetDevice> = Box::new(driver);
    let dma = sim.memory().borrow().bytes.as_ptr_range();

    assert!(!device.rx_ready());
    let mut calls = 0;
    assert_eq!(
        device.receive_with(&mut |_| calls += 1),
        Err(DeviceError::WouldBlock)
    );
    assert_eq!(calls, 0);

    assert!(sim.deliver(&frame(3, 1514)));
    assert!(device.rx_ready());
    let mut seen = Vec::new();
    device
        .receive_with(&mut |lent| {
            assert!(dma.contains(&lent.as_ptr()), "the frame was copied");
            seen.push(lent.to_vec());
        })
        .unwrap();
    assert_eq!(seen, [frame(3, 1514)]);
    assert!(!device.rx_ready());

    // A descriptor with an error makes the ring ready, then yields no frame.
    assert!(sim.deliver_raw(&frame(4, 60), 60, 0x03, 0x01));
    assert!(device.rx_ready());
    assert_eq!(
        device.receive_with(&mut |_| calls += 1),
        Err(DeviceError::WouldBlock)
    );
    assert_eq!(calls, 0);
}

#[test]
fn transmitted_frames_are_built_in_dma_memory() {
    let (driver, sim) = start(rings(8, 8));
    let mut device: Box<dyn NetDevice> = Box::new(driver);
    let dma = sim.memory().borrow().bytes.as_ptr_range();

    let expected = frame(9, 80);
    device
        .transmit_with(80, &mut |buffer| {
            assert!(dma.contains(&buffer.as_ptr()), "built outside DMA memory");
            assert_eq!(buffer.len(), 80);
            buffer.copy_from_slice(&expected);
        })
        .unwrap();
    let sent = sim.process_tx();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].data, expected);

    // Refused lengths and a full ring: the closure is not called.
    let mut calls = 0;
    assert_eq!(
        device.transmit_with(0, &mut |_| calls += 1),
        Err(DeviceError::Failed)
    );
    assert_eq!(
        device.transmit_with(1519, &mut |_| calls += 1),
        Err(DeviceError::Failed)
    );
    for _ in 0..7 {
        device.transmit_with(60, &mut |b| b.fill(1)).unwrap();
    }
    assert_eq!(
        device.transmit_with(60, &mut |_| calls += 1),
        Err(DeviceError::WouldBlock)
    );
    assert_eq!(calls, 0);
    assert_eq!(sim.process_tx().len(), 7);
}
