//! Parsing of the `sticky_session` directive's parameters, independent of nginx.

use core::fmt;

use crate::id::{Names, DEFAULT_MAX_ID_LEN, MAX_ID_LEN_LIMIT, MAX_NAMES, MAX_NAME_LEN};

/// Default idle timeout: one hour, longer than PHP's and Tomcat's default session lifetimes.
pub const DEFAULT_TIMEOUT: u32 = 3600;
/// Default zone size when `zone=` is not given.
pub const DEFAULT_ZONE_SIZE: usize = 1024 * 1024;
/// Smallest zone: the slab allocator needs a few pages of its own.
pub const MIN_ZONE_SIZE: usize = 32 * 1024;
/// Body bytes (after inflating) scanned per response when `max_scan=` is not
/// given: far past where pages hand out their session, and a bound on what
/// one hostile response can cost a worker.
pub const DEFAULT_MAX_SCAN: usize = 1024 * 1024;
/// Ids one response records with `learn=all` when `max_learn=` is not given:
/// a page carries its own session and perhaps a few more, while one that
/// reflects user content can carry a new id every few bytes, each a table
/// write (and a sync publish).
pub const DEFAULT_MAX_LEARN: u32 = 32;
/// At most this many `lookup=` sources and `types=` entries.
pub const MAX_LIST: usize = 8;
/// Longest `types=` entry.
pub const MAX_TYPE_LEN: usize = 64;

/// `zone=NAME:SIZE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneSpec<'a> {
    /// Zone name, borrowed from the directive's argument.
    pub name: &'a [u8],
    /// Zone size in bytes.
    pub size: usize,
}

/// Where a request's id is looked for (`lookup=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source<'a> {
    /// `NAME=ID` in the query string.
    Query,
    /// `;NAME=ID` path parameters.
    Path,
    /// `NAME=ID` in a buffered `application/x-www-form-urlencoded` body.
    Body,
    /// A `Cookie` named NAME.
    Cookie,
    /// An nginx variable (name without `$`) whose whole value is the id.
    Variable(&'a [u8]),
}

/// Sources used when no `lookup=` is given.
pub const DEFAULT_LOOKUP: [Source<'static>; 4] =
    [Source::Query, Source::Path, Source::Body, Source::Cookie];

/// Response content types whose bodies are scanned (`types=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Types {
    /// Lowercase MIME types, or `*`.
    pub(crate) list: Vec<Vec<u8>>,
    /// `text/html` is scanned (listed, or `*`).
    pub(crate) html: bool,
    /// `application/xhtml+xml` is scanned.
    pub(crate) xhtml: bool,
}

impl Default for Types {
    fn default() -> Self {
        Types::new(vec![b"text/html".to_vec()])
    }
}

impl Types {
    fn new(list: Vec<Vec<u8>>) -> Self {
        let listed = |t: &[u8]| list.iter().any(|l| l == b"*" || l == t);
        Types {
            html: listed(b"text/html"),
            xhtml: listed(b"application/xhtml+xml"),
            list,
        }
    }
}

/// A parsed `sticky_session` directive with defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive<'a> {
    /// Id parameter names, in lookup order.
    pub names: Names,
    /// The shared zone; `None` means an implicit zone named after the upstream.
    pub zone: Option<ZoneSpec<'a>>,
    /// Idle timeout in seconds.
    pub timeout: u32,
    /// Longest id accepted, in bytes.
    pub max_id_len: usize,
    /// Where a request's id is looked for, in order.
    pub lookup: Vec<Source<'a>>,
    /// Content types whose bodies are scanned.
    pub types: Types,
    /// Absolute session lifetime in seconds; 0 = none.
    pub max_age: u32,
    /// `fallback=off`: answer 502 instead of balancing a session whose server
    /// is unusable.
    pub strict: bool,
    /// `state=FILE`: where the table is saved and restored.
    pub state: Option<&'a [u8]>,
    /// `save_every=TIME`: seconds between two periodic writes of the state file.
    pub save_every: u32,
    /// `create=$variable`, repeatable: variables (names without `$`)
    /// evaluated when a response's header arrives, each naming an id the
    /// response hands out (e.g. `$upstream_http_mcp_session_id`).
    pub create: Vec<&'a [u8]>,
    /// `learn=`: how many of a response's ids are learned.
    pub learn: Learn,
    /// `max_scan=`: body bytes scanned per response, after inflating.
    pub max_scan: usize,
    /// `max_learn=`: ids one response records with `learn=all`.
    pub max_learn: u32,
    /// `route=suffix:SEP|prefix:SEP`: where ids carry the issuing server's route.
    pub route: Option<crate::route::RouteSpec>,
    /// `balance=sessions`: new sessions go to the server with the fewest
    /// live sessions per weight (default: round robin).
    pub balance_sessions: bool,
    /// `sync=URL sync_key=FILE [sync_auth=FILE] [sync_db=N]`: share the
    /// zone's sessions with other nginx through Redis.
    pub sync: Option<SyncConf<'a>>,
}

