//! The body scanner: every chunking of a body reports exactly what a
//! one-shot scan reports, in HTML and text mode, through one scanner and as
//! the nginx adapter scans (in place while nothing is carried); and no body, however it is
//! made, is scanned slower than a linear bound (a hostile page must not
//! hold a worker).
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sticky_session::id::Names;
use sticky_session::scanner::{Between, Flow, InlineCarry, Mode, Patterns, Recent, Scanner};

/// A `found` callback that keeps every id and never stops the scan.
fn collect(out: &mut Vec<Vec<u8>>) -> impl FnMut(&[u8]) -> Flow + '_ {
    |id| {
        out.push(id.to_vec());
        Flow::Continue(())
    }
}

fn scan(p: &Patterns, mode: Mode, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut s = Box::new(Scanner::new(mode));
    let mut out = Vec::new();
    for c in chunks {
        let _ = s.feed(p, b"shop.example", c, &mut collect(&mut out));
    }
    let _ = s.finish(p, b"shop.example", &mut collect(&mut out));
    // Which ids, not how often: a repeat of the last id is not reported again.
    out.sort();
    out.dedup();
    out
}

/// As the nginx adapter scans: each buffer in place while nothing is
/// carried (keeping only what `Between` holds), through a scanner from the
/// first buffer that ends inside a token or tag.
fn scan_in_place(p: &Patterns, mode: Mode, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let (mut between, mut scanner) = (Between::START, None::<Box<Scanner>>);
    for c in chunks {
        if let Some(s) = scanner.as_mut() {
            let _ = s.feed(p, b"shop.example", c, &mut collect(&mut out));
            continue;
        }
        let mut recent = Recent::new();
        recent.resume(between);
        let (_, cut) = p.scan_complete(mode, c, b"shop.example", &mut recent, &mut collect(&mut out));
        if cut < c.len() {
            let mut s = Box::new(Scanner::with_recent(mode, InlineCarry::default(), recent));
            let _ = s.feed(p, b"shop.example", &c[cut..], &mut collect(&mut out));
            scanner = Some(s);
        }
        between = recent.between();
    }
    if let Some(s) = scanner.as_mut() {
        let _ = s.finish(p, b"shop.example", &mut collect(&mut out));
    }
    out.sort();
    out.dedup();
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let mut names = Names::new();
    names.push(b"sid");
    names.push(b"PHPSESSID");
    let p = Patterns::new(&names, 64);
    let (seed, body) = (u64::from(data[0]) << 8 | u64::from(data[1]), &data[2..]);
    for mode in [Mode::Html, Mode::Text] {
        let t = Instant::now();
        let whole = scan(&p, mode, &[body]);
        // Linear, with room for the instrumentation: >= 2 MB/s plus 20 ms of
        // noise (a quadratic scan of a 64 KB hostile page took seconds).
        let bound = Duration::from_millis(20) + Duration::from_nanos(500) * body.len() as u32;
        assert!(
            t.elapsed() <= bound,
            "{mode:?} scan of {} bytes took {:?}",
            body.len(),
            t.elapsed()
        );
        // Pseudo-random cut points from the seed.
        let mut x = seed | 1;
        let mut chunks = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = 1 + (x as usize) % rest.len().min(1 + (seed as usize % 4096));
            let (a, b) = rest.split_at(n);
            chunks.push(a);
            rest = b;
        }
        assert_eq!(
            scan(&p, mode, &chunks),
            whole,
            "chunking changed the ids ({mode:?})"
        );
        assert_eq!(
            scan_in_place(&p, mode, &chunks),
            whole,
            "scanning in place changed the ids ({mode:?})"
        );
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(
            scan(&p, mode, &bytes),
            whole,
            "byte-by-byte changed the ids ({mode:?})"
        );
    }
});
