//! Several nginx, one session table: the parts of sync through Redis (or
//! Valkey) that need no nginx — the `sync=` endpoint, the shared hash key,
//! the names and encodings used in Redis, the bounded outgoing queue, and the
//! conversation with Redis as a state machine over bytes ([`Link`]).
//!
//! Model. Each nginx keeps its own shared-memory table, the only thing on
//! the request path. A session this nginx learns, rebinds or touches is put
//! in a bounded queue and sent to Redis by the event loop: one script call
//! (`EVALSHA`) that stores it under a key holding only the id's keyed hash
//! (TTL = what is left of its life) and publishes it on the zone's channel,
//! unless Redis knows the id live on another server (then the first issuer
//! keeps it: the answer is that server, adopted locally). One process per
//! nginx subscribes and merges what the others publish; after it
//! (re)subscribes it reads every live session from Redis and writes back
//! every live session of its own table, so an outage heals both ways.
//!
//! No raw id leaves nginx: Redis keys, values and messages carry the 47-bit
//! keyed hash the table already stores, under a key every nginx of the
//! cluster reads from the same file.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use std::collections::VecDeque;

use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;
use siphasher::sip::SipHasher13;
use siphasher::sip128::{Hasher128, SipHasher13 as SipHasher13x128};

use crate::store::{
    entry_key, entry_last_use, entry_payload, entry_server, Expiry, Table, WriteLock,
};

/// Default Redis port.
pub const DEFAULT_PORT: u16 = 6379;
/// Default Sentinel port.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;
/// Shortest shared key file, in bytes (after trailing whitespace).
pub const MIN_KEY_LEN: usize = 16;
/// Longest key or credentials file read.
pub const MAX_SECRET_FILE: u64 = 4096;
/// Updates waiting for Redis per process; past it they are dropped and counted.
pub const QUEUE_LIMIT: usize = 65_536;
/// Unanswered commands per connection before more wait in the queue.
pub const IN_FLIGHT_LIMIT: usize = 1024;
/// Bytes of one reply we wait for before calling the server broken.
pub const MAX_REPLY: usize = 1 << 20;
/// Sessions asked for per `SCAN` while loading.
pub const SCAN_COUNT: usize = 512;
/// Table slots walked per step while writing the table back to Redis.
pub const PUSH_SLICE: usize = 4096;
/// A write-back after a clean sync still covers the sessions used in the
/// last this many seconds (updates queued by an exiting worker are lost
/// without a trace; they are this recent).
pub const RECENT_PUSH: u32 = 60;

/// Where Redis is (`sync=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `redis://HOST[:PORT][/DB]`.
    Tcp {
        /// Host name or address (without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// `unix:PATH`.
    Unix(String),
    /// `sentinel://HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB]`: the primary
    /// of `master`, asked from the first Sentinel that answers.
    Sentinel {
        /// Sentinels, in the order they are asked.
        nodes: Vec<(String, u16)>,
        /// The monitored master's name.
        master: String,
    },
}

/// The parsed `sync=` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Where Redis is.
    pub endpoint: Endpoint,
    /// Database number (`/DB` or `sync_db=`).
    pub db: u32,
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.endpoint {
            Endpoint::Tcp { host, port } if host.contains(':') => {
                write!(f, "redis://[{host}]:{port}/{}", self.db)
            }
            Endpoint::Tcp { host, port } => write!(f, "redis://{host}:{port}/{}", self.db),
            Endpoint::Unix(path) => write!(f, "unix:{path} db {}", self.db),
            Endpoint::Sentinel { nodes, master } => {
                f.write_str("sentinel://")?;
                for (i, (h, p)) in nodes.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    write!(f, "{sep}{h}:{p}")?;
                }
                write!(f, "/{master}/{}", self.db)
            }
        }
    }
}

fn host_port(s: &str, default: u16) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => default,
            p => p.strip_prefix(':')?.parse().ok().filter(|&p| p != 0)?,
        };
        return (!host.is_empty()).then(|| (host.to_string(), port));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok().filter(|&p| p != 0)?),
        None => (s, default),
    };
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    ok.then(|| (host.to_string(), port))
}

/// Parses a `sync=` value; the error names what is wrong.
pub fn parse_endpoint(v: &[u8]) -> Result<Spec, String> {
    let s = core::str::from_utf8(v).map_err(|_| "not text".to_string())?;
    let db_of = |d: Option<&str>| -> Result<u32, String> {
        match d {
            None | Some("") => Ok(0),
            Some(d) => d
                .parse::<u32>()
                .ok()
                .filter(|&n| n < 1 << 16)
                .ok_or_else(|| format!("invalid database number \"{d}\"")),
        }
    };
    if let Some(rest) = s.strip_prefix("redis://") {
        let (hp, db) = match rest.split_once('/') {
            Some((hp, d)) => (hp, Some(d)),
            None => (rest, None),
        };
        if hp.contains('@') {
            return Err("credentials belong in \"sync_auth=FILE\", not in the URL".into());
        }
        let (host, port) =
            host_port(hp, DEFAULT_PORT).ok_or_else(|| format!("invalid address \"{hp}\""))?;
        return Ok(Spec {
            endpoint: Endpoint::Tcp { host, port },
            db: db_of(db)?,
        });
    }
    if let Some(path) = s.strip_prefix("unix:") {
        if !path.starts_with('/') || path.len() < 2 {
            return Err(format!(
                "invalid socket path \"{path}\" (absolute path expected)"
            ));
        }
        return Ok(Spec {
            endpoint: Endpoint::Unix(path.to_string()),
            db: 0,
        });
    }
    if let Some(rest) = s.strip_prefix("sentinel://") {
        let mut parts = rest.splitn(3, '/');
        let nodes_text = parts.next().unwrap_or("");
        let master = parts.next().unwrap_or("");
        let db = db_of(parts.next())?;
        if master.is_empty() || master.contains(char::is_whitespace) {
            return Err("a master name is needed after the sentinels (\"/NAME\")".into());
        }
        let mut nodes = Vec::new();
        for n in nodes_text.split(',') {
            nodes.push(
                host_port(n, DEFAULT_SENTINEL_PORT)
                    .ok_or_else(|| format!("invalid sentinel address \"{n}\""))?,
            );
        }
        return Ok(Spec {
            endpoint: Endpoint::Sentinel {
                nodes,
                master: master.to_string(),
            },
            db,
        });
    }
    Err("expected redis://HOST[:PORT][/DB], unix:PATH or sentinel://HOST[:PORT],.../MASTER".into())
}

