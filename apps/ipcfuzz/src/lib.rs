//! The logic of the `ipcfuzz` component, host-tested: a fixed-seed generator of malformed and
//! random requests for each service it is routed to, and the rule every reply must follow.
//!
//! A request is a [`Raw`] message: any label, 0..=120 words (the IPC buffer's size; more than
//! [`proto::MAX_WORDS`] reach a server as [`proto::OVERSIZED`]) and 0..=3 extra capabilities.
//! [`expectation`] says what the server may answer, from the interface's own checked decoding
//! ([`proto`]'s `Request::decode`), seen both with and without the capability (whether one
//! arrives depends on the server's receive slot): a request that decodes in neither view must
//! get exactly `Malformed`; any other may get `Ok` or one of the interface's declared errors.
//! Error replies carry no words and no capability.
//!
//! Requests that would end the caller or the system, or disturb the console, are never sent
//! as valid: [`neuter`] gives them a spare word, which the server must reject as `Malformed`.
//! That covers proc's `exit`, `halt`, `kill` and `spawn` (kill/spawn of a real component would
//! stop or start one under the test's feet) and console `write` (random bytes on the serial
//! line would garble the log the tests read), and the key store's `delete` (which would take
//! away the planted key the run signs with).
//!
//! For the key store, [`secret_windows`] and [`leaks`] check that no reply holds any 8 bytes
//! of a planted key's secret, which the fuzzer knows from its description, not from the store.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use proto::{devices, keystore, memory, naming, proc, Message, MAX_WORDS, OVERSIZED};

/// The bits of a label seL4 carries on this configuration (`MessageInfo`'s label field); the
/// component checks this against the kernel's bindings.
pub const LABEL_MASK: u64 = 0xf_ffff;
/// The most words a message can have: the IPC buffer's message registers.
pub const MAX_IPC_WORDS: usize = 120;
/// Messages sent to each service unless the component's `count` arg says otherwise.
pub const MESSAGES: u32 = 1000;
/// From this many messages per service on, the component prints a progress line every tenth.
pub const PROGRESS_FROM: u32 = 10_000;

/// A small fixed-seed generator (SplitMix64): the same run every boot, no `rand` needed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// One of `items` (not empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The services ipcfuzz talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// `proto::naming`.
    Naming,
    /// `proto::proc`.
    Proc,
    /// `proto::memory` and `proto::memory::supervise`.
    Memory,
    /// `proto::devices` and `proto::devices::ports`.
    Devices,
    /// `proto::console`, served by `serial`.
    Serial,
    /// `proto::keystore`.
    Keystore,
}

impl Service {
    /// Every service, in the order they are exercised.
    pub const ALL: [Service; 6] = [
        Service::Naming,
        Service::Proc,
        Service::Memory,
        Service::Devices,
        Service::Serial,
        Service::Keystore,
    ];

    /// The service's name in naming (and in the `CHECK` line).
    pub fn name(self) -> &'static str {
        match self {
            Service::Naming => "naming",
            Service::Proc => "proc",
            Service::Memory => "memory",
            Service::Devices => "devices",
            Service::Serial => "serial",
            Service::Keystore => "keystore",
        }
    }

    /// Each operation's label and the shape of its arguments.
    fn ops(self) -> &'static [(u64, &'static [Field])] {
        use Field::*;
        match self {
            Service::Naming => &[(1, &[Name, Cap]), (2, &[Name]), (3, &[Name]), (4, &[U16])],
            Service::Proc => &[
                (1, &[Name]),
                (2, &[Word]),
                (3, &[U16]),
                (4, &[U16]),
                (5, &[U32]),
                (6, &[U16, U32]),
                (7, &[U32]),
            ],
            Service::Memory => &[
                (1, &[U8]),
                (2, &[Word]),
                (3, &[]),
                (4, &[U16]),
                (5, &[Name, Word]),
                (16, &[U16, U8]),
                (17, &[U16]),
            ],
            Service::Devices => &[
                (1, &[U32]),
                (2, &[Name]),
                (3, &[Name, U8, Word]),
                (4, &[Name]),
                (5, &[U8]),
                (6, &[Name]),
            ],
            Service::Serial => &[(1, &[Bytes]), (2, &[U32])],
            Service::Keystore => &[
                (1, &[Name]),
                (2, &[Handle]),
                (3, &[Handle, Payload]),
                (4, &[U32]),
                (5, &[Handle]),
                (6, &[Name]),
            ],
        }
    }
}

