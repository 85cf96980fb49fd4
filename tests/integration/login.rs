//! Issue: foundation. The login flow through HTTP against the real IdP and DynamoDB Local.

use std::time::{Duration, Instant};

use integration_tests::*;

fn assert_no_token(text: &str) {
    // Every token the IdP issues here is a JWT or an opaque 43-char value;
    // JWTs start with `eyJ`. Our sealed cookies are not JWTs.
    assert!(!text.contains("eyJ"), "a JWT leaked: {text}");
}

#[tokio::test]
async fn whole_login_through_http_shows_the_user_and_no_token() {
    let app = App::spawn().await;
    let mut session = login(&app, "alice", "alice-password").await;
    assert_eq!(
        session.callback.status,
        StatusCode::FOUND,
        "{}",
        session.callback.body
    );
    assert_eq!(session.callback.location().unwrap(), app.url("/welcome"));
    assert_eq!(session.callback.headers["referrer-policy"], "no-referrer");
    assert_eq!(session.callback.headers["cache-control"], "no-store");
    for cookie in session.callback.set_cookies() {
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("Secure"),
            "{cookie}"
        );
    }
    for (name, value) in &session.browser.jar {
        assert!(
            name.starts_with("__Host-") || name.starts_with("__Secure-"),
            "{name}"
        );
        assert_no_token(value);
    }
    // What is sent to every site path stays small.
    let site_wide: usize = session
        .callback
        .set_cookies()
        .iter()
        .filter(|c| c.contains("Path=/;") || c.ends_with("Path=/"))
        .map(|c| c.split(';').next().unwrap().len())
        .sum();
    assert!(site_wide < 1024, "site-wide cookies are {site_wide} bytes");

    let me = session.browser.get(&app.url("/auth/session")).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_no_token(&me.body);
    let json = me.json();
    assert_eq!(json["authenticated"], true);
    assert_eq!(json["user"]["sub"], "user-alice");
    assert_eq!(json["user"]["email"], "alice@example.com");
    assert_eq!(json["user"]["name"], "Alice Example");
    assert_eq!(json["user"]["preferred_username"], "alice");
    assert!(json["user"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g == "staff"));
    for field in ["expires_at", "idle_expires_at", "session_expires_at"] {
        assert!(json[field].as_u64().unwrap() > 1_700_000_000, "{field}");
    }
    assert_eq!(me.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn no_session_is_401_with_oauth_error() {
    let app = App::spawn().await;
    let reply = Browser::new().get(&app.url("/auth/session")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"], "login_required");
}

#[tokio::test]
async fn the_same_callback_works_once() {
    let app = App::spawn().await;
    let mut browser = Browser::new();
    let mut idp = Browser::new();
    let callback = begin_login(&app, &mut browser, &mut idp, "", "alice").await;
    let mut replay = browser.clone();
    assert_eq!(browser.get(&callback).await.status, StatusCode::FOUND);
    let second = replay.get(&callback).await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST, "{}", second.body);
    assert!(!second
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("__Host-session=") && !c.contains("Max-Age=0")));
}

