//! The gzip/deflate scanning path: arbitrary bytes never panic or overrun;
//! a valid stream inflates to the original however it is chunked.
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
    // Round trips.
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gz.extend_from_slice(&compress_to_vec(data, 1));
    gz.extend_from_slice(&[0; 8]);
    let (out, ok) = run(Encoding::Gzip, &gz, step);
    assert!(ok && out == data, "gzip round trip");
    let (out, ok) = run(Encoding::Deflate, &compress_to_vec_zlib(data, 1), step);
    assert!(ok && out == data, "zlib round trip");
});
