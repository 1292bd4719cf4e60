//! Deciding whether a URL found in a response points back at this site, and
//! which attribute contexts carry URLs worth learning from.

/// Whether `url` (possibly only its beginning) stays on `host`: relative URLs
/// always do; `//host/…` and `http(s)://host/…` only when the host matches
/// (ports are not compared). Other schemes (`mailto:`, `javascript:`) never do.
pub fn same_site(url: &[u8], host: &[u8]) -> bool {
    site(url, host, true).unwrap_or(false)
}

/// What [`same_site`] answers for every URL that starts with `prefix`, when
/// the prefix decides it (its scheme, or its authority's end, is in it);
/// `None` when the bytes after it may still change the answer. A
/// parameter's verdict then needs no search for where its URL ends.
pub fn same_site_prefix(prefix: &[u8], host: &[u8]) -> Option<bool> {
    site(prefix, host, false)
}

/// [`same_site`] on `url`, which is the whole URL (`whole`) or its first
/// bytes (then `None` where they do not decide).
fn site(url: &[u8], host: &[u8], whole: bool) -> Option<bool> {
    let authority = if let Some(rest) = url.strip_prefix(b"//") {
        rest
    } else if !whole && b"//".starts_with(url) {
        // `/` or nothing: `//` may follow.
        return None;
    } else {
        match scheme_len(url) {
            // Cut inside what may still be a scheme.
            None if !whole && is_scheme_start(url) => return None,
            None => return Some(true),
            Some(n) => {
                let scheme = &url[..n];
                if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https"))
                {
                    return Some(false);
                }
                let after = &url[n + 1..];
                match after.strip_prefix(b"//") {
                    Some(rest) => rest,
                    None if !whole && b"//".starts_with(after) => return None,
                    None => return Some(false),
                }
            }
        }
    };
    let end = authority
        .iter()
        .position(|&c| matches!(c, b'/' | b'?' | b'#' | b';'));
    let end = match end {
        Some(end) => end,
        None if whole => authority.len(),
        // The authority may go on.
        None => return None,
    };
    let authority = &authority[..end];
    if authority.contains(&b'@') || host.is_empty() {
        return Some(false);
    }
    let name = if authority.first() == Some(&b'[') {
        match authority.iter().position(|&c| c == b']') {
            Some(i) => &authority[..=i],
            None => return Some(false),
        }
    } else {
        authority.split(|&c| c == b':').next().unwrap_or(authority)
    };
    let name = name.strip_suffix(b".").unwrap_or(name);
    let host = host.strip_suffix(b".").unwrap_or(host);
    Some(name.eq_ignore_ascii_case(host))
}

/// Whether all of `url` may be the start of a scheme and its colon (a
/// letter, then scheme bytes, nothing after).
fn is_scheme_start(url: &[u8]) -> bool {
    url.first().is_some_and(u8::is_ascii_alphabetic)
        && url
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// Length of a URL scheme at the start of `url` (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":").
/// Reads no further than the scheme could go: a whole token's value is
/// judged, and a relative URL ends its would-be scheme at its first `/`.
fn scheme_len(url: &[u8]) -> Option<usize> {
    let n = url
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')))
        .unwrap_or(url.len());
    let ok = url.first().is_some_and(u8::is_ascii_alphabetic) && url.get(n) == Some(&b':');
    ok.then_some(n)
}

/// What the value of an attribute holds, as its name tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attribute {
    /// A URL: `href`, `src`, `action`, `formaction`, or a bare `url` (a
    /// refresh's content split by a space).
    Url,
    /// A refresh's `N;url=…`: `content`.
    Refresh,
    /// Anything else.
    Other,
}

/// What the value of an attribute named `attr` holds (ASCII case
/// ignored): told by its length first, then one compare.
#[inline]
pub fn attribute(attr: &[u8]) -> Attribute {
    let (name, kind): (&[u8], _) = match attr.len() {
        3 if attr[0] | 0x20 == b's' => (b"src", Attribute::Url),
        3 => (b"url", Attribute::Url),
        4 => (b"href", Attribute::Url),
        6 => (b"action", Attribute::Url),
        7 => (b"content", Attribute::Refresh),
        10 => (b"formaction", Attribute::Url),
        _ => return Attribute::Other,
    };
    // Setting bit 5 lowercases a letter and turns no other byte into one.
    match attr.iter().zip(name).all(|(&c, &l)| c | 0x20 == l) {
        true => kind,
        false => Attribute::Other,
    }
}

