//! The shell against a mock system: every command's output and every error line.

use super::*;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use proto::devices::PciFunction;
use proto::memory::Usage;
use proto::proc::{CapInfo, CapKind, ComponentInfo, ComponentUsage, State};
use proto::{ComponentId, Name};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

/// A system like `systems/default.toml`, with switches for each service being absent.
struct Mock {
    components: Vec<ComponentInfo>,
    /// Services naming finds for the shell, with their generation.
    services: Vec<(&'static str, u64)>,
    proc: bool,
    memory: bool,
    devices: bool,
    halt: Result<(), Failure>,
    halted: bool,
    /// proc lists no capabilities for anyone (as proc does before it builds components).
    no_caps: bool,
    /// Components memory does not tell proc about (their `mem` row shows `-`).
    unmeasured: Vec<u16>,
}

/// Budget and bytes used as memory counts them, per component, as in a boot of
/// `systems/default.toml` (proc-built components hold their heap and stack).
fn accounting(name: &str) -> (u64, u64) {
    match name {
        "naming" | "memory" | "devices" => (MIB, 0),
        "proc" => (2 * MIB, 64 * KIB),
        "serial" => (256 * KIB, 160 * KIB),
        "shell" => (4 * MIB, 2304 * KIB),
        _ => (256 * KIB, 0),
    }
}

impl Mock {
    fn new() -> Mock {
        let component = |id: u16, n: &str, state, restarts| ComponentInfo {
            id: ComponentId(id),
            name: name(n),
            state,
            restarts,
        };
        Mock {
            components: vec![
                component(0, "naming", State::Running, 0),
                component(1, "proc", State::Running, 0),
                component(2, "memory", State::Running, 0),
                component(3, "devices", State::Running, 0),
                component(4, "serial", State::Running, 1),
                component(5, "shell", State::Running, 0),
                component(6, "hello", State::Restarting, 2),
            ],
            services: vec![("naming", 1), ("proc", 1), ("serial", 2)],
            proc: true,
            memory: true,
            devices: true,
            halt: Err(Failure::NotSupported("halting is not available yet")),
            halted: false,
            no_caps: false,
            unmeasured: Vec::new(),
        }
    }

    fn component(&mut self, id: ComponentId) -> Result<&mut ComponentInfo, Failure> {
        self.components
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or(Failure::Proc(proto::proc::Error::NotFound))
    }

    fn proc(&self) -> Result<(), Failure> {
        if self.proc {
            Ok(())
        } else {
            Err(Failure::Unavailable("proc"))
        }
    }

    fn memory(&self) -> Result<(), Failure> {
        if self.memory {
            Ok(())
        } else {
            Err(Failure::Unavailable("memory"))
        }
    }
}

impl Backend for Mock {
    fn components(&mut self) -> Result<Vec<ComponentInfo>, Failure> {
        self.proc()?;
        Ok(self.components.clone())
    }

    fn caps(&mut self, id: ComponentId) -> Result<Vec<CapInfo>, Failure> {
        self.proc()?;
        self.component(id)?;
        if self.no_caps {
            return Ok(Vec::new());
        }
        if id != ComponentId(4) {
            return Err(Failure::Proc(proto::proc::Error::Malformed));
        }
        let cap = |slot, kind, rights, badge, grant: Option<&str>| CapInfo {
            slot,
            kind,
            rights,
            badge,
            grant: grant.map(name),
        };
        Ok(vec![
            cap(1, CapKind::Tcb, 7, 0, None),
            cap(5, CapKind::Endpoint, 7, 5, Some("naming")),
            cap(6, CapKind::Endpoint, 3, 0, Some("serial")),
            cap(9, CapKind::IoPort, 2, 0, Some("com1")),
        ])
    }

    fn lookup(&mut self, n: Name) -> Result<u64, Failure> {
        self.services
            .iter()
            .find(|(s, _)| n == *s)
            .map(|&(_, g)| g)
            .ok_or(Failure::Naming(proto::naming::Error::NotFound))
    }

    fn spawn(&mut self, n: Name) -> Result<ComponentId, Failure> {
        use proto::proc::Error;
        self.proc()?;
        let c = self
            .components
            .iter_mut()
            .find(|c| c.name == n)
            .ok_or(Failure::Proc(Error::NotFound))?;
        match (c.id.0, c.state) {
            (0..=3, _) => Err(Failure::Proc(Error::Denied)),
            (_, State::Running) => Err(Failure::Proc(Error::AlreadyRunning)),
            _ => {
                c.state = State::Running;
                Ok(c.id)
            }
        }
    }

