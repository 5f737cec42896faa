//! The iperf3 control protocol: state bytes, cookies, parameters and results JSON,
//! each parsed once into a validated type.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{json, Map, Value};

/// Default TCP port of an iperf3 server.
pub const DEFAULT_PORT: u16 = 5201;
/// Length of the cookie every connection starts with: 36 characters plus NUL.
pub const COOKIE_LEN: usize = 37;
/// Largest parameter JSON the server accepts (as the reference server does).
pub const MAX_PARAMS_LEN: usize = 8 * 1024;
/// Largest client results JSON the server accepts.
pub const MAX_RESULTS_LEN: usize = 64 * 1024;
/// Block size when the client does not set `len` (TCP default).
pub const DEFAULT_BLOCK_LEN: usize = 128 * 1024;
/// Error code that makes the client print "an option you are trying to set is not
/// implemented yet".
pub const ERROR_UNIMPLEMENTED: i32 = 13;

/// One-byte protocol states (signed on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum State {
    /// Server: streams are connected, the test starts.
    TestStart = 1,
    /// Server: data flows now.
    TestRunning = 2,
    /// Client: it stopped sending; the test is over.
    TestEnd = 4,
    /// Server: send your parameters.
    ParamExchange = 9,
    /// Server: open the data connections.
    CreateStreams = 10,
    /// Server: it is going away.
    ServerTerminate = 11,
    /// Client: it is going away (e.g. interrupted).
    ClientTerminate = 12,
    /// Server: exchange results now.
    ExchangeResults = 13,
    /// Server: the client may print its report.
    DisplayResults = 14,
    /// Client: it is starting (unused by servers).
    IperfStart = 15,
    /// Client: it has printed its report.
    IperfDone = 16,
    /// Server: the connection is refused (busy or wrong cookie).
    AccessDenied = -1,
    /// Server: an error code and errno follow.
    ServerError = -2,
}

impl State {
    /// Returns the byte that carries this state on the wire.
    pub fn byte(self) -> u8 {
        self as i8 as u8
    }

    /// Parses a state byte; `None` for bytes that are no state.
    pub fn from_byte(byte: u8) -> Option<State> {
        Some(match byte as i8 {
            1 => State::TestStart,
            2 => State::TestRunning,
            4 => State::TestEnd,
            9 => State::ParamExchange,
            10 => State::CreateStreams,
            11 => State::ServerTerminate,
            12 => State::ClientTerminate,
            13 => State::ExchangeResults,
            14 => State::DisplayResults,
            15 => State::IperfStart,
            16 => State::IperfDone,
            -1 => State::AccessDenied,
            -2 => State::ServerError,
            _ => return None,
        })
    }
}

/// Builds the 9-byte SERVER_ERROR message: the state, the error code and errno
/// (both 4-byte big-endian).
pub fn server_error_message(code: i32, errno: i32) -> [u8; 9] {
    let mut message = [0u8; 9];
    message[0] = State::ServerError.byte();
    message[1..5].copy_from_slice(&code.to_be_bytes());
    message[5..9].copy_from_slice(&errno.to_be_bytes());
    message
}

/// A session cookie: 36 characters of `a-z2-7` and a NUL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cookie([u8; COOKIE_LEN]);

impl Cookie {
    /// Validates the 37 bytes a connection starts with; `None` if they are no cookie.
    pub fn parse(bytes: &[u8; COOKIE_LEN]) -> Option<Cookie> {
        let (text, nul) = bytes.split_at(COOKIE_LEN - 1);
        let valid = nul[0] == 0
            && text
                .iter()
                .all(|&b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
        valid.then_some(Cookie(*bytes))
    }

    /// Returns the cookie's wire form.
    pub fn bytes(&self) -> &[u8; COOKIE_LEN] {
        &self.0
    }
}

/// The transport a client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// TCP (the only one served).
    Tcp,
    /// UDP (refused).
    Udp,
    /// SCTP (refused).
    Sctp,
    /// No protocol key was set (refused).
    Unknown,
}

