//! Issue 9: concurrency. Many parallel logins, refreshes (several tabs per
//! session at once) and logouts against the local stack, loopback only and
//! bounded (a semaphore caps the requests in flight): zero 5xx, every user
//! sees only their own `sub`, exactly one provider refresh per session, and
//! afterwards the table holds nothing that outlives its kind's TTL. The
//! figures (requests, statuses, p50/p99 latency) are printed (`--nocapture`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::*;
use tokio::sync::Semaphore;

use crate::hostile::{at_provider, Hostile};

/// Every request of a run: endpoint, latency and status.
#[derive(Default)]
struct Load {
    samples: Mutex<Vec<(&'static str, Duration, u16)>>,
}

fn percentiles(mut latencies: Vec<Duration>) -> String {
    latencies.sort();
    let pick = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_millis()
    };
    format!(
        "p50 {} ms, p99 {} ms, max {} ms",
        pick(0.5),
        pick(0.99),
        pick(1.0)
    )
}

impl Load {
    async fn time(
        &self,
        endpoint: &'static str,
        call: impl std::future::Future<Output = Reply>,
    ) -> Reply {
        let started = Instant::now();
        let reply = call.await;
        self.samples
            .lock()
            .unwrap()
            .push((endpoint, started.elapsed(), reply.status.as_u16()));
        reply
    }

    /// Prints the figures and checks there was no 5xx.
    fn report(&self, what: &str, wall: Duration) {
        let samples = self.samples.lock().unwrap();
        let mut statuses = BTreeMap::new();
        let mut by_endpoint: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
        for (endpoint, latency, status) in samples.iter() {
            *statuses.entry(*status).or_insert(0usize) += 1;
            by_endpoint.entry(endpoint).or_default().push(*latency);
        }
        eprintln!(
            "concurrency: {what}: {} requests in {:.1} s, statuses {statuses:?}, {}",
            samples.len(),
            wall.as_secs_f64(),
            percentiles(samples.iter().map(|s| s.1).collect()),
        );
        for (endpoint, latencies) in by_endpoint {
            eprintln!(
                "concurrency:   {endpoint}: {} requests, {}",
                latencies.len(),
                percentiles(latencies)
            );
        }
        let server_errors: usize = statuses
            .iter()
            .filter(|(s, _)| **s >= 500)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(server_errors, 0, "{what}: 5xx answers: {statuses:?}");
    }
}

fn generous_limits() -> Vec<(&'static str, String)> {
    [
        "RATE_LIMIT_LOGIN_PER_WINDOW",
        "RATE_LIMIT_CALLBACK_PER_WINDOW",
        "RATE_LIMIT_SESSION_PER_WINDOW",
        "RATE_LIMIT_REFRESH_PER_WINDOW",
        "RATE_LIMIT_LOGOUT_PER_WINDOW",
    ]
    .into_iter()
    .map(|v| (v, "1000000".to_owned()))
    .collect()
}

/// Refreshes from `tabs` copies of the browser at once; every answer must be
/// 200 for `sub`. Returns a browser holding the refreshed cookies.
async fn refresh_in_tabs(
    load: &Arc<Load>,
    app: &Arc<App>,
    browser: &Browser,
    tabs: usize,
    sub: &str,
) -> Browser {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tabs {
        let (load, app, mut tab) = (load.clone(), app.clone(), browser.clone());
        set.spawn(async move {
            let reply = load
                .time("refresh", tab.post_as_site(&app, "/auth/refresh", None))
                .await;
            (reply, tab)
        });
    }
    let mut refreshed = None;
    while let Some(done) = set.join_next().await {
        let (reply, tab) = done.unwrap();
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "refresh for {sub}: {}",
            reply.body
        );
        assert_eq!(
            reply.json()["user"]["sub"],
            sub,
            "a refresh answered for another user"
        );
        refreshed = Some(tab);
    }
    refreshed.unwrap()
}

async fn session_is(load: &Load, app: &App, browser: &mut Browser, sub: &str) {
    let me = load
        .time("session", browser.get(&app.url("/auth/session")))
        .await;
    assert_eq!(me.status, StatusCode::OK, "session for {sub}: {}", me.body);
    assert_eq!(
        me.json()["user"]["sub"],
        sub,
        "a session showed another user"
    );
}

async fn logout_ends_it(load: &Load, app: &App, mut browser: Browser, sub: &str) {
    let mut copy = browser.clone();
    let out = load
        .time("logout", browser.post_as_site(app, "/auth/logout", None))
        .await;
    assert_eq!(out.status, StatusCode::OK, "logout for {sub}: {}", out.body);
    for b in [&mut browser, &mut copy] {
        let me = load.time("session", b.get(&app.url("/auth/session"))).await;
        assert_eq!(
            me.status,
            StatusCode::UNAUTHORIZED,
            "after logout for {sub}"
        );
    }
}

