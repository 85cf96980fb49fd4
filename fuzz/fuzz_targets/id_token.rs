//! ID token validation. Arbitrary strings never validate (nobody can forge
//! our provider's signature); tokens the provider did sign, with fuzzed
//! header and claims, validate only when every check of OIDC Core 3.1.3.7
//! holds: our issuer, us as the only audience (or `azp` us), unexpired, not
//! issued in the future, our nonce, a subject, a listed algorithm and our
//! key. RS256 tokens come from a key under the 2048-bit minimum, so they are
//! always refused; the accepted ones are EdDSA.
#![no_main]

mod common;

use arbitrary::Arbitrary;
use common::*;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use static_login::oidc::id_token::{validate, Expected, CLOCK_SKEW_SECS};

#[derive(Arbitrary, Debug)]
enum Payload {
    /// A claims object from fuzzer choices.
    Claims {
        iss: Text,
        sub: Text,
        aud: Text,
        azp: Text,
        nonce: Text,
        exp: Time,
        iat: Time,
        auth_time: Time,
        name: Text,
        groups: Text,
        sid: Text,
    },
    /// Any bytes as the payload, validly signed.
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Input {
    /// Any string as the token.
    Unsigned(String),
    /// A token our provider's key signed.
    Signed {
        header: Header,
        payload: Payload,
        max_age: Option<u16>,
        refresh: bool,
    },
}

const NONCE: &str = "n-1";

fuzz_target!(|input: Input| {
    let keys = keys();
    let expected = |max_age: Option<u16>, refresh: bool| Expected {
        issuer: ISSUER,
        client_id: CLIENT,
        nonce: if refresh { None } else { Some(NONCE) },
        max_age: max_age.map(u64::from),
        now: NOW,
    };
    match input {
        Input::Unsigned(raw) => {
            let result = validate(&raw, expected(None, false), &keys.jwks, &algorithms());
            assert!(result.is_err(), "a forged token validated: {raw:?}");
        }
        Input::Signed {
            header,
            payload,
            max_age,
            refresh,
        } => {
            let payload = match payload {
                Payload::Raw(bytes) => bytes,
                Payload::Claims {
                    iss,
                    sub,
                    aud,
                    azp,
                    nonce,
                    exp,
                    iat,
                    auth_time,
                    name,
                    groups,
                    sid,
                } => {
                    let mut c = Map::new();
                    insert(&mut c, "iss", iss.value(ISSUER));
                    insert(&mut c, "sub", sub.value("user-1"));
                    insert(&mut c, "aud", aud.value(CLIENT));
                    insert(&mut c, "azp", azp.value(CLIENT));
                    insert(&mut c, "nonce", nonce.value(NONCE));
                    insert(&mut c, "exp", exp.value());
                    insert(&mut c, "iat", iat.value());
                    insert(&mut c, "auth_time", auth_time.value());
                    insert(&mut c, "name", name.value("Ada"));
                    insert(&mut c, "groups", groups.value("staff"));
                    insert(&mut c, "sid", sid.value("idp-session"));
                    serde_json::to_vec(&Value::Object(c)).unwrap()
                }
            };
            let token = sign(&header, &payload);
            let Ok(claims) = validate(
                &token,
                expected(max_age, refresh),
                &keys.jwks,
                &algorithms(),
            ) else {
                return;
            };
            // Accepted: every rule must hold.
            let c: Value = serde_json::from_slice(&payload).unwrap();
            assert!(header.is_allowed(), "{header:?}");
            assert_eq!(c["iss"], ISSUER);
            assert_eq!(claims.issuer, ISSUER);
            let sub = c["sub"].as_str().unwrap();
            assert!(!sub.is_empty());
            assert_eq!(claims.user.sub, sub);
            match &c["aud"] {
                Value::String(a) => assert_eq!(a, CLIENT),
                Value::Array(list) => {
                    assert!(list.iter().any(|a| a == CLIENT));
                    if list.len() > 1 {
                        assert_eq!(c["azp"], CLIENT);
                    }
                }
                other => panic!("aud {other}"),
            }
            if !c["azp"].is_null() {
                assert_eq!(c["azp"], CLIENT);
            }
            let exp = c["exp"].as_f64().unwrap();
            assert!(exp > (NOW - CLOCK_SKEW_SECS) as f64, "expired: {c}");
            let iat = c["iat"].as_f64().unwrap();
            assert!(
                iat <= (NOW + CLOCK_SKEW_SECS) as f64,
                "issued in the future: {c}"
            );
            if !refresh {
                assert_eq!(c["nonce"], NONCE);
            }
            if let Some(max) = max_age {
                let auth_time = c["auth_time"].as_f64().unwrap();
                assert!(auth_time + f64::from(max) + CLOCK_SKEW_SECS as f64 >= NOW as f64);
            }
        }
    }
});
