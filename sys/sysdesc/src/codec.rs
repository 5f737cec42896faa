//! The compact form packed into the boot image: [`MAGIC`], [`FORMAT_VERSION`] as a
//! little-endian `u16`, then the [`System`] in postcard.

use alloc::vec::Vec;
use core::fmt;

use crate::model::System;
use crate::validate::Problem;

/// The first four bytes of a packed description.
pub const MAGIC: [u8; 4] = *b"TSYS";

/// The version of the compact form; bump it whenever the model's shape changes.
pub const FORMAT_VERSION: u16 = 1;

const HEADER_LEN: usize = MAGIC.len() + 2;

/// Why a packed description was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the header.
    Truncated,
    /// The bytes do not start with [`MAGIC`]: not a system description.
    BadMagic,
    /// Packed by a build tool speaking another version of the format.
    WrongVersion {
        /// The version in the blob.
        found: u16,
        /// The version this decoder reads.
        expected: u16,
    },
    /// The body is not a well-formed system.
    Malformed,
    /// Bytes left over after the system.
    TrailingBytes,
    /// Well-formed but breaks the rules; the problems say which.
    Invalid(Vec<Problem>),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("system description: truncated header"),
            DecodeError::BadMagic => f.write_str("system description: bad magic (not a packed description)"),
            DecodeError::WrongVersion { found, expected } => write!(
                f,
                "system description: format version {found}, this root task reads version {expected}; rebuild the image"
            ),
            DecodeError::Malformed => f.write_str("system description: malformed body"),
            DecodeError::TrailingBytes => f.write_str("system description: trailing bytes after the body"),
            DecodeError::Invalid(problems) => {
                write!(f, "system description: {} rule(s) broken", problems.len())?;
                if let Some(first) = problems.first() {
                    write!(f, ", first: {}", first.message)?;
                }
                Ok(())
            }
        }
    }
}

impl System {
    /// Packs the system into its compact form: header, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        // Serialising owned strings, integers and vectors into a Vec cannot fail.
        let body = postcard::to_allocvec(self).unwrap_or_default();
        out.extend_from_slice(&body);
        out
    }

    /// Unpacks and validates a compact form made by [`System::encode`]. Never panics, whatever
    /// the bytes.
    pub fn decode(bytes: &[u8]) -> Result<System, DecodeError> {
        if bytes.len() < HEADER_LEN {
            return Err(
                if bytes.len() >= MAGIC.len() && bytes[..MAGIC.len()] != MAGIC {
                    DecodeError::BadMagic
                } else {
                    DecodeError::Truncated
                },
            );
        }
        let (magic, rest) = bytes.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let (version, body) = rest.split_at(2);
        let found = u16::from_le_bytes([version[0], version[1]]);
        if found != FORMAT_VERSION {
            return Err(DecodeError::WrongVersion {
                found,
                expected: FORMAT_VERSION,
            });
        }
        let (system, left) =
            postcard::take_from_bytes::<System>(body).map_err(|_| DecodeError::Malformed)?;
        if !left.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        system.validate().map_err(DecodeError::Invalid)?;
        Ok(system)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Component, RestartPolicy, FUNDAMENTAL};
    use alloc::collections::BTreeMap;
    use alloc::string::{String, ToString};
    use alloc::vec;

    fn component(name: &str, fundamental: bool) -> Component {
        Component {
            name: name.to_string(),
            binary: name.to_string(),
            priority: 100,
            memory: 1 << 20,
            fundamental,
            provides: vec![],
            routes: vec![],
            devices: vec![],
            shared: vec![],
            restart: RestartPolicy::Never,
            args: BTreeMap::new(),
        }
    }

    /// A small valid system built without the TOML front end.
    fn sample() -> System {
        let mut components: Vec<Component> =
            FUNDAMENTAL.iter().map(|n| component(n, true)).collect();
        let mut hello = component("hello", false);
        hello.routes = vec![String::from("memory")];
        hello.restart = RestartPolicy::Always {
            max: 3,
            backoff_ms: 100,
        };
        hello.args.insert("greeting".to_string(), "hi".to_string());
        components.push(hello);
        System {
            name: "sample".to_string(),
            description: "built in a test".to_string(),
            memory: 256 << 20,
            components,
            devices: vec![],
            shared: vec![],
        }
    }

    /// xorshift64*: deterministic pseudo-random bytes without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn sample_is_valid() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn round_trip() {
        let system = sample();
        let bytes = system.encode();
        assert_eq!(&bytes[..4], b"TSYS");
        assert_eq!(System::decode(&bytes), Ok(system));
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            let result = System::decode(&bytes[..len]);
            assert!(result.is_err(), "prefix of {len} bytes accepted");
            if len < HEADER_LEN {
                assert_eq!(result, Err(DecodeError::Truncated));
            }
        }
    }

    #[test]
    fn bad_magic_wrong_version_and_trailing_bytes() {
        let bytes = sample().encode();
        let mut other = bytes.clone();
        other[0] = b'X';
        assert_eq!(System::decode(&other), Err(DecodeError::BadMagic));
        let mut other = bytes.clone();
        other[4..6].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        assert_eq!(
            System::decode(&other),
            Err(DecodeError::WrongVersion {
                found: FORMAT_VERSION + 1,
                expected: FORMAT_VERSION
            })
        );
        assert!(DecodeError::WrongVersion {
            found: 2,
            expected: 1
        }
        .to_string()
        .contains("format version 2"));
        let mut other = bytes;
        other.push(0);
        assert_eq!(System::decode(&other), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn invalid_system_is_rejected_after_decoding() {
        let mut system = sample();
        system.components.remove(1); // proc
        let result = System::decode(&system.encode());
        match result {
            Err(DecodeError::Invalid(problems)) => {
                assert!(problems[0]
                    .message
                    .contains("missing fundamental component \"proc\""))
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for round in 0..20_000 {
            let len = (rng.next() % 96) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Half the time give it a good header so the body parser is exercised.
            if round % 2 == 0 && len >= HEADER_LEN {
                bytes[..4].copy_from_slice(&MAGIC);
                bytes[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
            }
            let _ = System::decode(&bytes);
        }
    }

    #[test]
    fn mutated_blobs_never_panic() {
        let good = sample().encode();
        let mut rng = Rng(0x0dd_ba11);
        for _ in 0..20_000 {
            let mut bytes = good.clone();
            for _ in 0..1 + rng.next() % 4 {
                let at = HEADER_LEN + (rng.next() as usize) % (bytes.len() - HEADER_LEN);
                bytes[at] = rng.next() as u8;
            }
            if let Ok(system) = System::decode(&bytes) {
                assert_eq!(system.validate(), Ok(()));
            }
        }
    }
}