/// Why parameter or results JSON was rejected as malformed (the connection is closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// The announced JSON length is 0 or above the limit.
    BadLength,
    /// The bytes are not a JSON object.
    NotJson,
    /// A known key has a value of the wrong type or range.
    BadValue(&'static str),
    /// The peer sent a state byte that is not valid at this point.
    UnexpectedState(u8),
    /// The connection did not start with a valid cookie.
    BadCookie,
}

/// A test's parameters, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Transport.
    pub protocol: Protocol,
    /// Test length in seconds (0 when the client limits bytes or blocks instead).
    pub time_s: u64,
    /// Bytes to transfer (`-n`; 0: no byte limit). The client ends the test once this
    /// many have been sent (or, with `-R`, received).
    pub bytes: u64,
    /// Blocks of `len` bytes to transfer (`-k`; 0: no block limit).
    pub blocks: u64,
    /// Seconds omitted at the start.
    pub omit_s: u64,
    /// Number of parallel data streams (at least 1).
    pub parallel: usize,
    /// Block size in bytes for reads and writes.
    pub len: usize,
    /// The server sends (`-R`).
    pub reverse: bool,
    /// Both directions at once (`--bidir`; refused).
    pub bidirectional: bool,
}

/// Longest test time the server accepts, in seconds (one day).
const MAX_TIME_S: u64 = 86_400;

fn get_u64(
    object: &Map<String, Value>,
    key: &'static str,
    default: u64,
) -> Result<u64, ProtocolError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value.as_u64().ok_or(ProtocolError::BadValue(key)),
    }
}

fn get_bool(object: &Map<String, Value>, key: &'static str) -> Result<bool, ProtocolError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        // Some clients encode flags as 0/1.
        Some(value) => value
            .as_u64()
            .map(|v| v != 0)
            .ok_or(ProtocolError::BadValue(key)),
    }
}

impl Params {
    /// Parses the client's parameter JSON; unknown keys are ignored.
    pub fn parse(json: &[u8]) -> Result<Params, ProtocolError> {
        let value: Value = serde_json::from_slice(json).map_err(|_| ProtocolError::NotJson)?;
        let Value::Object(object) = value else {
            return Err(ProtocolError::NotJson);
        };
        let protocol = if get_bool(&object, "tcp")? {
            Protocol::Tcp
        } else if get_bool(&object, "udp")? {
            Protocol::Udp
        } else if get_bool(&object, "sctp")? {
            Protocol::Sctp
        } else {
            Protocol::Unknown
        };
        let protocol = if protocol == Protocol::Tcp
            && (get_bool(&object, "udp")? || get_bool(&object, "sctp")?)
        {
            Protocol::Unknown
        } else {
            protocol
        };
        let time_s = get_u64(&object, "time", 10)?;
        let omit_s = get_u64(&object, "omit", 0)?;
        if time_s > MAX_TIME_S || omit_s > MAX_TIME_S {
            return Err(ProtocolError::BadValue("time"));
        }
        let parallel = get_u64(&object, "parallel", 1)?.max(1);
        let len = get_u64(&object, "len", 0)?;
        Ok(Params {
            protocol,
            time_s,
            bytes: get_u64(&object, "num", 0)?,
            blocks: get_u64(&object, "blockcount", 0)?,
            omit_s,
            parallel: usize::try_from(parallel).map_err(|_| ProtocolError::BadValue("parallel"))?,
            len: match usize::try_from(len) {
                Ok(0) => DEFAULT_BLOCK_LEN,
                Ok(len) => len,
                Err(_) => return Err(ProtocolError::BadValue("len")),
            },
            reverse: get_bool(&object, "reverse")?,
            bidirectional: get_bool(&object, "bidirectional")?,
        })
    }

