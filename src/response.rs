//! What a response can teach, decided from its headers: which headers carry
//! an id and how, whether and how its body is scanned. The nginx adapter
//! only walks the headers and applies these answers.

use crate::config::Types;
use crate::extract::set_cookie_id;
use crate::id::Names;
use crate::inflate::Encoding;
use crate::scanner::{Flow, Mode, Patterns};
use crate::url::refresh_url;

/// A response header that can hand out an id, and how it carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderSource {
    /// `Location`, `Content-Location`: a URL (relative redirects from
    /// upstreams stay in the header list).
    Url,
    /// `Refresh: N; url=URL`.
    Refresh,
    /// `Set-Cookie: NAME=ID` (deletions are ignored).
    SetCookie,
}

impl HeaderSource {
    /// The source a header of this name is, if any (names ignore case).
    pub fn of(name: &[u8]) -> Option<HeaderSource> {
        const SOURCES: [(&[u8], HeaderSource); 4] = [
            (b"location", HeaderSource::Url),
            (b"set-cookie", HeaderSource::SetCookie),
            (b"content-location", HeaderSource::Url),
            (b"refresh", HeaderSource::Refresh),
        ];
        SOURCES
            .iter()
            .find(|(n, _)| name.eq_ignore_ascii_case(n))
            .map(|&(_, s)| s)
    }
}

/// Reports the ids one response header hands out (`name: value`), for a
/// request to `host`, until `found` answers `Break`.
pub fn header_ids(
    name: &[u8],
    value: &[u8],
    patterns: &Patterns,
    names: &Names,
    host: &[u8],
    found: &mut impl FnMut(&[u8]) -> Flow,
) -> Flow {
    match HeaderSource::of(name) {
        Some(HeaderSource::SetCookie) => match set_cookie_id(value, names, patterns.max_id_len()) {
            Some(id) => found(id),
            None => Flow::Continue(()),
        },
        Some(HeaderSource::Url) => patterns.scan_url(value, host, found),
        Some(HeaderSource::Refresh) => match refresh_url(value) {
            Some(url) => patterns.scan_url(url, host, found),
            None => Flow::Continue(()),
        },
        None => Flow::Continue(()),
    }
}

/// How a body of `content_type` (a `Content-Type` value, parameters
/// allowed) is scanned under `types=`, or `None` if it is not.
pub fn scan_mode(types: &Types, content_type: &[u8]) -> Option<Mode> {
    // What nearly every response says, checked in two word compares.
    if let [a, b, c, d, e, f, g, h, b'l'] = *content_type {
        if u64::from_le_bytes([a, b, c, d, e, f, g, h]) == u64::from_le_bytes(*b"text/htm") {
            return types.html.then_some(Mode::Html);
        }
    }
    // Then a type exactly as listed (`text/plain`, `application/json`).
    if let Some(t) = types.list.iter().find(|t| t.as_slice() == content_type) {
        return Some(
            if t.as_slice() == b"text/html" || t.as_slice() == b"application/xhtml+xml" {
                Mode::Html
            } else {
                Mode::Text
            },
        );
    }
    let end = crate::swar::first1(b';', content_type).unwrap_or(content_type.len());
    let mime = content_type[..end].trim_ascii();
    if same_type(mime, b"text/html") {
        return types.html.then_some(Mode::Html);
    }
    if same_type(mime, b"application/xhtml+xml") {
        return types.xhtml.then_some(Mode::Html);
    }
    let listed = !mime.is_empty()
        && types
            .list
            .iter()
            .any(|t| t.as_slice() == b"*" || same_type(mime, t));
    listed.then_some(Mode::Text)
}

/// `a` equals the lowercase `lower`, ignoring ASCII case; exact bytes are
/// tried first, as servers almost always send lowercase types.
#[inline]
fn same_type(a: &[u8], lower: &[u8]) -> bool {
    a.len() == lower.len()
        && (a.iter().zip(lower).all(|(x, y)| x == y) || a.eq_ignore_ascii_case(lower))
}

/// How a body's bytes reach the scanner, from its `Content-Encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyCoding {
    /// As they are (no encoding, or `identity`).
    Plain,
    /// Inflated for scanning only.
    Inflate(Encoding),
    /// Not at all: an encoding the module cannot read (`br`, `zstd`, …);
    /// counted as `unscanned`.
    Unreadable,
}

