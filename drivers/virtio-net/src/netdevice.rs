//! The driver as a [`NetDevice`]: frames are lent in place, in the queues' DMA buffers.

#![deny(unsafe_code)]

use netdev::{ChecksumOffload, DeviceError, NetDevice, RxChecksums};

use crate::{Platform, RxError, TxError, VirtioNet, MTU};

impl<P: Platform> NetDevice for VirtioNet<P> {
    fn mac_address(&self) -> [u8; 6] {
        VirtioNet::mac_address(self)
    }

    fn mtu(&self) -> usize {
        MTU
    }

    fn set_interrupts(&mut self, on: bool) {
        VirtioNet::set_interrupts(self, on)
    }

    fn checksum_offload(&self) -> ChecksumOffload {
        ChecksumOffload {
            rx: false,
            tx: self.checksum_offloads().0,
        }
    }

    fn receive_with_checksums(
        &mut self,
        f: &mut dyn FnMut(&[u8], RxChecksums),
    ) -> Result<(), DeviceError> {
        VirtioNet::receive_with_checksums(self, f).map_err(rx_error)
    }

    fn rx_ready(&mut self) -> bool {
        self.rx_pending()
    }

    fn receive_with(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<(), DeviceError> {
        VirtioNet::receive_with(self, f).map_err(rx_error)
    }

    fn transmit_with(
        &mut self,
        len: usize,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), DeviceError> {
        VirtioNet::transmit_with(self, len, f).map_err(|error| match error {
            TxError::Full => DeviceError::WouldBlock,
            TxError::BadLength | TxError::Device => DeviceError::Failed,
        })
    }

    fn receive(&mut self, buffer: &mut [u8]) -> Result<usize, DeviceError> {
        // The driver's own copy counts a frame too long for `buffer` as dropped.
        VirtioNet::receive(self, buffer).map_err(rx_error)
    }
}

fn rx_error(error: RxError) -> DeviceError {
    match error {
        RxError::Empty => DeviceError::WouldBlock,
        RxError::Truncated => DeviceError::Truncated,
        RxError::Device => DeviceError::Failed,
    }
}
