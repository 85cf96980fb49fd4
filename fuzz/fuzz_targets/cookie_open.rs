//! Opening sealed cookies (and table records): `KeyRing::open` and
//! `open_json` on arbitrary input never panic and never accept anything we
//! did not seal; what we seal opens again, under key rotation too, and only
//! under the name it was sealed for.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use static_login::cookies::KeyRing;
use static_login::session::{Marker, Refresh, Session, Tokens};

const NAMES: [&str; 7] = [
    "__Host-session",
    "__Secure-session-tokens",
    "__Secure-session-refresh",
    "__Host-login",
    "login-tx",
    "exchange",
    "refresh-result",
];

struct Rings {
    old: KeyRing,
    rotated: KeyRing,
}

fn rings() -> &'static Rings {
    static RINGS: OnceLock<Rings> = OnceLock::new();
    RINGS.get_or_init(|| {
        let old = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let new = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        Rings {
            old: KeyRing::parse(old).unwrap(),
            rotated: KeyRing::parse(&format!("{new},{old}")).unwrap(),
        }
    })
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    name: u8,
    other_name: u8,
    /// Opened as a cookie value.
    raw: &'a str,
    /// Sealed, then opened.
    plaintext: &'a [u8],
    /// Byte to flip in the sealed value.
    flip: u16,
}

fuzz_target!(|input: Input<'_>| {
    let rings = rings();
    let name = NAMES[usize::from(input.name) % NAMES.len()];
    let other = NAMES[usize::from(input.other_name) % NAMES.len()];

    // Arbitrary input: never opens (forging an AEAD tag), never panics.
    assert!(rings.rotated.open(name, input.raw).is_err());
    assert!(rings
        .rotated
        .open_json::<serde_json::Value>(name, input.raw)
        .is_err());
    assert!(rings.rotated.open_json::<Session>(name, input.raw).is_err());
    assert!(rings.rotated.open_json::<Marker>(name, input.raw).is_err());
    assert!(rings.rotated.open_json::<Tokens>(name, input.raw).is_err());
    assert!(rings.rotated.open_json::<Refresh>(name, input.raw).is_err());
    let _ = KeyRing::parse(input.raw);

    // Sealed with the old key: the rotated ring opens it, under its name only.
    let sealed = rings.old.seal(name, input.plaintext);
    assert_eq!(rings.rotated.open(name, &sealed).unwrap(), input.plaintext);
    if other != name {
        assert!(rings.rotated.open(other, &sealed).is_err());
    }
    // Any single changed character breaks it (or leaves the same bytes).
    let mut tampered = sealed.clone().into_bytes();
    let at = usize::from(input.flip) % tampered.len();
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    if let Ok(opened) = rings.rotated.open(name, &tampered) {
        // Base64 of the last character may carry unused bits.
        assert_eq!(opened, input.plaintext);
        assert_eq!(at, sealed.len() - 1);
    }
    // Truncated: never opens.
    assert!(rings
        .rotated
        .open(name, &sealed[..sealed.len() / 2])
        .is_err());
});
