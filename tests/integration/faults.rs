//! Issue 9: failing dependencies. DynamoDB Local and the provider, each
//! behind a fault-injecting TCP proxy of the test's own ([`FaultProxy`]):
//! down (port closed, open connections reset, as when the process dies),
//! black-holed, slowed, answering DynamoDB throttling errors; plus a
//! listener whose full accept queue drops SYNs, to hit the connect
//! timeouts. Every case must get a clean 5xx (or the documented
//! fail-open/closed answer) within a bounded time, an audit line, no
//! half-written session, and work again once the dependency is back.
//!
//! Budgets under test (README, "Provider calls"): provider 2 s connect /
//! 5 s total; DynamoDB 0.8 s connect, 1.5 s per attempt, 3.5 s total,
//! 2 attempts. Recovery times are printed (`--nocapture`).

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::hostile::{
    at_provider, hostile_login, hostile_server, reasons, sets_session, start_login, user_agent,
    Hostile,
};

// ---------------------------------------------------------- the fault proxy --

/// What the proxy does with new connections. Every change also resets the
/// connections already open, so pooled keep-alive connections see it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Forward.
    Pass,
    /// The port is closed (connection refused); open connections are reset.
    Down,
    /// Accept, read, never answer.
    Blackhole,
    /// Forward, holding every chunk of the answer back this long.
    Delay(Duration),
    /// Answer every request with DynamoDB's throttling error.
    Throttle,
    /// Throttle this many requests, then forward.
    ThrottleFirst(usize),
}

struct Inner {
    target: String,
    port: u16,
    mode: Mutex<Mode>,
    reset: watch::Sender<u64>,
    accept: Mutex<Option<JoinHandle<()>>>,
    throttle_left: AtomicUsize,
    throttled: AtomicUsize,
    connections: AtomicUsize,
}

/// A TCP proxy on a loopback port in front of `target`, with faults on demand.
pub(crate) struct FaultProxy {
    inner: Arc<Inner>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(task) = self.inner.accept.lock().unwrap().take() {
            task.abort();
        }
        self.inner.reset.send_modify(|g| *g += 1);
    }
}

const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#;

impl FaultProxy {
    /// Starts forwarding to `target` (`http://host:port`).
    pub async fn start(target: &str) -> FaultProxy {
        let target = url::Url::parse(target).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let inner = Arc::new(Inner {
            target: format!(
                "{}:{}",
                target.host_str().unwrap(),
                target.port_or_known_default().unwrap()
            ),
            port: listener.local_addr().unwrap().port(),
            mode: Mutex::new(Mode::Pass),
            reset: watch::channel(0).0,
            accept: Mutex::new(None),
            throttle_left: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, inner.clone()));
        *inner.accept.lock().unwrap() = Some(task);
        FaultProxy { inner }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.inner.port)
    }

    /// Switches the mode; open connections are reset.
    pub async fn set(&self, mode: Mode) {
        *self.inner.mode.lock().unwrap() = mode;
        if let Mode::ThrottleFirst(n) = mode {
            self.inner.throttle_left.store(n, Ordering::SeqCst);
        }
        self.inner.reset.send_modify(|g| *g += 1);
        let running = self.inner.accept.lock().unwrap().take();
        match (mode, running) {
            (Mode::Down, Some(task)) => {
                task.abort();
                let _ = task.await; // the listener is closed once this returns
            }
            (Mode::Down, None) => {}
            (_, Some(task)) => *self.inner.accept.lock().unwrap() = Some(task),
            (_, None) => {
                let listener = TcpListener::bind(("127.0.0.1", self.inner.port))
                    .await
                    .unwrap();
                let task = tokio::spawn(accept_loop(listener, self.inner.clone()));
                *self.inner.accept.lock().unwrap() = Some(task);
            }
        }
    }

    /// Requests answered with a throttling error so far.
    pub fn throttled(&self) -> usize {
        self.inner.throttled.load(Ordering::SeqCst)
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        inner.connections.fetch_add(1, Ordering::SeqCst);
        let inner = inner.clone();
        let mut reset = inner.reset.subscribe();
        let mode = *inner.mode.lock().unwrap();
        tokio::spawn(async move {
            // A reset is an abrupt close (RST), as when a process dies.
            let _ = client.set_zero_linger();
            tokio::select! {
                _ = serve(client, &inner, mode) => {}
                _ = reset.changed() => {}
            }
        });
    }
}

