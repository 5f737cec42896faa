//! The store's settings, from the component's arguments in the system description.
//!
//! | argument | meaning | default |
//! |---|---|---|
//! | `max_keys` | keys one client may hold (1..=64) | 8 |
//! | `max_message` | bytes one `sign` may carry (1..=[`MAX_MESSAGE`]) | [`MAX_MESSAGE`] |
//! | `max_total` | keys the whole store holds (1..=4096) | 256 |
//! | `seed` | 64 hex digits mixed into the generator's seed | none |
//! | `plant` | `ID:LABEL:HEX64`: a key with a known secret for client `ID` (tests only) | none |
//! | `store` | a directory of the file service to seal keys into (needs `seed`) | none: keys in memory |
//! | `clients` | `ID:NAME,...`: each client's component name, which sealed keys are bound to | none |
//!
//! xtask fills `clients = "routed"` with every component routed to the key store, so the
//! description names them once.
//!
//! `plant` exists so a test can know a secret the store holds without the store ever exporting
//! it (the IPC fuzzer checks that no reply contains a piece of it). A planted secret is in the
//! boot image in the clear: never plant a key that matters.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use proto::keystore::MAX_MESSAGE;
use proto::{ComponentId, Name};
use zeroize::Zeroizing;

/// Per-client and store-wide limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Keys one client may hold.
    pub max_keys: usize,
    /// Bytes one `sign` request may carry.
    pub max_message: usize,
    /// Keys the whole store may hold.
    pub max_total: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_keys: 8,
            max_message: MAX_MESSAGE,
            max_total: 256,
        }
    }
}

/// A key whose secret the description gives (argument `plant`).
pub struct Planted {
    /// The client that owns it.
    pub owner: ComponentId,
    /// Its label.
    pub label: Name,
    /// Its secret (the RFC 8032 seed).
    pub seed: Zeroizing<[u8; 32]>,
}

/// Everything the arguments say.
pub struct Config {
    /// The limits.
    pub limits: Limits,
    /// A seed to mix into the generator's.
    pub seed: Option<Zeroizing<[u8; 32]>>,
    /// A planted key, if any.
    pub planted: Option<Planted>,
    /// The directory sealed keys are kept in, if any.
    pub store: Option<String>,
    /// Each client's component name.
    pub clients: Vec<(ComponentId, Name)>,
}

/// An argument is not valid; the text says which and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError(pub &'static str);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Parses a number argument in `min..=max`; its default when absent.
fn number(
    arg: Option<&str>,
    default: usize,
    min: usize,
    max: usize,
    why: &'static str,
) -> Result<usize, ConfigError> {
    match arg {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError(why)),
        },
    }
}

/// 32 bytes from 64 hex digits.
fn hex32(text: &str) -> Option<Zeroizing<[u8; 32]>> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = Zeroizing::new([0u8; 32]);
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let nibble = |c: u8| (c as char).to_digit(16);
        *byte = (nibble(pair[0])? * 16 + nibble(pair[1])?) as u8;
    }
    Some(out)
}

