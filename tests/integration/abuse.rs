//! Issue: abuse resistance. Rate limits against DynamoDB Local, audit hygiene.

use integration_tests::*;

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_burst_gets_429_per_ip_and_forwarded_for_does_not_help() {
    let app = App::spawn_with(Options {
        vars: vec![
            ("RATE_LIMIT_SESSION_PER_WINDOW", "20".into()),
            ("RATE_LIMIT_WINDOW_SECS", "2".into()),
        ],
        ..Options::default()
    })
    .await;
    // Start right after a window boundary so the burst fits in one window.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into_window = now.as_millis() % 2000;
    tokio::time::sleep(std::time::Duration::from_millis(
        (2000 - into_window as u64) % 2000 + 20,
    ))
    .await;
    let client = client_from("127.0.0.1");
    let mut limited = None;
    for i in 0..40 {
        let reply = client
            .get(app.url("/auth/session"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .send()
            .await
            .unwrap();
        if reply.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((i, reply.headers().get("retry-after").cloned()));
            break;
        }
        assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    }
    let (at, retry_after) = limited.expect("never limited");
    assert_eq!(at, 20, "limited after exactly the limit");
    let retry_after: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after));
    // Another client IP is unaffected.
    let other = client_from("127.0.0.2")
        .get(app.url("/auth/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    assert!(captured_logs().contains("\"event\":\"rate_limited\""));
    // The window passes and the counter with it.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        client
            .get(app.url("/auth/session"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Counters carry a TTL.
    for item in app.table_items().await {
        assert!(item.contains_key("expires_at"));
    }
}

#[tokio::test]
async fn logs_never_contain_tokens_codes_verifiers_cookies_or_secrets() {
    let app = App::spawn().await;
    let mut s = login(&app, "alice", "alice-password").await;
    let mut secrets: Vec<String> = s.browser.jar.values().cloned().collect();
    secrets.extend(s.idp.jar.values().cloned());
    secrets.push(app.client_secret.clone());
    let refreshed = s.browser.post_as_site(&app, "/auth/refresh", None).await;
    assert_eq!(refreshed.status, StatusCode::OK);
    secrets.extend(s.browser.jar.values().cloned());
    // The provider's tokens themselves, opened from our sealed cookies.
    let tokens: static_login::session::Tokens = app
        .config
        .cookie_keys
        .open_json(
            static_login::cookies::TOKENS,
            &s.browser.jar["__Secure-session-tokens"],
        )
        .unwrap();
    secrets.push(tokens.access_token.expose().to_owned());
    secrets.push(tokens.id_token.expose().to_owned());
    let refresh: static_login::session::Refresh = app
        .config
        .cookie_keys
        .open_json(
            static_login::cookies::REFRESH,
            &s.browser.jar["__Secure-session-refresh"],
        )
        .unwrap();
    secrets.push(refresh.refresh_token.unwrap().expose().to_owned());
    // The authorization code and state travelled in the callback URL.
    let logout = s.browser.post_as_site(&app, "/auth/logout", None).await;
    assert_eq!(logout.status, StatusCode::OK);
    let logs = captured_logs();
    assert!(
        logs.contains("login_succeeded")
            && logs.contains("refreshed")
            && logs.contains("\"event\":\"logout\"")
    );
    for secret in secrets.iter().filter(|s| s.len() >= 16) {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret value reached the logs"
        );
    }
    assert!(!logs.contains("eyJ"), "a JWT reached the logs");
}