/// The shape of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Word,
    U8,
    U16,
    U32,
    Name,
    Bytes,
    /// A key store message: up to `proto::keystore::MAX_MESSAGE` bytes.
    Payload,
    /// A key handle: one of the hints the caller knows, or any word.
    Handle,
    Cap,
}

/// One request as sent: label (already cut to [`LABEL_MASK`]), words (up to
/// [`MAX_IPC_WORDS`]) and how many extra capabilities the message info announces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Raw {
    /// The label the server sees.
    pub label: u64,
    /// The message registers.
    pub words: Vec<u64>,
    /// Extra capabilities (0..=3).
    pub caps: u8,
}

/// Names that exist in the test system, and some that do not.
const NAMES: &[&str] = &[
    "naming",
    "proc",
    "memory",
    "devices",
    "serial",
    "shell",
    "hello",
    "ipcfuzz",
    "com1",
    "nosuch",
    "zz-fuzz_9",
    "a",
];

/// A word that is often small, sometimes a boundary, sometimes anything.
fn word(rng: &mut Rng) -> u64 {
    match rng.below(6) {
        0 => rng.below(8),
        1 => rng.below(300),
        2 => rng.pick(&[
            u64::MAX,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            0x1_0000,
            0xffff,
            0x100,
            0xff,
            1 << 63,
        ]),
        3 => rng.below(1 << 20),
        _ => rng.next_u64(),
    }
}

/// Packs `bytes` as proto does: a length word, then the bytes 8 to a word, little-endian.
fn pack(words: &mut Vec<u64>, len: u64, bytes: &[u8]) {
    words.push(len);
    for chunk in bytes.chunks(8) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        words.push(u64::from_le_bytes(b));
    }
}

/// A name argument: mostly wrong (bad length, bad characters, padding, truncated), sometimes
/// a well-formed one that may or may not exist.
fn name(rng: &mut Rng, words: &mut Vec<u64>, max: usize) {
    let pick = rng.pick(NAMES).as_bytes();
    match rng.below(9) {
        0 => words.push(0),
        1 => pack(
            words,
            (max + 1 + rng.below(200) as usize) as u64,
            &[b'a'; 40],
        ),
        2 => words.push(rng.pick(&[u64::MAX, 1 << 40, 121, 33])),
        3 => pack(words, pick.len() as u64, b"UPPER-Case-Name!"),
        4 => pack(words, 3, b"9ab"),
        5 => {
            // Right length, non-zero padding.
            let start = words.len();
            pack(words, pick.len() as u64, pick);
            if let Some(last) = words.get_mut(start + 1 + (pick.len() - 1) / 8) {
                *last |= 0x7f << 56;
            }
        }
        6 => {
            // Length says more than the words that follow.
            pack(words, 24, b"serial");
        }
        7 => {
            let random: Vec<u8> = (0..1 + rng.below(max as u64 + 8))
                .map(|_| rng.next_u64() as u8)
                .collect();
            pack(words, random.len() as u64, &random);
        }
        _ => pack(words, pick.len() as u64, pick),
    }
}

/// An integer argument of `bits` bits: mostly out of range, sometimes in range.
fn narrow(rng: &mut Rng, bits: u32) -> u64 {
    let limit = 1u64 << bits;
    match rng.below(4) {
        0 => limit + rng.below(1 << 20),
        1 => rng.pick(&[u64::MAX, limit, limit - 1, 1 << 40]),
        2 => rng.next_u64(),
        // In range: large ids and indices, rarely valid.
        _ => limit - 1 - rng.below(limit.min(1 << 12)),
    }
}

