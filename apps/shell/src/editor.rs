//! Line editing over a byte stream from a serial line.
//!
//! Keys: printable characters are stored and echoed; backspace (0x08) and DEL (0x7f) erase the
//! last character; Ctrl-U (0x15) erases the whole line; Ctrl-C (0x03) abandons it; CR or LF
//! ends it (CR LF counts once). Escape sequences (arrow keys and the like) and other control
//! characters are ignored, and so are bytes that do not form UTF-8.
//!
//! A line holds at most [`MAX_LINE`] characters. Characters past that are neither stored nor
//! echoed (the terminal bell rings once) and the whole line is refused when it ends.

use alloc::string::String;
use alloc::vec::Vec;

/// The most characters a line holds.
pub const MAX_LINE: usize = 96;

/// What a byte of input completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Nothing yet: the line goes on.
    Pending,
    /// A line ended (without its terminator); it may be empty.
    Line(String),
    /// The line was abandoned (Ctrl-C) or refused (too long); the message, if any, says why.
    Discarded(Option<&'static str>),
}

/// How far an escape sequence has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Start,
    /// In a control sequence (ESC [ or ESC O): parameters until a final byte.
    Sequence,
}

/// The line being typed.
#[derive(Debug)]
pub struct LineEditor {
    line: String,
    /// Characters were dropped because the line was full.
    overlong: bool,
    /// The last byte was CR (so a following LF is the same line end).
    after_cr: bool,
    escape: Escape,
    /// Bytes of a UTF-8 character so far, and how many it needs.
    utf8: [u8; 4],
    utf8_len: usize,
    utf8_need: usize,
}

impl Default for LineEditor {
    fn default() -> Self {
        LineEditor::new()
    }
}

/// The message for a refused line.
pub const TOO_LONG: &str = "error: line too long (at most 96 characters): ignored";

const _: () = assert!(MAX_LINE == 96, "TOO_LONG names the limit");

const BACKSPACE: u8 = 0x08;
const DEL: u8 = 0x7f;
const CTRL_C: u8 = 0x03;
const CTRL_U: u8 = 0x15;
const ESC: u8 = 0x1b;
const BELL: u8 = 0x07;
/// Erases one character on the terminal: back, blank, back.
const ERASE: &[u8] = b"\x08 \x08";

impl LineEditor {
    /// An empty line.
    pub const fn new() -> LineEditor {
        LineEditor {
            line: String::new(),
            overlong: false,
            after_cr: false,
            escape: Escape::None,
            utf8: [0; 4],
            utf8_len: 0,
            utf8_need: 0,
        }
    }

    /// The line so far.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// Takes one byte of input; appends what the terminal should show to `echo`.
    pub fn feed(&mut self, byte: u8, echo: &mut Vec<u8>) -> Edit {
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        match (core::mem::replace(&mut self.escape, Escape::None), byte) {
            (Escape::None, _) => {}
            (Escape::Start, b'[' | b'O') | (Escape::Sequence, 0x20..=0x3f) => {
                self.escape = Escape::Sequence;
                return Edit::Pending;
            }
            // The sequence's final byte, or the key after a lone ESC (Alt-key).
            (_, 0x20..=0x7e) => return Edit::Pending,
            // A control or non-ASCII byte ends the sequence and counts on its own.
            _ => {}
        }
        if self.utf8_need > 0 {
            if byte & 0xc0 == 0x80 {
                self.utf8[self.utf8_len] = byte;
                self.utf8_len += 1;
                if self.utf8_len == self.utf8_need {
                    self.utf8_need = 0;
                    let bytes = self.utf8;
                    if let Ok(s) = core::str::from_utf8(&bytes[..self.utf8_len]) {
                        if let Some(c) = s.chars().next() {
                            self.insert(c, echo);
                        }
                    }
                }
                return Edit::Pending;
            }
            // Not a continuation byte: the partial character is dropped and this byte is
            // taken on its own.
            self.utf8_need = 0;
        }
        match byte {
            b'\r' | b'\n' => {
                if byte == b'\n' && after_cr {
                    return Edit::Pending;
                }
                self.after_cr = byte == b'\r';
                echo.extend_from_slice(b"\r\n");
                let line = core::mem::take(&mut self.line);
                if core::mem::replace(&mut self.overlong, false) {
                    Edit::Discarded(Some(TOO_LONG))
                } else {
                    Edit::Line(line)
                }
            }
            BACKSPACE | DEL => {
                if self.line.pop().is_some() {
                    echo.extend_from_slice(ERASE);
                }
                Edit::Pending
            }
            CTRL_U => {
                for _ in self.line.chars() {
                    echo.extend_from_slice(ERASE);
                }
                self.line.clear();
                self.overlong = false;
                Edit::Pending
            }
            CTRL_C => {
                echo.extend_from_slice(b"^C\r\n");
                self.line.clear();
                self.overlong = false;
                Edit::Discarded(None)
            }
            ESC => {
                self.escape = Escape::Start;
                Edit::Pending
            }
            0x20..=0x7e => {
                self.insert(char::from(byte), echo);
                Edit::Pending
            }
            0xc2..=0xdf => self.start_utf8(byte, 2),
            0xe0..=0xef => self.start_utf8(byte, 3),
            0xf0..=0xf4 => self.start_utf8(byte, 4),
            // Other control characters, stray continuation bytes, bytes never in UTF-8.
            _ => Edit::Pending,
        }
    }

