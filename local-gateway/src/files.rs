//! A minimal static file server for the demo site (`STATIC_DIR`).

use std::path::{Component, Path, PathBuf};

use http_body_util::Full;
use hyper::body::Bytes;

/// Serves `GET`/`HEAD` for a file below `root`; never outside it.
pub async fn serve(root: &Path, parts: &http::request::Parts) -> hyper::Response<Full<Bytes>> {
    if parts.method != http::Method::GET && parts.method != http::Method::HEAD {
        return respond(405, "text/plain", Bytes::from_static(b"method not allowed"));
    }
    let Some(path) = resolve(root, parts.uri.path()) else {
        return respond(404, "text/plain", Bytes::from_static(b"not found"));
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => respond(200, content_type(&path), Bytes::from(bytes)),
        Err(_) => respond(404, "text/plain", Bytes::from_static(b"not found")),
    }
}

/// Serves one file of `root` with a given status (error pages).
pub async fn serve_status(root: &Path, file: &str, status: u16) -> hyper::Response<Full<Bytes>> {
    let path = root.join(file);
    match tokio::fs::read(&path).await {
        Ok(bytes) => respond(status, content_type(&path), Bytes::from(bytes)),
        Err(_) => respond(status, "text/plain", Bytes::from_static(b"forbidden")),
    }
}

fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(url_path)
        .decode_utf8()
        .ok()?;
    let mut path = root.to_path_buf();
    for component in Path::new(decoded.trim_start_matches('/')).components() {
        match component {
            Component::Normal(c) => path.push(c),
            Component::CurDir => {}
            // `..`, roots and prefixes would leave the folder.
            _ => return None,
        }
    }
    if path.is_dir() {
        path.push("index.html");
    }
    Some(path)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn respond(status: u16, content_type: &'static str, body: Bytes) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-content-type-options", "nosniff")
        .header("cache-control", "no-cache");
    if content_type.starts_with("text/html") {
        builder = builder
            .header(
                "content-security-policy",
                "default-src 'self'; frame-ancestors 'none'",
            )
            .header("referrer-policy", "no-referrer");
    }
    builder
        .body(Full::new(body.clone()))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(body)))
}