/// Given the text of one markup token (for example `href="/cart?a=1&sid=X"`),
/// returns its value (`/cart?a=1&sid=X"`) when the token is a URL-carrying
/// attribute: `href`, `src`, `action`, `formaction`, a meta refresh
/// `content="N;url=…"`, or a bare `url=` (refresh content split by a
/// space). The name ends at the first `=`; a quote of either kind may open
/// the value, and one inside an unquoted value is part of it, as browsers
/// read it.
pub fn attribute_url(token: &[u8]) -> Option<&[u8]> {
    let eq = token.iter().position(|&c| c == b'=')?;
    let (attr, value) = (&token[..eq], &token[eq + 1..]);
    let value = match value.first() {
        Some(b'"' | b'\'') => &value[1..],
        _ => value,
    };
    match attribute(attr) {
        Attribute::Url => Some(value),
        Attribute::Refresh => refresh_url(value),
        Attribute::Other => None,
    }
}

/// The URL in plain text, JSON or an event stream, given its bytes from
/// just after the last quote or bracket (`"`, `'`, `(`, a backtick) before
/// a parameter, which the scanner has found: without an event stream's
/// `data:` field name.
pub fn text_url(unquoted: &[u8]) -> &[u8] {
    unquoted.strip_prefix(b"data:").unwrap_or(unquoted)
}

