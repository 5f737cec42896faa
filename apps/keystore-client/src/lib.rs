//! The logic of the key store's demo client, host-tested: what it signs, the line it prints
//! for each signature, and the note one client leaves another in the tests' shared region.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The items of a comma-separated argument, trimmed, blank ones dropped (none without it).
pub fn items(arg: Option<&str>) -> Vec<String> {
    arg.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(String::from)
        .collect()
}

/// The messages to sign: the items of argument `messages`, or one greeting naming the client.
pub fn messages(arg: Option<&str>, client: &str) -> Vec<String> {
    match arg {
        Some(_) => items(arg),
        None => alloc::vec![alloc::format!("hello from {client}")],
    }
}

/// The line printed for one signature, which anyone can check with a stock Ed25519 library:
/// `keystore-demo: client=NAME pk=<64 hex> msg=<text> sig=<128 hex>`.
pub fn demo_line(
    client: &str,
    public_key: &[u8; 32],
    message: &str,
    signature: &[u8; 64],
) -> String {
    alloc::format!(
        "keystore-demo: client={client} pk={} msg={message} sig={}",
        hex(public_key),
        hex(signature)
    )
}

/// Marks a handle left in the shared region (so a zeroed region is not taken for handle 0).
pub const NOTE_MAGIC: u64 = 0x6b65_7973_746f_7265;

/// The two words a client writes into the shared region to leak `handle` to another.
pub fn note(handle: u64) -> [u64; 2] {
    [NOTE_MAGIC, handle]
}

/// The handle in a note, or `None` if none was written yet.
pub fn read_note(words: [u64; 2]) -> Option<u64> {
    (words[0] == NOTE_MAGIC).then_some(words[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_lower_case_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn messages_come_from_the_argument_or_greet() {
        assert_eq!(messages(Some("a, b,,c "), "x"), ["a", "b", "c"]);
        assert_eq!(messages(None, "signer"), ["hello from signer"]);
        assert!(messages(Some(" , "), "x").is_empty());
        assert_eq!(items(Some("serial, shell")), ["serial", "shell"]);
        assert!(items(None).is_empty());
    }

    #[test]
    fn the_demo_line_has_the_documented_shape() {
        let line = demo_line("signer", &[0xab; 32], "hi there", &[0x01; 64]);
        let rest = line
            .strip_prefix("keystore-demo: client=signer pk=")
            .unwrap();
        let (pk, rest) = rest.split_once(" msg=").unwrap();
        let (msg, sig) = rest.rsplit_once(" sig=").unwrap();
        assert_eq!(pk, "ab".repeat(32));
        assert_eq!(msg, "hi there");
        assert_eq!(sig, "01".repeat(64));
    }

    #[test]
    fn a_note_is_read_back_only_once_written() {
        assert_eq!(read_note([0, 0]), None);
        assert_eq!(read_note(note(0)), Some(0));
        assert_eq!(read_note(note(0x1234_5678_9abc)), Some(0x1234_5678_9abc));
    }
}
