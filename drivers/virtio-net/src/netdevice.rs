//! The library OS's [`NetDevice`] over the driver.

#![deny(unsafe_code)]

use libos_core::{DeviceError, NetDevice};

use crate::{Platform, RxError, TxError, VirtioNet, MTU};

impl<P: Platform> NetDevice for VirtioNet<P> {
    fn mac_address(&self) -> [u8; 6] {
        VirtioNet::mac_address(self)
    }

    fn mtu(&self) -> usize {
        MTU
    }

    fn receive(&mut self, buffer: &mut [u8]) -> Result<usize, DeviceError> {
        VirtioNet::receive(self, buffer).map_err(|error| match error {
            RxError::Empty => DeviceError::WouldBlock,
            RxError::Truncated => DeviceError::Truncated,
            RxError::Device => DeviceError::Failed,
        })
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), DeviceError> {
        VirtioNet::transmit(self, frame).map_err(|error| match error {
            TxError::Full => DeviceError::WouldBlock,
            TxError::BadLength | TxError::Device => DeviceError::Failed,
        })
    }
}
