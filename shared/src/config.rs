//! Configuration: every environment variable is read and validated here, once,
//! at cold start. Nothing else in the crate touches `std::env`; tests build a
//! [`Config`] directly.

use std::collections::BTreeMap;
use std::time::Duration;

use url::Url;

use crate::cloudfront::CookieSigner;
use crate::cookies::KeyRing;
use crate::ratelimit::{EndpointClass, Limit};
use crate::redirect::{Origin, RedirectPolicy};
use crate::secret::Secret;

/// A variable that is missing or malformed; names the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with it (never contains a secret value).
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

/// Every bad variable at once, so an operator fixes them in one deploy.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// How a finished login reaches the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// The site and `/auth/*` share an origin: set cookies and redirect.
    Cookie,
    /// The site lives elsewhere: redirect with a one-time code in the fragment.
    Exchange,
}

/// Which optional authorization request parameters `GET /auth/login` forwards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Passthrough {
    /// `prompt` (login, consent, select_account, none).
    pub prompt: bool,
    /// `login_hint`.
    pub login_hint: bool,
    /// `max_age`; when sent, `auth_time` is checked on the ID token.
    pub max_age: bool,
    /// `acr_values`.
    pub acr_values: bool,
}

/// The validated configuration of every function.
#[derive(Debug, Clone)]
pub struct Config {
    /// Exact issuer as configured (compared byte for byte with the metadata and
    /// every `iss`); discovery is `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret (confidential client); only the functions that
    /// call the token or revocation endpoint get it (least privilege).
    pub client_secret: Option<Secret>,
    /// The callback URL registered at the provider.
    pub redirect_uri: Url,
    /// Requested scopes, space separated on the wire.
    pub scopes: Vec<String>,
    /// Where redirects may go, and which origins may call the POST endpoints.
    pub redirects: RedirectPolicy,
    /// Where the user lands after login when no `return_to` was given.
    pub default_return_to: Url,
    /// Where the provider sends the user after RP-initiated logout.
    pub post_logout_redirect_uri: Url,
    /// Cookie sealing keys, newest first.
    pub cookie_keys: KeyRing,
    /// The DynamoDB table.
    pub table_name: String,
    /// Cookie or exchange hand-off.
    pub handoff: Handoff,
    /// Idle timeout of a session.
    pub idle_timeout: Duration,
    /// Absolute timeout of a session.
    pub absolute_timeout: Duration,
    /// Lifetime of an exchange code.
    pub exchange_code_ttl: Duration,
    /// Optional authorization parameters forwarded by `/auth/login`.
    pub passthrough: Passthrough,
    /// Per-IP request limits per endpoint class.
    pub rate_limits: BTreeMap<EndpointClass, Limit>,
    /// Site paths CloudFront protects with signed cookies (`/members/*`).
    pub protected_paths: Vec<String>,
    /// Signs those cookies, when this function has the key.
    pub cloudfront: Option<CookieSigner>,
    /// Only members of one of these groups get a session.
    pub allowed_groups: Option<Vec<String>>,
    /// `acr` values accepted (and requested as `acr_values`).
    pub required_acr: Option<Vec<String>>,
    /// `max_age` always sent; `auth_time` must be this recent.
    pub max_age: Option<u64>,
}

/// Where configuration values come from: the process environment, or a map in tests.
pub trait Source {
    /// The raw value of a variable, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct Env;

impl Source for Env {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<S: ::std::hash::BuildHasher> Source for std::collections::HashMap<&str, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Defaults shared by the docs, the template and the code.
pub mod defaults {
    /// Scopes: Authentik issues refresh tokens only with `offline_access`.
    pub const SCOPES: &str = "openid profile email offline_access";
    /// Idle timeout, seconds.
    pub const IDLE_TIMEOUT_SECS: u64 = 1800;
    /// Absolute timeout, seconds.
    pub const ABSOLUTE_TIMEOUT_SECS: u64 = 28_800;
    /// Exchange code lifetime, seconds.
    pub const EXCHANGE_CODE_TTL_SECS: u64 = 60;
    /// Optional authorization parameters forwarded by default.
    pub const PASSTHROUGH: &str = "prompt,login_hint,max_age";
}

impl Config {
    /// Reads the process environment (plus secrets already resolved into it).
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_source(&Env)
    }

