//! Issue: refresh and logout. Sessions that last, and end for real.

use integration_tests::*;
use serde_json::json;

async fn refresh(browser: &mut Browser, app: &App) -> Reply {
    browser.post_as_site(app, "/auth/refresh", None).await
}

#[tokio::test]
async fn refresh_with_rotation_replaces_the_old_token() {
    let app = App::spawn_with(Options {
        client_metadata: json!({"test_refresh_rotation": "always"}),
        ..Options::default()
    })
    .await;
    let mut s = login(&app, "alice", "alice-password").await;
    let before = s.browser.jar["__Secure-session-refresh"].clone();
    let stale = s.browser.clone();
    let reply = refresh(&mut s.browser, &app).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["user"]["sub"], "user-alice");
    assert!(!reply.body.contains("eyJ"));
    assert_ne!(s.browser.jar["__Secure-session-refresh"], before);
    assert_eq!(app.idp_stats().await["refresh_token_grants"], 1);
    // The new one keeps working.
    assert_eq!(refresh(&mut s.browser, &app).await.status, StatusCode::OK);
    assert_eq!(app.idp_stats().await["refresh_token_grants"], 2);
    // The old refresh token is dead at the provider (checked last: the
    // provider's reuse detection then revokes the whole chain, as it should).
    let direct = use_refresh_token_directly(&app, &app.refresh_token_in(&before)).await;
    assert_eq!(direct["error"], "invalid_grant");
    drop(stale);
}

/// A refresh grant straight at the provider, as our client would send it.
async fn use_refresh_token_directly(app: &App, token: &str) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{}/token", app.stack.issuer))
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn refresh_without_rotation_keeps_the_old_token() {
    let app = App::spawn_with(Options {
        client_metadata: json!({"test_refresh_rotation": "never"}),
        ..Options::default()
    })
    .await;
    let mut s = login(&app, "alice", "alice-password").await;
    let first = refresh(&mut s.browser, &app).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let token = app.refresh_token_in(&s.browser.jar["__Secure-session-refresh"]);
    // The provider sent no new refresh token: the one we keep still works.
    let direct = use_refresh_token_directly(&app, &token).await;
    assert!(direct["access_token"].is_string(), "{direct}");
    assert!(direct.get("refresh_token").is_none());
}

#[tokio::test]
async fn eight_concurrent_refreshes_make_one_provider_call() {
    let app = App::spawn_with(Options {
        client_metadata: json!({"test_refresh_rotation": "always"}),
        ..Options::default()
    })
    .await;
    let s = login(&app, "alice", "alice-password").await;
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let mut b = s.browser.clone();
            let app = app.clone();
            tokio::spawn(async move { refresh(&mut b, &app).await })
        })
        .collect();
    for t in tasks {
        let reply = t.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    assert_eq!(app.idp_stats().await["refresh_token_grants"], 1);
}

