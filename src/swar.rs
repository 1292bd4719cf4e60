//! Byte searches: eight bytes per step in a `u64` for short inputs (request
//! targets, header values, small bodies) and for targets that are usually
//! near; memchr's SIMD routines win on long inputs but their dispatch costs
//! more than the search below ~64 bytes. `first*`/`last2` search the near
//! end this way and hand the rest to memchr.

/// Inputs shorter than this are searched here rather than with memchr.
pub const SHORT: usize = 64;

const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HI: u64 = 0x8080_8080_8080_8080;

/// `b` in every byte.
#[inline]
const fn splat(b: u8) -> u64 {
    (b as u64) * 0x0101_0101_0101_0101
}

/// The high bit of each byte of `x` that is zero (exact: no carry crosses bytes).
#[inline]
fn zero_bytes(x: u64) -> u64 {
    !(((x & LO7).wrapping_add(LO7)) | x) & HI
}

#[inline]
fn word(c: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(c);
    u64::from_le_bytes(w)
}

/// Position of the first `a` in `s`.
#[inline]
pub fn find1(a: u8, s: &[u8]) -> Option<usize> {
    find2(a, a, s)
}

/// Position of the first `a` or `b` in `s`.
#[inline]
pub fn find2(a: u8, b: u8, s: &[u8]) -> Option<usize> {
    let (pa, pb) = (splat(a), splat(b));
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let v = word(c);
        let m = zero_bytes(v ^ pa) | zero_bytes(v ^ pb);
        if m != 0 {
            return Some(at + m.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == a || c == b)
        .map(|i| at + i)
}

/// The first eight bytes of `name` (fewer are zero-padded) and the mask
/// of those it has, for [`starts_with`].
pub fn head(name: &[u8]) -> (u64, u64) {
    let n = name.len().min(8);
    let mut w = [0u8; 8];
    w[..n].copy_from_slice(&name[..n]);
    let mask = if n == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * n)) - 1
    };
    (u64::from_le_bytes(w), mask)
}

/// Whether `s` starts with `name`, whose [`head`] is `head`: one word
/// compare for names of at most eight bytes, where `starts_with` would
/// call `memcmp`.
#[inline]
pub fn starts_with(s: &[u8], name: &[u8], (head, mask): (u64, u64)) -> bool {
    if s.len() < 8 || s.len() < name.len() {
        return s.starts_with(name);
    }
    word(&s[..8]) & mask == head && (name.len() <= 8 || s[8..].starts_with(&name[8..]))
}

/// Copies `src` into the start of `dst` (at least as long): with word
/// moves up to 16 bytes, where a call to `memcpy` costs more than the copy.
#[inline]
pub fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    let dst = &mut dst[..n];
    // Pieces from both ends that together cover all n bytes (overlapping).
    macro_rules! ends {
        ($w:literal) => {{
            dst[..$w].copy_from_slice(&src[..$w]);
            dst[n - $w..].copy_from_slice(&src[n - $w..]);
        }};
    }
    match n {
        0 => {}
        1 => dst[0] = src[0],
        2..=3 => ends!(2),
        4..=7 => ends!(4),
        8..=16 => ends!(8),
        _ => dst.copy_from_slice(src),
    }
}

/// Whether `a` and `b` hold the same bytes; ids of at most 16 bytes are
/// compared a word at a time as [`copy_short`] copies them.
#[inline]
pub fn eq_short(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if b.len() != n {
        return false;
    }
    let w = |s: &[u8], i: usize| word(&s[i..i + 8]);
    let h = |s: &[u8], i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    match n {
        0 => true,
        1 => a[0] == b[0],
        2..=3 => a[0] == b[0] && a[1] == b[1] && a[n - 1] == b[n - 1],
        4..=7 => h(a, 0) == h(b, 0) && h(a, n - 4) == h(b, n - 4),
        8..=16 => w(a, 0) == w(b, 0) && w(a, n - 8) == w(b, n - 8),
        // Longer ids (PHP's and Java's are 26 to 40 bytes): memcmp's
        // vector compare wins.
        _ => a == b,
    }
}

/// Position of the last `a` or `b` in `s`.
#[inline]
pub fn rfind2(a: u8, b: u8, s: &[u8]) -> Option<usize> {
    let (pa, pb) = (splat(a), splat(b));
    let mut chunks = s.rchunks_exact(8);
    let mut end = s.len();
    for c in &mut chunks {
        end -= 8;
        let v = word(c);
        let m = zero_bytes(v ^ pa) | zero_bytes(v ^ pb);
        if m != 0 {
            return Some(end + (63 - m.leading_zeros() as usize) / 8);
        }
    }
    chunks.remainder().iter().rposition(|&c| c == a || c == b)
}