    /// Parses every variable, collecting all errors.
    pub fn from_source(src: &impl Source) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();

        let issuer = keep(
            &mut errors,
            required(src, "OIDC_ISSUER").and_then(|v| parse_issuer(&v)),
        );
        let client_id = keep(&mut errors, required(src, "OIDC_CLIENT_ID"));
        // Optional here: only the functions that call the token endpoint
        // require it (`state::Function`), the others never receive it.
        let client_secret = src
            .var("OIDC_CLIENT_SECRET")
            .filter(|v| !v.trim().is_empty())
            .map(|v| Secret::new(v.trim()));
        let redirect_uri = keep(
            &mut errors,
            required(src, "OIDC_REDIRECT_URI").and_then(|v| absolute_url("OIDC_REDIRECT_URI", &v)),
        );
        let scopes = keep(&mut errors, scopes(src));
        let origins = keep(&mut errors, origins(src));
        let cookie_keys = keep(
            &mut errors,
            required(src, "COOKIE_KEYS").and_then(|v| {
                KeyRing::parse(&v).map_err(|e| ConfigError::new("COOKIE_KEYS", e.to_string()))
            }),
        );
        let table_name = keep(&mut errors, required(src, "TABLE_NAME"));
        let handoff = keep(&mut errors, handoff(src));
        let idle = keep(
            &mut errors,
            secs_or(
                src,
                "SESSION_IDLE_TIMEOUT_SECS",
                defaults::IDLE_TIMEOUT_SECS,
            ),
        );
        let absolute = keep(
            &mut errors,
            secs_or(
                src,
                "SESSION_ABSOLUTE_TIMEOUT_SECS",
                defaults::ABSOLUTE_TIMEOUT_SECS,
            ),
        );
        let exchange_ttl = keep(
            &mut errors,
            secs_or(
                src,
                "EXCHANGE_CODE_TTL_SECS",
                defaults::EXCHANGE_CODE_TTL_SECS,
            ),
        );
        let passthrough = keep(&mut errors, passthrough(src));
        let rate_limits = keep(&mut errors, rate_limits(src));

        // The redirect policy needs the origins and the API's own origin.
        let redirects = match (&origins, &redirect_uri) {
            (Some(o), Some(r)) => Some(RedirectPolicy::new(Origin::of(r), o.clone())),
            _ => None,
        };
        let target = |var: &'static str, default: Option<&str>| {
            let raw = src
                .var(var)
                .filter(|v| !v.is_empty())
                .or(default.map(str::to_owned));
            match (raw, &redirects) {
                (None, _) => Err(ConfigError::new(var, "is required")),
                (Some(v), Some(p)) => p
                    .check(&v)
                    .map_err(|e| ConfigError::new(var, format!("not an allowed target: {e}"))),
                (Some(_), None) => Err(ConfigError::new(
                    var,
                    "needs ALLOWED_ORIGINS and OIDC_REDIRECT_URI",
                )),
            }
        };
        let protected_paths = keep(&mut errors, protected_paths(src));
        let cloudfront = match (&protected_paths, &redirect_uri) {
            (Some(paths), Some(redirect)) if !paths.is_empty() => {
                keep(&mut errors, cloudfront_signer(src, paths.clone(), redirect)).flatten()
            }
            _ => None,
        };
        let allowed_groups = list(src, "ALLOWED_GROUPS");
        let required_acr = list(src, "REQUIRED_ACR");
        let max_age = keep(&mut errors, optional_secs(src, "MAX_AGE")).flatten();
        let default_return_to = keep(&mut errors, target("DEFAULT_RETURN_TO", Some("/")));
        let post_logout = keep(&mut errors, target("POST_LOGOUT_REDIRECT_URI", None));

        if let (Some(i), Some(a)) = (idle, absolute) {
            if i > a {
                errors.push(ConfigError::new(
                    "SESSION_IDLE_TIMEOUT_SECS",
                    "must not exceed SESSION_ABSOLUTE_TIMEOUT_SECS",
                ));
            }
        }

