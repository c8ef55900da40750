//! Link keys from configuration.

use std::path::Path;
use std::sync::Arc;

use super::{LinkKeySet, LinkKeySource, LinkKeyUsage};
use crate::error::ConfigError;

/// A fixed list of link-key digests: from code, a JSON string or a file in the
/// [`LinkKeySet`] format. Use it until the authority serves `/v1/link-keys/{name}`.
#[derive(Debug)]
pub struct StaticLinkKeys {
    set: Arc<LinkKeySet>,
    usage: LinkKeyUsage,
}

impl StaticLinkKeys {
    /// The given keys.
    pub fn new(set: LinkKeySet) -> Self {
        Self {
            set: Arc::new(set),
            usage: LinkKeyUsage::new(),
        }
    }

    /// Keys from a JSON document in the [`LinkKeySet`] format.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let set: LinkKeySet = serde_json::from_str(json).map_err(|e| ConfigError::LinkKey {
            name: String::new(),
            reason: format!("not a link-key set: {e}"),
        })?;
        Ok(Self::new(set))
    }

    /// Keys from a JSON file in the [`LinkKeySet`] format.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|e| ConfigError::LinkKey {
            name: String::new(),
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        Self::from_json(&json)
    }

    /// The integration name the document carries.
    pub fn name(&self) -> &str {
        &self.set.name
    }
}

impl LinkKeySource for StaticLinkKeys {
    fn keys(&self) -> Option<Arc<LinkKeySet>> {
        Some(Arc::clone(&self.set))
    }

    fn usage(&self) -> &LinkKeyUsage {
        &self.usage
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn reads_the_documented_format() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(
            file,
            r#"{{"name":"epicor","keys":[{{"id":"k1","digest":"{}","state":"current","expires_at":null}}]}}"#,
            "ab".repeat(32)
        )
        .unwrap();
        let source = StaticLinkKeys::from_file(file.path()).unwrap();
        assert_eq!(source.name(), "epicor");
        assert_eq!(source.keys().unwrap().keys.len(), 1);
        assert!(StaticLinkKeys::from_json(r#"{"name":"x","keys":[{"id":"k"}]}"#).is_err());
        assert!(StaticLinkKeys::from_file("/nonexistent/keys.json").is_err());
    }
}
