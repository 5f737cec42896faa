//! Commands: the words of a line parsed into a typed [`Command`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use proto::Name;

/// One command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `help`: the list of commands.
    Help,
    /// `ps`: every component, its state and restarts.
    Ps,
    /// `caps NAME`: the capabilities a component holds.
    Caps(Name),
    /// `lookup NAME`: asks naming for a service.
    Lookup(Name),
    /// `spawn NAME`: starts a described component.
    Spawn(Name),
    /// `kill NAME`: stops a component.
    Kill(Name),
    /// `mem`: free memory and per-component usage.
    Mem,
    /// `devices`: the PCI functions.
    Devices,
    /// `halt`: stops the system.
    Halt,
    /// `ls [DIR]`: a directory's entries (the root without an argument).
    Ls(Option<String>),
    /// `cat FILE`: a file's contents.
    Cat(String),
    /// `write FILE TEXT...`: replaces a file with the words, joined by single spaces, and a
    /// line end.
    Write(String, String),
    /// `rm PATH`: removes a file or an empty directory.
    Rm(String),
    /// `mkdir DIR`: creates a directory.
    Mkdir(String),
    /// `df`: the file system's space.
    Df,
}

/// Every command with its argument and a one-line description, as `help` prints them.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("help", "", "this list"),
    ("ps", "", "components: id, state, restarts"),
    ("caps", "NAME", "the capabilities component NAME holds"),
    ("lookup", "NAME", "ask naming for service NAME"),
    (
        "spawn",
        "NAME",
        "start component NAME (from the system description)",
    ),
    ("kill", "NAME", "stop component NAME"),
    ("mem", "", "free memory and memory per component"),
    ("devices", "", "PCI functions"),
    ("halt", "", "stop the system"),
    ("ls", "[DIR]", "the entries of directory DIR (default /)"),
    ("cat", "FILE", "print file FILE"),
    (
        "write",
        "FILE TEXT...",
        "replace file FILE with TEXT and a line end",
    ),
    ("rm", "PATH", "remove a file or an empty directory"),
    ("mkdir", "DIR", "create directory DIR"),
    ("df", "", "the file system's size, use and free space"),
];

/// Why a line is not a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The first word is no command.
    Unknown(String),
    /// The command takes an argument that is missing, or got arguments it does not take.
    Usage(&'static str),
    /// The argument is not a valid name.
    BadName(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Unknown(word) => {
                write!(
                    f,
                    "error: unknown command '{word}' (type 'help' for the list)"
                )
            }
            ParseError::Usage(command) => match usage(command) {
                Some((_, "", _)) => write!(f, "error: usage: {command} (it takes no arguments)"),
                Some((_, arg, _)) => write!(f, "error: usage: {command} {arg}"),
                None => write!(f, "error: usage: {command}"),
            },
            ParseError::BadName(name) => write!(
                f,
                "error: '{name}' is not a name (1-32 of a-z 0-9 - _, starting with a letter)"
            ),
        }
    }
}

fn usage(command: &str) -> Option<(&'static str, &'static str, &'static str)> {
    COMMANDS.iter().copied().find(|(c, _, _)| *c == command)
}

/// Parses a line: `Ok(None)` for a blank one. Words are separated by spaces or tabs.
pub fn parse(line: &str) -> Result<Option<Command>, ParseError> {
    let mut words = line.split_ascii_whitespace();
    let Some(first) = words.next() else {
        return Ok(None);
    };
    let (command, arg, _) = usage(first).ok_or_else(|| ParseError::Unknown(first.into()))?;
    if let Some(parsed) = parse_file_command(command, &mut words) {
        return parsed.map(Some);
    }
    let argument = words.next();
    if words.next().is_some() || argument.is_some() == arg.is_empty() {
        return Err(ParseError::Usage(command));
    }
    let name = || {
        let text = argument.unwrap_or_default();
        Name::new(text).map_err(|_| ParseError::BadName(text.into()))
    };
    Ok(Some(match command {
        "help" => Command::Help,
        "ps" => Command::Ps,
        "caps" => Command::Caps(name()?),
        "lookup" => Command::Lookup(name()?),
        "spawn" => Command::Spawn(name()?),
        "kill" => Command::Kill(name()?),
        "mem" => Command::Mem,
        "devices" => Command::Devices,
        _ => Command::Halt,
    }))
}

