//! The directive parser: any words give a directive or an error message,
//! never a panic; accepted values are within their documented bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sticky_session::config::parse;
use sticky_session::id::{MAX_ID_LEN_LIMIT, MAX_NAMES};

fuzz_target!(|data: &[u8]| {
    let args: Vec<&[u8]> = data
        .split(|&c| c == b' ' || c == b'\n')
        .filter(|w| !w.is_empty())
        .collect();
    match parse(&args) {
        Ok(d) => {
            assert!(!d.names.is_empty() && d.names.len() <= MAX_NAMES);
            assert!(d.timeout > 0);
            assert!((1..=MAX_ID_LEN_LIMIT).contains(&d.max_id_len));
            assert!(!d.lookup.is_empty());
            if let Some(z) = d.zone {
                assert!(z.size >= sticky_session::config::MIN_ZONE_SIZE);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
