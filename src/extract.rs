//! Finding the session id a request carries.

use crate::id::{id_len, valid_id, Names};
use crate::swar;

/// Calls `f` with each `NAME=VALUE` value in `pairs` (split by `sep_a` or
/// `sep_b`), names in configuration order, until `f` returns true. Returns
/// whether it did.
fn each_pair<'a>(
    pairs: &'a [u8],
    sep_a: u8,
    sep_b: u8,
    names: &Names,
    f: &mut dyn FnMut(&'a [u8]) -> bool,
) -> bool {
    if pairs.is_empty() {
        return false;
    }
    for name in names.iter() {
        let mut rest = pairs;
        loop {
            let end = swar::first2(sep_a, sep_b, rest).unwrap_or(rest.len());
            let pair = rest[..end].trim_ascii_start();
            // `NAME=`: the `=` first, then the name bytes, without a memcmp call.
            if pair.get(name.len()) == Some(&b'=')
                && pair.iter().zip(name).all(|(a, b)| a == b)
                && f(&pair[name.len() + 1..])
            {
                return true;
            }
            if end == rest.len() {
                break;
            }
            rest = &rest[end + 1..];
        }
    }
    false
}

/// Each id in a query string (the part after `?`, without it): `NAME=VALUE`
/// pairs separated by `&` (or `;`, which some frameworks emit). The same
/// walk reads an `application/x-www-form-urlencoded` body.
pub fn query_ids<'a>(
    query: &'a [u8],
    names: &Names,
    max_len: usize,
    f: &mut dyn FnMut(&'a [u8]) -> bool,
) -> bool {
    if query.is_empty() {
        return false;
    }
    // One pass per name; a matching pair's value is measured once (its run
    // of id bytes must reach the next separator), not split and re-read.
    for name in names.iter() {
        let mut rest = query;
        loop {
            let pair = rest.trim_ascii_start();
            let mut from = rest.len() - pair.len();
            if pair.get(name.len()) == Some(&b'=') && pair.iter().zip(name).all(|(a, b)| a == b) {
                let v = &pair[name.len() + 1..];
                let n = id_len(v);
                if matches!(v.get(n), None | Some(b'&' | b';'))
                    && n > 0
                    && n <= max_len
                    && f(&v[..n])
                {
                    return true;
                }
                from += name.len() + 1 + n;
            }
            match swar::first2(b'&', b';', &rest[from..]) {
                Some(e) => rest = &rest[from + e + 1..],
                None => break,
            }
        }
    }
    false
}

/// Each id in path parameters, `/cart;jsessionid=ID/x`, as Java servlets
/// write them. `path` is the request target before `?`; a value ends at `/`,
/// `;` or the end.
pub fn path_param_ids<'a>(
    path: &'a [u8],
    names: &Names,
    max_len: usize,
    f: &mut dyn FnMut(&'a [u8]) -> bool,
) -> bool {
    let Some(first) = swar::first1(b';', path) else {
        return false;
    };
    let params = &path[first..];
    for name in names.iter() {
        for p in params.split(|&c| c == b';').skip(1) {
            let p = &p[..swar::first1(b'/', p).unwrap_or(p.len())];
            let Some(v) = p.strip_prefix(name).and_then(|p| p.strip_prefix(b"=")) else {
                continue;
            };
            if valid_id(v, max_len) && f(v) {
                return true;
            }
        }
    }
    false
}

/// Each id in a `Cookie` header value: `a=1; NAME=ID; b=2`, values optionally
/// in double quotes.
pub fn cookie_ids<'a>(
    header: &'a [u8],
    names: &Names,
    max_len: usize,
    f: &mut dyn FnMut(&'a [u8]) -> bool,
) -> bool {
    let mut unquote = |v: &'a [u8]| {
        let v = v.trim_ascii_end();
        let v = v
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(v);
        valid_id(v, max_len) && f(v)
    };
    each_pair(header, b';', b';', names, &mut unquote)
}

/// The id a `Set-Cookie` header value hands out, if it sets a configured
/// name to a valid id. Deletions (`Max-Age=0`, or negative) hand out nothing.
pub fn set_cookie_id<'a>(value: &'a [u8], names: &Names, max_len: usize) -> Option<&'a [u8]> {
    let mut parts = value.split(|&c| c == b';');
    let first = parts.next()?.trim_ascii();
    let eq = first.iter().position(|&c| c == b'=')?;
    let (name, v) = (first[..eq].trim_ascii(), first[eq + 1..].trim_ascii());
    if !names.responses().any(|n| n == name) {
        return None;
    }
    let v = v
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(v);
    for attr in parts {
        let attr = attr.trim_ascii();
        if attr.len() >= 8 && attr[..8].eq_ignore_ascii_case(b"max-age=") {
            let age = &attr[8..];
            if age.starts_with(b"-") || (!age.is_empty() && age.iter().all(|&c| c == b'0')) {
                return None;
            }
        }
    }
    valid_id(v, max_len).then_some(v)
}

