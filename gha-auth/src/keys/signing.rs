//! Private signing keys: generation, PKCS#8 import and export, signing.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair, RsaPublicKeyComponents,
};

use super::verifying::{PublicParts, RSA_MAX_BITS, RSA_MIN_BITS};
use super::{Algorithm, Jwk, KeyError, VerifyingKey, b64, pem, pkcs8};
use crate::secret::{SecretBytes, SecretString};

/// A private key of one algorithm, ready to sign.
///
/// The key id is the RFC 7638 thumbprint of the public key. The PKCS#8 document is kept in
/// [`SecretBytes`] (wiped on drop) and the parsed key pair is cached, so signing does no parsing.
/// `Debug` shows the algorithm and key id only. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<Inner>,
}

struct Inner {
    pkcs8: SecretBytes,
    pair: Pair,
    verifying: VerifyingKey,
}

/// The parsed key pair. aws-lc frees (and clears) the key memory when it is dropped.
enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

impl SigningKey {
    /// A fresh key.
    ///
    /// P-256 and Ed25519 keys come from *ring* with its system random generator; RSA-2048 keys
    /// from aws-lc-rs, because *ring* cannot generate RSA keys.
    pub fn generate(alg: Algorithm) -> Result<Self, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = match alg {
            Algorithm::ES256 => ring::signature::EcdsaKeyPair::generate_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &rng,
            )
            .map(|doc| SecretBytes::new(doc.as_ref().to_vec()))
            .map_err(|_| KeyError::Generation)?,
            Algorithm::EdDSA => ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
                .map(|doc| SecretBytes::new(doc.as_ref().to_vec()))
                .map_err(|_| KeyError::Generation)?,
            Algorithm::RS256 => {
                let pair =
                    RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generation)?;
                let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| KeyError::Generation)?;
                SecretBytes::new(der.as_ref().to_vec())
            }
        };
        Self::from_pkcs8(alg, pkcs8)
    }

    /// Imports an unencrypted PKCS#8 DER private key, which must be a key for `alg`.
    pub fn from_pkcs8_der(alg: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        Self::from_pkcs8(alg, SecretBytes::new(der.to_vec()))
    }

    /// Imports a PEM `PRIVATE KEY` (PKCS#8) block; the algorithm follows from the key
    /// (P-256 → ES256, Ed25519 → EdDSA, RSA → RS256).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        let der = pem::decode_private_key(pem)?;
        let alg = pkcs8::algorithm_of(der.expose()).ok_or(KeyError::UnrecognisedPrivateKey)?;
        Self::from_pkcs8(alg, der)
    }

    fn from_pkcs8(alg: Algorithm, mut pkcs8: SecretBytes) -> Result<Self, KeyError> {
        let invalid = |e: aws_lc_rs::error::KeyRejected| KeyError::InvalidPrivateKey {
            alg,
            reason: e.description_(),
        };
        let pair = match alg {
            Algorithm::ES256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.expose())
                    .map_err(invalid)?,
            ),
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8.expose()).map_err(invalid)?;
                // *ring* writes PKCS#8 v2 documents that OpenSSL cannot read; keep the plain v1
                // form (RFC 8410) so exported keys work with other tools.
                let v1 = pair.to_pkcs8v1().map_err(|_| KeyError::Encoding)?;
                pkcs8 = SecretBytes::new(v1.as_ref().to_vec());
                Pair::Ed(pair)
            }
            Algorithm::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(pkcs8.expose()).map_err(invalid)?;
                let bits = pair.public_modulus_len() * 8;
                if bits < RSA_MIN_BITS {
                    return Err(KeyError::RsaKeyTooSmall { bits });
                }
                if bits > RSA_MAX_BITS {
                    return Err(KeyError::RsaKeyTooLarge { bits });
                }
                Pair::Rsa(pair)
            }
        };
        let verifying = public_key(alg, &pair)?;
        Ok(Self {
            inner: Arc::new(Inner {
                pkcs8,
                pair,
                verifying,
            }),
        })
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.verifying.algorithm()
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        self.inner.verifying.kid()
    }

    /// The public JWK to publish (with `kid`, `alg` and `use: sig`).
    pub fn public_jwk(&self) -> &Jwk {
        self.inner.verifying.jwk()
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.inner.verifying.clone()
    }

    /// The private key as PEM PKCS#8, for storage or export; handle like any secret.
    pub fn to_pkcs8_pem(&self) -> SecretString {
        pem::encode_private_key(self.inner.pkcs8.expose())
    }

    /// The private key as PKCS#8 DER, for storage or export; handle like any secret.
    pub fn to_pkcs8_der(&self) -> SecretBytes {
        self.inner.pkcs8.clone()
    }

    /// Signs a JWS signing input (`header.payload`) and returns the raw JWS signature
    /// (64 bytes `r || s` for ES256, 64 for EdDSA, the modulus length for RS256).
    pub fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match &self.inner.pair {
            Pair::Ec(pair) => pair
                .sign(&rng, signing_input)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| KeyError::Signing),
            Pair::Ed(pair) => Ok(pair.sign(signing_input).as_ref().to_vec()),
            Pair::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, signing_input, &mut signature)
                    .map_err(|_| KeyError::Signing)?;
                Ok(signature)
            }
        }
    }
}