/// How many of the first bytes of `s` surely go on what holds the byte
/// before `s`: a token in HTML, a URL in text (`TEXT`). None of them may end
/// a token (every control counts as one), nor in text be a URL quote (`"`,
/// `'`, `(`, a backquote); whole words only, so fewer when `s` is short or
/// the first such byte is not found in them. A token or URL judged to
/// teach nothing skips its later parameters that far.
#[inline]
pub fn run<const TEXT: bool>(s: &[u8]) -> usize {
    let mut at = 0;
    for c in s.chunks_exact(8) {
        let v = word(c);
        let mut stops = delimiter_candidates::<TEXT>(v);
        if TEXT {
            stops |= zero_bytes(v ^ splat(b'"'))
                | zero_bytes(v ^ splat(b'\''))
                | zero_bytes(v ^ splat(b'('))
                | zero_bytes(v ^ splat(b'`'));
        }
        if stops != 0 {
            return at + stops.trailing_zeros() as usize / 8;
        }
        at += 8;
    }
    at
}

/// The last byte before `to` in text that may begin a URL's bytes: a URL
/// quote (`"`, `'`, `(`, a backquote) or a token delimiter, a comma after
/// a closing quote included (`s` starts at a token boundary). Looked for
/// in the 24 bytes before `to` a word at a time; [`Stop::Unknown`] when
/// none is there or a control byte is (the caller then asks the token).
#[inline]
pub fn last_url_stop(s: &[u8], to: usize) -> Stop {
    let mut end = to;
    while end >= 8 && to - end < 24 {
        let v = word(&s[end - 8..end]);
        let quotes = zero_bytes(v ^ splat(b'"'))
            | zero_bytes(v ^ splat(b'\''))
            | zero_bytes(v ^ splat(b'('))
            | zero_bytes(v ^ splat(b'`'));
        let others = delimiter_candidates::<true>(v) | zero_bytes(v ^ splat(b','));
        let mut stops = quotes | others;
        while stops != 0 {
            let i = (63 - stops.leading_zeros() as usize) / 8;
            let at = end - 8 + i;
            match s[at] {
                b'"' | b'\'' | b'(' | b'`' => return Stop::Quote(at),
                b',' if quoted_comma(s, at, AFTER_DELIMITER) => return Stop::Delimiter(at),
                // A comma in the URL.
                b',' => stops &= !(0x80 << (8 * i)),
                c if is_delimiter::<true>(c) => return Stop::Delimiter(at),
                // A control byte that ends nothing: rare, left to the token.
                _ => return Stop::Unknown,
            }
        }
        end -= 8;
    }
    Stop::Unknown
}

/// What [`last_url_stop`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A URL quote: the URL starts after it, in the same token.
    Quote(usize),
    /// A token delimiter: the token, and its URL, start after it.
    Delimiter(usize),
    /// Not looked for far enough.
    Unknown,
}

/// Whether `c` ends a token: white space, `<` and `>`, and with `JSON` also
/// JSON's brackets and braces (`{`, `}`, `[`, `]`; never id bytes). With
/// `JSON` a comma right after a closing quote ends one too (see
/// [`quoted_comma`]), which this byte alone cannot tell.
#[inline]
pub fn is_delimiter<const JSON: bool>(c: u8) -> bool {
    // One bit per byte below 64 (all of the white space, `<` and `>`): a
    // shift and a test, where a `match` compiles to a jump table.
    const BELOW_64: u64 =
        1 << b' ' | 1 << b'\t' | 1 << b'\n' | 1 << b'\r' | 1 << 0x0c | 1 << b'<' | 1 << b'>';
    (c < 64 && BELOW_64 >> c & 1 != 0) || (JSON && is_structure(c))
}

/// Whether `c` is JSON structure that ends a token in text.
#[inline]
pub fn is_structure(c: u8) -> bool {
    // OR 0x20 makes `[` a `{` and `]` a `}`, and no other byte either.
    matches!(c | 0x20, b'{' | b'}')
}

/// The two bytes before a search that starts at a token boundary (any
/// bytes after which a quote opens a string would do).
pub const AFTER_DELIMITER: [u8; 2] = [b' ', b' '];

/// Whether a quote after `c` opens a string rather than closing one: `c`
/// is white space (or another control), `:` or `,`, a bracket, a brace or
/// an angle bracket.
#[inline]
fn opens_string(c: u8) -> bool {
    c <= b' ' || matches!(c, b':' | b',' | b'<' | b'>' | b'[' | b']' | b'{' | b'}')
}