async fn serve(mut client: TcpStream, inner: &Inner, mode: Mode) {
    let throttle = match mode {
        Mode::Throttle => true,
        Mode::ThrottleFirst(_) => inner
            .throttle_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok(),
        _ => false,
    };
    if throttle {
        if read_request(&mut client).await {
            inner.throttled.fetch_add(1, Ordering::SeqCst);
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: fault-proxy\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{THROTTLED}",
                THROTTLED.len()
            );
            let _ = client.write_all(answer.as_bytes()).await;
            let _ = client.shutdown().await;
        }
        return;
    }
    match mode {
        Mode::Blackhole => {
            let mut sink = [0u8; 16 * 1024];
            while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
            std::future::pending::<()>().await;
        }
        Mode::Down => {}
        Mode::Delay(d) => forward(client, &inner.target, Some(d)).await,
        _ => forward(client, &inner.target, None).await,
    }
}

/// Reads one HTTP/1.1 request (head and `content-length` body).
async fn read_request(client: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return true;
            }
        }
    }
}

async fn forward(client: TcpStream, target: &str, delay: Option<Duration>) {
    let Ok(upstream) = TcpStream::connect(target).await else {
        return;
    };
    let _ = upstream.set_zero_linger();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let requests = async {
        let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
        let _ = upstream_write.shutdown().await;
    };
    let answers = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match upstream_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(requests, answers);
}

/// A loopback port whose accept queue is full: the kernel drops SYNs, so a
/// connect hangs until the client's connect timeout.
pub(crate) struct SynDrop {
    pub url: String,
    _listener: TcpListener,
    _queued: Vec<std::net::TcpStream>,
}

impl SynDrop {
    pub async fn start() -> SynDrop {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        let full = tokio::task::spawn_blocking(move || {
            for _ in 0..16 {
                match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                    Ok(s) => queued.push(s),
                    Err(_) => return Some(queued),
                }
            }
            None
        })
        .await
        .unwrap()
        .expect("could not fill a listener's accept queue on this kernel");
        SynDrop {
            url: format!("http://{addr}"),
            _listener: listener,
            _queued: full,
        }
    }
}

// ----------------------------------------------------------------- helpers --

fn within(what: &str, elapsed: Duration, range: RangeInclusive<f64>) {
    let secs = elapsed.as_secs_f64();
    assert!(
        range.contains(&secs),
        "{what} took {secs:.2} s, expected {:.1}..={:.1} s",
        range.start(),
        range.end()
    );
    eprintln!("faults: {what}: {secs:.2} s");
}

/// Retries `attempt` every 50 ms until it succeeds; the time it took.
async fn recovery<F, Fut>(what: &str, mut attempt: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !attempt().await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: no recovery"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    eprintln!("faults: recovery after {what}: {} ms", took.as_millis());
    took
}

async fn timed<T>(call: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = call.await;
    (out, started.elapsed())
}

fn pks(
    items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>],
) -> Vec<String> {
    items
        .iter()
        .map(|i| i["pk"].as_s().unwrap().clone())
        .collect()
}

/// Only rate-limit counters (and `allowed` kinds) may be in the table.
async fn table_holds_only(app: &App, allowed: &[&str]) {
    for pk in pks(&app.table_items().await) {
        assert!(
            pk.starts_with("rate#") || allowed.iter().any(|a| pk.starts_with(a)),
            "left behind: {pk}"
        );
    }
}

fn dependency_failed(ua: &str, dependency: &str) {
    let found = reasons(ua, "dependency_failed");
    assert!(
        !found.is_empty() && found.iter().all(|r| r == dependency),
        "audit dependency_failed for {dependency}: {found:?}"
    );
}

async fn post(browser: &mut Browser, app: &App, path: &str, ua: &str) -> Reply {
    browser
        .send(
            http::Method::POST,
            &app.url(path),
            &[
                ("origin", app.base.as_str()),
                ("x-requested-with", "XMLHttpRequest"),
                ("user-agent", ua),
            ],
            None,
        )
        .await
}

