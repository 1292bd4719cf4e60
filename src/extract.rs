//! Finding the session id a request carries.

use crate::config::Names;

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

/// The id in a query string (the part after `?`, without it): the first
/// `NAME=VALUE` pair whose name is configured, trying names in configuration
/// order. Pairs are separated by `&` (or `;`, which some frameworks emit).
/// Invalid values are skipped as if absent.
pub fn query_id<'a>(query: &'a [u8], names: &Names, max_len: usize) -> Option<&'a [u8]> {
    if query.is_empty() {
        return None;
    }
    names.iter().find_map(|name| {
        query
            .split(|&c| c == b'&' || c == b';')
            .filter_map(|pair| pair.strip_prefix(name)?.strip_prefix(b"="))
            .find(|v| valid_id(v, max_len))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Names {
        let mut n = Names::new();
        for s in list {
            assert!(n.push(s.as_bytes()));
        }
        n
    }

    #[test]
    fn query_cases() {
        let sid = names(&["sid"]);
        let two = names(&["PHPSESSID", "sid"]);
        let cases: &[(&Names, &str, Option<&str>)] = &[
            (&sid, "sid=abc123", Some("abc123")),
            (&sid, "a=1&sid=abc&b=2", Some("abc")),
            (&sid, "a=1;sid=abc", Some("abc")),
            (&sid, "xsid=abc", None),
            (&sid, "sidx=abc", None),
            (&sid, "sid", None),
            (&sid, "sid=", None),
            (&sid, "", None),
            (&sid, "sid=a%20b", Some("a%20b")),
            (&sid, "sid=bad<id&sid=good", Some("good")),
            (&sid, "sid=bad\"&b=1", None),
            (&sid, "SID=abc", None),
            (&two, "sid=s1&PHPSESSID=p1", Some("p1")),
            (&two, "sid=s1", Some("s1")),
            (&sid, "sid=node1.abc-DEF_9,x~", Some("node1.abc-DEF_9,x~")),
        ];
        for (n, q, want) in cases {
            let got = query_id(q.as_bytes(), n, 128);
            assert_eq!(got, want.map(str::as_bytes), "query {q:?}");
        }
    }

    #[test]
    fn length_limit() {
        let sid = names(&["sid"]);
        let long = format!("sid={}", "a".repeat(129));
        assert_eq!(query_id(long.as_bytes(), &sid, 128), None);
        let ok = format!("sid={}", "a".repeat(128));
        assert_eq!(
            query_id(ok.as_bytes(), &sid, 128).map(<[u8]>::len),
            Some(128)
        );
    }

    #[test]
    fn id_bytes() {
        assert!(valid_id(b"Ab9-_.,~%+", 64));
        for bad in [&b""[..], b"a b", b"a\0", b"a/b", b"a&b", b"a=b", b"\xff"] {
            assert!(!valid_id(bad, 64), "{bad:?}");
        }
    }
}