/// Whether a request `Content-Type` is a urlencoded form.
pub fn is_form(content_type: &[u8]) -> bool {
    let mime = content_type
        .split(|&c| c == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    mime.eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
}

/// Splits a request target into path and query (without the `?`).
pub fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    match swar::first1(b'?', target) {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, &target[target.len()..]),
    }
}

/// The first id in a query string, trying names in configuration order.
pub fn query_id<'a>(query: &'a [u8], names: &Names, max_len: usize) -> Option<&'a [u8]> {
    first(|f| query_ids(query, names, max_len, f))
}

/// The first id in path parameters.
pub fn path_param_id<'a>(path: &'a [u8], names: &Names, max_len: usize) -> Option<&'a [u8]> {
    first(|f| path_param_ids(path, names, max_len, f))
}

/// The first id a request target carries: the query string first, then path
/// parameters. `target` is the raw request target (`/path;p=v?query`).
pub fn request_id<'a>(target: &'a [u8], names: &Names, max_len: usize) -> Option<&'a [u8]> {
    let (path, query) = split_target(target);
    query_id(query, names, max_len).or_else(|| path_param_id(path, names, max_len))
}

fn first<'a>(walk: impl FnOnce(&mut dyn FnMut(&'a [u8]) -> bool) -> bool) -> Option<&'a [u8]> {
    let mut found = None;
    walk(&mut |v| {
        found = Some(v);
        true
    });
    found
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
            (&sid, " sid=lead", Some("lead")),
            (&sid, "sid=sid=x&sid=y", Some("y")),
            (&sid, "sid=a b&sid=c", Some("c")),
            (&sid, "a=sid=x", None),
        ];
        for (n, q, want) in cases {
            let got = query_id(q.as_bytes(), n, 128);
            assert_eq!(got, want.map(str::as_bytes), "query {q:?}");
        }
        let long = format!("sid={}&sid=ok", "x".repeat(129));
        assert_eq!(query_id(long.as_bytes(), &sid, 128), Some(&b"ok"[..]));
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
    fn every_candidate_in_order_until_stopped() {
        let n = names(&["PHPSESSID", "sid"]);
        let mut seen = Vec::new();
        let stopped = query_ids(
            b"sid=s1&PHPSESSID=p1&sid=s2&PHPSESSID=p2",
            &n,
            128,
            &mut |v| {
                seen.push(v.to_vec());
                false
            },
        );
        assert!(!stopped);
        assert_eq!(seen, [&b"p1"[..], b"p2", b"s1", b"s2"]);
        let mut count = 0;
        assert!(query_ids(b"sid=a&sid=b&sid=c", &n, 128, &mut |_| {
            count += 1;
            count == 2
        }));
        assert_eq!(count, 2);
    }

    #[test]
    fn cookie_cases() {
        let n = names(&["PHPSESSID", "sid"]);
        let cases: &[(&str, Option<&str>)] = &[
            ("PHPSESSID=c1", Some("c1")),
            ("a=1; PHPSESSID=c2; b=2", Some("c2")),
            ("a=1;PHPSESSID=c3", Some("c3")),
            ("sid=\"q1\"", Some("q1")),
            ("xPHPSESSID=no; PHPSESSIDx=no", None),
            ("PHPSESSID=bad id", None),
            ("PHPSESSID=", None),
            ("", None),
            ("sid=s1; PHPSESSID=p1", Some("p1")),
        ];
        for (h, want) in cases {
            let got = first(|f| cookie_ids(h.as_bytes(), &n, 128, f));
            assert_eq!(got, want.map(str::as_bytes), "{h}");
        }
    }

    #[test]
    fn set_cookie_cases() {
        let n = names(&["PHPSESSID"]);
        let cases: &[(&str, Option<&str>)] = &[
            ("PHPSESSID=n1; path=/", Some("n1")),
            ("PHPSESSID=n2", Some("n2")),
            ("PHPSESSID=\"n3\"; HttpOnly", Some("n3")),
            (
                "PHPSESSID=deleted; expires=Thu, 01-Jan-1970 00:00:01 GMT; Max-Age=0; path=/",
                None,
            ),
            ("PHPSESSID=gone; Max-Age=-1", None),
            ("PHPSESSID=kept; Max-Age=3600", Some("kept")),
            ("other=x; path=/", None),
            ("PHPSESSID=; path=/", None),
            ("PHPSESSID=a b", None),
        ];
        for (v, want) in cases {
            assert_eq!(
                set_cookie_id(v.as_bytes(), &n, 128),
                want.map(str::as_bytes),
                "{v}"
            );
        }
    }

    #[test]
    fn form_content_types() {
        assert!(is_form(b"application/x-www-form-urlencoded"));
        assert!(is_form(b"Application/X-WWW-Form-Urlencoded; charset=UTF-8"));
        assert!(!is_form(b"multipart/form-data; boundary=x"));
        assert!(!is_form(b""));
    }

    #[test]
    fn id_bytes() {
        assert!(valid_id(b"Ab9-_.,~%+", 64));
        for bad in [&b""[..], b"a b", b"a\0", b"a/b", b"a&b", b"a=b", b"\xff"] {
            assert!(!valid_id(bad, 64), "{bad:?}");
        }
    }
}