/// The table's hash key from a shared key file's content: every nginx of a
/// cluster reading the same file hashes ids the same way.
pub fn secret_from_key(content: &[u8]) -> Result<[u64; 2], String> {
    let key = content.trim_ascii_end();
    if key.len() < MIN_KEY_LEN {
        return Err(format!(
            "holds {} bytes, at least {MIN_KEY_LEN} random bytes are needed \
             (e.g. \"openssl rand -hex 32\")",
            key.len()
        ));
    }
    let mut h = SipHasher13x128::new_with_keys(0x7374_6963_6b79_5f73, 0x796e_635f_6b65_7931);
    core::hash::Hasher::write(&mut h, key);
    let h = h.finish128();
    Ok([h.h1, h.h2])
}

/// A check value of the hash key, kept in Redis, so an nginx with another
/// key notices instead of writing sessions nobody else can find.
pub fn fingerprint(secret: [u64; 2]) -> u64 {
    SipHasher13::new_with_keys(secret[0], secret[1]).hash(b"sticky_session sync key check")
}

/// `sync_auth=` file content: `PASSWORD` or `USER PASSWORD` on its first line.
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    /// ACL user, if given.
    pub user: Option<Vec<u8>>,
    /// Password.
    pub password: Vec<u8>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Auth(..)")
    }
}

/// Parses a credentials file.
pub fn parse_auth(content: &[u8]) -> Result<Auth, String> {
    let line = content
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or(b"")
        .trim_ascii();
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    match (words.next(), words.next(), words.next()) {
        (Some(p), None, None) => Ok(Auth {
            user: None,
            password: p.to_vec(),
        }),
        (Some(u), Some(p), None) => Ok(Auth {
            user: Some(u.to_vec()),
            password: p.to_vec(),
        }),
        _ => Err("expected \"PASSWORD\" or \"USER PASSWORD\" on the first line".into()),
    }
}

/// The Redis names of one zone: `sticky:ZONE:s:HASH` per session, the
/// channel `sticky:ZONE`, and the key check `sticky:ZONE:key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    session_prefix: Vec<u8>,
    channel: Vec<u8>,
    check: Vec<u8>,
    pattern: Vec<u8>,
}

impl Names {
    /// Names for zone `zone`.
    pub fn new(zone: &[u8]) -> Self {
        let base = [b"sticky:".as_slice(), zone].concat();
        let session_prefix = [base.as_slice(), b":s:"].concat();
        let mut pattern = Vec::with_capacity(session_prefix.len() + 1);
        for &b in &session_prefix {
            if b"*?[]\\".contains(&b) {
                pattern.push(b'\\');
            }
            pattern.push(b);
        }
        pattern.push(b'*');
        Names {
            check: [base.as_slice(), b":key"].concat(),
            channel: base,
            session_prefix,
            pattern,
        }
    }

    /// The channel sessions are published on.
    pub fn channel(&self) -> &[u8] {
        &self.channel
    }

    /// The Redis key of session `key` (its hash, in hex).
    pub fn session(&self, key: u64) -> Vec<u8> {
        let mut k = self.session_prefix.clone();
        k.extend_from_slice(&hex16(key));
        k
    }
}

fn hex16(v: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = b"0123456789abcdef"[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

fn hex8(v: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&hex16(u64::from(v))[8..]);
    out
}

fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let d = (b as char).to_digit(16)?;
        Some(acc << 4 | u64::from(d))
    })
}

/// Length of a stored value: server (8 hex), key word (16), last use (8).
pub const VALUE_LEN: usize = 32;

/// The value stored for a session and published: its server, key word
/// (hash, start minute, flags) and last use, in fixed-width hex so the
/// script compares fields as text.
pub fn value(word: u64, val: u64) -> [u8; VALUE_LEN] {
    let mut v = [0u8; VALUE_LEN];
    v[..8].copy_from_slice(&hex8(entry_server(val)));
    v[8..24].copy_from_slice(&hex16(word));
    v[24..].copy_from_slice(&hex8(entry_last_use(val)));
    v
}

/// The (key word, payload) of a stored value or a message's first
/// [`VALUE_LEN`] bytes; `None` if malformed.
pub fn parse_value(v: &[u8]) -> Option<(u64, u64)> {
    let v = v.get(..VALUE_LEN)?;
    let server = parse_hex(&v[..8])? as u32;
    let word = parse_hex(&v[8..24])?;
    let last = parse_hex(&v[24..])? as u32;
    (entry_key(word) != 0).then(|| (word, entry_payload(server, last)))
}

/// A published message: the value, then the publisher's origin (16 hex)
/// and when it was sent (milliseconds since the epoch, decimal).
pub fn parse_message(m: &[u8]) -> Option<(u64, u64, u64, u64)> {
    let (word, val) = parse_value(m)?;
    let origin = parse_hex(m.get(VALUE_LEN..VALUE_LEN + 16)?)?;
    let sent = core::str::from_utf8(m.get(VALUE_LEN + 16..)?)
        .ok()?
        .parse()
        .ok()?;
    Some((word, val, origin, sent))
}

/// Stores a session unless Redis has it live on another server (answers
/// that value: the first issuer keeps it) or already as recent (answers 0);
/// a rebind (`ARGV[3] == "r"`) takes it over. Publishes what it stored and
/// answers 1. KEYS: session, channel. ARGV: value, TTL (ms), mode, message
/// suffix (origin and time). The start minute already in Redis is kept.
pub const SCRIPT: &str = "\
local cur = redis.call('GET', KEYS[1])
local v = ARGV[1]
if cur and string.len(cur) == 32 then
  if string.sub(cur, 1, 8) ~= string.sub(v, 1, 8) then
    if ARGV[3] ~= 'r' then return cur end
  elseif string.sub(cur, 25, 32) >= string.sub(v, 25, 32) then
    return 0
  else
    v = string.sub(v, 1, 8) .. string.sub(cur, 9, 24) .. string.sub(v, 25, 32)
  end
end
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
redis.call('PUBLISH', KEYS[2], v .. ARGV[4])
return 1
";

/// What a queued update asks Redis to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Learned or touched: stored unless another server holds the id.
    Keep,
    /// Rebound after a failover: stored over another server.
    Rebind,
}

/// Connection state shown on the status page (in [`SyncStats::state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum State {
    /// Not started yet.
    Idle = 0,
    /// Connecting or saying hello.
    Connecting = 1,
    /// Connected, subscribed and synced.
    Connected = 2,
    /// Unreachable; retrying with backoff.
    Down = 3,
    /// Redis holds another key check: this nginx's `sync_key` differs from
    /// the cluster's. Nothing is sent or applied.
    KeyMismatch = 4,
}

impl State {
    /// Name on the status page.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Connecting => "connecting",
            State::Connected => "connected",
            State::Down => "down",
            State::KeyMismatch => "key_mismatch",
        }
    }

    /// From the stored number.
    pub fn from_u64(v: u64) -> State {
        match v {
            1 => State::Connecting,
            2 => State::Connected,
            3 => State::Down,
            4 => State::KeyMismatch,
            _ => State::Idle,
        }
    }
}