/// The file commands' arguments (paths are any word; the file service checks them), or
/// `None` for another command.
fn parse_file_command<'a>(
    command: &'static str,
    words: &mut impl Iterator<Item = &'a str>,
) -> Option<Result<Command, ParseError>> {
    let rest: Vec<&str> = match command {
        "ls" | "cat" | "write" | "rm" | "mkdir" | "df" => words.collect(),
        _ => return None,
    };
    let usage = Err(ParseError::Usage(command));
    Some(match (command, rest.as_slice()) {
        ("ls", []) => Ok(Command::Ls(None)),
        ("ls", [dir]) => Ok(Command::Ls(Some((*dir).into()))),
        ("cat", [file]) => Ok(Command::Cat((*file).into())),
        ("write", [file, text @ ..]) if !text.is_empty() => {
            Ok(Command::Write((*file).into(), text.join(" ")))
        }
        ("rm", [path]) => Ok(Command::Rm((*path).into())),
        ("mkdir", [dir]) => Ok(Command::Mkdir((*dir).into())),
        ("df", []) => Ok(Command::Df),
        _ => usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn name(s: &str) -> Name {
        Name::new(s).unwrap()
    }

    #[test]
    fn every_command_parses() {
        let cases = [
            ("help", Command::Help),
            ("ps", Command::Ps),
            ("caps serial", Command::Caps(name("serial"))),
            ("lookup proc", Command::Lookup(name("proc"))),
            ("spawn hello", Command::Spawn(name("hello"))),
            ("kill hello", Command::Kill(name("hello"))),
            ("mem", Command::Mem),
            ("devices", Command::Devices),
            ("halt", Command::Halt),
            ("ls", Command::Ls(None)),
            ("cat /docs/a.txt", Command::Cat("/docs/a.txt".into())),
            (
                "write notes  hello \t world",
                Command::Write("notes".into(), "hello world".into()),
            ),
            ("rm old", Command::Rm("old".into())),
            ("mkdir docs", Command::Mkdir("docs".into())),
            ("df", Command::Df),
        ];
        for (line, command) in cases.clone() {
            assert_eq!(parse(line), Ok(Some(command)), "{line}");
        }
        assert_eq!(COMMANDS.len(), cases.len());
    }

    #[test]
    fn blank_lines_are_no_command_and_spacing_does_not_matter() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse(" \t "), Ok(None));
        assert_eq!(
            parse("  kill\t hello  "),
            Ok(Some(Command::Kill(name("hello"))))
        );
    }

    #[test]
    fn errors_are_one_line_each() {
        let cases = [
            (
                "frobnicate",
                "error: unknown command 'frobnicate' (type 'help' for the list)",
            ),
            (
                "PS",
                "error: unknown command 'PS' (type 'help' for the list)",
            ),
            ("caps", "error: usage: caps NAME"),
            ("kill a b", "error: usage: kill NAME"),
            ("ps -a", "error: usage: ps (it takes no arguments)"),
            ("halt now", "error: usage: halt (it takes no arguments)"),
            ("ls a b", "error: usage: ls [DIR]"),
            ("cat", "error: usage: cat FILE"),
            ("write notes", "error: usage: write FILE TEXT..."),
            ("rm a b", "error: usage: rm PATH"),
            ("df -h", "error: usage: df (it takes no arguments)"),
            (
                "spawn Hello",
                "error: 'Hello' is not a name (1-32 of a-z 0-9 - _, starting with a letter)",
            ),
            (
                "lookup 9lives",
                "error: '9lives' is not a name (1-32 of a-z 0-9 - _, starting with a letter)",
            ),
        ];
        for (line, message) in cases {
            let err = parse(line).unwrap_err().to_string();
            assert_eq!(err, message, "{line}");
            assert!(!err.contains('\n'));
        }
        let long = "a".repeat(33);
        assert_eq!(
            parse(&alloc::format!("caps {long}")),
            Err(ParseError::BadName(long))
        );
    }
}