/// Whether `s[i]` is a comma right after a closing quote (`x",`): in text,
/// where a string value ends and the next member begins, so that the
/// members of a flat minified object are judged a few at a time however
/// long it is. Not a lone comma (PHP ids contain commas, never quotes),
/// nor one after an opening quote (`":",x"`: an id may begin with a comma).
/// `before` holds the two bytes before `s` ([`AFTER_DELIMITER`] at a token
/// boundary; the scanner's carry knows them otherwise).
#[inline]
pub fn quoted_comma(s: &[u8], i: usize, before: [u8; 2]) -> bool {
    let at = |back: usize| match i.checked_sub(back) {
        Some(k) => s[k],
        None => before[2 + i - back],
    };
    s[i] == b',' && at(1) == b'"' && !opens_string(at(2))
}

/// The high bit of each byte of `v` after which a quote opens a string
/// (see [`opens_string`]; exact per byte).
#[inline]
fn opens_string_mask(v: u64) -> u64 {
    let controls = !((v & LO7).wrapping_add(splat(0x7f - 0x20)) | v) & HI;
    let angle = zero_bytes((v | splat(0x02)) ^ splat(0x3e));
    let folded = v | splat(0x20);
    let brackets = zero_bytes(folded ^ splat(b'{')) | zero_bytes(folded ^ splat(b'}'));
    controls | angle | brackets | zero_bytes(v ^ splat(b':')) | zero_bytes(v ^ splat(b','))
}

/// The high bit of each byte of the word `v` that is a comma after a
/// closing quote; `before` are the two bytes before the word.
#[inline]
fn quoted_commas(v: u64, before: [u8; 2]) -> u64 {
    let commas = zero_bytes(v ^ splat(b','));
    if commas == 0 {
        return 0;
    }
    let (b2, b1) = (u64::from(before[0]), u64::from(before[1]));
    let back1 = (v << 8) | b1;
    let back2 = (v << 16) | (b1 << 8) | b2;
    commas & zero_bytes(back1 ^ splat(b'"')) & !opens_string_mask(back2)
}

/// The two bytes before `s[at]`, from `before` where `s` has none.
#[inline]
fn two_before(s: &[u8], at: usize, before: [u8; 2]) -> [u8; 2] {
    match at {
        0 => before,
        1 => [before[1], s[0]],
        _ => [s[at - 2], s[at - 1]],
    }
}

/// Whether `s[i]` ends a token (see [`is_delimiter`], [`quoted_comma`]).
#[inline(always)]
pub fn delimiter_at<const JSON: bool>(s: &[u8], i: usize, before: [u8; 2]) -> bool {
    is_delimiter::<JSON>(s[i]) || (JSON && quoted_comma(s, i, before))
}

/// The high bit of each byte of `v` that may be a token delimiter: every
/// byte below 0x21 (the white space, among other controls), `<` and `>`
/// (0x3c and 0x3e are the only bytes that OR 2 makes 0x3e); with `JSON`
/// also `{` / `[` and `}` / `]` (OR 0x20 makes each pair one byte). Exact
/// per byte (no carry crosses bytes); the controls are checked one by one.
#[inline]
fn delimiter_candidates<const JSON: bool>(v: u64) -> u64 {
    let low = (v & LO7).wrapping_add(splat(0x7f - 0x20)) | v;
    let angle = zero_bytes((v | splat(0x02)) ^ splat(0x3e));
    let mut m = (!low & HI) | angle;
    if JSON {
        let folded = v | splat(0x20);
        m |= zero_bytes(folded ^ splat(b'{')) | zero_bytes(folded ^ splat(b'}'));
    }
    m
}

/// The last delimiter among the candidates `m` of the word `v`.
#[inline]
fn last_in<const JSON: bool>(v: u64, mut m: u64) -> Option<usize> {
    while m != 0 {
        let i = (63 - m.leading_zeros() as usize) / 8;
        if is_delimiter::<JSON>((v >> (8 * i)) as u8) {
            return Some(i);
        }
        m &= !(0x80 << (8 * i));
    }
    None
}

/// The first delimiter among the candidates `m` of the word `v`.
#[inline]
fn first_in<const JSON: bool>(v: u64, mut m: u64) -> Option<usize> {
    while m != 0 {
        let i = m.trailing_zeros() as usize / 8;
        if is_delimiter::<JSON>((v >> (8 * i)) as u8) {
            return Some(i);
        }
        m &= m - 1;
    }
    None
}

