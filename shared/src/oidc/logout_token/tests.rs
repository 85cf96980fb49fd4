//! Logout tokens we craft and sign with a test key.

use openidconnect::core::{CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey};
use openidconnect::PrivateSigningKey;
use serde_json::{json, Value};

use super::*;
use crate::oidc::test_jwt::{b64, key, sign};

const ISSUER: &str = "https://auth.example.com/application/o/site/";
const CLIENT: &str = "client-1";
const NOW: u64 = 1_800_000_000;

fn ours() -> CoreRsaPrivateSigningKey {
    key(include_str!("../id_token/test-key.pem"), "k1")
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": CLIENT, "iat": NOW - 2, "exp": NOW + 120, "jti": "j-1",
        "sub": "user-1", "sid": "s-1", "events": { BACKCHANNEL_EVENT: {} },
    })
}

fn header() -> Value {
    json!({"alg": "RS256", "kid": "k1", "typ": "logout+jwt"})
}

fn check(raw: &str) -> Result<LogoutClaims, IdTokenError> {
    let jwks = crate::oidc::jwk::key_set(&[ours().as_verification_key()]).unwrap();
    validate(
        raw,
        ISSUER,
        CLIENT,
        NOW,
        &jwks,
        &[CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256],
    )
}

fn with(field: &str, value: Value) -> Value {
    let mut c = claims();
    c[field] = value;
    c
}

fn without(field: &str) -> Value {
    let mut c = claims();
    c.as_object_mut().unwrap().remove(field);
    c
}

#[test]
fn accepts_a_valid_token() {
    let c = check(&sign(&ours(), header(), &claims())).unwrap();
    assert_eq!(
        (c.sub.as_deref(), c.sid.as_deref(), c.jti.as_str()),
        (Some("user-1"), Some("s-1"), "j-1")
    );
    assert!(
        check(&sign(&ours(), header(), &without("sub"))).is_ok(),
        "sid alone is enough"
    );
}

#[test]
fn refuses_what_the_spec_refuses() {
    let cases = [
        ("wrong aud", with("aud", json!("other")), "aud"),
        (
            "wrong iss",
            with("iss", json!("https://evil.example.com/")),
            "iss",
        ),
        ("missing events", without("events"), "events"),
        (
            "wrong event",
            with("events", json!({"http://example.com/other": {}})),
            "events",
        ),
        ("nonce present", with("nonce", json!("n")), "nonce"),
        ("no jti", without("jti"), "jti"),
        (
            "neither sub nor sid",
            {
                let mut c = without("sub");
                c.as_object_mut().unwrap().remove("sid");
                c
            },
            "sub_or_sid",
        ),
        ("stale", with("iat", json!(NOW - 3600)), "iat"),
        ("future", with("iat", json!(NOW + 3600)), "iat"),
        ("expired", with("exp", json!(NOW - 100)), "exp"),
    ];
    for (what, c, reason) in cases {
        assert_eq!(
            check(&sign(&ours(), header(), &c)),
            Err(IdTokenError::Invalid(reason)),
            "{what}"
        );
    }
}

#[test]
fn refuses_bad_signatures_and_algorithms() {
    let attacker = key(include_str!("../id_token/other-key.pem"), "k1");
    assert_eq!(
        check(&sign(&attacker, header(), &claims())),
        Err(IdTokenError::Invalid("signature"))
    );
    let none = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims()));
    assert!(check(&none).is_err());
    let hs = format!(
        "{}.{}.AAAA",
        b64(&json!({"alg": "HS256", "kid": "k1"})),
        b64(&claims())
    );
    assert_eq!(check(&hs), Err(IdTokenError::Invalid("alg")));
    assert_eq!(
        check(&sign(
            &ours(),
            json!({"alg": "RS256", "kid": "unknown"}),
            &claims()
        )),
        Err(IdTokenError::NoMatchingKey)
    );
    for garbage in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
        assert!(check(garbage).is_err());
    }
}