    fn kill(&mut self, id: ComponentId) -> Result<(), Failure> {
        use proto::proc::Error;
        self.proc()?;
        let c = self.component(id)?;
        match (c.id.0, c.state) {
            (0..=3, _) => Err(Failure::Proc(Error::Denied)),
            (_, State::Running) => {
                // As the brief's proc would: restarting per its policy.
                c.state = State::Restarting;
                c.restarts += 1;
                Ok(())
            }
            _ => Err(Failure::Proc(Error::NotRunning)),
        }
    }

    fn usage(&mut self) -> Result<Usage, Failure> {
        self.memory()?;
        Ok(Usage {
            used: 2304 * KIB,
            budget: 4 * MIB,
            free_total: 488 * MIB + 300 * KIB,
        })
    }

    fn component_usage(&mut self) -> Result<Vec<ComponentUsage>, Failure> {
        self.proc()?;
        Ok(self
            .components
            .iter()
            .map(|c| {
                let (budget, used) = accounting(&c.name);
                let measured = !self.unmeasured.contains(&c.id.0);
                ComponentUsage {
                    id: c.id,
                    name: c.name,
                    state: c.state,
                    measured,
                    used: if measured { used } else { 0 },
                    budget,
                    heap: budget / 2,
                    stack: (budget / 8).clamp(16 * KIB, 256 * KIB),
                }
            })
            .collect())
    }

    fn devices(&mut self) -> Result<Vec<PciFunction>, Failure> {
        if !self.devices {
            return Err(Failure::Unavailable("devices"));
        }
        let f = |bus, dev, func, vendor, device, class| PciFunction {
            bus,
            dev,
            func,
            vendor,
            device,
            class,
        };
        Ok(vec![
            f(0, 0, 0, 0x8086, 0x1237, 0x06_00_00),
            f(0, 1, 0, 0x8086, 0x7000, 0x06_01_00),
            f(0, 1, 1, 0x8086, 0x7010, 0x01_01_80),
            f(0, 2, 0, 0x1234, 0x1111, 0x03_00_00),
            f(0, 3, 0, 0x8086, 0x100e, 0x02_00_00),
            f(0, 4, 0, 0x1af4, 0x1000, 0xff_00_00),
        ])
    }