/// Position of the last token delimiter in `s` (see [`is_delimiter`]), eight
/// bytes per step: a JSON or event-stream body may have none, and a byte
/// loop would read it all one at a time. `before`: the two bytes before
/// `s` (see [`quoted_comma`]).
#[inline]
pub fn last_delimiter<const JSON: bool>(s: &[u8], before: [u8; 2]) -> Option<usize> {
    let mut chunks = s.rchunks_exact(8);
    let mut end = s.len();
    for c in &mut chunks {
        end -= 8;
        let v = word(c);
        let one = last_in::<JSON>(v, delimiter_candidates::<JSON>(v));
        let comma = if JSON {
            let q = quoted_commas(v, two_before(s, end, before));
            (q != 0).then(|| (63 - q.leading_zeros() as usize) / 8)
        } else {
            None
        };
        if let Some(i) = one.max(comma) {
            return Some(end + i);
        }
    }
    (0..end).rev().find(|&i| delimiter_at::<JSON>(s, i, before))
}

/// Position of the first token delimiter in `s`, eight bytes per step (the
/// end of a token that may run to the end of a JSON body); `before` as for
/// [`last_delimiter`].
#[inline]
pub fn first_delimiter<const JSON: bool>(s: &[u8], before: [u8; 2]) -> Option<usize> {
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let v = word(c);
        let one = first_in::<JSON>(v, delimiter_candidates::<JSON>(v));
        let comma = if JSON {
            let q = quoted_commas(v, two_before(s, at, before));
            (q != 0).then(|| q.trailing_zeros() as usize / 8)
        } else {
            None
        };
        let first = match (one, comma) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(i) = first {
            return Some(at + i);
        }
        at += 8;
    }
    (at..s.len()).find(|&i| delimiter_at::<JSON>(s, i, before))
}

/// One bit per byte of `s` (at most 64 bytes) that ends a token (see
/// [`is_delimiter`]; `before`: the two bytes before `s`, see
/// [`quoted_comma`]), the first byte in the lowest bit: where matches are
/// packed, a block's bits answer every token bound in it by a bit scan,
/// where each search would cost a word loop whose exit mispredicts. Written
/// as plain loops, which the compiler turns into vector compares (about
/// 0.2 cycles a byte).
#[inline]
pub fn delimiter_bits<const JSON: bool>(s: &[u8], before: [u8; 2]) -> u64 {
    match s.try_into() {
        Ok(block) => block_bits::<JSON>(block, before),
        Err(_) => {
            let mut block = [0u8; 64];
            // NUL ends no token: the padding adds no bit.
            block[..s.len()].copy_from_slice(s);
            block_bits::<JSON>(&block, before)
        }
    }
}

#[inline]
fn block_bits<const JSON: bool>(block: &[u8; 64], before: [u8; 2]) -> u64 {
    let (mut flags, mut commas) = ([0u8; 64], [0u8; 64]);
    for (i, &b) in block.iter().enumerate() {
        // Bitwise, not short-circuit, so that the loop vectorizes.
        let d = (b == b' ')
            | (b == b'\t')
            | (b == b'\n')
            | (b == b'\r')
            | (b == 0x0c)
            | ((b | 2) == b'>')
            | (JSON & (((b | 0x20) == b'{') | ((b | 0x20) == b'}')));
        flags[i] = d as u8;
        commas[i] = (JSON & (b == b',')) as u8;
    }
    let bits = pack(&flags);
    let commas = pack(&commas);
    if commas == 0 {
        return bits;
    }
    // A comma after a quote that does not open a string (see quoted_comma);
    // the block's first two bytes look back into `before`.
    let (mut quotes, mut opens) = ([0u8; 64], [0u8; 64]);
    for (i, &b) in block.iter().enumerate() {
        quotes[i] = (b == b'"') as u8;
        let brackets = ((b | 0x20) == b'{') | ((b | 0x20) == b'}');
        opens[i] = ((b <= b' ') | (b == b':') | (b == b',') | ((b | 2) == b'>') | brackets) as u8;
    }
    let [b2, b1] = before;
    let after_quote = pack(&quotes) << 1 | u64::from(b1 == b'"');
    let opened = pack(&opens) << 2 | u64::from(opens_string(b1)) << 1 | u64::from(opens_string(b2));
    bits | (commas & after_quote & !opened)
}

