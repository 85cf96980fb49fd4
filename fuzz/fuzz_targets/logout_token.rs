//! Back-channel logout token validation: arbitrary strings never validate;
//! signed tokens with fuzzed claims validate only with our issuer, us in the
//! audience, a recent `iat`, the back-channel event, no nonce, a `jti` and a
//! `sub` or `sid`.
#![no_main]

mod common;

use arbitrary::Arbitrary;
use common::*;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use static_login::oidc::id_token::CLOCK_SKEW_SECS;
use static_login::oidc::logout_token::{validate, BACKCHANNEL_EVENT, MAX_AGE_SECS};

#[derive(Arbitrary, Debug)]
enum Events {
    Right,
    Missing,
    NotAnObject,
    OtherEvent,
    EventNotAnObject,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Unsigned(String),
    Signed {
        header: Header,
        iss: Text,
        aud: Text,
        iat: Time,
        exp: Time,
        jti: Text,
        sub: Text,
        sid: Text,
        nonce: Text,
        events: Events,
    },
    SignedRaw {
        header: Header,
        payload: Vec<u8>,
    },
}

fuzz_target!(|input: Input| {
    let keys = keys();
    let check = |raw: &str| validate(raw, ISSUER, CLIENT, NOW, &keys.jwks, &algorithms());
    let (header, payload) = match input {
        Input::Unsigned(raw) => {
            assert!(
                check(&raw).is_err(),
                "a forged logout token validated: {raw:?}"
            );
            return;
        }
        Input::SignedRaw { header, payload } => (header, payload),
        Input::Signed {
            header,
            iss,
            aud,
            iat,
            exp,
            jti,
            sub,
            sid,
            nonce,
            events,
        } => {
            let mut c = Map::new();
            insert(&mut c, "iss", iss.value(ISSUER));
            insert(&mut c, "aud", aud.value(CLIENT));
            insert(&mut c, "iat", iat.value());
            insert(&mut c, "exp", exp.value());
            insert(&mut c, "jti", jti.value("jti-1"));
            insert(&mut c, "sub", sub.value("user-1"));
            insert(&mut c, "sid", sid.value("idp-session"));
            match nonce {
                Text::Missing => {}
                other => insert(&mut c, "nonce", other.value("n-1")),
            }
            let events = match events {
                Events::Right => Some(json!({ BACKCHANNEL_EVENT: {} })),
                Events::Missing => None,
                Events::NotAnObject => Some(json!("logout")),
                Events::OtherEvent => Some(json!({"http://example.com/other": {}})),
                Events::EventNotAnObject => Some(json!({ BACKCHANNEL_EVENT: true })),
            };
            insert(&mut c, "events", events);
            (header, serde_json::to_vec(&Value::Object(c)).unwrap())
        }
    };
    let token = sign(&header, &payload);
    let Ok(claims) = check(&token) else {
        return;
    };
    let c: Value = serde_json::from_slice(&payload).unwrap();
    assert!(header.is_allowed(), "{header:?}");
    assert_eq!(c["iss"], ISSUER);
    match &c["aud"] {
        Value::String(a) => assert_eq!(a, CLIENT),
        Value::Array(list) => assert!(list.iter().any(|a| a == CLIENT)),
        other => panic!("aud {other}"),
    }
    let iat = c["iat"].as_u64().unwrap();
    assert!(
        iat <= NOW + CLOCK_SKEW_SECS && iat + MAX_AGE_SECS >= NOW,
        "{c}"
    );
    assert!(c["events"][BACKCHANNEL_EVENT].is_object());
    assert!(c.get("nonce").is_none());
    assert!(!claims.jti.is_empty());
    assert!(claims.sub.is_some() || claims.sid.is_some());
});