    fn halt(&mut self) -> Result<(), Failure> {
        self.halt?;
        self.halted = true;
        Ok(())
    }
}

/// Types `input` into a fresh shell over `mock`; returns everything it printed after the
/// banner, with CR LF turned back into `\n`.
fn session(mock: &mut Mock, input: &str) -> String {
    let mut shell = Shell::new();
    let mut out = Vec::new();
    shell.feed(input.as_bytes(), mock, &mut out);
    String::from_utf8(out).unwrap().replace("\r\n", "\n")
}

/// The output of one command line (without echo and prompts).
fn run(mock: &mut Mock, line: &str) -> String {
    let out = session(mock, &alloc::format!("{line}\r"));
    let out = out.strip_prefix(line).unwrap().strip_prefix('\n').unwrap();
    out.strip_suffix(PROMPT).unwrap().to_string()
}

#[test]
fn banner_greets_names_missing_services_and_prompts() {
    let mut out = Vec::new();
    Shell::new().banner(&["devices"], &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "Tessera shell: type 'help' for the commands\r\n\
         service devices is not available: commands that need it say so\r\n\
         tessera> "
    );
}

#[test]
fn help_lists_every_command() {
    let out = run(&mut Mock::new(), "help");
    assert_eq!(
        out,
        "commands:\n\
         \x20 help               this list\n\
         \x20 ps                 components: id, state, restarts\n\
         \x20 caps NAME          the capabilities component NAME holds\n\
         \x20 lookup NAME        ask naming for service NAME\n\
         \x20 spawn NAME         start component NAME (from the system description)\n\
         \x20 kill NAME          stop component NAME\n\
         \x20 mem                free memory and memory per component\n\
         \x20 devices            PCI functions\n\
         \x20 halt               stop the system\n\
         \x20 ls [DIR]           the entries of directory DIR (default /)\n\
         \x20 cat FILE           print file FILE\n\
         \x20 write FILE TEXT... replace file FILE with TEXT and a line end\n\
         \x20 rm PATH            remove a file or an empty directory\n\
         \x20 mkdir DIR          create directory DIR\n\
         \x20 df                 the file system's size, use and free space\n\
         keys: backspace erases, Ctrl-U clears the line, Ctrl-C abandons it\n"
    );
}

#[test]
fn ps_is_a_table_of_components() {
    assert_eq!(
        run(&mut Mock::new(), "ps"),
        "ID  NAME     STATE       RESTARTS\n\
         0   naming   running     0\n\
         1   proc     running     0\n\
         2   memory   running     0\n\
         3   devices  running     0\n\
         4   serial   running     1\n\
         5   shell    running     0\n\
         6   hello    restarting  2\n"
    );
}

#[test]
fn caps_lists_what_a_component_holds() {
    assert_eq!(
        run(&mut Mock::new(), "caps serial"),
        "serial (id 4) holds 4 capabilities\n\
         SLOT  KIND      RIGHTS  BADGE  GRANT\n\
         1     tcb       rwg     -      -\n\
         5     endpoint  rwg     5      naming\n\
         6     endpoint  rw-     -      serial\n\
         9     io-port   r--     -      com1\n"
    );
}

#[test]
fn caps_errors() {
    let mut mock = Mock::new();
    assert_eq!(
        run(&mut mock, "caps nobody"),
        "error: no component named 'nobody' (see 'ps')\n"
    );
    // The mock answers Malformed for anyone but serial: the generic text.
    assert_eq!(
        run(&mut mock, "caps hello"),
        "error: caps hello: the service did not understand the request\n"
    );
    mock.no_caps = true;
    assert_eq!(
        run(&mut mock, "caps serial"),
        "serial (id 4): proc lists no capabilities\n"
    );
    mock.proc = false;
    assert_eq!(
        run(&mut mock, "caps serial"),
        "error: service proc is not available\n"
    );
}

#[test]
fn lookup_says_found_or_not_found_without_telling_why() {
    let mut mock = Mock::new();
    assert_eq!(
        run(&mut mock, "lookup serial"),
        "serial: found (generation 2): the shell is routed to it\n"
    );
    let not_found = |n: &str| {
        alloc::format!(
            "{n}: not found: no such service, not running yet, or the shell is not routed \
             to it (naming does not say which)\n"
        )
    };
    // Unrouted (memory exists but the mock's naming hides it) and nonexistent look the same.
    assert_eq!(run(&mut mock, "lookup memory"), not_found("memory"));
    assert_eq!(run(&mut mock, "lookup nosuch"), not_found("nosuch"));
}

#[test]
fn spawn_and_its_errors() {
    let mut mock = Mock::new();
    assert_eq!(run(&mut mock, "spawn hello"), "spawned hello (id 6)\n");
    assert_eq!(
        run(&mut mock, "spawn hello"),
        "error: spawn hello: already running\n"
    );
    assert_eq!(
        run(&mut mock, "spawn nosuch"),
        "error: spawn nosuch: no such component\n"
    );
    assert_eq!(
        run(&mut mock, "spawn naming"),
        "error: spawn naming: proc does not allow it\n"
    );
    mock.proc = false;
    assert_eq!(
        run(&mut mock, "spawn hello"),
        "error: service proc is not available\n"
    );
}

#[test]
fn kill_then_ps_shows_the_component_coming_back() {
    let mut mock = Mock::new();
    let out = session(&mut mock, "kill serial\rps\r");
    assert_eq!(
        out,
        "kill serial\n\
         killed serial (id 4): 'ps' shows what proc does next\n\
         tessera> ps\n\
         ID  NAME     STATE       RESTARTS\n\
         0   naming   running     0\n\
         1   proc     running     0\n\
         2   memory   running     0\n\
         3   devices  running     0\n\
         4   serial   restarting  2\n\
         5   shell    running     0\n\
         6   hello    restarting  2\n\
         tessera> "
    );
}

#[test]
fn kill_errors() {
    let mut mock = Mock::new();
    assert_eq!(
        run(&mut mock, "kill hello"),
        "error: kill hello: not running\n"
    );
    assert_eq!(
        run(&mut mock, "kill memory"),
        "error: kill memory: proc does not allow it\n"
    );
    assert_eq!(
        run(&mut mock, "kill ghost"),
        "error: no component named 'ghost' (see 'ps')\n"
    );
    mock.proc = false;
    assert_eq!(
        run(&mut mock, "kill hello"),
        "error: service proc is not available\n"
    );
}

#[test]
fn mem_shows_free_memory_and_every_components_row_from_proc() {
    let mut mock = Mock::new();
    assert_eq!(
        run(&mut mock, "mem"),
        "free memory: 488.2 MiB (512012288 bytes)\n\
         NAME     STATE       USED     BUDGET   HEAP     STACK\n\
         naming   running     0 B      1 MiB    512 KiB  128 KiB\n\
         proc     running     64 KiB   2 MiB    1 MiB    256 KiB\n\
         memory   running     0 B      1 MiB    512 KiB  128 KiB\n\
         devices  running     0 B      1 MiB    512 KiB  128 KiB\n\
         serial   running     160 KiB  256 KiB  128 KiB  32 KiB\n\
         shell    running     2.2 MiB  4 MiB    2 MiB    256 KiB\n\
         hello    restarting  0 B      256 KiB  128 KiB  32 KiB\n"
    );
}

#[test]
fn mem_marks_the_rows_memory_did_not_tell_proc() {
    let mut mock = Mock::new();
    mock.unmeasured = vec![2, 6];
    let out = run(&mut mock, "mem");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[4],
        "memory   running     -        1 MiB    512 KiB  128 KiB"
    );
    assert_eq!(
        lines[8],
        "hello    restarting  -        256 KiB  128 KiB  32 KiB"
    );
    assert_eq!(
        lines[7],
        "shell    running     2.2 MiB  4 MiB    2 MiB    256 KiB"
    );
    assert_eq!(lines.last(), Some(&"-: memory did not tell proc"));
    assert_eq!(lines.len(), 10);
}

