//! Issue: sites on another origin. One-time exchange codes and CORS.

use integration_tests::*;
use serde_json::json;

const SITE: &str = "http://localhost:5999";

async fn exchange_app(vars: Vec<(&'static str, String)>) -> App {
    let mut all = vec![("DEFAULT_RETURN_TO", format!("{SITE}/"))];
    all.extend(vars);
    App::spawn_with(Options {
        handoff: "exchange",
        vars: all,
        ..Options::default()
    })
    .await
}

async fn code_from_login(app: &App) -> String {
    let s = login(app, "alice", "alice-password").await;
    assert_eq!(s.callback.status, StatusCode::FOUND, "{}", s.callback.body);
    let location = url::Url::parse(&s.callback.location().unwrap()).unwrap();
    assert!(
        location.query().is_none_or(|q| !q.contains("code")),
        "code in the query"
    );
    assert!(
        s.callback
            .set_cookies()
            .iter()
            .all(|c| !c.starts_with("__Host-session=")),
        "no session cookie before redemption"
    );
    location
        .fragment()
        .unwrap()
        .strip_prefix("code=")
        .unwrap()
        .to_owned()
}

async fn redeem(app: &App, code: &str, origin: &str) -> Reply {
    Browser::new()
        .send(
            http::Method::POST,
            &app.url("/auth/session"),
            &[
                ("origin", origin),
                ("x-requested-with", "XMLHttpRequest"),
                ("content-type", "application/json"),
            ],
            Some(json!({ "code": code }).to_string()),
        )
        .await
}

#[tokio::test]
async fn the_code_arrives_in_the_fragment_and_redeems_once() {
    let app = exchange_app(vec![]).await;
    let mut browser = Browser::new();
    let mut idp = Browser::new();
    let callback = begin_login(
        &app,
        &mut browser,
        &mut idp,
        "?return_to=http%3A%2F%2Flocalhost%3A5999%2Fwelcome",
        "alice",
    )
    .await;
    let callback = browser.get(&callback).await;
    let mut s = LoggedIn {
        browser,
        idp,
        callback,
    };
    let location = s.callback.location().unwrap();
    assert!(
        location.starts_with(&format!("{SITE}/welcome#code=")),
        "{location}"
    );
    let code = location.split("#code=").nth(1).unwrap().to_owned();
    let reply = s
        .browser
        .send(
            http::Method::POST,
            &app.url("/auth/session"),
            &[("origin", SITE), ("x-requested-with", "XMLHttpRequest")],
            Some(json!({ "code": code }).to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["user"]["sub"], "user-alice");
    assert!(!reply.body.contains("eyJ"));
    assert_eq!(reply.headers["access-control-allow-origin"], SITE);
    assert_eq!(reply.headers["access-control-allow-credentials"], "true");
    assert!(reply
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("__Host-session=")
            && c.contains("SameSite=None")
            && c.contains("Secure")));
    // The cookies now carry the session.
    assert_eq!(
        s.browser.get(&app.url("/auth/session")).await.status,
        StatusCode::OK
    );

    let again = redeem(&app, &code, SITE).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.json()["error"], "invalid_grant");
    assert!(captured_logs().contains("exchange_replayed"));
    // The table holds a hash of the code, never the code.
    for item in app.table_items().await {
        let pk = item["pk"].as_s().unwrap();
        assert!(!pk.contains(&code));
    }
}