/// Buckets of the propagation delay histogram: under 1 ms, then doubling.
pub const DELAY_BUCKETS: usize = 16;

/// Sync counters of one zone, in shared memory (all processes add to them).
#[repr(C)]
pub struct SyncStats {
    /// [`State`] of the subscribing process's connection.
    pub state: AtomicU64,
    /// Sessions this nginx stored in Redis and published.
    pub published: AtomicU64,
    /// Sessions from other nginx merged into the table.
    pub applied: AtomicU64,
    /// Updates dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Full resyncs (load from Redis and write back) started.
    pub resyncs: AtomicU64,
    /// Local sessions that Redis knew on another server (adopted).
    pub conflicts: AtomicU64,
    /// Connections lost or refused.
    pub failures: AtomicU64,
    /// Last error ([`ErrorKind`] as a number, 0 = none).
    pub last_error: AtomicU64,
    /// When the last error happened (seconds).
    pub last_error_at: AtomicU64,
    /// Longest propagation delay seen, in microseconds.
    pub delay_max_us: AtomicU64,
    /// Propagation delays: bucket 0 is under 1 ms, bucket i under 2^i ms.
    pub delay: [AtomicU64; DELAY_BUCKETS],
    /// Every session used before this time (seconds) is in Redis: set when a
    /// write-back completes with nothing lost meanwhile; 0 when an update
    /// may have been lost (a drop, a failed connection, a refusal, an
    /// emptied Redis), which makes the next write-back whole.
    pub clean_since: AtomicU64,
    /// Counts the events that clear `clean_since`.
    pub losses: AtomicU64,
}

impl Default for SyncStats {
    fn default() -> Self {
        SyncStats::new()
    }
}

impl SyncStats {
    /// All zero.
    pub const fn new() -> Self {
        #[allow(clippy::declare_interior_mutable_const)] // each use is a fresh zero
        const Z: AtomicU64 = AtomicU64::new(0);
        SyncStats {
            state: Z,
            published: Z,
            applied: Z,
            dropped: Z,
            resyncs: Z,
            conflicts: Z,
            failures: Z,
            last_error: Z,
            last_error_at: Z,
            delay_max_us: Z,
            delay: [Z; DELAY_BUCKETS],
            clean_since: Z,
            losses: Z,
        }
    }

    /// Records the delay of one applied message.
    pub fn record_delay(&self, us: u64) {
        let ms = us / 1000;
        let bucket = if ms == 0 {
            0
        } else {
            (64 - ms.leading_zeros() as usize).min(DELAY_BUCKETS - 1)
        };
        self.delay[bucket].fetch_add(1, Ordering::Relaxed);
        self.delay_max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// The upper bound (ms) of the bucket holding quantile `q` of the delays
    /// recorded, or `None` when there are none.
    pub fn delay_quantile_ms(&self, q: f64) -> Option<u64> {
        let counts: Vec<u64> = self
            .delay
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Some(1 << i);
            }
        }
        Some(1 << (DELAY_BUCKETS - 1))
    }

    /// An update may have been lost: the next write-back is whole.
    pub fn lost(&self) {
        self.losses.fetch_add(1, Ordering::Relaxed);
        self.clean_since.store(0, Ordering::Relaxed);
    }

    /// From when the next write-back must push sessions (0: all).
    pub fn push_since(&self, now: u32) -> u32 {
        match self.clean_since.load(Ordering::Relaxed) {
            0 => 0,
            t => (t as u32).min(now.saturating_sub(RECENT_PUSH)),
        }
    }

    /// Records an error.
    pub fn error(&self, e: ErrorKind, now: u32) {
        self.last_error.store(e as u64, Ordering::Relaxed);
        self.last_error_at.store(u64::from(now), Ordering::Relaxed);
    }
}

/// Why a connection to Redis failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum ErrorKind {
    /// Could not connect.
    Connect = 1,
    /// Redis closed the connection.
    Closed = 2,
    /// No answer in time.
    Timeout = 3,
    /// Something that is not RESP, or too large.
    Protocol = 4,
    /// AUTH or SELECT refused.
    Auth = 5,
    /// Another nginx wrote a different key check: `sync_key` differs.
    KeyMismatch = 6,
    /// Redis answered an error (out of memory, read-only replica, ...).
    Server = 7,
    /// No Sentinel named a usable primary.
    Sentinel = 8,
}

impl ErrorKind {
    /// Name on the status page.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Closed => "closed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Auth => "auth",
            ErrorKind::KeyMismatch => "key_mismatch",
            ErrorKind::Server => "server_error",
            ErrorKind::Sentinel => "sentinel",
        }
    }

    /// From the stored number (`None` for 0 or unknown).
    pub fn from_u64(v: u64) -> Option<ErrorKind> {
        Some(match v {
            1 => ErrorKind::Connect,
            2 => ErrorKind::Closed,
            3 => ErrorKind::Timeout,
            4 => ErrorKind::Protocol,
            5 => ErrorKind::Auth,
            6 => ErrorKind::KeyMismatch,
            7 => ErrorKind::Server,
            8 => ErrorKind::Sentinel,
            _ => return None,
        })
    }
}

/// A failed conversation: what kind, and Redis's own words when it said some.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkError {
    /// The kind, for counters and the status page.
    pub kind: ErrorKind,
    /// Detail for the log.
    pub detail: String,
}

impl LinkError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        LinkError {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.detail)
    }
}

/// The bounded queue of updates waiting for Redis in one process: session
/// hashes only (their current entry is read from the table when sent).
#[derive(Debug, Default)]
pub struct Queue {
    items: VecDeque<(Kind, u64)>,
}

impl Queue {
    /// Adds an update; answers false (dropped) when full.
    pub fn push(&mut self, kind: Kind, key: u64) -> bool {
        if self.items.len() >= QUEUE_LIMIT {
            return false;
        }
        self.items.push_back((kind, key));
        true
    }

    /// The oldest update.
    pub fn pop(&mut self) -> Option<(Kind, u64)> {
        self.items.pop_front()
    }

    /// Updates waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Which conversation a connection holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends updates; the leader's also loads and writes back the table.
    Command {
        /// This process subscribes too and does the resyncs.
        leader: bool,
    },
    /// Receives what the other nginx publish.
    Subscriber,
    /// Asks a Sentinel where the primary is.
    Sentinel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Ok,
    Script,
    KeyCheck,
    Role,
    Update(Kind),
    Scan,
    Mget,
    Subscribe,
    Pong,
    MasterAddr,
}

