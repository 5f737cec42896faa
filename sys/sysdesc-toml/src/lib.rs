//! The TOML front end of Tessera system descriptions: reads `systems/*.toml`, reports every problem with the
//! file, line and column of the value at fault, and yields a validated [`System`].

mod convert;
mod raw;

use std::fmt;
use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use sysdesc::System;

/// One problem in a description file, at a position when it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as the caller named it.
    pub file: String,
    /// 1-based line of the value at fault; 0 when the problem concerns the whole file.
    pub line: usize,
    /// 1-based column, in characters; 0 when `line` is 0.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    /// `file:line:column: message`, or `file: message` without a position.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for Diagnostic {}

/// Parses and validates a description. `file_name` is used only in diagnostics. Returns the
/// system, or every problem found, sorted by position.
pub fn parse(text: &str, file_name: &str) -> Result<System, Vec<Diagnostic>> {
    let at = |offset: usize, message: String| {
        let (line, column) = line_column(text, offset);
        Diagnostic {
            file: file_name.to_string(),
            line,
            column,
            message,
        }
    };
    let raw: raw::RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            let message = e.message().trim().lines().collect::<Vec<_>>().join("; ");
            return Err(vec![at(offset, message)]);
        }
    };
    let (system, spans, mut found) = convert::convert(&raw);
    if let Err(problems) = system.validate() {
        found.extend(
            problems
                .into_iter()
                .map(|p| (spans.locate(p.site), p.message)),
        );
    }
    if found.is_empty() {
        return Ok(system);
    }
    found.sort_by_key(|(offset, _)| *offset);
    Err(found
        .into_iter()
        .map(|(offset, message)| at(offset, message))
        .collect())
}

/// Reads and parses the description at `path`; diagnostics name the file as `path` is written.
pub fn load(path: impl AsRef<Path>) -> Result<System, Vec<Diagnostic>> {
    let path = path.as_ref();
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &name),
        Err(e) => Err(vec![Diagnostic {
            file: name,
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        }]),
    }
}

/// Joins diagnostics one per line, for printing.
pub fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters() {
        let text = "a = 1\nné = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_column(text, 10), (2, 4));
        assert_eq!(line_column(text, 1000), (3, 1));
    }

    #[test]
    fn diagnostic_format() {
        let d = Diagnostic {
            file: "systems/x.toml".into(),
            line: 12,
            column: 5,
            message: "route to unknown service \"blk\" from component \"shell\"".into(),
        };
        assert_eq!(
            d.to_string(),
            "systems/x.toml:12:5: route to unknown service \"blk\" from component \"shell\""
        );
    }
}
