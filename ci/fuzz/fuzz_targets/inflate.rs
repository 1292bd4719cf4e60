//! The decoding path (gzip, deflate, brotli, zstd): arbitrary bytes never
//! panic or overrun; a valid stream decodes to the original however it is
//! chunked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use miniz_oxide::deflate::{compress_to_vec, compress_to_vec_zlib};
use sticky_session::inflate::{Encoding, Inflater};
use sticky_session::scanner::Flow;

fn run(enc: Encoding, input: &[u8], step: usize) -> (Vec<u8>, bool) {
    let mut inf = Inflater::new(enc);
    let mut out = Vec::new();
    for c in input.chunks(step.max(1)) {
        let mut sink = |s: &[u8]| {
            out.extend_from_slice(s);
            Flow::Continue(())
        };
        if inf.feed(c, &mut sink).is_err() {
            return (out, false);
        }
    }
    (out, true)
}

fuzz_target!(|data: &[u8]| {
    let step = 1 + data.first().copied().unwrap_or(0) as usize;
    // Hostile input as each encoding.
    run(Encoding::Gzip, data, step);
    run(Encoding::Deflate, data, step);
    run(Encoding::Brotli, data, step);
    run(Encoding::Zstd, data, step);
    // Hostile zstd behind a valid frame header (8 MB window, no size), so
    // the block parser is reached.
    let mut framed = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 13 << 3];
    framed.extend_from_slice(data);
    run(Encoding::Zstd, &framed, step);
    // Round trips.
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gz.extend_from_slice(&compress_to_vec(data, 1));
    gz.extend_from_slice(&[0; 8]);
    let (out, ok) = run(Encoding::Gzip, &gz, step);
    assert!(ok && out == data, "gzip round trip");
    let (out, ok) = run(Encoding::Deflate, &compress_to_vec_zlib(data, 1), step);
    assert!(ok && out == data, "zlib round trip");
    let z = ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest);
    let (out, ok) = run(Encoding::Zstd, &z, step);
    assert!(ok && out == data, "zstd round trip");
});
