//! Cookie sealing, naming, chunking and the `Set-Cookie` attributes.
//!
//! Values are sealed with XChaCha20-Poly1305 (the `chacha20poly1305` crate):
//! a random 192-bit nonce per seal, the cookie's name bound in as associated
//! data so a value cannot be replayed under another name. The key ring holds
//! several keys: the newest seals, any opens, so keys rotate without logging
//! anyone out. This module never logs and never returns a value in an error.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use cookie::{Cookie, SameSite};
use std::fmt;

/// Session marker and timestamps, sent site-wide (small on purpose).
pub const SESSION: &str = "__Host-session";
/// User profile and provider tokens, only sent to `/auth/*` (may be chunked).
pub const TOKENS: &str = "__Secure-session-tokens";
/// The refresh token, only sent to `/auth/*`.
pub const REFRESH: &str = "__Secure-session-refresh";
/// Pre-auth binding of pending logins to this browser.
pub const LOGIN: &str = "__Host-login";
/// The path that every `/auth/*` cookie is scoped to.
pub const AUTH_PATH: &str = "/auth";

/// Browsers keep about 4096 bytes per cookie, name and attributes included.
pub const CHUNK_SIZE: usize = 3800;
/// More chunks than this would not fit API Gateway's 10 KB of headers anyway.
pub const MAX_CHUNKS: usize = 3;
/// Keys kept in the ring; a longer ring only slows down failed opens.
pub const MAX_KEYS: usize = 8;

const KEY_LEN: usize = 32;
const MAX_KEY_LEN: usize = 128;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Why a key ring or cookie was refused. Carries no cookie or key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    /// `COOKIE_KEYS` is empty.
    #[error("at least one key is required")]
    NoKeys,
    /// A key is not base64 of 32 to 128 bytes.
    #[error("key {0} is not base64 of 32 to 128 random bytes")]
    BadKey(usize),
    /// More than [`MAX_KEYS`] keys.
    #[error("at most {MAX_KEYS} keys")]
    TooManyKeys,
    /// Tampered, truncated, sealed under another name or with an unknown key.
    #[error("cookie does not open")]
    DoesNotOpen,
    /// The sealed value needs more than [`MAX_CHUNKS`] cookies.
    #[error("value too large for cookies")]
    TooLarge,
}

/// Cookie keys, newest first.
#[derive(Clone)]
pub struct KeyRing(Vec<XChaCha20Poly1305>);

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyRing({} keys, [redacted])", self.0.len())
    }
}

impl KeyRing {
    /// Parses comma-separated base64 (standard or URL-safe) keys of 32 bytes
    /// (longer ones up to 128 bytes are reduced with HKDF-SHA256), newest first.
    pub fn parse(raw: &str) -> Result<Self, CookieError> {
        let keys = raw
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
            .map(|(i, k)| {
                let bytes = STANDARD
                    .decode(k)
                    .or_else(|_| URL_SAFE_NO_PAD.decode(k.trim_end_matches('=')))
                    .map_err(|_| CookieError::BadKey(i + 1))?;
                let key = match bytes.len() {
                    KEY_LEN => bytes,
                    // Longer keys (e.g. 64-byte keys made for other cookie
                    // libraries) are reduced with HKDF rather than refused
                    // or truncated.
                    n if n > KEY_LEN && n <= MAX_KEY_LEN => {
                        let mut okm = vec![0u8; KEY_LEN];
                        hkdf::Hkdf::<sha2::Sha256>::new(None, &bytes)
                            .expand(b"static-login cookie key v1", &mut okm)
                            .map_err(|_| CookieError::BadKey(i + 1))?;
                        okm
                    }
                    _ => return Err(CookieError::BadKey(i + 1)),
                };
                XChaCha20Poly1305::new_from_slice(&key).map_err(|_| CookieError::BadKey(i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        match keys.len() {
            0 => Err(CookieError::NoKeys),
            n if n > MAX_KEYS => Err(CookieError::TooManyKeys),
            _ => Ok(Self(keys)),
        }
    }

    /// Seals `plaintext` for the cookie (or record) called `name`.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // `parse` guarantees at least one key.
        let Some(newest) = self.0.first() else {
            return String::new();
        };
        let sealed = newest
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: name.as_bytes(),
                },
            )
            // Encryption only fails for inputs beyond 256 GiB.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Opens a value sealed for `name` with any key of the ring.
    pub fn open(&self, name: &str, sealed: &str) -> Result<Vec<u8>, CookieError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| CookieError::DoesNotOpen)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(CookieError::DoesNotOpen);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = XNonce::from_slice(nonce);
        self.0
            .iter()
            .find_map(|key| {
                key.decrypt(
                    nonce,
                    Payload {
                        msg: ciphertext,
                        aad: name.as_bytes(),
                    },
                )
                .ok()
            })
            .ok_or(CookieError::DoesNotOpen)
    }