/// The sync parameters of a directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncConf<'a> {
    /// Where Redis is, and the database.
    pub spec: crate::sync::Spec,
    /// `sync_key=`: the shared hash key file.
    pub key_file: &'a [u8],
    /// `sync_auth=`: the credentials file.
    pub auth_file: Option<&'a [u8]>,
}

/// How many ids one response teaches (`learn=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Learn {
    /// `learn=first` (default): a response hands out one session, so the
    /// first id learned from it (headers first, then the body) ends the
    /// scan; the rest of the body is passed on unread.
    #[default]
    First,
    /// `learn=all`: every id in the response is learned (for applications
    /// whose pages hand out several sessions, e.g. one regenerated mid-page).
    All,
}

/// Why a directive was refused; `Display` gives the phrase nginx prints after
/// the directive name, e.g. `invalid parameter "foo"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// An unknown parameter.
    InvalidParameter(String),
    /// A parameter given twice that may appear once.
    Duplicate(&'static str),
    /// A bad `name=` value.
    InvalidName(String),
    /// More than [`MAX_NAMES`] names.
    TooManyNames,
    /// `zone=` without `NAME:SIZE`.
    InvalidZone(String),
    /// `zone=` with an unparsable size.
    InvalidZoneSize(String),
    /// `zone=` smaller than [`MIN_ZONE_SIZE`].
    ZoneTooSmall(String),
    /// `timeout=` that is not a positive time.
    InvalidTimeout(String),
    /// `max_id_len=` out of range.
    InvalidMaxIdLen(String),
    /// `lookup=` with an unknown or repeated source.
    InvalidLookup(String),
    /// `types=` with a malformed entry.
    InvalidTypes(String),
    /// `max_age=` not a time between 1m and 30d.
    InvalidMaxAge(String),
    /// `fallback=` other than on/off.
    InvalidFallback(String),
    /// `state=` with an empty path.
    InvalidState(String),
    /// `save_every=` not a time of at least 1s, or without `state=`.
    InvalidSaveEvery(String),
    /// `create=` not a `$variable`, or more than [`MAX_LIST`] of them.
    InvalidCreate(String),
    /// `learn=` other than first/all.
    InvalidLearn(String),
    /// `max_scan=` not a size of at least 1k.
    InvalidMaxScan(String),
    /// `max_learn=` not a positive number, or without `learn=all`.
    InvalidMaxLearn(String),
    /// `route=` other than `suffix:SEP` / `prefix:SEP`.
    InvalidRoute(String),
    /// `balance=` other than round_robin/sessions.
    InvalidBalance(String),
    /// `sync=` that is not a Redis endpoint (value, reason).
    InvalidSync(String, String),
    /// `sync_key=`, `sync_auth=` or `sync_db=` without `sync=`, `sync=`
    /// without `sync_key=`, or a bad value.
    InvalidSyncParam(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidParameter(p) => write!(f, "invalid parameter \"{p}\""),
            ConfigError::Duplicate(p) => write!(f, "duplicate \"{p}\" parameter"),
            ConfigError::InvalidName(p) => write!(
                f,
                "invalid name \"{p}\" (1-{MAX_NAME_LEN} characters: letters, digits, \"_\", \"-\", \".\")"
            ),
            ConfigError::TooManyNames => write!(f, "too many \"name\" parameters (at most {MAX_NAMES})"),
            ConfigError::InvalidZone(p) => write!(f, "invalid zone \"{p}\" (expected NAME:SIZE)"),
            ConfigError::InvalidZoneSize(p) => write!(f, "invalid zone size \"{p}\""),
            ConfigError::ZoneTooSmall(p) => write!(f, "zone \"{p}\" is too small (at least 32k)"),
            ConfigError::InvalidTimeout(p) => write!(f, "invalid timeout \"{p}\""),
            ConfigError::InvalidLookup(p) => write!(
                f,
                "invalid lookup \"{p}\" (a comma-separated list of query, path, body, cookie \
                 and $variable, each at most once, at most {MAX_LIST})"
            ),
            ConfigError::InvalidTypes(p) => write!(
                f,
                "invalid types \"{p}\" (a comma-separated list of MIME types or \"*\", at most {MAX_LIST})"
            ),
            ConfigError::InvalidMaxAge(p) => {
                write!(f, "invalid max_age \"{p}\" (a time from 1m to 30d)")
            }
            ConfigError::InvalidFallback(p) => {
                write!(f, "invalid fallback \"{p}\" (\"on\" or \"off\")")
            }
            ConfigError::InvalidState(p) => write!(f, "invalid state file \"{p}\""),
            ConfigError::InvalidCreate(p) => write!(
                f,
                "invalid create \"{p}\" (a $variable, at most {MAX_LIST} create parameters)"
            ),
            ConfigError::InvalidSaveEvery(p) => {
                write!(f, "invalid save_every \"{p}\" (a time of at least 1s, with \"state\")")
            }
            ConfigError::InvalidLearn(p) => {
                write!(f, "invalid learn \"{p}\" (\"first\" or \"all\")")
            }
            ConfigError::InvalidMaxScan(p) => {
                write!(f, "invalid max_scan \"{p}\" (a size of at least 1k)")
            }
            ConfigError::InvalidMaxLearn(p) => write!(
                f,
                "invalid max_learn \"{p}\" (a number from 1 to {}, with \"learn=all\")",
                u32::MAX
            ),
            ConfigError::InvalidRoute(p) => write!(
                f,
                "invalid route \"{p}\" (\"suffix:SEP\" or \"prefix:SEP\", SEP one punctuation character)"
            ),
            ConfigError::InvalidBalance(p) => {
                write!(f, "invalid balance \"{p}\" (\"round_robin\" or \"sessions\")")
            }
            ConfigError::InvalidSync(p, why) => write!(f, "invalid sync \"{p}\": {why}"),
            ConfigError::InvalidSyncParam(why) => f.write_str(why),
            ConfigError::InvalidMaxIdLen(p) => write!(
                f,
                "invalid max_id_len \"{p}\" (1-{MAX_ID_LEN_LIMIT})"
            ),
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parses the directive's parameters (the words after `sticky_session`).
pub fn parse<'a>(args: &[&'a [u8]]) -> Result<Directive<'a>, ConfigError> {
    let mut names = Names::new();
    let mut zone = None;
    let mut timeout = None;
    let mut max_id_len = None;
    let mut lookup = None;
    let mut types = None;
    let mut max_age = None;
    let mut strict = None;
    let mut state = None;
    let mut learn = None;
    let mut max_scan = None;
    let mut max_learn = None;
    let mut save_every = None;
    let (mut sync, mut sync_key, mut sync_auth, mut sync_db) = (None, None, None, None);
    let mut balance = None;
    let mut route = None;
    let mut create = Vec::new();

    for &arg in args {
        if let Some(v) = arg.strip_prefix(b"name=") {
            if names.len() == MAX_NAMES {
                return Err(ConfigError::TooManyNames);
            }
            // name=REQUEST[:RESPONSE_KEY]
            let (name, key) = match v.iter().position(|&c| c == b':') {
                Some(i) => (&v[..i], Some(&v[i + 1..])),
                None => (v, None),
            };
            if !names.push(name) || key.is_some_and(|k| !names.push_key(k)) {
                return Err(ConfigError::InvalidName(lossy(v)));
            }
        } else if let Some(v) = arg.strip_prefix(b"zone=") {
            if zone.is_some() {
                return Err(ConfigError::Duplicate("zone"));
            }
            zone = Some(parse_zone(v)?);
        } else if let Some(v) = arg.strip_prefix(b"timeout=") {
            if timeout.is_some() {
                return Err(ConfigError::Duplicate("timeout"));
            }
            timeout = Some(
                parse_time(v)
                    .filter(|&t| t > 0)
                    .ok_or_else(|| ConfigError::InvalidTimeout(lossy(v)))?,
            );
        } else if let Some(v) = arg.strip_prefix(b"max_id_len=") {
            if max_id_len.is_some() {
                return Err(ConfigError::Duplicate("max_id_len"));
            }
            max_id_len = Some(
                parse_number(v)
                    .filter(|n| (1..=MAX_ID_LEN_LIMIT as u64).contains(n))
                    .ok_or_else(|| ConfigError::InvalidMaxIdLen(lossy(v)))?
                    as usize,
            );
        } else if let Some(v) = arg.strip_prefix(b"lookup=") {
            if lookup.is_some() {
                return Err(ConfigError::Duplicate("lookup"));
            }
            lookup = Some(parse_lookup(v).ok_or_else(|| ConfigError::InvalidLookup(lossy(v)))?);
        } else if let Some(v) = arg.strip_prefix(b"types=") {
            if types.is_some() {
                return Err(ConfigError::Duplicate("types"));
            }
            types = Some(parse_types(v).ok_or_else(|| ConfigError::InvalidTypes(lossy(v)))?);
        } else if let Some(v) = arg.strip_prefix(b"max_age=") {
            if max_age.is_some() {
                return Err(ConfigError::Duplicate("max_age"));
            }
            max_age = Some(
                parse_time(v)
                    .filter(|t| (60..=crate::store::MAX_AGE_LIMIT).contains(t))
                    .ok_or_else(|| ConfigError::InvalidMaxAge(lossy(v)))?,
            );
        } else if let Some(v) = arg.strip_prefix(b"fallback=") {
            if strict.is_some() {
                return Err(ConfigError::Duplicate("fallback"));
            }
            strict = Some(match v {
                b"on" => false,
                b"off" => true,
                _ => return Err(ConfigError::InvalidFallback(lossy(v))),
            });
        } else if let Some(v) = arg.strip_prefix(b"state=") {
            if state.is_some() {
                return Err(ConfigError::Duplicate("state"));
            }
            if v.is_empty() || v.contains(&0) || v.ends_with(b"/") {
                return Err(ConfigError::InvalidState(lossy(v)));
            }
            state = Some(v);
        } else if let Some(v) = arg.strip_prefix(b"learn=") {
            if learn.is_some() {
                return Err(ConfigError::Duplicate("learn"));
            }
            learn = Some(match v {
                b"first" => Learn::First,
                b"all" => Learn::All,
                _ => return Err(ConfigError::InvalidLearn(lossy(v))),
            });
        } else if let Some(v) = arg.strip_prefix(b"create=") {
            match v.strip_prefix(b"$").filter(|n| valid_variable(n)) {
                Some(name) if create.len() < MAX_LIST => create.push(name),
                _ => return Err(ConfigError::InvalidCreate(lossy(v))),
            }
        } else if let Some(v) = arg.strip_prefix(b"save_every=") {
            if save_every.is_some() {
                return Err(ConfigError::Duplicate("save_every"));
            }
            save_every = Some(
                parse_time(v)
                    .filter(|&t| t >= 1)
                    .ok_or_else(|| ConfigError::InvalidSaveEvery(lossy(v)))?,
            );
        } else if let Some(v) = arg.strip_prefix(b"route=") {
            if route.is_some() {
                return Err(ConfigError::Duplicate("route"));
            }
            route = Some(
                crate::route::RouteSpec::parse(v)
                    .ok_or_else(|| ConfigError::InvalidRoute(lossy(v)))?,
            );
        } else if let Some(v) = arg.strip_prefix(b"balance=") {
            if balance.is_some() {
                return Err(ConfigError::Duplicate("balance"));
            }
            balance = Some(match v {
                b"round_robin" => false,
                b"sessions" => true,
                _ => return Err(ConfigError::InvalidBalance(lossy(v))),
            });
        } else if let Some(v) = arg.strip_prefix(b"sync=") {
            if sync.is_some() {
                return Err(ConfigError::Duplicate("sync"));
            }
            sync = Some(
                crate::sync::parse_endpoint(v)
                    .map_err(|e| ConfigError::InvalidSync(lossy(v), e))?,
            );
        } else if let Some(v) = arg.strip_prefix(b"sync_key=") {
            if sync_key.is_some() {
                return Err(ConfigError::Duplicate("sync_key"));
            }
            if v.is_empty() || v.contains(&0) {
                return Err(ConfigError::InvalidSyncParam(format!(
                    "invalid sync_key \"{}\"",
                    lossy(v)
                )));
            }
            sync_key = Some(v);
        } else if let Some(v) = arg.strip_prefix(b"sync_auth=") {
            if sync_auth.is_some() {
                return Err(ConfigError::Duplicate("sync_auth"));
            }
            if v.is_empty() || v.contains(&0) {
                return Err(ConfigError::InvalidSyncParam(format!(
                    "invalid sync_auth \"{}\"",
                    lossy(v)
                )));
            }
            sync_auth = Some(v);
        } else if let Some(v) = arg.strip_prefix(b"sync_db=") {
            if sync_db.is_some() {
                return Err(ConfigError::Duplicate("sync_db"));
            }
            sync_db = Some(
                core::str::from_utf8(v)
                    .ok()
                    .and_then(|d| d.parse::<u32>().ok())
                    .filter(|&d| d < 1 << 16)
                    .ok_or_else(|| {
                        ConfigError::InvalidSyncParam(format!("invalid sync_db \"{}\"", lossy(v)))
                    })?,
            );
        } else if let Some(v) = arg.strip_prefix(b"max_scan=") {
            if max_scan.is_some() {
                return Err(ConfigError::Duplicate("max_scan"));
            }
            max_scan = Some(
                parse_size(v)
                    .filter(|&n| n >= 1024)
                    .ok_or_else(|| ConfigError::InvalidMaxScan(lossy(v)))?,
            );
        } else if let Some(v) = arg.strip_prefix(b"max_learn=") {
            if max_learn.is_some() {
                return Err(ConfigError::Duplicate("max_learn"));
            }
            let n = core::str::from_utf8(v)
                .ok()
                .filter(|d| d.bytes().all(|c| c.is_ascii_digit()))
                .and_then(|d| d.parse::<u32>().ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| ConfigError::InvalidMaxLearn(lossy(v)))?;
            max_learn = Some((n, v));
        } else {
            return Err(ConfigError::InvalidParameter(lossy(arg)));
        }
    }

    if let (Some((_, v)), false) = (max_learn, learn == Some(Learn::All)) {
        return Err(ConfigError::InvalidMaxLearn(lossy(v)));
    }
    if let (Some(t), None) = (save_every, state) {
        return Err(ConfigError::InvalidSaveEvery(t.to_string()));
    }
    let sync = match (sync, sync_key) {
        (None, None) if sync_auth.is_none() && sync_db.is_none() => None,
        (None, _) => {
            return Err(ConfigError::InvalidSyncParam(
                "\"sync_key\", \"sync_auth\" and \"sync_db\" need \"sync\"".into(),
            ))
        }
        (Some(_), None) => {
            return Err(ConfigError::InvalidSyncParam(
                "\"sync\" needs \"sync_key=FILE\": every nginx of a cluster must hash ids \
                 with the same key"
                    .into(),
            ))
        }
        (Some(mut spec), Some(key_file)) => {
            if let Some(db) = sync_db {
                if spec.db != 0 && spec.db != db {
                    return Err(ConfigError::InvalidSyncParam(format!(
                        "\"sync_db={db}\" differs from the database in \"sync\" ({})",
                        spec.db
                    )));
                }
                spec.db = db;
            }
            Some(SyncConf {
                spec,
                key_file,
                auth_file: sync_auth,
            })
        }
    };
    Ok(Directive {
        names: if names.is_empty() {
            Names::defaults()
        } else {
            names
        },
        zone,
        timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        max_id_len: max_id_len.unwrap_or(DEFAULT_MAX_ID_LEN),
        lookup: lookup.unwrap_or_else(|| DEFAULT_LOOKUP.to_vec()),
        types: types.unwrap_or_default(),
        max_age: max_age.unwrap_or(0),
        strict: strict.unwrap_or(false),
        state,
        learn: learn.unwrap_or_default(),
        max_scan: max_scan.unwrap_or(DEFAULT_MAX_SCAN),
        max_learn: max_learn.map_or(DEFAULT_MAX_LEARN, |(n, _)| n),
        save_every: save_every.unwrap_or(crate::state::DEFAULT_SAVE_EVERY),
        create,
        balance_sessions: balance.unwrap_or(false),
        route,
        sync,
    })
}