/// The coding of a body whose `Content-Encoding` is `value` (`None`: absent).
pub fn body_coding(value: Option<&[u8]>) -> BodyCoding {
    let Some(value) = value else {
        return BodyCoding::Plain;
    };
    match Encoding::parse(value) {
        Some(e) => BodyCoding::Inflate(e),
        None if value.trim_ascii().eq_ignore_ascii_case(b"identity") => BodyCoding::Plain,
        None => BodyCoding::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns() -> (Patterns, Names) {
        let mut names = Names::new();
        assert!(names.push(b"sid"));
        (Patterns::new(&names, 32), names)
    }

    fn ids(name: &str, value: &str) -> Vec<String> {
        let (p, names) = patterns();
        let mut out = Vec::new();
        let _ = header_ids(
            name.as_bytes(),
            value.as_bytes(),
            &p,
            &names,
            b"shop.example",
            &mut |id| {
                out.push(String::from_utf8_lossy(id).into_owned());
                Flow::Continue(())
            },
        );
        out
    }

    #[test]
    fn which_headers_teach_and_how() {
        let cases: [(&str, &str, &[&str]); 12] = [
            ("Location", "/cart?sid=L1", &["L1"]),
            ("location", "https://shop.example/a?x=1&sid=L2", &["L2"]),
            ("Location", "https://elsewhere.example/?sid=L3", &[]),
            ("Content-Location", "/page;x?sid=C1", &["C1"]),
            ("Refresh", "5; url=/next?sid=R1", &["R1"]),
            ("Refresh", "5", &[]),
            ("Set-Cookie", "sid=K1; Path=/; HttpOnly", &["K1"]),
            ("Set-Cookie", "sid=; Max-Age=0", &[]),
            ("Set-Cookie", "other=K2", &[]),
            ("Link", "</a?sid=N1>; rel=next", &[]),
            ("X-Session", "sid=N2", &[]),
            ("Location", "/a?notsid=N3", &[]),
        ];
        for (name, value, want) in cases {
            assert_eq!(ids(name, value), want, "{name}: {value}");
        }
    }

    #[test]
    fn header_sources_by_name() {
        assert_eq!(HeaderSource::of(b"LOCATION"), Some(HeaderSource::Url));
        assert_eq!(
            HeaderSource::of(b"content-location"),
            Some(HeaderSource::Url)
        );
        assert_eq!(HeaderSource::of(b"Refresh"), Some(HeaderSource::Refresh));
        assert_eq!(
            HeaderSource::of(b"set-cookie"),
            Some(HeaderSource::SetCookie)
        );
        assert_eq!(HeaderSource::of(b"set-cookie2"), None);
        assert_eq!(HeaderSource::of(b""), None);
    }

    #[test]
    fn scan_modes_by_content_type() {
        let html_only = Types::default();
        let events = crate::config::parse(&[b"types=text/html,text/event-stream".as_slice()])
            .unwrap()
            .types;
        let any = crate::config::parse(&[b"types=*".as_slice()])
            .unwrap()
            .types;
        let cases: [(&Types, &str, Option<Mode>); 12] = [
            (&html_only, "text/html", Some(Mode::Html)),
            (&html_only, "text/html; charset=utf-8", Some(Mode::Html)),
            (&html_only, "TEXT/HTML", Some(Mode::Html)),
            (&html_only, "text/plain", None),
            (&html_only, "", None),
            (&events, "Text/Event-Stream", Some(Mode::Text)),
            (&events, "text/event-stream", Some(Mode::Text)),
            (&any, "*", Some(Mode::Text)),
            (&events, "application/json", None),
            (&any, "application/xhtml+xml", Some(Mode::Html)),
            (&any, "application/json", Some(Mode::Text)),
            (&any, "", None),
        ];
        for (types, ct, want) in cases {
            assert_eq!(scan_mode(types, ct.as_bytes()), want, "{ct:?}");
        }
    }

    #[test]
    fn body_codings() {
        let cases: [(Option<&str>, BodyCoding); 10] = [
            (None, BodyCoding::Plain),
            (Some("identity"), BodyCoding::Plain),
            (Some(" Identity "), BodyCoding::Plain),
            (Some("gzip"), BodyCoding::Inflate(Encoding::Gzip)),
            (Some("x-gzip"), BodyCoding::Inflate(Encoding::Gzip)),
            (Some("deflate"), BodyCoding::Inflate(Encoding::Deflate)),
            (Some("br"), BodyCoding::Inflate(Encoding::Brotli)),
            (Some("zstd"), BodyCoding::Inflate(Encoding::Zstd)),
            (Some("compress"), BodyCoding::Unreadable),
            (Some("gzip, br"), BodyCoding::Unreadable),
        ];
        for (value, want) in cases {
            assert_eq!(body_coding(value.map(str::as_bytes)), want, "{value:?}");
        }
    }
}