/// The arguments of an operation of this shape, mostly with out-of-range values; `Some(n)`
/// extra capabilities where one belongs (sometimes none: "none where one is expected").
fn arguments(rng: &mut Rng, shape: &[Field], words: &mut Vec<u64>, handles: &[u64]) -> u8 {
    let mut caps = 0;
    for field in shape {
        match field {
            Field::Word => words.push(word(rng)),
            Field::U8 => words.push(narrow(rng, 8)),
            Field::U16 => words.push(narrow(rng, 16)),
            Field::U32 => words.push(narrow(rng, 32)),
            Field::Name => name(rng, words, 32),
            Field::Bytes => name(rng, words, 120),
            Field::Payload => name(rng, words, keystore::MAX_MESSAGE),
            Field::Handle if !handles.is_empty() && rng.below(2) == 0 => {
                words.push(rng.pick(handles))
            }
            Field::Handle => words.push(word(rng)),
            Field::Cap => caps = rng.below(2) as u8,
        }
    }
    caps
}

/// The `index`th request to `service` from a generator: a mix of
/// - random labels (0, the largest, random, aliases of real ones) with random lengths and
///   words and 0..=3 capabilities;
/// - real operations with too few or too many words;
/// - real operations with out-of-range integers and bogus names;
/// - real operations with a capability where none belongs, or none where one does.
pub fn generate(service: Service, rng: &mut Rng) -> Raw {
    generate_with(service, rng, &[])
}

/// As [`generate`], with `handles` (of the key store's keys the caller owns) used for about
/// half of the handle arguments, so that requests reach real keys.
pub fn generate_with(service: Service, rng: &mut Rng, handles: &[u64]) -> Raw {
    let ops = service.ops();
    let (op, shape) = rng.pick(ops);
    let mut words = Vec::new();
    let (label, caps) = match rng.below(5) {
        0 => {
            let label = match rng.below(5) {
                0 => 0,
                1 => LABEL_MASK,
                2 => rng.below(32),
                3 => op | ((1 + rng.below(64)) << 20),
                _ => rng.next_u64(),
            };
            let len = match rng.below(3) {
                0 => rng.below(MAX_IPC_WORDS as u64 + 1),
                1 => MAX_IPC_WORDS as u64 - rng.below(4),
                _ => rng.below(MAX_WORDS as u64 + 2),
            };
            for _ in 0..len {
                words.push(word(rng));
            }
            (label, rng.below(4) as u8)
        }
        1 => {
            let len = rng.below(21);
            for _ in 0..len {
                words.push(word(rng));
            }
            (op, rng.below(2) as u8)
        }
        2 | 3 => {
            let caps = arguments(rng, shape, &mut words, handles);
            (op, caps)
        }
        _ => {
            let caps = arguments(rng, shape, &mut words, handles);
            let wanted = shape.contains(&Field::Cap);
            // A capability where none belongs; none where one does.
            (
                op,
                if wanted {
                    caps ^ 1
                } else {
                    1 + rng.below(3) as u8
                },
            )
        }
    };
    Raw {
        label: label & LABEL_MASK,
        words,
        caps: caps.min(3),
    }
}

/// How the server sees `raw`: `None` if it is longer than a message (it becomes
/// [`OVERSIZED`]); else the message without and with a capability.
fn views(raw: &Raw) -> Option<(Message, Option<Message>)> {
    let len = raw.words.len().min(MAX_IPC_WORDS);
    if len > MAX_WORDS {
        return None;
    }
    let m = Message::with_words(raw.label, &raw.words[..len]).ok()?;
    let with = (raw.caps > 0).then(|| m.with_cap(63));
    Some((m, with))
}

/// What decoding says about one view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decoded {
    No,
    Valid,
    /// Valid, and would end the caller or the system, or write to the console.
    Dangerous,
}

