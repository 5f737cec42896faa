//! What the commands need from the system: the [`Backend`] trait, implemented over the proto
//! clients by the component and by a mock in tests.

use alloc::vec::Vec;
use proto::devices::PciFunction;
use proto::memory::Usage;
use proto::proc::{CapInfo, ComponentInfo, ComponentUsage};
use proto::{ComponentId, Name};

/// Why the backend could not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The shell has no endpoint for this service (not routed, or not running when the shell
    /// looked it up).
    Unavailable(&'static str),
    /// The system cannot do this yet; the text says what is missing.
    NotSupported(&'static str),
    /// naming answered with an error.
    Naming(proto::naming::Error),
    /// proc answered with an error.
    Proc(proto::proc::Error),
    /// memory answered with an error.
    Memory(proto::memory::Error),
    /// devices answered with an error.
    Devices(proto::devices::Error),
    /// A file operation failed.
    Files(libos_core::fs::Error),
}

/// The file API as the shell holds it: over whichever backend the system gives it.
pub type FileApi = libos_core::fs::Files<alloc::boxed::Box<dyn libos_core::fs::Backend>>;

/// The system as the shell sees it. Every method is one question to one service.
pub trait Backend {
    /// Every component in description order (proc `list`).
    fn components(&mut self) -> Result<Vec<ComponentInfo>, Failure>;
    /// The capabilities component `id` holds (proc `caps`).
    fn caps(&mut self, id: ComponentId) -> Result<Vec<CapInfo>, Failure>;
    /// Looks service `name` up with naming; `Ok(generation)` if found.
    fn lookup(&mut self, name: Name) -> Result<u64, Failure>;
    /// Starts component `name` (proc `spawn`).
    fn spawn(&mut self, name: Name) -> Result<ComponentId, Failure>;
    /// Stops component `id` (proc `kill`).
    fn kill(&mut self, id: ComponentId) -> Result<(), Failure>;
    /// The shell's own memory accounting, with the system's free memory (memory `usage`).
    fn usage(&mut self) -> Result<Usage, Failure>;
    /// Every component's memory in description order (proc `usage`: proc asks memory with
    /// its own authority; the shell asks memory only about itself).
    fn component_usage(&mut self) -> Result<Vec<ComponentUsage>, Failure>;
    /// Every PCI function (devices `list`).
    fn devices(&mut self) -> Result<Vec<PciFunction>, Failure>;
    /// Stops the system. Returns only if it cannot.
    fn halt(&mut self) -> Result<(), Failure>;
    /// The file API, if the system has a file service for the shell. The default: none
    /// (`Unavailable("fs")`).
    fn files(&mut self) -> Result<&mut FileApi, Failure> {
        Err(Failure::Unavailable("fs"))
    }
    /// A file call answered that the file service restarted (its descriptors and the
    /// attachment are gone): drop the file API, so the next command attaches again.
    fn files_lost(&mut self) {}
}

/// The most entries [`list_all`] collects: a server that never says "no more" cannot hang
/// the shell.
pub const LIST_LIMIT: u32 = 1024;

/// Calls `entry(0)`, `entry(1)`, ... until it fails with `end` (the interface's `NoEntry`)
/// and returns the entries; another error is returned as is. Stops after [`LIST_LIMIT`].
pub fn list_all<T, E: PartialEq>(
    mut entry: impl FnMut(u32) -> Result<T, E>,
    end: E,
) -> Result<Vec<T>, E> {
    let mut all = Vec::new();
    for index in 0..LIST_LIMIT {
        match entry(index) {
            Ok(item) => all.push(item),
            Err(e) if e == end => break,
            Err(e) => return Err(e),
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn list_all_stops_at_the_end_marker() {
        let got = list_all(|i| if i < 3 { Ok(i * 10) } else { Err(1) }, 1);
        assert_eq!(got, Ok(vec![0, 10, 20]));
    }

    #[test]
    fn list_all_returns_other_errors() {
        let got: Result<Vec<u32>, u8> = list_all(|i| if i < 2 { Ok(i) } else { Err(7) }, 1);
        assert_eq!(got, Err(7));
    }

    #[test]
    fn list_all_is_bounded() {
        let got: Result<Vec<u32>, u8> = list_all(Ok, 1);
        assert_eq!(got.map(|v| v.len()), Ok(LIST_LIMIT as usize));
    }
}