/// Where a resync is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resync {
    /// None running.
    Idle,
    /// Reading Redis's sessions; `Some(cursor)` is the next SCAN to send.
    Loading(Option<u64>),
    /// Writing the table's sessions back, from this slot.
    Pushing(usize),
}

/// A running write-back: from when sessions are pushed, when it started and
/// the loss count then (if it changed, the write-back is not clean).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Push {
    since: u32,
    started: u32,
    losses: u64,
}

/// What happened while reading a connection's input, for the event loop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The hello finished: updates may be sent.
    pub ready: bool,
    /// The subscription is (re)established: a resync is due.
    pub subscribed: bool,
    /// A resync finished.
    pub synced: bool,
    /// A Sentinel named the primary.
    pub primary: Option<(String, u16)>,
    /// Redis refused an update and the connection stays (e.g. out of
    /// memory): its words, for the log.
    pub refused: Option<String>,
    /// An update was stored.
    pub stored: bool,
}

/// What the connection works on: one zone's table and counters.
pub struct Zone<'a, L: WriteLock + ?Sized> {
    /// The table.
    pub table: &'a Table<'a>,
    /// Its lock.
    pub lock: &'a L,
    /// Sync counters.
    pub stats: &'a SyncStats,
    /// The longest lifetime the zone's upstreams give a session.
    pub exp: Expiry,
    /// Now, seconds.
    pub now: u32,
    /// Now, milliseconds since the epoch (for message times).
    pub now_ms: u64,
}

/// One connection's conversation with Redis (or a Sentinel), without I/O:
/// [`Link::output`] is what to write, [`Link::input`] takes what was read.
pub struct Link {
    role: Role,
    names: Names,
    origin: u64,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    expect: VecDeque<Expect>,
    sha: Vec<u8>,
    ready: bool,
    resync: Resync,
    push: Push,
    fingerprint: u64,
}

fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Checks that a complete RESP2 reply at the start of `buf` nests at most
/// `max_depth` arrays (the codec recurses; a hostile server must not be
/// able to exhaust the stack) and has no element larger than [`MAX_REPLY`].
/// Answers `Ok(false)` when the reply is not complete yet.
fn reply_bounded(buf: &[u8], max_depth: usize) -> Result<bool, LinkError> {
    let bad = |what: &str| LinkError::new(ErrorKind::Protocol, what.to_string());
    let mut pos = 0;
    // Elements still expected at each open array level.
    let mut open: Vec<i64> = Vec::new();
    loop {
        let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
            return if buf.len() - pos > 64 {
                Err(bad("header line too long"))
            } else {
                Ok(false)
            };
        };
        let line = &buf[pos..pos + nl];
        pos += nl + 1;
        let (&kind, rest) = line.split_first().ok_or_else(|| bad("empty line"))?;
        let rest = rest
            .strip_suffix(b"\r")
            .ok_or_else(|| bad("line without CR"))?;
        let number = || -> Result<i64, LinkError> {
            core::str::from_utf8(rest)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| bad("bad length"))
        };
        match kind {
            b'+' | b'-' | b':' => {}
            b'$' => {
                let n = number()?;
                if n > MAX_REPLY as i64 {
                    return Err(bad("reply too large"));
                }
                if n >= 0 {
                    let need = pos + n as usize + 2;
                    if buf.len() < need {
                        return Ok(false);
                    }
                    pos = need;
                }
            }
            b'*' => {
                let n = number()?;
                if n > 0 {
                    if open.len() >= max_depth {
                        return Err(bad("reply nested too deep"));
                    }
                    open.push(n);
                    continue;
                }
            }
            _ => return Err(bad("not RESP")),
        }
        // One element done: close the arrays it completes.
        loop {
            match open.last_mut() {
                None => return Ok(true),
                Some(left) => {
                    *left -= 1;
                    if *left > 0 {
                        break;
                    }
                    open.pop();
                }
            }
        }
    }
}

fn text(f: &OwnedFrame) -> Option<&[u8]> {
    match f {
        OwnedFrame::SimpleString(s) | OwnedFrame::BulkString(s) => Some(s),
        _ => None,
    }
}

impl Link {
    /// A conversation for `role` on the zone named by `names`; `origin`
    /// marks this nginx's own messages; `fingerprint` is the key check.
    pub fn new(role: Role, names: Names, origin: u64, fingerprint: u64) -> Self {
        Link {
            role,
            names,
            origin,
            out: Vec::new(),
            inbuf: Vec::new(),
            expect: VecDeque::new(),
            sha: Vec::new(),
            ready: false,
            resync: Resync::Idle,
            push: Push::default(),
            fingerprint,
        }
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    fn send(&mut self, args: &[&[u8]], expect: Expect) {
        command(&mut self.out, args);
        self.expect.push_back(expect);
    }

    /// Starts the conversation on a fresh connection: credentials,
    /// database, then what the role needs (for a Sentinel: where `master`
    /// is).
    pub fn hello(&mut self, auth: Option<&Auth>, db: u32, master: &str) {
        self.out.clear();
        self.inbuf.clear();
        self.expect.clear();
        self.ready = false;
        self.resync = Resync::Idle;
        if self.role == Role::Sentinel {
            self.send(
                &[b"SENTINEL", b"get-master-addr-by-name", master.as_bytes()],
                Expect::MasterAddr,
            );
            return;
        }
        if let Some(a) = auth {
            match &a.user {
                Some(u) => self.send(&[b"AUTH", u, &a.password], Expect::Ok),
                None => self.send(&[b"AUTH", &a.password], Expect::Ok),
            }
        }
        if db != 0 && self.role != Role::Subscriber {
            self.send(&[b"SELECT", db.to_string().as_bytes()], Expect::Ok);
        }
        match self.role {
            Role::Subscriber => {
                let channel = self.names.channel.clone();
                self.send(&[b"SUBSCRIBE", &channel], Expect::Subscribe);
            }
            Role::Command { .. } => {
                // A replica left behind by a failover must not be written to.
                self.send(&[b"ROLE"], Expect::Role);
                self.send(&[b"SCRIPT", b"LOAD", SCRIPT.as_bytes()], Expect::Script);
                let fp = hex16(self.fingerprint);
                let check = self.names.check.clone();
                self.send(&[b"SET", &check, &fp, b"NX", b"GET"], Expect::KeyCheck);
            }
            Role::Sentinel => {}
        }
    }

    /// The hello finished and updates can be sent.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Commands sent and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.expect.len()
    }

    /// A resync is running.
    pub fn resyncing(&self) -> bool {
        self.resync != Resync::Idle
    }

    /// Bytes waiting to be written.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// `n` bytes of [`Link::output`] were written.
    pub fn consume(&mut self, n: usize) {
        self.out.drain(..n.min(self.out.len()));
    }

    /// A keep-alive: the answer proves the server is alive.
    pub fn ping(&mut self) {
        self.send(&[b"PING"], Expect::Pong);
    }