fn decode(service: Service, m: &Message) -> Decoded {
    let ok = |b: bool| if b { Decoded::Valid } else { Decoded::No };
    match service {
        Service::Naming => ok(naming::Request::decode(m).is_ok()),
        Service::Proc => match proc::Request::decode(m) {
            Ok(
                proc::Request::Exit { .. }
                | proc::Request::Halt { .. }
                | proc::Request::Kill { .. }
                | proc::Request::Spawn { .. },
            ) => Decoded::Dangerous,
            Ok(_) => Decoded::Valid,
            Err(_) => Decoded::No,
        },
        Service::Memory => {
            ok(memory::Request::decode(m).is_ok() || memory::supervise::Request::decode(m).is_ok())
        }
        Service::Devices => {
            ok(devices::Request::decode(m).is_ok() || devices::ports::Request::decode(m).is_ok())
        }
        Service::Serial => match proto::console::Request::decode(m) {
            Ok(proto::console::Request::Write { .. }) => Decoded::Dangerous,
            Ok(_) => Decoded::Valid,
            Err(_) => Decoded::No,
        },
        // Deleting would take away the planted key the run signs with.
        Service::Keystore => match keystore::Request::decode(m) {
            Ok(keystore::Request::Delete { .. }) => Decoded::Dangerous,
            Ok(_) => Decoded::Valid,
            Err(_) => Decoded::No,
        },
    }
}

/// The worst of the two views.
fn classify(service: Service, raw: &Raw) -> Decoded {
    match views(raw) {
        None => Decoded::No,
        Some((without, with)) => {
            let a = decode(service, &without);
            let b = with.map_or(Decoded::No, |m| decode(service, &m));
            if a == Decoded::Dangerous || b == Decoded::Dangerous {
                Decoded::Dangerous
            } else if a == Decoded::Valid || b == Decoded::Valid {
                Decoded::Valid
            } else {
                Decoded::No
            }
        }
    }
}

/// Makes a request that would end the caller or the system (or write to the console)
/// undecodable with a spare word; `true` if it did.
pub fn neuter(service: Service, raw: &mut Raw) -> bool {
    if classify(service, raw) != Decoded::Dangerous {
        return false;
    }
    raw.words.push(0);
    debug_assert_eq!(classify(service, raw), Decoded::No);
    true
}

/// What the server may answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Exactly `Malformed` (label 1).
    Malformed,
    /// `Ok` or one of the interface's declared errors.
    Answer,
}

/// What the server may answer to `raw` (after [`neuter`]).
pub fn expectation(service: Service, raw: &Raw) -> Expect {
    match classify(service, raw) {
        Decoded::No => Expect::Malformed,
        _ => Expect::Answer,
    }
}

/// Whether `code` is an error the service's interface declares.
fn declared(service: Service, code: u64) -> bool {
    match service {
        Service::Naming => naming::Error::ALL.iter().any(|e| *e as u64 == code),
        Service::Proc => proc::Error::ALL.iter().any(|e| *e as u64 == code),
        Service::Memory => {
            memory::Error::ALL.iter().any(|e| *e as u64 == code)
                || memory::supervise::Error::ALL
                    .iter()
                    .any(|e| *e as u64 == code)
        }
        Service::Devices => {
            devices::Error::ALL.iter().any(|e| *e as u64 == code)
                || devices::ports::Error::ALL.iter().any(|e| *e as u64 == code)
        }
        Service::Serial => proto::console::Error::ALL.iter().any(|e| *e as u64 == code),
        Service::Keystore => keystore::Error::ALL.iter().any(|e| *e as u64 == code),
    }
}

/// Every 8-byte window of a planted Ed25519 secret: its 32-byte seed and the 64 bytes
/// SHA-512 expands it into (the signing scalar before clamping, and the nonce prefix).
pub fn secret_windows(seed: &[u8; 32]) -> Vec<[u8; 8]> {
    use sha2::{Digest, Sha512};
    let expanded = Sha512::digest(seed);
    seed.windows(8)
        .chain(expanded.windows(8))
        .map(|w| {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            b
        })
        .collect()
}

/// 32 bytes from 64 hex digits (a planted key's secret in the description).
pub fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let nibble = |c: u8| (c as char).to_digit(16);
        *byte = (nibble(pair[0])? * 16 + nibble(pair[1])?) as u8;
    }
    Some(out)
}

/// Whether any 8 consecutive bytes of `reply`'s words (little-endian, at any offset) are
/// one of `windows`.
pub fn leaks(reply: &Message, windows: &[[u8; 8]]) -> bool {
    let bytes: Vec<u8> = reply.words().iter().flat_map(|w| w.to_le_bytes()).collect();
    bytes
        .windows(8)
        .any(|w| windows.iter().any(|s| s.as_slice() == w))
}

