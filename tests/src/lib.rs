//! The integration test helper: starts DynamoDB Local and the oidc-provider
//! test IdP once per test run (through the project's own scripts), gives each
//! test its own table, client registration and in-process `local-gateway`,
//! and drives logins over real HTTP the way a browser would.
//!
//! Set `TEST_LOG=1` to see the servers' and the handlers' logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use serde_json::{json, Value};
use static_login::config::Config;
use static_login::session::UnixTime;
use static_login::store::{DynamoStore, Store, StoreError};
use static_login::AppState;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub use reqwest::StatusCode;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A server process that dies with the test binary: it runs under `sh`,
/// which kills it when our end of its stdin closes (at exit, even on panic).
struct Server {
    _child: Child,
    _stdin: ChildStdin,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server(
    what: &str,
    args: &[&str],
    env: &[(&str, String)],
    ready: &str,
) -> Result<(Server, String)> {
    which("node").with_context(|| format!("{what} needs Node.js (`node` on PATH)"))?;
    if !repo_root().join("node_modules").exists() {
        bail!("{what}: node_modules is missing; run `npm ci` at the repository root (scripts/test does)");
    }
    let script = "node \"$@\" & child=$!; read _; kill $child 2>/dev/null; wait $child";
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg("sh").args(args);
    cmd.current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if std::env::var_os("TEST_LOG").is_none() {
        cmd.stderr(Stdio::null());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = loop {
        match lines.next() {
            Some(Ok(line)) if line.contains(ready) => break line,
            Some(Ok(_)) => continue,
            _ => bail!("{what} exited before it was ready (run with TEST_LOG=1 to see why)"),
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    let address = line.rsplit(' ').next().unwrap_or_default().to_owned();
    Ok((
        Server {
            _child: child,
            _stdin: stdin,
        },
        address,
    ))
}

/// A Node.js server a test module starts itself (e.g. `tests/idp/hostile.mjs`):
/// stopped when dropped, and in any case when the test binary exits.
pub struct NodeServer {
    _server: Server,
    /// The last word of its ready line (its URL, by convention).
    pub address: String,
}

/// Starts `node ARGS...` from the repository root and waits for a stdout line
/// containing `ready`.
pub fn start_node_server(
    what: &str,
    args: &[&str],
    env: &[(&str, String)],
    ready: &str,
) -> Result<NodeServer> {
    let (server, address) = start_server(what, args, env, ready)?;
    Ok(NodeServer {
        _server: server,
        address,
    })
}

/// The audit lines (parsed) written so far for requests with this
/// `User-Agent`: give each test's browser its own (`Browser::with_user_agent`)
/// to find its lines among those of tests running in parallel.
pub fn audit_events(user_agent: &str) -> Vec<Value> {
    captured_logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "audit" && v["user_agent"] == user_agent)
        .collect()
}

fn which(program: &str) -> Result<()> {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()?
        .success();
    if ok {
        Ok(())
    } else {
        Err(anyhow!("{program} not found"))
    }
}

/// DynamoDB Local and the test IdP, shared by all tests of the run.
pub struct Stack {
    /// DynamoDB Local endpoint.
    pub dynamodb: String,
    /// The test IdP's issuer.
    pub issuer: String,
    _servers: Vec<Server>,
}

static STACK: OnceLock<Stack> = OnceLock::new();
static STACK_LOCK: Mutex<()> = Mutex::new(());

/// Test clients use the same TLS provider as the functions (the workspace
/// builds reqwest without one of its own).
pub fn install_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

impl Stack {
    /// Starts the shared servers on first use.
    pub fn get() -> &'static Stack {
        install_tls_provider();
        let _guard = STACK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        STACK.get_or_init(|| {
            init_logs();
            which("java").expect("DynamoDB Local needs Java 17+ (`java` on PATH)");
            let dynamo_port = free_port().to_string();
            let (dynamo, dynamodb) = start_server(
                "DynamoDB Local",
                &["scripts/dynamodb-local.mjs", "--port", &dynamo_port],
                &[],
                "dynamodb-local ready on",
            )
            .unwrap();
            let idp_port = free_port();
            let issuer = format!("http://127.0.0.1:{idp_port}");
            let (idp, _) = start_server(
                "the test IdP",
                &["tests/idp/server.mjs"],
                &[
                    ("IDP_PORT", idp_port.to_string()),
                    ("IDP_ISSUER", issuer.clone()),
                    ("IDP_ACCESS_TOKEN_TTL", "300".into()),
                ],
                "idp ready on",
            )
            .unwrap();
            Stack {
                dynamodb,
                issuer,
                _servers: vec![dynamo, idp],
            }
        })
    }

    /// An SDK client for DynamoDB Local.
    pub async fn dynamo_client(&self) -> aws_sdk_dynamodb::Client {
        let creds =
            aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "tests");
        let config = static_login::store::dynamo::sdk_config_overrides(aws_config::defaults(
            aws_config::BehaviorVersion::latest(),
        ))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(&self.dynamodb)
        .load()
        .await;
        aws_sdk_dynamodb::Client::new(&config)
    }
}

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

#[derive(Clone, Copy)]
struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line the handlers wrote so far in this test run (JSON lines),
/// including the audit trail, at the most verbose level our code logs.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug,aws_smithy_runtime=info,aws_sdk_dynamodb=info,hyper=info,hyper_util=info,reqwest=info,h2=info,rustls=info"))
        .with_writer(|| LogSink)
        .try_init();
}

