//! MSI-X vectors in the virtio-pci common configuration: `virtio-drivers` 0.13 declares
//! `msix_config` and `queue_msix_vector` but never writes them, and with MSI-X enabled a
//! queue without a vector raises no interrupt at all (not even INTx). [`program`] writes
//! them after the transport's set-up and reads each back: the device answers
//! [`NO_VECTOR`] for a vector it cannot use.

#![deny(unsafe_code)]

/// Byte offset of `msix_config` (the configuration-change vector) in the common
/// configuration structure.
pub const MSIX_CONFIG: usize = 0x10;
/// Byte offset of `queue_select`.
pub const QUEUE_SELECT: usize = 0x16;
/// Byte offset of `queue_msix_vector` (of the selected queue).
pub const QUEUE_MSIX_VECTOR: usize = 0x1A;
/// "No vector": the device raises no MSI-X message for this source.
pub const NO_VECTOR: u16 = 0xFFFF;
/// The receive queue's index (virtio-net: receiveq1).
pub const RECEIVE_QUEUE: u16 = 0;
/// The transmit queue's index (virtio-net: transmitq1).
pub const TRANSMIT_QUEUE: u16 = 1;

/// 16-bit access to the common configuration structure (volatile, uncached on a device).
pub trait CommonConfig {
    /// Reads the 16-bit field at byte `offset`.
    fn read16(&mut self, offset: usize) -> u16;
    /// Writes the 16-bit field at byte `offset`.
    fn write16(&mut self, offset: usize, value: u16);
}

/// Why [`program`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsixError {
    /// The device read back [`NO_VECTOR`] (or another value) for this queue's vector.
    QueueRefused(u16),
}

/// Which vectors a NIC's sources got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vectors {
    /// The receive queue's vector.
    pub receive: u16,
    /// The transmit queue's vector.
    pub transmit: u16,
    /// The configuration-change vector ([`NO_VECTOR`]: none asked).
    pub config: u16,
}

/// Sends both queues' interrupts to MSI-X table entry `vector` and asks for no
/// configuration-change interrupt (the driver never waits for one); reads each back.
///
/// Errors: `QueueRefused(queue)` when a queue's vector did not stick (its interrupts
/// would never arrive).
pub fn program(common: &mut impl CommonConfig, vector: u16) -> Result<Vectors, MsixError> {
    common.write16(MSIX_CONFIG, NO_VECTOR);
    let config = common.read16(MSIX_CONFIG);
    let mut got = [NO_VECTOR; 2];
    for (slot, queue) in got.iter_mut().zip([RECEIVE_QUEUE, TRANSMIT_QUEUE]) {
        common.write16(QUEUE_SELECT, queue);
        common.write16(QUEUE_MSIX_VECTOR, vector);
        *slot = common.read16(QUEUE_MSIX_VECTOR);
        if *slot != vector {
            return Err(MsixError::QueueRefused(queue));
        }
    }
    Ok(Vectors {
        receive: got[0],
        transmit: got[1],
        config,
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// QEMU's behaviour: per-queue vectors behind `queue_select`; vectors at or above
    /// `table_size` read back as NO_VECTOR.
    struct Fake {
        table_size: u16,
        select: u16,
        queue_vectors: [u16; 3],
        config: u16,
        writes: Vec<(usize, u16)>,
    }

    impl CommonConfig for Fake {
        fn read16(&mut self, offset: usize) -> u16 {
            match offset {
                MSIX_CONFIG => self.config,
                QUEUE_SELECT => self.select,
                QUEUE_MSIX_VECTOR => self.queue_vectors[usize::from(self.select)],
                _ => 0,
            }
        }
        fn write16(&mut self, offset: usize, value: u16) {
            self.writes.push((offset, value));
            let vector = if value < self.table_size {
                value
            } else {
                NO_VECTOR
            };
            match offset {
                MSIX_CONFIG => self.config = vector,
                QUEUE_SELECT => self.select = value,
                QUEUE_MSIX_VECTOR => self.queue_vectors[usize::from(self.select)] = vector,
                _ => {}
            }
        }
    }

    fn fake(table_size: u16) -> Fake {
        Fake {
            table_size,
            select: 0,
            queue_vectors: [NO_VECTOR; 3],
            config: NO_VECTOR,
            writes: Vec::new(),
        }
    }

    #[test]
    fn both_queues_get_the_vector_and_config_gets_none() {
        let mut common = fake(3);
        let vectors = program(&mut common, 0).unwrap();
        assert_eq!(
            vectors,
            Vectors {
                receive: 0,
                transmit: 0,
                config: NO_VECTOR
            }
        );
        assert_eq!(
            common.queue_vectors,
            [0, 0, NO_VECTOR],
            "the control queue untouched"
        );
        assert_eq!(
            common.writes,
            [
                (MSIX_CONFIG, NO_VECTOR),
                (QUEUE_SELECT, 0),
                (QUEUE_MSIX_VECTOR, 0),
                (QUEUE_SELECT, 1),
                (QUEUE_MSIX_VECTOR, 0)
            ]
        );
    }

    #[test]
    fn a_vector_the_device_refuses_is_an_error() {
        let mut common = fake(3);
        assert_eq!(program(&mut common, 5), Err(MsixError::QueueRefused(0)));
        let mut none = fake(0);
        assert_eq!(program(&mut none, 0), Err(MsixError::QueueRefused(0)));
    }
}