/// An nginx variable name (without `$`).
fn valid_variable(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

fn parse_lookup(v: &[u8]) -> Option<Vec<Source<'_>>> {
    let mut out = Vec::new();
    for word in v.split(|&c| c == b',') {
        let source = match word {
            b"query" => Source::Query,
            b"path" => Source::Path,
            b"body" => Source::Body,
            b"cookie" => Source::Cookie,
            _ => {
                let name = word.strip_prefix(b"$").filter(|n| valid_variable(n))?;
                Source::Variable(name)
            }
        };
        if out.contains(&source) || out.len() == MAX_LIST {
            return None;
        }
        out.push(source);
    }
    Some(out)
}

fn parse_types(v: &[u8]) -> Option<Types> {
    let mut list: Vec<Vec<u8>> = Vec::new();
    for word in v.split(|&c| c == b',') {
        let ok = word == b"*"
            || (word.len() <= MAX_TYPE_LEN
                && word.iter().filter(|&&c| c == b'/').count() == 1
                && word.first() != Some(&b'/')
                && word.last() != Some(&b'/')
                && word
                    .iter()
                    .all(|&c| c.is_ascii_alphanumeric() || b"/+-.!#$&^_".contains(&c)));
        if !ok || list.len() == MAX_LIST {
            return None;
        }
        list.push(word.to_ascii_lowercase());
    }
    Some(Types::new(list))
}