/// Creates a table exactly as the template does: `pk` string key, on-demand, TTL on `expires_at`.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<()> {
    let created = client
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => {}
        // The SDK retried an attempt that timed out on a busy DynamoDB Local
        // but had created the table: it is ours (the names are random).
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(e) => return Err(e.into()),
    }
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

/// Options for one test's app.
#[derive(Debug, Clone)]
pub struct Options {
    /// `SESSION_HANDOFF`.
    pub handoff: &'static str,
    /// Extra or overriding environment variables for the config.
    pub vars: Vec<(&'static str, String)>,
    /// Extra client metadata at registration (`test_refresh_rotation`, ...).
    pub client_metadata: Value,
    /// Point the app at another issuer (e.g. a dead one).
    pub issuer: Option<String>,
    /// Point the app at another DynamoDB endpoint (e.g. a dead one).
    pub dynamodb: Option<String>,
    /// Use this client id and secret instead of registering a client at the
    /// test IdP (for a provider of the test's own, e.g. the hostile one).
    pub client: Option<(String, String)>,
    /// Serve this folder (relative to the repository root) like `STATIC_DIR`.
    pub static_dir: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            handoff: "cookie",
            vars: Vec::new(),
            client_metadata: json!({}),
            issuer: None,
            dynamodb: None,
            client: None,
            static_dir: None,
        }
    }
}

/// One test's gateway, table and client registration.
pub struct App {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its table.
    pub table: String,
    /// The client id registered at the IdP.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// The config it runs with.
    pub config: Config,
    /// The stack.
    pub stack: &'static Stack,
    /// Table calls and round trips made by the handlers.
    pub table_calls: Arc<TableCounter>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fresh base64 cookie key.
pub fn cookie_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

impl App {
    /// The provider tokens inside a sealed `__Secure-session-tokens` value,
    /// opened with the app's keys (tests look inside; browsers cannot).
    pub fn tokens_in(&self, sealed: &str) -> static_login::session::Tokens {
        self.config
            .cookie_keys
            .open_json(static_login::cookies::TOKENS, sealed)
            .expect("a tokens cookie sealed by this app")
    }

    /// The refresh token inside a sealed `__Secure-session-refresh` value.
    pub fn refresh_token_in(&self, sealed: &str) -> String {
        let refresh: static_login::session::Refresh = self
            .config
            .cookie_keys
            .open_json(static_login::cookies::REFRESH, sealed)
            .expect("a refresh cookie sealed by this app");
        refresh
            .refresh_token
            .expect("the session has a refresh token")
            .expose()
            .to_owned()
    }

    /// Starts an app with default options.
    pub async fn spawn() -> App {
        Self::spawn_with(Options::default()).await
    }

