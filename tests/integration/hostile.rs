//! Issue 9: hostile identity providers. Every case runs through the real
//! callback (or refresh) path against `tests/idp/hostile.mjs`, a provider of
//! our own that signs whatever the scenario asks for. A bad answer must end
//! in no session (400 at the callback, 401 and cleared cookies at refresh),
//! never a 5xx; the few answers a careful RP accepts are accepted.
//!
//! Test names follow the OpenID Foundation's RP conformance tests where one
//! applies (`rp-id-token-aud` becomes `rp_id_token_aud`, ...).

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use integration_tests::*;
use serde_json::{json, Value};

// ------------------------------------------------------------ the provider --

static SERVER: OnceLock<NodeServer> = OnceLock::new();
static SERVER_LOCK: Mutex<()> = Mutex::new(());

/// The hostile provider's base URL (one process for the whole test run).
pub(crate) fn hostile_server() -> &'static str {
    install_tls_provider();
    let _guard = SERVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    &SERVER
        .get_or_init(|| {
            start_node_server(
                "the hostile test IdP",
                &["tests/idp/hostile.mjs"],
                &[],
                "hostile idp ready on",
            )
            .unwrap()
        })
        .address
}

/// One provider of the hostile server ("tenant"): its own issuer, client,
/// scenario and counters.
pub(crate) struct Hostile {
    /// The issuer the app is configured with.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Where its admin endpoints are, bypassing any proxy in `issuer`.
    admin: String,
    http: reqwest::Client,
}

impl Hostile {
    /// A fresh provider.
    pub async fn new() -> Hostile {
        Self::behind(None).await
    }

    /// A fresh provider whose issuer starts at `base` (a fault proxy in
    /// front of the hostile server), or at the server itself.
    pub async fn behind(base: Option<&str>) -> Hostile {
        let server = hostile_server();
        let http = reqwest::Client::new();
        let body = match base {
            Some(b) => json!({ "base": b }),
            None => json!({}),
        };
        let created: Value = http
            .post(format!("{server}/__tenant"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let issuer = created["issuer"].as_str().unwrap().to_owned();
        let path = url::Url::parse(&issuer).unwrap().path().to_owned();
        Hostile {
            admin: format!("{server}{path}"),
            issuer,
            client_id: created["client_id"].as_str().unwrap().to_owned(),
            client_secret: created["client_secret"].as_str().unwrap().to_owned(),
            http,
        }
    }

    /// Replaces the scenario: `{"name": "wrong_iss"}`, or fields (README).
    pub async fn scenario(&self, spec: Value) {
        let reply = self
            .http
            .post(format!("{}/__scenario", self.admin))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_success(), "scenario {spec} refused");
    }

    /// Counters: discovery, jwks, authorize, grants, errors, attacker fetches.
    pub async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/__stats", self.admin))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A JWT this provider signs (`/__sign`), e.g. a logout token.
    pub async fn sign(&self, spec: Value) -> String {
        let reply: Value = self
            .http
            .post(format!("{}/__sign", self.admin))
            .json(&spec)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reply["jwt"].as_str().unwrap().to_owned()
    }

    /// An app configured for this provider.
    pub async fn app(&self) -> App {
        self.app_with(Options::default()).await
    }

    /// An app configured for this provider, with more options.
    pub async fn app_with(&self, options: Options) -> App {
        App::spawn_with(Options {
            issuer: Some(self.issuer.clone()),
            client: Some((self.client_id.clone(), self.client_secret.clone())),
            ..options
        })
        .await
    }
}

/// The provider's side of a login: its `/authorize` redirects straight back.
pub(crate) async fn at_provider(authorize_url: &str) -> String {
    let reply = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(authorize_url)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::FOUND, "hostile /authorize");
    reply
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// `GET /auth/login` (with an extra query), which must redirect to the provider.
pub(crate) async fn start_login(app: &App, browser: &mut Browser, query: &str) -> String {
    let start = browser
        .get(&app.url(&format!("/auth/login?return_to=%2Fwelcome{query}")))
        .await;
    assert_eq!(
        start.status,
        StatusCode::FOUND,
        "login start: {}",
        start.body
    );
    start.location().unwrap()
}

/// A whole login through the hostile provider; returns the callback's reply.
pub(crate) async fn hostile_login(app: &App, browser: &mut Browser) -> Reply {
    let authorize = start_login(app, browser, "").await;
    let callback = at_provider(&authorize).await;
    browser.get(&callback).await
}

/// Whether a reply starts a session.
pub(crate) fn sets_session(reply: &Reply) -> bool {
    reply
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("__Host-session=") && !c.contains("Max-Age=0"))
}

