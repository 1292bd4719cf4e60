//! Decoding gzip, deflate, brotli and zstd response bodies, for scanning
//! only: the client still receives the compressed bytes untouched.
//!
//! Each buffer of compressed input is decoded in slices of at most
//! [`OUT_SIZE`] bytes, handed to a sink (the scanner) before the call
//! returns. Output is capped at [`MAX_INFLATED`] bytes per response, so a
//! compression bomb costs bounded time. Memory per response is bounded by
//! the format's window: gzip/deflate 32 KB; brotli the window the stream
//! declares, at most 16 MB (the format's limit; briefly 1.5 times that while
//! the decoder grows its ring buffer, and less for a smaller body: measured
//! by tests/decode_memory.rs); zstd a window of at most [`ZSTD_MAX_WINDOW`]
//! (8 MB, the limit RFC 9659 sets for HTTP; a frame asking for more is not
//! decoded) in a ring buffer that grows by doubling (13 MB measured for a
//! full 8 MB window), plus one block of input (128 KB). A zstd decoder's output trails its input
//! by up to the window, so ids in a zstd body are seen once the rest of the
//! body (or a window's worth of it) has arrived.

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};
use ruzstd::decoding::FrameDecoder;

use crate::scanner::Flow;

/// Bytes inflated per step.
pub const OUT_SIZE: usize = 16 * 1024;
/// Most bytes inflated (and scanned) per response.
pub const MAX_INFLATED: u64 = 64 << 20;

/// A `Content-Encoding` the scanner can read through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `gzip` / `x-gzip` (RFC 1952).
    Gzip,
    /// `deflate`: zlib-wrapped as HTTP specifies, or raw as some servers send it.
    Deflate,
    /// `br` (RFC 7932).
    Brotli,
    /// `zstd` (RFC 8878, RFC 9659).
    Zstd,
}

/// Largest zstd window decoded (RFC 9659: 8 MB).
pub const ZSTD_MAX_WINDOW: u64 = 8 << 20;
/// Largest zstd block (RFC 8878, 3.1.1.2.4).
const ZSTD_MAX_BLOCK: usize = 128 << 10;

impl Encoding {
    /// The encoding named by a `Content-Encoding` value, if supported.
    pub fn parse(value: &[u8]) -> Option<Encoding> {
        let v = value.trim_ascii();
        if v.eq_ignore_ascii_case(b"gzip") || v.eq_ignore_ascii_case(b"x-gzip") {
            Some(Encoding::Gzip)
        } else if v.eq_ignore_ascii_case(b"deflate") {
            Some(Encoding::Deflate)
        } else if v.eq_ignore_ascii_case(b"br") {
            Some(Encoding::Brotli)
        } else if v.eq_ignore_ascii_case(b"zstd") {
            Some(Encoding::Zstd)
        } else {
            None
        }
    }
}

/// Why inflation stopped early; the rest of the body is not scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// Not a valid gzip/zlib/deflate/brotli/zstd stream.
    Corrupt,
    /// More than [`MAX_INFLATED`] bytes, or a zstd window over [`ZSTD_MAX_WINDOW`].
    TooLarge,
}

/// Where in the stream the inflater is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Reading the gzip member header.
    GzHeader(Gz),
    /// Waiting for two bytes to tell zlib from raw deflate.
    Sniff,
    /// Inflating.
    Body,
    /// The compressed stream ended; trailing bytes are ignored.
    Done,
    /// Stopped after an error.
    Failed(InflateError),
}

/// Gzip header fields still to skip (RFC 1952, 2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gz {
    /// The 10 fixed bytes; `n` read so far.
    Fixed(u8),
    /// FEXTRA length, `n` of 2 bytes read.
    ExtraLen(u8),
    /// FEXTRA data, bytes left.
    Extra(u16),
    /// FNAME, up to its NUL.
    Name,
    /// FCOMMENT, up to its NUL.
    Comment,
    /// FHCRC, bytes left.
    Crc(u8),
}

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

type Brotli = BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>;

