//! Hostile and truncated ELF files: the load plan, the rewriter's scan and `exec` refuse
//! them in one line or load them; none panics, and a refusal names the file.

mod common;

use common::*;
use libos_linux::fs::{Node, Tree};
use libos_linux::image::Image;
use libos_linux::rewrite::ElfSites;
use libos_linux::{Config, Linux};

/// Where in `file` a mutation hurts most: the ELF header, the program headers, the
/// section headers.
fn header_spans(file: &[u8]) -> Vec<(usize, usize)> {
    let word = |at: usize| u64::from_le_bytes(file[at..at + 8].try_into().unwrap()) as usize;
    let half = |at: usize| u16::from_le_bytes(file[at..at + 2].try_into().unwrap()) as usize;
    let mut spans = vec![(0, 64)];
    let (phoff, phnum) = (word(32), half(56));
    spans.push((phoff, (phoff + 56 * phnum).min(file.len())));
    let (shoff, shnum) = (word(40), half(60));
    if shoff > 0 && shoff < file.len() {
        spans.push((shoff, (shoff + 64 * shnum).min(file.len())));
    }
    spans
}

fn try_everything(file: Vec<u8>, refusals: &mut usize, loads: &mut usize) {
    let file = leak(file);
    let _ = Image::plan(file, 0x5555_0000_0000);
    let _ = ElfSites::scan(file);
    let mut tree = Tree::new();
    tree.add("/bin/x", Node::File(file));
    tree.add("/lib/ld.so", Node::File(file));
    let config = Config {
        budget: 16 << 20,
        ..Config::default()
    };
    let mut linux = Linux::new(FakePlatform::default(), tree, "/bin/x", config);
    match linux.exec("/bin/x", &["x"], &[]) {
        Ok(start) => {
            *loads += 1;
            assert_eq!(start.rsp % 16, 0);
        }
        Err(e) => {
            *refusals += 1;
            let line = e.to_string();
            assert!(
                line.starts_with("linux: cannot exec /bin/x: ")
                    || line.starts_with("linux: cannot exec /lib/ld.so: "),
                "{line}"
            );
            assert!(!line.contains('\n'));
        }
    }
}

/// Mutations of the small crafted file, and of the dynamic loader (larger, slower).
const ROUNDS_SMALL: usize = 3000;
const ROUNDS_LARGE: usize = 150;

#[test]
fn mutated_and_truncated_files_are_refused_or_loaded_never_a_panic() {
    let rng = fastrand::Rng::with_seed(0xe1f);
    let mut rng = rng;
    let mut bases: Vec<Vec<u8>> = vec![static_program(&[0x0f, 0x05, 0xc3], 0x2000)];
    // A real file with section headers and symbols: Debian's dynamic loader.
    let ld = "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
    bases.push(std::fs::read(ld).unwrap_or_else(|e| panic!("{ld}: {e}")));
    let (mut refusals, mut loads) = (0, 0);
    for base in &bases {
        let spans = header_spans(base);
        let rounds = if base.len() > 100_000 {
            ROUNDS_LARGE
        } else {
            ROUNDS_SMALL
        };
        for _ in 0..rounds {
            let mut file = base.clone();
            if rng.u8(..8) == 0 {
                file.truncate(rng.usize(..file.len()));
            } else {
                for _ in 0..rng.usize(1..8) {
                    let (start, end) = spans[rng.usize(..spans.len())];
                    if end > start {
                        let at = rng.usize(start..end);
                        file[at] = match rng.u8(..4) {
                            0 => 0,
                            1 => 0xff,
                            _ => rng.u8(..),
                        };
                    }
                }
            }
            try_everything(file, &mut refusals, &mut loads);
        }
    }
    println!("{refusals} refused, {loads} loaded");
    assert!(refusals > 0 && loads > 0, "both outcomes were reached");
}