#[test]
fn mem_without_proc_or_memory() {
    let mut mock = Mock::new();
    mock.proc = false;
    assert_eq!(
        run(&mut mock, "mem"),
        "free memory: 488.2 MiB (512012288 bytes)\n\
         this shell: 2.2 MiB used of 4 MiB\n\
         error: service proc is not available\n"
    );
    mock.memory = false;
    assert_eq!(
        run(&mut mock, "mem"),
        "error: service memory is not available\n\
         error: service proc is not available\n"
    );
    // proc alone still lists every component.
    mock.proc = true;
    let out = run(&mut mock, "mem");
    assert!(
        out.starts_with("error: service memory is not available\nNAME "),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1 + 1 + 7);
}

#[test]
fn mem_without_unmeasured_rows_has_no_footnote() {
    let mut mock = Mock::new();
    mock.components.retain(|c| c.id.0 == 5);
    assert_eq!(
        run(&mut mock, "mem"),
        "free memory: 488.2 MiB (512012288 bytes)\n\
         NAME   STATE    USED     BUDGET  HEAP   STACK\n\
         shell  running  2.2 MiB  4 MiB   2 MiB  256 KiB\n"
    );
}

#[test]
fn sizes() {
    use exec::size;
    assert_eq!(size(0), "0 B");
    assert_eq!(size(100), "100 B");
    assert_eq!(size(4096), "4 KiB");
    assert_eq!(size(1536 * KIB), "1.5 MiB");
    assert_eq!(size(512 * MIB), "512 MiB");
    assert_eq!(size(MIB - 1), "1023.9 KiB");
    assert_eq!(size(3 << 30), "3 GiB");
    assert_eq!(size(u64::MAX), "17179869183.9 GiB");
}

#[test]
fn devices_is_a_pci_table() {
    let mut mock = Mock::new();
    assert_eq!(
        run(&mut mock, "devices"),
        "BUS:DEV.FN  VENDOR:DEVICE  CLASS   KIND\n\
         00:00.0     8086:1237      060000  bridge\n\
         00:01.0     8086:7000      060100  bridge\n\
         00:01.1     8086:7010      010180  storage\n\
         00:02.0     1234:1111      030000  display\n\
         00:03.0     8086:100e      020000  network\n\
         00:04.0     1af4:1000      ff0000  other\n"
    );
    mock.devices = false;
    assert_eq!(
        run(&mut mock, "devices"),
        "error: service devices is not available\n"
    );
    assert_eq!(exec::devices(&[]), "no PCI functions\n");
}

#[test]
fn halt_not_available_says_so_and_the_shell_goes_on() {
    let mut mock = Mock::new();
    let out = session(&mut mock, "halt\rps\r");
    assert!(
        out.starts_with("halt\nerror: halt: halting is not available yet\ntessera> ps\nID  NAME")
    );
    assert!(!mock.halted);
}

