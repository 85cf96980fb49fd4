//! RSA verification through aws-lc-rs, and the key checks around it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey};
use openidconnect::PrivateSigningKey;
use serde_json::{json, Value};

use super::*;
use crate::oidc::test_jwt::key;

const MESSAGE: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ";

const RSA_ALGORITHMS: [CoreJwsSigningAlgorithm; 6] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
];

fn test_key() -> CoreRsaPrivateSigningKey {
    key(include_str!("../id_token/test-key.pem"), "k1")
}

/// The public JWK as a provider publishes it.
fn public_jwk(key: &CoreRsaPrivateSigningKey) -> Value {
    serde_json::to_value(key.as_verification_key()).unwrap()
}

fn provider_key(jwk: Value) -> ProviderKey {
    serde_json::from_value(jwk).unwrap()
}

#[test]
fn every_rsa_algorithm_verifies_and_a_changed_signature_or_message_does_not() {
    let signer = test_key();
    let key = provider_key(public_jwk(&signer));
    assert!(key.rsa.is_some(), "RSA members parsed for aws-lc-rs");
    for alg in &RSA_ALGORITHMS {
        let signature = signer.sign(alg, MESSAGE).unwrap();
        key.verify_signature(alg, MESSAGE, &signature)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));

        let mut flipped = signature.clone();
        flipped[10] ^= 1;
        assert!(
            key.verify_signature(alg, MESSAGE, &flipped).is_err(),
            "{alg:?}"
        );
        assert!(
            key.verify_signature(alg, b"other", &signature).is_err(),
            "{alg:?}"
        );
        assert!(key.verify_signature(alg, MESSAGE, &[]).is_err(), "{alg:?}");
    }
}

#[test]
fn a_signature_made_with_one_algorithm_does_not_verify_as_another() {
    let signer = test_key();
    let key = provider_key(public_jwk(&signer));
    let pkcs1 = signer
        .sign(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, MESSAGE)
        .unwrap();
    for alg in &RSA_ALGORITHMS[1..] {
        assert!(
            key.verify_signature(alg, MESSAGE, &pkcs1).is_err(),
            "{alg:?}"
        );
    }
}

#[test]
fn a_key_published_for_one_algorithm_refuses_the_others() {
    let signer = test_key();
    let mut jwk = public_jwk(&signer);
    jwk["alg"] = json!("RS256");
    let key = provider_key(jwk);
    let pss = CoreJwsSigningAlgorithm::RsaSsaPssSha256;
    let signature = signer.sign(&pss, MESSAGE).unwrap();
    assert!(matches!(
        key.verify_signature(&pss, MESSAGE, &signature),
        Err(SignatureVerificationError::InvalidKey(_))
    ));
    let rs256 = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
    let signature = signer.sign(&rs256, MESSAGE).unwrap();
    assert!(key.verify_signature(&rs256, MESSAGE, &signature).is_ok());
}

#[test]
fn an_encryption_key_does_not_verify_signatures() {
    let signer = test_key();
    let mut jwk = public_jwk(&signer);
    jwk["use"] = json!("enc");
    let key = provider_key(jwk);
    let alg = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
    let signature = signer.sign(&alg, MESSAGE).unwrap();
    assert!(matches!(
        key.verify_signature(&alg, MESSAGE, &signature),
        Err(SignatureVerificationError::InvalidKey(_))
    ));
}

#[test]
fn keys_under_2048_bits_are_refused() {
    let weak = key(include_str!("weak-1024-key.pem"), "k1");
    let key = provider_key(public_jwk(&weak));
    let alg = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
    let signature = weak.sign(&alg, MESSAGE).unwrap();
    assert!(key.verify_signature(&alg, MESSAGE, &signature).is_err());
}

#[test]
fn a_modulus_with_leading_zero_bytes_still_verifies() {
    let signer = test_key();
    let mut jwk = public_jwk(&signer);
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    jwk["n"] = json!(URL_SAFE_NO_PAD.encode([&[0u8, 0][..], &n].concat()));
    let key = provider_key(jwk);
    let alg = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
    let signature = signer.sign(&alg, MESSAGE).unwrap();
    assert!(key.verify_signature(&alg, MESSAGE, &signature).is_ok());
}

#[test]
fn a_key_set_keeps_the_keys_it_understands_and_round_trips() {
    let signer = test_key();
    let set: ProviderKeySet = serde_json::from_value(json!({"keys": [
        public_jwk(&signer),
        // An EC key: verified by `openidconnect` itself.
        {"kty": "EC", "crv": "P-256", "kid": "ec",
         "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
         "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        // Not a key: skipped, as `openidconnect` does.
        {"kty": "nonsense"},
        // An RSA key whose modulus is not base64url: kept (as `openidconnect`
        // keeps it), never verifies.
        {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
    ]}))
    .unwrap();
    let ids: Vec<_> = set
        .keys()
        .iter()
        .map(|k| k.key_id().map(|id| id.as_str().to_owned()))
        .collect();
    assert_eq!(
        ids,
        [Some("k1"), Some("ec"), Some("broken")].map(|id| id.map(str::to_owned))
    );

    let broken = &set.keys()[2];
    assert!(broken.rsa.is_none());
    let alg = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
    let signature = signer.sign(&alg, MESSAGE).unwrap();
    assert!(matches!(
        broken.verify_signature(&alg, MESSAGE, &signature),
        Err(SignatureVerificationError::InvalidKey(_))
    ));
    assert!(set.keys()[0]
        .verify_signature(&alg, MESSAGE, &signature)
        .is_ok());

    let again: ProviderKeySet =
        serde_json::from_value(serde_json::to_value(&set).unwrap()).unwrap();
    assert_eq!(again.keys().len(), 3);
    assert!(again.keys()[0].rsa.is_some());
}
