//! CloudFront signed cookies for protected paths: CloudFront itself refuses
//! requests for those paths without valid cookies, so a static site gets real
//! protected routes without code at the edge.
//!
//! Follows AWS's documented format for a custom policy: the policy JSON
//! without whitespace, signed with RSA-SHA1 (PKCS#1 v1.5, what CloudFront
//! verifies with a key group's public key), both in CloudFront's URL-safe
//! base64 (`+` -> `-`, `=` -> `_`, `/` -> `~`), in the cookies
//! `CloudFront-Policy`, `CloudFront-Signature` and `CloudFront-Key-Pair-Id`.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer as _, Verifier as _};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};

use crate::session::UnixTime;

/// The policy cookie.
pub const POLICY: &str = "CloudFront-Policy";
/// The signature cookie.
pub const SIGNATURE: &str = "CloudFront-Signature";
/// The key-pair id cookie (the public key's id in the key group).
pub const KEY_PAIR_ID: &str = "CloudFront-Key-Pair-Id";

/// Why signing settings or cookies were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CloudFrontError {
    /// The private key is not an RSA key in PEM (PKCS#1 or PKCS#8).
    #[error("not an RSA private key in PEM")]
    BadKey,
    /// A protected path is not an absolute path pattern.
    #[error("protected paths must start with `/`")]
    BadPath,
    /// Cookies missing, malformed, badly signed, expired or for another resource.
    #[error("signed cookies refused: {0}")]
    Refused(&'static str),
}

/// Signing settings: the key group's key and the protected paths.
#[derive(Clone)]
pub struct CookieSigner {
    key: RsaPrivateKey,
    key_pair_id: String,
    site_origin: String,
    paths: Vec<String>,
    /// How long one set of cookies lives (refresh renews them).
    pub ttl_secs: u64,
}

impl fmt::Debug for CookieSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieSigner")
            .field("key", &"[redacted]")
            .field("key_pair_id", &self.key_pair_id)
            .field("site_origin", &self.site_origin)
            .field("paths", &self.paths)
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Policy {
    #[serde(rename = "Statement")]
    statement: Vec<Statement>,
}

#[derive(Serialize, Deserialize)]
struct Statement {
    #[serde(rename = "Resource")]
    resource: String,
    #[serde(rename = "Condition")]
    condition: Condition,
}

#[derive(Serialize, Deserialize)]
struct Condition {
    #[serde(rename = "DateLessThan")]
    date_less_than: EpochTime,
}

#[derive(Serialize, Deserialize)]
struct EpochTime {
    #[serde(rename = "AWS:EpochTime")]
    epoch_time: UnixTime,
}

/// CloudFront's URL-safe base64.
pub fn cf_base64(bytes: &[u8]) -> String {
    STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            other => other,
        })
        .collect()
}

fn cf_unbase64(text: &str) -> Result<Vec<u8>, CloudFrontError> {
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            other => other,
        })
        .collect();
    STANDARD
        .decode(standard)
        .map_err(|_| CloudFrontError::Refused("encoding"))
}

/// One `Set-Cookie` triple for one protected path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCookies {
    /// The cookie path (the pattern without its trailing `*`).
    pub path: String,
    /// Policy, signature and key-pair id values.
    pub values: [(&'static str, String); 3],
    /// When CloudFront stops accepting them.
    pub expires_at: UnixTime,
}

impl CookieSigner {
    /// Builds the signer from a PEM private key (PKCS#1 or PKCS#8).
    pub fn new(
        pem: &str,
        key_pair_id: impl Into<String>,
        site_origin: impl Into<String>,
        paths: Vec<String>,
        ttl_secs: u64,
    ) -> Result<Self, CloudFrontError> {
        let key = RsaPrivateKey::from_pkcs1_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs8_pem(pem))
            .map_err(|_| CloudFrontError::BadKey)?;
        if paths.is_empty() || paths.iter().any(|p| !p.starts_with('/')) {
            return Err(CloudFrontError::BadPath);
        }
        Ok(Self {
            key,
            key_pair_id: key_pair_id.into(),
            site_origin: site_origin.into().trim_end_matches('/').to_owned(),
            paths,
            ttl_secs,
        })
    }

    /// The public half, for verification (the local gateway, tests).
    pub fn public_key(&self) -> RsaPublicKey {
        self.key.to_public_key()
    }

    /// The key-pair id.
    pub fn key_pair_id(&self) -> &str {
        &self.key_pair_id
    }

    /// The site origin the policies name.
    pub fn site_origin(&self) -> &str {
        &self.site_origin
    }

    /// Whether a site path falls under a protected pattern.
    pub fn protects(&self, path: &str) -> bool {
        self.paths
            .iter()
            .any(|p| wildcard_match(p, path) || cookie_path(p) == path)
    }

    /// The protected path patterns.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Signed cookies for every protected path, valid until
    /// `min(now + ttl, session_expires_at)`: never past the session's end.
    pub fn sign(&self, now: UnixTime, session_expires_at: UnixTime) -> Vec<SignedCookies> {
        let expires_at = (now + self.ttl_secs).min(session_expires_at);
        let signer = rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(self.key.clone());
        self.paths
            .iter()
            .map(|pattern| {
                let policy = Policy {
                    statement: vec![Statement {
                        resource: format!("{}{}", self.site_origin, pattern),
                        condition: Condition {
                            date_less_than: EpochTime {
                                epoch_time: expires_at,
                            },
                        },
                    }],
                };
                // serde_json writes no whitespace, as CloudFront requires.
                let json = serde_json::to_vec(&policy).unwrap_or_default();
                let signature = signer.sign(&json).to_vec();
                SignedCookies {
                    path: cookie_path(pattern),
                    values: [
                        (POLICY, cf_base64(&json)),
                        (SIGNATURE, cf_base64(&signature)),
                        (KEY_PAIR_ID, self.key_pair_id.clone()),
                    ],
                    expires_at,
                }
            })
            .collect()
    }
}