async fn get(browser: &mut Browser, app: &App, path: &str, ua: &str) -> Reply {
    browser
        .send(
            http::Method::GET,
            &app.url(path),
            &[("user-agent", ua)],
            None,
        )
        .await
}

/// A provider behind a proxy, an app for it, and a logged-in browser.
async fn provider_behind_proxy() -> (FaultProxy, Hostile, App) {
    let proxy = FaultProxy::start(hostile_server()).await;
    let idp = Hostile::behind(Some(&proxy.url())).await;
    let app = idp.app().await;
    (proxy, idp, app)
}

async fn logged_in(app: &App) -> Browser {
    let mut browser = Browser::new();
    let reply = hostile_login(app, &mut browser).await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    browser
}

// ------------------------------------------------------------ the provider --

#[tokio::test]
async fn provider_down_at_login_is_a_quick_502_and_recovers() {
    let _quiet = crate::concurrency::LOAD.read().await;
    let (proxy, _idp, app) = provider_behind_proxy().await;
    proxy.set(Mode::Down).await;
    let ua = user_agent("provider_down_at_login");
    let mut browser = Browser::new();
    let (reply, took) = timed(get(&mut browser, &app, "/auth/login", &ua)).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    assert!(reply.location().is_none() && reply.set_cookies().is_empty());
    within("login with the provider down", took, 0.0..=3.0);
    dependency_failed(&ua, "identity_provider");
    assert!(app.table_items().await.is_empty(), "nothing is written");

    proxy.set(Mode::Pass).await;
    recovery("the provider came back (login)", || async {
        Browser::new().get(&app.url("/auth/login")).await.status == StatusCode::FOUND
    })
    .await;
    logged_in(&app).await;
}

#[tokio::test]
async fn provider_down_at_callback_is_a_502_without_a_session() {
    let _quiet = crate::concurrency::LOAD.read().await;
    let (proxy, _idp, app) = provider_behind_proxy().await;
    let ua = user_agent("provider_down_at_callback");
    let mut browser = Browser::new();
    let authorize = start_login(&app, &mut browser, "").await;
    let callback = at_provider(&authorize).await;
    proxy.set(Mode::Down).await;
    let (reply, took) = timed(get(&mut browser, &app, &callback_path(&callback), &ua)).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    assert!(!sets_session(&reply));
    within("callback with the provider down", took, 0.0..=3.0);
    dependency_failed(&ua, "identity_provider");
    // The transaction was consumed: no half-finished login is left.
    table_holds_only(&app, &[]).await;

    proxy.set(Mode::Pass).await;
    // The used state cannot be replayed; a new login works at once.
    assert_eq!(browser.get(&callback).await.status, StatusCode::BAD_REQUEST);
    recovery("the provider came back (callback)", || async {
        let mut b = Browser::new();
        hostile_login(&app, &mut b).await.status == StatusCode::FOUND
    })
    .await;
}