    /// Starts an app.
    pub async fn spawn_with(options: Options) -> App {
        let stack = Stack::get();
        let dynamo = stack.dynamo_client().await;
        let table = format!("t{}", rand::random::<u64>());
        create_table(&dynamo, &table).await.expect("create table");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (client_id, client_secret) = match options.client.clone() {
            Some(client) => client,
            None => register_client(stack, &base, &options.client_metadata)
                .await
                .unwrap(),
        };

        let mut vars: HashMap<&str, String> = HashMap::from([
            (
                "OIDC_ISSUER",
                options
                    .issuer
                    .clone()
                    .unwrap_or_else(|| stack.issuer.clone()),
            ),
            ("OIDC_CLIENT_ID", client_id.clone()),
            ("OIDC_CLIENT_SECRET", client_secret.clone()),
            ("OIDC_REDIRECT_URI", format!("{base}/auth/callback")),
            ("ALLOWED_ORIGINS", format!("{base},http://localhost:5999")),
            ("DEFAULT_RETURN_TO", format!("{base}/")),
            ("POST_LOGOUT_REDIRECT_URI", format!("{base}/")),
            ("COOKIE_KEYS", cookie_key()),
            ("TABLE_NAME", table.clone()),
            ("SESSION_HANDOFF", options.handoff.to_owned()),
        ]);
        for (k, v) in options.vars {
            vars.insert(k, v);
        }
        let config = Config::from_source(&vars).unwrap();
        let store_client = match &options.dynamodb {
            Some(endpoint) => {
                let creds = aws_sdk_dynamodb::config::Credentials::new(
                    "local", "local", None, None, "tests",
                );
                let conf = static_login::store::dynamo::sdk_config_overrides(aws_config::defaults(
                    aws_config::BehaviorVersion::latest(),
                ))
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(creds)
                .endpoint_url(endpoint)
                .load()
                .await;
                aws_sdk_dynamodb::Client::new(&conf)
            }
            None => dynamo,
        };
        let table_calls = Arc::new(TableCounter::default());
        let store = CountingStore {
            inner: DynamoStore::new(store_client, table.clone()),
            counter: table_calls.clone(),
        };
        let state = AppState::new(config.clone(), store).unwrap();
        let gateway = local_gateway::Gateway {
            state,
            static_dir: options.static_dir.map(|d| repo_root().join(d)),
        };
        let task = tokio::spawn(async move {
            let _ = local_gateway::serve(listener, gateway).await;
        });
        App {
            base,
            table,
            client_id,
            client_secret,
            config,
            stack,
            table_calls,
            task,
        }
    }

