//! The driver as a [`NetDevice`]: frames are lent in place, in the rings' DMA buffers.

use netdev::{DeviceError, NetDevice, RxChecksums};

use crate::{DmaRegion, E1000e, Mmio, RxError, TxError, MTU};

impl<M: Mmio, R: DmaRegion> NetDevice for E1000e<M, R> {
    fn mac_address(&self) -> [u8; 6] {
        E1000e::mac_address(self)
    }

    fn mtu(&self) -> usize {
        MTU
    }

    fn set_interrupts(&mut self, on: bool) {
        E1000e::set_interrupts(self, on)
    }

    fn rx_ready(&mut self) -> bool {
        self.rx_pending()
    }

    fn receive_with(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<(), DeviceError> {
        E1000e::receive_with(self, f).map_err(rx_error)
    }

    fn receive_with_checksums(
        &mut self,
        f: &mut dyn FnMut(&[u8], RxChecksums),
    ) -> Result<(), DeviceError> {
        E1000e::receive_with_checksums(self, |frame, verified| {
            f(
                frame,
                RxChecksums {
                    ipv4: verified.ipv4,
                    l4: verified.l4,
                },
            )
        })
        .map_err(rx_error)
    }

    fn transmit_with(
        &mut self,
        len: usize,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), DeviceError> {
        E1000e::transmit_with(self, len, f).map_err(tx_error)
    }

    fn receive(&mut self, buffer: &mut [u8]) -> Result<usize, DeviceError> {
        // The driver's own copy counts a frame too long for `buffer` as truncated.
        E1000e::receive(self, buffer).map_err(rx_error)
    }
}

fn rx_error(error: RxError) -> DeviceError {
    match error {
        RxError::Empty => DeviceError::WouldBlock,
        RxError::Truncated { .. } => DeviceError::Truncated,
    }
}

fn tx_error(error: TxError) -> DeviceError {
    match error {
        TxError::Full => DeviceError::WouldBlock,
        TxError::BadLength => DeviceError::Failed,
    }
}
