//! The Linux baseline guest: Debian's generic amd64 kernel with an initramfs built from
//! Debian packages only (busybox, iperf3 and its libraries, the NIC modules), booted with
//! the same QEMU machine, CPU model, memory and NIC model as a Tessera system.
//!
//! The packages are downloaded once into `target/linux/debs/` (`apt-get download`) and
//! unpacked into `target/linux/root/`; the initramfs (`target/linux/initramfs.cpio`,
//! uncompressed `newc`) holds `/init` ([`init::script`]), busybox, iperf3 with the loader
//! and the libraries its `DT_NEEDED` entries name, and the `e1000e` and `virtio_net`
//! modules with their dependencies (from each module's `.modinfo`).

pub mod cpio;
pub mod debian;
pub mod elf;
pub mod init;

use crate::qemu::net::{self, Mode};
use crate::qemu::Boot;
use crate::{step, target_dir, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The modules the guest loads (with their dependencies): both NICs' drivers, so one
/// initramfs serves either NIC model, and virtio-blk with FAT (`cargo xtask bench files`).
pub const GUEST_MODULES: &[&str] = &[
    "e1000e",
    "virtio_pci",
    "virtio_net",
    "virtio_blk",
    "vfat",
    "nls_cp437",
    "nls_utf8",
    "nls_ascii",
];

/// The kernel command line: serial console, quiet, and the period of the `STAT` lines.
pub fn command_line(stat_ms: u32) -> String {
    format!(
        "console=ttyS0 quiet panic=-1 {}={stat_ms}",
        init::STAT_MS_PARAM
    )
}

/// Which NIC QEMU gives the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nic {
    /// Intel 82574L (`e1000e`), the Tessera unikernel's default NIC.
    E1000e,
    /// virtio-net (transitional `virtio-net-pci`, as in `systems/net-unikernel-virtio.toml`).
    VirtioNet,
}

impl Nic {
    /// Parses `e1000e` or `virtio-net`.
    pub fn parse(text: &str) -> Result<Nic> {
        match text {
            "e1000e" => Ok(Nic::E1000e),
            "virtio-net" => Ok(Nic::VirtioNet),
            other => Err(format!("unknown NIC `{other}` (e1000e or virtio-net)")),
        }
    }

    /// The name `parse` accepts.
    pub fn name(self) -> &'static str {
        match self {
            Nic::E1000e => "e1000e",
            Nic::VirtioNet => "virtio-net",
        }
    }

    /// The QEMU device model (the one [`net::nic_model`] gives Tessera's descriptions).
    pub fn qemu_model(self) -> &'static str {
        match self {
            Nic::E1000e => net::nic_model(0x8086, 0x10d3).expect("e1000e is a QEMU NIC"),
            Nic::VirtioNet => net::nic_model(0x1af4, 0x1000).expect("virtio-net is a QEMU NIC"),
        }
    }
}

/// A built guest: kernel and initramfs.
#[derive(Debug, Clone)]
pub struct Guest {
    /// The kernel's bzImage (`/boot/vmlinuz-<version>` of the Debian package).
    pub kernel: PathBuf,
    /// The initramfs (`newc` cpio).
    pub initramfs: PathBuf,
    /// The kernel release (e.g. `6.1.0-56-amd64`).
    pub release: String,
}

/// Where the guest's downloads and products go.
pub fn dir() -> PathBuf {
    target_dir().join("linux")
}

/// Downloads (once) and unpacks the packages, and writes the initramfs.
pub fn build() -> Result<Guest> {
    let dir = dir();
    let debs = debian::download(&dir.join("debs"))?;
    let root = debian::unpack(&debs, &dir.join("root"))?;
    let release = kernel_release(&root)?;
    let kernel = root.join("boot").join(format!("vmlinuz-{release}"));
    if !kernel.is_file() {
        return Err(format!("{} is missing", kernel.display()));
    }
    step(&format!("assembling the initramfs (Linux {release})"));
    let bytes = initramfs(&root, &release)?;
    let initramfs = dir.join("initramfs.cpio");
    std::fs::write(&initramfs, &bytes).map_err(|e| format!("{}: {e}", initramfs.display()))?;
    step(&format!(
        "Linux guest: {} and {} ({} KiB)",
        kernel.display(),
        initramfs.display(),
        bytes.len() / 1024
    ));
    Ok(Guest {
        kernel,
        initramfs,
        release,
    })
}

