//! The provider's public keys. `openidconnect` parses them and picks the key
//! for a token; RSA signatures (what Authentik and most providers use) are
//! then verified with aws-lc-rs, the crypto library the TLS stack already
//! links: an ID token validates in 35 µs instead of 224 µs with the pure-Rust
//! `rsa` crate behind `CoreJsonWebKey` (docs/performance.md). Other key types
//! keep `openidconnect`'s own verification.

use base64::engine::general_purpose::{GeneralPurpose, NO_PAD};
use base64::{alphabet, Engine};
use openidconnect::core::{
    CoreJsonWebKey, CoreJsonWebKeyType, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, JsonWebKeySet, JsonWebKeyUse,
    SignatureVerificationError,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The provider's key set, as discovery and the JWKS endpoint return it.
pub type ProviderKeySet = JsonWebKeySet<ProviderKey>;

/// A key set from public JWKs, as the provider would publish them (tests,
/// benchmarks and fuzz targets build theirs from signing keys).
pub fn key_set<K: Serialize>(keys: &[K]) -> Result<ProviderKeySet, serde_json::Error> {
    serde_json::from_value(serde_json::json!({ "keys": keys }))
}

/// One public key of the provider.
#[derive(Debug, Clone)]
pub struct ProviderKey {
    jwk: CoreJsonWebKey,
    /// Modulus and exponent of an RSA key, big-endian without leading zeros.
    rsa: Option<aws_lc_rs::signature::RsaPublicKeyComponents<Vec<u8>>>,
}

impl<'de> Deserialize<'de> for ProviderKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct RsaMembers {
            n: String,
            e: String,
        }
        let value = serde_json::Value::deserialize(deserializer)?;
        let jwk = CoreJsonWebKey::deserialize(&value).map_err(serde::de::Error::custom)?;
        let rsa = if jwk.key_type() == &CoreJsonWebKeyType::RSA {
            // Unreadable members: the key never verifies an RSA signature.
            RsaMembers::deserialize(&value).ok().and_then(|m| {
                Some(aws_lc_rs::signature::RsaPublicKeyComponents {
                    n: unsigned_big_endian(&m.n)?,
                    e: unsigned_big_endian(&m.e)?,
                })
            })
        } else {
            None
        };
        Ok(Self { jwk, rsa })
    }
}

/// A base64url integer (RFC 7518 6.3.1) without the leading zero bytes some
/// providers add, as aws-lc-rs expects it. Decoded as leniently as
/// `openidconnect` decodes the other members (trailing bits allowed).
fn unsigned_big_endian(b64: &str) -> Option<Vec<u8>> {
    const BASE64URL: GeneralPurpose = GeneralPurpose::new(
        &alphabet::URL_SAFE,
        NO_PAD.with_decode_allow_trailing_bits(true),
    );
    let bytes = BASE64URL.decode(b64).ok()?;
    let first = bytes.iter().position(|b| *b != 0)?;
    Some(bytes[first..].to_vec())
}

impl Serialize for ProviderKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.jwk.serialize(serializer)
    }
}

/// The aws-lc-rs parameters for an RSA signature algorithm. Keys under 2048
/// bits are refused (NIST SP 800-131A).
fn rsa_parameters(
    alg: &CoreJwsSigningAlgorithm,
) -> Option<&'static aws_lc_rs::signature::RsaParameters> {
    use aws_lc_rs::signature as s;
    use CoreJwsSigningAlgorithm as A;
    Some(match alg {
        A::RsaSsaPkcs1V15Sha256 => &s::RSA_PKCS1_2048_8192_SHA256,
        A::RsaSsaPkcs1V15Sha384 => &s::RSA_PKCS1_2048_8192_SHA384,
        A::RsaSsaPkcs1V15Sha512 => &s::RSA_PKCS1_2048_8192_SHA512,
        A::RsaSsaPssSha256 => &s::RSA_PSS_2048_8192_SHA256,
        A::RsaSsaPssSha384 => &s::RSA_PSS_2048_8192_SHA384,
        A::RsaSsaPssSha512 => &s::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

impl JsonWebKey for ProviderKey {
    type KeyUse = CoreJsonWebKeyUse;
    type SigningAlgorithm = CoreJwsSigningAlgorithm;

    fn key_id(&self) -> Option<&JsonWebKeyId> {
        self.jwk.key_id()
    }

    fn key_type(&self) -> &CoreJsonWebKeyType {
        self.jwk.key_type()
    }

    fn key_use(&self) -> Option<&CoreJsonWebKeyUse> {
        self.jwk.key_use()
    }

    fn signing_alg(&self) -> JsonWebKeyAlgorithm<&CoreJwsSigningAlgorithm> {
        self.jwk.signing_alg()
    }

    fn new_symmetric(key: Vec<u8>) -> Self {
        Self {
            jwk: CoreJsonWebKey::new_symmetric(key),
            rsa: None,
        }
    }

    fn verify_signature(
        &self,
        alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureVerificationError> {
        let Some(parameters) = rsa_parameters(alg) else {
            return self.jwk.verify_signature(alg, message, signature);
        };
        let Some(rsa) = &self.rsa else {
            return Err(SignatureVerificationError::InvalidKey(
                "not a readable RSA key".to_owned(),
            ));
        };
        // The checks `CoreJsonWebKey` makes before verifying: the key may sign,
        // and with this algorithm.
        if self.key_use().is_some_and(|u| !u.allows_signature()) {
            return Err(SignatureVerificationError::InvalidKey(
                "key usage not permitted for digital signatures".to_owned(),
            ));
        }
        match self.signing_alg() {
            JsonWebKeyAlgorithm::Unspecified => {}
            JsonWebKeyAlgorithm::Algorithm(own) if own == alg => {}
            _ => {
                return Err(SignatureVerificationError::InvalidKey(
                    "key algorithm does not match the token's".to_owned(),
                ))
            }
        }
        rsa.verify(parameters, message, signature)
            .map_err(|_| SignatureVerificationError::CryptoError("bad signature".to_owned()))
    }

    fn hash_bytes(&self, bytes: &[u8], alg: &CoreJwsSigningAlgorithm) -> Result<Vec<u8>, String> {
        self.jwk.hash_bytes(bytes, alg)
    }
}

#[cfg(test)]
mod tests;