        match (
            issuer,
            client_id,
            client_secret,
            redirect_uri,
            scopes,
            redirects,
            default_return_to,
            post_logout,
            cookie_keys,
            table_name,
            handoff,
            idle,
            absolute,
            exchange_ttl,
            passthrough,
            rate_limits,
            protected_paths,
        ) {
            (
                Some(issuer),
                Some(client_id),
                client_secret,
                Some(redirect_uri),
                Some(scopes),
                Some(redirects),
                Some(default_return_to),
                Some(post_logout_redirect_uri),
                Some(cookie_keys),
                Some(table_name),
                Some(handoff),
                Some(idle_timeout),
                Some(absolute_timeout),
                Some(exchange_code_ttl),
                Some(passthrough),
                Some(rate_limits),
                Some(protected_paths),
            ) if errors.is_empty() => Ok(Config {
                issuer,
                client_id,
                client_secret,
                redirect_uri,
                scopes,
                redirects,
                default_return_to,
                post_logout_redirect_uri,
                cookie_keys,
                table_name,
                handoff,
                idle_timeout,
                absolute_timeout,
                exchange_code_ttl,
                passthrough,
                rate_limits,
                protected_paths,
                cloudfront,
                allowed_groups,
                required_acr,
                max_age,
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }
}

/// Records an error and yields the value when there is one.
fn keep<T>(errors: &mut Vec<ConfigError>, result: Result<T, ConfigError>) -> Option<T> {
    result.map_err(|e| errors.push(e)).ok()
}

fn required(src: &impl Source, var: &'static str) -> Result<String, ConfigError> {
    match src.var(var) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(ConfigError::new(var, "is required")),
    }
}

fn absolute_url(var: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| ConfigError::new(var, format!("not a URL: {e}")))?;
    let loopback = crate::redirect::is_loopback_host(url.host_str().unwrap_or_default());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(ConfigError::new(
                var,
                "must be https (http only for loopback)",
            ))
        }
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            var,
            "must not contain userinfo or a fragment",
        ));
    }
    Ok(url)
}

fn parse_issuer(raw: &str) -> Result<String, ConfigError> {
    let url = absolute_url("OIDC_ISSUER", raw)?;
    if url.query().is_some() {
        return Err(ConfigError::new("OIDC_ISSUER", "must not contain a query"));
    }
    // Kept byte for byte as configured, not as `Url` reserializes it (it adds a
    // `/` to a bare host): the metadata's `issuer` and every `iss` must match it
    // exactly, trailing slash included (Authentik's issuer ends in `/`).
    Ok(raw.to_owned())
}

fn scopes(src: &impl Source) -> Result<Vec<String>, ConfigError> {
    let raw = src
        .var("OIDC_SCOPES")
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| defaults::SCOPES.to_owned());
    let scopes: Vec<String> = raw.split_whitespace().map(str::to_owned).collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(ConfigError::new("OIDC_SCOPES", "must include openid"));
    }
    if let Some(bad) = scopes.iter().find(|s| {
        !s.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
    }) {
        return Err(ConfigError::new(
            "OIDC_SCOPES",
            format!("invalid scope {bad:?}"),
        ));
    }
    Ok(scopes)
}

fn origins(src: &impl Source) -> Result<Vec<Origin>, ConfigError> {
    let raw = required(src, "ALLOWED_ORIGINS")?;
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Origin::parse(s).map_err(|e| ConfigError::new("ALLOWED_ORIGINS", format!("{s:?}: {e}")))
        })
        .collect()
}

fn handoff(src: &impl Source) -> Result<Handoff, ConfigError> {
    match src.var("SESSION_HANDOFF").as_deref().map(str::trim) {
        None | Some("") | Some("cookie") => Ok(Handoff::Cookie),
        Some("exchange") => Ok(Handoff::Exchange),
        Some(_) => Err(ConfigError::new(
            "SESSION_HANDOFF",
            "must be `cookie` or `exchange`",
        )),
    }
}

