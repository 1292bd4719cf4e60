//! What a session id is: the bytes it may contain, how long it may be, and
//! the parameter names it goes by. Requests, response bodies and headers,
//! the C API and the configuration all ask here.

/// At most this many `name=` parameters per directive.
pub const MAX_NAMES: usize = 8;
/// Longest accepted id parameter name.
pub const MAX_NAME_LEN: usize = 32;
/// Default longest id accepted from a request or a response.
pub const DEFAULT_MAX_ID_LEN: usize = 128;
/// Upper bound for `max_id_len=`.
pub const MAX_ID_LEN_LIMIT: usize = 512;
/// Names used when no `name=` is given: PHP, Java servlets, generic portals.
pub const DEFAULT_NAMES: [&[u8]; 3] = [b"PHPSESSID", b"jsessionid", b"sid"];

/// Bytes a session id may contain. Covers PHP (`[A-Za-z0-9,-]`), Java
/// (`[A-Za-z0-9._-]`, with a `.jvmRoute` suffix) and URL-safe tokens; anything
/// else ends the id, and an id that does not end at a delimiter is refused.
const fn id_byte_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b',' | b'~' | b'%' | b'+');
        c += 1;
    }
    t
}

static ID_BYTE: [bool; 256] = id_byte_table();

/// Whether `b` may appear in a session id.
#[inline]
pub fn is_id_byte(b: u8) -> bool {
    ID_BYTE[b as usize]
}

/// Length of the id at the start of `s`: the run of id bytes.
#[inline]
pub fn id_len(s: &[u8]) -> usize {
    s.iter().position(|&b| !is_id_byte(b)).unwrap_or(s.len())
}

/// Whether `v` as a whole is an acceptable id.
#[inline]
pub fn valid_id(v: &[u8], max_len: usize) -> bool {
    !v.is_empty() && v.len() <= max_len && id_len(v) == v.len()
}

/// The session id parameter names of one upstream, stored inline so the
/// configuration is plain data that nginx's pools can hold without drop glue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Names {
    len: u8,
    lens: [u8; MAX_NAMES],
    bytes: [[u8; MAX_NAME_LEN]; MAX_NAMES],
    /// Keys that hand an id out in responses only (`name=id:connectionToken`:
    /// the response's `"connectionToken"`, later requests' `?id=`).
    keys: u8,
    key_lens: [u8; MAX_NAMES],
    key_bytes: [[u8; MAX_NAME_LEN]; MAX_NAMES],
}

impl Names {
    /// An empty list.
    pub const fn new() -> Self {
        Names {
            len: 0,
            lens: [0; MAX_NAMES],
            bytes: [[0; MAX_NAME_LEN]; MAX_NAMES],
            keys: 0,
            key_lens: [0; MAX_NAMES],
            key_bytes: [[0; MAX_NAME_LEN]; MAX_NAMES],
        }
    }

    /// The default list, [`DEFAULT_NAMES`].
    pub fn defaults() -> Self {
        let mut names = Names::new();
        for name in DEFAULT_NAMES {
            // The defaults are valid and fewer than MAX_NAMES.
            let _ = names.push(name);
        }
        names
    }

    /// Appends `name`; false when the list is full, the name is invalid or already listed.
    pub fn push(&mut self, name: &[u8]) -> bool {
        let i = self.len as usize;
        if i >= MAX_NAMES || !valid_name(name) || self.iter().any(|n| n == name) {
            return false;
        }
        self.bytes[i][..name.len()].copy_from_slice(name);
        self.lens[i] = name.len() as u8;
        self.len += 1;
        true
    }

    /// Adds a key that hands out ids in responses only; false when the
    /// keys are full, the key is invalid or already listed (as a name too).
    pub fn push_key(&mut self, key: &[u8]) -> bool {
        let i = self.keys as usize;
        if i >= MAX_NAMES || !valid_name(key) || self.responses().any(|n| n == key) {
            return false;
        }
        self.key_bytes[i][..key.len()].copy_from_slice(key);
        self.key_lens[i] = key.len() as u8;
        self.keys += 1;
        true
    }

    /// What responses hand ids out under: the names, then the keys.
    pub fn responses(&self) -> impl Iterator<Item = &[u8]> {
        let keys = self.key_bytes[..self.keys as usize]
            .iter()
            .zip(&self.key_lens)
            .map(|(b, &l)| &b[..l as usize]);
        self.iter().chain(keys)
    }

    /// Whether `name` is one of the names requests carry (not only a key).
    pub fn is_request_name(&self, name: &[u8]) -> bool {
        self.iter().any(|n| n == name)
    }

    /// The names in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.bytes[..self.len as usize]
            .iter()
            .zip(&self.lens)
            .map(|(b, &l)| &b[..l as usize])
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when no name is configured.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Names {
    fn default() -> Self {
        Names::new()
    }
}

/// A name must be a plain URL parameter name: it is matched literally in URLs.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}
