//! The console interface: bytes out to and in from a serial line, one message's worth per
//! call.

use crate::Bytes;

crate::interface! {
    client ConsoleClient;
    errors {
        /// No input is waiting; try again later.
        WouldBlock = 16,
        /// The output buffer is full; nothing was written, try again later.
        Busy = 17,
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
    }
}
