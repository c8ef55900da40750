//! How a consumer authenticates at the token endpoint: a client secret (`client_secret_basic`)
//! or a private key (`private_key_jwt`, RFC 7523). Files are re-read at every token request, so
//! a secret or key replaced on disk (rotation) is used from the next request on.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use zeroize::Zeroizing;

use super::error::ConsumerError;
use crate::SecretString;
use crate::keys::SigningKey;

/// Largest credential file read.
const MAX_FILE: u64 = 64 * 1024;

/// Lifetime of a client assertion: short, it is used once.
pub(crate) const ASSERTION_LIFETIME_SECS: i64 = 60;

/// The RFC 7523 client assertion type.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client's credentials for the client-credentials grant.
#[derive(Clone)]
pub struct ClientAuth {
    client_id: String,
    method: Method,
}

#[derive(Clone)]
enum Method {
    SecretValue(SecretString),
    SecretFile(PathBuf),
    KeyValue(SigningKey),
    KeyFile(PathBuf),
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = match &self.method {
            Method::SecretValue(_) => "client_secret_basic (value)".to_owned(),
            Method::SecretFile(path) => format!("client_secret_basic ({})", path.display()),
            Method::KeyValue(key) => format!("private_key_jwt (kid {})", key.kid()),
            Method::KeyFile(path) => format!("private_key_jwt ({})", path.display()),
        };
        f.debug_struct("ClientAuth")
            .field("client_id", &self.client_id)
            .field("method", &method)
            .finish()
    }
}

/// What one token request presents: a Basic header or form fields.
pub(crate) enum Presented {
    Basic(SecretString),
    Assertion(SecretString),
}

impl ClientAuth {
    /// `client_secret_basic` with the secret in a file (trailing newline ignored), re-read at
    /// every token request.
    pub fn secret_file(client_id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self::with(client_id, Method::SecretFile(path.into()))
    }

    /// `client_secret_basic` with a secret held in memory.
    pub fn secret(client_id: impl Into<String>, secret: SecretString) -> Self {
        Self::with(client_id, Method::SecretValue(secret))
    }

    /// `private_key_jwt` with a PKCS#8 PEM private key file, re-read at every token request.
    pub fn private_key_file(client_id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self::with(client_id, Method::KeyFile(path.into()))
    }

    /// `private_key_jwt` with a key held in memory.
    pub fn private_key(client_id: impl Into<String>, key: SigningKey) -> Self {
        Self::with(client_id, Method::KeyValue(key))
    }

    fn with(client_id: impl Into<String>, method: Method) -> Self {
        Self {
            client_id: client_id.into(),
            method,
        }
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The RFC 8414 name of the method.
    pub fn method_name(&self) -> &'static str {
        match self.method {
            Method::SecretValue(_) | Method::SecretFile(_) => "client_secret_basic",
            Method::KeyValue(_) | Method::KeyFile(_) => "private_key_jwt",
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConsumerError> {
        let ok = !self.client_id.is_empty()
            && self.client_id.len() <= 128
            && self
                .client_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b));
        if ok {
            Ok(())
        } else {
            Err(ConsumerError::Config(
                "client id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -".into(),
            ))
        }
    }

    /// The credential for one request; `audience` is the assertion's `aud` (the token URL).
    pub(crate) fn present(
        &self,
        audience: &str,
        now_unix: i64,
    ) -> Result<Presented, ConsumerError> {
        match &self.method {
            Method::SecretValue(secret) => Ok(Presented::Basic(self.basic(secret))),
            Method::SecretFile(path) => {
                let secret = read_secret_file(path, "client secret")?;
                Ok(Presented::Basic(self.basic(&secret)))
            }
            Method::KeyValue(key) => self.assertion(key, audience, now_unix),
            Method::KeyFile(path) => {
                let pem = read_secret_file(path, "private key")?;
                let key = SigningKey::from_pkcs8_pem(pem.expose()).map_err(|e| {
                    ConsumerError::Credential {
                        what: "private key",
                        path: path.clone(),
                        message: e.to_string(),
                    }
                })?;
                self.assertion(&key, audience, now_unix)
            }
        }
    }

    /// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
    fn basic(&self, secret: &SecretString) -> SecretString {
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
        let id: String = encode(&self.client_id);
        let secret: Zeroizing<String> = Zeroizing::new(encode(secret.expose()));
        let pair = Zeroizing::new(format!("{id}:{}", secret.as_str()));
        SecretString::new(format!("Basic {}", STANDARD.encode(pair.as_bytes())))
    }