/// The URL in a refresh value `N;url=…` / `N; URL = …`.
pub fn refresh_url(value: &[u8]) -> Option<&[u8]> {
    let digits = value
        .iter()
        .take_while(|c| c.is_ascii_digit() || **c == b'.')
        .count();
    let rest = trim_start(&value[digits..]).strip_prefix(b";")?;
    let rest = trim_start(rest);
    if rest.len() < 3 || !rest[..3].eq_ignore_ascii_case(b"url") {
        return None;
    }
    let rest = trim_start(&rest[3..]).strip_prefix(b"=")?;
    let rest = trim_start(rest);
    Some(
        rest.strip_prefix(b"'")
            .or_else(|| rest.strip_prefix(b"\""))
            .unwrap_or(rest),
    )
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &s[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every prefix that decides decides as the whole URL does, and a
    /// prefix that reaches past the authority (or holds a relative URL's
    /// first non-scheme byte) decides.
    #[test]
    fn prefixes_decide_as_the_whole_url() {
        let urls: [&[u8]; 24] = [
            b"/cart?sid=1",
            b"//shop.example/a?sid=1",
            b"//shop.example?sid=1",
            b"//shop.example&sid=1",
            b"//evil.example/?sid=1",
            b"//shop.example.evil/?sid=1",
            b"//user@shop.example/?sid=1",
            b"//[::1]:80/?sid=1",
            b"//[::1/?sid=1",
            b"http://shop.example/x?sid=1",
            b"HTTPS://SHOP.EXAMPLE./?sid=1",
            b"https://shop.example:8443;sid=1",
            b"http:/shop.example/?sid=1",
            b"http:?sid=1",
            b"ftp://shop.example/?sid=1",
            b"mailto:a@shop.example?sid=1",
            b"javascript:x?sid=1",
            b"cart?sid=1",
            b"a+b.c-d:x?sid=1",
            b"?sid=1",
            b"&sid=1",
            b"x//shop.example/?sid=1",
            b"/",
            b"",
        ];
        for url in urls {
            let whole = same_site(url, b"shop.example");
            for k in 0..=url.len() {
                let cut = same_site_prefix(&url[..k], b"shop.example");
                assert!(
                    cut.is_none_or(|v| v == whole),
                    "{:?} cut at {k}",
                    String::from_utf8_lossy(url)
                );
            }
            assert_eq!(
                same_site_prefix(url, b"shop.example").unwrap_or(whole),
                whole
            );
        }
        // What a link parameter's URL decides before its name.
        for (prefix, verdict) in [
            (&b"//evil.example/?"[..], Some(false)),
            (b"//shop.example?", Some(true)),
            (b"//shop.example&", None),
            (b"https://shop.example/a&", Some(true)),
            (b"http", None),
            (b"javascript:x?", Some(false)),
            (b"cart?", Some(true)),
            (b"/", None),
        ] {
            assert_eq!(
                same_site_prefix(prefix, b"shop.example"),
                verdict,
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn same_site_cases() {
        let cases = [
            ("/cart?", true),
            ("cart?", true),
            ("?", true),
            ("../a/b?", true),
            ("//shop.example/x?", true),
            ("//SHOP.example./x?", true),
            ("//evil.example/x?", false),
            ("http://shop.example/x?", true),
            ("HTTPS://shop.example:8443/x?", true),
            ("https://shop.example?", true),
            ("https://evil.example/x?", false),
            ("https://shop.example.evil/x?", false),
            ("https://user@shop.example/x?", false),
            ("http:/x?", false),
            ("mailto:a@shop.example?", false),
            ("javascript:go('/x?", false),
            ("ftp://shop.example/x?", false),
        ];
        for (url, want) in cases {
            assert_eq!(same_site(url.as_bytes(), b"shop.example"), want, "{url}");
        }
        assert!(same_site(b"http://[::1]:8080/x?", b"[::1]"));
        assert!(!same_site(b"//shop.example/x?", b""));
        assert!(same_site(b"/x?", b""));
    }

    #[test]
    fn attribute_cases() {
        let cases = [
            ("href=\"/x?", Some("/x?")),
            ("HREF='/x?", Some("/x?")),
            ("href=/x?", Some("/x?")),
            ("src=\"/img?", Some("/img?")),
            ("action=\"/login;", Some("/login;")),
            ("formaction=\"/go?", Some("/go?")),
            ("content=\"0;url=/next?", Some("/next?")),
            ("content=\"5;URL='/next?", Some("/next?")),
            ("URL='/next?", Some("/next?")),
            ("href=\"/it's?", Some("/it's?")),
            ("url=/next?", Some("/next?")),
            ("content=\"text/html;", None),
            ("title=\"/x?", None),
            ("data-x=\"/x?", None),
            ("\"/x?", None),
            ("/x?", None),
            ("onclick=\"go('/x?", None),
            // Unquoted values keep what a browser keeps.
            ("href=/a\"b?", Some("/a\"b?")),
            ("src==a&", Some("=a&")),
            ("x\"href=\"/x?", None),
        ];
        for (token, want) in cases {
            assert_eq!(
                attribute_url(token.as_bytes()),
                want.map(str::as_bytes),
                "{token}"
            );
        }
    }

    #[test]
    fn attribute_names_are_told_in_any_case_and_nothing_else() {
        // Every name in every casing of its first and last letters, and
        // every one-byte change of it, against a plain comparison.
        let named: [(&[u8], Attribute); 6] = [
            (b"href", Attribute::Url),
            (b"src", Attribute::Url),
            (b"action", Attribute::Url),
            (b"formaction", Attribute::Url),
            (b"url", Attribute::Url),
            (b"content", Attribute::Refresh),
        ];
        let want = |attr: &[u8]| {
            named
                .iter()
                .find(|(n, _)| attr.eq_ignore_ascii_case(n))
                .map_or(Attribute::Other, |&(_, kind)| kind)
        };
        for (name, kind) in named {
            let upper = name.to_ascii_uppercase();
            assert_eq!(attribute(name), kind);
            assert_eq!(attribute(&upper), kind);
            for i in 0..name.len() {
                for c in 0..=255u8 {
                    let mut attr = name.to_vec();
                    attr[i] = c;
                    assert_eq!(attribute(&attr), want(&attr), "{attr:?}");
                }
                assert_eq!(attribute(&name[..i]), want(&name[..i]));
            }
        }
        for attr in [&b""[..], b"title", b"srcset", b"hrefs", b"data-src"] {
            assert_eq!(attribute(attr), Attribute::Other, "{attr:?}");
        }
    }
}
