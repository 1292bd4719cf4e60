//! The core's decisions on hostile input: which response header teaches
//! which id (only valid ids, only from the headers that carry them), how a
//! body is read, which request candidate wins (never more than
//! MAX_CANDIDATES lookups, a live one always preferred), and what each id a
//! response hands out teaches (a client-chosen unknown id is never recorded).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sticky_session::config::Types;
use sticky_session::id::{valid_id, Names};
use sticky_session::response::{body_coding, header_ids, scan_mode, HeaderSource};
use sticky_session::scanner::{Flow, Patterns};
use sticky_session::session::{Choice, Learning, Step, MAX_CANDIDATES};
use sticky_session::store::Lookup;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let mut names = Names::new();
    names.push(b"sid");
    names.push(b"PHPSESSID");
    let p = Patterns::new(&names, 64);
    let (head, rest) = data.split_at(4);

    // A header: name and value split where the input says.
    let cut = usize::from(head[0]) % rest.len().max(1);
    let (name, value) = rest.split_at(cut.min(rest.len()));
    let mut n = 0;
    let _ = header_ids(name, value, &p, &names, b"shop.example", &mut |id| {
        assert!(valid_id(id, 64), "reported an invalid id {id:?}");
        assert!(HeaderSource::of(name).is_some(), "an id from a header that carries none");
        n += 1;
        if head[1] & 1 == 0 { Flow::Break(()) } else { Flow::Continue(()) }
    });
    if head[1] & 1 == 0 {
        assert!(n <= 1, "Break did not stop the header");
    }
    let _ = scan_mode(&Types::default(), value);
    let _ = body_coding(Some(value));

    // Candidates: each byte is one; its low bits say what the table knows.
    let mut choice = Choice::default();
    let (mut lookups, mut first_hit) = (0, None);
    for (i, &b) in rest.iter().enumerate() {
        let found = match b % 3 {
            0 => Lookup::Hit(u32::from(b)),
            1 => Lookup::Miss,
            _ => Lookup::Expired,
        };
        if first_hit.is_none() && matches!(found, Lookup::Hit(_)) && i < MAX_CANDIDATES {
            first_hit = Some(i);
        }
        lookups += 1;
        if choice.consider(&rest[i..=i], |_| (i as u64 + 1, found)) {
            break;
        }
    }
    assert!(lookups <= MAX_CANDIDATES);
    if let (Some(i), Some(c)) = (first_hit, choice.chosen()) {
        assert_eq!(c.key, i as u64 + 1, "a live candidate was passed over");
    }

    // What a response's ids teach: keys from the input, the request's own
    // key from the header bytes.
    let own = u64::from(head[2] % 8);
    // The response's share (max_learn=) from the header bytes too.
    let max = u32::from((head[1] >> 1) & 15) + 1;
    let mut l = Learning::new(own, head[3] & 1 == 1, max);
    let mut records = 0;
    for &b in rest {
        let key = u64::from(b % 8);
        let before = l.last;
        match l.step(key) {
            Step::Record => {
                assert!(key != own && key != before);
                records += 1;
            }
            Step::Echo => assert!(key == own && !l.known),
            Step::Own => assert!(key == own && l.known),
            Step::Repeat => assert_eq!(key, before),
            // A new id once the response has recorded its share.
            Step::Enough => assert!(key != own && key != before && records == max),
        }
        assert!(records <= max);
    }
});
