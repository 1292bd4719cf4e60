//! Streaming scanner that finds session ids in links of an HTML body.
//!
//! The body arrives in buffers that must be passed on unchanged. Candidates are
//! found with a SIMD substring search for `NAME=`, so plain text is skipped at
//! memchr speed. A match is judged inside its *token*: the run of bytes between
//! markup delimiters (whitespace, `<`, `>`), which holds an attribute and its
//! URL. Complete tokens are read in place; only the partial token at the end of
//! a buffer is carried over (at most [`MAX_TOKEN`] bytes, in a fixed array).
//! Tokens longer than that are ignored wherever they fall, so every way of
//! splitting a body reports the same ids.

use memchr::memmem::Finder;

use crate::config::Names;
use crate::extract::id_len;
use crate::url::{attribute_url, same_site};

/// Longest token (attribute, quotes and URL) the scanner considers.
pub const MAX_TOKEN: usize = 2048;

#[inline]
fn is_delim(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'<' | b'>')
}

/// The needles of one configuration, built once when the configuration is read.
#[derive(Debug)]
pub struct Patterns {
    needles: Vec<Finder<'static>>,
    max_id_len: usize,
}

impl Patterns {
    /// Needles `NAME=` for each configured name.
    pub fn new(names: &Names, max_id_len: usize) -> Self {
        let needles = names
            .iter()
            .map(|n| {
                let mut needle = n.to_vec();
                needle.push(b'=');
                Finder::new(&needle).into_owned()
            })
            .collect();
        Patterns {
            needles,
            max_id_len,
        }
    }

    /// Longest id reported.
    pub fn max_id_len(&self) -> usize {
        self.max_id_len
    }

    /// Reports each id in one complete URL-carrying value, e.g. a `Location`
    /// header, if the URL is same-site.
    pub fn scan_url(&self, url: &[u8], host: &[u8], found: &mut impl FnMut(&[u8])) {
        if !same_site(url, host) {
            return;
        }
        for needle in &self.needles {
            for m in needle.find_iter(url) {
                if let Some(id) = self.param_at(url, m, needle.needle().len()) {
                    found(id);
                }
            }
        }
    }

    /// The id of a `NAME=VALUE` parameter whose needle starts at `m`, if the
    /// needle follows a parameter separator and the value is a valid id.
    #[inline]
    fn param_at<'a>(&self, s: &'a [u8], m: usize, needle_len: usize) -> Option<&'a [u8]> {
        if m == 0 || !matches!(s[m - 1], b'?' | b'&' | b';') {
            return None;
        }
        let v = &s[m + needle_len..];
        let n = id_len(v);
        (n > 0 && n <= self.max_id_len).then(|| &v[..n])
    }

    /// Reports the ids in `region`, which starts and ends on token boundaries.
    fn scan_region(&self, region: &[u8], host: &[u8], found: &mut impl FnMut(&[u8])) {
        for needle in &self.needles {
            for m in needle.find_iter(region) {
                let Some(id) = self.param_at(region, m, needle.needle().len()) else {
                    continue;
                };
                let Some(start) = token_start(region, m) else {
                    continue;
                };
                let value_end = m + needle.needle().len() + id.len();
                let Some(end) = token_end(region, value_end) else {
                    continue;
                };
                if end - start > MAX_TOKEN {
                    continue;
                }
                match attribute_url(&region[start..m]) {
                    Some(url) if same_site(url, host) => found(id),
                    _ => {}
                }
            }
        }
    }
}

/// Start of the token containing `at`, or `None` when it is longer than `MAX_TOKEN`.
fn token_start(s: &[u8], at: usize) -> Option<usize> {
    let lo = at.saturating_sub(MAX_TOKEN + 1);
    match s[lo..at].iter().rposition(|&c| is_delim(c)) {
        Some(i) => Some(lo + i + 1),
        None if lo == 0 => Some(0),
        None => None,
    }
}

/// End (exclusive) of the token containing `at`, or `None` when it is longer than `MAX_TOKEN`.
fn token_end(s: &[u8], at: usize) -> Option<usize> {
    let hi = s.len().min(at + MAX_TOKEN + 1);
    match s[at..hi].iter().position(|&c| is_delim(c)) {
        Some(i) => Some(at + i),
        None if hi == s.len() => Some(hi),
        None => None,
    }
}

/// Per-response scanning state: the partial token carried between buffers.
pub struct Scanner {
    carry_len: usize,
    overlong: bool,
    carry: [u8; MAX_TOKEN],
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

impl Scanner {
    /// A scanner at the start of a body.
    pub const fn new() -> Self {
        Scanner {
            carry_len: 0,
            overlong: false,
            carry: [0; MAX_TOKEN],
        }
    }

    /// Scans the next buffer of the body. Ids in complete tokens are reported
    /// before this returns; a token cut by the buffer's end is reported by the
    /// call that completes it (or by [`Scanner::finish`]).
    pub fn feed(&mut self, p: &Patterns, host: &[u8], chunk: &[u8], found: &mut impl FnMut(&[u8])) {
        let mut start = 0;
        if self.carry_len > 0 || self.overlong {
            let head = chunk
                .iter()
                .position(|&c| is_delim(c))
                .unwrap_or(chunk.len());
            self.append(&chunk[..head]);
            if head == chunk.len() {
                return;
            }
            self.finish(p, host, found);
            start = head;
        }
        let rest = &chunk[start..];
        let tail = rest.iter().rposition(|&c| is_delim(c)).map_or(0, |i| i + 1);
        p.scan_region(&rest[..tail], host, found);
        self.append(&rest[tail..]);
    }