fn public_key(alg: Algorithm, pair: &Pair) -> Result<VerifyingKey, KeyError> {
    let mut jwk = Jwk {
        kty: alg.key_type().to_owned(),
        crv: None,
        x: None,
        y: None,
        n: None,
        e: None,
        kid: None,
        alg: Some(alg.name().to_owned()),
        key_use: Some("sig".to_owned()),
        key_ops: None,
    };
    let rsa_components;
    let parts = match pair {
        Pair::Ec(pair) => {
            let point = pair.public_key().as_ref();
            let (x, y) = point
                .get(1..)
                .unwrap_or_default()
                .split_at(point.len().saturating_sub(1) / 2);
            jwk.crv = Some("P-256".to_owned());
            jwk.x = Some(b64::encode(x));
            jwk.y = Some(b64::encode(y));
            PublicParts::Ec(point)
        }
        Pair::Ed(pair) => {
            let public = pair.public_key().as_ref();
            jwk.crv = Some("Ed25519".to_owned());
            jwk.x = Some(b64::encode(public));
            PublicParts::Ed(public)
        }
        Pair::Rsa(pair) => {
            rsa_components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
            jwk.n = Some(b64::encode(&rsa_components.n));
            jwk.e = Some(b64::encode(&rsa_components.e));
            PublicParts::Rsa {
                n: &rsa_components.n,
                e: &rsa_components.e,
            }
        }
    };
    let kid = jwk.thumbprint()?;
    jwk.kid = Some(kid.clone());
    VerifyingKey::build(alg, kid, jwk, parts)
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.algorithm())
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_verify() {
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg).unwrap();
            assert_eq!(key.algorithm(), alg);
            assert_eq!(key.kid(), key.public_jwk().thumbprint().unwrap());
            assert_eq!(key.public_jwk().kid.as_deref(), Some(key.kid()));
            assert_eq!(key.kid().len(), 43);
            let signature = key.sign(b"header.payload").unwrap();
            let public = key.verifying_key();
            assert!(
                public.verify_signature(b"header.payload", &signature),
                "{alg}"
            );
            assert!(
                !public.verify_signature(b"header.payload2", &signature),
                "{alg}"
            );
            // The published JWK builds the same verifying key.
            assert_eq!(VerifyingKey::from_jwk(key.public_jwk()).unwrap(), public);
        }
    }

    #[test]
    fn pem_round_trip_detects_the_algorithm() {
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg).unwrap();
            let pem = key.to_pkcs8_pem();
            let back = SigningKey::from_pkcs8_pem(pem.expose()).unwrap();
            assert_eq!(back.algorithm(), alg);
            assert_eq!(back.kid(), key.kid());
            let der = key.to_pkcs8_der();
            assert_eq!(
                SigningKey::from_pkcs8_der(alg, der.expose()).unwrap().kid(),
                key.kid()
            );
        }
    }

    #[test]
    fn a_key_of_another_algorithm_is_refused() {
        let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let err =
            SigningKey::from_pkcs8_der(Algorithm::ES256, ed.to_pkcs8_der().expose()).unwrap_err();
        assert!(matches!(
            err,
            KeyError::InvalidPrivateKey {
                alg: Algorithm::ES256,
                ..
            }
        ));
        assert!(SigningKey::from_pkcs8_der(Algorithm::RS256, b"\x30\x00").is_err());
    }

    /// Keys written by `openssl genpkey` (PKCS#8 v1) import, and give the public key OpenSSL
    /// prints; keys this crate writes are read back by OpenSSL (checked by hand, see keys-dev).
    #[test]
    fn imports_openssl_generated_keys() {
        let ec = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfndDRGIDp3XafavU
yomcRozEr6Y4o2awO0+ec3WAKwehRANCAASeYGE0/gdacuFipz7dsd482V9kW82k
txciJTtcC/wdwYXB2GOap0ux2fy97iJlNz2uRygw9GlAkk+MBizrtYk+
-----END PRIVATE KEY-----
";
        let key = SigningKey::from_pkcs8_pem(ec).unwrap();
        assert_eq!(key.algorithm(), Algorithm::ES256);
        assert_eq!(
            key.public_jwk().x.as_deref(),
            Some("nmBhNP4HWnLhYqc-3bHePNlfZFvNpLcXIiU7XAv8HcE")
        );
        assert_eq!(
            key.public_jwk().y.as_deref(),
            Some("hcHYY5qnS7HZ_L3uImU3Pa5HKDD0aUCST4wGLOu1iT4")
        );

        let ed = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINF89KDMfMvX6BxHhOZwqsvplKAA3NwyKuZMAuWPgOh5\n-----END PRIVATE KEY-----\n";
        let key = SigningKey::from_pkcs8_pem(ed).unwrap();
        assert_eq!(key.algorithm(), Algorithm::EdDSA);
        assert_eq!(
            key.public_jwk().x.as_deref(),
            Some("JPsmL4LLZjsthWekNZVeo5yEgiKU57Y38vB-3Zwj7l4")
        );
        assert_eq!(
            key.to_pkcs8_pem().expose(),
            ed,
            "Ed25519 keys are kept as PKCS#8 v1"
        );
    }

    /// `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024`, PKCS#8.
    const RSA_1024_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBAMJPnqLm1slnpYn7
