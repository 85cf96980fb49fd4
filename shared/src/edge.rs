//! The edge: turns an API Gateway (HTTP API, payload v2) request into plain
//! values, and a handler's result into the response. Input limits and the
//! security headers live here, so every endpoint gets them the same way.
//! Only this module and `handlers` see `lambda_http` types.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use crate::audit::{self, Event};
use crate::cookies::{self, Scope};
use crate::error::AuthError;
use crate::redirect::{Origin, RedirectPolicy};

/// Largest single header value accepted.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Largest sum of all header names and values (API Gateway allows 10 KB).
pub const MAX_HEADERS_TOTAL: usize = 16 * 1024;
/// Largest query string.
pub const MAX_QUERY_BYTES: usize = 4 * 1024;
/// Largest request body (exchange codes and logout tokens are small).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Which endpoint is answering; names the audit lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /auth/login`.
    Login,
    /// `GET /auth/callback`.
    Callback,
    /// `GET|POST /auth/session`.
    Session,
    /// `POST /auth/refresh`.
    Refresh,
    /// `POST /auth/logout`, `POST /auth/backchannel-logout`.
    Logout,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Login => "login",
            Endpoint::Callback => "callback",
            Endpoint::Session => "session",
            Endpoint::Refresh => "refresh",
            Endpoint::Logout => "logout",
        }
    }

    /// Endpoints a person reaches by navigation, where an error is a page.
    fn navigational(self) -> bool {
        matches!(self, Endpoint::Login | Endpoint::Callback)
    }

    /// Endpoints that a cross-origin site calls with `fetch` (CORS).
    fn speaks_cors(self) -> bool {
        matches!(
            self,
            Endpoint::Session | Endpoint::Refresh | Endpoint::Logout
        )
    }
}

/// A parsed, size-checked request.
#[derive(Debug)]
pub struct Incoming {
    /// Method.
    pub method: http::Method,
    /// Path, as API Gateway passed it.
    pub path: String,
    /// Query parameters; duplicates were refused.
    pub query: BTreeMap<String, String>,
    /// Our cookies (others are ignored); duplicates were refused.
    pub cookies: BTreeMap<String, String>,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Audit context.
    pub audit: audit::Context,
}

impl Incoming {
    /// A header as a string, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// One of our cookies.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.get(name).cloned()
    }

    /// Whether the request carries any of the session cookies.
    pub fn has_session_cookies(&self) -> bool {
        self.cookies.keys().any(|n| is_session_cookie(n))
    }

    /// The `Authorization: Bearer` credential, if any.
    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// Whether the client prefers an HTML answer (a form post or navigation).
    pub fn prefers_html(&self) -> bool {
        self.header("accept")
            .is_some_and(|a| a.contains("text/html"))
    }

    /// CSRF defence for POST endpoints: an allowlisted `Origin` (or, when a
    /// browser sends none, `Referer`) and the custom `X-Requested-With`
    /// header, which a cross-site form cannot send.
    pub fn check_csrf(&self, policy: &RedirectPolicy) -> Result<(), AuthError> {
        if self
            .header("x-requested-with")
            .is_none_or(|v| v.trim().is_empty())
        {
            return Err(AuthError::Forbidden("missing_custom_header"));
        }
        let origin = match self.header("origin") {
            Some(o) => Origin::parse(o).map_err(|_| AuthError::Forbidden("origin_not_allowed"))?,
            None => {
                let referer = self
                    .header("referer")
                    .ok_or(AuthError::Forbidden("no_origin"))?;
                let url =
                    url::Url::parse(referer).map_err(|_| AuthError::Forbidden("no_origin"))?;
                Origin::of(&url)
            }
        };
        if policy.allows(&origin) {
            Ok(())
        } else {
            Err(AuthError::Forbidden("origin_not_allowed"))
        }
    }
}

