//! Issue: back-channel logout. The provider ends sessions server to server.

use integration_tests::*;
use serde_json::json;

async fn post_logout_token(app: &App, body: &str) -> Reply {
    Browser::new()
        .send(
            http::Method::POST,
            &app.url("/auth/backchannel-logout"),
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(body.to_owned()),
        )
        .await
}

#[tokio::test]
async fn a_real_logout_token_ends_the_session_once() {
    let capture = Capture::start().await;
    let app = App::spawn_with(Options {
        client_metadata: json!({
            "backchannel_logout_uri": capture.url,
            "backchannel_logout_session_required": true,
        }),
        ..Options::default()
    })
    .await;
    let mut s = login(&app, "alice", "alice-password").await;
    assert_eq!(
        s.browser.get(&app.url("/auth/session")).await.status,
        StatusCode::OK
    );
    let tokens = app.tokens_in(&s.browser.jar["__Secure-session-tokens"]);
    let sid = tokens
        .idp_sid
        .expect("the provider's sid is recorded at login");

    // Another user's session must survive.
    let mut bob = login(&app, "bob", "bob-password").await;

    let sent = reqwest::Client::new()
        .post(format!(
            "{}/__test/backchannel-logout?client_id={}&sub=user-alice&sid={sid}",
            app.stack.issuer, app.client_id
        ))
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_success(), "{}", sent.text().await.unwrap());
    let body = capture.body().await;
    assert!(body.starts_with("logout_token="));

    let first = post_logout_token(&app, &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.headers["cache-control"], "no-store");
    assert_eq!(
        s.browser.get(&app.url("/auth/session")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.browser
            .post_as_site(&app, "/auth/refresh", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        bob.browser.get(&app.url("/auth/session")).await.status,
        StatusCode::OK
    );

    // The same token again: replayed jti.
    let replay = post_logout_token(&app, &body).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(captured_logs().contains("replayed_jti"));
}

#[tokio::test]
async fn forged_or_malformed_logout_tokens_are_400_and_end_nothing() {
    let app = App::spawn().await;
    let mut s = login(&app, "alice", "alice-password").await;
    let id_token = app
        .tokens_in(&s.browser.jar["__Secure-session-tokens"])
        .id_token
        .expose()
        .to_owned();
    let forged_alg_none = {
        use base64::Engine;
        let b = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.",
            b(json!({"alg": "none"})),
            b(
                json!({"iss": app.stack.issuer, "aud": app.client_id, "iat": 0, "jti": "x", "sub": "user-alice",
                     "events": {"http://schemas.openid.net/event/backchannel-logout": {}}})
            )
        )
    };
    for body in [
        String::new(),
        "logout_token=".to_owned(),
        "logout_token=garbage".to_owned(),
        format!("logout_token={forged_alg_none}"),
        // A real, validly signed ID token is not a logout token (nonce, no events).
        format!("logout_token={id_token}"),
    ] {
        let reply = post_logout_token(&app, &body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body:.40}: {}",
            reply.body
        );
    }
    assert_eq!(
        s.browser.get(&app.url("/auth/session")).await.status,
        StatusCode::OK
    );
}
