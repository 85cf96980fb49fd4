//! Issue: protected routes. CloudFront signed cookies enforced by the local
//! gateway exactly as CloudFront would, group policy, max_age.

use integration_tests::*;

const KEY: &str = include_str!("../../shared/src/oidc/id_token/test-key.pem");

async fn protected_app(ttl: &str) -> App {
    App::spawn_with(Options {
        static_dir: Some("demo"),
        vars: vec![
            ("PROTECTED_PATHS", "/members.html".into()),
            ("CLOUDFRONT_KEY_PAIR_ID", "KTESTKEYPAIR".into()),
            ("CLOUDFRONT_PRIVATE_KEY", KEY.into()),
            ("CLOUDFRONT_COOKIE_TTL_SECS", ttl.into()),
        ],
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn a_protected_page_needs_signed_cookies() {
    let app = protected_app("600").await;
    let refused = Browser::new().get(&app.url("/members.html")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("Login required"));
    assert_eq!(
        Browser::new().get(&app.url("/index.html")).await.status,
        StatusCode::OK,
        "public pages stay public"
    );

    let mut s = login(&app, "alice", "alice-password").await;
    let signed: Vec<String> = s
        .callback
        .set_cookies()
        .into_iter()
        .filter(|c| c.starts_with("CloudFront-"))
        .collect();
    assert_eq!(signed.len(), 3, "{signed:?}");
    for c in &signed {
        assert!(
            c.contains("Path=/members.html") && c.contains("Secure") && c.contains("HttpOnly"),
            "{c}"
        );
    }
    let page = s.browser.get(&app.url("/members.html")).await;
    assert_eq!(page.status, StatusCode::OK);

    // A tampered policy is refused.
    let mut forged = s.browser.clone();
    let policy = forged.jar["CloudFront-Policy"].clone();
    forged.jar.insert(
        "CloudFront-Policy".into(),
        format!("{}A", &policy[..policy.len() - 1]),
    );
    assert_eq!(
        forged.get(&app.url("/members.html")).await.status,
        StatusCode::FORBIDDEN
    );

    let out = s.browser.post_as_site(&app, "/auth/logout", None).await;
    assert!(out.clears("CloudFront-Policy") && out.clears("CloudFront-Signature"));
    assert_eq!(
        s.browser.get(&app.url("/members.html")).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn signed_cookies_expire_and_refresh_renews_them() {
    let app = protected_app("2").await;
    let mut s = login(&app, "alice", "alice-password").await;
    assert_eq!(
        s.browser.get(&app.url("/members.html")).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        s.browser.get(&app.url("/members.html")).await.status,
        StatusCode::FORBIDDEN
    );
    let refreshed = s.browser.post_as_site(&app, "/auth/refresh", None).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    assert_eq!(
        s.browser.get(&app.url("/members.html")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn users_outside_allowed_groups_get_no_session() {
    let app = App::spawn_with(Options {
        vars: vec![("ALLOWED_GROUPS", "staff".into())],
        ..Options::default()
    })
    .await;
    let alice = login(&app, "alice", "alice-password").await;
    assert_eq!(alice.callback.status, StatusCode::FOUND, "staff may enter");

    let mut browser = Browser::new();
    let mut idp = Browser::new();
    let start = browser
        .get(&app.url("/auth/login"))
        .await
        .location()
        .unwrap();
    let callback = sign_in_at_idp(&mut idp, &start, "bob", "bob-password")
        .await
        .unwrap();
    let refused = browser
        .send(
            http::Method::GET,
            &callback,
            &[("accept", "text/html")],
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(refused.body.contains("not allowed"));
    assert!(refused
        .set_cookies()
        .iter()
        .all(|c| !c.starts_with("__Host-session=")));
    assert_eq!(
        browser.get(&app.url("/auth/session")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(captured_logs().contains("group_not_allowed"));
}

#[tokio::test]
async fn max_age_is_always_sent_and_auth_time_checked() {
    let app = App::spawn_with(Options {
        vars: vec![("MAX_AGE", "300".into())],
        ..Options::default()
    })
    .await;
    let start = Browser::new()
        .get(&app.url("/auth/login"))
        .await
        .location()
        .unwrap();
    assert!(start.contains("max_age=300"), "{start}");
    // The provider honours max_age and sends auth_time; the login completes.
    let s = login(&app, "alice", "alice-password").await;
    assert_eq!(s.callback.status, StatusCode::FOUND, "{}", s.callback.body);
}
