//! ID token validation against tokens we craft and sign with a test key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use openidconnect::core::{CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey};
use openidconnect::PrivateSigningKey;
use serde_json::{json, Value};

use super::*;
use crate::oidc::test_jwt::{b64, key, sign};

const ISSUER: &str = "https://auth.example.com/application/o/site/";
const CLIENT: &str = "client-1";
const NOW: u64 = 1_800_000_000;

fn signing_key() -> CoreRsaPrivateSigningKey {
    key(include_str!("test-key.pem"), "k1")
}

fn jwks() -> ProviderKeySet {
    crate::oidc::jwk::key_set(&[signing_key().as_verification_key()]).unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": CLIENT, "sub": "user-1", "exp": NOW + 300, "iat": NOW - 5,
        "nonce": "n-1", "name": "Ada", "email": "ada@example.com", "groups": ["staff"], "sid": "idp-session",
    })
}

fn token(payload: &Value) -> String {
    sign(
        &signing_key(),
        json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}),
        payload,
    )
}

fn expected() -> Expected<'static> {
    Expected {
        issuer: ISSUER,
        client_id: CLIENT,
        nonce: Some("n-1"),
        max_age: None,
        now: NOW,
    }
}

fn check(raw: &str, exp: Expected<'_>) -> Result<IdClaims, IdTokenError> {
    validate(
        raw,
        exp,
        &jwks(),
        &[CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256],
    )
}

fn with(field: &str, value: Value) -> Value {
    let mut c = claims();
    c[field] = value;
    c
}

#[test]
fn accepts_a_good_token_and_reads_the_claims() {
    let c = check(&token(&claims()), expected()).unwrap();
    assert_eq!(c.user.sub, "user-1");
    assert_eq!(c.user.name.as_deref(), Some("Ada"));
    assert_eq!(c.user.groups, Some(vec!["staff".to_owned()]));
    assert_eq!(c.idp_sid.as_deref(), Some("idp-session"));
}

#[test]
fn refuses_each_bad_claim() {
    let cases = [
        (
            "wrong iss",
            with("iss", json!("https://evil.example.com/")),
            "iss",
        ),
        (
            "iss without trailing slash",
            with("iss", json!(ISSUER.trim_end_matches('/'))),
            "iss",
        ),
        ("wrong aud", with("aud", json!("someone-else")), "aud"),
        ("expired", with("exp", json!(NOW - 1)), "exp_or_iat"),
        ("future iat", with("iat", json!(NOW + 3600)), "exp_or_iat"),
        ("wrong nonce", with("nonce", json!("n-2")), "nonce"),
        (
            "several audiences without azp",
            with("aud", json!([CLIENT, "other"])),
            "aud",
        ),
        ("azp of another client", with("azp", json!("other")), "azp"),
        ("empty sub", with("sub", json!("")), "sub"),
    ];
    for (what, payload, reason) in cases {
        assert_eq!(
            check(&token(&payload), expected()),
            Err(IdTokenError::Invalid(reason)),
            "{what}"
        );
    }
    let mut no_nonce = claims();
    no_nonce.as_object_mut().unwrap().remove("nonce");
    assert!(
        check(&token(&no_nonce), expected()).is_err(),
        "missing nonce"
    );
    let mut no_iat = claims();
    no_iat.as_object_mut().unwrap().remove("iat");
    assert!(check(&token(&no_iat), expected()).is_err(), "missing iat");
}

#[test]
fn refuses_alg_none() {
    let raw = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims())
    );
    assert!(check(&raw, expected()).is_err());
    let raw = format!("{}.{}.", b64(&json!({"alg": "None"})), b64(&claims()));
    assert!(check(&raw, expected()).is_err());
}

#[test]
fn refuses_a_bad_signature() {
    let good = token(&claims());
    let (head, _) = good.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode([7u8; 256]));
    assert_eq!(
        check(&forged, expected()),
        Err(IdTokenError::Invalid("signature"))
    );
    // Same kid, other key: signed by an attacker.
    let attacker = key(include_str!("other-key.pem"), "k1");
    let raw = sign(&attacker, json!({"alg": "RS256", "kid": "k1"}), &claims());
    assert_eq!(
        check(&raw, expected()),
        Err(IdTokenError::Invalid("signature"))
    );
    // Changing the payload after signing.
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        format!(
            "{}.{}.{}",
            parts[0],
            b64(&with("sub", json!("admin"))),
            parts[2]
        )
    };
    assert_eq!(
        check(&tampered, expected()),
        Err(IdTokenError::Invalid("signature"))
    );
}

#[test]
fn refuses_hs256_signed_with_the_public_key() {
    let public_jwk = serde_json::to_vec(&signing_key().as_verification_key()).unwrap();
    let input = format!(
        "{}.{}",
        b64(&json!({"alg": "HS256", "kid": "k1"})),
        b64(&claims())
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&public_jwk).unwrap();
    mac.update(input.as_bytes());
    let raw = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(check(&raw, expected()), Err(IdTokenError::Invalid("alg")));
}

#[test]
fn ignores_attacker_keys_in_the_header() {
    let attacker = key(include_str!("other-key.pem"), "evil");
    let jwk = serde_json::to_value(attacker.as_verification_key()).unwrap();
    for header in [
        json!({"alg": "RS256", "kid": "k1", "jwk": jwk}),
        json!({"alg": "RS256", "kid": "k1", "jku": "https://evil.test/jwks"}),
        json!({"alg": "RS256", "kid": "k1", "x5u": "https://evil.test/cert"}),
    ] {
        let raw = sign(&attacker, header, &claims());
        assert!(check(&raw, expected()).is_err());
    }
}

#[test]
fn an_unknown_kid_asks_for_a_refetch() {
    let raw = sign(
        &signing_key(),
        json!({"alg": "RS256", "kid": "rotated"}),
        &claims(),
    );
    assert_eq!(check(&raw, expected()), Err(IdTokenError::NoMatchingKey));
}

#[test]
fn max_age_needs_a_recent_auth_time() {
    let exp = Expected {
        max_age: Some(60),
        ..expected()
    };
    assert_eq!(
        check(&token(&claims()), exp),
        Err(IdTokenError::Invalid("auth_time"))
    );
    assert_eq!(
        check(&token(&with("auth_time", json!(NOW - 3600))), exp),
        Err(IdTokenError::Invalid("auth_time"))
    );
    assert!(check(&token(&with("auth_time", json!(NOW - 10))), exp).is_ok());
}

#[test]
fn garbage_is_refused_without_panicking() {
    for raw in [
        "",
        "a.b.c",
        "not a jwt",
        "....",
        "eyJ.eyJ.",
        &"A".repeat(10_000),
    ] {
        assert!(check(raw, expected()).is_err(), "{raw:?}");
    }
}