    /// Ends the body (or a token): reports ids in the carried token, if any.
    pub fn finish(&mut self, p: &Patterns, host: &[u8], found: &mut impl FnMut(&[u8])) {
        if !self.overlong && self.carry_len > 0 {
            p.scan_region(&self.carry[..self.carry_len], host, found);
        }
        self.carry_len = 0;
        self.overlong = false;
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.overlong || bytes.is_empty() {
            return;
        }
        let end = self.carry_len + bytes.len();
        match self.carry.get_mut(self.carry_len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.carry_len = end;
            }
            None => {
                self.overlong = true;
                self.carry_len = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &[u8] = b"shop.example";

    fn patterns(names: &[&str]) -> Patterns {
        let mut n = Names::new();
        for s in names {
            assert!(n.push(s.as_bytes()));
        }
        Patterns::new(&n, 32)
    }

    fn scan_chunks(p: &Patterns, chunks: &[&[u8]]) -> Vec<String> {
        let mut s = Scanner::new();
        let mut out = Vec::new();
        let mut found = |id: &[u8]| out.push(String::from_utf8_lossy(id).into_owned());
        for c in chunks {
            s.feed(p, HOST, c, &mut found);
        }
        s.finish(p, HOST, &mut found);
        out.sort();
        out
    }

    /// Runs `body` whole, byte by byte, and split at every index; all runs must agree.
    fn scan_all_ways(p: &Patterns, body: &[u8]) -> Vec<String> {
        let whole = scan_chunks(p, &[body]);
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(
            scan_chunks(p, &bytes),
            whole,
            "byte by byte: {:?}",
            String::from_utf8_lossy(body)
        );
        for i in 0..=body.len() {
            let (a, b) = body.split_at(i);
            assert_eq!(
                scan_chunks(p, &[a, b]),
                whole,
                "split at {i}: {:?}",
                String::from_utf8_lossy(body)
            );
        }
        whole
    }

    #[test]
    fn link_cases() {
        let p = patterns(&["sid", "PHPSESSID"]);
        let cases: &[(&str, &[&str])] = &[
            (r#"<a href="/next?sid=abc">x</a>"#, &["abc"]),
            (r#"<a href='/next?a=1&sid=abc#top'>"#, &["abc"]),
            (r#"<a href=/next?a=1&amp;sid=abc>"#, &["abc"]),
            (r#"<A HREF="/n?PHPSESSID=p1&amp;x=2">"#, &["p1"]),
            (r#"<a href="http://shop.example/n?sid=abs">"#, &["abs"]),
            (r#"<a href="//shop.example/n?sid=rel">"#, &["rel"]),
            (r#"<a href="https://evil.example/n?sid=no">"#, &[]),
            (r#"<a href="mailto:x@shop.example?sid=no">"#, &[]),
            (r#"<img src="/i.png?sid=img">"#, &["img"]),
            (r#"<form action="/login?sid=f1" method=post>"#, &["f1"]),
            (
                r#"<meta http-equiv="refresh" content="0;url=/n?sid=m1">"#,
                &["m1"],
            ),
            (
                r#"<meta http-equiv="refresh" content="0; url=/n?sid=m2">"#,
                &["m2"],
            ),
            (r#"<p>see /n?sid=text in prose</p>"#, &[]),
            (r#"<a title="/n?sid=title" href="/x">"#, &[]),
            (r#"<a href="/n?xsid=no&sidx=no">"#, &[]),
            (r#"<a href="/n?sid=">"#, &[]),
            (r#"<a href="/n?sid=a&sid=b">"#, &["a", "b"]),
            (
                r#"<a href="/n?sid=toolongtoolongtoolongtoolongtoolong">"#,
                &[],
            ),
            (
                r#"<a href="/n?sid=one"><a href="/m?sid=two">"#,
                &["one", "two"],
            ),
            (r#"<script>var u = "/n?sid=js";</script>"#, &[]),
            ("", &[]),
            ("<<<>>>", &[]),
        ];
        for (body, want) in cases {
            let got = scan_all_ways(&p, body.as_bytes());
            assert_eq!(
                got,
                want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "body {body:?}"
            );
        }
    }

    #[test]
    fn long_tokens_are_ignored_however_split() {
        let p = patterns(&["sid"]);
        let long = format!(
            r#"<a href="/{}?sid=long"><a href="/ok?sid=short">"#,
            "x".repeat(MAX_TOKEN)
        );
        assert_eq!(scan_all_ways(&p, long.as_bytes()), vec!["short"]);
        let fits = format!(r#"<a href="/{}?sid=fits">"#, "x".repeat(MAX_TOKEN - 30));
        assert_eq!(scan_all_ways(&p, fits.as_bytes()), vec!["fits"]);
    }

    #[test]
    fn link_free_html_reports_nothing() {
        let p = patterns(&["sid"]);
        let page =
            "<div class=\"c\"><p>Lorem ipsum inside consider side = sid</p></div>\n".repeat(50);
        assert!(scan_chunks(&p, &[page.as_bytes()]).is_empty());
    }

    #[test]
    fn scan_url_for_headers() {
        let p = patterns(&["sid"]);
        let mut got = Vec::new();
        p.scan_url(b"/home?sid=h1", HOST, &mut |id| got.push(id.to_vec()));
        p.scan_url(b"https://shop.example/home?a=1&sid=h2#x", HOST, &mut |id| {
            got.push(id.to_vec())
        });
        p.scan_url(b"https://evil.example/home?sid=no", HOST, &mut |id| {
            got.push(id.to_vec())
        });
        assert_eq!(got, vec![b"h1".to_vec(), b"h2".to_vec()]);
    }
}
