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

/// The id in a path parameter, `/cart;jsessionid=ID/x`, as Java servlets
/// write it. `path` is the request target before `?`; the value ends at `/`,
/// `;` or the end.
pub fn path_param_id<'a>(path: &'a [u8], names: &Names, max_len: usize) -> Option<&'a [u8]> {
    let params = || {
        path.split(|&c| c == b';')
            .skip(1)
            .map(|p| &p[..p.iter().position(|&c| c == b'/').unwrap_or(p.len())])
    };
    names.iter().find_map(|name| {
        params()
            .filter_map(|p| p.strip_prefix(name)?.strip_prefix(b"="))
            .find(|v| valid_id(v, max_len))
    })
}

/// The id a request carries: the query string first, then path parameters.
/// `target` is the raw request target (`/path;p=v?query`).
pub fn request_id<'a>(target: &'a [u8], names: &Names, max_len: usize) -> Option<&'a [u8]> {
    let (path, query) = match target.iter().position(|&c| c == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, &target[target.len()..]),
    };
    query_id(query, names, max_len).or_else(|| path_param_id(path, names, max_len))
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
    fn path_param_cases() {
        let n = names(&["jsessionid", "sid"]);
        let cases: &[(&str, Option<&str>)] = &[
            ("/shop/cart;jsessionid=ABC123.node1", Some("ABC123.node1")),
            ("/shop/cart;jsessionid=ABC/more", Some("ABC")),
            ("/a;x=1;jsessionid=J2;y=2", Some("J2")),
            ("/a;jsessionid=", None),
            ("/a;jsessionidx=1", None),
            ("/a/jsessionid=1", None),
            ("/plain", None),
            ("/a;sid=s1;jsessionid=j1", Some("j1")),
        ];
        for (path, want) in cases {
            assert_eq!(
                path_param_id(path.as_bytes(), &n, 128),
                want.map(str::as_bytes),
                "{path}"
            );
        }
    }

    #[test]
    fn request_target_prefers_the_query() {
        let n = names(&["jsessionid", "sid"]);
        let cases: &[(&str, Option<&str>)] = &[
            ("/a;jsessionid=P?sid=Q", Some("Q")),
            ("/a;jsessionid=P?x=1", Some("P")),
            ("/a?x=;jsessionid=P", Some("P")),
            ("/a", None),
            ("/a?", None),
            ("?sid=S", Some("S")),
        ];
        for (target, want) in cases {
            assert_eq!(
                request_id(target.as_bytes(), &n, 128),
                want.map(str::as_bytes),
                "{target}"
            );
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
