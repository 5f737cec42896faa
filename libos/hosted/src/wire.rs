//! An in-process Ethernet "wire" joining two library OS instances (no privileges
//! needed): each end is a [`libos_core::NetDevice`] and an [`EventSource`].

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use libos_core::{DeviceError, NetDevice};

use crate::EventSource;

/// Frames one direction of the wire holds before transmit reports `WouldBlock`.
pub const QUEUE_FRAMES: usize = 4096;
/// The wire's MTU (Ethernet payload bytes).
pub const WIRE_MTU: usize = 1500;

/// One direction of the wire: a frame queue with a condition variable.
#[derive(Default)]
struct Queue {
    frames: Mutex<VecDeque<Vec<u8>>>,
    ready: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Vec<u8>>> {
        // A poisoned lock only means another thread panicked; the queue is still valid.
        self.frames.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame of `len` bytes that `f` writes; `f` is not called when the queue
    /// is full (`WouldBlock`).
    fn push_with(&self, len: usize, f: &mut dyn FnMut(&mut [u8])) -> Result<(), DeviceError> {
        let mut frames = self.lock();
        if frames.len() >= QUEUE_FRAMES {
            return Err(DeviceError::WouldBlock);
        }
        let mut frame = vec![0; len];
        f(&mut frame);
        frames.push_back(frame);
        drop(frames);
        self.ready.notify_all();
        Ok(())
    }
}

/// One end of an in-process wire.
pub struct WireEnd {
    mac: [u8; 6],
    rx: Arc<Queue>,
    tx: Arc<Queue>,
}

/// Creates a wire; frames transmitted on one end are received on the other.
/// The ends get the MACs 02:00:00:00:00:01 and 02:00:00:00:00:02.
pub fn wire_pair() -> (WireEnd, WireEnd) {
    let a_to_b = Arc::new(Queue::default());
    let b_to_a = Arc::new(Queue::default());
    let a = WireEnd {
        mac: [2, 0, 0, 0, 0, 1],
        rx: b_to_a.clone(),
        tx: a_to_b.clone(),
    };
    let b = WireEnd {
        mac: [2, 0, 0, 0, 0, 2],
        rx: a_to_b,
        tx: b_to_a,
    };
    (a, b)
}

/// Waits for frames arriving at one end of a wire.
pub struct WireEvents {
    rx: Arc<Queue>,
}

impl EventSource for WireEvents {
    fn wait(&self, deadline: Option<Instant>) {
        let frames = self.rx.lock();
        if !frames.is_empty() {
            return;
        }
        // Poisoning is harmless here: the guard is dropped either way.
        match deadline {
            None => drop(self.rx.ready.wait(frames)),
            Some(deadline) => {
                let timeout = deadline.saturating_duration_since(Instant::now());
                drop(self.rx.ready.wait_timeout(frames, timeout));
            }
        }
    }
}

/// Puts raw frames on a wire toward one end, as if its peer had sent them (tests).
#[derive(Clone)]
pub struct WireInjector {
    queue: Arc<Queue>,
}

impl WireInjector {
    /// Queues `frame` for the end this injector feeds; fails with `WouldBlock` when full.
    pub fn inject(&self, frame: &[u8]) -> Result<(), DeviceError> {
        self.queue
            .push_with(frame.len(), &mut |buffer| buffer.copy_from_slice(frame))
    }
}

impl WireEnd {
    /// Returns the event source that wakes when a frame arrives at this end.
    pub fn events(&self) -> Arc<dyn EventSource> {
        Arc::new(WireEvents {
            rx: self.rx.clone(),
        })
    }

    /// Returns an injector that delivers frames to this end.
    pub fn injector(&self) -> WireInjector {
        WireInjector {
            queue: self.rx.clone(),
        }
    }
}

impl NetDevice for WireEnd {
    fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    fn mtu(&self) -> usize {
        WIRE_MTU
    }

    fn rx_ready(&mut self) -> bool {
        !self.rx.lock().is_empty()
    }

    /// Lends the frame as the peer queued it (the wire's frames are heap buffers).
    fn receive_with(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<(), DeviceError> {
        let frame = self.rx.lock().pop_front().ok_or(DeviceError::WouldBlock)?;
        f(&frame);
        Ok(())
    }

    /// Builds the frame in the buffer that goes on the wire.
    fn transmit_with(
        &mut self,
        len: usize,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), DeviceError> {
        if len == 0 {
            return Err(DeviceError::Failed);
        }
        self.tx.push_with(len, f)
    }
}