/// Every item of the app's table (a scan pages at 1 MB; sealed refresh
/// results fill that quickly).
async fn all_items(app: &App) -> Vec<HashMap<String, AttributeValue>> {
    let client = app.stack.dynamo_client().await;
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(&app.table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// How many users a load test runs: `LOAD_USERS` (by hand, e.g. 1000), or
/// the default kept small for CI on a shared two-core machine.
fn users(default: usize) -> usize {
    std::env::var("LOAD_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Load tests never overlap the timing-sensitive fault tests.
pub(crate) static LOAD: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// What may remain in the table after a run, by kind: nothing one-time, and
/// nothing whose `expires_at` outlives what its kind allows.
async fn table_is_clean(app: &App) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let absolute = app.config.absolute_timeout.as_secs();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for item in all_items(app).await {
        let pk = item["pk"].as_s().unwrap().clone();
        let expires_at: u64 = item
            .get("expires_at")
            .unwrap_or_else(|| panic!("{pk} has no expires_at"))
            .as_n()
            .unwrap()
            .parse()
            .unwrap();
        let kind = pk.split('#').next().unwrap().to_owned();
        let limit = match kind.as_str() {
            "rate" => 60,
            "refresh" => static_login::handlers::refresh::RESULT_TTL_SECS,
            "revoked" => absolute,
            other => panic!("{other} item left behind: {pk}"),
        };
        assert!(
            expires_at <= now + limit + 5,
            "{pk} expires in {} s",
            expires_at.saturating_sub(now)
        );
        if kind == "refresh" {
            let data = item.get("data").and_then(|d| d.as_s().ok()).unwrap();
            assert_ne!(data, "pending", "a refresh claim was never resolved");
        }
        *kinds.entry(kind).or_default() += 1;
    }
    eprintln!("concurrency: table after the run: {kinds:?}");
}

/// Both loads at once; the table and the counters are checked per app.
#[tokio::test]
async fn parallel_logins_refreshes_and_logouts_never_mix_up_sessions() {
    let _alone = LOAD.write().await;
    tokio::join!(
        against_the_test_idp(users(24) / 2 * 2),
        distinct_users_against_the_hostile_idp(users(80)),
    );
}

/// Alice and Bob in many browsers each, through the oidc-provider test IdP
/// (login form, rotation on every refresh, reuse detection).
async fn against_the_test_idp(sessions: usize) {
    const TABS: usize = 3;
    let app = Arc::new(
        App::spawn_with(Options {
            vars: generous_limits(),
            ..Options::default()
        })
        .await,
    );
    let load = Arc::new(Load::default());
    let gate = Arc::new(Semaphore::new(5));
    let started = Instant::now();
    let tasks: Vec<_> = (0..sessions)
        .map(|i| {
            let (app, load, gate) = (app.clone(), load.clone(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                let (user, sub) = if i % 2 == 0 {
                    ("alice", "user-alice")
                } else {
                    ("bob", "user-bob")
                };
                let mut browser = Browser::new();
                let mut idp = Browser::new();
                let start = load
                    .time(
                        "login",
                        browser.get(&app.url("/auth/login?return_to=%2Fwelcome")),
                    )
                    .await;
                assert_eq!(start.status, StatusCode::FOUND, "{}", start.body);
                let callback = sign_in_at_idp(
                    &mut idp,
                    &start.location().unwrap(),
                    user,
                    &format!("{user}-password"),
                )
                .await
                .unwrap();
                let done = load.time("callback", browser.get(&callback)).await;
                assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
                session_is(&load, &app, &mut browser, sub).await;
                let mut browser = refresh_in_tabs(&load, &app, &browser, TABS, sub).await;
                session_is(&load, &app, &mut browser, sub).await;
                logout_ends_it(&load, &app, browser, sub).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    load.report(
        &format!("test IdP, {sessions} sessions x {TABS} tabs"),
        started.elapsed(),
    );
    let stats = app.idp_stats().await;
    assert_eq!(stats["authorization_code_grants"], sessions);
    assert_eq!(
        stats["refresh_token_grants"], sessions,
        "exactly one provider refresh per session: {stats}"
    );
    assert_eq!(stats["refresh_token_failures"], 0, "{stats}");
    assert_eq!(stats["revoked_refresh_tokens"], sessions, "{stats}");
    table_is_clean(&app).await;
}

/// Many distinct users (`login_hint` picks the `sub` at the hostile IdP).
async fn distinct_users_against_the_hostile_idp(users: usize) {
    const TABS: usize = 2;
    let idp = Hostile::new().await;
    let app = Arc::new(
        idp.app_with(Options {
            vars: generous_limits(),
            ..Options::default()
        })
        .await,
    );
    let load = Arc::new(Load::default());
    let gate = Arc::new(Semaphore::new(5));
    let started = Instant::now();
    let tasks: Vec<_> = (0..users)
        .map(|i| {
            let (app, load, gate) = (app.clone(), load.clone(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                let sub = format!("user-{i:04}");
                let mut browser = Browser::new();
                let start = load
                    .time(
                        "login",
                        browser.get(&app.url(&format!(
                            "/auth/login?return_to=%2Fwelcome&login_hint={sub}"
                        ))),
                    )
                    .await;
                assert_eq!(start.status, StatusCode::FOUND, "{}", start.body);
                let callback = at_provider(&start.location().unwrap()).await;
                let done = load.time("callback", browser.get(&callback)).await;
                assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
                session_is(&load, &app, &mut browser, &sub).await;
                let mut browser = refresh_in_tabs(&load, &app, &browser, TABS, &sub).await;
                session_is(&load, &app, &mut browser, &sub).await;
                logout_ends_it(&load, &app, browser, &sub).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    load.report(
        &format!("hostile IdP, {users} distinct users x {TABS} tabs"),
        started.elapsed(),
    );
    let stats = idp.stats().await;
    assert_eq!(stats["authorization_code_grants"], users);
    assert_eq!(stats["refresh_token_grants"], users, "{stats}");
    assert_eq!(stats["token_errors"], 0, "{stats}");
    assert_eq!(stats["revocations"], users, "{stats}");
    table_is_clean(&app).await;
}