pub(crate) fn user_agent(test: &str) -> String {
    format!("{test}/{:016x}", rand::random::<u64>())
}

/// The reasons of this browser's audit events of one kind, in order.
pub(crate) fn reasons(ua: &str, event: &str) -> Vec<String> {
    audit_events(ua)
        .iter()
        .filter(|e| e["event"] == event)
        .map(|e| e["reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}

// -------------------------------------------------------------- the checks --

/// Logs in under `scenario` and expects a refused login: 400, no session
/// cookie, `GET /auth/session` still 401, and one `login_failed` audit line
/// with `reason`.
async fn refused_at_callback(test: &str, scenario: Value, reason: &str) -> Hostile {
    let idp = Hostile::new().await;
    idp.scenario(scenario.clone()).await;
    let app = idp.app().await;
    let ua = user_agent(test);
    let mut browser = Browser::with_user_agent(&ua);
    let reply = hostile_login(&app, &mut browser).await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{test}: {scenario} answered {}: {}",
        reply.status,
        reply.body
    );
    assert!(!sets_session(&reply), "{test}: a session cookie was set");
    assert!(!browser.jar.contains_key("__Host-session"));
    let me = browser.get(&app.url("/auth/session")).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{test}: {}", me.body);
    assert_eq!(
        reasons(&ua, "login_failed"),
        vec![reason.to_owned()],
        "{test}: audit reason"
    );
    assert!(reasons(&ua, "login_succeeded").is_empty());
    // No login transaction is left behind.
    assert!(app
        .table_items()
        .await
        .iter()
        .all(|i| !i["pk"].as_s().unwrap().starts_with("login#")));
    idp
}

/// Logs in under `scenario` and expects the login to succeed.
async fn accepted_at_callback(test: &str, idp: &Hostile, app: &App) -> Browser {
    let ua = user_agent(test);
    let mut browser = Browser::with_user_agent(&ua);
    let reply = hostile_login(app, &mut browser).await;
    assert_eq!(
        reply.status,
        StatusCode::FOUND,
        "{test}: {}: {:?}",
        reply.body,
        reasons(&ua, "login_failed")
    );
    assert_eq!(reply.location().unwrap(), app.url("/welcome"));
    assert!(sets_session(&reply));
    let me = browser.get(&app.url("/auth/session")).await;
    assert_eq!(me.status, StatusCode::OK, "{test}: {}", me.body);
    assert_eq!(me.json()["user"]["sub"], "hostile-user");
    assert_eq!(idp.stats().await["attacker_fetches"], 0);
    browser
}

async fn accepted(test: &str, scenario: Value) -> Hostile {
    let idp = Hostile::new().await;
    idp.scenario(scenario).await;
    let app = idp.app().await;
    accepted_at_callback(test, &idp, &app).await;
    idp
}

// ------------------------------------------------------------ the baseline --

#[tokio::test]
async fn rp_id_token_sig_rs256_a_well_behaved_provider_logs_in() {
    let idp = accepted("rp_id_token_sig_rs256", json!({ "name": "good" })).await;
    let stats = idp.stats().await;
    assert_eq!(stats["authorization_code_grants"], 1);
    assert_eq!(stats["discovery"], 1);
    assert_eq!(stats["jwks"], 1);
}

// ---------------------------------------------------------- ID token claims --

#[tokio::test]
async fn rp_id_token_issuer_mismatch() {
    refused_at_callback(
        "rp_id_token_issuer_mismatch",
        json!({"name": "wrong_iss"}),
        "iss",
    )
    .await;
}

#[tokio::test]
async fn rp_id_token_sub() {
    // No `sub` at all: the token does not even parse as an ID token.
    refused_at_callback(
        "rp_id_token_sub",
        json!({"name": "missing_sub"}),
        "unparseable",
    )
    .await;
}

#[tokio::test]
async fn rp_id_token_sub_empty() {
    refused_at_callback("rp_id_token_sub_empty", json!({"name": "empty_sub"}), "sub").await;
}

#[tokio::test]
async fn rp_id_token_aud() {
    refused_at_callback("rp_id_token_aud", json!({"name": "wrong_aud"}), "aud").await;
}

#[tokio::test]
async fn rp_id_token_aud_missing() {
    refused_at_callback(
        "rp_id_token_aud_missing",
        json!({"name": "missing_aud"}),
        "aud",
    )
    .await;
}

#[tokio::test]
async fn rp_id_token_aud_multiple_without_azp() {
    // An extra audience we do not trust is refused outright (OIDC Core
    // 3.1.3.7 step 3), before the `azp` rule would apply.
    refused_at_callback(
        "rp_id_token_aud_multiple_without_azp",
        json!({"name": "multiple_aud_without_azp"}),
        "aud",
    )
    .await;
}

#[tokio::test]
async fn rp_id_token_aud_multiple_untrusted_even_with_our_azp() {
    refused_at_callback(
        "rp_id_token_aud_multiple_with_azp",
        json!({"name": "multiple_aud_with_azp"}),
        "aud",
    )
    .await;
}

#[tokio::test]
async fn rp_id_token_azp_of_another_client() {
    refused_at_callback(
        "rp_id_token_azp_mismatch",
        json!({"name": "wrong_azp"}),
        "azp",
    )
    .await;
}

#[tokio::test]
async fn rp_id_token_iat() {
    refused_at_callback(
        "rp_id_token_iat",
        json!({"name": "missing_iat"}),
        "unparseable",
    )
    .await;
}

#[tokio::test]
async fn rp_id_token_exp_missing() {
    refused_at_callback(
        "rp_id_token_exp_missing",
        json!({"name": "missing_exp"}),
        "unparseable",
    )
    .await;
}

#[tokio::test]
async fn rp_id_token_expired() {
    refused_at_callback(
        "rp_id_token_expired",
        json!({"name": "expired"}),
        "exp_or_iat",
    )
    .await;
}

#[tokio::test]
async fn rp_id_token_iat_far_in_the_future() {
    refused_at_callback(
        "rp_id_token_iat_future",
        json!({"name": "issued_in_the_future"}),
        "exp_or_iat",
    )
    .await;
}

#[tokio::test]
async fn rp_nonce_invalid() {
    refused_at_callback("rp_nonce_invalid", json!({"name": "wrong_nonce"}), "nonce").await;
}

#[tokio::test]
async fn rp_nonce_missing_although_one_was_sent() {
    refused_at_callback(
        "rp_nonce_missing",
        json!({"name": "missing_nonce"}),
        "nonce",
    )
    .await;
}

#[tokio::test]
async fn rp_nonce_invalid_id_token_replayed_from_an_earlier_login() {
    let idp = Hostile::new().await;
    let app = idp.app().await;
    // A first, good login: the provider keeps its ID token.
    accepted_at_callback("rp_nonce_replay_first", &idp, &app).await;
    // The second login gets the first login's (validly signed) ID token.
    idp.scenario(json!({"name": "replayed_id_token"})).await;
    let ua = user_agent("rp_nonce_replay");
    let mut browser = Browser::with_user_agent(&ua);
    let reply = hostile_login(&app, &mut browser).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(!sets_session(&reply));
    assert_eq!(reasons(&ua, "login_failed"), vec!["nonce"]);
    assert_eq!(idp.stats().await["authorization_code_grants"], 2);
}

// ------------------------------------------------------ signatures and keys --

#[tokio::test]
async fn rp_id_token_sig_none() {
    refused_at_callback(
        "rp_id_token_sig_none",
        json!({"name": "alg_none"}),
        "signature",
    )
    .await;
}

#[tokio::test]
async fn rp_id_token_bad_sig_rs256() {
    refused_at_callback(
        "rp_id_token_bad_sig_rs256",
        json!({"name": "bad_signature"}),
        "signature",
    )
    .await;
}

#[tokio::test]
async fn rp_id_token_sig_hs256_keyed_with_the_providers_public_key() {
    refused_at_callback(
        "rp_id_token_hs256_public_key",
        json!({"name": "hs256_public_key"}),
        "alg",
    )
    .await;
}

#[tokio::test]
async fn rp_id_token_signed_by_a_key_the_provider_never_published() {
    let idp = refused_at_callback(
        "rp_id_token_unknown_signer",
        json!({"name": "unknown_signer"}),
        "no_matching_key",
    )
    .await;
    // Discovery fetched the JWKS, the unknown `kid` refetched it once.
    assert_eq!(idp.stats().await["jwks"], 2);
}

#[tokio::test]
async fn rp_unknown_kids_refetch_the_jwks_at_most_once_per_interval() {
    // Forged tokens naming unknown keys must not make us hammer the
    // provider: after one refetch for an unknown `kid`, the next ones wait
    // for JWKS_REFETCH_INTERVAL.
    let idp = Hostile::new().await;
    idp.scenario(json!({"name": "unknown_signer"})).await;
    let app = idp.app().await;
    for _ in 0..3 {
        let reply = hostile_login(&app, &mut Browser::new()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    }
    assert_eq!(idp.stats().await["jwks"], 2, "discovery, then one refetch");
}

async fn header_key_is_ignored(test: &str, scenario: &str) {
    let idp = refused_at_callback(test, json!({ "name": scenario }), "no_matching_key").await;
    assert_eq!(
        idp.stats().await["attacker_fetches"],
        0,
        "{test}: the key URL in the token header was fetched"
    );
}

#[tokio::test]
async fn rp_id_token_header_jwk_with_an_attacker_key() {
    header_key_is_ignored("rp_id_token_header_jwk", "header_jwk").await;
}

#[tokio::test]
async fn rp_id_token_header_jku_pointing_at_attacker_keys() {
    header_key_is_ignored("rp_id_token_header_jku", "header_jku").await;
}

#[tokio::test]
async fn rp_id_token_header_x5u_pointing_at_attacker_keys() {
    header_key_is_ignored("rp_id_token_header_x5u", "header_x5u").await;
}

#[tokio::test]
async fn rp_key_rotation_op_sign_key() {
    let idp = Hostile::new().await;
    let app = idp.app().await;
    accepted_at_callback("rp_key_rotation_before", &idp, &app).await;
    assert_eq!(idp.stats().await["jwks"], 1);
    // The provider rotates: the new key signs, the JWKS now has both.
    idp.scenario(json!({"name": "rotated_key"})).await;
    accepted_at_callback("rp_key_rotation_after", &idp, &app).await;
    assert_eq!(idp.stats().await["jwks"], 2, "the JWKS is refetched once");
    // And cached again: the next login needs no fetch.
    accepted_at_callback("rp_key_rotation_cached", &idp, &app).await;
    assert_eq!(idp.stats().await["jwks"], 2);
}

#[tokio::test]
async fn rp_key_rotation_op_sign_key_right_after_a_fetch() {
    let idp = Hostile::new().await;
    let app = idp.app().await;
    // Discovery (and the JWKS with the old key) happens at login start...
    let mut browser = Browser::with_user_agent(&user_agent("rp_key_rotation_fast"));
    let authorize = start_login(&app, &mut browser, "").await;
    // ...and the provider rotates its signing key before the user returns.
    idp.scenario(json!({"name": "rotated_key"})).await;
    let reply = browser.get(&at_provider(&authorize).await).await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    assert_eq!(idp.stats().await["jwks"], 2);
}

#[tokio::test]
async fn rp_id_token_kid_absent_single_jwks() {
    accepted(
        "rp_id_token_kid_absent_single_jwks",
        json!({"name": "kid_absent_single_jwks"}),
    )
    .await;
}

#[tokio::test]
async fn rp_id_token_kid_absent_multiple_jwks() {
    // OIDF allows either refusing or trying every key; we refuse: without a
    // `kid` the key is ambiguous (OIDC Core 10.1).
    refused_at_callback(
        "rp_id_token_kid_absent_multiple_jwks",
        json!({"name": "kid_absent_multiple_jwks"}),
        "ambiguous_key",
    )
    .await;
}

#[tokio::test]
async fn rp_jwks_with_unparseable_extra_keys_uses_the_good_one() {
    accepted(
        "rp_jwks_unparseable_extra_key",
        json!({"name": "unparseable_extra_key"}),
    )
    .await;
}

// ------------------------------------------------------- the token response --

#[tokio::test]
async fn rp_token_type_other_than_bearer() {
    for scenario in ["token_type_mac", "token_type_dpop"] {
        refused_at_callback("rp_token_type", json!({ "name": scenario }), "token_type").await;
    }
}

#[tokio::test]
async fn rp_token_response_without_id_token() {
    refused_at_callback(
        "rp_token_response_no_id_token",
        json!({"name": "no_id_token"}),
        "no_id_token",
    )
    .await;
}

#[tokio::test]
async fn rp_token_response_with_a_garbage_id_token() {
    refused_at_callback(
        "rp_token_response_garbage_id_token",
        json!({"name": "garbage_id_token"}),
        "unparseable",
    )
    .await;
}

#[tokio::test]
async fn rp_token_endpoint_refuses_the_code() {
    refused_at_callback(
        "rp_token_invalid_grant",
        json!({"name": "invalid_grant"}),
        "invalid_grant",
    )
    .await;
}

// ---------------------------------------------- the authorization response --

#[tokio::test]
async fn rp_authorization_response_iss_mismatch() {
    let idp = refused_at_callback(
        "rp_authorization_response_iss_mismatch",
        json!({"name": "authorize_wrong_iss"}),
        "iss_mismatch",
    )
    .await;
    // Refused before the code went anywhere (RFC 9207 mix-up defence).
    assert_eq!(idp.stats().await["authorization_code_grants"], 0);
    assert_eq!(idp.stats().await["token_errors"], 0);
}

#[tokio::test]
async fn rp_authorization_response_iss_missing_although_promised() {
    let idp = refused_at_callback(
        "rp_authorization_response_iss_missing",
        json!({"name": "authorize_no_iss"}),
        "iss_missing",
    )
    .await;
    assert_eq!(idp.stats().await["authorization_code_grants"], 0);
}

#[tokio::test]
async fn rp_authorization_response_error_ends_cleanly() {
    refused_at_callback(
        "rp_authorization_response_error",
        json!({"authorize_error": "access_denied"}),
        "provider_error",
    )
    .await;
}

// ---------------------------------------------------------------- discovery --

/// A provider whose metadata we must refuse: `/auth/login` answers 502 (the
/// provider is unusable, no redirect anywhere), audits the dependency and
/// writes nothing to the table.
async fn metadata_refused(test: &str, scenario: &str) {
    let idp = Hostile::new().await;
    idp.scenario(json!({ "name": scenario })).await;
    let app = idp.app().await;
    let ua = user_agent(test);
    let mut browser = Browser::with_user_agent(&ua);
    let reply = browser.get(&app.url("/auth/login")).await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_GATEWAY,
        "{test}: {}",
        reply.body
    );
    assert_eq!(reply.json()["error"], "server_error");
    assert!(reply.location().is_none());
    assert!(
        reply.set_cookies().is_empty(),
        "{test}: {:?}",
        reply.set_cookies()
    );
    assert_eq!(reasons(&ua, "dependency_failed"), vec!["identity_provider"]);
    assert!(app.table_items().await.is_empty());
    assert_eq!(idp.stats().await["authorize"], 0);
}

#[tokio::test]
async fn rp_discovery_issuer_not_matching_config() {
    metadata_refused(
        "rp_discovery_issuer_not_matching_config",
        "discovery_issuer_mismatch",
    )
    .await;
}

#[tokio::test]
async fn rp_discovery_metadata_without_s256() {
    metadata_refused("rp_discovery_without_s256", "discovery_without_s256").await;
}

#[tokio::test]
async fn rp_discovery_metadata_without_any_pkce_method() {
    metadata_refused("rp_discovery_no_pkce_methods", "discovery_no_pkce_methods").await;
}

// ------------------------------------------------------------------ refresh --

/// A good login, then `scenario` for the refresh: expects the session to end
/// (401, cookies cleared, `refresh_failed` with `reason`), and a copy of the
/// old cookies to be dead too.
async fn refresh_ends_session(test: &str, scenario: Value, reason: &str) {
    let idp = Hostile::new().await;
    let app = idp.app().await;
    let mut browser = accepted_at_callback(test, &idp, &app).await;
    let mut copy = browser.clone();
    idp.scenario(scenario.clone()).await;
    let ua = user_agent(test);
    let reply = browser
        .send(
            http::Method::POST,
            &app.url("/auth/refresh"),
            &[
                ("origin", app.base.as_str()),
                ("x-requested-with", "XMLHttpRequest"),
                ("user-agent", ua.as_str()),
            ],
            None,
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{test}: {scenario}: {}",
        reply.body
    );
    assert!(
        reply.clears("__Host-session"),
        "{test}: cookies not cleared"
    );
    assert!(reply.clears("__Secure-session-refresh"));
    assert_eq!(reasons(&ua, "refresh_failed"), vec![reason.to_owned()]);
    assert_eq!(
        browser.get(&app.url("/auth/session")).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The old cookies were recorded as revoked.
    let old = copy.get(&app.url("/auth/session")).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "{test}: {}", old.body);
    // One provider call at most (none when the provider refused outright).
    assert!(idp.stats().await["refresh_token_grants"].as_u64().unwrap() <= 1);
}

#[tokio::test]
async fn rp_refresh_id_token_with_another_sub_ends_the_session() {
    refresh_ends_session(
        "rp_refresh_other_sub",
        json!({"claims": {"sub": "someone-else"}}),
        "subject_changed",
    )
    .await;
}

#[tokio::test]
async fn rp_refresh_id_token_with_another_iss_ends_the_session() {
    refresh_ends_session(
        "rp_refresh_other_iss",
        json!({"name": "wrong_iss"}),
        "refused",
    )
    .await;
}

#[tokio::test]
async fn rp_refresh_id_token_with_another_aud_ends_the_session() {
    refresh_ends_session(
        "rp_refresh_other_aud",
        json!({"name": "wrong_aud"}),
        "refused",
    )
    .await;
}

#[tokio::test]
async fn rp_refresh_id_token_with_a_bad_signature_ends_the_session() {
    refresh_ends_session(
        "rp_refresh_bad_sig",
        json!({"name": "bad_signature"}),
        "refused",
    )
    .await;
}

#[tokio::test]
async fn rp_refresh_id_token_alg_none_ends_the_session() {
    refresh_ends_session(
        "rp_refresh_sig_none",
        json!({"name": "alg_none"}),
        "refused",
    )
    .await;
}

#[tokio::test]
async fn rp_refresh_token_type_other_than_bearer_ends_the_session() {
    refresh_ends_session(
        "rp_refresh_token_type",
        json!({"name": "token_type_mac"}),
        "refused",
    )
    .await;
}

#[tokio::test]
async fn rp_refresh_invalid_grant_ends_the_session() {
    refresh_ends_session(
        "rp_refresh_invalid_grant",
        json!({"name": "invalid_grant"}),
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn rp_refresh_without_id_token_or_new_refresh_token_keeps_the_user() {
    let idp = Hostile::new().await;
    let app = idp.app().await;
    let mut browser = accepted_at_callback("rp_refresh_no_id_token", &idp, &app).await;
    let refresh_token = |b: &Browser| app.refresh_token_in(&b.jar["__Secure-session-refresh"]);
    let before = refresh_token(&browser);
    // Authentik below its rotation threshold: no `refresh_token`, and here
    // no `id_token` either.
    idp.scenario(json!({"name": "no_id_token", "rotate_refresh": false}))
        .await;
    for _ in 0..2 {
        let reply = browser.post_as_site(&app, "/auth/refresh", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.json()["user"]["sub"], "hostile-user");
        assert_eq!(
            refresh_token(&browser),
            before,
            "the old refresh token is kept"
        );
    }
    // The same refresh token within the result window shares the first result.
    assert_eq!(idp.stats().await["refresh_token_grants"], 1);
}

#[tokio::test]
async fn rp_refresh_stale_cookie_copy_shares_the_one_provider_refresh() {
    // The provider rotates and treats reuse as theft: a tab still holding
    // the cookies from before a refresh must not present the old token again.
    let idp = Hostile::new().await;
    let app = idp.app().await;
    let mut browser = accepted_at_callback("rp_refresh_reuse", &idp, &app).await;
    let mut stale = browser.clone();
    let first = browser.post_as_site(&app, "/auth/refresh", None).await;
    assert_eq!(first.status, StatusCode::OK);
    // Within the result window the stale copy shares the first result...
    let shared = stale.post_as_site(&app, "/auth/refresh", None).await;
    assert_eq!(shared.status, StatusCode::OK, "{}", shared.body);
    assert_eq!(idp.stats().await["refresh_token_grants"], 1);
    assert_eq!(
        browser.get(&app.url("/auth/session")).await.json()["user"]["sub"],
        "hostile-user"
    );
}

// --------------------------------------------------- nothing answers 5xx --

/// Every hostile ID token scenario, through the callback of one app, in one
/// pass: none may answer anything but 302 (accepted) or 400.
#[tokio::test]
async fn no_hostile_token_scenario_gets_a_5xx() {
    let idp = Hostile::new().await;
    let app = idp.app().await;
    let started = Instant::now();
    for scenario in [
        "wrong_iss",
        "missing_sub",
        "empty_sub",
        "wrong_aud",
        "missing_aud",
        "multiple_aud_without_azp",
        "wrong_azp",
        "missing_iat",
        "missing_exp",
        "expired",
        "issued_in_the_future",
        "wrong_nonce",
        "missing_nonce",
        "alg_none",
        "bad_signature",
        "hs256_public_key",
        "header_jwk",
        "header_jku",
        "header_x5u",
        "token_type_mac",
        "no_id_token",
        "garbage_id_token",
        "invalid_grant",
        "authorize_wrong_iss",
        "authorize_no_iss",
        "replayed_id_token",
    ] {
        idp.scenario(json!({ "name": scenario })).await;
        let mut browser = Browser::new();
        let reply = hostile_login(&app, &mut browser).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{scenario}: {}",
            reply.body
        );
        assert!(!sets_session(&reply), "{scenario}");
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}

// ------------------------------------------------------ back-channel logout --

const BACKCHANNEL_EVENT: &str = static_login::oidc::logout_token::BACKCHANNEL_EVENT;

/// A well-formed logout token's claims for the hostile user.
fn logout_claims() -> Value {
    json!({
        "iss": "$issuer",
        "aud": "$client_id",
        "sub": "hostile-user",
        "jti": format!("{:016x}", rand::random::<u64>()),
        "events": { BACKCHANNEL_EVENT: {} },
    })
}

/// The provider's server-to-server call to the back-channel endpoint.
async fn backchannel(app: &App, jwt: &str) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", jwt)
        .finish();
    Browser::new()
        .send(
            http::Method::POST,
            &app.url("/auth/backchannel-logout"),
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(body),
        )
        .await
}

#[tokio::test]
async fn backchannel_logout_from_the_provider_ends_the_session() {
    let idp = Hostile::new().await;
    let app = idp.app().await;
    let mut browser = accepted_at_callback("backchannel_good", &idp, &app).await;
    let jwt = idp
        .sign(json!({ "claims": logout_claims(), "time_offsets": { "iat": 0 } }))
        .await;
    let reply = backchannel(&app, &jwt).await;
    assert!(
        reply.status.is_success(),
        "{}: {}",
        reply.status,
        reply.body
    );
    assert_eq!(
        browser.get(&app.url("/auth/session")).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The same token again is a replay.
    assert_eq!(
        backchannel(&app, &jwt).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn backchannel_hostile_logout_tokens_are_refused_and_end_nothing() {
    let idp = Hostile::new().await;
    let app = idp.app().await;
    let mut browser = accepted_at_callback("backchannel_hostile", &idp, &app).await;
    let with = |field: &str, value: Value| {
        let mut c = logout_claims();
        c[field] = value;
        c
    };
    let without = |field: &str| {
        let mut c = logout_claims();
        c.as_object_mut().unwrap().remove(field);
        c
    };
    let now = json!({ "iat": 0 });
    let cases = [
        (
            "alg none",
            json!({ "claims": logout_claims(), "time_offsets": now, "sign": "none" }),
        ),
        (
            "bad signature",
            json!({ "claims": logout_claims(), "time_offsets": now, "sign": "bad_signature" }),
        ),
        (
            "HS256 with the public key",
            json!({ "claims": logout_claims(), "time_offsets": now, "sign": "hs256_public_key" }),
        ),
        (
            "attacker key in the header",
            json!({ "claims": logout_claims(), "time_offsets": now, "sign": "attacker", "header": { "jwk": "$attacker_jwk" } }),
        ),
        (
            "wrong iss",
            json!({ "claims": with("iss", json!("https://evil.example/")), "time_offsets": now }),
        ),
        (
            "wrong aud",
            json!({ "claims": with("aud", json!("another-client")), "time_offsets": now }),
        ),
        (
            "an ID token (nonce)",
            json!({ "claims": with("nonce", json!("n")), "time_offsets": now }),
        ),
        (
            "no events",
            json!({ "claims": without("events"), "time_offsets": now }),
        ),
        (
            "no sub or sid",
            json!({ "claims": without("sub"), "time_offsets": now }),
        ),
        (
            "no jti",
            json!({ "claims": without("jti"), "time_offsets": now }),
        ),
        (
            "old",
            json!({ "claims": logout_claims(), "time_offsets": { "iat": -3600 } }),
        ),
        (
            "from the future",
            json!({ "claims": logout_claims(), "time_offsets": { "iat": 3600 } }),
        ),
        (
            "expired",
            json!({ "claims": logout_claims(), "time_offsets": { "iat": 0, "exp": -600 } }),
        ),
        ("garbage payload", json!({ "payload": "{\"iss\":" })),
    ];
    for (what, spec) in cases {
        let jwt = idp.sign(spec).await;
        let reply = backchannel(&app, &jwt).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            reply.body
        );
    }
    let garbage = backchannel(&app, "not.a.jwt").await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert_eq!(idp.stats().await["attacker_fetches"], 0);
    let me = browser.get(&app.url("/auth/session")).await;
    assert_eq!(
        me.status,
        StatusCode::OK,
        "a refused token ended the session"
    );
}

#[tokio::test]
async fn backchannel_logout_token_expiring_at_the_end_of_time_is_answered_cleanly() {
    let idp = Hostile::new().await;
    let app = idp.app().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = logout_claims();
    claims["iss"] = json!(idp.issuer);
    claims["aud"] = json!(idp.client_id);
    claims["iat"] = json!(now);
    claims["exp"] = json!(u64::MAX);
    let jwt = idp.sign(json!({ "payload": claims.to_string() })).await;
    let reply = reqwest::Client::new()
        .post(app.url("/auth/backchannel-logout"))
        .form(&[("logout_token", jwt)])
        .send()
        .await
        .expect("the handler died instead of answering");
    // A token that never expires is valid; refusing it would be acceptable.
    assert!(
        reply.status().is_success() || reply.status() == StatusCode::BAD_REQUEST,
        "{}",
        reply.status()
    );
}