    /// Seals a serializable value as JSON.
    pub fn seal_json<T: serde::Serialize>(&self, name: &str, value: &T) -> String {
        // Serializing our own plain structs to JSON cannot fail.
        let json = serde_json::to_vec(value).unwrap_or_default();
        self.seal(name, &json)
    }

    /// Opens a value sealed by [`KeyRing::seal_json`].
    pub fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        sealed: &str,
    ) -> Result<T, CookieError> {
        let plain = self.open(name, sealed)?;
        serde_json::from_slice(&plain).map_err(|_| CookieError::DoesNotOpen)
    }
}

/// How cookies are sent: `Lax` when the site and `/auth/*` share a site,
/// `None` when the site calls the API cross-site (exchange hand-off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// First-party: `SameSite=Lax`.
    FirstParty,
    /// Cross-site: `SameSite=None; Secure`.
    CrossSite,
}

impl Scope {
    fn same_site(self) -> SameSite {
        match self {
            Scope::FirstParty => SameSite::Lax,
            Scope::CrossSite => SameSite::None,
        }
    }
}

/// The path a cookie name must be set with: `__Host-` demands `/`.
fn path_for(name: &str) -> &'static str {
    if name.starts_with("__Host-") {
        "/"
    } else {
        AUTH_PATH
    }
}

/// A `Set-Cookie` value for one of our cookies.
pub fn set(name: &str, value: String, max_age_secs: u64, scope: Scope) -> String {
    Cookie::build((name.to_owned(), value))
        .path(path_for(name))
        .secure(true)
        .http_only(true)
        .same_site(scope.same_site())
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(max_age_secs).unwrap_or(i64::MAX),
        ))
        .build()
        .to_string()
}

/// A `Set-Cookie` value for a cookie whose name and path are fixed by
/// someone else (CloudFront's signed cookies): host-only, Secure, HttpOnly, Lax.
pub fn set_at(name: &str, value: String, path: &str, max_age_secs: u64) -> String {
    Cookie::build((name.to_owned(), value))
        .path(path.to_owned())
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(max_age_secs).unwrap_or(i64::MAX),
        ))
        .build()
        .to_string()
}

/// Deletes a cookie set by [`set_at`].
pub fn clear_at(name: &str, path: &str) -> String {
    set_at(name, String::new(), path, 0)
}

/// A `Set-Cookie` value that deletes one of our cookies.
pub fn clear(name: &str, scope: Scope) -> String {
    Cookie::build((name.to_owned(), ""))
        .path(path_for(name))
        .secure(true)
        .http_only(true)
        .same_site(scope.same_site())
        .max_age(cookie::time::Duration::ZERO)
        .expires(cookie::time::OffsetDateTime::UNIX_EPOCH)
        .build()
        .to_string()
}

/// The names a chunked cookie may use: `NAME`, or `NAME.0` .. `NAME.{MAX_CHUNKS-1}`.
pub fn chunk_names(name: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(name.to_owned()).chain((0..MAX_CHUNKS).map(move |i| format!("{name}.{i}")))
}

/// `Set-Cookie` values carrying `sealed` under `name`, split into chunks when
/// it is too large for one cookie; chunk names the request still carries but
/// this write does not use are cleared.
pub fn set_chunked(
    name: &str,
    sealed: &str,
    max_age_secs: u64,
    scope: Scope,
    present: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, CookieError> {
    let mut out = Vec::new();
    let used: Vec<(String, &str)> = if sealed.len() <= CHUNK_SIZE {
        vec![(name.to_owned(), sealed)]
    } else {
        let chunks: Vec<&str> = sealed
            .as_bytes()
            .chunks(CHUNK_SIZE)
            // base64url is ASCII, so byte chunks are valid UTF-8.
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        if chunks.len() > MAX_CHUNKS {
            return Err(CookieError::TooLarge);
        }
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, c)| (format!("{name}.{i}"), c))
            .collect()
    };
    for candidate in chunk_names(name) {
        if !used.iter().any(|(n, _)| *n == candidate) && present(&candidate) {
            out.push(clear(&candidate, scope));
        }
    }
    for (n, v) in used {
        out.push(set(&n, v.to_owned(), max_age_secs, scope));
    }
    Ok(out)
}