    /// A URL on this app.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The IdP's counters for this client.
    pub async fn idp_stats(&self) -> Value {
        reqwest::get(format!(
            "{}/__test/stats?client_id={}",
            self.stack.issuer, self.client_id
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
    }

    /// Every item in this app's table.
    pub async fn table_items(
        &self,
    ) -> Vec<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let client = self.stack.dynamo_client().await;
        client
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }
}

async fn register_client(stack: &Stack, base: &str, extra: &Value) -> Result<(String, String)> {
    let mut body = json!({
        "redirect_uris": [format!("{base}/auth/callback")],
        "post_logout_redirect_uris": [format!("{base}/")],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "application_type": "web",
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let response = reqwest::Client::new()
        .post(format!("{}/reg", stack.issuer))
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let json: Value = response.json().await?;
    if !status.is_success() {
        bail!("client registration failed: {status} {json}");
    }
    Ok((
        json["client_id"].as_str().unwrap_or_default().to_owned(),
        json["client_secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    ))
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body text.
    pub body: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// `Location`.
    pub fn location(&self) -> Option<String> {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Every `Set-Cookie` value.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// Whether the response deletes the named cookie.
    pub fn clears(&self, name: &str) -> bool {
        self.set_cookies()
            .iter()
            .any(|c| c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0"))
    }
}

/// A browser-like client with a cookie jar per host (ports ignored, as
/// browsers do not separate cookies by port; we keep the app and the IdP
/// apart by giving each its own `Browser`).
#[derive(Clone)]
pub struct Browser {
    http: reqwest::Client,
    /// name -> value.
    pub jar: BTreeMap<String, String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A browser with an empty jar.
    pub fn new() -> Self {
        install_tls_provider();
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: BTreeMap::new(),
        }
    }

    /// A browser with an empty jar that sends this `User-Agent` (which the
    /// audit lines carry: see [`audit_events`]).
    pub fn with_user_agent(user_agent: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(user_agent)
                .build()
                .unwrap(),
            jar: BTreeMap::new(),
        }
    }

    /// The `Cookie` header for the jar.
    pub fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn absorb(&mut self, headers: &http::HeaderMap) {
        for value in headers.get_all("set-cookie") {
            let Ok(text) = value.to_str() else { continue };
            let Ok(cookie) = cookie::Cookie::parse(text.to_owned()) else {
                continue;
            };
            let expired = cookie
                .max_age()
                .is_some_and(|a| a.is_zero() || a.is_negative());
            if expired || cookie.value().is_empty() {
                self.jar.remove(cookie.name());
            } else {
                self.jar
                    .insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
        }
    }

    /// Sends a request with the jar and extra headers; records cookies.
    pub async fn send(
        &mut self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        let mut request = self.http.request(method, url);
        if !self.jar.is_empty() {
            request = request.header("cookie", self.cookie_header());
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("request failed");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        self.absorb(&headers);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// GET.
    pub async fn get(&mut self, url: &str) -> Reply {
        self.send(http::Method::GET, url, &[], None).await
    }

    /// A state-changing POST as the JS client sends it (Origin + X-Requested-With).
    pub async fn post_as_site(&mut self, app: &App, path: &str, body: Option<String>) -> Reply {
        let origin = app.base.clone();
        self.send(
            http::Method::POST,
            &app.url(path),
            &[
                ("origin", &origin),
                ("x-requested-with", "XMLHttpRequest"),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
    }
}

/// The user's side of a login at the IdP, from the authorization URL to the
/// redirect back to our callback: returns the callback URL.
pub async fn sign_in_at_idp(
    idp: &mut Browser,
    authorize_url: &str,
    login: &str,
    password: &str,
) -> Result<String> {
    let mut url = authorize_url.to_owned();
    for _ in 0..10 {
        let reply = idp.get(&url).await;
        let Some(location) = reply.location() else {
            bail!(
                "IdP answered {} without a redirect: {}",
                reply.status,
                reply.body
            );
        };
        let next = url::Url::parse(&url)?.join(&location)?.to_string();
        if next.contains("/auth/callback") {
            return Ok(next);
        }
        if next.contains("/interaction/") {
            let page = idp.get(&next).await;
            if page.status.is_redirection() {
                url = url::Url::parse(&next)?
                    .join(&page.location().unwrap_or_default())?
                    .to_string();
                if url.contains("/auth/callback") {
                    return Ok(url);
                }
                continue;
            }
            let form = form_urlencoded::Serializer::new(String::new())
                .append_pair("login", login)
                .append_pair("password", password)
                .finish();
            let submitted = idp
                .send(
                    http::Method::POST,
                    &format!("{}/login", next.trim_end_matches('/')),
                    &[("content-type", "application/x-www-form-urlencoded")],
                    Some(form),
                )
                .await;
            let Some(after) = submitted.location() else {
                bail!(
                    "login form answered {}: {}",
                    submitted.status,
                    submitted.body
                );
            };
            url = url::Url::parse(&next)?.join(&after)?.to_string();
            continue;
        }
        url = next;
    }
    bail!("too many redirects at the IdP")
}

/// Starts a login in `browser` (`GET /auth/login{query}`) and signs in at
/// the IdP with `idp`; returns the callback URL the IdP sent the user to,
/// not yet visited.
pub async fn begin_login(
    app: &App,
    browser: &mut Browser,
    idp: &mut Browser,
    query: &str,
    user: &str,
) -> String {
    let start = browser.get(&app.url(&format!("/auth/login{query}"))).await;
    assert_eq!(
        start.status,
        StatusCode::FOUND,
        "login start: {}",
        start.body
    );
    let password = format!("{user}-password");
    sign_in_at_idp(idp, &start.location().unwrap(), user, &password)
        .await
        .unwrap()
}

/// A completed login in one browser.
pub struct LoggedIn {
    /// The browser holding the app's cookies.
    pub browser: Browser,
    /// The browser holding the IdP's cookies.
    pub idp: Browser,
    /// The callback's response.
    pub callback: Reply,
}

/// Logs in as `alice` (or any user) through the real IdP.
pub async fn login(app: &App, user: &str, password: &str) -> LoggedIn {
    let mut browser = Browser::new();
    let mut idp = Browser::new();
    let start = browser
        .get(&app.url("/auth/login?return_to=%2Fwelcome"))
        .await;
    assert_eq!(
        start.status,
        StatusCode::FOUND,
        "login start: {}",
        start.body
    );
    let callback_url = sign_in_at_idp(&mut idp, &start.location().unwrap(), user, password)
        .await
        .unwrap();
    let callback = browser.get(&callback_url).await;
    LoggedIn {
        browser,
        idp,
        callback,
    }
}

/// A one-shot HTTP endpoint that records the body of the first POST it gets
/// (e.g. a logout token the IdP sends) and answers 200.
pub struct Capture {
    /// Its URL.
    pub url: String,
    body: tokio::sync::oneshot::Receiver<String>,
}

impl Capture {
    /// Listens on a free loopback port.
    pub async fn start() -> Capture {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/capture",
            listener.local_addr().unwrap().port()
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let Ok(n) = stream.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                        let _ = tx.send(body[..len].to_owned());
                        return;
                    }
                }
            }
        });
        Capture { url, body: rx }
    }

    /// The recorded body.
    pub async fn body(self) -> String {
        tokio::time::timeout(std::time::Duration::from_secs(10), self.body)
            .await
            .unwrap()
            .unwrap()
    }
}

/// Counts table calls, and round trips of latency: calls that overlap in
/// time (run concurrently) share one round trip.
#[derive(Debug, Default)]
pub struct TableCounter {
    calls: AtomicUsize,
    round_trips: AtomicUsize,
    in_flight: AtomicUsize,
}

impl TableCounter {
    /// Starts counting from zero.
    pub fn reset(&self) {
        self.calls.store(0, Ordering::SeqCst);
        self.round_trips.store(0, Ordering::SeqCst);
    }

    /// (calls, round trips) since the last reset.
    pub fn read(&self) -> (usize, usize) {
        (
            self.calls.load(Ordering::SeqCst),
            self.round_trips.load(Ordering::SeqCst),
        )
    }

    async fn track<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            self.round_trips.fetch_add(1, Ordering::SeqCst);
        }
        let out = call.await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        out
    }
}

/// The real store, counted.
pub struct CountingStore {
    inner: DynamoStore,
    counter: Arc<TableCounter>,
}

impl Store for CountingStore {
    async fn insert_new(
        &self,
        pk: &str,
        data: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.counter
            .track(self.inner.insert_new(pk, data, expires_at, now))
            .await
    }
    async fn put(&self, pk: &str, data: &str, expires_at: UnixTime) -> Result<(), StoreError> {
        self.counter
            .track(self.inner.put(pk, data, expires_at))
            .await
    }
    async fn take(&self, pk: &str, now: UnixTime) -> Result<Option<String>, StoreError> {
        self.counter.track(self.inner.take(pk, now)).await
    }
    async fn get(&self, pk: &str, now: UnixTime) -> Result<Option<String>, StoreError> {
        self.counter.track(self.inner.get(pk, now)).await
    }
    async fn get_many(
        &self,
        pks: &[String],
        now: UnixTime,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.counter.track(self.inner.get_many(pks, now)).await
    }
    async fn delete(&self, pk: &str) -> Result<(), StoreError> {
        self.counter.track(self.inner.delete(pk)).await
    }
    async fn increment(&self, pk: &str, expires_at: UnixTime) -> Result<u64, StoreError> {
        self.counter
            .track(self.inner.increment(pk, expires_at))
            .await
    }
}
