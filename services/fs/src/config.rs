//! The service's settings, from the component's arguments in the system description.
//!
//! | argument | meaning | default |
//! |---|---|---|
//! | `roots` | `REGION:PATH` pairs separated by `,`: the client attached over shared region `REGION` sees only the directory `PATH` (`/` for the whole volume) | none (no client) |
//! | `max_open` | files one client may hold open (1..=1024) | 16 |
//! | `cache_sectors` | sectors the block cache holds (4..=65536) | 256 |
//! | `blk_region` | the shared region over which the component attaches to `blk` | `fs-blk` |
//!
//! Example: `args = { roots = "editor-fs:/editor,indexer-fs:/shared", max_open = "8" }`.

use alloc::vec::Vec;
use core::fmt;
use libos_fat::Path;
use proto::Name;

/// The most clients (regions) one service serves.
pub const MAX_CLIENTS: usize = 64;

/// One client's place: the region it attaches over and the directory it is confined to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    /// The shared region.
    pub region: Name,
    /// The directory, from the volume's root.
    pub path: Path,
}

/// Everything the arguments say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Each client's region and root.
    pub roots: Vec<Root>,
    /// Files one client may hold open.
    pub max_open: usize,
    /// Sectors the block cache holds.
    pub cache_sectors: usize,
    /// The region shared with `blk` (the component's disk).
    pub blk_region: Name,
}

/// An argument is not valid; the text says which and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError(pub &'static str);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

fn number(
    arg: Option<&str>,
    default: usize,
    range: core::ops::RangeInclusive<usize>,
    why: &'static str,
) -> Result<usize, ConfigError> {
    match arg {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ConfigError(why)),
        },
    }
}

/// A root directory as the description writes it: `/` or `/a/b` (a leading `/` required).
pub fn parse_root(text: &str) -> Option<Path> {
    let inner = text.strip_prefix('/')?;
    Path::parse(inner).ok()
}

impl Config {
    /// The settings `arg` (argument name to value) gives, or the first invalid argument.
    pub fn from_args<'a>(arg: impl Fn(&str) -> Option<&'a str>) -> Result<Config, ConfigError> {
        let mut roots: Vec<Root> = Vec::new();
        if let Some(text) = arg("roots") {
            for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
                let bad = ConfigError("roots: not REGION:/PATH,...");
                let (region, path) = pair.trim().split_once(':').ok_or(bad)?;
                let region = Name::new(region).map_err(|_| bad)?;
                let path = parse_root(path).ok_or(ConfigError(
                    "roots: a path must start with / and hold no ., .. or empty names",
                ))?;
                if roots.iter().any(|r| r.region == region) {
                    return Err(ConfigError("roots: a region is named twice"));
                }
                if roots.len() == MAX_CLIENTS {
                    return Err(ConfigError("roots: more than 64 clients"));
                }
                roots.push(Root { region, path });
            }
        }
        Ok(Config {
            roots,
            max_open: number(arg("max_open"), 16, 1..=1024, "max_open: not 1..=1024")?,
            cache_sectors: number(
                arg("cache_sectors"),
                256,
                4..=65536,
                "cache_sectors: not 4..=65536",
            )?,
            blk_region: Name::new(arg("blk_region").unwrap_or("fs-blk"))
                .map_err(|_| ConfigError("blk_region: not a region name"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        Config::from_args(|key| args.iter().find(|(k, _)| *k == key).map(|(_, v)| *v))
    }

    #[test]
    fn roots_and_limits_parse() {
        let c = parse(&[
            ("roots", "editor-fs:/editor, indexer-fs:/shared/index,all:/"),
            ("max_open", "8"),
        ])
        .unwrap();
        assert_eq!(c.roots.len(), 3);
        assert_eq!(c.roots[0].region, "editor-fs");
        assert_eq!(c.roots[1].path.as_str(), "shared/index");
        assert!(c.roots[2].path.is_root());
        assert_eq!((c.max_open, c.cache_sectors), (8, 256));
        assert_eq!(parse(&[]).unwrap().roots, []);
        assert_eq!(c.blk_region, "fs-blk");
        let other = parse(&[("blk_region", "disk-b")]).unwrap();
        assert_eq!(other.blk_region, "disk-b");
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        for (key, value) in [
            ("roots", "editor-fs"),
            ("roots", "Editor:/x"),
            ("roots", "editor:x"),
            ("roots", "editor:/../x"),
            ("roots", "editor:/a//b"),
            ("roots", "editor:/a/"),
            ("roots", "a:/x,a:/y"),
            ("max_open", "0"),
            ("max_open", "many"),
            ("cache_sectors", "2"),
            ("blk_region", "Disk"),
        ] {
            assert!(parse(&[(key, value)]).is_err(), "{key}={value}");
        }
    }
}
