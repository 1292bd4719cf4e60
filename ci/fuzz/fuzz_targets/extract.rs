//! Request id extraction: query, path parameters, urlencoded body, cookies,
//! Set-Cookie. Every id reported lies inside the input and is a valid id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sticky_session::extract::{
    cookie_ids, path_param_ids, query_ids, request_id, set_cookie_id, split_target,
};
use sticky_session::id::{valid_id, Names};

fuzz_target!(|data: &[u8]| {
    let names = Names::defaults();
    let max = 1 + (data.first().copied().unwrap_or(0) as usize % 64);
    let inside = |id: &[u8]| {
        let base = data.as_ptr() as usize;
        let p = id.as_ptr() as usize;
        assert!(
            p >= base && p + id.len() <= base + data.len(),
            "id outside the input"
        );
    };
    let mut check = |id: &[u8]| {
        inside(id);
        assert!(valid_id(id, max), "invalid id {id:?}");
        false
    };
    let (path, query) = split_target(data);
    query_ids(query, &names, max, &mut check);
    // The query parser reports exactly what splitting at `&`/`;` does.
    let mut got = Vec::new();
    query_ids(query, &names, max, &mut |id| {
        got.push(id);
        false
    });
    let model: Vec<&[u8]> = names
        .iter()
        .flat_map(|name| {
            query
                .split(|&c| c == b'&' || c == b';')
                .filter_map(move |pair| {
                    pair.trim_ascii_start()
                        .strip_prefix(name)?
                        .strip_prefix(b"=")
                })
                .filter(|v| valid_id(v, max))
        })
        .collect();
    assert_eq!(got, model, "query ids differ from the split model");
    path_param_ids(path, &names, max, &mut check);
    query_ids(data, &names, max, &mut check);
    cookie_ids(data, &names, max, &mut check);
    if let Some(id) = request_id(data, &names, max) {
        inside(id);
        assert!(valid_id(id, max));
    }
    if let Some(id) = set_cookie_id(data, &names, max) {
        inside(id);
        assert!(valid_id(id, max));
    }
});