fn secs_or(src: &impl Source, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
    match src.var(var).as_deref().map(str::trim) {
        None | Some("") => Ok(Duration::from_secs(default)),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n > 0 && n <= 31_536_000 => Ok(Duration::from_secs(n)),
            _ => Err(ConfigError::new(
                var,
                "must be a whole number of seconds between 1 and 31536000",
            )),
        },
    }
}

fn passthrough(src: &impl Source) -> Result<Passthrough, ConfigError> {
    let raw = src
        .var("AUTH_PASSTHROUGH_PARAMS")
        .unwrap_or_else(|| defaults::PASSTHROUGH.to_owned());
    let mut p = Passthrough::default();
    for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match name {
            "prompt" => p.prompt = true,
            "login_hint" => p.login_hint = true,
            "max_age" => p.max_age = true,
            "acr_values" => p.acr_values = true,
            other => {
                return Err(ConfigError::new(
                    "AUTH_PASSTHROUGH_PARAMS",
                    format!("unknown parameter {other:?} (allowed: prompt, login_hint, max_age, acr_values)"),
                ))
            }
        }
    }
    Ok(p)
}

/// A comma-separated list; absent or empty is `None`.
fn list(src: &impl Source, var: &'static str) -> Option<Vec<String>> {
    let items: Vec<String> = src
        .var(var)?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    (!items.is_empty()).then_some(items)
}

fn optional_secs(src: &impl Source, var: &'static str) -> Result<Option<u64>, ConfigError> {
    match src.var(var).as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(_) => secs_or(src, var, 0).map(|d| Some(d.as_secs())),
    }
}

fn protected_paths(src: &impl Source) -> Result<Vec<String>, ConfigError> {
    let paths = list(src, "PROTECTED_PATHS").unwrap_or_default();
    if let Some(bad) = paths.iter().find(|p| {
        !p.starts_with('/')
            || p.chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == ';' || c == ',')
    }) {
        return Err(ConfigError::new(
            "PROTECTED_PATHS",
            format!("{bad:?} is not an absolute path pattern"),
        ));
    }
    Ok(paths)
}

/// The signer, when the key is available to this function. The site's
/// origin defaults to the API's own (CloudFront serves both in cookie mode).
fn cloudfront_signer(
    src: &impl Source,
    paths: Vec<String>,
    redirect: &Url,
) -> Result<Option<CookieSigner>, ConfigError> {
    let key_pair_id = required(src, "CLOUDFRONT_KEY_PAIR_ID")?;
    let pem = match (
        src.var("CLOUDFRONT_PRIVATE_KEY")
            .filter(|v| !v.trim().is_empty()),
        src.var("CLOUDFRONT_PRIVATE_KEY_FILE"),
    ) {
        (Some(pem), _) => pem,
        (None, Some(path)) if !path.is_empty() => std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::new(
                "CLOUDFRONT_PRIVATE_KEY_FILE",
                format!("cannot read: {}", e.kind()),
            )
        })?,
        _ => return Ok(None),
    };
    let site = match src.var("SITE_ORIGIN").filter(|v| !v.is_empty()) {
        Some(raw) => {
            Origin::parse(&raw).map_err(|e| ConfigError::new("SITE_ORIGIN", e.to_string()))?
        }
        None => Origin::of(redirect),
    };
    let ttl = secs_or(src, "CLOUDFRONT_COOKIE_TTL_SECS", 900)?.as_secs();
    CookieSigner::new(&pem, key_pair_id, site.as_str(), paths, ttl)
        .map(Some)
        .map_err(|e| ConfigError::new("CLOUDFRONT_PRIVATE_KEY", e.to_string()))
}