Y6e46Hr/0NYjbm1W55FRm+mfA/OJEAFe06iQ8Knzbm0vS2BW6LNNuVVKqNdSzhHM
E7bZl6WTGy5Arw8g0Ea01gsokqqFn8YhNQWygjosc0xMBqla5ufs5gZaAI1cTkLN
pbXH2HqOejb8YwPO+f0jjwy6HarJAgMBAAECgYAW8IFg5/Gpe1P+sy/zqA/CHZtQ
/IPX4q+Z51GJxh0YTjEWiFRijSHsXnHF8BRs/jWgnWdo21SNfxgW38ngB1YwoDVf
yAkUR1Ga7z1SJzaeHT+CwWwHoH6nddWD4FL/KpUMg93ASIMCTtt6/7ZKQW3eg4hj
Q4ev+qXQJNYqiu9QpQJBAOiASUbk2SGDpf7kMLPF3qaoCK/fEEl4LaxSmB86qgnF
GLd4t9tKtEgOeGrzBPeRNENw936C582R7h1nDVtlBssCQQDV8zS8nX+8mSbBHrUV
HiX5L4aeV5yE7EV2ItS9GMcdYC02vd7QqLfUj+8S0IlyzSZIsK3GoxQnETXQgr6l
og47AkEA3fjEfNu19UpD68MeQDQUKxZYHNihKxOCv3enZoFSn7s9qsSk+8cpsXWn
P6w+vMEznYO3tl/yQRAmvomJdg1Q2wJAa8bGTDWzAVjNMv+7DNZRHsQYNm/AAx3a
p/ZH4LI4q82lOSxQsCAt6sBPGNVASDqcDIYkJCpGnp+G0nDqhRmrvQJBAMlY/tmL
2O4ZqctBR9gwj3m4p5JL4aeeGH2VwNvv7jMfr/C8axKd6ZnzsL3yDAuZaXoCY+yh
AcIlxzj1ai7QEKw=
-----END PRIVATE KEY-----
";

    #[test]
    fn rsa_below_2048_bits_is_refused() {
        let err = SigningKey::from_pkcs8_pem(RSA_1024_PKCS8).unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::RsaKeyTooSmall { bits: 1024 }
                    | KeyError::InvalidPrivateKey {
                        alg: Algorithm::RS256,
                        ..
                    }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn debug_shows_algorithm_and_kid_only() {
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg).unwrap();
            let debug = format!("{key:?} {key:#?}");
            assert_eq!(
                format!("{key:?}"),
                format!("SigningKey {{ alg: {alg}, kid: {:?}, .. }}", key.kid())
            );
            let pem = key.to_pkcs8_pem();
            let body: String = pem
                .expose()
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect();
            for chunk in body.as_bytes().chunks(16) {
                assert!(
                    !debug.contains(std::str::from_utf8(chunk).unwrap()),
                    "{debug}"
                );
            }
            let der = key.to_pkcs8_der();
            assert!(
                !debug.contains(&format!("{:?}", &der.expose()[..8])),
                "{debug}"
            );
            assert_eq!(
                format!("{der:?}"),
                format!("[redacted] ({} bytes)", der.len())
            );
        }
    }
}