    /// Returns how many bytes the server sends in all in a reverse test limited by bytes
    /// or blocks (`None`: no limit, the test runs until TEST_END).
    ///
    /// The client ends such a test once it has received `bytes`, or has completed
    /// `blocks` reads of at most `len` bytes each; `blocks * len` bytes always suffice.
    pub fn send_budget(&self) -> Option<u64> {
        if self.bytes > 0 {
            Some(self.bytes)
        } else if self.blocks > 0 {
            Some(self.blocks.saturating_mul(self.len as u64))
        } else {
            None
        }
    }

    /// Checks the test is one this server runs; `Err` carries the SERVER_ERROR code.
    pub fn check(&self, max_parallel: usize, max_len: usize) -> Result<(), i32> {
        let supported = self.protocol == Protocol::Tcp
            && !self.bidirectional
            && self.parallel <= max_parallel
            && self.len <= max_len;
        if supported {
            Ok(())
        } else {
            Err(ERROR_UNIMPLEMENTED)
        }
    }
}

/// Parses a 4-byte big-endian JSON length, checking it against `limit`.
pub fn parse_length(bytes: [u8; 4], limit: usize) -> Result<usize, ProtocolError> {
    let len = u32::from_be_bytes(bytes) as usize;
    if len == 0 || len > limit {
        return Err(ProtocolError::BadLength);
    }
    Ok(len)
}

/// Checks the client's results are a JSON object (their content is not needed).
pub fn check_client_results(json: &[u8]) -> Result<(), ProtocolError> {
    match serde_json::from_slice::<Value>(json) {
        Ok(Value::Object(_)) => Ok(()),
        _ => Err(ProtocolError::NotJson),
    }
}

/// What the server measured for one stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StreamResult {
    /// Stream id (1, 3, 4, 5, ... in accept order).
    pub id: u32,
    /// Bytes received (normal) or sent (reverse).
    pub bytes: u64,
    /// Seconds from test start to the stream's end.
    pub end_time_s: f64,
}

/// Returns the stream id of the `index`-th accepted stream: 1, 3, 4, 5, ...
pub fn stream_id(index: usize) -> u32 {
    if index == 0 {
        1
    } else {
        index as u32 + 2
    }
}