/// The decoder of one body.
enum Codec {
    Deflate(Box<InflateState>),
    Brotli(Box<Brotli>),
    Zstd(Box<Zstd>),
    /// Failed or finished early: the decoder's memory is given back.
    Spent,
}

/// A zstd frame, decoded one block at a time so that each call produces at
/// most one block (128 KB) of output: a run of tiny RLE blocks cannot make
/// one call expand without bound.
struct Zstd {
    decoder: FrameDecoder,
    /// Compressed bytes of the frame header or block not complete yet.
    pending: Vec<u8>,
    /// The frame header was decoded.
    started: bool,
}

/// Streaming inflater for one response body.
pub struct Inflater {
    codec: Codec,
    out: Box<[u8; OUT_SIZE]>,
    stage: Stage,
    flags: u8,
    extra_len: u16,
    sniff: [u8; 2],
    sniffed: u8,
    total: u64,
}

impl Inflater {
    /// An inflater at the start of a body with `encoding`. Allocates its
    /// state and output buffer, once.
    pub fn new(encoding: Encoding) -> Self {
        let deflate = || Codec::Deflate(InflateState::new_boxed(DataFormat::Raw));
        let (stage, codec) = match encoding {
            Encoding::Gzip => (Stage::GzHeader(Gz::Fixed(0)), deflate()),
            Encoding::Deflate => (Stage::Sniff, deflate()),
            Encoding::Brotli => (
                Stage::Body,
                Codec::Brotli(Box::new(BrotliState::new(
                    StandardAlloc::default(),
                    StandardAlloc::default(),
                    StandardAlloc::default(),
                ))),
            ),
            Encoding::Zstd => {
                let mut decoder = FrameDecoder::new();
                decoder.set_max_window_size(ZSTD_MAX_WINDOW);
                let zstd = Zstd {
                    decoder,
                    pending: Vec::new(),
                    started: false,
                };
                (Stage::Body, Codec::Zstd(Box::new(zstd)))
            }
        };
        Inflater {
            codec,
            out: Box::new([0; OUT_SIZE]),
            stage,
            flags: 0,
            extra_len: 0,
            sniff: [0; 2],
            sniffed: 0,
            total: 0,
        }
    }

    /// Bytes inflated so far.
    pub fn total_out(&self) -> u64 {
        self.total
    }

