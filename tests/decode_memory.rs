//! The memory a body decoder holds, measured: a counting allocator records
//! the peak of live heap bytes while hostile bodies are decoded. One test
//! function, so nothing else allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use sticky_session::inflate::{Encoding, InflateError, Inflater, MAX_INFLATED, ZSTD_MAX_WINDOW};
use sticky_session::scanner::Flow;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: as the caller's contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: as the caller's contract.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Decodes `body` in 16 KB buffers (as nginx hands them over); answers the
/// result and the peak heap growth while decoding.
fn decode(enc: Encoding, body: &[u8]) -> (Result<(), InflateError>, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let mut inf = Inflater::new(enc);
    let mut res = Ok(());
    let mut seen = 0u64;
    for chunk in body.chunks(16 * 1024) {
        res = inf.feed(chunk, &mut |s| {
            seen += s.len() as u64;
            Flow::Continue(())
        });
        if res.is_err() {
            break;
        }
    }
    assert!(seen <= MAX_INFLATED);
    drop(inf);
    (res, PEAK.load(Ordering::Relaxed) - base)
}

fn brotli(data: &[u8], lgwin: i32) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 1,
        lgwin,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &data[..], &mut out, &params).unwrap();
    out
}

/// A zstd frame with a 2^`window_log` window and `blocks` RLE blocks of 128 KB.
fn zstd_rle(window_log: u8, blocks: usize) -> Vec<u8> {
    let mut v = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (window_log - 10) << 3];
    for i in 0..blocks {
        let h = u32::from(i + 1 == blocks) | 1 << 1 | (128u32 << 10) << 3;
        v.extend_from_slice(&h.to_le_bytes()[..3]);
        v.push(b'x');
    }
    v
}

const MB: usize = 1 << 20;

#[test]
fn decoders_stay_within_their_stated_bounds() {
    // gzip: 32 KB window and buffers, whatever the body.
    let zeros = vec![0u8; 200 * MB];
    let gz = {
        let mut v = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        v.extend(miniz_oxide::deflate::compress_to_vec(&zeros, 1));
        v
    };
    let (r, peak) = decode(Encoding::Gzip, &gz);
    assert_eq!(r, Err(InflateError::TooLarge));
    assert!(peak < MB, "gzip bomb held {peak} bytes");

    // brotli: the window the stream declares (16 MB at most), briefly 1.5
    // times it while the decoder grows its ring buffer, plus tables.
    let br = brotli(&zeros, 24);
    let (r, peak) = decode(Encoding::Brotli, &br);
    assert_eq!(r, Err(InflateError::TooLarge));
    assert!(
        peak <= 24 * MB + 2 * MB,
        "brotli bomb (16 MB window) held {peak} bytes"
    );
    let br = brotli(&zeros, 18);
    let (r, peak) = decode(Encoding::Brotli, &br);
    assert_eq!(r, Err(InflateError::TooLarge));
    assert!(
        peak <= 2 * MB,
        "brotli bomb (256 KB window) held {peak} bytes"
    );

    // zstd: the window (8 MB at most; its ring buffer grows by doubling, so
    // up to twice that), one block of input, the tables.
    let (r, peak) = decode(Encoding::Zstd, &zstd_rle(23, 1024));
    assert_eq!(r, Err(InflateError::TooLarge));
    let bound = 2 * ZSTD_MAX_WINDOW as usize + MB;
    assert!(
        peak <= bound,
        "zstd bomb (8 MB window) held {peak} bytes, bound {bound}"
    );
    let (r, peak) = decode(Encoding::Zstd, &zstd_rle(30, 2));
    assert_eq!(r, Err(InflateError::TooLarge), "a 1 GB window is refused");
    assert!(peak < MB, "refusing a 1 GB window held {peak} bytes");
}
