//! The codec every interface shares: values ([`Field`]) written into and read out of a
//! [`Message`], and replies encoded as `Result<T, E>`.
//!
//! A value is written with [`Field::put`] and read back with [`Field::take`], which checks
//! everything it reads (ranges, lengths, padding, charset) and fails rather than guess. A
//! decoder reads the fields in order, then [`Reader::finish`] checks that no word and no
//! capability was left over, so every accepted message has exactly one encoding.

use crate::message::{Message, Overflow, MAX_WORDS};
use sel4::CPtr;
use sysdesc::ComponentId;

/// A message did not hold a valid value where one was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError;

impl From<Overflow> for DecodeError {
    fn from(_: Overflow) -> DecodeError {
        DecodeError
    }
}

/// Builds a message one field at a time, remembering whether anything did not fit.
#[derive(Debug)]
pub struct Writer {
    message: Message,
    overflow: bool,
}

impl Writer {
    /// A writer for a message with this label.
    pub fn new(label: u64) -> Writer {
        Writer {
            message: Message::new(label),
            overflow: false,
        }
    }

    /// Appends one word.
    pub fn word(&mut self, word: u64) {
        if self.message.push(word).is_err() {
            self.overflow = true;
        }
    }

    /// Attaches the message's capability (a second one does not fit).
    pub fn cap(&mut self, cap: CPtr) {
        if self.message.cap.replace(cap).is_some() {
            self.overflow = true;
        }
    }

    /// The message, or `Err(Overflow)` if more than [`MAX_WORDS`] words or more than one
    /// capability were written.
    pub fn finish(self) -> Result<Message, Overflow> {
        if self.overflow {
            Err(Overflow)
        } else {
            Ok(self.message)
        }
    }
}

/// Reads a message's fields in order.
#[derive(Debug)]
pub struct Reader<'a> {
    message: &'a Message,
    next: usize,
    cap_taken: bool,
}

impl<'a> Reader<'a> {
    /// A reader at the first word of `message`.
    pub fn new(message: &'a Message) -> Reader<'a> {
        Reader {
            message,
            next: 0,
            cap_taken: false,
        }
    }

    /// The next word; `Err` past the end.
    pub fn word(&mut self) -> Result<u64, DecodeError> {
        let w = *self.message.words().get(self.next).ok_or(DecodeError)?;
        self.next += 1;
        Ok(w)
    }

    /// The message's capability; `Err` if there is none or it was already taken.
    pub fn cap(&mut self) -> Result<CPtr, DecodeError> {
        match self.message.cap {
            Some(cap) if !self.cap_taken => {
                self.cap_taken = true;
                Ok(cap)
            }
            _ => Err(DecodeError),
        }
    }

    /// `Ok` if every word and the capability (if any) were read; `Err` if something is left.
    pub fn finish(self) -> Result<(), DecodeError> {
        let words_done = self.next == self.message.len();
        let cap_done = self.message.cap.is_none() || self.cap_taken;
        if words_done && cap_done {
            Ok(())
        } else {
            Err(DecodeError)
        }
    }
}

/// A value that travels in a message.
pub trait Field: Sized {
    /// The most words an encoding takes (checked against [`MAX_WORDS`] at compile time for
    /// every declared operation).
    const MAX_WORDS: usize;
    /// How many capabilities an encoding carries (at most one per message).
    const CAPS: usize = 0;
    /// Writes the value.
    fn put(&self, w: &mut Writer);
    /// Reads and validates a value.
    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

impl Field for () {
    const MAX_WORDS: usize = 0;
    fn put(&self, _: &mut Writer) {}
    fn take(_: &mut Reader<'_>) -> Result<(), DecodeError> {
        Ok(())
    }
}

impl Field for u64 {
    const MAX_WORDS: usize = 1;
    fn put(&self, w: &mut Writer) {
        w.word(*self);
    }
    fn take(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
        r.word()
    }
}

macro_rules! narrow_word {
    ($($t:ty),*) => {$(
        impl Field for $t {
            const MAX_WORDS: usize = 1;
            fn put(&self, w: &mut Writer) {
                w.word(u64::from(*self));
            }
            fn take(r: &mut Reader<'_>) -> Result<$t, DecodeError> {
                <$t>::try_from(r.word()?).map_err(|_| DecodeError)
            }
        }
    )*};
}
narrow_word!(u8, u16, u32);

impl Field for bool {
    const MAX_WORDS: usize = 1;
    fn put(&self, w: &mut Writer) {
        w.word(u64::from(*self));
    }
    fn take(r: &mut Reader<'_>) -> Result<bool, DecodeError> {
        match r.word()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError),
        }
    }
}

impl Field for ComponentId {
    const MAX_WORDS: usize = 1;
    fn put(&self, w: &mut Writer) {
        self.0.put(w);
    }
    fn take(r: &mut Reader<'_>) -> Result<ComponentId, DecodeError> {
        u16::take(r).map(ComponentId)
    }
}

/// A capability sent with a message: in a request or reply being built, the sender's slot; in
/// one received, the receive slot it landed in. It takes no words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CapSlot(pub CPtr);

impl Field for CapSlot {
    const MAX_WORDS: usize = 0;
    const CAPS: usize = 1;
    fn put(&self, w: &mut Writer) {
        w.cap(self.0);
    }
    fn take(r: &mut Reader<'_>) -> Result<CapSlot, DecodeError> {
        r.cap().map(CapSlot)
    }
}

/// An interface's error enum: its codes and the two cases the shared plumbing produces.
pub trait ErrorCode: Copy {
    /// The request could not be decoded.
    const MALFORMED: Self;
    /// The reply could not be decoded (client side only).
    const INVALID_REPLY: Self;
    /// The error's code: a reply's label.
    fn code(self) -> u32;
    /// The error a reply label names, if any (0 and unknown codes are `None`).
    fn from_code(code: u64) -> Option<Self>;
}

/// The reply carrying `error`.
pub fn error_reply<E: ErrorCode>(error: E) -> Message {
    Message::new(u64::from(error.code()))
}

/// The reply for `result`: label 0 and the value's words, or the error's code.
///
/// A value that does not fit (impossible for declared operations, whose sizes are checked at
/// compile time) is replied as `E::INVALID_REPLY`.
pub fn encode_reply<T: Field, E: ErrorCode>(result: &Result<T, E>) -> Message {
    match result {
        Ok(value) => {
            let mut w = Writer::new(0);
            value.put(&mut w);
            w.finish().unwrap_or_else(|_| error_reply(E::INVALID_REPLY))
        }
        Err(e) => error_reply(*e),
    }
}

/// The result a reply carries: the value of an `Ok` reply (exactly, nothing left over), the
/// error its label names, or `E::INVALID_REPLY` for anything else.
pub fn decode_reply<T: Field, E: ErrorCode>(reply: &Message) -> Result<T, E> {
    if reply.label != 0 {
        return Err(E::from_code(reply.label).unwrap_or(E::INVALID_REPLY));
    }
    let mut r = Reader::new(reply);
    let value = T::take(&mut r).map_err(|_| E::INVALID_REPLY)?;
    r.finish().map_err(|_| E::INVALID_REPLY)?;
    Ok(value)
}

/// Checks at compile time that fields with these sizes fit one message.
pub const fn fits(words: usize, caps: usize) -> bool {
    words <= MAX_WORDS && caps <= 1
}