    /// Inflates the next buffer of the body, passing every inflated slice to
    /// `sink` before returning. When `sink` answers `Break` the inflater
    /// stops for good (later input is ignored). After an error, further input
    /// is ignored and the error is returned again.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        sink: &mut impl FnMut(&[u8]) -> Flow,
    ) -> Result<(), InflateError> {
        loop {
            match self.stage {
                Stage::GzHeader(gz) => {
                    let used = self.gz_header(gz, input)?;
                    input = &input[used..];
                    if matches!(self.stage, Stage::GzHeader(_)) {
                        return Ok(());
                    }
                }
                Stage::Sniff => {
                    while self.sniffed < 2 {
                        let Some((&b, rest)) = input.split_first() else {
                            return Ok(());
                        };
                        self.sniff[self.sniffed as usize] = b;
                        self.sniffed += 1;
                        input = rest;
                    }
                    let [cmf, flg] = self.sniff;
                    let zlib = cmf & 0x0f == 8
                        && cmf >> 4 <= 7
                        && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0;
                    let format = if zlib {
                        DataFormat::ZLibIgnoreChecksum
                    } else {
                        DataFormat::Raw
                    };
                    if let Codec::Deflate(state) = &mut self.codec {
                        state.reset(format);
                    }
                    self.stage = Stage::Body;
                    let head = self.sniff;
                    self.inflate(&head, sink)?;
                }
                Stage::Body => {
                    return match self.codec {
                        Codec::Deflate(_) => self.inflate(input, sink),
                        Codec::Brotli(_) => self.brotli(input, sink),
                        Codec::Zstd(_) => self.zstd(input, sink),
                        Codec::Spent => Ok(()),
                    }
                }
                Stage::Done => return Ok(()),
                Stage::Failed(e) => return Err(e),
            }
        }
    }

    /// Hands `n` decoded bytes of the output buffer to `sink`; answers
    /// whether decoding goes on.
    fn emit(
        &mut self,
        n: usize,
        sink: &mut impl FnMut(&[u8]) -> Flow,
    ) -> Result<bool, InflateError> {
        if n == 0 {
            return Ok(true);
        }
        self.total += n as u64;
        if self.total > MAX_INFLATED {
            return self.fail(InflateError::TooLarge).map(|_| false);
        }
        if sink(&self.out[..n]).is_break() {
            self.stage = Stage::Done;
            return Ok(false);
        }
        Ok(true)
    }

    /// Decodes brotli `input`, slice by slice.
    fn brotli(
        &mut self,
        input: &[u8],
        sink: &mut impl FnMut(&[u8]) -> Flow,
    ) -> Result<(), InflateError> {
        let (mut available_in, mut input_offset) = (input.len(), 0);
        loop {
            let Codec::Brotli(state) = &mut self.codec else {
                return Ok(());
            };
            let (mut available_out, mut output_offset, mut total) = (OUT_SIZE, 0, 0);
            let r = BrotliDecompressStream(
                &mut available_in,
                &mut input_offset,
                input,
                &mut available_out,
                &mut output_offset,
                &mut self.out[..],
                &mut total,
                state,
            );
            if !self.emit(output_offset, sink)? {
                return Ok(());
            }
            match r {
                BrotliResult::ResultSuccess => {
                    self.stage = Stage::Done;
                    return Ok(());
                }
                BrotliResult::NeedsMoreInput => return Ok(()),
                BrotliResult::NeedsMoreOutput => {}
                BrotliResult::ResultFailure => return self.fail(InflateError::Corrupt),
            }
        }
    }

    /// Decodes zstd `input`: every complete block, one at a time.
    fn zstd(
        &mut self,
        input: &[u8],
        sink: &mut impl FnMut(&[u8]) -> Flow,
    ) -> Result<(), InflateError> {
        let Codec::Zstd(z) = &mut self.codec else {
            return Ok(());
        };
        z.pending.extend_from_slice(input);
        loop {
            let Codec::Zstd(z) = &mut self.codec else {
                return Ok(());
            };
            let header = if z.started {
                0
            } else {
                match zstd_header_len(&z.pending) {
                    Ok(Some(n)) => n,
                    Ok(None) => return Ok(()),
                    Err(e) => return self.fail(e),
                }
            };
            let block = match zstd_block_len(z.pending.get(header..).unwrap_or(&[])) {
                Ok(Some(b)) => b,
                Ok(None) if z.pending.len() > header + ZSTD_MAX_BLOCK + 3 => {
                    return self.fail(InflateError::Corrupt)
                }
                Ok(None) => return Ok(()),
                Err(e) => return self.fail(e),
            };
            let unit = header + block.len;
            let result = z
                .decoder
                .decode_from_to(&z.pending[..unit], &mut self.out[..]);
            let (read, mut written) = match result {
                Ok(x) => x,
                Err(ruzstd::decoding::errors::FrameDecoderError::WindowSizeTooBig { .. }) => {
                    return self.fail(InflateError::TooLarge)
                }
                Err(_) => return self.fail(InflateError::Corrupt),
            };
            if read != unit {
                return self.fail(InflateError::Corrupt);
            }
            z.pending.drain(..unit);
            z.started = true;
            // Drain what the block made available (all of it after the last).
            loop {
                if !self.emit(written, sink)? {
                    return Ok(());
                }
                if written < OUT_SIZE {
                    break;
                }
                let Codec::Zstd(z) = &mut self.codec else {
                    return Ok(());
                };
                written = match z.decoder.decode_from_to(&[], &mut self.out[..]) {
                    Ok((_, w)) => w,
                    Err(_) => return self.fail(InflateError::Corrupt),
                };
            }
            if block.last {
                self.stage = Stage::Done;
                return Ok(());
            }
        }
    }

    /// Inflates `input` into the output buffer, slice by slice.
    fn inflate(
        &mut self,
        mut input: &[u8],
        sink: &mut impl FnMut(&[u8]) -> Flow,
    ) -> Result<(), InflateError> {
        loop {
            let Codec::Deflate(state) = &mut self.codec else {
                return Ok(());
            };
            let r = inflate(state, input, &mut self.out[..], MZFlush::None);
            input = &input[r.bytes_consumed..];
            if !self.emit(r.bytes_written, sink)? {
                return Ok(());
            }
            match r.status {
                Ok(MZStatus::StreamEnd) => {
                    self.stage = Stage::Done;
                    return Ok(());
                }
                Ok(_) => {}
                // No progress possible: all input used and all output flushed.
                Err(MZError::Buf) if r.bytes_consumed == 0 && r.bytes_written == 0 => {
                    return if input.is_empty() {
                        Ok(())
                    } else {
                        self.fail(InflateError::Corrupt)
                    };
                }
                Err(MZError::Buf) => {}
                Err(_) => return self.fail(InflateError::Corrupt),
            }
            if input.is_empty() && r.bytes_written < OUT_SIZE {
                return Ok(());
            }
        }
    }

    fn fail(&mut self, e: InflateError) -> Result<(), InflateError> {
        // Give back the decoder's memory (a brotli or zstd window) now.
        self.codec = Codec::Spent;
        self.stage = Stage::Failed(e);
        Err(e)
    }

    /// Consumes gzip header bytes from `input`; returns how many.
    fn gz_header(&mut self, mut gz: Gz, input: &[u8]) -> Result<usize, InflateError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            i += 1;
            gz = match gz {
                Gz::Fixed(n) => {
                    match (n, b) {
                        (0, 0x1f) | (1, 0x8b) | (2, 8) => {}
                        (0..=2, _) => return self.fail(InflateError::Corrupt).map(|_| i),
                        (3, flags) => self.flags = flags,
                        _ => {}
                    }
                    if n < 9 {
                        Gz::Fixed(n + 1)
                    } else {
                        match self.next_field(None) {
                            Some(next) => next,
                            None => {
                                self.stage = Stage::Body;
                                return Ok(i);
                            }
                        }
                    }
                }
                Gz::ExtraLen(0) => {
                    self.extra_len = u16::from(b);
                    Gz::ExtraLen(1)
                }
                Gz::ExtraLen(_) => {
                    self.extra_len |= u16::from(b) << 8;
                    if self.extra_len == 0 {
                        match self.next_field(Some(FEXTRA)) {
                            Some(next) => next,
                            None => {
                                self.stage = Stage::Body;
                                return Ok(i);
                            }
                        }
                    } else {
                        Gz::Extra(self.extra_len)
                    }
                }
                Gz::Extra(left) => {
                    if left > 1 {
                        Gz::Extra(left - 1)
                    } else {
                        match self.next_field(Some(FEXTRA)) {
                            Some(next) => next,
                            None => {
                                self.stage = Stage::Body;
                                return Ok(i);
                            }
                        }
                    }
                }
                Gz::Name | Gz::Comment if b != 0 => gz,
                Gz::Name | Gz::Comment | Gz::Crc(_) => {
                    let (done, field) = match gz {
                        Gz::Name => (true, FNAME),
                        Gz::Comment => (true, FCOMMENT),
                        Gz::Crc(left) => (left <= 1, FHCRC),
                        _ => (true, 0),
                    };
                    if !done {
                        Gz::Crc(1)
                    } else {
                        match self.next_field(Some(field)) {
                            Some(next) => next,
                            None => {
                                self.stage = Stage::Body;
                                return Ok(i);
                            }
                        }
                    }
                }
            };
        }
        self.stage = Stage::GzHeader(gz);
        Ok(i)
    }

    /// The optional header field after `done` (None = after the fixed part).
    fn next_field(&self, done: Option<u8>) -> Option<Gz> {
        let order = [FEXTRA, FNAME, FCOMMENT, FHCRC];
        let from = match done {
            None => 0,
            Some(f) => order
                .iter()
                .position(|&o| o == f)
                .map_or(order.len(), |p| p + 1),
        };
        order[from..]
            .iter()
            .find(|&&f| self.flags & f != 0)
            .map(|&f| match f {
                FEXTRA => Gz::ExtraLen(0),
                FNAME => Gz::Name,
                FCOMMENT => Gz::Comment,
                _ => Gz::Crc(2),
            })
    }
}

