//! Type-ahead: commands piped in before the shell's prompt appears all run, in order, the
//! way `printf 'ps\nlookup no-such-service\nhalt\n' | cargo xtask run` gives them (the same
//! code: `xtask::qemu::run_fed`, QEMU's serial and monitor multiplexed on stdio). The input
//! is there from the moment QEMU starts, long before the serial driver is ready.

use std::io::{Cursor, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use system_tests::system_image;
use xtask::qemu::{Boot, Outcome};

/// Collects what the run prints.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<Vec<u8>>>);

impl Write for Screen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn piped_commands_typed_before_the_prompt_all_run_in_order() {
    let (kernel, root) = system_image("default");
    let log = xtask::target_dir().join("logs").join("type-ahead.log");
    let mut boot = Boot::new(kernel, root, log);
    boot.timeout = Duration::from_secs(180);
    let screen = Screen::default();
    let input = Cursor::new(b"ps\nlookup no-such-service\nhalt\n".to_vec());
    let outcome = xtask::qemu::run_fed(&boot, input, screen.clone()).expect("QEMU runs");
    let out = String::from_utf8_lossy(&screen.0.lock().unwrap()).replace('\r', "");

    assert_eq!(
        outcome,
        Outcome::Exited(0),
        "halt must end the system:\n{out}"
    );
    let shell = &out[out
        .find("Tessera shell")
        .unwrap_or_else(|| panic!("no shell:\n{out}"))..];
    // Each command echoed after a prompt and answered, in the order typed.
    let ps = shell
        .find("tessera> ps\nID  NAME")
        .unwrap_or_else(|| panic!("ps did not run:\n{shell}"));
    for c in ["naming", "proc", "serial", "shell", "hello"] {
        assert!(
            shell[ps..]
                .lines()
                .any(|l| l.contains(c) && l.contains("running")),
            "{c} missing from ps:\n{shell}"
        );
    }
    let lookup = shell
        .find("tessera> lookup no-such-service\nno-such-service: not found")
        .unwrap_or_else(|| panic!("lookup did not run:\n{shell}"));
    let halt = shell
        .find("halt (status 0) requested by shell")
        .unwrap_or_else(|| panic!("halt did not run:\n{shell}"));
    assert!(ps < lookup && lookup < halt, "out of order:\n{shell}");
    assert!(
        !shell.contains("unknown command"),
        "bytes were lost:\n{shell}"
    );
}