/// The one kernel release under `root/lib/modules`.
fn kernel_release(root: &Path) -> Result<String> {
    let modules = root.join("lib/modules");
    let mut releases: Vec<String> = std::fs::read_dir(&modules)
        .map_err(|e| format!("{}: {e}", modules.display()))?
        .flatten()
        .filter(|e| e.path().join("kernel").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    releases.sort();
    match releases.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!(
            "expected one kernel under {}, found {releases:?}",
            modules.display()
        )),
    }
}

/// Resolves `path` (absolute inside the unpacked tree) to a file in `root`, following
/// symbolic links within the tree (absolute link targets are taken relative to `root`).
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let mut inside = PathBuf::from(path.trim_start_matches('/'));
    for _ in 0..16 {
        let host = root.join(&inside);
        let meta = std::fs::symlink_metadata(&host).ok()?;
        if !meta.file_type().is_symlink() {
            return meta.is_file().then_some(host);
        }
        let target = std::fs::read_link(&host).ok()?;
        inside = if target.is_absolute() {
            target.strip_prefix("/").ok()?.to_path_buf()
        } else {
            inside.parent()?.join(target)
        };
        inside = normalise(&inside)?;
    }
    None
}

/// Removes `.` and `..` components (None if `..` would leave the tree).
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            // `..` above the top leaves the tree.
            std::path::Component::ParentDir => out.pop().then_some(())?,
            _ => {}
        }
    }
    Some(out)
}

/// Folders the dynamic loader searches on Debian amd64 (multiarch first).
const LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib",
    "/usr/lib",
];

/// The shared libraries `program` needs, transitively: soname → file in `root`.
fn library_closure(root: &Path, program: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let mut found = BTreeMap::new();
    let mut queue = vec![program.to_path_buf()];
    while let Some(file) = queue.pop() {
        let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        for soname in elf::needed(&bytes).map_err(|e| format!("{}: {e}", file.display()))? {
            if found.contains_key(&soname) {
                continue;
            }
            let path = LIBRARY_DIRS
                .iter()
                .find_map(|d| resolve(root, &format!("{d}/{soname}")))
                .ok_or_else(|| {
                    format!(
                        "{} needs {soname}, which none of the downloaded packages ({}) holds",
                        file.display(),
                        debian::USER_PACKAGES.join(", ")
                    )
                })?;
            queue.push(path.clone());
            found.insert(soname, path);
        }
    }
    Ok(found)
}

/// A module's file contents, decompressed if the package ships it compressed.
fn module_bytes(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".ko.xz") {
        Some("xz")
    } else if name.ends_with(".ko.zst") {
        Some("zstd")
    } else {
        None
    };
    match tool {
        None => std::fs::read(path).map_err(|e| format!("{}: {e}", path.display())),
        Some(tool) => {
            let out = std::process::Command::new(tool)
                .args(["-dc"])
                .arg(path)
                .output()
                .map_err(|e| format!("cannot run {tool} for {}: {e}", path.display()))?;
            if !out.status.success() {
                return Err(format!("{tool} -dc {} failed", path.display()));
            }
            Ok(out.stdout)
        }
    }
}

/// The module name of a file name (`virtio-rng.ko.xz` → `virtio_rng`).
fn module_name(file: &str) -> Option<String> {
    let stem = file
        .strip_suffix(".ko")
        .or_else(|| file.strip_suffix(".ko.xz"))
        .or_else(|| file.strip_suffix(".ko.zst"))?;
    Some(stem.replace('-', "_"))
}

/// Every loadable module under `dir`: name → file.
fn module_index(dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let mut index = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let path = e.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(module_name)
            {
                index.insert(name, path);
            }
        }
    }
    Ok(index)
}

