//! The fixture the `jwt` and `jwt_ratio` benches share: an access token signed with a fresh key,
//! a verifier that accepts it, and the same token's signature laid out for one bare aws-lc-rs
//! verification (the floor both benches compare against).

use std::error::Error;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey,
    VerificationAlgorithm,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use gha_auth::ManualClock;
use gha_auth::jwt::{AccessClaims, Validation, Verifier, issue};
use gha_auth::keys::{Algorithm, SigningKey};

pub(crate) const NOW: i64 = 1_700_000_000;

pub(crate) struct Fixture {
    pub(crate) key: SigningKey,
    #[allow(dead_code)] // only the `jwt` bench issues tokens
    pub(crate) claims: AccessClaims,
    pub(crate) token: String,
    pub(crate) verifier: Verifier,
    pub(crate) bare_alg: &'static dyn VerificationAlgorithm,
    pub(crate) public_key: Vec<u8>,
    pub(crate) signing_input: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

/// Builds the fixture for `alg`, checking once that both the full and the bare verification
/// accept the token.
pub(crate) fn fixture(alg: Algorithm) -> Result<Fixture, Box<dyn Error>> {
    let key = SigningKey::generate(alg)?;
    let claims = AccessClaims::new(
        "https://auth.gha.test",
        "svc-ap-automation",
        "field-service.api",
        "svc-ap-automation",
        NOW,
        TimeDelta::minutes(10),
    )?
    .with_scopes(["orders.read", "orders.write"]);
    let token = issue(&key, &claims)?;
    let validation = Validation::new("https://auth.gha.test", ["field-service.api"])?;
    let verifier = Verifier::new(validation, ManualClock::at_unix(NOW).shared());
    verifier.verify::<AccessClaims>(&token, &key.verifying_key())?;

    // The raw public key as aws-lc-rs takes it, straight from the private key.
    let der = key.to_pkcs8_der();
    let (bare_alg, public_key): (&'static dyn VerificationAlgorithm, Vec<u8>) = match alg {
        Algorithm::ES256 => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.expose())?;
            (
                &ECDSA_P256_SHA256_FIXED,
                pair.public_key().as_ref().to_vec(),
            )
        }
        Algorithm::EdDSA => (
            &ED25519,
            Ed25519KeyPair::from_pkcs8(der.expose())?
                .public_key()
                .as_ref()
                .to_vec(),
        ),
        Algorithm::RS256 => (
            &RSA_PKCS1_2048_8192_SHA256,
            RsaKeyPair::from_pkcs8(der.expose())?
                .public_key()
                .as_ref()
                .to_vec(),
        ),
    };
    let (signing_input, signature) = token.rsplit_once('.').ok_or("token has no signature")?;
    let signature = URL_SAFE_NO_PAD.decode(signature)?;
    UnparsedPublicKey::new(bare_alg, &public_key)
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| "bare verification failed")?;
    let signing_input = signing_input.as_bytes().to_vec();
    Ok(Fixture {
        key,
        claims,
        token,
        verifier,
        bare_alg,
        public_key,
        signing_input,
        signature,
    })
}
