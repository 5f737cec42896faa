//! The iperf3 control-channel input generator of the `iperf-fuzz` case: a fixed-seed mix of
//! what a broken or hostile client could send on a control connection (everything the
//! server reads before the data connections: cookie, parameter length and JSON, state
//! bytes, results length and JSON), mostly wrong, sometimes right up to one field.
//!
//! The wire format (iperf3's): a 37-byte cookie (36 characters of `a-z2-7` and a NUL), then
//! the parameters as a 4-byte big-endian length and a JSON object, then state bytes from
//! the client (`TEST_END` 4, `IPERF_DONE` 16, `CLIENT_TERMINATE` 12) and the client's
//! results, length-prefixed JSON like the parameters.

/// The largest input generated, in bytes.
pub const MAX_INPUT: usize = 16 * 1024;
/// The cookie's length on the wire.
pub const COOKIE_LEN: usize = 37;

/// The generator: `fastrand`'s, seeded, so the same seed gives the same inputs.
pub use fastrand::Rng;

/// One of `items` (not empty).
fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.usize(..items.len())]
}

/// What an input is built as (for the report: which kinds made trouble).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Random bytes, no cookie.
    Random,
    /// A malformed cookie (wrong characters, no NUL, short).
    BadCookie,
    /// A valid cookie, then random bytes.
    CookieThenGarbage,
    /// A valid cookie and a parameter length that is 0, huge, or disagrees with the body.
    BadLength,
    /// A valid cookie and parameter JSON that is broken, of wrong types or out of range.
    BadParams,
    /// A valid cookie and valid parameters, then wrong or unexpected state bytes and
    /// results.
    BadStates,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 6] = [
        Kind::Random,
        Kind::BadCookie,
        Kind::CookieThenGarbage,
        Kind::BadLength,
        Kind::BadParams,
        Kind::BadStates,
    ];

    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Random => "random",
            Kind::BadCookie => "bad-cookie",
            Kind::CookieThenGarbage => "cookie+garbage",
            Kind::BadLength => "bad-length",
            Kind::BadParams => "bad-params",
            Kind::BadStates => "bad-states",
        }
    }
}

/// A well-formed cookie.
pub fn cookie(rng: &mut Rng) -> Vec<u8> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut c: Vec<u8> = (0..COOKIE_LEN - 1)
        .map(|_| ALPHABET[rng.u64(..32) as usize])
        .collect();
    c.push(0);
    c
}

fn random_bytes(rng: &mut Rng, max: u64) -> Vec<u8> {
    (0..rng.u64(..max + 1)).map(|_| rng.u64(..) as u8).collect()
}

/// The parameters a stock client sends for a one-second TCP test.
pub const VALID_PARAMS: &str = r#"{"tcp":true,"omit":0,"time":1,"num":0,"blockcount":0,"parallel":1,"len":131072,"pacing_timer":1000,"client_version":"3.12"}"#;

/// Keys the server reads, and values of every wrong shape.
const KEYS: &[&str] = &[
    "tcp",
    "udp",
    "sctp",
    "omit",
    "time",
    "num",
    "blockcount",
    "parallel",
    "len",
    "reverse",
    "bidirectional",
    "window",
    "MSS",
    "nodelay",
];
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "true",
    "false",
    "null",
    "\"\"",
    "\"x\"",
    "1e309",
    "1.5",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "128",
    "129",
    "1048576",
    "1048577",
    "86400",
    "86401",
    "[]",
    "{}",
    "[1,2,3]",
    "{\"a\":{\"b\":[]}}",
];

/// Parameter JSON, mostly wrong.
fn params(rng: &mut Rng) -> Vec<u8> {
    match rng.u64(..7) {
        // Valid keys with random values of any shape.
        0 | 1 => {
            let n = 1 + rng.u64(..8);
            let fields: Vec<String> = (0..n)
                .map(|_| format!("\"{}\":{}", pick(rng, KEYS), pick(rng, VALUES)))
                .collect();
            format!("{{{}}}", fields.join(",")).into_bytes()
        }
        // The valid parameters with one value replaced.
        2 => {
            let key = pick(rng, KEYS);
            let value = pick(rng, VALUES);
            format!("{{\"{key}\":{value},{}", &VALID_PARAMS[1..]).into_bytes()
        }
        // The valid parameters truncated.
        3 => {
            let cut = rng.u64(..VALID_PARAMS.len() as u64) as usize;
            VALID_PARAMS.as_bytes()[..cut].to_vec()
        }
        // The valid parameters with bytes flipped.
        4 => {
            let mut p = VALID_PARAMS.as_bytes().to_vec();
            for _ in 0..1 + rng.u64(..4) {
                let i = rng.u64(..p.len() as u64) as usize;
                p[i] ^= 1 << rng.u64(..8);
            }
            p
        }
        // Deep nesting, not an object, or a long string.
        5 => match rng.u64(..4) {
            0 => {
                let depth = 1 + rng.u64(..4000) as usize;
                let mut p = "[".repeat(depth);
                p.push_str(&"]".repeat(depth));
                p.into_bytes()
            }
            1 => pick(rng, &["[]", "1", "\"tcp\"", "null", "true"])
                .as_bytes()
                .to_vec(),
            2 => format!(
                "{{\"client_version\":\"{}\"}}",
                "A".repeat(rng.u64(..8000) as usize)
            )
            .into_bytes(),
            _ => {
                let depth = 1 + rng.u64(..2000) as usize;
                let mut p = "{\"a\":".repeat(depth);
                p.push('1');
                p.push_str(&"}".repeat(depth));
                p.into_bytes()
            }
        },
        // The valid parameters (the trouble comes later, or not at all).
        _ => VALID_PARAMS.as_bytes().to_vec(),
    }
}

