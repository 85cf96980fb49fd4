//! The redirect policy: whatever `RedirectPolicy::check` accepts is an
//! absolute http(s) URL on an allowed origin, https unless loopback, without
//! userinfo, and whose path cannot be read as a network-path reference.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use static_login::redirect::{is_loopback_host, Origin, RedirectPolicy};

fn policy() -> &'static RedirectPolicy {
    static POLICY: OnceLock<RedirectPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        RedirectPolicy::new(
            Origin::parse("https://auth.example.com").unwrap(),
            vec![
                Origin::parse("https://www.example.com").unwrap(),
                Origin::parse("http://localhost:5173").unwrap(),
            ],
        )
    })
}

fuzz_target!(|raw: &str| {
    let policy = policy();
    let _ = Origin::parse(raw);
    let Ok(url) = policy.check(raw) else {
        return;
    };
    let origin = Origin::of(&url);
    assert!(
        policy.allows(&origin),
        "{raw:?} -> {url} on a foreign origin"
    );
    match url.scheme() {
        "https" => {}
        "http" => assert!(
            is_loopback_host(url.host_str().unwrap_or_default()),
            "{raw:?}"
        ),
        other => panic!("{raw:?} -> scheme {other}"),
    }
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{raw:?}"
    );
    assert!(!url.path().starts_with("//"), "{raw:?} -> {url}");
    assert!(
        !url.as_str().chars().any(|c| c.is_control() || c == '\\'),
        "{raw:?} -> {url}"
    );
    // What the browser will parse from the Location header is the same place.
    let again = url::Url::parse(url.as_str()).unwrap();
    assert_eq!(Origin::of(&again), origin, "{raw:?}");
    assert_eq!(
        policy.check(url.as_str()).ok().as_ref(),
        Some(&url),
        "{raw:?}"
    );
});