/// Why a reply broke the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// The request was undecodable but the reply was not `Malformed`.
    NotMalformed,
    /// The error code is not one the interface declares (or is `InvalidReply`, which only
    /// clients produce, or the reply did not fit a message).
    UnknownError,
    /// An error reply carried words or a capability.
    ErrorWithPayload,
}

/// Checks `reply` against what was expected; `Ok(true)` for an error reply, `Ok(false)` for
/// an `Ok` reply.
pub fn check(service: Service, expect: Expect, reply: &Message) -> Result<bool, Bad> {
    if reply.label == OVERSIZED {
        return Err(Bad::UnknownError);
    }
    match expect {
        Expect::Malformed if reply.label != 1 => return Err(Bad::NotMalformed),
        Expect::Answer if reply.label == 0 => return Ok(false),
        _ => {}
    }
    if reply.label == 3 || !declared(service, reply.label) {
        return Err(Bad::UnknownError);
    }
    if !reply.is_empty() || reply.cap.is_some() {
        return Err(Bad::ErrorWithPayload);
    }
    Ok(true)
}

/// What a run against one service saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages sent.
    pub sent: u32,
    /// Replies that were an error (as they should be for most).
    pub errors: u32,
    /// Replies that broke the rule ([`check`] said `Err`).
    pub bad: u32,
    /// Messages expected to get `Malformed`.
    pub malformed: u32,
    /// Messages [`neuter`] made undecodable.
    pub neutered: u32,
    /// The first bad reply, described.
    pub first_bad: Option<alloc::string::String>,
}

impl Tally {
    /// Counts one message: what was expected, whether it was neutered, and [`check`]'s
    /// verdict on its reply.
    pub fn record(&mut self, expect: Expect, neutered: bool, verdict: Result<bool, Bad>) {
        self.sent += 1;
        self.malformed += u32::from(expect == Expect::Malformed);
        self.neutered += u32::from(neutered);
        match verdict {
            Ok(true) => self.errors += 1,
            Ok(false) => {}
            Err(_) => self.bad += 1,
        }
    }
}

/// What the key store run aims at and looks for: the planted key's handle and its secret's
/// 8-byte windows.
pub struct Planted {
    /// The planted key's handle.
    pub handle: u64,
    /// Every 8-byte window of its secret and of the secret's expansion ([`secret_windows`]).
    pub windows: Vec<[u8; 8]>,
}

/// One run against `service`: `count` messages from `seed`, each sent with
/// `send(raw, caps_rng)`, its reply checked and counted without stopping (the first bad
/// one described); `after_reply` runs after every reply (the component deletes what
/// capability it brought), `progress(i)` every tenth from [`PROGRESS_FROM`] messages on. With
/// `planted`, requests aim at its handle and replies holding a piece of its secret are
/// counted (the second result).
pub fn run(
    service: Service,
    seed: u64,
    count: u32,
    planted: Option<&Planted>,
    mut send: impl FnMut(&Raw, &mut Rng) -> Message,
    mut after_reply: impl FnMut(),
    mut progress: impl FnMut(u32),
) -> (Tally, u32) {
    let hints: &[u64] = match planted {
        Some(p) => core::slice::from_ref(&p.handle),
        None => &[],
    };
    let (mut rng, mut caps) = (Rng::new(seed), Rng::new(seed ^ 0x5a5a));
    let (mut tally, mut leaked) = (Tally::default(), 0);
    let tenth = (count / 10).max(1);
    for i in 0..count {
        let mut raw = generate_with(service, &mut rng, hints);
        let neutered = neuter(service, &mut raw);
        let expect = expectation(service, &raw);
        let reply = send(&raw, &mut caps);
        after_reply();
        let result = check(service, expect, &reply);
        leaked += u32::from(planted.is_some_and(|p| leaks(&reply, &p.windows)));
        tally.record(expect, neutered, result);
        if let (Err(bad), None) = (result, &tally.first_bad) {
            tally.first_bad = Some(alloc::format!(
                "message {i}: label {:#x}, {} words, {} caps, expected {expect:?}: reply label {:#x}, {} words: {bad:?}",
                raw.label,
                raw.words.len(),
                raw.caps,
                reply.label,
                reply.len()
            ));
        }
        if count >= PROGRESS_FROM && (i + 1) % tenth == 0 && i + 1 < count {
            progress(i + 1);
        }
    }
    (tally, leaked)
}

