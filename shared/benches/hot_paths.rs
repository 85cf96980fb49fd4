//! Criterion micro-benchmarks of the pure hot paths (no I/O): the session
//! cookies of `GET /auth/session`, redirect validation, and ID token
//! validation against an already cached JWKS. `cargo bench -p static-login`;
//! targets and results in docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use openidconnect::core::{CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey};
use openidconnect::{JsonWebKeyId, PrivateSigningKey};
use serde_json::json;
use static_login::cookies::{self, KeyRing};
use static_login::oidc::id_token::{self, Expected};
use static_login::oidc::jwk;
use static_login::redirect::{Origin, RedirectPolicy};
use static_login::secret::Secret;
use static_login::session::{Marker, Refresh, Session, Timeouts, Tokens, User};

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://auth.example.com/application/o/site/";
const CLIENT: &str = "client-1";

fn timeouts() -> Timeouts {
    Timeouts {
        idle: Duration::from_secs(1800),
        absolute: Duration::from_secs(28800),
    }
}

/// A token-shaped string of about `len` characters (the cookie does not
/// look inside; only the size matters).
fn token_of(len: usize) -> String {
    URL_SAFE_NO_PAD.encode(vec![0x5a; len * 3 / 4])
}

/// A session as an Authentik login leaves it: JWT access and ID tokens of
/// about a kilobyte each, a refresh token, a user with groups.
fn session() -> Session {
    let sid = "Yk3dQ0m9m8Xh0l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6".to_owned();
    Session {
        marker: Marker {
            sid: sid.clone(),
            created_at: NOW - 600,
            last_seen: NOW - 60,
            expires_at: NOW - 600 + 28800,
        },
        tokens: Tokens {
            sid: sid.clone(),
            user: User {
                sub: "2f1c8e0f7c9a4b7e9d1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d".into(),
                name: Some("Alice Example".into()),
                email: Some("alice@example.com".into()),
                preferred_username: Some("alice".into()),
                groups: Some(vec!["staff".into(), "users".into()]),
            },
            idp_sid: Some("8b5f0f8e4b2a4d6c8e0a2c4e6a8c0e2a".into()),
            access_token: Secret::new(token_of(1100)),
            access_expires_at: NOW + 240,
            id_token: Secret::new(token_of(1000)),
        },
        refresh: Refresh {
            sid,
            refresh_token: Some(Secret::new(token_of(128))),
        },
    }
}

fn session_cookie(c: &mut Criterion) {
    let ring = KeyRing::parse(&URL_SAFE_NO_PAD.encode([7u8; 32])).unwrap();
    let s = session();
    let marker = ring.seal_json(cookies::SESSION, &s.marker);
    let tokens = ring.seal_json(cookies::TOKENS, &s.tokens);
    let refresh = ring.seal_json(cookies::REFRESH, &s.refresh);
    let t = timeouts();

    // What `GET /auth/session` does between the request and the table:
    // open the three cookies, check they belong together and are live, and
    // build the JSON answer.
    let open_and_view = || {
        let marker: Marker = ring
            .open_json(cookies::SESSION, black_box(&marker))
            .unwrap();
        let tokens: Tokens = ring.open_json(cookies::TOKENS, black_box(&tokens)).unwrap();
        let refresh: Refresh = ring
            .open_json(cookies::REFRESH, black_box(&refresh))
            .unwrap();
        assert!(tokens.sid == marker.sid && refresh.sid == marker.sid);
        assert!(marker.is_live(t, NOW));
        let session = Session {
            marker,
            tokens,
            refresh,
        };
        serde_json::to_vec(&session.view(t)).unwrap()
    };

    let mut g = c.benchmark_group("session_cookie");
    g.bench_function("open three cookies + build JSON", |b| b.iter(open_and_view));
    g.bench_function("open three + JSON + reseal marker (idle slide)", |b| {
        b.iter(|| {
            let json = open_and_view();
            let slid = Marker {
                last_seen: NOW,
                ..s.marker.clone()
            };
            (json, ring.seal_json(cookies::SESSION, &slid))
        })
    });
    g.bench_function("open marker", |b| {
        b.iter(|| {
            ring.open_json::<Marker>(cookies::SESSION, black_box(&marker))
                .unwrap()
        })
    });
    g.bench_function("seal marker", |b| {
        b.iter(|| ring.seal_json(cookies::SESSION, black_box(&s.marker)))
    });
    g.bench_function("open tokens", |b| {
        b.iter(|| {
            ring.open_json::<Tokens>(cookies::TOKENS, black_box(&tokens))
                .unwrap()
        })
    });
    g.bench_function("seal whole session (three cookies)", |b| {
        b.iter(|| {
            (
                ring.seal_json(cookies::SESSION, black_box(&s.marker)),
                ring.seal_json(cookies::TOKENS, black_box(&s.tokens)),
                ring.seal_json(cookies::REFRESH, black_box(&s.refresh)),
            )
        })
    });
    g.finish();
}

