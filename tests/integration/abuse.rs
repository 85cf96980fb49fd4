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
    let tokens = app.tokens_in(&s.browser.jar["__Secure-session-tokens"]);
    secrets.push(tokens.access_token.expose().to_owned());
    secrets.push(tokens.id_token.expose().to_owned());
    secrets.push(app.refresh_token_in(&s.browser.jar["__Secure-session-refresh"]));
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

#[tokio::test]
async fn each_input_limit_is_a_clean_4xx_and_the_gateway_keeps_serving() {
    let app = App::spawn().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let big_cookie = format!("__Host-session={}", "a".repeat(9000));
    let many_cookies = (0..400)
        .map(|i| format!("c{i}=vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"))
        .collect::<Vec<_>>()
        .join("; ");
    let long_query = format!("/auth/login?return_to=%2F{}", "a".repeat(5000));
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "duplicate query parameter",
            client.get(app.url("/auth/login?prompt=login&prompt=none")),
        ),
        (
            "duplicate session cookie",
            client.get(app.url("/auth/session")).header(
                "cookie",
                "__Secure-session-refresh=a; __Secure-session-refresh=b",
            ),
        ),
        (
            "oversized cookie",
            client
                .get(app.url("/auth/session"))
                .header("cookie", big_cookie),
        ),
        (
            "oversized headers in total",
            client
                .get(app.url("/auth/session"))
                .header("cookie", many_cookies),
        ),
        (
            "invalid UTF-8 in the query",
            client.get(app.url("/auth/login?return_to=%FF%FE")),
        ),
        (
            "invalid UTF-8 in a cookie",
            client.get(app.url("/auth/session")).header(
                "cookie",
                http::HeaderValue::from_bytes(b"__Host-session=\xff\xfe").unwrap(),
            ),
        ),
        ("absurdly long query", client.get(app.url(&long_query))),
        (
            "absurdly long state",
            client.get(app.url(&format!("/auth/callback?state={}&code=x", "s".repeat(3000)))),
        ),
        (
            "oversized body",
            client
                .post(app.url("/auth/session"))
                .header("origin", app.base.as_str())
                .header("x-requested-with", "x")
                .body("x".repeat(20_000)),
        ),
        ("unknown route", client.get(app.url("/auth/nope"))),
        ("wrong method", client.delete(app.url("/auth/session"))),
        ("bad max_age", client.get(app.url("/auth/login?max_age=-1"))),
        ("bad prompt", client.get(app.url("/auth/login?prompt=evil"))),
    ];
    for (what, request) in cases {
        let reply = request.send().await.unwrap();
        let status = reply.status();
        assert!(status.is_client_error(), "{what}: {status}");
        let body = reply.text().await.unwrap();
        assert!(
            body.contains("\"error\""),
            "{what}: not an OAuth-style error: {body}"
        );
        // The gateway still serves the next request.
        assert_eq!(
            client
                .get(app.url("/auth/session"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::UNAUTHORIZED,
            "after {what}"
        );
    }
    assert!(
        app.table_items()
            .await
            .iter()
            .all(|i| i["pk"].as_s().unwrap().starts_with("rate#")),
        "nothing but counters was written"
    );
}