fn callback_path(callback: &str) -> String {
    let url = url::Url::parse(callback).unwrap();
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

async fn provider_slower_than_the_budget_gets_a_502_at_the_total_timeout() {
    let at_callback = async {
        let idp = Hostile::new().await;
        let app = idp.app().await;
        let ua = user_agent("provider_slow_token");
        let mut browser = Browser::new();
        let authorize = start_login(&app, &mut browser, "").await;
        let callback = at_provider(&authorize).await;
        idp.scenario(json!({"name": "token_slow"})).await;
        let (reply, took) = timed(get(&mut browser, &app, &callback_path(&callback), &ua)).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
        assert!(!sets_session(&reply));
        within(
            "callback with a token endpoint slower than 5 s",
            took,
            4.8..=7.0,
        );
        dependency_failed(&ua, "identity_provider");
        table_holds_only(&app, &[]).await;
        idp.scenario(json!({"name": "good"})).await;
        recovery("the provider got fast again", || async {
            hostile_login(&app, &mut Browser::new()).await.status == StatusCode::FOUND
        })
        .await;
    };
    let at_login = async {
        let idp = Hostile::new().await;
        idp.scenario(json!({"name": "discovery_slow"})).await;
        let app = idp.app().await;
        let ua = user_agent("provider_slow_discovery");
        let (reply, took) = timed(get(&mut Browser::new(), &app, "/auth/login", &ua)).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
        within("login with discovery slower than 5 s", took, 4.8..=7.0);
        dependency_failed(&ua, "identity_provider");
        assert!(app.table_items().await.is_empty());
        idp.scenario(json!({"name": "good"})).await;
        recovery("discovery got fast again", || async {
            hostile_login(&app, &mut Browser::new()).await.status == StatusCode::FOUND
        })
        .await;
    };
    tokio::join!(at_callback, at_login);
}

async fn provider_connect_timeout_is_two_seconds() {
    let unreachable = SynDrop::start().await;
    let app = App::spawn_with(Options {
        issuer: Some(unreachable.url.clone()),
        client: Some(("c".into(), "s".into())),
        ..Options::default()
    })
    .await;
    let ua = user_agent("provider_connect_timeout");
    let (reply, took) = timed(get(&mut Browser::new(), &app, "/auth/login", &ua)).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    within("login with a provider that never accepts", took, 1.8..=3.5);
    dependency_failed(&ua, "identity_provider");
}

#[tokio::test]
async fn provider_errors_and_garbage_get_a_502() {
    let _quiet = crate::concurrency::LOAD.read().await;
    let idp = Hostile::new().await;
    let app = idp.app().await;
    let huge = format!(r#"{{"access_token":"{}"}}"#, "a".repeat(300 * 1024));
    let token_cases = [
        json!({"name": "token_500"}),
        json!({"token_status": 503, "token_body": ""}),
        json!({"name": "token_garbage"}),
        json!({"token_body": "[]"}),
        json!({"token_body": "{\"access_token\": \"x\""}),
        json!({"token_body": "{\"access_token\": 1, \"token_type\": \"Bearer\"}"}),
        json!({"token_body": "{\"token_type\": \"Bearer\"}"}),
        json!({ "token_body": huge }),
    ];
    for case in token_cases {
        let ua = user_agent("provider_token_garbage");
        let mut browser = Browser::new();
        let authorize = start_login(&app, &mut browser, "").await;
        let callback = at_provider(&authorize).await;
        idp.scenario(case.clone()).await;
        let (reply, took) = timed(get(&mut browser, &app, &callback_path(&callback), &ua)).await;
        let what = case.to_string();
        let what = &what[..what.len().min(80)];
        assert_eq!(
            reply.status,
            StatusCode::BAD_GATEWAY,
            "{what}: {}",
            reply.body
        );
        assert!(!sets_session(&reply), "{what}");
        assert!(took < Duration::from_secs(2), "{what}");
        dependency_failed(&ua, "identity_provider");
        idp.scenario(json!({"name": "good"})).await;
    }
    table_holds_only(&app, &[]).await;
    // Discovery and JWKS failures at login: a fresh app each (discovery is
    // cached once it succeeds), and no negative caching once they are fixed.
    for scenario in [
        "discovery_500",
        "discovery_garbage",
        "jwks_500",
        "jwks_garbage",
    ] {
        let idp = Hostile::new().await;
        idp.scenario(json!({ "name": scenario })).await;
        let app = idp.app().await;
        let ua = user_agent("provider_discovery_garbage");
        let reply = get(&mut Browser::new(), &app, "/auth/login", &ua).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_GATEWAY,
            "{scenario}: {}",
            reply.body
        );
        dependency_failed(&ua, "identity_provider");
        assert!(app.table_items().await.is_empty());
        idp.scenario(json!({"name": "good"})).await;
        logged_in(&app).await;
    }
}

#[tokio::test]
async fn refresh_with_the_provider_down_keeps_the_session() {
    let _quiet = crate::concurrency::LOAD.read().await;
    let (proxy, idp, app) = provider_behind_proxy().await;
    let mut browser = logged_in(&app).await;
    proxy.set(Mode::Down).await;
    let ua = user_agent("refresh_provider_down");
    let (reply, took) = timed(post(&mut browser, &app, "/auth/refresh", &ua)).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    assert!(reply.set_cookies().is_empty(), "cookies untouched");
    within("refresh with the provider down", took, 0.0..=3.0);
    dependency_failed(&ua, "identity_provider");
    assert_eq!(reasons(&ua, "refresh_failed"), vec!["provider_unavailable"]);
    // The claim was released, the session lives on.
    table_holds_only(&app, &[]).await;
    assert_eq!(
        browser.get(&app.url("/auth/session")).await.status,
        StatusCode::OK
    );
    proxy.set(Mode::Pass).await;
    recovery("the provider came back (refresh)", || {
        let mut b = browser.clone();
        let app = &app;
        async move { b.post_as_site(app, "/auth/refresh", None).await.status == StatusCode::OK }
    })
    .await;
    assert_eq!(idp.stats().await["refresh_token_grants"], 1);
}

async fn refresh_slower_than_the_budget_releases_its_claim() {
    let idp = Hostile::new().await;
    let app = idp.app().await;
    let mut browser = logged_in(&app).await;
    idp.scenario(json!({"name": "token_slow"})).await;
    let ua = user_agent("refresh_provider_slow");
    let (reply, took) = timed(post(&mut browser, &app, "/auth/refresh", &ua)).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    within(
        "refresh with a token endpoint slower than 5 s",
        took,
        4.8..=7.0,
    );
    dependency_failed(&ua, "identity_provider");
    idp.scenario(json!({"name": "good"})).await;
    // Not blocked for the rest of the 8 s lease: the claim was released.
    let (again, took) = timed(browser.post_as_site(&app, "/auth/refresh", None)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    within("the next refresh", took, 0.0..=4.0);
}

#[tokio::test]
async fn logout_with_the_provider_down_still_logs_out() {
    let _quiet = crate::concurrency::LOAD.read().await;
    let (proxy, _idp, app) = provider_behind_proxy().await;
    let mut browser = logged_in(&app).await;
    let mut copy = browser.clone();
    proxy.set(Mode::Down).await;
    let ua = user_agent("logout_provider_down");
    let (reply, took) = timed(post(&mut browser, &app, "/auth/logout", &ua)).await;
    // Documented: the session ends on our side even if revocation fails.
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.clears("__Host-session"));
    within("logout with the provider down", took, 0.0..=3.0);
    dependency_failed(&ua, "identity_provider");
    assert_eq!(
        copy.get(&app.url("/auth/session")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

// ---------------------------------------------------------------- timeouts --

/// The cases that wait for a timeout run at once: each takes seconds of
/// waiting and almost no work.
#[tokio::test]
async fn every_dependency_call_is_bounded_by_its_timeouts() {
    let _quiet = crate::concurrency::LOAD.read().await;
    tokio::join!(
        provider_slower_than_the_budget_gets_a_502_at_the_total_timeout(),
        provider_connect_timeout_is_two_seconds(),
        refresh_slower_than_the_budget_releases_its_claim(),
        dynamodb_black_hole_is_a_503_within_the_attempt_budget(),
        dynamodb_connect_timeout_is_bounded(),
    );
}

// ---------------------------------------------------------------- DynamoDB --

async fn app_behind_dynamo_proxy(idp: &Hostile) -> (FaultProxy, App) {
    let proxy = FaultProxy::start(&Stack::get().dynamodb).await;
    let app = idp
        .app_with(Options {
            dynamodb: Some(proxy.url()),
            ..Options::default()
        })
        .await;
    (proxy, app)
}

#[tokio::test]
async fn dynamodb_down_at_login_is_a_clean_503_and_recovers() {
    let _quiet = crate::concurrency::LOAD.read().await;
    let idp = Hostile::new().await;
    let (proxy, app) = app_behind_dynamo_proxy(&idp).await;
    proxy.set(Mode::Down).await;
    let ua = user_agent("dynamodb_down_at_login");
    let (reply, took) = timed(get(&mut Browser::new(), &app, "/auth/login", &ua)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.json()["error"], "temporarily_unavailable");
    assert!(reply.location().is_none() && reply.set_cookies().is_empty());
    within("login with DynamoDB down", took, 0.0..=4.0);
    dependency_failed(&ua, "dynamodb");
    assert_eq!(idp.stats().await["authorize"], 0);

    proxy.set(Mode::Pass).await;
    recovery("DynamoDB came back (login)", || async {
        hostile_login(&app, &mut Browser::new()).await.status == StatusCode::FOUND
    })
    .await;
}

#[tokio::test]
async fn dynamodb_down_mid_login_the_callback_503s_and_its_retry_completes() {
    let _quiet = crate::concurrency::LOAD.read().await;
    let idp = Hostile::new().await;
    let (proxy, app) = app_behind_dynamo_proxy(&idp).await;
    let ua = user_agent("dynamodb_down_mid_login");
    let mut browser = Browser::new();
    let authorize = start_login(&app, &mut browser, "").await;
    let callback = at_provider(&authorize).await;
    proxy.set(Mode::Down).await;
    let (reply, took) = timed(get(&mut browser, &app, &callback_path(&callback), &ua)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(!sets_session(&reply));
    within("callback with DynamoDB down", took, 0.0..=4.0);
    dependency_failed(&ua, "dynamodb");
    // The code never went to the provider.
    assert_eq!(idp.stats().await["authorization_code_grants"], 0);

    proxy.set(Mode::Pass).await;
    // The transaction is still there: reloading the callback finishes the login.
    let retry = browser.get(&callback).await;
    assert_eq!(retry.status, StatusCode::FOUND, "{}", retry.body);
    assert!(sets_session(&retry));
    table_holds_only(&app, &[]).await;
}

#[tokio::test]
async fn dynamodb_down_session_reads_fail_closed_and_recover() {
    let _quiet = crate::concurrency::LOAD.read().await;
    let idp = Hostile::new().await;
    let (proxy, app) = app_behind_dynamo_proxy(&idp).await;
    let mut browser = logged_in(&app).await;
    proxy.set(Mode::Down).await;
    let ua = user_agent("dynamodb_down_session");
    let (reply, took) = timed(get(&mut browser, &app, "/auth/session", &ua)).await;
    // The revocation check cannot run: 503, and the cookies stay.
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(reply.set_cookies().is_empty());
    within("session with DynamoDB down", took, 0.0..=4.0);
    dependency_failed(&ua, "dynamodb");
    let (refresh, _) = timed(post(&mut browser, &app, "/auth/refresh", &ua)).await;
    assert_eq!(refresh.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(idp.stats().await["refresh_token_grants"], 0);

    proxy.set(Mode::Pass).await;
    recovery("DynamoDB came back (session)", || {
        let mut b = browser.clone();
        let app = &app;
        async move { b.get(&app.url("/auth/session")).await.status == StatusCode::OK }
    })
    .await;
    let refresh = browser.post_as_site(&app, "/auth/refresh", None).await;
    assert_eq!(refresh.status, StatusCode::OK, "{}", refresh.body);
}

#[tokio::test]
async fn dynamodb_down_at_logout_is_a_503_and_the_retry_logs_out() {
    let _quiet = crate::concurrency::LOAD.read().await;
    let idp = Hostile::new().await;
    let (proxy, app) = app_behind_dynamo_proxy(&idp).await;
    let mut browser = logged_in(&app).await;
    proxy.set(Mode::Down).await;
    let ua = user_agent("dynamodb_down_at_logout");
    let (reply, took) = timed(post(&mut browser, &app, "/auth/logout", &ua)).await;
    // The revocation record cannot be written: 503, so the site knows the
    // logout did not happen (and can retry) rather than believing it did.
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    within("logout with DynamoDB down", took, 0.0..=4.0);
    dependency_failed(&ua, "dynamodb");
    proxy.set(Mode::Pass).await;
    let mut copy = browser.clone();
    let retry = browser.post_as_site(&app, "/auth/logout", None).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(
        copy.get(&app.url("/auth/session")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn dynamodb_black_hole_is_a_503_within_the_attempt_budget() {
    let idp = Hostile::new().await;
    let (proxy, app) = app_behind_dynamo_proxy(&idp).await;
    let mut browser = logged_in(&app).await;
    proxy.set(Mode::Blackhole).await;
    let ua = user_agent("dynamodb_black_hole");
    let mut fresh = Browser::new();
    let ((login, took_login), (session, took_session)) = tokio::join!(
        timed(get(&mut fresh, &app, "/auth/login", &ua)),
        timed(get(&mut browser, &app, "/auth/session", &ua)),
    );
    assert_eq!(
        login.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        login.body
    );
    assert_eq!(
        session.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        session.body
    );
    // Two attempts of 1.5 s (plus a backoff), capped at 3.5 s in total.
    within("login with DynamoDB not answering", took_login, 2.9..=4.5);
    within(
        "session with DynamoDB not answering",
        took_session,
        2.9..=4.5,
    );
    dependency_failed(&ua, "dynamodb");
    proxy.set(Mode::Pass).await;
    recovery("DynamoDB answered again", || {
        let mut b = browser.clone();
        let app = &app;
        async move { b.get(&app.url("/auth/session")).await.status == StatusCode::OK }
    })
    .await;
}

#[tokio::test]
async fn dynamodb_slow_within_the_budget_still_works() {
    let _quiet = crate::concurrency::LOAD.read().await;
    let idp = Hostile::new().await;
    let (proxy, app) = app_behind_dynamo_proxy(&idp).await;
    proxy.set(Mode::Delay(Duration::from_millis(400))).await;
    let (reply, took) = timed(async {
        let mut b = Browser::new();
        let r = hostile_login(&app, &mut b).await;
        (r, b)
    })
    .await;
    let (reply, mut browser) = reply;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    within("a login with 400 ms DynamoDB latency", took, 0.7..=6.0);
    let me = browser.get(&app.url("/auth/session")).await;
    assert_eq!(me.status, StatusCode::OK);
}

#[tokio::test]
async fn dynamodb_throttling_is_retried_once_then_a_503() {
    let _quiet = crate::concurrency::LOAD.read().await;
    let idp = Hostile::new().await;
    let (proxy, app) = app_behind_dynamo_proxy(&idp).await;
    proxy.set(Mode::Throttle).await;
    let ua = user_agent("dynamodb_throttled");
    app.table_calls.reset();
    let (reply, took) = timed(get(&mut Browser::new(), &app, "/auth/login", &ua)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(reply.set_cookies().is_empty());
    within("login with DynamoDB throttling", took, 0.0..=4.0);
    dependency_failed(&ua, "dynamodb");
    let (calls, _) = app.table_calls.read();
    assert_eq!(proxy.throttled(), 2 * calls, "2 attempts per call");

    // One throttled request among several: the retry absorbs it.
    proxy.set(Mode::ThrottleFirst(1)).await;
    let reply = hostile_login(&app, &mut Browser::new()).await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    assert_eq!(proxy.throttled(), 2 * calls + 1);
    proxy.set(Mode::Pass).await;
    logged_in(&app).await;
}

async fn dynamodb_connect_timeout_is_bounded() {
    let idp = Hostile::new().await;
    let unreachable = SynDrop::start().await;
    let app = idp
        .app_with(Options {
            dynamodb: Some(unreachable.url.clone()),
            ..Options::default()
        })
        .await;
    let ua = user_agent("dynamodb_connect_timeout");
    let (reply, took) = timed(get(&mut Browser::new(), &app, "/auth/login", &ua)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    // Two connect attempts of 0.8 s (plus a backoff of up to 1 s).
    within("login with DynamoDB not accepting", took, 1.5..=4.0);
    dependency_failed(&ua, "dynamodb");
}

#[tokio::test]
async fn dynamodb_down_mid_refresh_loses_no_session() {
    let _quiet = crate::concurrency::LOAD.read().await;
    let idp = Hostile::new().await;
    let (proxy, app) = app_behind_dynamo_proxy(&idp).await;
    let mut browser = logged_in(&app).await;
    // The provider takes 1.5 s; DynamoDB dies while it works.
    idp.scenario(json!({"token_delay_ms": 1500})).await;
    let ua = user_agent("dynamodb_down_mid_refresh");
    let mut tab = browser.clone();
    let refreshing = {
        let app_base = app.base.clone();
        let url = app.url("/auth/refresh");
        let ua = ua.clone();
        tokio::spawn(async move {
            let reply = tab
                .send(
                    http::Method::POST,
                    &url,
                    &[
                        ("origin", app_base.as_str()),
                        ("x-requested-with", "XMLHttpRequest"),
                        ("user-agent", ua.as_str()),
                    ],
                    None,
                )
                .await;
            (reply, tab)
        })
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    proxy.set(Mode::Down).await;
    let (first, tab) = refreshing.await.unwrap();
    eprintln!(
        "faults: refresh while DynamoDB went down: {} {}",
        first.status, first.body
    );
    assert!(
        first.status == StatusCode::OK || first.status == StatusCode::SERVICE_UNAVAILABLE,
        "{}: {}",
        first.status,
        first.body
    );
    if first.status == StatusCode::OK {
        browser = tab;
    }
    idp.scenario(json!({"name": "good"})).await;
    proxy.set(Mode::Pass).await;
    // The site retries: the session must survive the outage.
    let retry = browser.post_as_site(&app, "/auth/refresh", None).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    let me = browser.get(&app.url("/auth/session")).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
}

/// A DynamoDB Local of the test's own on `port`, persisting to `dir`.
fn own_dynamodb(port: u16, dir: &std::path::Path) -> NodeServer {
    start_node_server(
        "a second DynamoDB Local",
        &[
            "scripts/dynamodb-local.mjs",
            "--port",
            &port.to_string(),
            "--db-path",
            dir.to_str().unwrap(),
        ],
        &[],
        "dynamodb-local ready on",
    )
    .unwrap()
}

#[tokio::test]
async fn dynamodb_local_killed_mid_session_and_restarted() {
    let _quiet = crate::concurrency::LOAD.read().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("ddb-fault-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let dynamodb = own_dynamodb(port, &dir);
    let idp = Hostile::new().await;
    let app = idp
        .app_with(Options {
            dynamodb: Some(endpoint.clone()),
            ..Options::default()
        })
        .await;
    let creds = aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "tests");
    let conf = static_login::store::dynamo::sdk_config_overrides(aws_config::defaults(
        aws_config::BehaviorVersion::latest(),
    ))
    .region(aws_config::Region::new("us-east-1"))
    .credentials_provider(creds)
    .endpoint_url(&endpoint)
    .load()
    .await;
    create_table(&aws_sdk_dynamodb::Client::new(&conf), &app.table)
        .await
        .unwrap();

    let mut browser = logged_in(&app).await;
    let mut tab = Browser::new();
    let authorize = start_login(&app, &mut tab, "").await;
    let pending_callback = at_provider(&authorize).await;

    // The process dies (SIGTERM to the launcher, which stops the JVM).
    let killed = Instant::now();
    drop(dynamodb);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "DynamoDB Local did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "faults: DynamoDB Local stopped {} ms after SIGTERM",
        killed.elapsed().as_millis()
    );
    let ua = user_agent("dynamodb_local_killed");
    let (reply, took) = timed(get(&mut browser, &app, "/auth/session", &ua)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(reply.set_cookies().is_empty());
    within("session with DynamoDB Local stopped", took, 0.0..=4.0);
    let (reply, _) = timed(get(&mut Browser::new(), &app, "/auth/login", &ua)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    dependency_failed(&ua, "dynamodb");

    // It comes back with its data; the warm app reconnects by itself.
    let restarted = Instant::now();
    let _dynamodb = own_dynamodb(port, &dir);
    eprintln!(
        "faults: DynamoDB Local restarted in {} ms",
        restarted.elapsed().as_millis()
    );
    let outage = killed.elapsed();
    let browser_ref = &browser;
    let app_ref = &app;
    recovery("DynamoDB Local restarted (session)", move || {
        let mut b = browser_ref.clone();
        async move { b.get(&app_ref.url("/auth/session")).await.status == StatusCode::OK }
    })
    .await;
    eprintln!("faults: outage seen by the app: {} ms", outage.as_millis());
    // The login that was under way when it died still completes.
    let finished = tab.get(&pending_callback).await;
    assert_eq!(finished.status, StatusCode::FOUND, "{}", finished.body);
    let _ = std::fs::remove_dir_all(&dir);
}