/// The modules to load for `wanted`, dependencies first, each once; `depends` gives a
/// module's direct dependencies; modules in `builtin` are skipped.
pub fn load_order(
    wanted: &[&str],
    builtin: &[String],
    depends: &mut dyn FnMut(&str) -> Result<Vec<String>>,
) -> Result<Vec<String>> {
    fn visit(
        name: &str,
        builtin: &[String],
        depends: &mut dyn FnMut(&str) -> Result<Vec<String>>,
        path: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> Result<()> {
        if order.iter().any(|m| m == name) || builtin.iter().any(|b| b == name) {
            return Ok(());
        }
        if path.iter().any(|m| m == name) {
            return Err(format!(
                "module dependency cycle: {} -> {name}",
                path.join(" -> ")
            ));
        }
        path.push(name.to_string());
        for dep in depends(name)? {
            visit(&dep, builtin, depends, path, order)?;
        }
        path.pop();
        order.push(name.to_string());
        Ok(())
    }
    let mut order = Vec::new();
    for w in wanted {
        visit(w, builtin, depends, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

/// The names of the modules built into the kernel (`modules.builtin`).
fn builtin_modules(modules: &Path) -> Vec<String> {
    std::fs::read_to_string(modules.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.rsplit('/').next().and_then(module_name))
        .collect()
}

/// The initramfs for the unpacked tree `root` and kernel `release`.
fn initramfs(root: &Path, release: &str) -> Result<Vec<u8>> {
    let mut w = cpio::Writer::new();
    for d in [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "usr",
        "usr/bin",
        "lib",
        "lib64",
        "lib/x86_64-linux-gnu",
        "lib/modules",
        "mnt",
    ] {
        w.dir(d, if d == "tmp" { 0o1777 } else { 0o755 });
    }
    w.char_device("dev/console", 0o600, 5, 1);
    w.char_device("dev/null", 0o666, 1, 3);
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));

    let busybox = resolve(root, "/bin/busybox").ok_or("busybox-static has no /bin/busybox")?;
    w.file("bin/busybox", 0o755, &read(&busybox)?);

    let iperf3 = resolve(root, "/usr/bin/iperf3").ok_or("iperf3 has no /usr/bin/iperf3")?;
    let iperf3_bytes = read(&iperf3)?;
    let interp = elf::interpreter(&iperf3_bytes)?.ok_or("iperf3 has no program interpreter")?;
    let loader = resolve(root, &interp)
        .ok_or_else(|| format!("the loader {interp} is not in the downloaded libc6"))?;
    w.file(&interp, 0o755, &read(&loader)?);
    w.file("usr/bin/iperf3", 0o755, &iperf3_bytes);
    for (soname, path) in library_closure(root, &iperf3)? {
        w.file(
            &format!("lib/x86_64-linux-gnu/{soname}"),
            0o755,
            &read(&path)?,
        );
    }

    let modules = root.join("lib/modules").join(release);
    let index = module_index(&modules.join("kernel"))?;
    let builtin = builtin_modules(&modules);
    let order = load_order(GUEST_MODULES, &builtin, &mut |name| {
        let path = index
            .get(name)
            .ok_or_else(|| format!("module {name} is not in Linux {release}"))?;
        let info =
            elf::modinfo(&module_bytes(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(elf::depends(&info))
    })?;
    let mut files = Vec::new();
    for name in &order {
        let file = format!("{name}.ko");
        w.file(
            &format!("lib/modules/{file}"),
            0o644,
            &module_bytes(&index[name])?,
        );
        files.push(file);
    }
    w.file("init", 0o755, init::script(&files).as_bytes());
    w.file(
        &format!("bin/{}", init::DISK_BENCH),
        0o755,
        init::disk_bench_script().as_bytes(),
    );
    Ok(w.finish())
}

/// A boot of `guest` with `nic` on network back end `mode` (user networking forwards
/// host port `host_port` to the guest's iperf3 port), printing `STAT` lines every
/// `stat_ms` ms; the rest (machine, CPU, memory, timeout) as for a Tessera system.
pub fn boot(
    guest: &Guest,
    nic: Nic,
    mode: Mode,
    host_port: u16,
    stat_ms: u32,
    log: PathBuf,
) -> Result<Boot> {
    let mut boot = Boot::new(guest.kernel.clone(), guest.initramfs.clone(), log);
    boot.append = Some(command_line(stat_ms));
    let backend = match mode {
        Mode::User => format!(
            "user,id=n0,hostfwd=tcp:127.0.0.1:{host_port}-{}:{}",
            init::GUEST_ADDRESS,
            init::IPERF_PORT
        ),
        Mode::Tap => {
            net::require_root()?;
            format!(
                "tap,id=n0,ifname={},script=no,downscript=no",
                net::tap_name(0)
            )
        }
    };
    boot.extra = vec![
        "-device".into(),
        format!("{},netdev=n0", nic.qemu_model()),
        "-netdev".into(),
        backend,
    ];
    Ok(boot)
}

/// How `cargo xtask linux run` boots the guest.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The NIC.
    pub nic: Nic,
    /// The network back end.
    pub mode: Mode,
    /// Under user networking: the host port forwarded to the guest's iperf3.
    pub host_port: u16,
    /// Period of the `STAT` lines in ms (0: none).
    pub stat_ms: u32,
    /// QEMU is stopped after this long.
    pub timeout: std::time::Duration,
}

/// `cargo xtask linux run`: builds the guest and boots it on this terminal.
pub fn run(options: &RunOptions) -> Result<()> {
    use crate::qemu::Outcome;
    let guest = build()?;
    let log = target_dir().join("logs/linux.log");
    let port = options.host_port;
    let mut boot = boot(
        &guest,
        options.nic,
        options.mode,
        port,
        options.stat_ms,
        log.clone(),
    )?;
    boot.timeout = options.timeout;
    if options.mode == Mode::User {
        step(&format!(
            "host 127.0.0.1:{port} is forwarded to the guest's iperf3"
        ));
    }
    step(&format!(
        "booting Linux {} with {} (Ctrl-A X quits; serial log in {})",
        guest.release,
        options.nic.name(),
        log.display()
    ));
    // The guest never writes the debug-exit port: QEMU's own status is what comes back.
    match crate::qemu::run_interactive(&boot, crate::qemu::PipedInput::Direct)? {
        Outcome::Qemu(Some(0)) => Ok(()),
        Outcome::TimedOut => Err(format!(
            "stopped QEMU after {:?} (--timeout)",
            options.timeout
        )),
        Outcome::Exited(s) => Err(format!("QEMU failed (exit status {})", (s << 1) | 1)),
        Outcome::Qemu(code) => Err(format!("QEMU ended with {code:?} (log: {})", log.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_load_first_and_once() {
        let deps: BTreeMap<&str, Vec<String>> = [
            (
                "virtio_net",
                vec!["virtio_ring".into(), "virtio".into(), "net_failover".into()],
            ),
            ("net_failover", vec!["failover".into()]),
            ("virtio_pci", vec!["virtio_ring".into(), "virtio".into()]),
            ("virtio_ring", vec![]),
            ("virtio", vec![]),
            ("failover", vec![]),
            ("e1000e", vec!["ptp".into()]),
        ]
        .into_iter()
        .collect();
        let order = load_order(
            &["e1000e", "virtio_pci", "virtio_net"],
            &["ptp".to_string()],
            &mut |m| deps.get(m).cloned().ok_or_else(|| format!("no {m}")),
        )
        .unwrap();
        assert_eq!(
            order,
            [
                "e1000e",
                "virtio_ring",
                "virtio",
                "virtio_pci",
                "failover",
                "net_failover",
                "virtio_net"
            ]
        );
        let mut cyclic = |m: &str| -> Result<Vec<String>> {
            Ok(vec![if m == "a" { "b".into() } else { "a".into() }])
        };
        assert!(load_order(&["a"], &[], &mut cyclic).is_err());
        assert!(load_order(&["missing"], &[], &mut |m| Err(format!("no {m}"))).is_err());
    }

    #[test]
    fn module_names_drop_the_suffix_and_use_underscores() {
        assert_eq!(module_name("virtio-rng.ko").as_deref(), Some("virtio_rng"));
        assert_eq!(module_name("e1000e.ko.xz").as_deref(), Some("e1000e"));
        assert_eq!(module_name("modules.dep"), None);
    }

    #[test]
    fn links_resolve_inside_the_tree() {
        let root = std::env::temp_dir().join(format!("xtask-linux-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("lib/x86_64-linux-gnu")).unwrap();
        std::fs::create_dir_all(root.join("lib64")).unwrap();
        std::fs::write(root.join("lib/x86_64-linux-gnu/ld.so.2"), b"loader").unwrap();
        std::os::unix::fs::symlink("/lib/x86_64-linux-gnu/ld.so.2", root.join("lib64/ld.so"))
            .unwrap();
        std::os::unix::fs::symlink("ld.so.2", root.join("lib/x86_64-linux-gnu/ld.so")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/passwd", root.join("lib64/escape")).unwrap();
        let want = root.join("lib/x86_64-linux-gnu/ld.so.2");
        assert_eq!(resolve(&root, "/lib64/ld.so"), Some(want.clone()));
        assert_eq!(resolve(&root, "/lib/x86_64-linux-gnu/ld.so"), Some(want));
        assert_eq!(resolve(&root, "/lib64/escape"), None);
        assert_eq!(resolve(&root, "/lib64/none"), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn nics_parse_and_map_to_the_qemu_models_tessera_uses() {
        assert_eq!(Nic::parse("e1000e").unwrap().qemu_model(), "e1000e");
        assert_eq!(
            Nic::parse("virtio-net").unwrap().qemu_model(),
            "virtio-net-pci"
        );
        assert!(Nic::parse("rtl8139").is_err());
    }
}
