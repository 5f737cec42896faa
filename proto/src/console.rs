//! The console interface: bytes out to and in from a serial line, one message's worth per
//! call, and a way for a reader to sleep until input arrives instead of polling.

use crate::{Bytes, CapSlot};

crate::interface! {
    client ConsoleClient;
    errors {
        /// No input is waiting; try again later.
        WouldBlock = 16,
        /// The output buffer is full; nothing was written, try again later.
        Busy = 17,
        /// The console watches for as many readers as it can.
        Full = 18,
    }
    ops {
        /// Writes `data` (at most [`MAX_BYTES`](crate::MAX_BYTES)) to the console, all or
        /// nothing.
        ///
        /// `Ok(())` once queued; `Err(Busy)` if the output buffer cannot take it all.
        Write = 1 => fn write(data: Bytes) -> ();
        /// Reads up to `max` bytes of input (at most [`MAX_BYTES`](crate::MAX_BYTES)) without
        /// blocking.
        ///
        /// `Ok(bytes)` with 1..=`max` bytes (or no bytes for `max` = 0); `Err(WouldBlock)` if
        /// no input is waiting.
        Read = 2 => fn read(max: u32) -> Bytes;
        /// From now on, signals `wake` (a notification, sent with the request) whenever input
        /// arrives, so the caller can wait on it after `read` says `WouldBlock`. A caller that
        /// asks again replaces its earlier notification. The console keeps it until it
        /// restarts.
        ///
        /// `Ok(())`; `Err(Full)`; `Err(Malformed)` without a capability.
        Watch = 3 => fn watch(wake: CapSlot) -> ();
    }
}