/// A zstd block: its length with its 3-byte header, and whether it is the
/// frame's last.
struct Block {
    len: usize,
    last: bool,
}

/// The length of the zstd frame header at the start of `b` (magic number
/// included), `None` until enough bytes are there to tell.
fn zstd_header_len(b: &[u8]) -> Result<Option<usize>, InflateError> {
    if b.len() < 5 {
        return Ok(None);
    }
    if b[..4] != [0x28, 0xb5, 0x2f, 0xfd] {
        return Err(InflateError::Corrupt);
    }
    let d = b[4];
    let single = usize::from(d >> 5 & 1);
    let dict = [0, 1, 2, 4][usize::from(d & 3)];
    let fcs = [single, 2, 4, 8][usize::from(d >> 6)];
    let n = 5 + (1 - single) + dict + fcs;
    Ok((b.len() >= n).then_some(n))
}

/// The zstd block at the start of `b`, once it is complete.
fn zstd_block_len(b: &[u8]) -> Result<Option<Block>, InflateError> {
    let Some(h) = b.get(..3) else { return Ok(None) };
    let h = u32::from(h[0]) | u32::from(h[1]) << 8 | u32::from(h[2]) << 16;
    let size = (h >> 3) as usize;
    let content = match h >> 1 & 3 {
        0 | 2 => size,
        1 => 1,
        _ => return Err(InflateError::Corrupt),
    };
    if size > ZSTD_MAX_BLOCK {
        return Err(InflateError::Corrupt);
    }
    let len = 3 + content;
    Ok((b.len() >= len).then_some(Block {
        len,
        last: h & 1 == 1,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use miniz_oxide::deflate::{compress_to_vec, compress_to_vec_zlib};

    fn gzip(data: &[u8], flags: u8) -> Vec<u8> {
        let mut v = vec![0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 3];
        if flags & FEXTRA != 0 {
            v.extend_from_slice(&[3, 0, b'a', b'b', b'c']);
        }
        if flags & FNAME != 0 {
            v.extend_from_slice(b"page.html\0");
        }
        if flags & FCOMMENT != 0 {
            v.extend_from_slice(b"a comment\0");
        }
        if flags & FHCRC != 0 {
            v.extend_from_slice(&[0xaa, 0xbb]);
        }
        v.extend_from_slice(&compress_to_vec(data, 6));
        v.extend_from_slice(&[0; 8]); // CRC32 and ISIZE, not checked
        v
    }

    fn run(enc: Encoding, chunks: &[&[u8]]) -> (Vec<u8>, Result<(), InflateError>) {
        let mut inf = Inflater::new(enc);
        let mut out = Vec::new();
        let mut res = Ok(());
        for c in chunks {
            res = inf.feed(c, &mut |s| {
                out.extend_from_slice(s);
                Flow::Continue(())
            });
            if res.is_err() {
                break;
            }
        }
        (out, res)
    }

    fn page() -> Vec<u8> {
        (0..4000)
            .map(|i| format!("<a href=\"/p?sid=s{i}\">link {i}</a>\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn gzip_with_every_header_field_inflates_however_split() {
        let data = page();
        for flags in [
            0,
            FEXTRA,
            FNAME,
            FCOMMENT,
            FHCRC,
            FEXTRA | FNAME | FCOMMENT | FHCRC,
        ] {
            let z = gzip(&data, flags);
            let (whole, r) = run(Encoding::Gzip, &[&z]);
            assert_eq!(r, Ok(()));
            assert_eq!(whole, data, "flags {flags:#x}");
            for size in [1, 7, 100, 4096] {
                let chunks: Vec<&[u8]> = z.chunks(size).collect();
                let (got, r) = run(Encoding::Gzip, &chunks);
                assert_eq!(r, Ok(()));
                assert_eq!(got, data, "flags {flags:#x} chunks of {size}");
            }
        }
    }

    pub(crate) fn brotli(data: &[u8], lgwin: i32) -> Vec<u8> {
        let mut out = Vec::new();
        let params = brotli::enc::BrotliEncoderParams {
            quality: 5,
            lgwin,
            ..Default::default()
        };
        brotli::BrotliCompress(&mut &data[..], &mut out, &params).unwrap();
        out
    }

    pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    /// A zstd frame with a 2^`window_log` window whose `blocks` RLE blocks
    /// each expand 4 bytes into 128 KB of `byte`.
    pub(crate) fn zstd_rle_bomb(window_log: u8, blocks: usize, byte: u8) -> Vec<u8> {
        // Descriptor: no checksum, not single-segment, no dictionary, no size.
        let mut v = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (window_log - 10) << 3];
        for i in 0..blocks {
            let last = u32::from(i + 1 == blocks);
            let h = last | 1 << 1 | (ZSTD_MAX_BLOCK as u32) << 3;
            v.extend_from_slice(&h.to_le_bytes()[..3]);
            v.push(byte);
        }
        v
    }

    #[test]
    fn brotli_and_zstd_decode_however_split() {
        let data = page();
        for (enc, z) in [
            (Encoding::Brotli, brotli(&data, 22)),
            (Encoding::Brotli, brotli(&data, 16)),
            (Encoding::Zstd, zstd(&data)),
        ] {
            assert!(z.len() < data.len() / 3, "{enc:?} compresses");
            for size in [1, 2, 3, 17, 1000, 4096, z.len()] {
                let chunks: Vec<&[u8]> = z.chunks(size).collect();
                let (got, r) = run(enc, &chunks);
                assert_eq!(r, Ok(()), "{enc:?} chunks of {size}");
                assert_eq!(got, data, "{enc:?} chunks of {size}");
            }
        }
        // A body larger than one zstd block (128 KB) and than the output buffer.
        let big: Vec<u8> = page().repeat(5);
        let (got, r) = run(Encoding::Zstd, &[&zstd(&big)]);
        assert_eq!((got.len(), r), (big.len(), Ok(())));
        assert_eq!(got, big);
    }

    #[test]
    fn brotli_and_zstd_bombs_stop_at_the_cap() {
        // 256 MB of zeros, a few KB compressed.
        let zeros = vec![0u8; 256 << 20];
        let br = brotli(&zeros, 24);
        assert!(br.len() < 100_000, "{}", br.len());
        let (got, r) = run(Encoding::Brotli, &[&br]);
        assert_eq!(r, Err(InflateError::TooLarge));
        assert!(got.len() as u64 <= MAX_INFLATED);
        let bomb = zstd_rle_bomb(23, 2048, b'x');
        assert!(bomb.len() < 10_000);
        let (got, r) = run(Encoding::Zstd, &[&bomb]);
        assert_eq!(r, Err(InflateError::TooLarge));
        assert!(got.len() as u64 <= MAX_INFLATED);
        // Once stopped, more input is refused at once.
        let mut inf = Inflater::new(Encoding::Zstd);
        let r = inf.feed(&bomb, &mut |_| Flow::Continue(()));
        assert_eq!(r, Err(InflateError::TooLarge));
        let r = inf.feed(&bomb, &mut |_| panic!("decoded after the stop"));
        assert_eq!(r, Err(InflateError::TooLarge));
    }

    #[test]
    fn zstd_windows_over_8_mb_and_broken_frames_are_refused() {
        let (_, r) = run(Encoding::Zstd, &[&zstd_rle_bomb(27, 1, b'x')]);
        assert_eq!(r, Err(InflateError::TooLarge), "a 128 MB window");
        let (got, r) = run(Encoding::Zstd, &[&zstd_rle_bomb(23, 1, b'x')]);
        assert_eq!(
            (got.len(), r),
            (ZSTD_MAX_BLOCK, Ok(())),
            "an 8 MB window is fine"
        );
        let (_, r) = run(Encoding::Zstd, &[b"not zstd at all"]);
        assert_eq!(r, Err(InflateError::Corrupt));
        let mut reserved = zstd_rle_bomb(20, 1, b'x');
        reserved[6] |= 0b110; // block type 3
        assert_eq!(
            run(Encoding::Zstd, &[&reserved]).1,
            Err(InflateError::Corrupt)
        );
        let (_, r) = run(Encoding::Brotli, &[b"\xff\xff\xff\xff not brotli"]);
        assert_eq!(r, Err(InflateError::Corrupt));
        // Truncated: what arrived is decoded, no error.
        let z = zstd(&page());
        let (got, r) = run(Encoding::Zstd, &[&z[..z.len() / 2]]);
        assert_eq!(r, Ok(()));
        assert!(got.len() < page().len());
    }

    #[test]
    fn deflate_zlib_and_raw() {
        let data = page();
        for z in [compress_to_vec_zlib(&data, 6), compress_to_vec(&data, 6)] {
            for size in [1, 2, 3, 1000, z.len()] {
                let chunks: Vec<&[u8]> = z.chunks(size).collect();
                let (got, r) = run(Encoding::Deflate, &chunks);
                assert_eq!(r, Ok(()));
                assert_eq!(got, data, "chunks of {size}");
            }
        }
    }

    #[test]
    fn corrupt_and_truncated_streams_stop_cleanly() {
        let data = page();
        let z = gzip(&data, 0);
        let (_, r) = run(Encoding::Gzip, &[b"not gzip at all"]);
        assert_eq!(r, Err(InflateError::Corrupt));
        let mut bad = z.clone();
        for b in &mut bad[10..40] {
            *b ^= 0x5a;
        }
        let (_, r) = run(Encoding::Gzip, &[&bad]);
        assert_eq!(r, Err(InflateError::Corrupt));
        // Truncated: what arrived is inflated, nothing fails.
        let (got, r) = run(Encoding::Gzip, &[&z[..z.len() / 2]]);
        assert_eq!(r, Ok(()));
        assert!(!got.is_empty() && data.starts_with(&got));
        // An error is sticky.
        let mut inf = Inflater::new(Encoding::Gzip);
        assert!(inf.feed(b"xx", &mut |_| Flow::Continue(())).is_err());
        assert_eq!(
            inf.feed(&z, &mut |_| Flow::Continue(())),
            Err(InflateError::Corrupt)
        );
    }

    #[test]
    fn output_is_capped() {
        let zeros = vec![0u8; (MAX_INFLATED + OUT_SIZE as u64) as usize];
        let z = gzip(&zeros, 0);
        let mut inf = Inflater::new(Encoding::Gzip);
        let r = inf.feed(&z, &mut |_| Flow::Continue(()));
        assert_eq!(r, Err(InflateError::TooLarge));
        assert!(inf.total_out() <= MAX_INFLATED + OUT_SIZE as u64);
    }

    #[test]
    fn encoding_names() {
        assert_eq!(Encoding::parse(b"gzip"), Some(Encoding::Gzip));
        assert_eq!(Encoding::parse(b" X-GZIP "), Some(Encoding::Gzip));
        assert_eq!(Encoding::parse(b"deflate"), Some(Encoding::Deflate));
        assert_eq!(Encoding::parse(b"br"), Some(Encoding::Brotli));
        assert_eq!(Encoding::parse(b" ZSTD"), Some(Encoding::Zstd));
        assert_eq!(Encoding::parse(b"compress"), None);
        assert_eq!(Encoding::parse(b"gzip, br"), None);
    }
}