fn is_our_cookie(name: &str) -> bool {
    [
        cookies::SESSION,
        cookies::TOKENS,
        cookies::REFRESH,
        cookies::LOGIN,
    ]
    .iter()
    .any(|ours| {
        name == *ours
            || name
                .strip_prefix(ours)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

fn is_session_cookie(name: &str) -> bool {
    is_our_cookie(name) && !name.starts_with(cookies::LOGIN)
}

/// Every session cookie name, chunks included (for clearing).
pub fn session_cookie_names() -> Vec<String> {
    let mut names = vec![cookies::SESSION.to_owned(), cookies::REFRESH.to_owned()];
    names.extend(cookies::chunk_names(cookies::TOKENS));
    names
}

fn audit_context(req: &Request, endpoint: Endpoint) -> audit::Context {
    let (request_id, client_ip) = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => (
            ctx.request_id.clone().unwrap_or_default(),
            ctx.http.source_ip.clone().unwrap_or_default(),
        ),
        _ => (String::new(), String::new()),
    };
    let user_agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(audit::MAX_USER_AGENT).collect())
        .unwrap_or_default();
    audit::Context {
        request_id,
        client_ip,
        user_agent,
        endpoint: endpoint.name(),
    }
}

fn parse(req: Request, ctx: audit::Context) -> Result<Incoming, (audit::Context, AuthError)> {
    let fail = |ctx: &audit::Context, e| Err((ctx.clone(), e));
    let mut total = 0usize;
    for (name, value) in req.headers() {
        if value.len() > MAX_HEADER_BYTES {
            return fail(&ctx, AuthError::HeadersTooLarge);
        }
        total += name.as_str().len() + value.len();
    }
    if total > MAX_HEADERS_TOTAL {
        return fail(&ctx, AuthError::HeadersTooLarge);
    }

    let raw_query = req.uri().query().unwrap_or_default();
    if raw_query.len() > MAX_QUERY_BYTES {
        return fail(&ctx, AuthError::BadRequest("query_too_long"));
    }
    let query = match parse_query(raw_query) {
        Ok(q) => q,
        Err(reason) => return fail(&ctx, AuthError::BadRequest(reason)),
    };

    let mut jar = BTreeMap::new();
    for header in req.headers().get_all(http::header::COOKIE) {
        let Ok(header) = header.to_str() else {
            return fail(&ctx, AuthError::BadRequest("cookie_not_ascii"));
        };
        for cookie in cookie::Cookie::split_parse(header).flatten() {
            if !is_our_cookie(cookie.name()) {
                continue;
            }
            // Two cookies with one of our names means someone planted one
            // (cookie tossing from a sibling domain); refuse to guess.
            if jar
                .insert(cookie.name().to_owned(), cookie.value().to_owned())
                .is_some()
            {
                return fail(&ctx, AuthError::BadRequest("duplicate_cookie"));
            }
        }
    }

    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let headers = req.headers().clone();
    let body = match req.into_body() {
        Body::Empty => Vec::new(),
        Body::Text(t) => t.into_bytes(),
        Body::Binary(b) => b,
        _ => Vec::new(),
    };
    if body.len() > MAX_BODY_BYTES {
        return fail(&ctx, AuthError::BodyTooLarge);
    }
    Ok(Incoming {
        method,
        path,
        query,
        cookies: jar,
        headers,
        body,
        audit: ctx,
    })
}

/// Parses a query string, refusing duplicates and invalid UTF-8: a second
/// `return_to` or `state` is ambiguous, and ambiguity is where bypasses live.
pub fn parse_query(raw: &str) -> Result<BTreeMap<String, String>, &'static str> {
    let mut out = BTreeMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| -> Result<String, &'static str> {
            let plus_as_space = s.replace('+', " ");
            percent_encoding::percent_decode_str(&plus_as_space)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| "query_not_utf8")
        };
        if out.insert(decode(k)?, decode(v)?).is_some() {
            return Err("duplicate_parameter");
        }
    }
    Ok(out)
}

/// A successful answer, before the common headers are added.
#[derive(Debug, Default)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// JSON body, if any.
    pub body: Option<serde_json::Value>,
    /// `Location`, for redirects.
    pub location: Option<String>,
    /// `Set-Cookie` values.
    pub cookies: Vec<String>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// An HTML body instead of JSON (error pages for people).
    pub html: Option<String>,
}

impl Reply {
    /// 200 with a JSON body.
    pub fn json(body: &impl Serialize) -> Self {
        Self {
            status: 200,
            body: Some(serde_json::to_value(body).unwrap_or_default()),
            ..Self::default()
        }
    }

    /// A redirect (302, or 303 after a POST).
    pub fn redirect(status: u16, location: &url::Url) -> Self {
        Self {
            status,
            location: Some(location.to_string()),
            ..Self::default()
        }
    }

    /// Adds `Set-Cookie` values.
    pub fn with_cookies(mut self, cookies: impl IntoIterator<Item = String>) -> Self {
        self.cookies.extend(cookies);
        self
    }
}

/// Runs a handler with the common parsing, error mapping and headers.
pub async fn run<F, Fut>(
    endpoint: Endpoint,
    policy: &RedirectPolicy,
    scope: Scope,
    req: Request,
    handler: F,
) -> Result<Response<Body>, Infallible>
where
    F: FnOnce(Incoming) -> Fut,
    Fut: Future<Output = Result<Reply, AuthError>>,
{
    let ctx = audit_context(&req, endpoint);
    let cors_origin = req
        .headers()
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .and_then(|o| Origin::parse(o).ok())
        .filter(|o| endpoint.speaks_cors() && policy.allowed_origins().contains(o));

    // CORS preflight: answered here, before any handler logic.
    if req.method() == http::Method::OPTIONS && endpoint.speaks_cors() {
        let mut reply = Reply {
            status: 204,
            ..Reply::default()
        };
        if cors_origin.is_some() {
            reply
                .headers
                .push(("access-control-allow-methods", "GET, POST, OPTIONS".into()));
            reply.headers.push((
                "access-control-allow-headers",
                "Content-Type, X-Requested-With, Authorization".into(),
            ));
            reply.headers.push(("access-control-max-age", "600".into()));
        }
        return Ok(render(reply, cors_origin.as_ref()));
    }

    let html = endpoint.navigational()
        && req
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    let (ctx, result, had_session_cookies) = match parse(req, ctx) {
        Ok(incoming) => {
            let ctx = incoming.audit.clone();
            let had = incoming.has_session_cookies();
            (ctx, handler(incoming).await, had)
        }
        Err((ctx, e)) => (ctx, Err(e), false),
    };
    let reply = match result {
        Ok(reply) => reply,
        Err(err) => error_reply(&ctx, err, had_session_cookies, scope, html),
    };
    Ok(render(reply, cors_origin.as_ref()))
}