/// Text: the bytes of `s` (at most 64) whose nearest token delimiter or
/// URL quote (`"`, `'`, `(`, a backquote) before them is JSON structure
/// (`{}[]`), one bit each, the first byte in the lowest bit; `after`: that
/// holds for the byte after the block too. A link parameter there is cut
/// off from the URL it belongs to (`…?a[]=1&sid=`: the URL began before
/// its token) and teaches nothing, so a block's such candidates are
/// dropped without judging. `carry`: the same for the block's first byte
/// (false when not known: only fewer are dropped). A comma after a quote
/// ends tokens too, but the quote before it already stops the run.
#[inline]
pub fn after_structure_bits(s: &[u8], carry: bool) -> (u64, bool) {
    match s.try_into() {
        Ok(block) => structure_runs(block, carry),
        Err(_) => {
            // NUL neither ends a token nor is structure: the padding only
            // carries the last state on.
            let mut block = [0u8; 64];
            block[..s.len()].copy_from_slice(s);
            structure_runs(&block, carry)
        }
    }
}

#[inline]
fn structure_runs(block: &[u8; 64], carry: bool) -> (u64, bool) {
    let (mut stops, mut structure) = ([0u8; 64], [0u8; 64]);
    for (i, &b) in block.iter().enumerate() {
        // Bitwise, not short-circuit, so that the loop vectorizes.
        let brackets = ((b | 0x20) == b'{') | ((b | 0x20) == b'}');
        stops[i] = ((b == b' ')
            | (b == b'\t')
            | (b == b'\n')
            | (b == b'\r')
            | (b == 0x0c)
            | ((b | 2) == b'>')
            | brackets
            | (b == b'"')
            | (b == b'\'')
            | (b == b'(')
            | (b == b'`')) as u8;
        structure[i] = brackets as u8;
    }
    let (stops, structure) = (pack(&stops), pack(&structure));
    // Adding a bit right after each structure byte carries through the
    // bytes that stop nothing up to the next stop: flipped, they are the
    // run the structure reaches (the stop included, which follows it).
    let open = !stops;
    let runs = open.wrapping_add(structure << 1 | u64::from(carry)) ^ open;
    let after = match stops >> 63 {
        1 => structure >> 63 == 1,
        _ => runs >> 63 == 1,
    };
    (runs, after)
}

/// The 64 flags (0 or 1) as bits, the first in the lowest: eight bytes'
/// low bits gathered into the top byte by one multiply (byte i's bit lands
/// on bit 56 + i, and no two products overlap below it).
#[inline]
fn pack(flags: &[u8; 64]) -> u64 {
    flags
        .chunks_exact(8)
        .enumerate()
        .fold(0, |bits, (k, eight)| {
            bits | (word(eight).wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * k)
        })
}

/// Where `name` may start in `s[at..at + 64]`: how many places have its
/// first and last bytes in place (`.0`), and, of those, a bit per place
/// whose byte before can begin something a scanner judges (`.1`): a parameter
/// (`?`, `&`, `;`), a quoted name (`"`), and with `HTML` an attribute's
/// value (`=`, `'`, white space). Where names are packed, every candidate
/// of a block is known at once, and those no judging could use are never
/// looked at. A candidate at `s[0]`, with no byte before, is never judged.
#[inline]
pub fn name_starts<const HTML: bool>(s: &[u8], at: usize, name: &[u8]) -> (u32, u64) {
    let n = name.len();
    let (first, last) = (name[0], name[n - 1]);
    if at >= 1 && at + 63 + n <= s.len() {
        starts64::<HTML>(&s[at - 1..at + 63 + n], n, first, last)
    } else {
        // Zero-padded: a NUL is in no name and begins nothing.
        let mut buf = [0u8; 64 + 1 + crate::id::MAX_NAME_LEN];
        let from = at.saturating_sub(1);
        let to = s.len().min(at + 63 + n);
        let lead = usize::from(at == 0);
        buf[lead..lead + to - from].copy_from_slice(&s[from..to]);
        starts64::<HTML>(&buf[..64 + n], n, first, last)
    }
}

/// [`name_starts`] over `w`: the byte before the block, the block, and the
/// `n - 1` bytes after it.
#[inline]
fn starts64<const HTML: bool>(w: &[u8], n: usize, first: u8, last: u8) -> (u32, u64) {
    let (before, at, end) = (&w[..64], &w[1..65], &w[n..n + 64]);
    let (mut any, mut judged) = ([0u8; 64], [0u8; 64]);
    for (i, ((&p, &a), &e)) in before.iter().zip(at).zip(end).enumerate() {
        let placed = (a == first) & (e == last);
        // Bitwise, not short-circuit, so that the loop vectorizes.
        let opens = (p == b'?')
            | (p == b'&')
            | (p == b';')
            | (p == b'"')
            | (HTML
                & ((p == b'=')
                    | (p == b'\'')
                    | (p == b' ')
                    | (p == b'\t')
                    | (p == b'\n')
                    | (p == b'\r')
                    | (p == 0x0c)));
        any[i] = placed as u8;
        judged[i] = (placed & opens) as u8;
    }
    // How many there are, not where: a sum of bytes, cheaper than packing.
    let count: u32 = any.iter().map(|&a| u32::from(a)).sum();
    (count, pack(&judged))
}