/// Reassembles a value written by [`set_chunked`].
pub fn read_chunked(name: &str, get: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(v) = get(name) {
        return Some(v);
    }
    let mut joined = String::new();
    for i in 0..MAX_CHUNKS {
        match get(&format!("{name}.{i}")) {
            Some(part) => joined.push_str(&part),
            None if i == 0 => return None,
            None => break,
        }
    }
    Some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn seals_and_opens_under_the_same_name_only() {
        let ring = KeyRing::parse(&key(1)).unwrap();
        let sealed = ring.seal(SESSION, b"hello");
        assert_eq!(ring.open(SESSION, &sealed).unwrap(), b"hello");
        assert_eq!(ring.open(TOKENS, &sealed), Err(CookieError::DoesNotOpen));
        assert!(!sealed.contains("hello"));
    }

    #[test]
    fn tampered_truncated_and_garbage_values_do_not_open() {
        let ring = KeyRing::parse(&key(1)).unwrap();
        let sealed = ring.seal(SESSION, b"payload");
        let mut bytes = sealed.clone().into_bytes();
        let mid = bytes.len() / 2;
        bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        for bad in [
            tampered.as_str(),
            &sealed[..sealed.len() - 1],
            &sealed[..10],
            "",
            "garbage!!",
            "%00%ff",
            "ÿÿÿÿ",
        ] {
            assert_eq!(
                ring.open(SESSION, bad),
                Err(CookieError::DoesNotOpen),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn older_key_still_opens_after_rotation() {
        let old = KeyRing::parse(&key(1)).unwrap();
        let sealed = old.seal(SESSION, b"x");
        let rotated = KeyRing::parse(&format!("{},{}", key(2), key(1))).unwrap();
        assert_eq!(rotated.open(SESSION, &sealed).unwrap(), b"x");
        // New seals use the newest key, which the old ring cannot open.
        let fresh = rotated.seal(SESSION, b"y");
        assert!(old.open(SESSION, &fresh).is_err());
        // A ring without the old key refuses it.
        let dropped = KeyRing::parse(&key(2)).unwrap();
        assert!(dropped.open(SESSION, &sealed).is_err());
    }

    #[test]
    fn refuses_bad_key_rings() {
        assert_eq!(KeyRing::parse("").unwrap_err(), CookieError::NoKeys);
        assert_eq!(KeyRing::parse("abc").unwrap_err(), CookieError::BadKey(1));
        assert_eq!(
            KeyRing::parse(&format!("{},{}", key(1), STANDARD.encode([0u8; 16]))).unwrap_err(),
            CookieError::BadKey(2)
        );
        // 64-byte keys are accepted and derived, not truncated.
        let long = KeyRing::parse(&STANDARD.encode([9u8; 64])).unwrap();
        let truncated = KeyRing::parse(&STANDARD.encode([9u8; 32])).unwrap();
        assert!(truncated.open(SESSION, &long.seal(SESSION, b"x")).is_err());
        let many = (0..=MAX_KEYS as u8).map(key).collect::<Vec<_>>().join(",");
        assert_eq!(KeyRing::parse(&many).unwrap_err(), CookieError::TooManyKeys);
    }

    #[test]
    fn debug_hides_keys() {
        let ring = KeyRing::parse(&key(7)).unwrap();
        assert_eq!(format!("{ring:?}"), "KeyRing(1 keys, [redacted])");
    }

    #[test]
    fn attributes_follow_the_prefix_rules() {
        let host = set(SESSION, "v".into(), 60, Scope::FirstParty);
        for want in [
            "__Host-session=v",
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=60",
        ] {
            assert!(host.contains(want), "{host} lacks {want}");
        }
        assert!(!host.contains("Domain"));
        let scoped = set(TOKENS, "v".into(), 60, Scope::CrossSite);
        assert!(
            scoped.contains("Path=/auth")
                && scoped.contains("SameSite=None")
                && scoped.contains("Secure")
        );
        let cleared = clear(REFRESH, Scope::FirstParty);
        assert!(cleared.contains("Max-Age=0") && cleared.contains("Path=/auth"));
    }

    #[test]
    fn large_values_round_trip_through_chunks() {
        let ring = KeyRing::parse(&key(3)).unwrap();
        let big = "x".repeat(6000);
        let sealed = ring.seal(TOKENS, big.as_bytes());
        let headers = set_chunked(TOKENS, &sealed, 60, Scope::FirstParty, &|_| false).unwrap();
        assert_eq!(headers.len(), 3);
        let jar: HashMap<String, String> = headers
            .iter()
            .map(|h| {
                let c = Cookie::parse(h.clone()).unwrap();
                assert!(h.len() < 4096, "chunk too large: {}", h.len());
                (c.name().to_owned(), c.value().to_owned())
            })
            .collect();
        let joined = read_chunked(TOKENS, &|n| jar.get(n).cloned()).unwrap();
        assert_eq!(ring.open(TOKENS, &joined).unwrap(), big.as_bytes());
    }

    #[test]
    fn a_small_write_clears_stale_chunks() {
        let headers = set_chunked(TOKENS, "small", 60, Scope::FirstParty, &|n| {
            n.ends_with(".0") || n.ends_with(".1")
        })
        .unwrap();
        assert!(headers
            .iter()
            .any(|h| h.starts_with("__Secure-session-tokens.0=;") && h.contains("Max-Age=0")));
        assert!(headers
            .iter()
            .any(|h| h.starts_with("__Secure-session-tokens=small")));
    }

    #[test]
    fn oversized_values_are_refused() {
        let huge = "a".repeat(CHUNK_SIZE * MAX_CHUNKS + 1);
        assert_eq!(
            set_chunked(TOKENS, &huge, 60, Scope::FirstParty, &|_| false),
            Err(CookieError::TooLarge)
        );
    }
}