    /// Sends the current state of session `key` (if it is live in the
    /// table), to be stored and published; answers whether anything was sent.
    pub fn update<L: WriteLock + ?Sized>(&mut self, kind: Kind, key: u64, z: &Zone<'_, L>) -> bool {
        let Some((word, val)) = z.table.entry(key, z.now, z.exp) else {
            return false;
        };
        self.update_entry(kind, word, val, z);
        true
    }

    fn update_entry<L: WriteLock + ?Sized>(
        &mut self,
        kind: Kind,
        word: u64,
        val: u64,
        z: &Zone<'_, L>,
    ) {
        let ttl_ms = u64::from(z.exp.remaining(word, val, z.now)) * 1000;
        let v = value(word, val);
        let mut suffix = hex16(self.origin).to_vec();
        suffix.extend_from_slice(z.now_ms.to_string().as_bytes());
        let key = self.names.session(entry_key(word));
        let sha = self.sha.clone();
        let channel = self.names.channel.clone();
        let mode: &[u8] = if kind == Kind::Rebind { b"r" } else { b"k" };
        self.send(
            &[
                b"EVALSHA",
                &sha,
                b"2",
                &key,
                &channel,
                &v,
                ttl_ms.to_string().as_bytes(),
                mode,
                &suffix,
            ],
            Expect::Update(kind),
        );
    }

    /// Starts a resync: load every session Redis holds, then write back the
    /// live sessions of the table — all of them, or after a clean sync
    /// those used since ([`SyncStats::push_since`]).
    pub fn start_resync(&mut self, stats: &SyncStats, now: u32) {
        stats.resyncs.fetch_add(1, Ordering::Relaxed);
        self.push = Push {
            since: stats.push_since(now),
            started: now,
            losses: stats.losses.load(Ordering::Relaxed),
        };
        self.resync = Resync::Loading(Some(0));
    }

    /// Sends the next part of a running resync, keeping at most
    /// [`IN_FLIGHT_LIMIT`] commands unanswered. Answers whether it finished.
    pub fn resync_step<L: WriteLock + ?Sized>(&mut self, z: &Zone<'_, L>) -> bool {
        match self.resync {
            Resync::Idle => false,
            Resync::Loading(Some(cursor)) => {
                let pattern = self.names.pattern.clone();
                self.send(
                    &[
                        b"SCAN",
                        cursor.to_string().as_bytes(),
                        b"MATCH",
                        &pattern,
                        b"COUNT",
                        SCAN_COUNT.to_string().as_bytes(),
                    ],
                    Expect::Scan,
                );
                self.resync = Resync::Loading(None);
                false
            }
            Resync::Loading(None) => false,
            Resync::Pushing(mut from) => {
                let slots = z.table.capacity();
                while from < slots && self.expect.len() < IN_FLIGHT_LIMIT {
                    let mut entries = Vec::new();
                    let since = self.push.since;
                    from = z
                        .table
                        .for_each_entry_from(from, PUSH_SLICE, z.now, z.exp, |w, v| {
                            if entry_last_use(v) >= since {
                                entries.push((w, v))
                            }
                        });
                    for (w, v) in entries {
                        self.update_entry(Kind::Keep, w, v, z);
                    }
                }
                if from >= slots {
                    self.resync = Resync::Idle;
                    // Clean when nothing was lost since it started (the
                    // answers to the last updates are still on their way;
                    // a failure before them counts as a loss too).
                    if z.stats.losses.load(Ordering::Relaxed) == self.push.losses {
                        z.stats
                            .clean_since
                            .store(u64::from(self.push.started.max(1)), Ordering::Relaxed);
                    }
                    return true;
                }
                self.resync = Resync::Pushing(from);
                false
            }
        }
    }

    /// Takes bytes read from the connection and acts on every complete
    /// reply. An error means the connection must be closed.
    pub fn input<L: WriteLock + ?Sized>(
        &mut self,
        bytes: &[u8],
        z: Option<&Zone<'_, L>>,
    ) -> Result<Progress, LinkError> {
        self.inbuf.extend_from_slice(bytes);
        let mut progress = Progress::default();
        let mut used = 0;
        loop {
            let rest = &self.inbuf[used..];
            if rest.is_empty() || !reply_bounded(rest, 3)? {
                if rest.len() > MAX_REPLY + 64 {
                    return Err(LinkError::new(ErrorKind::Protocol, "reply too large"));
                }
                break;
            }
            let (frame, n) = match decode(rest) {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(e) => return Err(LinkError::new(ErrorKind::Protocol, e.to_string())),
            };
            used += n;
            self.reply(frame, z, &mut progress)?;
        }
        self.inbuf.drain(..used);
        Ok(progress)
    }