/// The one valid request `service` must still answer after the run, over `transport`
/// (`hint`: a key store handle): what it answered, or why not.
pub fn valid<T: proto::Transport>(
    service: Service,
    transport: T,
    hint: Option<u64>,
) -> Result<alloc::string::String, alloc::string::String> {
    use alloc::format;
    use alloc::string::String;
    let name = |s| proto::Name::new(s).expect("a name");
    match service {
        Service::Naming => naming::NamingClient::new(transport)
            .lookup(name("serial"))
            .map(|b| format!("lookup serial: generation {}", b.generation))
            .map_err(|e| format!("lookup serial: {e:?}")),
        Service::Proc => proc::ProcClient::new(transport)
            .list(0)
            .map(|c| format!("list 0: {}", c.name))
            .map_err(|e| format!("list 0: {e:?}")),
        Service::Memory => memory::MemoryClient::new(transport)
            .usage()
            .map(|u| format!("usage: {} of {} bytes", u.used, u.budget))
            .map_err(|e| format!("usage: {e:?}")),
        Service::Devices => devices::DevicesClient::new(transport)
            .list(0)
            .map(|f| format!("list 0: {:04x}:{:04x}", f.vendor, f.device))
            .map_err(|e| format!("list 0: {e:?}")),
        Service::Serial => proto::console::ConsoleClient::new(transport)
            .write(proto::Bytes::new(b"ipcfuzz: the console still writes\r\n").expect("short"))
            .map(|()| String::from("write: ok"))
            .map_err(|e| format!("write: {e:?}")),
        Service::Keystore => {
            let mut client = keystore::KeystoreClient::new(transport);
            match hint {
                Some(handle) => client
                    .sign(
                        handle,
                        keystore::Payload::new(b"still serving").expect("short"),
                    )
                    .map(|_| String::from("sign with the planted key: ok"))
                    .map_err(|e| format!("sign: {e:?}")),
                // Without a planted key: any answer but an undecodable one will do.
                None => match client.list(0) {
                    Ok(_) | Err(keystore::Error::NoEntry) => Ok(String::from("list 0: answered")),
                    Err(e) => Err(format!("list 0: {e:?}")),
                },
            }
        }
    }
}