    fn start_utf8(&mut self, byte: u8, need: usize) -> Edit {
        self.utf8[0] = byte;
        self.utf8_len = 1;
        self.utf8_need = need;
        Edit::Pending
    }

    fn insert(&mut self, c: char, echo: &mut Vec<u8>) {
        if self.line.chars().count() >= MAX_LINE {
            if !self.overlong {
                echo.push(BELL);
            }
            self.overlong = true;
            return;
        }
        self.line.push(c);
        let mut buf = [0; 4];
        echo.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Feeds `input`; returns the events other than `Pending` and the echo.
    fn run(ed: &mut LineEditor, input: &[u8]) -> (Vec<Edit>, Vec<u8>) {
        let mut echo = Vec::new();
        let events = input
            .iter()
            .map(|&b| ed.feed(b, &mut echo))
            .filter(|e| *e != Edit::Pending)
            .collect();
        (events, echo)
    }

    fn line(s: &str) -> Edit {
        Edit::Line(s.into())
    }

    #[test]
    fn printable_characters_echo_and_cr_or_lf_end_the_line() {
        let mut ed = LineEditor::new();
        let (ev, echo) = run(&mut ed, b"ps\r");
        assert_eq!(ev, vec![line("ps")]);
        assert_eq!(echo, b"ps\r\n");
        let (ev, echo) = run(&mut ed, b"mem\n");
        assert_eq!(ev, vec![line("mem")]);
        assert_eq!(echo, b"mem\r\n");
    }

    #[test]
    fn cr_lf_is_one_line_end_but_lf_lf_is_two() {
        let mut ed = LineEditor::new();
        let (ev, _) = run(&mut ed, b"a\r\nb\r\n");
        assert_eq!(ev, vec![line("a"), line("b")]);
        let (ev, _) = run(&mut ed, b"\n\n");
        assert_eq!(ev, vec![line(""), line("")]);
        let (ev, _) = run(&mut ed, b"\r\r");
        assert_eq!(ev, vec![line(""), line("")]);
    }

    #[test]
    fn backspace_and_del_erase_one_character() {
        let mut ed = LineEditor::new();
        let (ev, echo) = run(&mut ed, b"pz\x08s\r");
        assert_eq!(ev, vec![line("ps")]);
        assert_eq!(echo, b"pz\x08 \x08s\r\n");
        let (ev, echo) = run(&mut ed, b"mx\x7fem\r");
        assert_eq!(ev, vec![line("mem")]);
        assert_eq!(echo, b"mx\x08 \x08em\r\n");
    }

    #[test]
    fn backspace_on_an_empty_line_does_nothing() {
        let mut ed = LineEditor::new();
        let (ev, echo) = run(&mut ed, b"\x08\x7f\x08ps\r");
        assert_eq!(ev, vec![line("ps")]);
        assert_eq!(echo, b"ps\r\n");
    }

    #[test]
    fn ctrl_u_clears_the_line() {
        let mut ed = LineEditor::new();
        let (ev, echo) = run(&mut ed, b"abc\x15ps\r");
        assert_eq!(ev, vec![line("ps")]);
        assert_eq!(echo, b"abc\x08 \x08\x08 \x08\x08 \x08ps\r\n");
    }

    #[test]
    fn ctrl_c_abandons_the_line() {
        let mut ed = LineEditor::new();
        let (ev, echo) = run(&mut ed, b"halt\x03");
        assert_eq!(ev, vec![Edit::Discarded(None)]);
        assert_eq!(echo, b"halt^C\r\n");
        assert_eq!(ed.line(), "");
    }

    #[test]
    fn overlong_lines_are_refused_with_a_message() {
        let mut ed = LineEditor::new();
        let mut input = vec![b'a'; MAX_LINE + 10];
        input.push(b'\r');
        let (ev, echo) = run(&mut ed, &input);
        assert_eq!(ev, vec![Edit::Discarded(Some(TOO_LONG))]);
        // The stored characters, one bell, the line end: nothing past the limit is echoed.
        let mut expected = vec![b'a'; MAX_LINE];
        expected.extend_from_slice(b"\x07\r\n");
        assert_eq!(echo, expected);
        // The next line is fine again.
        let (ev, _) = run(&mut ed, b"ps\r");
        assert_eq!(ev, vec![line("ps")]);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted() {
        let mut ed = LineEditor::new();
        let mut input = vec![b'x'; MAX_LINE];
        input.push(b'\n');
        let (ev, _) = run(&mut ed, &input);
        assert_eq!(ev, vec![Edit::Line("x".repeat(MAX_LINE))]);
    }

    #[test]
    fn ctrl_u_forgives_an_overlong_line() {
        let mut ed = LineEditor::new();
        let mut input = vec![b'a'; MAX_LINE + 1];
        input.extend_from_slice(b"\x15ps\r");
        let (ev, _) = run(&mut ed, &input);
        assert_eq!(ev, vec![line("ps")]);
    }

    #[test]
    fn escape_sequences_and_control_characters_are_ignored() {
        let mut ed = LineEditor::new();
        // Up arrow, a tab, a bell, F1 (ESC O P), Delete key (ESC [ 3 ~), a lone ESC before 'p'.
        let (ev, echo) = run(&mut ed, b"\x1b[A\t\x07\x1bOP\x1b[3~p\x1bxs\r");
        assert_eq!(ev, vec![line("ps")]);
        assert_eq!(echo, b"ps\r\n");
        // A line end after a lone ESC still ends the line.
        let (ev, _) = run(&mut ed, b"ps\x1b\r");
        assert_eq!(ev, vec![line("ps")]);
    }

    #[test]
    fn utf8_characters_are_kept_and_erased_whole() {
        let mut ed = LineEditor::new();
        let (ev, echo) = run(&mut ed, "hé€\x08x\r".as_bytes());
        assert_eq!(ev, vec![line("héx")]);
        assert_eq!(echo, "hé€\x08 \x08x\r\n".as_bytes());
    }

    #[test]
    fn bytes_that_are_not_utf8_are_ignored() {
        let mut ed = LineEditor::new();
        // Stray continuation, overlong lead bytes, 0xff, a truncated 3-byte character,
        // a surrogate (ED A0 80), a code point past U+10FFFF (F4 90 80 80).
        let input = b"p\x80\xc0\xc1\xff\xe2\x82s\xed\xa0\x80\xf4\x90\x80\x80\r";
        let (ev, echo) = run(&mut ed, input);
        assert_eq!(ev, vec![line("ps")]);
        assert_eq!(echo, b"ps\r\n");
    }

    #[test]
    fn garbage_never_panics() {
        let mut ed = LineEditor::new();
        let mut echo = Vec::new();
        let mut x: u32 = 12345;
        for _ in 0..200_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let _ = ed.feed((x >> 16) as u8, &mut echo);
            assert!(ed.line().chars().count() <= MAX_LINE);
            echo.clear();
        }
    }
}
