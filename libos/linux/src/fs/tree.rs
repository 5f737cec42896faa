//! The read-only file tree and path spelling.

use alloc::collections::BTreeMap;
use alloc::string::String;

/// A node of the read-only tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file and its bytes.
    File(&'static [u8]),
    /// A directory (its entries are the nodes below it).
    Dir,
    /// A symbolic link and its target.
    Link(String),
}

/// The read-only tree, by absolute path (`/usr/bin/iperf3`; the root is `/`).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

impl Tree {
    /// An empty tree (just `/`).
    pub fn new() -> Tree {
        let mut nodes = BTreeMap::new();
        nodes.insert(String::from("/"), Node::Dir);
        Tree { nodes }
    }

    /// Adds `node` at `path` (absolute, `/`-separated, no `.` or `..`), creating the
    /// directories above it. A later node at the same path replaces the earlier one.
    pub fn add(&mut self, path: &str, node: Node) {
        let path = normal(path);
        let mut at = 0;
        while let Some(i) = path[at + 1..].find('/') {
            at += i + 1;
            self.nodes
                .entry(String::from(&path[..at]))
                .or_insert(Node::Dir);
        }
        self.nodes.insert(path, node);
    }

    /// The node at `path` exactly (no link followed).
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Names and nodes directly inside the directory `path`.
    pub fn children<'a>(&'a self, path: &str) -> impl Iterator<Item = (&'a str, &'a Node)> {
        let prefix = if path == "/" {
            String::from("/")
        } else {
            alloc::format!("{path}/")
        };
        let len = prefix.len();
        self.nodes
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(move |(k, n)| (&k[len..], n))
            .filter(|(name, _)| !name.is_empty() && !name.contains('/'))
    }
}

/// Removes duplicate and trailing slashes.
pub(super) fn normal(path: &str) -> String {
    let mut out = String::from("/");
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push_str(part);
    }
    out
}

pub(super) fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        alloc::format!("/{name}")
    } else {
        alloc::format!("{dir}/{name}")
    }
}

pub(super) fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// An FNV-1a hash of the path: a stable inode number.
pub(super) fn inode(path: &str) -> u64 {
    path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    }) | 1
}