    fn assertion(
        &self,
        key: &SigningKey,
        audience: &str,
        now_unix: i64,
    ) -> Result<Presented, ConsumerError> {
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'a str,
            iat: i64,
            exp: i64,
            jti: String,
        }
        let failed = |e: crate::jwt::JwtError| {
            ConsumerError::Config(format!("cannot sign the client assertion: {e}"))
        };
        let claims = Claims {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: audience,
            iat: now_unix,
            exp: now_unix + ASSERTION_LIFETIME_SECS,
            jti: crate::jwt::new_jti().map_err(failed)?,
        };
        let signed = crate::jwt::encode_jws(key, "JWT", &claims).map_err(failed)?;
        Ok(Presented::Assertion(SecretString::new(signed)))
    }
}

/// Reads a secret from a file: at most 64 KiB, UTF-8, trailing whitespace dropped, not empty.
pub fn read_secret_file(path: &Path, what: &'static str) -> Result<SecretString, ConsumerError> {
    let fail = |message: String| ConsumerError::Credential {
        what,
        path: path.to_owned(),
        message,
    };
    let metadata = std::fs::metadata(path).map_err(|e| fail(e.kind().to_string()))?;
    if metadata.len() > MAX_FILE {
        return Err(fail(format!("larger than {MAX_FILE} bytes")));
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| fail(e.kind().to_string()))?);
    let text = std::str::from_utf8(&bytes).map_err(|_| fail("not UTF-8".into()))?;
    let trimmed = text.trim_end();
    if trimmed.is_empty() {
        return Err(fail("empty".into()));
    }
    Ok(SecretString::new(trimmed.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Algorithm;

    #[test]
    fn basic_header_form_encodes_both_parts() {
        let auth = ClientAuth::secret("svc.a", SecretString::from("p:a ss/wörd"));
        let Presented::Basic(header) = auth.present("x", 0).unwrap() else {
            panic!("basic expected");
        };
        let encoded = header.expose().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "svc.a:p%3Aa+ss%2Fw%C3%B6rd");
    }

    #[test]
    fn secret_files_are_reread_and_checked() {
        let dir = std::env::temp_dir().join(format!(
            "gha-auth-consumer-cred-{}-{}",
            std::process::id(),
            crate::jwt::new_jti().unwrap().replace(['-', '_'], "x")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "first-secret\n").unwrap();
        let auth = ClientAuth::secret_file("svc", &path);
        let header = |auth: &ClientAuth| match auth.present("x", 0).unwrap() {
            Presented::Basic(h) => h.expose().to_owned(),
            Presented::Assertion(_) => panic!("basic expected"),
        };
        let one = header(&auth);
        std::fs::write(&path, "second-secret").unwrap();
        assert_ne!(header(&auth), one, "the file is read again");

        std::fs::write(&path, "\n  \n").unwrap();
        let error = auth.present("x", 0).err().unwrap().to_string();
        assert!(error.contains("empty"), "{error}");
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(auth.present("x", 0).is_err());
        std::fs::remove_file(&path).unwrap();
        let error = auth.present("x", 0).err().unwrap().to_string();
        assert!(
            error.contains("client secret") && error.contains("not found"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!format!("{auth:?}").contains("second-secret"));
    }

    #[test]
    fn assertions_carry_the_rfc7523_claims() {
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let auth = ClientAuth::private_key("svc", key.clone());
        let Presented::Assertion(jwt) = auth.present("https://a/oauth2/token", 1_000).unwrap()
        else {
            panic!("assertion expected");
        };
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[1])
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["iss"], "svc");
        assert_eq!(claims["sub"], "svc");
        assert_eq!(claims["aud"], "https://a/oauth2/token");
        assert_eq!(claims["exp"], 1_060);
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
        assert!(format!("{auth:?}").contains(key.kid()));
    }

    #[test]
    fn client_ids_are_validated() {
        assert!(
            ClientAuth::secret("ok-id_1.~", "s".into())
                .validate()
                .is_ok()
        );
        for bad in ["", "has space", "a:b", &"x".repeat(129)] {
            assert!(
                ClientAuth::secret(bad, "s".into()).validate().is_err(),
                "{bad}"
            );
        }
    }
}
