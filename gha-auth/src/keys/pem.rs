//! Just enough PEM for unencrypted PKCS#8 private keys (RFC 7468 `PRIVATE KEY`) and for
//! SubjectPublicKeyInfo public keys (`PUBLIC KEY`, written only).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::KeyError;
use crate::secret::{SecretBytes, SecretString};

const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const END: &str = "-----END PRIVATE KEY-----";

/// The DER inside the first `PRIVATE KEY` block of `pem`.
pub(crate) fn decode_private_key(pem: &str) -> Result<SecretBytes, KeyError> {
    let Some(start) = pem.find(BEGIN) else {
        return Err(
            if pem.contains("-----BEGIN EC PRIVATE KEY-----")
                || pem.contains("-----BEGIN RSA PRIVATE KEY-----")
            {
                KeyError::InvalidPem(
                    "SEC1/PKCS#1 key: convert with `openssl pkcs8 -topk8 -nocrypt`",
                )
            } else if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
                KeyError::InvalidPem("encrypted keys are not supported")
            } else {
                KeyError::InvalidPem("no PRIVATE KEY block")
            },
        );
    };
    let body_start = start + BEGIN.len();
    let Some(body_len) = pem[body_start..].find(END) else {
        return Err(KeyError::InvalidPem("unterminated block"));
    };
    let body = &pem[body_start..body_start + body_len];
    let compact: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    STANDARD
        .decode(compact.as_bytes())
        .map(SecretBytes::new)
        .map_err(|_| KeyError::InvalidPem("bad base64"))
}

/// `der` as a PEM `PRIVATE KEY` block with 64-column lines.
pub(crate) fn encode_private_key(der: &[u8]) -> SecretString {
    let encoded = Zeroizing::new(STANDARD.encode(der));
    SecretString::new(block(&encoded, BEGIN, END))
}

/// `der` (a SubjectPublicKeyInfo) as a PEM `PUBLIC KEY` block with 64-column lines.
pub(crate) fn encode_public_key(der: &[u8]) -> String {
    block(
        &STANDARD.encode(der),
        "-----BEGIN PUBLIC KEY-----",
        "-----END PUBLIC KEY-----",
    )
}

fn block(encoded: &str, begin: &str, end: &str) -> String {
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 64 + begin.len() + 40);
    out.push_str(begin);
    out.push('\n');
    for line in encoded.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(end);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = encode_private_key(&der);
        assert!(pem.expose().starts_with(BEGIN));
        assert!(
            pem.expose()
                .lines()
                .all(|l| l.len() <= 64 || l.starts_with("-----"))
        );
        assert_eq!(decode_private_key(pem.expose()).unwrap().expose(), &der[..]);
    }

    #[test]
    fn explains_what_is_wrong() {
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(
            matches!(decode_private_key(sec1), Err(KeyError::InvalidPem(m)) if m.contains("pkcs8"))
        );
        assert!(decode_private_key("garbage").is_err());
        assert!(decode_private_key("-----BEGIN PRIVATE KEY-----\nAAAA").is_err());
        assert!(
            decode_private_key("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----")
                .is_err()
        );
    }
}
