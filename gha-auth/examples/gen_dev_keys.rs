//! Writes the development signing keys in `keys-dev/` (or the directory given as the first
//! argument): one PKCS#8 PEM per algorithm and `jwks-dev.json` with their public parts.
//!
//! ```sh
//! cargo run -p gha-auth --example gen_dev_keys -- keys-dev
//! ```
//!
//! Regenerating changes the key ids: update `gha_auth::keys::DEV_KEY_IDS` with the printed ones.

use std::error::Error;
use std::io::Write as _;
use std::path::PathBuf;

use gha_auth::keys::{Algorithm, JwkSet, SigningKey};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "keys-dev".to_owned()),
    );
    std::fs::create_dir_all(&dir)?;
    let mut jwks = JwkSet::default();
    let mut out = std::io::stdout().lock();
    for (alg, file) in [
        (Algorithm::ES256, "es256-dev.pem"),
        (Algorithm::EdDSA, "eddsa-dev.pem"),
        (Algorithm::RS256, "rs256-dev.pem"),
    ] {
        let key = SigningKey::generate(alg)?;
        std::fs::write(dir.join(file), key.to_pkcs8_pem().expose())?;
        jwks.keys.push(key.public_jwk().clone());
        writeln!(out, "{alg:<6} {file:<14} kid {}", key.kid())?;
    }
    let mut json = serde_json::to_string_pretty(&jwks)?;
    json.push('\n');
    std::fs::write(dir.join("jwks-dev.json"), json)?;
    Ok(())
}
