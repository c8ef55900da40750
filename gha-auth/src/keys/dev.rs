//! The development keys shipped in `keys-dev/`, which a production server must refuse.

/// Key ids (RFC 7638 thumbprints) of `keys-dev/es256-dev.pem`, `eddsa-dev.pem` and
/// `rs256-dev.pem`. Their private keys are public in the repository.
pub const DEV_KEY_IDS: [&str; 3] = [
    "aJhgONQOSkanvonw2T857RsehDC0mhyJ9aaN5NNP1M4",
    "AXgmNtGJqrD_Feja9RGK5McMwSpfZjd7r9r3dFGAJkY",
    "rgevuWwBKeam7p9XFV-KWGQ3bAuJ1_LRxiuR92yNLow",
];

/// Whether `kid` is one of the repository's development keys; the server refuses to sign with
/// (or trust) such a key unless dev mode is on.
pub fn is_dev_key(kid: &str) -> bool {
    DEV_KEY_IDS.contains(&kid)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::keys::{JwkSet, SigningKey};

    fn keys_dev() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../keys-dev")
    }

    #[test]
    fn constants_are_the_thumbprints_of_the_files_in_keys_dev() {
        let files = ["es256-dev.pem", "eddsa-dev.pem", "rs256-dev.pem"];
        for (file, kid) in files.iter().zip(DEV_KEY_IDS) {
            let pem = std::fs::read_to_string(keys_dev().join(file)).unwrap();
            let key = SigningKey::from_pkcs8_pem(&pem).unwrap();
            assert_eq!(key.kid(), kid, "{file}");
            assert!(is_dev_key(key.kid()));
        }
        let jwks = std::fs::read(keys_dev().join("jwks-dev.json")).unwrap();
        let parsed = JwkSet::parse_lenient(&jwks).unwrap();
        let kids: Vec<_> = parsed.keys.iter().map(|k| k.kid()).collect();
        assert_eq!(kids, DEV_KEY_IDS);
        assert_eq!(parsed.skipped, 0);
        assert!(!is_dev_key(
            SigningKey::generate(crate::keys::Algorithm::ES256)
                .unwrap()
                .kid()
        ));
    }
}