fn parse_zone(v: &[u8]) -> Result<ZoneSpec<'_>, ConfigError> {
    let colon = v
        .iter()
        .rposition(|&c| c == b':')
        .filter(|&i| i > 0)
        .ok_or_else(|| ConfigError::InvalidZone(lossy(v)))?;
    let (name, size) = (&v[..colon], &v[colon + 1..]);
    let size = parse_size(size).ok_or_else(|| ConfigError::InvalidZoneSize(lossy(size)))?;
    if size < MIN_ZONE_SIZE {
        return Err(ConfigError::ZoneTooSmall(lossy(v)));
    }
    Ok(ZoneSpec { name, size })
}

fn parse_number(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &c| n * 10 + u64::from(c - b'0')))
}

/// Sizes as nginx writes them: `1048576`, `512k`, `10m`, `1g`.
pub fn parse_size(v: &[u8]) -> Option<usize> {
    let (digits, unit) = match v.last()? {
        b'k' | b'K' => (&v[..v.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&v[..v.len() - 1], 1 << 20),
        b'g' | b'G' => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    let n = parse_number(digits)?.checked_mul(unit)?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n <= isize::MAX as usize)
}

/// Times as nginx writes them, in seconds: `90`, `30s`, `15m`, `1h30m`, `2d`, `1w`.
pub fn parse_time(v: &[u8]) -> Option<u32> {
    if v.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = v;
    while !rest.is_empty() {
        let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        let n = parse_number(&rest[..digits])?;
        rest = &rest[digits..];
        let unit = match rest.first() {
            None => 1,
            Some(b's') => 1,
            Some(b'm') => 60,
            Some(b'h') => 3600,
            Some(b'd') => 86_400,
            Some(b'w') => 604_800,
            Some(_) => return None,
        };
        if !rest.is_empty() {
            rest = &rest[1..];
        } else if digits != v.len() {
            // A bare number is only allowed alone: "1h30" is ambiguous.
            return None;
        }
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    u32::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<&[u8]> {
        s.split_whitespace().map(str::as_bytes).collect()
    }

    #[test]
    fn defaults_apply_when_no_parameter_is_given() {
        let d = parse(&[]).unwrap();
        assert_eq!(
            d.names.iter().collect::<Vec<_>>(),
            vec![&b"PHPSESSID"[..], b"jsessionid", b"sid"]
        );
        assert_eq!(d.zone, None);
        assert_eq!(d.timeout, 3600);
        assert_eq!(d.max_id_len, 128);
        assert_eq!(d.lookup, DEFAULT_LOOKUP.to_vec());
        assert_eq!(d.types, Types::default());
    }

    #[test]
    fn lifetime_fallback_state() {
        let d = parse(&args(
            "max_age=8h fallback=off state=/var/lib/nginx/shop.state",
        ))
        .unwrap();
        assert_eq!(d.max_age, 8 * 3600);
        assert!(d.strict);
        assert_eq!(d.state, Some(&b"/var/lib/nginx/shop.state"[..]));
        let d = parse(&args("fallback=on")).unwrap();
        assert!(!d.strict);
        assert_eq!(d.learn, Learn::First);
        assert_eq!(parse(&args("learn=all")).unwrap().learn, Learn::All);
        assert_eq!((d.max_age, d.state), (0, None));
        assert_eq!(d.max_scan, DEFAULT_MAX_SCAN);
        assert_eq!(parse(&args("max_scan=64k")).unwrap().max_scan, 64 << 10);
        assert_eq!(d.max_learn, DEFAULT_MAX_LEARN);
        assert_eq!(
            parse(&args("learn=all max_learn=100000"))
                .unwrap()
                .max_learn,
            100_000
        );
        let d = parse(&args("name=id:connectionToken name=sid")).unwrap();
        assert_eq!(d.names.iter().collect::<Vec<_>>(), vec![&b"id"[..], b"sid"]);
        assert_eq!(
            d.names.responses().collect::<Vec<_>>(),
            vec![&b"id"[..], b"sid", b"connectionToken"]
        );
        let d = parse(&args(
            "create=$upstream_http_mcp_session_id create=$sent_id",
        ))
        .unwrap();
        assert_eq!(
            d.create,
            vec![&b"upstream_http_mcp_session_id"[..], b"sent_id"]
        );
        assert!(parse(&args("")).unwrap().create.is_empty());
    }

    #[test]
    fn lookup_and_types() {
        let d = parse(&args(
            "lookup=cookie,$my_sid,query types=text/html,text/event-stream",
        ))
        .unwrap();
        assert_eq!(
            d.lookup,
            vec![Source::Cookie, Source::Variable(b"my_sid"), Source::Query]
        );
        assert_eq!(
            d.types.list,
            vec![b"text/html".to_vec(), b"text/event-stream".to_vec()]
        );
        assert!(d.types.html && !d.types.xhtml);
        let any = parse(&args("types=*")).unwrap();
        assert!(any.types.html && any.types.xhtml);
        assert_eq!(Types::default().list, vec![b"text/html".to_vec()]);
    }

    #[test]
    fn all_parameters() {
        let d = parse(&args(
            "name=sid name=PHPSESSID zone=web:10m timeout=30m max_id_len=64",
        ))
        .unwrap();
        assert_eq!(
            d.names.iter().collect::<Vec<_>>(),
            vec![&b"sid"[..], b"PHPSESSID"]
        );
        assert_eq!(
            d.zone,
            Some(ZoneSpec {
                name: b"web",
                size: 10 << 20
            })
        );
        assert_eq!(d.timeout, 1800);
        assert_eq!(d.max_id_len, 64);
    }

    #[test]
    fn sync_parameters() {
        let d = parse(&args(
            "zone=shop:10m sync=redis://10.0.0.5:6380/2 sync_key=/etc/nginx/sticky.key \
             sync_auth=/etc/nginx/redis.auth",
        ))
        .unwrap();
        let sync = d.sync.unwrap();
        assert_eq!(sync.spec.to_string(), "redis://10.0.0.5:6380/2");
        assert_eq!(sync.key_file, b"/etc/nginx/sticky.key");
        assert_eq!(sync.auth_file, Some(&b"/etc/nginx/redis.auth"[..]));
        assert!(parse(&args("balance=sessions")).unwrap().balance_sessions);
        assert!(
            !parse(&args("balance=round_robin"))
                .unwrap()
                .balance_sessions
        );
        let unix = parse(&args("sync=unix:/run/redis.sock sync_db=4 sync_key=/k")).unwrap();
        assert_eq!(unix.sync.unwrap().spec.db, 4);
        assert_eq!(parse(&args("zone=a:1m")).unwrap().sync, None);
        let errors = [
            ("sync=redis://h", "\"sync\" needs \"sync_key=FILE\": every nginx of a cluster must hash ids with the same key"),
            ("sync_key=/k", "\"sync_key\", \"sync_auth\" and \"sync_db\" need \"sync\""),
            ("sync=redis://h/1 sync_db=2 sync_key=/k", "\"sync_db=2\" differs from the database in \"sync\" (1)"),
            ("sync=http://h sync_key=/k", "invalid sync \"http://h\": expected redis://HOST[:PORT][/DB], unix:PATH or sentinel://HOST[:PORT],.../MASTER"),
            ("sync=redis://u:p@h sync_key=/k", "invalid sync \"redis://u:p@h\": credentials belong in \"sync_auth=FILE\", not in the URL"),
            ("sync=redis://h sync=redis://h", "duplicate \"sync\" parameter"),
            ("balance=least", "invalid balance \"least\" (\"round_robin\" or \"sessions\")"),
            ("route=suffix", "invalid route \"suffix\" (\"suffix:SEP\" or \"prefix:SEP\", SEP one punctuation character)"),
            ("sync=redis://h sync_key= ", "invalid sync_key \"\""),
            ("sync=redis://h sync_key=/k sync_db=x", "invalid sync_db \"x\""),
        ];
        for (a, want) in errors {
            assert_eq!(parse(&args(a)).unwrap_err().to_string(), want, "{a}");
        }
    }

    #[test]
    fn errors_read_like_nginx() {
        let cases = [
            ("bogus", "invalid parameter \"bogus\""),
            ("zone=a:1m zone=b:1m", "duplicate \"zone\" parameter"),
            ("zone=a", "invalid zone \"a\" (expected NAME:SIZE)"),
            ("zone=:1m", "invalid zone \":1m\" (expected NAME:SIZE)"),
            ("zone=a:lots", "invalid zone size \"lots\""),
            ("zone=a:1k", "zone \"a:1k\" is too small (at least 32k)"),
            ("timeout=0", "invalid timeout \"0\""),
            ("timeout=5x", "invalid timeout \"5x\""),
            ("timeout=1h30", "invalid timeout \"1h30\""),
            ("timeout=", "invalid timeout \"\""),
            (
                "name=",
                "invalid name \"\" (1-32 characters: letters, digits, \"_\", \"-\", \".\")",
            ),
            (
                "name=a&b",
                "invalid name \"a&b\" (1-32 characters: letters, digits, \"_\", \"-\", \".\")",
            ),
            (
                "name=sid name=sid",
                "invalid name \"sid\" (1-32 characters: letters, digits, \"_\", \"-\", \".\")",
            ),
            ("max_id_len=0", "invalid max_id_len \"0\" (1-512)"),
            (
                "lookup=query,header",
                "invalid lookup \"query,header\" (a comma-separated list of query, path, body, \
                 cookie and $variable, each at most once, at most 8)",
            ),
            (
                "lookup=query,query",
                "invalid lookup \"query,query\" (a comma-separated list of query, path, body, \
                 cookie and $variable, each at most once, at most 8)",
            ),
            (
                "lookup=$",
                "invalid lookup \"$\" (a comma-separated list of query, path, body, \
                 cookie and $variable, each at most once, at most 8)",
            ),
            (
                "types=html",
                "invalid types \"html\" (a comma-separated list of MIME types or \"*\", at most 8)",
            ),
            (
                "types=text/html,",
                "invalid types \"text/html,\" (a comma-separated list of MIME types or \"*\", at most 8)",
            ),
            ("types=* types=*", "duplicate \"types\" parameter"),
            ("max_age=30s", "invalid max_age \"30s\" (a time from 1m to 30d)"),
            ("max_age=31d", "invalid max_age \"31d\" (a time from 1m to 30d)"),
            ("fallback=no", "invalid fallback \"no\" (\"on\" or \"off\")"),
            ("learn=once", "invalid learn \"once\" (\"first\" or \"all\")"),
            ("learn=all learn=first", "duplicate \"learn\" parameter"),
            ("state=", "invalid state file \"\""),
            ("state=/tmp/", "invalid state file \"/tmp/\""),
            ("state=/s save_every=0", "invalid save_every \"0\" (a time of at least 1s, with \"state\")"),
            ("save_every=5m", "invalid save_every \"300\" (a time of at least 1s, with \"state\")"),
            ("max_id_len=513", "invalid max_id_len \"513\" (1-512)"),
            ("max_scan=512", "invalid max_scan \"512\" (a size of at least 1k)"),
            (
                "name=id:",
                "invalid name \"id:\" (1-32 characters: letters, digits, \"_\", \"-\", \".\")",
            ),
            (
                "name=id:id",
                "invalid name \"id:id\" (1-32 characters: letters, digits, \"_\", \"-\", \".\")",
            ),
            (
                "create=upstream_http_x",
                "invalid create \"upstream_http_x\" (a $variable, at most 8 create parameters)",
            ),
            (
                "create=$a-b",
                "invalid create \"$a-b\" (a $variable, at most 8 create parameters)",
            ),
            ("max_scan=lots", "invalid max_scan \"lots\" (a size of at least 1k)"),
            ("max_scan=1m max_scan=2m", "duplicate \"max_scan\" parameter"),
            (
                "learn=all max_learn=0",
                "invalid max_learn \"0\" (a number from 1 to 4294967295, with \"learn=all\")",
            ),
            (
                "learn=all max_learn=+5",
                "invalid max_learn \"+5\" (a number from 1 to 4294967295, with \"learn=all\")",
            ),
            (
                "learn=all max_learn=4294967296",
                "invalid max_learn \"4294967296\" (a number from 1 to 4294967295, with \"learn=all\")",
            ),
            (
                "max_learn=0100",
                "invalid max_learn \"0100\" (a number from 1 to 4294967295, with \"learn=all\")",
            ),
            (
                "max_learn=100",
                "invalid max_learn \"100\" (a number from 1 to 4294967295, with \"learn=all\")",
            ),
            (
                "learn=first max_learn=100",
                "invalid max_learn \"100\" (a number from 1 to 4294967295, with \"learn=all\")",
            ),
            ("learn=all max_learn=5 max_learn=6", "duplicate \"max_learn\" parameter"),
            (
                "name=a name=b name=c name=d name=e name=f name=g name=h name=i",
                "too many \"name\" parameters (at most 8)",
            ),
        ];
        for (input, want) in cases {
            let err = parse(&args(input)).expect_err(input);
            assert_eq!(err.to_string(), want, "input {input:?}");
        }
    }

    #[test]
    fn sizes_and_times() {
        for (s, n) in [
            ("32768", 32768),
            ("64k", 65536),
            ("2M", 2 << 20),
            ("1g", 1 << 30),
        ] {
            assert_eq!(parse_size(s.as_bytes()), Some(n), "{s}");
        }
        for s in ["", "k", "1x", "-1", "99999999999999999999"] {
            assert_eq!(parse_size(s.as_bytes()), None, "{s}");
        }
        for (s, n) in [
            ("90", 90),
            ("30s", 30),
            ("15m", 900),
            ("1h30m", 5400),
            ("2d", 172_800),
            ("1w", 604_800),
        ] {
            assert_eq!(parse_time(s.as_bytes()), Some(n), "{s}");
        }
        for s in ["", "h", "1y", "1h30", "10000000000s"] {
            assert_eq!(parse_time(s.as_bytes()), None, "{s}");
        }
    }
}
