//! The shell's file commands over the hosted backend (a scratch host directory), and what
//! they say when the system has no file service.

use libos_core::fs::Files;
use libos_hosted::files::HostFiles;
use proto::devices::PciFunction;
use proto::memory::Usage;
use proto::proc::{CapInfo, ComponentInfo, ComponentUsage};
use proto::{ComponentId, Name};
use shell::backend::FileApi;
use shell::{Backend, Failure, Shell, PROMPT};
use std::path::PathBuf;

/// A system that has only a file API (or none).
struct FilesOnly(Option<FileApi>);

const NO: Failure = Failure::NotSupported("not in this test");

impl Backend for FilesOnly {
    fn components(&mut self) -> Result<Vec<ComponentInfo>, Failure> {
        Err(NO)
    }
    fn caps(&mut self, _: ComponentId) -> Result<Vec<CapInfo>, Failure> {
        Err(NO)
    }
    fn lookup(&mut self, _: Name) -> Result<u64, Failure> {
        Err(NO)
    }
    fn spawn(&mut self, _: Name) -> Result<ComponentId, Failure> {
        Err(NO)
    }
    fn kill(&mut self, _: ComponentId) -> Result<(), Failure> {
        Err(NO)
    }
    fn usage(&mut self) -> Result<Usage, Failure> {
        Err(NO)
    }
    fn component_usage(&mut self) -> Result<Vec<ComponentUsage>, Failure> {
        Err(NO)
    }
    fn devices(&mut self) -> Result<Vec<PciFunction>, Failure> {
        Err(NO)
    }
    fn halt(&mut self) -> Result<(), Failure> {
        Err(NO)
    }
    fn files(&mut self) -> Result<&mut FileApi, Failure> {
        self.0.as_mut().ok_or(Failure::Unavailable("fs"))
    }
}

/// What the shell prints for `line` (without the prompt, with `\n` line ends).
fn run(backend: &mut FilesOnly, line: &str) -> String {
    let mut out = Vec::new();
    let mut shell = Shell::new();
    shell.feed(format!("{line}\r").as_bytes(), backend, &mut out);
    let text = String::from_utf8(out).unwrap().replace("\r\n", "\n");
    let text = text.strip_suffix(PROMPT).unwrap().to_string();
    // The echo of the line comes first.
    text.split_once('\n').unwrap().1.to_string()
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn hosted(tag: &str) -> (FilesOnly, Scratch) {
    let dir = std::env::temp_dir().join(format!("tessera-shell-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let backend: Box<dyn libos_core::fs::Backend> = Box::new(HostFiles::open(&dir).unwrap());
    (FilesOnly(Some(Files::new(backend))), Scratch(dir))
}

#[test]
fn file_commands_over_a_host_directory() {
    let (mut sh, scratch) = hosted("commands");
    assert_eq!(run(&mut sh, "ls"), "/: empty\n");
    assert_eq!(run(&mut sh, "mkdir docs"), "created docs\n");
    assert_eq!(
        run(&mut sh, "write docs/hello.txt hello   from the shell"),
        "wrote 21 bytes to docs/hello.txt\n"
    );
    assert_eq!(
        std::fs::read_to_string(scratch.0.join("docs/hello.txt")).unwrap(),
        "hello from the shell\n"
    );
    assert_eq!(
        run(&mut sh, "cat /docs/hello.txt"),
        "hello from the shell\n"
    );
    std::fs::write(scratch.0.join("top"), b"no line end").unwrap();
    assert_eq!(run(&mut sh, "cat top"), "no line end\n");
    assert_eq!(run(&mut sh, "ls /"), "SIZE  NAME\n-     docs/\n11    top\n");
    assert_eq!(run(&mut sh, "ls docs"), "SIZE  NAME\n21    hello.txt\n");
    assert_eq!(
        run(&mut sh, "rm docs"),
        "error: rm docs: directory not empty\n"
    );
    assert_eq!(
        run(&mut sh, "rm docs/hello.txt"),
        "removed docs/hello.txt\n"
    );
    assert_eq!(run(&mut sh, "rm docs"), "removed docs\n");
    assert!(!scratch.0.join("docs").exists());
    let df = run(&mut sh, "df");
    let mut lines = df.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["SIZE-KIB", "USED-KIB", "FREE-KIB", "USE%"]);
    let row: Vec<u64> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|w| w.trim_end_matches('%').parse().unwrap())
        .collect();
    assert!(
        row[0] > 0 && row[1] + row[2] <= row[0] && row[3] <= 100,
        "{df}"
    );
}

#[test]
fn file_errors_are_one_line_each() {
    let (mut sh, scratch) = hosted("errors");
    std::fs::write(
        scratch.0.join("big"),
        vec![b'x'; shell::files::CAT_LIMIT + 10],
    )
    .unwrap();
    let big = run(&mut sh, "cat big");
    assert!(
        big.ends_with("\n(10 more bytes not shown)\n"),
        "{}",
        &big[big.len() - 40..]
    );
    for (line, expected) in [
        (
            "cat missing",
            "error: cat missing: no such file or directory\n",
        ),
        (
            "cat ../etc/passwd",
            "error: cat ../etc/passwd: invalid name\n",
        ),
        (
            "ls nowhere",
            "error: ls nowhere: no such file or directory\n",
        ),
        ("mkdir big", "error: mkdir big: already exists\n"),
        ("cat /", "error: cat /: is a directory\n"),
        ("rm /", "error: rm /: busy (open, or the root)\n"),
        ("write", "error: usage: write FILE TEXT...\n"),
    ] {
        assert_eq!(run(&mut sh, line), expected, "{line}");
    }
}

#[test]
fn without_a_file_service_the_commands_say_so() {
    let mut sh = FilesOnly(None);
    for line in ["ls", "cat a", "write a b", "rm a", "mkdir a", "df"] {
        let out = run(&mut sh, line);
        assert!(
            out.starts_with("error: ") && out.ends_with(": service fs is not available\n"),
            "{line}: {out}"
        );
        assert_eq!(out.lines().count(), 1);
    }
}
