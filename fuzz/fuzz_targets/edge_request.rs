//! Query and cookie parsing (and every other header) through the real edge:
//! an API Gateway v2 event with fuzzed query string, cookies and headers goes
//! to `handlers::route`, as in AWS. No panic, never a 500; a 5xx only from an
//! unavailable provider (here: nothing listens), and every answer carries
//! `Cache-Control: no-store`. Sometimes a valid sealed session rides along,
//! so the paths behind the cookie checks are reached too.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use static_login::config::Config;
use static_login::cookies;
use static_login::secret::Secret;
use static_login::session::{now, Marker, Refresh, Tokens, User};
use static_login::store::MemoryStore;
use static_login::{handlers, AppState};

struct World {
    runtime: tokio::runtime::Runtime,
    state: AppState<MemoryStore>,
    session: Vec<String>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut vars: HashMap<&str, String> = HashMap::from([
            // Nothing listens on port 9: provider calls fail at once.
            ("OIDC_ISSUER", "http://127.0.0.1:9".to_owned()),
            ("OIDC_CLIENT_ID", "client".to_owned()),
            ("OIDC_CLIENT_SECRET", "secret".to_owned()),
            (
                "OIDC_REDIRECT_URI",
                "https://auth.example.com/auth/callback".to_owned(),
            ),
            ("ALLOWED_ORIGINS", "https://www.example.com".to_owned()),
            (
                "POST_LOGOUT_REDIRECT_URI",
                "https://www.example.com/".to_owned(),
            ),
            (
                "COOKIE_KEYS",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned(),
            ),
            ("TABLE_NAME", "t".to_owned()),
        ]);
        // No rate limit: the counters would answer 429 after a few hundred inputs.
        for name in [
            "RATE_LIMIT_LOGIN_PER_WINDOW",
            "RATE_LIMIT_CALLBACK_PER_WINDOW",
            "RATE_LIMIT_SESSION_PER_WINDOW",
            "RATE_LIMIT_EXCHANGE_PER_WINDOW",
            "RATE_LIMIT_REFRESH_PER_WINDOW",
            "RATE_LIMIT_LOGOUT_PER_WINDOW",
            "RATE_LIMIT_BACKCHANNEL_PER_WINDOW",
        ] {
            vars.insert(name, "1000000000".to_owned());
        }
        let config = Config::from_source(&vars).unwrap();
        let ring = config.cookie_keys.clone();
        let state = AppState::new(config, MemoryStore::default()).unwrap();
        let t = now();
        let sid = "fuzz-session".to_owned();
        let marker = Marker {
            sid: sid.clone(),
            created_at: t,
            last_seen: t,
            expires_at: t + 28_800,
        };
        let tokens = Tokens {
            sid: sid.clone(),
            user: User {
                sub: "user-1".into(),
                name: Some("Ada".into()),
                email: None,
                preferred_username: None,
                groups: Some(vec!["staff".into()]),
            },
            idp_sid: None,
            access_token: Secret::new("access"),
            access_expires_at: t + 300,
            id_token: Secret::new("id"),
        };
        let refresh = Refresh {
            sid,
            refresh_token: None,
        };
        let session = vec![
            format!(
                "{}={}",
                cookies::SESSION,
                ring.seal_json(cookies::SESSION, &marker)
            ),
            format!(
                "{}={}",
                cookies::TOKENS,
                ring.seal_json(cookies::TOKENS, &tokens)
            ),
            format!(
                "{}={}",
                cookies::REFRESH,
                ring.seal_json(cookies::REFRESH, &refresh)
            ),
        ];
        World {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            state,
            session,
        }
    })
}

#[derive(Arbitrary, Debug)]
struct Input {
    route: u8,
    post: bool,
    with_session: bool,
    query: String,
    cookies: Vec<String>,
    cookie_header: Option<String>,
    headers: Vec<(String, String)>,
    body: String,
}

const ROUTES: [&str; 6] = [
    "/auth/session",
    "/auth/callback",
    "/auth/refresh",
    "/auth/logout",
    "/auth/nowhere",
    "/auth/session/",
];

fuzz_target!(|input: Input| {
    let world = world();
    let path = ROUTES[usize::from(input.route) % ROUTES.len()];
    let method = if input.post { "POST" } else { "GET" };
    // lambda_http builds the request URI from the Host header and the raw
    // query string and panics (`expect`) when that is not a valid URI, e.g.
    // for a raw `<`, `>`, space or non-ASCII byte in the query: before any
    // of our code runs. API Gateway sets Host itself; queries it could pass
    // on but `http::Uri` refuses are a known lambda_http limitation (see
    // fuzz/README.md), skipped here so the fuzzer explores our code.
    let uri = format!("https://auth.example.com{path}?{}", input.query);
    if http::Uri::try_from(uri).is_err() {
        return;
    }
    let mut headers = serde_json::Map::new();
    for (k, v) in &input.headers {
        let name = k.to_ascii_lowercase();
        if name != "host" {
            headers.insert(name, Value::String(v.clone()));
        }
    }
    if let Some(cookie) = &input.cookie_header {
        headers.insert("cookie".into(), Value::String(cookie.clone()));
    }
    let mut cookie_list = input.cookies.clone();
    if input.with_session {
        cookie_list.extend(world.session.iter().cloned());
    }
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": input.query,
        "cookies": cookie_list,
        "headers": headers,
        "requestContext": {
            "accountId": "fuzz",
            "apiId": "fuzz",
            "domainName": "auth.example.com",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "fuzz",
            },
            "requestId": "fuzz",
            "routeKey": "$default",
            "stage": "$default",
            "time": "",
            "timeEpoch": 0,
        },
        "body": input.body,
        "isBase64Encoded": false,
    });
    // API Gateway never delivers what does not parse as a request.
    let Ok(request) = lambda_http::request::from_str(&event.to_string()) else {
        return;
    };
    let Ok(response) = world
        .runtime
        .block_on(handlers::route(&world.state, request));
    let status = response.status().as_u16();
    assert_ne!(status, 500, "{path} {method}: {:?}", response.body());
    if status >= 500 {
        assert!(matches!(status, 502 | 503), "{path} {method}: {status}");
    }
    assert_eq!(response.headers()["cache-control"], "no-store");
    // A logout with the valid session revoked it: undo, so the next input
    // reaches the paths behind the cookie checks again.
    let _ = world.runtime.block_on(static_login::store::Store::delete(
        &world.state.store,
        "revoked#fuzz-session",
    ));
});