fn redirect(c: &mut Criterion) {
    let policy = RedirectPolicy::new(
        Origin::parse("https://auth.example.com").unwrap(),
        vec![
            Origin::parse("https://www.example.com").unwrap(),
            Origin::parse("https://app.example.com").unwrap(),
        ],
    );
    let mut g = c.benchmark_group("redirect");
    for (what, target, ok) in [
        ("path", "/welcome?tab=2#top", true),
        (
            "absolute, allowed",
            "https://app.example.com/account/settings?x=1",
            true,
        ),
        ("absolute, other origin", "https://evil.example.net/", false),
        (
            "encoded protocol-relative",
            "/%2F%2Fevil.example.net/",
            false,
        ),
    ] {
        assert_eq!(policy.check(target).is_ok(), ok, "{target}");
        g.bench_function(what, |b| b.iter(|| policy.check(black_box(target)).is_ok()));
    }
    g.finish();
}

fn id_token(c: &mut Criterion) {
    let key = CoreRsaPrivateSigningKey::from_pem(
        include_str!("../src/oidc/id_token/test-key.pem"),
        Some(JsonWebKeyId::new("k1".into())),
    )
    .unwrap();
    // The cached JWKS: the provider's key among others, as providers rotate.
    let other = CoreRsaPrivateSigningKey::from_pem(
        include_str!("../src/oidc/id_token/other-key.pem"),
        Some(JsonWebKeyId::new("k0".into())),
    )
    .unwrap();
    let jwks = jwk::key_set(&[other.as_verification_key(), key.as_verification_key()]).unwrap();
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}).to_string());
    let claims = json!({
        "iss": ISSUER, "aud": CLIENT, "azp": CLIENT, "sub": "user-1", "exp": NOW + 300, "iat": NOW - 5,
        "auth_time": NOW - 30, "nonce": "n-1", "name": "Alice Example", "email": "alice@example.com",
        "email_verified": true, "preferred_username": "alice", "groups": ["staff", "users"],
        "sid": "idp-session", "at_hash": "x4Sj9bT1gXrF0bVd3OZ5fw",
    });
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = key
        .sign(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            input.as_bytes(),
        )
        .unwrap();
    let raw = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
    let expected = Expected {
        issuer: ISSUER,
        client_id: CLIENT,
        nonce: Some("n-1"),
        max_age: None,
        now: NOW,
    };
    let algs = [CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256];
    assert!(id_token::validate(&raw, expected, &jwks, &algs).is_ok());

    let mut g = c.benchmark_group("id_token");
    g.bench_function("validate RS256 with cached JWKS", |b| {
        b.iter(|| id_token::validate(black_box(&raw), expected, &jwks, &algs).unwrap())
    });
    g.finish();
}

criterion_group!(benches, session_cookie, redirect, id_token);
criterion_main!(benches);
