//! The Tessera shell's logic: line editing ([`editor`]), commands ([`command`]), what they ask
//! of the system ([`backend::Backend`], implemented over the proto clients in [`clients`]) and
//! how the answers are printed ([`exec`]; the file commands in [`files`], over the library OS's
//! file API).
//!
//! [`Shell`] ties them together: bytes from the serial line in, bytes for the serial line out
//! (echo, command output, the [`PROMPT`]). The seL4 component (`main.rs`) only moves bytes
//! and connects [`clients::Clients`] to naming; everything here is tested on the host.
//!
//! Output lines end with CR LF, as a serial terminal wants.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

pub mod backend;
pub mod clients;
pub mod command;
pub mod editor;
pub mod exec;
pub mod files;

pub use backend::{Backend, Failure};
pub use command::{parse, Command, ParseError};
pub use editor::{Edit, LineEditor, MAX_LINE};
pub use exec::{execute, Outcome};

use alloc::string::String;
use alloc::vec::Vec;

/// The prompt.
pub const PROMPT: &str = "tessera> ";

/// The interactive shell: a line editor and the commands it runs.
#[derive(Debug, Default)]
pub struct Shell {
    editor: LineEditor,
    halted: bool,
}

/// Appends `text` to `out` with every `\n` as CR LF.
fn put(out: &mut Vec<u8>, text: &str) {
    for b in text.bytes() {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
}

impl Shell {
    /// A shell at the start of an empty line.
    pub const fn new() -> Shell {
        Shell {
            editor: LineEditor::new(),
            halted: false,
        }
    }

    /// What the shell prints when it starts: a greeting, a line for each service it could
    /// not find, and the first prompt.
    pub fn banner(&self, missing: &[&str], out: &mut Vec<u8>) {
        put(out, "Tessera shell: type 'help' for the commands\n");
        for service in missing {
            put(
                out,
                &alloc::format!(
                    "service {service} is not available: commands that need it say so\n"
                ),
            );
        }
        put(out, PROMPT);
    }

    /// Whether `halt` succeeded; the shell then ignores input.
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// Takes bytes typed at the terminal; appends the echo, the output of every command a
    /// line end completed, and a new prompt after each to `out`.
    pub fn feed(&mut self, input: &[u8], backend: &mut impl Backend, out: &mut Vec<u8>) {
        let mut rest = input;
        while !rest.is_empty() && !self.halted {
            rest = &rest[self.feed_line(rest, backend, out)..];
        }
    }

    /// Like [`Shell::feed`], but stops after the first line end (a command run or a line
    /// discarded): returns how many bytes of `input` it took. Type-ahead holds several
    /// lines; a caller that prints `out` between them shows each command's answer before
    /// the next command runs (even when the next is `halt`).
    pub fn feed_line(
        &mut self,
        input: &[u8],
        backend: &mut impl Backend,
        out: &mut Vec<u8>,
    ) -> usize {
        for (i, &byte) in input.iter().enumerate() {
            if self.halted {
                return input.len();
            }
            match self.editor.feed(byte, out) {
                Edit::Pending => continue,
                Edit::Discarded(message) => {
                    if let Some(message) = message {
                        put(out, message);
                        put(out, "\n");
                    }
                }
                Edit::Line(line) => {
                    let text = self.run(&line, backend);
                    put(out, &text);
                }
            }
            if !self.halted {
                put(out, PROMPT);
            }
            return i + 1;
        }
        input.len()
    }

    /// Runs one line; returns its output.
    fn run(&mut self, line: &str, backend: &mut impl Backend) -> String {
        match parse(line) {
            Ok(None) => String::new(),
            Ok(Some(command)) => {
                let outcome = execute(command, backend);
                self.halted = outcome.halted;
                outcome.text
            }
            Err(e) => alloc::format!("{e}\n"),
        }
    }
}

#[cfg(test)]
mod tests;