    fn reply<L: WriteLock + ?Sized>(
        &mut self,
        frame: OwnedFrame,
        z: Option<&Zone<'_, L>>,
        progress: &mut Progress,
    ) -> Result<(), LinkError> {
        // A subscriber receives messages nobody asked for.
        if self.role == Role::Subscriber {
            if let OwnedFrame::Array(items) = &frame {
                if items.first().and_then(text) == Some(b"message") {
                    if let (Some(m), Some(z)) = (items.get(2).and_then(text), z) {
                        self.apply(m, z);
                    }
                    return Ok(());
                }
            }
        }
        let Some(expect) = self.expect.pop_front() else {
            return Err(LinkError::new(ErrorKind::Protocol, "reply to nothing"));
        };
        if let (OwnedFrame::Error(e), Expect::Update(_)) = (&frame, expect) {
            // A replica (after a failover) or a restarted Redis without the
            // script needs a new connection; anything else (out of memory)
            // loses this update only.
            if !e.starts_with("READONLY") && !e.starts_with("NOSCRIPT") {
                if let Some(z) = z {
                    z.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    z.stats.lost();
                    z.stats.error(ErrorKind::Server, z.now);
                }
                progress.refused = Some(e.clone());
                return Ok(());
            }
        }
        if let OwnedFrame::Error(e) = &frame {
            let kind = match expect {
                Expect::Ok => ErrorKind::Auth,
                Expect::MasterAddr => ErrorKind::Sentinel,
                _ => ErrorKind::Server,
            };
            return Err(LinkError::new(kind, e.clone()));
        }
        match (expect, frame) {
            (Expect::Ok | Expect::Pong, _) => {}
            (Expect::Role, OwnedFrame::Array(items)) => {
                if items.first().and_then(text) != Some(b"master") {
                    return Err(LinkError::new(
                        ErrorKind::Server,
                        "this Redis is a replica, not the primary",
                    ));
                }
            }
            (Expect::Script, OwnedFrame::BulkString(sha)) => self.sha = sha,
            (Expect::KeyCheck, OwnedFrame::Null) => {
                // Redis did not have the key check: it is new or was emptied,
                // so nothing this nginx sent before is there any more.
                if let Some(z) = z {
                    z.stats.lost();
                }
                self.hello_done(progress)
            }
            (Expect::KeyCheck, OwnedFrame::BulkString(fp)) => {
                if fp != hex16(self.fingerprint) {
                    return Err(LinkError::new(
                        ErrorKind::KeyMismatch,
                        "Redis holds the key check of another sync_key: every nginx of a \
                         cluster needs the same key file",
                    ));
                }
                self.hello_done(progress);
            }
            (Expect::Update(_), OwnedFrame::Integer(1)) => {
                progress.stored = true;
                if let Some(z) = z {
                    z.stats.published.fetch_add(1, Ordering::Relaxed);
                }
            }
            (Expect::Update(_), OwnedFrame::Integer(_)) => progress.stored = true,
            (Expect::Update(_), OwnedFrame::BulkString(cur)) => {
                // Redis knows the id live on another server: adopt it.
                if let (Some((w, v)), Some(z)) = (parse_value(&cur), z) {
                    z.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                    z.table.merge(z.lock, w, v, z.now, z.exp);
                }
            }
            (Expect::Scan, OwnedFrame::Array(items)) => {
                let cursor = items
                    .first()
                    .and_then(text)
                    .and_then(|c| core::str::from_utf8(c).ok()?.parse::<u64>().ok());
                let (Some(cursor), Some(OwnedFrame::Array(keys))) = (cursor, items.get(1)) else {
                    return Err(LinkError::new(ErrorKind::Protocol, "bad SCAN reply"));
                };
                let keys: Vec<&[u8]> = keys.iter().filter_map(text).collect();
                if !keys.is_empty() {
                    let mut args: Vec<&[u8]> = vec![b"MGET"];
                    args.extend(keys);
                    command(&mut self.out, &args);
                    self.expect.push_back(Expect::Mget);
                }
                self.resync = if cursor == 0 {
                    Resync::Pushing(0)
                } else {
                    Resync::Loading(Some(cursor))
                };
            }
            (Expect::Mget, OwnedFrame::Array(values)) => {
                if let Some(z) = z {
                    for v in values.iter().filter_map(text) {
                        if let Some((w, val)) = parse_value(v) {
                            if z.table.merge(z.lock, w, val, z.now, z.exp) {
                                z.stats.applied.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
            (Expect::Subscribe, OwnedFrame::Array(_)) => {
                self.ready = true;
                progress.subscribed = true;
            }
            (Expect::MasterAddr, OwnedFrame::Array(items)) => {
                let host = items.first().and_then(text);
                let port = items
                    .get(1)
                    .and_then(text)
                    .and_then(|p| core::str::from_utf8(p).ok()?.parse::<u16>().ok());
                match (host, port) {
                    (Some(h), Some(p)) => {
                        progress.primary = Some((String::from_utf8_lossy(h).into_owned(), p))
                    }
                    _ => {
                        return Err(LinkError::new(ErrorKind::Sentinel, "bad master address"));
                    }
                }
            }
            (Expect::MasterAddr, OwnedFrame::Null) => {
                return Err(LinkError::new(
                    ErrorKind::Sentinel,
                    "master name unknown to this sentinel",
                ));
            }
            (e, f) => {
                return Err(LinkError::new(
                    ErrorKind::Protocol,
                    format!("unexpected reply {f:?} to {e:?}"),
                ));
            }
        }
        if let Some(z) = z {
            if self.resync != Resync::Idle && self.expect.len() < IN_FLIGHT_LIMIT / 2 {
                progress.synced |= self.resync_step(z);
            }
        }
        Ok(())
    }

    fn hello_done(&mut self, progress: &mut Progress) {
        self.ready = true;
        progress.ready = true;
    }

    fn apply<L: WriteLock + ?Sized>(&mut self, m: &[u8], z: &Zone<'_, L>) {
        let Some((word, val, origin, sent)) = parse_message(m) else {
            return;
        };
        if origin == self.origin {
            return;
        }
        z.stats
            .record_delay(z.now_ms.saturating_sub(sent).saturating_mul(1000));
        if z.table.merge(z.lock, word, val, z.now, z.exp) {
            z.stats.applied.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Bind, Header, Slot, WAYS};
    use core::sync::atomic::AtomicBool;

    #[derive(Default)]
    struct SpinLock(AtomicBool);
    impl WriteLock for SpinLock {
        fn lock(&self) {
            while self.0.swap(true, Ordering::Acquire) {}
        }
        fn unlock(&self) {
            self.0.store(false, Ordering::Release);
        }
    }

    struct Mem {
        header: Header,
        slots: Vec<Slot>,
        lock: SpinLock,
        stats: SyncStats,
    }

    fn mem(secret: [u64; 2]) -> Mem {
        let m = Mem {
            header: Header::default(),
            slots: (0..64 * WAYS).map(|_| Slot::default()).collect(),
            lock: SpinLock::default(),
            stats: SyncStats::default(),
        };
        Table::format(&m.header, &m.slots, secret).unwrap();
        m
    }

    const EXP: Expiry = Expiry::idle(600);

    fn zone<'a>(m: &'a Mem, t: &'a Table<'a>, now: u32) -> Zone<'a, SpinLock> {
        Zone {
            table: t,
            lock: &m.lock,
            stats: &m.stats,
            exp: EXP,
            now,
            now_ms: u64::from(now) * 1000,
        }
    }

    #[test]
    fn endpoints() {
        let tcp = |h: &str, p, db| Spec {
            endpoint: Endpoint::Tcp {
                host: h.into(),
                port: p,
            },
            db,
        };
        assert_eq!(
            parse_endpoint(b"redis://127.0.0.1"),
            Ok(tcp("127.0.0.1", 6379, 0))
        );
        assert_eq!(
            parse_endpoint(b"redis://r.local:7000/3"),
            Ok(tcp("r.local", 7000, 3))
        );
        assert_eq!(
            parse_endpoint(b"redis://[::1]:7000"),
            Ok(tcp("::1", 7000, 0))
        );
        assert_eq!(
            parse_endpoint(b"unix:/run/redis.sock").map(|s| s.endpoint),
            Ok(Endpoint::Unix("/run/redis.sock".into()))
        );
        assert_eq!(
            parse_endpoint(b"sentinel://a:1,b/mymaster/2"),
            Ok(Spec {
                endpoint: Endpoint::Sentinel {
                    nodes: vec![("a".into(), 1), ("b".into(), 26379)],
                    master: "mymaster".into()
                },
                db: 2
            })
        );
        for bad in [
            &b"http://x"[..],
            b"redis://",
            b"redis://h:0",
            b"redis://h:99999",
            b"redis://h/x",
            b"redis://u:p@h",
            b"unix:relative",
            b"sentinel://a:1",
            b"sentinel://a:x/m",
        ] {
            assert!(
                parse_endpoint(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn key_files_and_credentials() {
        assert!(secret_from_key(b"short\n").is_err());
        let a = secret_from_key(b"0123456789abcdef0123\n").unwrap();
        assert_eq!(a, secret_from_key(b"0123456789abcdef0123").unwrap());
        assert_ne!(a, secret_from_key(b"0123456789abcdef0124").unwrap());
        assert_ne!(fingerprint(a), fingerprint([a[0], a[1] ^ 1]));
        assert_eq!(
            parse_auth(b"s3cret\n").unwrap(),
            Auth {
                user: None,
                password: b"s3cret".to_vec()
            }
        );
        assert_eq!(
            parse_auth(b"nginx pw x\n").map(|_| ()),
            Err("expected \"PASSWORD\" or \"USER PASSWORD\" on the first line".into())
        );
        assert_eq!(
            parse_auth(b"nginx pw").unwrap().user,
            Some(b"nginx".to_vec())
        );
    }

    #[test]
    fn names_hold_no_id_and_escape_the_pattern() {
        let n = Names::new(b"shop[1]");
        assert_eq!(
            n.session(0xab),
            b"sticky:shop[1]:s:00000000000000ab".to_vec()
        );
        assert_eq!(n.pattern, b"sticky:shop\\[1\\]:s:*".to_vec());
        assert_eq!(n.channel(), b"sticky:shop[1]");
    }

    #[test]
    fn values_round_trip() {
        let m = mem([1, 2]);
        let t = Table::attach(&m.header, &m.slots).unwrap();
        let k = t.key(b"abc");
        t.learn(&m.lock, k, 0xdead_beef, 1000, EXP, Bind::Keep);
        let (w, v) = t.entry(k, 1000, EXP).unwrap();
        assert_eq!(parse_value(&value(w, v)), Some((w, v)));
        let mut msg = value(w, v).to_vec();
        msg.extend_from_slice(b"00000000000000071700000000123");
        assert_eq!(parse_message(&msg), Some((w, v, 7, 1_700_000_000_123)));
        assert_eq!(parse_value(b"zz"), None);
        assert_eq!(parse_value(&[b'g'; 32]), None);
    }

    #[test]
    fn replies_are_bounded_before_decoding() {
        assert_eq!(reply_bounded(b"+OK\r\n", 3), Ok(true));
        assert_eq!(reply_bounded(b"*2\r\n$1\r\na\r\n", 3), Ok(false));
        assert_eq!(reply_bounded(b"*2\r\n$1\r\na\r\n:1\r\n", 3), Ok(true));
        assert_eq!(reply_bounded(b"*1\r\n*0\r\n", 3), Ok(true));
        let deep = b"*1\r\n".repeat(100_000);
        assert_eq!(
            reply_bounded(&deep, 3).map_err(|e| e.kind),
            Err(ErrorKind::Protocol)
        );
        assert_eq!(
            reply_bounded(b"$99999999999\r\n", 3).map_err(|e| e.kind),
            Err(ErrorKind::Protocol)
        );
        assert!(reply_bounded(b"?what\r\n", 3).is_err());
    }

    fn drain(link: &mut Link) -> String {
        let s = String::from_utf8_lossy(link.output()).into_owned();
        let n = link.output().len();
        link.consume(n);
        s
    }

    #[test]
    fn command_hello_checks_role_script_and_key() {
        let m = mem([1, 2]);
        let t = Table::attach(&m.header, &m.slots).unwrap();
        let z = zone(&m, &t, 1000);
        let auth = Auth {
            user: Some(b"lb".to_vec()),
            password: b"pw".to_vec(),
        };
        let mut l = Link::new(Role::Command { leader: true }, Names::new(b"z"), 7, 0x1234);
        l.hello(Some(&auth), 2, "");
        let out = drain(&mut l);
        assert!(out.starts_with(
            "*3\r\n$4\r\nAUTH\r\n$2\r\nlb\r\n$2\r\npw\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n"
        ));
        assert!(out.contains("ROLE") && out.contains("SCRIPT") && out.contains("sticky:z:key"));
        let p = l
            .input(
                b"+OK\r\n+OK\r\n*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n$3\r\nsha\r\n",
                Some(&z),
            )
            .unwrap();
        assert!(!p.ready);
        let p = l.input(b"$-1\r\n", Some(&z)).unwrap();
        assert!(p.ready && l.is_ready());

        // Another key: refused, and said so.
        let mut l = Link::new(Role::Command { leader: false }, Names::new(b"z"), 7, 0x1234);
        l.hello(None, 0, "");
        let e = l
            .input(
                b"*1\r\n$6\r\nmaster\r\n$3\r\nsha\r\n$16\r\n00000000000000ff\r\n",
                Some(&z),
            )
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::KeyMismatch);

        // A replica is not written to.
        let mut l = Link::new(Role::Command { leader: false }, Names::new(b"z"), 7, 0x1234);
        l.hello(None, 0, "");
        let e = l.input(b"*1\r\n$5\r\nslave\r\n", Some(&z)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Server);
    }

    fn ready_link(z: &Zone<'_, SpinLock>, leader: bool) -> Link {
        let mut l = Link::new(Role::Command { leader }, Names::new(b"z"), 7, 0x1234);
        l.hello(None, 0, "");
        l.input(b"*1\r\n$6\r\nmaster\r\n$3\r\nsha\r\n$-1\r\n", Some(z))
            .unwrap();
        drain(&mut l);
        assert!(l.is_ready());
        l
    }

    #[test]
    fn updates_carry_the_hash_and_conflicts_adopt_the_first_issuer() {
        let m = mem([1, 2]);
        let t = Table::attach(&m.header, &m.slots).unwrap();
        let z = zone(&m, &t, 1000);
        let mut l = ready_link(&z, false);
        let k = t.key(b"the-raw-id");
        assert!(
            !l.update(Kind::Keep, k, &z),
            "nothing to send for an unknown id"
        );
        t.learn(&m.lock, k, 5, 1000, EXP, Bind::Keep);
        assert!(l.update(Kind::Keep, k, &z));
        let out = drain(&mut l);
        assert!(out.contains("EVALSHA") && out.contains(&format!("sticky:z:s:{:016x}", k)));
        assert!(out.contains("600000"), "TTL is the idle timeout: {out}");
        assert!(!out.contains("the-raw-id"));
        l.input(b":1\r\n", Some(&z)).unwrap();
        assert_eq!(m.stats.published.load(Ordering::Relaxed), 1);

        // A full Redis loses the update, not the connection; a replica does.
        assert!(l.update(Kind::Keep, k, &z));
        let p = l.input(b"-OOM command not allowed\r\n", Some(&z)).unwrap();
        assert_eq!(p.refused.as_deref(), Some("OOM command not allowed"));
        assert_eq!(m.stats.dropped.load(Ordering::Relaxed), 1);
        assert!(l.update(Kind::Keep, k, &z));
        let e = l.input(
            b"-READONLY You can't write against a read only replica.\r\n",
            Some(&z),
        );
        assert_eq!(e.unwrap_err().kind, ErrorKind::Server);
        let mut l = ready_link(&z, false);

        // Redis says another server issued it first: adopted here.
        assert!(l.update(Kind::Keep, k, &z));
        let (w, v) = t.entry(k, 1000, EXP).unwrap();
        let theirs = value(w, entry_payload(9, 990));
        let mut reply = b"$32\r\n".to_vec();
        reply.extend_from_slice(&theirs);
        reply.extend_from_slice(b"\r\n");
        l.input(&reply, Some(&z)).unwrap();
        assert_eq!(t.lookup(k, 1000, EXP), crate::store::Lookup::Hit(9));
        assert_eq!(m.stats.conflicts.load(Ordering::Relaxed), 1);
        let _ = v;
    }

    #[test]
    fn subscriber_applies_others_messages_not_its_own_nor_expired_ones() {
        let m = mem([1, 2]);
        let t = Table::attach(&m.header, &m.slots).unwrap();
        let z = zone(&m, &t, 2000);
        let mut l = Link::new(Role::Subscriber, Names::new(b"z"), 7, 0);
        l.hello(None, 3, "");
        assert!(!drain(&mut l).contains("SELECT"));
        let p = l
            .input(
                b"*3\r\n$9\r\nsubscribe\r\n$8\r\nsticky:z\r\n:1\r\n",
                Some(&z),
            )
            .unwrap();
        assert!(p.subscribed);
        let msg = |key: &[u8], server: u32, last: u32, origin: u64| {
            let k = t.key(key);
            let word = k | u64::from((last / 60) & 0xffff);
            let mut m = value(word, entry_payload(server, last)).to_vec();
            m.extend_from_slice(&hex16(origin));
            m.extend_from_slice(b"1999990");
            let mut f =
                format!("*3\r\n$7\r\nmessage\r\n$8\r\nsticky:z\r\n${}\r\n", m.len()).into_bytes();
            f.extend_from_slice(&m);
            f.extend_from_slice(b"\r\n");
            f
        };
        l.input(&msg(b"a", 3, 1990, 8), Some(&z)).unwrap();
        assert_eq!(
            t.lookup(t.key(b"a"), 2000, EXP),
            crate::store::Lookup::Hit(3)
        );
        l.input(&msg(b"b", 3, 1990, 7), Some(&z)).unwrap();
        assert_eq!(
            t.lookup(t.key(b"b"), 2000, EXP),
            crate::store::Lookup::Miss,
            "own message"
        );
        l.input(&msg(b"c", 3, 1000, 8), Some(&z)).unwrap();
        assert_eq!(
            t.lookup(t.key(b"c"), 2000, EXP),
            crate::store::Lookup::Miss,
            "expired"
        );
        assert_eq!(m.stats.applied.load(Ordering::Relaxed), 1);
        assert_eq!(m.stats.delay_quantile_ms(0.99), Some(16));
    }

    #[test]
    fn resync_loads_then_writes_back() {
        let m = mem([1, 2]);
        let t = Table::attach(&m.header, &m.slots).unwrap();
        let z = zone(&m, &t, 1000);
        let mine = t.key(b"mine");
        t.learn(&m.lock, mine, 4, 1000, EXP, Bind::Keep);
        let mut l = ready_link(&z, true);
        l.start_resync(&m.stats, 1000);
        assert!(!l.resync_step(&z));
        assert!(drain(&mut l).contains("SCAN"));
        // One key in Redis, cursor 0: then MGET, then the push.
        let theirs = t.key(b"theirs");
        let v = value(theirs | (1000 / 60), entry_payload(6, 999));
        let key = format!("sticky:z:s:{theirs:016x}");
        let scan = format!("*2\r\n$1\r\n0\r\n*1\r\n${}\r\n{key}\r\n", key.len());
        l.input(scan.as_bytes(), Some(&z)).unwrap();
        let out = drain(&mut l);
        assert!(out.contains("MGET"), "{out}");
        assert!(
            out.contains(&format!("sticky:z:s:{:016x}", mine)),
            "pushed: {out}"
        );
        let mut mget = b"*1\r\n$32\r\n".to_vec();
        mget.extend_from_slice(&v);
        mget.extend_from_slice(b"\r\n");
        l.input(&mget, Some(&z)).unwrap();
        assert_eq!(t.lookup(theirs, 1000, EXP), crate::store::Lookup::Hit(6));
        assert!(!l.resyncing());
        assert_eq!(
            m.stats.clean_since.load(Ordering::Relaxed),
            1000,
            "a clean write-back"
        );
    }

    /// Runs a resync against an empty Redis; answers the session keys pushed.
    fn pushed(l: &mut Link, z: &Zone<'_, SpinLock>) -> Vec<String> {
        l.start_resync(z.stats, z.now);
        l.resync_step(z);
        drain(l);
        l.input(b"*2\r\n$1\r\n0\r\n*0\r\n", Some(z)).unwrap();
        let out = drain(l);
        // Redis stores each.
        let answers = ":0\r\n".repeat(l.in_flight());
        l.input(answers.as_bytes(), Some(z)).unwrap();
        out.split("sticky:z:s:")
            .skip(1)
            .map(|s| s[..16].to_string())
            .collect()
    }

    #[test]
    fn after_a_clean_sync_only_recent_sessions_are_written_back() {
        let m = mem([1, 2]);
        let t = Table::attach(&m.header, &m.slots).unwrap();
        let (old, recent) = (t.key(b"old"), t.key(b"recent"));
        t.learn(&m.lock, old, 4, 1000, EXP, Bind::Keep);
        t.learn(&m.lock, recent, 4, 1290, EXP, Bind::Keep);
        let z = zone(&m, &t, 1300);
        let mut l = ready_link(&z, true);
        assert_eq!(pushed(&mut l, &z).len(), 2, "the first write-back is whole");
        assert_eq!(m.stats.clean_since.load(Ordering::Relaxed), 1300);
        // A reload later: only what was used since (or in the last minute) goes again.
        t.lookup(recent, 1380, EXP);
        let z = zone(&m, &t, 1400);
        assert_eq!(pushed(&mut l, &z), vec![format!("{recent:016x}")]);
        // Something was lost: whole again.
        m.stats.lost();
        assert_eq!(pushed(&mut l, &z).len(), 2);
    }
}