impl Config {
    /// The settings `arg` (argument name to value) gives, or the first invalid argument.
    pub fn from_args<'a>(arg: impl Fn(&str) -> Option<&'a str>) -> Result<Config, ConfigError> {
        let limits = Limits {
            max_keys: number(arg("max_keys"), 8, 1, 64, "max_keys: not 1..=64")?,
            max_message: number(
                arg("max_message"),
                MAX_MESSAGE,
                1,
                MAX_MESSAGE,
                "max_message: not 1..=112",
            )?,
            max_total: number(arg("max_total"), 256, 1, 4096, "max_total: not 1..=4096")?,
        };
        let seed = match arg("seed") {
            None => None,
            Some(text) => Some(hex32(text).ok_or(ConfigError("seed: not 64 hex digits"))?),
        };
        let planted = match arg("plant") {
            None => None,
            Some(text) => {
                let bad = ConfigError("plant: not ID:LABEL:HEX64");
                let mut parts = text.split(':');
                let (Some(id), Some(label), Some(secret), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(bad);
                };
                Some(Planted {
                    owner: ComponentId(id.parse().map_err(|_| bad)?),
                    label: Name::new(label).map_err(|_| bad)?,
                    seed: hex32(secret).ok_or(bad)?,
                })
            }
        };
        let store = match arg("store") {
            None => None,
            Some(dir) if dir.starts_with('/') && dir.len() > 1 && seed.is_some() => {
                Some(String::from(dir))
            }
            Some(dir) if !dir.starts_with('/') || dir.len() == 1 => {
                return Err(ConfigError("store: not an absolute directory below /"))
            }
            Some(_) => return Err(ConfigError("store: needs a seed to derive the sealing key")),
        };
        let mut clients = Vec::new();
        for pair in arg("clients")
            .unwrap_or("")
            .split(',')
            .filter(|p| !p.is_empty())
        {
            let bad = ConfigError("clients: not ID:NAME,...");
            let (id, name) = pair.split_once(':').ok_or(bad)?;
            let id = ComponentId(id.parse().map_err(|_| bad)?);
            let name = Name::new(name).map_err(|_| bad)?;
            if clients.iter().any(|(i, n)| *i == id || *n == name) {
                return Err(ConfigError("clients: an id or name given twice"));
            }
            clients.push((id, name));
        }
        Ok(Config {
            limits,
            seed,
            planted,
            store,
            clients,
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
    fn defaults_without_arguments() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.limits, Limits::default());
        assert!(c.seed.is_none() && c.planted.is_none());
        assert!(c.store.is_none() && c.clients.is_empty());
    }

    #[test]
    fn the_store_needs_a_seed_and_clients_are_named() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let c = parse(&[
            ("seed", hex),
            ("store", "/keys"),
            ("clients", "6:signer,7:verifier"),
        ])
        .unwrap();
        assert_eq!(c.store.as_deref(), Some("/keys"));
        assert_eq!(
            c.clients,
            [
                (ComponentId(6), Name::new("signer").unwrap()),
                (ComponentId(7), Name::new("verifier").unwrap())
            ]
        );
        assert_eq!(
            parse(&[("store", "/keys")]).err(),
            Some(ConfigError("store: needs a seed to derive the sealing key"))
        );
        for bad in ["keys", "/"] {
            assert!(parse(&[("seed", hex), ("store", bad)]).is_err(), "{bad}");
        }
        for bad in ["6", "x:signer", "6:Signer", "6:a,6:b", "6:a,7:a", "routed"] {
            assert!(parse(&[("clients", bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_are_read_and_range_checked() {
        let c = parse(&[("max_keys", "2"), ("max_message", "64"), ("max_total", "3")]).unwrap();
        assert_eq!(
            c.limits,
            Limits {
                max_keys: 2,
                max_message: 64,
                max_total: 3
            }
        );
        for bad in [
            ("max_keys", "0"),
            ("max_keys", "65"),
            ("max_keys", "x"),
            ("max_message", "113"),
            ("max_total", "-1"),
        ] {
            assert!(parse(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seeds_and_planted_keys_are_hex() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let c = parse(&[("seed", hex)]).unwrap();
        let seed = c.seed.unwrap();
        assert_eq!(
            (seed[0], seed[1], seed[15], seed[31]),
            (0x00, 0x11, 0xff, 0xff)
        );
        assert!(parse(&[("seed", &hex[1..])]).is_err());
        assert!(parse(&[(
            "seed",
            "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
        )])
        .is_err());

        let plant = parse(&[(
            "plant",
            "6:planted:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        )])
        .unwrap()
        .planted
        .unwrap();
        assert_eq!(plant.owner, ComponentId(6));
        assert_eq!(plant.label, "planted");
        assert_eq!(plant.seed[2], 0x22);
        for bad in [
            "6:planted",
            "x:planted:00",
            "6:Bad:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            "6:a:b:c",
        ] {
            assert!(parse(&[("plant", bad)]).is_err(), "{bad}");
        }
    }
}