#[tokio::test]
async fn invalid_grant_ends_the_session_cleanly() {
    let app = App::spawn_with(Options {
        client_metadata: json!({"test_refresh_rotation": "always"}),
        ..Options::default()
    })
    .await;
    let mut s = login(&app, "alice", "alice-password").await;
    // Revoke at the provider behind our back.
    let refresh_token_dead = reqwest::Client::new()
        .post(format!(
            "{}/__test/revoke-grants?client_id={}",
            app.stack.issuer, app.client_id
        ))
        .send()
        .await
        .unwrap();
    assert!(refresh_token_dead.status().is_success());
    let reply = refresh(&mut s.browser, &app).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert!(reply.clears("__Host-session"));
    assert_eq!(
        app.idp_stats().await["refresh_token_grants"],
        0,
        "no retry loop"
    );
    assert_eq!(
        s.browser.get(&app.url("/auth/session")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_different_sub_after_refresh_ends_the_session() {
    let app = App::spawn_with(Options {
        client_metadata: json!({"test_refreshed_sub": "user-mallory"}),
        ..Options::default()
    })
    .await;
    let mut s = login(&app, "alice", "alice-password").await;
    let copy = s.browser.clone();
    let reply = refresh(&mut s.browser, &app).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    // The old cookies replayed elsewhere are dead too.
    assert_eq!(
        copy.clone().get(&app.url("/auth/session")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn idle_timeout_ends_the_session_and_background_polls_do_not_slide_it() {
    let app = App::spawn_with(Options {
        vars: vec![
            ("SESSION_IDLE_TIMEOUT_SECS", "3".into()),
            ("SESSION_ABSOLUTE_TIMEOUT_SECS", "60".into()),
        ],
        ..Options::default()
    })
    .await;
    let mut s = login(&app, "alice", "alice-password").await;
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        let _ = s.browser.get(&app.url("/auth/session?background=1")).await;
    }
    let reply = s.browser.get(&app.url("/auth/session")).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "background polls kept it alive: {}",
        reply.body
    );

    // Foreground reads do slide it.
    let mut s = login(&app, "alice", "alice-password").await;
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        assert_eq!(
            s.browser.get(&app.url("/auth/session")).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn absolute_timeout_ends_the_session_even_when_active() {
    let app = App::spawn_with(Options {
        vars: vec![
            ("SESSION_IDLE_TIMEOUT_SECS", "2".into()),
            ("SESSION_ABSOLUTE_TIMEOUT_SECS", "3".into()),
        ],
        ..Options::default()
    })
    .await;
    let mut s = login(&app, "alice", "alice-password").await;
    let json = s.browser.get(&app.url("/auth/session")).await.json();
    assert!(json["idle_expires_at"].as_u64() <= json["session_expires_at"].as_u64());
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let _ = s.browser.get(&app.url("/auth/session")).await;
        let _ = refresh(&mut s.browser, &app).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        s.browser.get(&app.url("/auth/session")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&mut s.browser, &app).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logout_revokes_returns_the_end_session_url_and_kills_copied_cookies() {
    let app = App::spawn().await;
    let mut s = login(&app, "alice", "alice-password").await;
    let copied = s.browser.clone();
    let reply = s.browser.post_as_site(&app, "/auth/logout", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.headers["clear-site-data"], "\"cookies\"");
    for name in [
        "__Host-session",
        "__Secure-session-tokens",
        "__Secure-session-refresh",
    ] {
        assert!(reply.clears(name), "{name} not cleared");
    }
    let logout_url = url::Url::parse(reply.json()["logout_url"].as_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = logout_url.query_pairs().into_owned().collect();
    assert!(logout_url.as_str().starts_with(&app.stack.issuer));
    assert_eq!(q["client_id"], app.client_id);
    assert_eq!(q["post_logout_redirect_uri"], app.url("/"));
    assert!(q.contains_key("id_token_hint"));
    assert_eq!(app.idp_stats().await["revocations"], 1);

    let mut replay = copied.clone();
    assert_eq!(
        replay.get(&app.url("/auth/session")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&mut copied.clone(), &app).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.idp_stats().await["refresh_token_grants"], 0);

    // The end-session URL ends the provider's session and returns to the site.
    let back = s.idp.get(logout_url.as_str()).await;
    assert!(
        back.status.is_redirection() || back.status.is_success(),
        "{}",
        back.status
    );
}

#[tokio::test]
async fn logout_prefers_a_303_for_html() {
    let app = App::spawn().await;
    let mut s = login(&app, "alice", "alice-password").await;
    let origin = app.base.clone();
    let reply = s
        .browser
        .send(
            http::Method::POST,
            &app.url("/auth/logout"),
            &[
                ("origin", &origin),
                ("x-requested-with", "XMLHttpRequest"),
                ("accept", "text/html"),
            ],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply.location().unwrap().starts_with(&app.stack.issuer));
}

#[tokio::test]
async fn cross_site_posts_are_refused_and_change_nothing() {
    let app = App::spawn().await;
    let mut s = login(&app, "alice", "alice-password").await;
    for headers in [
        vec![
            ("origin", "https://evil.test"),
            ("x-requested-with", "XMLHttpRequest"),
        ],
        vec![("x-requested-with", "XMLHttpRequest")],
        vec![("origin", app.base.as_str())],
        vec![("origin", "null"), ("x-requested-with", "XMLHttpRequest")],
    ] {
        for path in ["/auth/logout", "/auth/refresh", "/auth/session"] {
            let reply = s
                .browser
                .clone()
                .send(
                    http::Method::POST,
                    &app.url(path),
                    &headers,
                    Some("{}".into()),
                )
                .await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path} {headers:?}");
        }
    }
    assert_eq!(
        s.browser.get(&app.url("/auth/session")).await.status,
        StatusCode::OK
    );
    assert_eq!(app.idp_stats().await["revocations"], 0);
}

#[tokio::test]
async fn an_allowlisted_referer_stands_in_for_a_missing_origin() {
    let app = App::spawn().await;
    let mut s = login(&app, "alice", "alice-password").await;
    let referer = app.url("/account");
    let reply = s
        .browser
        .send(
            http::Method::POST,
            &app.url("/auth/refresh"),
            &[
                ("referer", referer.as_str()),
                ("x-requested-with", "XMLHttpRequest"),
            ],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let foreign = s
        .browser
        .send(
            http::Method::POST,
            &app.url("/auth/refresh"),
            &[
                ("referer", "https://evil.test/page"),
                ("x-requested-with", "XMLHttpRequest"),
            ],
            None,
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
}