/// `/members/*` is sent for `/members` and below.
pub fn cookie_path(pattern: &str) -> String {
    let trimmed = pattern.trim_end_matches('*').trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Verifies cookies for a request URL as CloudFront does: the key-pair id is
/// known, the signature matches the policy, the policy's resource matches the
/// URL (with `*` wildcards) and it has not expired.
pub fn verify(
    public_key: &RsaPublicKey,
    key_pair_id: &str,
    cookies: (&str, &str, &str),
    url: &str,
    now: UnixTime,
) -> Result<(), CloudFrontError> {
    let (policy_b64, signature_b64, id) = cookies;
    if id != key_pair_id {
        return Err(CloudFrontError::Refused("key_pair_id"));
    }
    let policy_json = cf_unbase64(policy_b64)?;
    let signature = cf_unbase64(signature_b64)?;
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha1::Sha1>::new(public_key.clone());
    let signature = rsa::pkcs1v15::Signature::try_from(signature.as_slice())
        .map_err(|_| CloudFrontError::Refused("signature"))?;
    verifier
        .verify(&policy_json, &signature)
        .map_err(|_| CloudFrontError::Refused("signature"))?;
    let policy: Policy =
        serde_json::from_slice(&policy_json).map_err(|_| CloudFrontError::Refused("policy"))?;
    let [statement] = policy.statement.as_slice() else {
        return Err(CloudFrontError::Refused("policy"));
    };
    if now >= statement.condition.date_less_than.epoch_time {
        return Err(CloudFrontError::Refused("expired"));
    }
    if !wildcard_match(&statement.resource, url) {
        return Err(CloudFrontError::Refused("resource"));
    }
    Ok(())
}

/// CloudFront's resource matching: `*` matches any run of characters.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(ttl: u64) -> CookieSigner {
        CookieSigner::new(
            include_str!("oidc/id_token/test-key.pem"),
            "K2JCJMDEHXQW5F",
            "https://www.example.com",
            vec!["/members/*".into()],
            ttl,
        )
        .unwrap()
    }

    fn triple(c: &SignedCookies) -> (&str, &str, &str) {
        (&c.values[0].1, &c.values[1].1, &c.values[2].1)
    }

    #[test]
    fn signed_cookies_verify_for_the_protected_resource_only() {
        let s = signer(600);
        let cookies = s.sign(1000, 100_000);
        let c = &cookies[0];
        assert_eq!(c.path, "/members");
        assert_eq!(c.expires_at, 1600);
        let pk = s.public_key();
        assert!(verify(
            &pk,
            "K2JCJMDEHXQW5F",
            triple(c),
            "https://www.example.com/members/a.html",
            1500
        )
        .is_ok());
        assert!(verify(
            &pk,
            "K2JCJMDEHXQW5F",
            triple(c),
            "https://www.example.com/public.html",
            1500
        )
        .is_err());
        assert!(verify(
            &pk,
            "K2JCJMDEHXQW5F",
            triple(c),
            "https://evil.example.com/members/a",
            1500
        )
        .is_err());
        assert_eq!(
            verify(
                &pk,
                "K2JCJMDEHXQW5F",
                triple(c),
                "https://www.example.com/members/a",
                1600
            ),
            Err(CloudFrontError::Refused("expired"))
        );
        assert!(verify(
            &pk,
            "OTHERID",
            triple(c),
            "https://www.example.com/members/a",
            1500
        )
        .is_err());
        // The policy is AWS's documented JSON, without whitespace.
        let json = String::from_utf8(cf_unbase64(&c.values[0].1).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"Statement":[{"Resource":"https://www.example.com/members/*","Condition":{"DateLessThan":{"AWS:EpochTime":1600}}}]}"#
        );
        assert!(!c.values[0].1.contains(['+', '=', '/']));
    }

    #[test]
    fn tampered_policy_or_signature_fails() {
        let s = signer(600);
        let c = &s.sign(1000, 100_000)[0];
        let pk = s.public_key();
        let longer = r#"{"Statement":[{"Resource":"https://www.example.com/*","Condition":{"DateLessThan":{"AWS:EpochTime":99999999}}}]}"#;
        let forged_policy = cf_base64(longer.as_bytes());
        assert!(verify(
            &pk,
            "K2JCJMDEHXQW5F",
            (&forged_policy, &c.values[1].1, &c.values[2].1),
            "https://www.example.com/x",
            1500
        )
        .is_err());
        let mut sig = cf_unbase64(&c.values[1].1).unwrap();
        sig[10] ^= 1;
        let forged_sig = cf_base64(&sig);
        assert!(verify(
            &pk,
            "K2JCJMDEHXQW5F",
            (&c.values[0].1, &forged_sig, &c.values[2].1),
            "https://www.example.com/members/x",
            1500
        )
        .is_err());
    }

    #[test]
    fn expiry_never_outlives_the_session() {
        let s = signer(3600);
        for c in s.sign(1000, 1200) {
            assert_eq!(c.expires_at, 1200);
        }
    }

    #[test]
    fn wildcards_match_like_cloudfront() {
        assert!(wildcard_match(
            "https://a/members/*",
            "https://a/members/x/y"
        ));
        assert!(!wildcard_match("https://a/members/*", "https://a/other"));
        assert!(wildcard_match("https://a/*.html", "https://a/x/y.html"));
        assert!(wildcard_match("https://a/exact", "https://a/exact"));
        assert!(!wildcard_match("https://a/exact", "https://a/exact2"));
    }
}