fn rate_limits(src: &impl Source) -> Result<BTreeMap<EndpointClass, Limit>, ConfigError> {
    let window = secs_or(src, "RATE_LIMIT_WINDOW_SECS", 60)?;
    EndpointClass::ALL
        .iter()
        .map(|class| {
            let var = class.limit_var();
            let max = match src.var(var).as_deref().map(str::trim) {
                None | Some("") => class.default_limit(),
                Some(v) => v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ConfigError::new(var, "must be a positive whole number"))?,
            };
            Ok((*class, Limit { max, window }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(crate) fn vars() -> HashMap<&'static str, String> {
        HashMap::from([
            (
                "OIDC_ISSUER",
                "https://auth.example.com/application/o/site/".to_owned(),
            ),
            ("OIDC_CLIENT_ID", "client".to_owned()),
            ("OIDC_CLIENT_SECRET", "s3cret-value".to_owned()),
            (
                "OIDC_REDIRECT_URI",
                "https://www.example.com/auth/callback".to_owned(),
            ),
            (
                "ALLOWED_ORIGINS",
                "https://www.example.com, https://app.example.com".to_owned(),
            ),
            (
                "POST_LOGOUT_REDIRECT_URI",
                "https://www.example.com/".to_owned(),
            ),
            (
                "COOKIE_KEYS",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned(),
            ),
            ("TABLE_NAME", "auth".to_owned()),
        ])
    }

    #[test]
    fn parses_a_minimal_environment_with_defaults() {
        let cfg = Config::from_source(&vars()).unwrap();
        assert_eq!(cfg.scopes, ["openid", "profile", "email", "offline_access"]);
        assert_eq!(cfg.handoff, Handoff::Cookie);
        assert_eq!(cfg.idle_timeout, Duration::from_secs(1800));
        assert_eq!(cfg.absolute_timeout, Duration::from_secs(28_800));
        assert_eq!(cfg.default_return_to.as_str(), "https://www.example.com/");
        assert_eq!(cfg.issuer, "https://auth.example.com/application/o/site/");
    }

    #[test]
    fn names_every_missing_variable() {
        let err = Config::from_source(&HashMap::<&str, String>::new()).unwrap_err();
        let vars: Vec<_> = err.0.iter().map(|e| e.var).collect();
        for v in [
            "OIDC_ISSUER",
            "OIDC_CLIENT_ID",
            "OIDC_REDIRECT_URI",
            "ALLOWED_ORIGINS",
            "COOKIE_KEYS",
            "TABLE_NAME",
        ] {
            assert!(vars.contains(&v), "{v} not reported in {err}");
        }
    }

    #[test]
    fn rejects_malformed_values_naming_the_variable() {
        for (var, bad) in [
            ("OIDC_ISSUER", "not a url"),
            ("OIDC_ISSUER", "http://auth.example.com/"),
            ("OIDC_REDIRECT_URI", "https://user:pw@www.example.com/cb"),
            ("SESSION_HANDOFF", "both"),
            ("SESSION_IDLE_TIMEOUT_SECS", "-5"),
            ("SESSION_ABSOLUTE_TIMEOUT_SECS", "soon"),
            ("COOKIE_KEYS", "short"),
            ("ALLOWED_ORIGINS", "https://www.example.com/path"),
            ("OIDC_SCOPES", "profile email"),
            ("DEFAULT_RETURN_TO", "https://evil.example.net/"),
            ("RATE_LIMIT_LOGIN_PER_WINDOW", "0"),
        ] {
            let mut v = vars();
            v.insert(var, bad.to_owned());
            let err = Config::from_source(&v).unwrap_err();
            assert!(
                err.0.iter().any(|e| e.var == var),
                "{var}={bad:?} gave {err}"
            );
        }
    }

    #[test]
    fn the_client_secret_is_optional_for_functions_that_never_use_it() {
        let mut v = vars();
        v.remove("OIDC_CLIENT_SECRET");
        let cfg = Config::from_source(&v).unwrap();
        assert!(cfg.client_secret.is_none());
    }

    #[test]
    fn never_prints_the_secret() {
        let cfg = Config::from_source(&vars()).unwrap();
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("s3cret-value"));
        assert!(!dbg.contains("AAAAAAAAAAAAAAAA"));
    }

    #[test]
    fn idle_longer_than_absolute_is_refused() {
        let mut v = vars();
        v.insert("SESSION_IDLE_TIMEOUT_SECS", "100".into());
        v.insert("SESSION_ABSOLUTE_TIMEOUT_SECS", "50".into());
        assert!(Config::from_source(&v).is_err());
    }
}
