//! The library OS's [`NetDevice`] over the driver.

use libos_core::{DeviceError, NetDevice};

use crate::{DmaRegion, E1000e, Mmio, RxError, TxError, MTU};

impl<M: Mmio, R: DmaRegion> NetDevice for E1000e<M, R> {
    fn mac_address(&self) -> [u8; 6] {
        E1000e::mac_address(self)
    }

    fn mtu(&self) -> usize {
        MTU
    }

    fn receive(&mut self, buffer: &mut [u8]) -> Result<usize, DeviceError> {
        E1000e::receive(self, buffer).map_err(|error| match error {
            RxError::Empty => DeviceError::WouldBlock,
            RxError::Truncated { .. } => DeviceError::Truncated,
        })
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), DeviceError> {
        E1000e::transmit(self, frame).map_err(|error| match error {
            TxError::Full => DeviceError::WouldBlock,
            TxError::BadLength => DeviceError::Failed,
        })
    }
}