/// Builds the server's results JSON: CPU use in percent, and per-stream counts.
pub fn server_results(cpu_util_percent: f64, reverse: bool, streams: &[StreamResult]) -> Vec<u8> {
    let retransmits = if reverse { 0 } else { -1 };
    let cpu = cpu_util_percent.clamp(0.0, 100.0);
    let streams: Vec<Value> = streams
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "bytes": s.bytes,
                "retransmits": retransmits,
                "jitter": 0,
                "errors": 0,
                "packets": 0,
                "start_time": 0,
                "end_time": s.end_time_s,
            })
        })
        .collect();
    let results = json!({
        "cpu_util_total": cpu,
        "cpu_util_user": cpu,
        "cpu_util_system": 0,
        "sender_has_retransmits": retransmits,
        "streams": streams,
    });
    serde_json::to_vec(&results).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_PARAMS: &[u8] = br#"{"tcp":true,"omit":0,"time":2,"num":0,"blockcount":0,"parallel":2,"len":131072,"pacing_timer":1000,"client_version":"3.12"}"#;

    #[test]
    fn state_bytes_round_trip() {
        for byte in 0..=255u8 {
            if let Some(state) = State::from_byte(byte) {
                assert_eq!(state.byte(), byte);
            }
        }
        assert_eq!(State::AccessDenied.byte(), 0xFF);
        assert_eq!(State::ServerError.byte(), 0xFE);
        assert_eq!(State::from_byte(3), None);
    }

    #[test]
    fn debian_params_parse() {
        let params = Params::parse(DEBIAN_PARAMS).unwrap();
        assert_eq!(params.protocol, Protocol::Tcp);
        assert_eq!((params.time_s, params.parallel, params.len), (2, 2, 131072));
        assert!(!params.reverse);
        assert_eq!((params.bytes, params.blocks), (0, 0));
        assert_eq!(params.send_budget(), None);
        assert_eq!(params.check(128, 1 << 20), Ok(()));
    }

    #[test]
    fn byte_and_block_limits_parse_into_a_send_budget() {
        let bytes = Params::parse(
            br#"{"tcp":true,"omit":0,"time":0,"num":1048576,"blockcount":0,"parallel":1,"len":131072,"reverse":true}"#,
        )
        .unwrap();
        assert_eq!((bytes.time_s, bytes.bytes, bytes.blocks), (0, 1 << 20, 0));
        assert_eq!(bytes.send_budget(), Some(1 << 20));
        assert_eq!(bytes.check(128, 1 << 20), Ok(()));
        let blocks =
            Params::parse(br#"{"tcp":true,"time":0,"num":0,"blockcount":5,"len":1000}"#).unwrap();
        assert_eq!((blocks.bytes, blocks.blocks), (0, 5));
        assert_eq!(blocks.send_budget(), Some(5000));
        assert!(Params::parse(br#"{"tcp":true,"num":-1}"#).is_err());
        assert!(Params::parse(br#"{"tcp":true,"blockcount":"many"}"#).is_err());
    }

    #[test]
    fn unsupported_options_are_refused_with_code_13() {
        for json in [
            &br#"{"udp":true,"time":1}"#[..],
            br#"{"sctp":true}"#,
            br#"{"tcp":true,"bidirectional":true}"#,
            br#"{"time":1}"#,
            br#"{"tcp":true,"parallel":100000}"#,
        ] {
            let params = Params::parse(json).unwrap();
            assert_eq!(
                params.check(128, 1 << 20),
                Err(ERROR_UNIMPLEMENTED),
                "{}",
                core::str::from_utf8(json).unwrap()
            );
        }
        assert_eq!(server_error_message(13, 0), [0xFE, 0, 0, 0, 13, 0, 0, 0, 0]);
    }

    #[test]
    fn malformed_params_are_errors_not_panics() {
        for json in [
            &b"not json"[..],
            b"[1,2]",
            b"{\"time\":-1}",
            b"{\"tcp\":\"yes\"}",
            b"{\"len\":1.5}",
            b"\xff\xfe",
            &[b'['; 10_000],
        ] {
            assert!(Params::parse(json).is_err());
        }
        assert_eq!(
            Params::parse(b"{\"tcp\":true}").unwrap().len,
            DEFAULT_BLOCK_LEN
        );
    }

    #[test]
    fn lengths_and_cookies_are_checked() {
        assert_eq!(
            parse_length([0, 0, 0, 0], MAX_PARAMS_LEN),
            Err(ProtocolError::BadLength)
        );
        assert_eq!(
            parse_length([0, 0, 0x20, 1], MAX_PARAMS_LEN),
            Err(ProtocolError::BadLength)
        );
        assert_eq!(parse_length([0, 0, 0x20, 0], MAX_PARAMS_LEN), Ok(8192));
        let mut cookie = [b'a'; COOKIE_LEN];
        assert!(Cookie::parse(&cookie).is_none());
        cookie[COOKIE_LEN - 1] = 0;
        cookie[3] = b'7';
        assert!(Cookie::parse(&cookie).is_some());
        cookie[4] = b'8';
        assert!(Cookie::parse(&cookie).is_none());
    }

    #[test]
    fn results_have_numeric_fields_and_ids() {
        assert_eq!([stream_id(0), stream_id(1), stream_id(2)], [1, 3, 4]);
        let streams = [StreamResult {
            id: 1,
            bytes: 10,
            end_time_s: 1.5,
        }];
        let json: Value = serde_json::from_slice(&server_results(12.5, false, &streams)).unwrap();
        assert_eq!(json["cpu_util_total"].as_f64(), Some(12.5));
        assert_eq!(json["sender_has_retransmits"].as_i64(), Some(-1));
        assert_eq!(json["streams"][0]["bytes"].as_u64(), Some(10));
        assert!(json["streams"][0]["end_time"].is_number());
        assert!(check_client_results(b"{\"cpu_util_total\":1}").is_ok());
        assert!(check_client_results(b"1").is_err());
    }
}
