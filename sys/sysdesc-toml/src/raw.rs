//! The TOML document as written, every value kept with its span so that problems found later
//! can point at it. Values that take several shapes (sizes, `restart`, `irq`) have hand-written
//! visitors: serde's untagged enums would buffer the value and lose the spans.

use std::collections::BTreeMap;
use std::fmt;
use std::string::String;
use std::vec::Vec;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub system: Spanned<RawSystem>,
    #[serde(default)]
    pub component: Vec<RawComponent>,
    #[serde(default)]
    pub device: Vec<RawDevice>,
    #[serde(default)]
    pub shared: Vec<RawShared>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSystem {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    pub memory: Spanned<RawSize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawComponent {
    pub name: Spanned<String>,
    pub binary: Option<Spanned<String>>,
    pub priority: Spanned<i64>,
    pub memory: Spanned<RawSize>,
    pub fundamental: Option<Spanned<bool>>,
    #[serde(default)]
    pub provides: Vec<Spanned<String>>,
    #[serde(default)]
    pub routes: Vec<Spanned<String>>,
    #[serde(default)]
    pub devices: Vec<Spanned<String>>,
    #[serde(default)]
    pub shared: Vec<Spanned<String>>,
    pub restart: Option<Spanned<RawRestart>>,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDevice {
    pub name: Spanned<String>,
    pub pci: Option<Spanned<String>>,
    pub class: Option<Spanned<String>>,
    pub ioport: Option<Spanned<String>>,
    pub mmio: Option<Spanned<String>>,
    pub index: Option<Spanned<i64>>,
    pub irq: Option<Spanned<RawIrq>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShared {
    pub name: Spanned<String>,
    pub size: Spanned<RawSize>,
}

/// A size as written: `"64KiB"` or a number of bytes.
pub(crate) enum RawSize {
    Text(String),
    Bytes(i64),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"64KiB\", \"4MiB\" or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawSize, E> {
                i64::try_from(v)
                    .map(RawSize::Bytes)
                    .map_err(|_| E::custom("size too large"))
            }
        }
        d.deserialize_any(V)
    }
}

/// `restart` as written: `"never"`/`"always"`, or a table with `policy`, `max`, `backoff_ms`.
pub(crate) struct RawRestart {
    pub policy: Spanned<String>,
    pub max: Option<Spanned<i64>>,
    pub backoff_ms: Option<Spanned<i64>>,
    /// Whether it was written as a bare string.
    pub bare: bool,
}

impl<'de> Deserialize<'de> for RawRestart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRestart;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"never\" or { policy = \"always\", max = N, backoff_ms = N }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawRestart, E> {
                Ok(RawRestart {
                    policy: Spanned::new(0..0, v.into()),
                    max: None,
                    backoff_ms: None,
                    bare: true,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRestart, A::Error> {
                let (mut policy, mut max, mut backoff_ms) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "policy" if policy.is_none() => policy = Some(map.next_value()?),
                        "max" if max.is_none() => max = Some(map.next_value()?),
                        "backoff_ms" if backoff_ms.is_none() => {
                            backoff_ms = Some(map.next_value()?)
                        }
                        "policy" | "max" | "backoff_ms" => {
                            return Err(de::Error::duplicate_field("restart key"))
                        }
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["policy", "max", "backoff_ms"],
                            ))
                        }
                    }
                }
                let policy = policy.ok_or_else(|| de::Error::missing_field("policy"))?;
                Ok(RawRestart {
                    policy,
                    max,
                    backoff_ms,
                    bare: false,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `irq` as written: a kind, or `{ ioapic = N }` / `{ pic = N }`.
pub(crate) enum RawIrq {
    Kind(String),
    Line { kind: String, line: i64 },
}

impl<'de> Deserialize<'de> for RawIrq {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawIrq;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"msi\", \"ioapic\", \"pic\", \"legacy\", { ioapic = N } or { pic = N }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawIrq, E> {
                Ok(RawIrq::Kind(v.into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawIrq, A::Error> {
                let one_key =
                    "irq table takes exactly one key, ioapic or pic, such as { ioapic = 4 }";
                let Some(kind) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(one_key));
                };
                if kind != "ioapic" && kind != "pic" {
                    return Err(de::Error::unknown_field(&kind, &["ioapic", "pic"]));
                }
                let line: i64 = map.next_value()?;
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(one_key));
                }
                Ok(RawIrq::Line { kind, line })
            }
        }
        d.deserialize_any(V)
    }
}