#[tokio::test]
async fn ten_concurrent_callbacks_make_exactly_one_session() {
    let app = App::spawn().await;
    let mut browser = Browser::new();
    let mut idp = Browser::new();
    let callback = begin_login(&app, &mut browser, &mut idp, "", "alice").await;
    let attempts = (0..10).map(|_| {
        let mut b = browser.clone();
        let url = callback.clone();
        tokio::spawn(async move { b.get(&url).await })
    });
    let mut successes = 0;
    for reply in futures_join(attempts).await {
        match reply.status {
            StatusCode::FOUND => successes += 1,
            StatusCode::BAD_REQUEST => {}
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert_eq!(successes, 1);
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_callback_from_another_browser_makes_no_session() {
    let app = App::spawn().await;
    let mut victim = Browser::new();
    let mut idp = Browser::new();
    let callback = begin_login(&app, &mut victim, &mut idp, "", "alice").await;
    let mut other = Browser::new();
    let reply = other.get(&callback).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "access_denied");
    assert!(other.get(&app.url("/auth/session")).await.status == StatusCode::UNAUTHORIZED);
    // The rightful browser can still finish: the transaction was not burnt.
    assert_eq!(victim.get(&callback).await.status, StatusCode::FOUND);
}

#[tokio::test]
async fn two_tabs_started_together_both_complete() {
    let app = App::spawn().await;
    let mut browser = Browser::new();
    let mut idp = Browser::new();
    let tab1 = browser
        .get(&app.url("/auth/login?return_to=%2Fone"))
        .await
        .location()
        .unwrap();
    let tab2 = browser
        .get(&app.url("/auth/login?return_to=%2Ftwo"))
        .await
        .location()
        .unwrap();
    let cb1 = sign_in_at_idp(&mut idp, &tab1, "alice", "alice-password")
        .await
        .unwrap();
    let cb2 = sign_in_at_idp(&mut idp, &tab2, "alice", "alice-password")
        .await
        .unwrap();
    let r2 = browser.get(&cb2).await;
    assert_eq!(r2.status, StatusCode::FOUND, "{}", r2.body);
    assert_eq!(r2.location().unwrap(), app.url("/two"));
    let r1 = browser.get(&cb1).await;
    assert_eq!(r1.status, StatusCode::FOUND, "{}", r1.body);
    assert_eq!(r1.location().unwrap(), app.url("/one"));
}

#[tokio::test]
async fn bad_session_cookies_get_401_and_are_cleared() {
    let app = App::spawn().await;
    let session = login(&app, "alice", "alice-password").await;
    let good = session.browser.jar["__Host-session"].clone();
    // One character changed (to 'B' when it already was an 'A').
    let other = if good.as_bytes()[20] == b'A' {
        'B'
    } else {
        'A'
    };
    let cases: Vec<(&str, String)> = vec![
        ("tampered", format!("{}{other}{}", &good[..20], &good[21..])),
        ("truncated", good[..good.len() - 5].to_owned()),
        ("garbage", "not-a-sealed-value".to_owned()),
        ("empty", String::new()),
        (
            "wrong_name",
            session.browser.jar["__Secure-session-refresh"].clone(),
        ),
    ];
    for (what, value) in cases {
        let mut b = session.browser.clone();
        b.jar.insert("__Host-session".into(), value);
        let reply = b.get(&app.url("/auth/session")).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            reply.body
        );
        assert!(reply.clears("__Host-session"), "{what}: not cleared");
        assert!(
            reply.clears("__Secure-session-tokens"),
            "{what}: tokens not cleared"
        );
    }
}

#[tokio::test]
async fn provider_error_is_a_clean_4xx() {
    let app = App::spawn().await;
    let mut browser = Browser::new();
    let start = browser
        .get(&app.url("/auth/login"))
        .await
        .location()
        .unwrap();
    let state = url::Url::parse(&start)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let reply = browser
        .get(&app.url(&format!("/auth/callback?error=access_denied&state={state}")))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "access_denied");
}

#[tokio::test]
async fn authorization_request_is_pkce_s256_with_state_and_nonce() {
    let app = App::spawn().await;
    let location = Browser::new()
        .get(&app.url("/auth/login"))
        .await
        .location()
        .unwrap();
    let url = url::Url::parse(&location).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["response_type"], "code");
    assert!(q["state"].len() >= 22 && q["nonce"].len() >= 22 && q["code_challenge"].len() == 43);
    assert!(q["scope"].contains("offline_access"));
}

#[tokio::test]
async fn unsafe_return_to_is_refused() {
    let app = App::spawn().await;
    for bad in [
        "//evil.test",
        "https://evil.test/",
        "/%2F%2Fevil.test",
        "javascript:alert(1)",
    ] {
        let encoded: String = form_urlencoded::byte_serialize(bad.as_bytes()).collect();
        let reply = Browser::new()
            .get(&app.url(&format!("/auth/login?return_to={encoded}")))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply.location().is_none());
    }
}

#[tokio::test]
async fn duplicate_parameters_and_cookies_are_refused() {
    let app = App::spawn().await;
    let reply = Browser::new()
        .get(&app.url("/auth/login?return_to=%2Fa&return_to=%2Fb"))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let mut b = Browser::new();
    let reply = b
        .send(
            http::Method::GET,
            &app.url("/auth/session"),
            &[("cookie", "__Host-session=a; __Host-session=b")],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let huge = "x".repeat(9000);
    let reply = b
        .send(
            http::Method::GET,
            &app.url("/auth/session"),
            &[("x-big", &huge)],
            None,
        )
        .await;
    assert!(reply.status.is_client_error(), "{}", reply.status);
    // The gateway keeps serving.
    assert_eq!(
        Browser::new().get(&app.url("/auth/session")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn dead_provider_is_a_clean_502_within_seconds() {
    let dead = format!("http://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let app = App::spawn_with(Options {
        issuer: Some(dead),
        ..Options::default()
    })
    .await;
    let started = Instant::now();
    let reply = Browser::new().get(&app.url("/auth/login")).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    assert_eq!(reply.json()["error"], "server_error");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(app.table_items().await.is_empty(), "nothing half-written");
}

#[tokio::test]
async fn dead_dynamodb_is_a_clean_503_within_seconds() {
    let dead = format!("http://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let app = App::spawn_with(Options {
        dynamodb: Some(dead),
        ..Options::default()
    })
    .await;
    let started = Instant::now();
    let reply = Browser::new().get(&app.url("/auth/login")).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.json()["error"], "temporarily_unavailable");
    assert!(
        reply.set_cookies().is_empty(),
        "no pre-auth cookie for a login that was not stored"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}