/// Position of the first `a` or `b` in `s`, when it is probably near the
/// start (separators in targets, cookies and header values; the end of a tag).
#[inline]
pub fn first2(a: u8, b: u8, s: &[u8]) -> Option<usize> {
    let head = &s[..s.len().min(SHORT)];
    find2(a, b, head).or_else(|| {
        let rest = &s[head.len()..];
        (!rest.is_empty())
            .then(|| memchr::memchr2(a, b, rest).map(|i| head.len() + i))
            .flatten()
    })
}

/// Position of the first `a` in `s`, when it is probably near the start.
#[inline]
pub fn first1(a: u8, s: &[u8]) -> Option<usize> {
    let head = &s[..s.len().min(SHORT)];
    find1(a, head).or_else(|| {
        let rest = &s[head.len()..];
        memchr::memchr(a, rest).map(|i| head.len() + i)
    })
}

/// Position of the last `a` or `b` in `s`, when it is probably near the end.
#[inline]
pub fn last2(a: u8, b: u8, s: &[u8]) -> Option<usize> {
    let split = s.len().saturating_sub(SHORT);
    let (rest, tail) = s.split_at(split);
    rfind2(a, b, tail).map(|i| split + i).or_else(|| {
        (!rest.is_empty())
            .then(|| memchr::memrchr2(a, b, rest))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `s[i]` ends a token, byte by byte, after the two bytes `before`.
    fn ends_token<const JSON: bool>(s: &[u8], before: [u8; 2], i: usize) -> bool {
        let all: Vec<u8> = before.iter().chain(s).copied().collect();
        let c = all[i + 2];
        let opens = |b: u8| b <= b' ' || b":,<>[]{}".contains(&b);
        let comma = c == b',' && all[i + 1] == b'"' && !opens(all[i]);
        b" \t\n\r\x0c<>".contains(&c) || (JSON && (b"{}[]".contains(&c) || comma))
    }

    /// Contexts a search may start in: after a delimiter, after a closing
    /// quote, after an opening one, after a quote and a letter.
    const BEFORE: [[u8; 2]; 4] = [AFTER_DELIMITER, *b"x\"", *b":\"", *b"\"x"];

    #[test]
    fn delimiter_searches_agree_with_byte_loops() {
        fn check<const JSON: bool>(s: &[u8]) {
            for before in BEFORE {
                let rpos = (0..s.len())
                    .rev()
                    .find(|&i| ends_token::<JSON>(s, before, i));
                let pos = (0..s.len()).find(|&i| ends_token::<JSON>(s, before, i));
                assert_eq!(
                    last_delimiter::<JSON>(s, before),
                    rpos,
                    "{JSON} {before:?} {s:?}"
                );
                assert_eq!(
                    first_delimiter::<JSON>(s, before),
                    pos,
                    "{JSON} {before:?} {s:?}"
                );
            }
        }
        let fills = [
            b'a', 0x21, 0x3d, 0x3f, 0x7f, 0x80, 0xff, 0x1f, b'\\', b'|', 0x0b, 0xdb,
        ];
        for len in 0..40usize {
            for fill in fills {
                let base = vec![fill; len];
                check::<false>(&base);
                check::<true>(&base);
                for i in 0..len {
                    for d in *b" \t\n\r\x0c<>\x00\x01,{}[]\":" {
                        let mut s = base.clone();
                        s[i] = d;
                        check::<false>(&s);
                        check::<true>(&s);
                        // Two: the first and the last differ.
                        let mut t = s.clone();
                        t[len - 1 - i / 2] = b'>';
                        check::<false>(&t);
                        check::<true>(&t);
                        // `d` then a quote and a comma, across words or not.
                        if i + 2 < len {
                            let mut q = s.clone();
                            q[i + 1] = b'"';
                            q[i + 2] = b',';
                            check::<true>(&q);
                            q[i] = fill;
                            check::<true>(&q);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn delimiter_bits_agree_with_is_delimiter() {
        fn check<const JSON: bool>(s: &[u8]) {
            for before in BEFORE {
                let want = (0..s.len())
                    .filter(|&i| ends_token::<JSON>(s, before, i))
                    .fold(0u64, |m, i| m | 1 << i);
                assert_eq!(
                    delimiter_bits::<JSON>(s, before),
                    want,
                    "{JSON} {before:?} {s:?}"
                );
            }
        }
        // Every byte value at every position of blocks of every length,
        // among quotes and commas.
        for len in 0..=64usize {
            for c in 0..=255u8 {
                let s: Vec<u8> = (0..len)
                    .map(|i| match (i + c as usize) % 5 {
                        0 | 3 => c,
                        1 => b'"',
                        4 => b',',
                        _ => b'a' ^ (i as u8 & 1),
                    })
                    .collect();
                check::<false>(&s);
                check::<true>(&s);
            }
        }
    }

    #[test]
    fn name_starts_agree_with_byte_loops() {
        fn check<const HTML: bool>(s: &[u8], at: usize, name: &[u8]) {
            let opens = |p: u8| b"?&;\"".contains(&p) || (HTML && b"='\x20\t\n\r\x0c".contains(&p));
            let (mut any, mut judged) = (0u32, 0u64);
            for i in 0..64 {
                let m = at + i;
                if m + name.len() <= s.len()
                    && s[m] == name[0]
                    && s[m + name.len() - 1] == name[name.len() - 1]
                {
                    any += 1;
                    if m > 0 && opens(s[m - 1]) {
                        judged |= 1 << i;
                    }
                }
            }
            assert_eq!(
                name_starts::<HTML>(s, at, name),
                (any, judged),
                "{HTML} {at} {s:?}"
            );
        }
        // Names packed with every byte before them, near both ends.
        let names: [&[u8]; 3] = [b"s", b"sid", b"jsessionid"];
        for name in names {
            for c in 0..=255u8 {
                let unit: Vec<u8> = [c].iter().chain(name).copied().collect();
                let s = unit.repeat(150 / unit.len());
                for at in [
                    0,
                    1,
                    2,
                    7,
                    s.len() - 70,
                    s.len() - 64,
                    s.len() - 20,
                    s.len(),
                ] {
                    check::<false>(&s, at, name);
                    check::<true>(&s, at, name);
                }
            }
        }
    }

    /// At least `len` bytes of `pieces` picked at random (xorshift from
    /// `seed`, which moves on).
    fn pieced(pieces: &[&[u8]], len: usize, seed: &mut u64) -> Vec<u8> {
        let mut s = Vec::new();
        while s.len() < len {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            s.extend_from_slice(pieces[*seed as usize % pieces.len()]);
        }
        s
    }

    #[test]
    fn structure_runs_agree_with_a_byte_loop() {
        // For each byte: whether the nearest stop before it (a delimiter
        // other than a quoted comma, or a URL quote) is JSON structure.
        fn check(s: &[u8], carry: bool) {
            let stop = |c: u8| is_delimiter::<true>(c) || b"\"'(`".contains(&c);
            let mut state = carry;
            let (mut bits, mut after) = (0u64, carry);
            for i in 0..64 {
                if state {
                    bits |= 1 << i;
                }
                let c = s.get(i).copied().unwrap_or(0);
                if stop(c) {
                    state = is_structure(c);
                }
                after = state;
            }
            assert_eq!(
                after_structure_bits(s, carry),
                (bits, after),
                "{carry} {s:?}"
            );
        }
        let pieces: [&[u8]; 12] = [
            b"[", b"}", b"{", b"]", b"\"", b"'", b"(", b"`", b" ", b"\n", b"?sid=a", b"x,",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..4000 {
            let s = pieced(&pieces, 70, &mut seed);
            let len = [64, 63, 20, 1, 0][(seed >> 40) as usize % 5];
            check(&s[..len], seed >> 50 & 1 == 1);
        }
    }

    #[test]
    fn runs_end_before_every_stop() {
        // A run never passes a byte that may end a token (or, in text, a
        // URL), and reaches the first one when a whole word holds it.
        for c in 0..=255u8 {
            for at in 0..24 {
                let mut s = vec![b'a'; 24];
                s[at] = c;
                let html = c <= b' ' || b"<>".contains(&c);
                let text = html || b"{}[]\"'(`".contains(&c);
                for (stop, run) in [
                    (html, run::<false> as fn(&[u8]) -> usize),
                    (text, run::<true>),
                ] {
                    let want = if stop { at } else { 24 };
                    assert_eq!(run(&s), want, "{c} at {at}");
                    assert_eq!(run(&s[..at]), at / 8 * 8, "{c} at {at}");
                }
            }
        }
    }

    #[test]
    fn url_stops_agree_with_a_byte_loop() {
        // Back from `to` over the whole words before it (at most three):
        // the first quote or delimiter, unknown at a control that ends
        // nothing or when there is none.
        fn check(s: &[u8], to: usize) {
            let lo = to - 8 * (to / 8).min(3);
            let mut want = Stop::Unknown;
            for i in (lo..to).rev() {
                let c = s[i];
                if b"\"'(`".contains(&c) {
                    want = Stop::Quote(i);
                } else if delimiter_at::<true>(s, i, AFTER_DELIMITER) {
                    want = Stop::Delimiter(i);
                } else if c >= b' ' {
                    continue;
                }
                break;
            }
            assert_eq!(last_url_stop(s, to), want, "{to} {s:?}");
        }
        let pieces: [&[u8]; 12] = [
            b"\"",
            b"'",
            b"(",
            b"`",
            b",",
            b"\",",
            b"a\",",
            b" ",
            b"[",
            b"\x01",
            b"//x/?",
            b"abcdefgh",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..3000 {
            let s = pieced(&pieces, 40, &mut seed);
            for to in 0..=s.len() {
                check(&s, to);
            }
        }
    }

    #[test]
    fn starts_with_agrees_with_the_slice_method() {
        let names: [&[u8]; 5] = [b"s", b"sid", b"PHPSESSI", b"PHPSESSID", b"jsessionid"];
        for name in names {
            let head = head(name);
            for len in 0..24 {
                for at in 0..=name.len() {
                    // The name, cut or changed at `at`, in a body of `len` bytes.
                    let mut s: Vec<u8> =
                        name.iter().copied().chain(*b"=abcdefghijklmnop").collect();
                    s.truncate(len);
                    if at < s.len() {
                        s[at] ^= 0x20;
                    }
                    assert_eq!(
                        starts_with(&s, name, head),
                        s.starts_with(name),
                        "{name:?} {s:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn short_copies_and_compares_agree_with_the_slice_methods() {
        let src: Vec<u8> = (1..=64).collect();
        for n in 0..=64 {
            let mut dst = [0u8; 64];
            copy_short(&mut dst, &src[..n]);
            assert_eq!(&dst[..n], &src[..n]);
            assert!(dst[n..].iter().all(|&c| c == 0), "{n}");
            assert!(eq_short(&dst[..n], &src[..n]));
            for i in 0..n {
                let mut other = dst;
                other[i] ^= 0x40;
                assert!(!eq_short(&other[..n], &src[..n]), "{n} {i}");
            }
            assert!(n == 0 || !eq_short(&dst[..n - 1], &src[..n]));
        }
    }

    #[test]
    fn near_searches_agree_across_the_memchr_hand_over() {
        for len in [0usize, 1, 63, 64, 65, 127, 128, 200] {
            for i in (0..len).step_by(7).chain(len.checked_sub(1)) {
                for j in (i..len).step_by(13).chain(len.checked_sub(1)) {
                    let mut s = vec![b'a'; len];
                    s[i] = b'<';
                    s[j] = b'>';
                    let want1 = s.iter().position(|&c| c == b'<');
                    let want2 = s.iter().position(|&c| c == b'<' || c == b'>');
                    let wantr = s.iter().rposition(|&c| c == b'<' || c == b'>');
                    assert_eq!(first1(b'<', &s), want1, "{len} {i} {j}");
                    assert_eq!(first2(b'<', b'>', &s), want2, "{len} {i} {j}");
                    assert_eq!(last2(b'<', b'>', &s), wantr, "{len} {i} {j}");
                }
            }
            let plain = vec![b'a'; len];
            assert_eq!(
                (first2(b'<', b'>', &plain), last2(b'<', b'>', &plain)),
                (None, None)
            );
        }
    }

    #[test]
    fn agree_with_plain_loops() {
        // Every length up to 40, every position, bytes next to the targets
        // (0x00, 0x01, 0x7f, 0x80, 0xff) that would fool an inexact mask.
        let fill = [0x00u8, 0x01, b'a', 0x7f, 0x80, 0xff, b'<' ^ 1, b'>' + 1];
        for len in 0..40 {
            for f in fill {
                let base = vec![f; len];
                assert_eq!(find1(b'<', &base), None);
                assert_eq!(rfind2(b'<', b'>', &base), None);
                for i in 0..len {
                    for j in i..len {
                        let mut s = base.clone();
                        s[i] = b'<';
                        s[j] = b'>';
                        let want1 = s.iter().position(|&c| c == b'<');
                        let want2 = s.iter().position(|&c| c == b'<' || c == b'>');
                        let wantr = s.iter().rposition(|&c| c == b'<' || c == b'>');
                        assert_eq!(find1(b'<', &s), want1, "{s:?}");
                        assert_eq!(find2(b'<', b'>', &s), want2, "{s:?}");
                        assert_eq!(rfind2(b'<', b'>', &s), wantr, "{s:?}");
                    }
                }
            }
        }
    }
}