#[tokio::test]
async fn ten_concurrent_redemptions_one_wins() {
    let app = std::sync::Arc::new(exchange_app(vec![]).await);
    let code = code_from_login(&app).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let app = app.clone();
            let code = code.clone();
            tokio::spawn(async move { redeem(&app, &code, SITE).await.status })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => wins += 1,
            StatusCode::BAD_REQUEST => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn an_expired_code_fails() {
    let app = exchange_app(vec![("EXCHANGE_CODE_TTL_SECS", "1".into())]).await;
    let code = code_from_login(&app).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        redeem(&app, &code, SITE).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_code_redeemed_from_a_foreign_origin_fails() {
    let app = exchange_app(vec![]).await;
    let code = code_from_login(&app).await;
    let reply = redeem(&app, &code, "https://evil.test").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.headers.get("access-control-allow-origin").is_none());
    // Refused before the code was touched: the rightful site can still use it.
    assert_eq!(redeem(&app, &code, SITE).await.status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_codes_are_400_never_5xx() {
    let app = exchange_app(vec![]).await;
    let long = "a".repeat(5000);
    for code in [
        "",
        "short",
        "ÿÿÿÿ",
        "a b",
        long.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let reply = redeem(&app, code, SITE).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{code:?}: {}",
            reply.body
        );
    }
    let reply = Browser::new()
        .send(
            http::Method::POST,
            &app.url("/auth/session"),
            &[("origin", SITE), ("x-requested-with", "XMLHttpRequest")],
            Some("not json".into()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cors_answers_only_allowlisted_origins() {
    let app = exchange_app(vec![]).await;
    for path in ["/auth/session", "/auth/refresh", "/auth/logout"] {
        let ok = Browser::new()
            .send(
                http::Method::OPTIONS,
                &app.url(path),
                &[
                    ("origin", SITE),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "x-requested-with"),
                ],
                None,
            )
            .await;
        assert_eq!(ok.status, StatusCode::NO_CONTENT);
        assert_eq!(ok.headers["access-control-allow-origin"], SITE);
        assert_eq!(ok.headers["access-control-allow-credentials"], "true");
        assert!(ok.headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("X-Requested-With"));
        assert!(ok.headers["vary"].to_str().unwrap().contains("Origin"));
        for foreign in [
            "https://evil.test",
            "null",
            "http://localhost:5999.evil.test",
            "http://localhost:59990",
        ] {
            let no = Browser::new()
                .send(
                    http::Method::OPTIONS,
                    &app.url(path),
                    &[
                        ("origin", foreign),
                        ("access-control-request-method", "POST"),
                    ],
                    None,
                )
                .await;
            assert!(
                no.headers.get("access-control-allow-origin").is_none(),
                "{foreign}"
            );
            let get = Browser::new()
                .send(
                    http::Method::GET,
                    &app.url(path),
                    &[("origin", foreign)],
                    None,
                )
                .await;
            assert!(
                get.headers.get("access-control-allow-origin").is_none(),
                "{foreign}"
            );
        }
    }
}

/// Without third-party cookies: the site keeps a sealed session handle in
/// memory and sends it as a bearer credential; no provider token is readable.
#[tokio::test]
async fn a_bearer_handle_carries_the_session_without_cookies() {
    let app = exchange_app(vec![]).await;
    let code = code_from_login(&app).await;
    let mut site = Browser::new();
    let headers = [("origin", SITE), ("x-requested-with", "XMLHttpRequest")];
    let redeemed = site
        .send(
            http::Method::POST,
            &app.url("/auth/session"),
            &headers,
            Some(json!({ "code": code, "transport": "bearer" }).to_string()),
        )
        .await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.body);
    assert!(
        redeemed.set_cookies().is_empty(),
        "bearer transport sets no cookies"
    );
    let handle = redeemed.json()["session_handle"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !handle.contains("eyJ") && !redeemed.body.contains("eyJ"),
        "a provider token is readable"
    );

    let auth = format!("Bearer {handle}");

    let me = site
        .send(
            http::Method::GET,
            &app.url("/auth/session"),
            &with_handle(&auth),
            None,
        )
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.json()["user"]["sub"], "user-alice");
    assert!(
        me.json()["session_handle"].is_string(),
        "foreground reads return a slid handle"
    );

    let refreshed = site
        .send(
            http::Method::POST,
            &app.url("/auth/refresh"),
            &with_handle(&auth),
            None,
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let new_handle = format!(
        "Bearer {}",
        refreshed.json()["session_handle"].as_str().unwrap()
    );
    assert_ne!(new_handle, auth);

    let out = site
        .send(
            http::Method::POST,
            &app.url("/auth/logout"),
            &with_handle(&new_handle),
            None,
        )
        .await;
    assert_eq!(out.status, StatusCode::OK);
    for h in [&auth, &new_handle] {
        let after = Browser::new()
            .send(
                http::Method::GET,
                &app.url("/auth/session"),
                &with_handle(h),
                None,
            )
            .await;
        assert_eq!(
            after.status,
            StatusCode::UNAUTHORIZED,
            "a copied handle survived logout"
        );
    }
    let garbage = Browser::new()
        .send(
            http::Method::GET,
            &app.url("/auth/session"),
            &with_handle("Bearer nope"),
            None,
        )
        .await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bearer_handles_are_ignored_in_cookie_mode() {
    let app = App::spawn().await;
    let reply = Browser::new()
        .send(
            http::Method::GET,
            &app.url("/auth/session"),
            &[("authorization", "Bearer anything")],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

fn with_handle(h: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("origin", SITE),
        ("x-requested-with", "XMLHttpRequest"),
        ("authorization", h),
    ]
}
