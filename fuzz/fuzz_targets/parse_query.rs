//! Query parsing at the edge: never panics, refuses duplicates and bad
//! UTF-8, and what it returns survives a round trip through a serializer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use static_login::edge::parse_query;

fuzz_target!(|raw: &str| {
    let Ok(query) = parse_query(raw) else {
        return;
    };
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query.iter())
        .finish();
    assert_eq!(parse_query(&encoded), Ok(query), "{raw:?}");
});