/// `body` behind its 4-byte big-endian length.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// The next input from `rng`, and what kind it is. Never longer than [`MAX_INPUT`].
pub fn input(rng: &mut Rng) -> (Kind, Vec<u8>) {
    let kind = pick(rng, &Kind::ALL);
    let mut out = match kind {
        Kind::Random => random_bytes(rng, 200),
        Kind::BadCookie => {
            let mut c = cookie(rng);
            match rng.u64(..4) {
                0 => c[rng.u64(..36) as usize] = pick(rng, &[b'A', b'1', b'8', b'-', 0, 0xff]),
                1 => c[36] = b'a',
                // Short, and nothing after it (a byte after could complete it).
                2 => c.truncate(rng.u64(..37) as usize),
                _ => c = random_bytes(rng, 35).into_iter().chain([0]).collect(),
            }
            if c.len() == COOKIE_LEN {
                c.extend(random_bytes(rng, 8));
            }
            c
        }
        Kind::CookieThenGarbage => {
            let mut out = cookie(rng);
            out.extend(random_bytes(rng, 300));
            out
        }
        Kind::BadLength => {
            let mut out = cookie(rng);
            let body = params(rng);
            let length: u32 = match rng.u64(..5) {
                0 => 0,
                1 => u32::MAX,
                2 => 8 * 1024 + 1 + rng.u64(..1 << 20) as u32,
                3 => body.len() as u32 + 1 + rng.u64(..100) as u32,
                _ => rng.u64(..body.len().max(1) as u64) as u32,
            };
            out.extend(length.to_be_bytes());
            out.extend(body);
            out
        }
        Kind::BadParams => {
            let mut out = cookie(rng);
            out.extend(framed(&params(rng)));
            out
        }
        Kind::BadStates => {
            let mut out = cookie(rng);
            out.extend(framed(VALID_PARAMS.as_bytes()));
            for _ in 0..1 + rng.u64(..6) {
                match rng.u64(..4) {
                    0 => out.push(pick(rng, &[4u8, 16, 12, 1, 2, 9, 10, 11, 13, 14, 15])),
                    1 => out.push(rng.u64(..) as u8),
                    2 => out.extend(framed(&params(rng))),
                    _ => out.extend(rng.u64(..u64::from(u32::MAX)).to_be_bytes()[4..].to_vec()),
                }
            }
            out
        }
    };
    out.truncate(MAX_INPUT);
    (kind, out)
}

/// The `index`th input of the run with `seed` (each index has its own generator, so a
/// run can start anywhere and one input can be reproduced alone).
pub fn nth(seed: u64, index: u64) -> (Kind, Vec<u8>) {
    let mut rng = Rng::with_seed(seed ^ index.wrapping_mul(0x2545_f491_4f6c_dd1d));
    input(&mut rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_deterministic_bounded_and_of_every_kind() {
        let mut seen = [0u32; 6];
        for i in 0..5000 {
            let (kind, bytes) = nth(42, i);
            assert_eq!(nth(42, i), (kind, bytes.clone()));
            assert!(bytes.len() <= MAX_INPUT);
            seen[Kind::ALL.iter().position(|k| *k == kind).unwrap()] += 1;
        }
        assert!(seen.iter().all(|n| *n > 500), "{seen:?}");
        assert_ne!(nth(42, 1), nth(43, 1));
    }

    #[test]
    fn cookies_follow_the_wire_format() {
        let mut rng = Rng::with_seed(1);
        let c = cookie(&mut rng);
        assert_eq!(c.len(), COOKIE_LEN);
        assert_eq!(c[36], 0);
        assert!(c[..36]
            .iter()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(b)));
    }

    #[test]
    fn kinds_have_the_shape_they_claim() {
        let valid_cookie = |b: &[u8]| {
            b.len() >= COOKIE_LEN
                && b[36] == 0
                && b[..36]
                    .iter()
                    .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(c))
        };
        for i in 0..2000 {
            let (kind, bytes) = nth(7, i);
            match kind {
                Kind::BadCookie => assert!(!valid_cookie(&bytes), "{i}: {bytes:?}"),
                Kind::CookieThenGarbage | Kind::BadLength | Kind::BadParams => {
                    assert!(valid_cookie(&bytes), "{i}")
                }
                Kind::BadStates => {
                    assert!(valid_cookie(&bytes), "{i}");
                    // The valid parameters follow, framed.
                    let len = u32::from_be_bytes(bytes[37..41].try_into().unwrap()) as usize;
                    assert_eq!(len, VALID_PARAMS.len());
                    assert_eq!(&bytes[41..41 + len], VALID_PARAMS.as_bytes());
                }
                Kind::Random => {}
            }
        }
    }

    #[test]
    fn the_valid_parameters_are_json_the_server_accepts_in_shape() {
        let v: serde_json::Value = serde_json::from_str(VALID_PARAMS).unwrap();
        assert_eq!(v["tcp"], true);
        assert_eq!(v["parallel"], 1);
    }
}