fn error_reply(
    ctx: &audit::Context,
    err: AuthError,
    clear_session: bool,
    scope: Scope,
    html: bool,
) -> Reply {
    match &err {
        AuthError::BadRequest(reason) => audit::emit(ctx, Event::RequestRejected { reason }),
        AuthError::HeadersTooLarge => audit::emit(
            ctx,
            Event::RequestRejected {
                reason: "headers_too_large",
            },
        ),
        AuthError::BodyTooLarge => audit::emit(
            ctx,
            Event::RequestRejected {
                reason: "body_too_large",
            },
        ),
        AuthError::Forbidden(reason) => audit::emit(ctx, Event::CsrfRejected { reason }),
        _ => {}
    }
    if let Some(dependency) = err.dependency() {
        // The cause (never a token or body) for operators; the client gets a fixed text.
        tracing::error!(error = %err, endpoint = ctx.endpoint, request_id = %ctx.request_id, "dependency failure");
        audit::emit(ctx, Event::DependencyFailed { dependency });
    }
    let (status, code, description) = err.parts();
    let mut reply = Reply {
        status,
        body: Some(serde_json::json!({ "error": code, "error_description": description })),
        ..Reply::default()
    };
    if html {
        // A person is looking: a page, not JSON. Fixed text only.
        reply.html = Some(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in failed</title></head>\
             <body><h1>Sign-in failed</h1><p>{description}.</p><p>Error: <code>{code}</code></p>\
             <p><a href=\"/\">Back to the site</a></p></body></html>"
        ));
    }
    if let AuthError::RateLimited { retry_after } = err {
        reply
            .headers
            .push(("retry-after", retry_after.as_secs().max(1).to_string()));
    }
    if matches!(err, AuthError::NoSession) {
        if let Some(body) = reply.body.as_mut() {
            body["authenticated"] = serde_json::Value::Bool(false);
        }
        if clear_session {
            reply.cookies = session_cookie_names()
                .iter()
                .map(|n| cookies::clear(n, scope))
                .collect();
        }
    }
    reply
}

fn render(reply: Reply, cors_origin: Option<&Origin>) -> Response<Body> {
    let mut builder = Response::builder()
        .status(reply.status)
        .header("cache-control", "no-store")
        .header("pragma", "no-cache")
        .header(
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        )
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header(
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        )
        .header("x-frame-options", "DENY");
    if let Some(origin) = cors_origin {
        builder = builder
            .header("access-control-allow-origin", origin.as_str())
            .header("access-control-allow-credentials", "true");
    }
    // Responses differ by Origin even when this one had no CORS headers.
    builder = builder.header("vary", "Origin");
    if let Some(location) = &reply.location {
        builder = builder.header("location", location);
    }
    for (name, value) in &reply.headers {
        builder = builder.header(*name, value);
    }
    for cookie in &reply.cookies {
        builder = builder.header("set-cookie", cookie);
    }
    let body = match (&reply.html, &reply.body) {
        (Some(page), _) => {
            builder = builder.header("content-type", "text/html; charset=utf-8");
            Body::Text(page.clone())
        }
        (None, Some(json)) => {
            builder = builder.header("content-type", "application/json");
            Body::Text(json.to_string())
        }
        (None, None) => Body::Empty,
    };
    builder.body(body).unwrap_or_else(|_| {
        // Only reachable if a header value were invalid; all of ours are
        // ASCII built from checked values.
        let mut fallback = Response::new(Body::Text(
            r#"{"error":"server_error","error_description":"response could not be built"}"#.into(),
        ));
        *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_refuses_duplicates_and_bad_utf8() {
        assert_eq!(parse_query("a=1&b=2").unwrap().len(), 2);
        assert_eq!(
            parse_query("return_to=%2Fx&return_to=%2Fy"),
            Err("duplicate_parameter")
        );
        assert_eq!(parse_query("a=%ff"), Err("query_not_utf8"));
        assert_eq!(parse_query("a=b+c").unwrap()["a"], "b c");
    }

    #[test]
    fn our_cookie_names_only() {
        assert!(is_our_cookie("__Host-session"));
        assert!(is_our_cookie("__Secure-session-tokens.1"));
        assert!(!is_our_cookie("__Host-sessionx"));
        assert!(!is_our_cookie("_ga"));
        assert!(is_session_cookie("__Secure-session-refresh"));
        assert!(!is_session_cookie("__Host-login"));
    }
}
