//! The message every request and reply is: a label, up to [`MAX_WORDS`] words and at most one
//! capability.

use sel4::CPtr;

/// The most words a message carries. The first four travel in registers on seL4.
pub const MAX_WORDS: usize = 16;

/// A label no request or reply uses: a received message longer than [`MAX_WORDS`] gets it, so
/// that decoding it fails (seL4 labels are 52 bits, so no real message carries it).
pub const OVERSIZED: u64 = u64::MAX;

/// The reply label every interface's `Error::ServerRestarted` has: the server restarted
/// since it issued a handle or session, or (sent by `proc`) it died while serving the call.
pub const SERVER_RESTARTED: u64 = 2;

/// One IPC message.
///
/// A request's label is the operation; a reply's label is 0 for `Ok` (the words are the
/// results) or the interface's error code. Invariant: words past [`Message::len`] are zero, so
/// two messages are equal exactly when their labels, used words and capabilities are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// The operation (requests) or 0 / an error code (replies).
    pub label: u64,
    words: [u64; MAX_WORDS],
    len: usize,
    /// The capability sent with the message: the sender's slot when sending, the receive slot
    /// it landed in when received.
    pub cap: Option<CPtr>,
}

/// A message was given more than [`MAX_WORDS`] words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow;

impl Message {
    /// An empty message with this label and no capability.
    pub const fn new(label: u64) -> Message {
        Message {
            label,
            words: [0; MAX_WORDS],
            len: 0,
            cap: None,
        }
    }

    /// A message with this label and these words; `Err(Overflow)` past [`MAX_WORDS`].
    pub fn with_words(label: u64, words: &[u64]) -> Result<Message, Overflow> {
        let mut m = Message::new(label);
        for &w in words {
            m.push(w)?;
        }
        Ok(m)
    }

    /// Appends a word; `Err(Overflow)` when the message is full.
    pub fn push(&mut self, word: u64) -> Result<(), Overflow> {
        let slot = self.words.get_mut(self.len).ok_or(Overflow)?;
        *slot = word;
        self.len += 1;
        Ok(())
    }

    /// The words in use.
    pub fn words(&self) -> &[u64] {
        &self.words[..self.len]
    }

    /// How many words are in use.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no words are in use.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The same message with this capability attached.
    pub fn with_cap(mut self, cap: CPtr) -> Message {
        self.cap = Some(cap);
        self
    }
}
