//! Inflating gzip and deflate response bodies, for scanning only: the client
//! still receives the compressed bytes untouched.
//!
//! Memory is bounded and allocated once per response: the inflater's state
//! (its 32 KB window) and a fixed output buffer. Each buffer of compressed
//! input is inflated in slices of at most [`OUT_SIZE`] bytes, handed to a sink
//! (the scanner) before the call returns. Output is capped at [`MAX_INFLATED`]
//! bytes per response, so a compression bomb costs bounded time.

use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

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
}

impl Encoding {
    /// The encoding named by a `Content-Encoding` value, if supported.
    pub fn parse(value: &[u8]) -> Option<Encoding> {
        let v = value.trim_ascii();
        if v.eq_ignore_ascii_case(b"gzip") || v.eq_ignore_ascii_case(b"x-gzip") {
            Some(Encoding::Gzip)
        } else if v.eq_ignore_ascii_case(b"deflate") {
            Some(Encoding::Deflate)
        } else {
            None
        }
    }
}

/// Why inflation stopped early; the rest of the body is not scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// Not a valid gzip/zlib/deflate stream.
    Corrupt,
    /// More than [`MAX_INFLATED`] bytes.
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

/// Streaming inflater for one response body.
pub struct Inflater {
    state: Box<InflateState>,
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
        let (stage, format) = match encoding {
            Encoding::Gzip => (Stage::GzHeader(Gz::Fixed(0)), DataFormat::Raw),
            Encoding::Deflate => (Stage::Sniff, DataFormat::Raw),
        };
        Inflater {
            state: InflateState::new_boxed(format),
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
                    self.state.reset(format);
                    self.stage = Stage::Body;
                    let head = self.sniff;
                    self.inflate(&head, sink)?;
                }
                Stage::Body => return self.inflate(input, sink),
                Stage::Done => return Ok(()),
                Stage::Failed(e) => return Err(e),
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
            let r = inflate(&mut self.state, input, &mut self.out[..], MZFlush::None);
            input = &input[r.bytes_consumed..];
            if r.bytes_written > 0 {
                self.total += r.bytes_written as u64;
                if self.total > MAX_INFLATED {
                    return self.fail(InflateError::TooLarge);
                }
                if sink(&self.out[..r.bytes_written]).is_break() {
                    self.stage = Stage::Done;
                    return Ok(());
                }
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
        assert_eq!(Encoding::parse(b"br"), None);
        assert_eq!(Encoding::parse(b"gzip, br"), None);
    }
}
