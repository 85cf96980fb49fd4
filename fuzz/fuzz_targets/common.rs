//! Shared by the token targets: a signing key whose public half is the
//! JWKS, and claims built from fuzzer choices.

use arbitrary::Arbitrary;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{
    CoreEdDsaPrivateSigningKey, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{JsonWebKeyId, PrivateSigningKey};
use serde_json::{json, Map, Value};
use static_login::oidc::jwk::{key_set, ProviderKeySet};

pub const ISSUER: &str = "https://auth.example.com/application/o/site/";
pub const CLIENT: &str = "client-1";
pub const NOW: u64 = 1_800_000_000;

pub struct Keys {
    /// Signs most tokens: Ed25519 is fast enough to fuzz at thousands of
    /// inputs a second (an RSA signature takes milliseconds).
    pub ed: CoreEdDsaPrivateSigningKey,
    /// Signs the tokens whose header says RS256, what providers use.
    pub rsa: CoreRsaPrivateSigningKey,
    pub jwks: ProviderKeySet,
}

pub fn keys() -> &'static Keys {
    static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        // Test keys only, published on purpose.
        let ed = CoreEdDsaPrivateSigningKey::from_ed25519_pem(
            include_str!("ed25519-test-key.pem"),
            Some(JsonWebKeyId::new("e1".into())),
        )
        .unwrap();
        // A 512-bit key: 30 times faster to sign with than 2048 bits. The
        // validator refuses keys under 2048 bits, so RS256 tokens exercise
        // parsing and key selection and are always refused at the signature;
        // Ed25519 tokens cover the accepted ones.
        let rsa = CoreRsaPrivateSigningKey::from_pem(
            include_str!("rsa-test-key.pem"),
            Some(JsonWebKeyId::new("r1".into())),
        )
        .unwrap();
        let jwks = key_set(&[ed.as_verification_key(), rsa.as_verification_key()]).unwrap();
        Keys { ed, rsa, jwks }
    })
}

/// A string claim: the right value, a near miss, or something else.
#[derive(Arbitrary, Debug, Clone)]
pub enum Text {
    Right,
    Missing,
    Empty,
    Other(String),
    Number(i64),
    List(Vec<String>),
    RightAndOther(String),
}

impl Text {
    pub fn value(&self, right: &str) -> Option<Value> {
        match self {
            Text::Right => Some(json!(right)),
            Text::Missing => None,
            Text::Empty => Some(json!("")),
            Text::Other(s) => Some(json!(s)),
            Text::Number(n) => Some(json!(n)),
            Text::List(l) => Some(json!(l)),
            Text::RightAndOther(s) => Some(json!([right, s])),
        }
    }
}

/// A time claim, relative to `NOW`, or junk.
#[derive(Arbitrary, Debug, Clone)]
pub enum Time {
    Missing,
    /// Within a few minutes of now, where the checks draw their lines.
    Near(i16),
    Offset(i32),
    Absolute(u64),
    /// Boundaries: 0, the largest integers, negative.
    Extreme(u8),
    Float(f64),
    Text(String),
}

impl Time {
    pub fn value(&self) -> Option<Value> {
        match self {
            Time::Missing => None,
            Time::Near(o) => Some(json!(NOW as i64 + i64::from(*o))),
            Time::Extreme(i) => Some(match i % 6 {
                0 => json!(0),
                1 => json!(u64::MAX),
                2 => json!(u64::MAX - 30),
                3 => json!(i64::MAX),
                4 => json!(-1),
                _ => json!(i64::MIN),
            }),
            Time::Offset(o) => Some(json!(NOW as i64 + i64::from(*o))),
            Time::Absolute(t) => Some(json!(t)),
            Time::Float(f) => Some(json!(f)),
            Time::Text(s) => Some(json!(s)),
        }
    }
}

/// The JOSE header: the algorithm and key id, plus key-carrying fields
/// an attacker might add.
#[derive(Arbitrary, Debug, Clone)]
pub struct Header {
    pub alg: u8,
    pub kid: Text,
    pub typ: Text,
    pub jku: bool,
    pub jwk: bool,
    pub crit: bool,
}

impl Header {
    /// The `alg`: mostly EdDSA, sometimes something we must refuse, rarely
    /// RS256 (slow to sign).
    pub fn alg(&self) -> &'static str {
        match self.alg {
            0 => "none",
            1 => "HS256",
            2 => "RS256",
            3 => "ES256",
            4 => "PS256",
            5 => "RS512",
            6 => "EdDSA256",
            _ => "EdDSA",
        }
    }

    pub fn value(&self) -> Value {
        let mut h = Map::new();
        h.insert("alg".into(), json!(self.alg()));
        let kid = if self.alg() == "RS256" { "r1" } else { "e1" };
        if let Some(kid) = self.kid.value(kid) {
            h.insert("kid".into(), kid);
        }
        if let Some(typ) = self.typ.value("JWT") {
            h.insert("typ".into(), typ);
        }
        if self.jku {
            h.insert("jku".into(), json!("https://evil.example/jwks"));
        }
        if self.jwk {
            h.insert("jwk".into(), json!({"kty": "oct", "k": "c2VjcmV0"}));
        }
        if self.crit {
            h.insert("crit".into(), json!(["exp"]));
        }
        Value::Object(h)
    }

    /// Whether the header names an algorithm the provider's metadata lists.
    pub fn is_allowed(&self) -> bool {
        matches!(self.alg(), "EdDSA" | "RS256")
    }
}

pub fn insert(claims: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    if let Some(v) = value {
        claims.insert(name.into(), v);
    }
}

/// `header.payload.signature`, signed with the RSA key when the header
/// says RS256 and with the Ed25519 key otherwise (so `none`, HS256... carry
/// a real signature by a published key).
pub fn sign(header: &Header, payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header.value()).unwrap()),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let keys = keys();
    let signature = if header.alg() == "RS256" {
        keys.rsa.sign(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            input.as_bytes(),
        )
    } else {
        keys.ed
            .sign(&CoreJwsSigningAlgorithm::EdDsa, input.as_bytes())
    }
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The algorithms the provider's metadata lists.
pub fn algorithms() -> [CoreJwsSigningAlgorithm; 2] {
    [
        CoreJwsSigningAlgorithm::EdDsa,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    ]
}