#[test]
fn type_ahead_is_taken_one_line_at_a_time() {
    let mut mock = Mock::new();
    mock.halt = Ok(());
    let mut shell = Shell::new();
    let input = b"ps\nlookup nosuch\nhalt\n";
    let mut answers = Vec::new();
    let mut rest = &input[..];
    while !rest.is_empty() {
        let mut out = Vec::new();
        let n = shell.feed_line(rest, &mut mock, &mut out);
        assert!(n > 0);
        rest = &rest[n..];
        // Each answer is complete before the next command runs.
        answers.push((String::from_utf8(out).unwrap(), mock.halted));
    }
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert!(answers[0].0.starts_with("ps\r\nID  NAME"), "{answers:?}");
    assert!(answers[0].0.ends_with(PROMPT) && !answers[0].1);
    assert!(answers[1].0.contains("nosuch: not found") && !answers[1].1);
    assert_eq!(answers[2], ("halt\r\nhalting\r\n".to_string(), true));
    // A partial line is taken whole and waits for its end.
    let mut shell = Shell::new();
    let mut out = Vec::new();
    assert_eq!(shell.feed_line(b"p", &mut mock, &mut out), 1);
    assert_eq!(shell.feed_line(b"s\rmem\r", &mut mock, &mut out), 2);
}

#[test]
fn halt_stops_the_shell() {
    let mut mock = Mock::new();
    mock.halt = Ok(());
    let mut shell = Shell::new();
    let mut out = Vec::new();
    shell.feed(b"halt\rps\r", &mut mock, &mut out);
    assert_eq!(out, b"halt\r\nhalting\r\n");
    assert!(shell.halted() && mock.halted);
    shell.feed(b"ps\r", &mut mock, &mut out);
    assert_eq!(out, b"halt\r\nhalting\r\n");
}

#[test]
fn bad_lines_get_one_error_line_and_a_new_prompt() {
    let mut mock = Mock::new();
    let cases = [
        (
            "frob",
            "error: unknown command 'frob' (type 'help' for the list)\n",
        ),
        ("caps", "error: usage: caps NAME\n"),
        ("ps all", "error: usage: ps (it takes no arguments)\n"),
        (
            "kill Serial",
            "error: 'Serial' is not a name (1-32 of a-z 0-9 - _, starting with a letter)\n",
        ),
        ("", ""),
        ("   ", ""),
    ];
    for (line, expected) in cases {
        assert_eq!(run(&mut mock, line), expected, "{line:?}");
    }
}

#[test]
fn editing_keys_reach_the_commands() {
    let mut mock = Mock::new();
    // "pz", backspace, "s": runs ps. Ctrl-U then "spawn hello": the cleared text is gone.
    let out = session(&mut mock, "pz\x7fs\rhalt\x15spawn hello\r");
    assert!(out.starts_with("pz\x08 \x08s\nID  NAME"));
    assert!(out.ends_with(
        "tessera> halt\x08 \x08\x08 \x08\x08 \x08\x08 \x08spawn hello\nspawned hello (id 6)\ntessera> "
    ));
    assert!(!mock.halted);
}

#[test]
fn ctrl_c_and_overlong_lines_reprompt() {
    let mut mock = Mock::new();
    assert_eq!(session(&mut mock, "halt\x03"), "halt^C\ntessera> ");
    let long = "x".repeat(MAX_LINE + 1);
    let out = session(&mut mock, &alloc::format!("{long}\r"));
    assert_eq!(
        out,
        alloc::format!(
            "{}\x07\nerror: line too long (at most 96 characters): ignored\ntessera> ",
            &long[..MAX_LINE]
        )
    );
}

#[test]
fn crlf_gives_one_prompt() {
    let mut mock = Mock::new();
    assert_eq!(session(&mut mock, "\r\n\r\n"), "\ntessera> \ntessera> ");
}

#[test]
fn garbage_never_panics() {
    // halt is not supported here, so the whole run exercises commands.
    let mut mock = Mock::new();
    let mut shell = Shell::new();
    let mut out = Vec::new();
    let mut x: u64 = 0x1234_5678;
    let words: [&[u8]; 12] = [
        b"ps", b"caps ", b"kill ", b"spawn ", b"lookup ", b"mem", b"devices", b"hello", b"serial",
        b" ", b"\r", b"\x7f",
    ];
    for _ in 0..50_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let chunk: Vec<u8> = if x.is_multiple_of(3) {
            words[(x >> 8) as usize % words.len()].to_vec()
        } else {
            x.to_le_bytes()[..(x >> 60) as usize % 8].to_vec()
        };
        shell.feed(&chunk, &mut mock, &mut out);
        out.clear();
    }
    assert!(!shell.halted());
}