/// The CHECK line for `service` after a run that saw `tally` and whose valid request
/// answered `valid`.
pub fn verdict(
    service: Service,
    tally: &Tally,
    valid: &Result<alloc::string::String, alloc::string::String>,
) -> alloc::string::String {
    let name = service.name();
    match (&tally.first_bad, valid) {
        (None, Ok(_)) => alloc::format!(
            "CHECK ipcfuzz-{name}: PASS ({} messages, {} error replies)",
            tally.sent,
            tally.errors
        ),
        (Some(first), _) => alloc::format!(
            "CHECK ipcfuzz-{name}: FAIL ({} of {} replies broke the rule; first: {first})",
            tally.bad,
            tally.sent
        ),
        (None, Err(why)) => alloc::format!("CHECK ipcfuzz-{name}: FAIL (valid request: {why})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers every request with `Malformed` (label 1, no words).
    fn malformed(_: &Raw, _: &mut Rng) -> Message {
        Message::new(1)
    }

    #[test]
    fn a_run_counts_every_message_and_describes_the_first_bad_reply() {
        let mut replies = 0;
        let mut seen = alloc::vec::Vec::new();
        let (tally, leaked) = run(
            Service::Memory,
            3,
            20,
            None,
            malformed,
            || replies += 1,
            |i| seen.push(i),
        );
        assert_eq!((tally.sent, replies, leaked), (20, 20, 0));
        assert!(seen.is_empty(), "no progress below PROGRESS_FROM");
        // Every `Malformed` reply is counted once: as an error the rule allows, or as bad.
        assert_eq!(tally.sent, tally.errors + tally.bad);
        // A server answering `OVERSIZED` breaks it every time.
        let (bad, _) = run(
            Service::Naming,
            3,
            10,
            None,
            |_, _| Message::new(OVERSIZED),
            || {},
            |_| {},
        );
        assert_eq!(bad.bad, 10);
        assert!(
            bad.first_bad
                .as_deref()
                .is_some_and(|d| d.starts_with("message 0:")),
            "{bad:?}"
        );
        assert!(verdict(Service::Naming, &bad, &Ok("x".into())).contains("FAIL (10 of 10 replies"));
    }

    #[test]
    fn a_reply_holding_a_piece_of_the_planted_secret_is_counted() {
        let secret = [7u8; 32];
        let planted = Planted {
            handle: 0x42,
            windows: secret_windows(&secret),
        };
        let leak = |_: &Raw, _: &mut Rng| {
            let mut m = Message::new(0);
            m.push(u64::from_le_bytes(planted.windows[0])).unwrap();
            m
        };
        let (tally, leaked) = run(
            Service::Keystore,
            5,
            12,
            Some(&planted),
            leak,
            || {},
            |_| {},
        );
        assert_eq!((tally.sent, leaked), (12, 12));
        let (_, none) = run(
            Service::Keystore,
            5,
            12,
            Some(&planted),
            malformed,
            || {},
            |_| {},
        );
        assert_eq!(none, 0);
    }

    #[test]
    fn progress_is_reported_every_tenth_from_the_threshold_on() {
        let mut seen = alloc::vec::Vec::new();
        run(
            Service::Proc,
            1,
            PROGRESS_FROM,
            None,
            malformed,
            || {},
            |i| seen.push(i),
        );
        let tenth = PROGRESS_FROM / 10;
        assert_eq!(
            seen,
            (1..10).map(|k| k * tenth).collect::<alloc::vec::Vec<_>>()
        );
    }

    #[test]
    fn the_valid_request_and_the_verdict() {
        let answer = |m: &Message| {
            assert_eq!(m.label, 2, "naming lookup");
            Message::new(16) // NotFound
        };
        let refused = valid(Service::Naming, proto::Loopback(answer), None);
        assert_eq!(refused, Err("lookup serial: NotFound".into()));
        let quiet = Tally {
            sent: 5,
            errors: 4,
            ..Tally::default()
        };
        assert_eq!(
            verdict(Service::Naming, &quiet, &refused),
            "CHECK ipcfuzz-naming: FAIL (valid request: lookup serial: NotFound)"
        );
        assert_eq!(
            verdict(Service::Naming, &quiet, &Ok("ok".into())),
            "CHECK ipcfuzz-naming: PASS (5 messages, 4 error replies)"
        );
    }

    #[test]
    fn the_generator_is_deterministic_and_in_bounds() {
        for service in Service::ALL {
            let mut a = Rng::new(7);
            let mut b = Rng::new(7);
            for _ in 0..MESSAGES {
                let x = generate(service, &mut a);
                assert_eq!(x, generate(service, &mut b));
                assert!(x.words.len() <= MAX_IPC_WORDS);
                assert!(x.caps <= 3);
                assert!(x.label <= LABEL_MASK);
            }
        }
    }

    #[test]
    fn neutered_requests_never_decode() {
        for service in Service::ALL {
            let mut rng = Rng::new(0x1234);
            let (mut malformed, mut answer, mut neutered) = (0, 0, 0);
            for _ in 0..20 * MESSAGES {
                let mut raw = generate(service, &mut rng);
                if neuter(service, &mut raw) {
                    neutered += 1;
                    assert_eq!(expectation(service, &raw), Expect::Malformed);
                }
                assert_ne!(classify(service, &raw), Decoded::Dangerous);
                match expectation(service, &raw) {
                    Expect::Malformed => malformed += 1,
                    Expect::Answer => answer += 1,
                }
            }
            // The mix has both kinds.
            assert!(
                malformed > 1000 && answer > 100,
                "{service:?}: {malformed} {answer}"
            );
            if matches!(service, Service::Proc | Service::Serial) {
                assert!(neutered > 0, "{service:?}");
            }
        }
    }

    #[test]
    fn exit_and_halt_are_never_sent_valid() {
        for label in [2u64, 7] {
            let mut raw = Raw {
                label,
                words: alloc::vec![0],
                caps: 0,
            };
            assert!(neuter(Service::Proc, &mut raw));
            assert_eq!(expectation(Service::Proc, &raw), Expect::Malformed);
        }
    }

    #[test]
    fn keystore_requests_reach_the_hinted_handle_and_never_delete() {
        let mut rng = Rng::new(99);
        let handle = 0x0001_dead_beef_cafe;
        let (mut valid_with_hint, mut neutered) = (0, 0);
        for _ in 0..20 * MESSAGES {
            let mut raw = generate_with(Service::Keystore, &mut rng, &[handle]);
            if neuter(Service::Keystore, &mut raw) {
                neutered += 1;
            }
            let m = Message::with_words(raw.label, &raw.words);
            if let Ok(Ok(r)) = m.map(|m| keystore::Request::decode(&m)) {
                assert!(!matches!(r, keystore::Request::Delete { .. }), "{r:?}");
                if matches!(r, keystore::Request::Sign { handle: h, .. } if h == handle) {
                    valid_with_hint += 1;
                }
            }
        }
        assert!(
            valid_with_hint > 10 && neutered > 0,
            "{valid_with_hint} {neutered}"
        );
    }

    #[test]
    fn a_reply_holding_any_eight_bytes_of_the_secret_leaks() {
        let seed: [u8; 32] = core::array::from_fn(|i| i as u8 + 100);
        let windows = secret_windows(&seed);
        let hex: alloc::string::String = seed.iter().map(|b| alloc::format!("{b:02x}")).collect();
        assert_eq!(parse_hex32(&hex), Some(seed));
        assert_eq!(parse_hex32(&hex[1..]), None);
        assert_eq!(windows.len(), 25 + 57);
        // Bytes 3..11 of the seed, starting at byte 5 of the reply.
        let mut bytes = [0u8; 24];
        bytes[5..13].copy_from_slice(&seed[3..11]);
        let words: Vec<u64> = bytes
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let reply = Message::with_words(0, &words).unwrap();
        assert!(leaks(&reply, &windows));
        // Seven bytes are not enough.
        bytes[12] = 0;
        let words: Vec<u64> = bytes
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert!(!leaks(&Message::with_words(0, &words).unwrap(), &windows));
        // A window of the expanded secret counts too.
        use sha2::{Digest, Sha512};
        let expanded = Sha512::digest(seed);
        let word = u64::from_le_bytes(expanded[40..48].try_into().unwrap());
        assert!(leaks(&Message::with_words(0, &[word]).unwrap(), &windows));
    }

    #[test]
    fn a_tally_counts_every_verdict() {
        let mut t = Tally::default();
        t.record(Expect::Malformed, true, Ok(true));
        t.record(Expect::Answer, false, Ok(false));
        t.record(Expect::Malformed, false, Err(Bad::NotMalformed));
        assert_eq!(
            (t.sent, t.errors, t.bad, t.malformed, t.neutered),
            (3, 1, 1, 2, 1)
        );
    }

    #[test]
    fn replies_are_checked() {
        let s = Service::Memory;
        let malformed = Message::new(1);
        assert_eq!(check(s, Expect::Malformed, &malformed), Ok(true));
        assert_eq!(
            check(s, Expect::Malformed, &Message::new(0)),
            Err(Bad::NotMalformed)
        );
        assert_eq!(check(s, Expect::Answer, &Message::new(0)), Ok(false));
        assert_eq!(check(s, Expect::Answer, &Message::new(20)), Ok(true));
        assert_eq!(
            check(s, Expect::Answer, &Message::new(99)),
            Err(Bad::UnknownError)
        );
        assert_eq!(
            check(s, Expect::Answer, &Message::with_words(19, &[1]).unwrap()),
            Err(Bad::ErrorWithPayload)
        );
    }
}
