//! KV v2: versioned reads with their metadata, check-and-set writes, a read-modify-write helper
//! that retries on conflicts, listing, and a poller that publishes new versions.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rustify::enums::RequestMethod;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{Notify, watch};

use super::error::{VaultError, serde_detail};
use super::raw::{RawRequest, check_path, clean};
use super::schedule::{add, backoff_delay, random_unit};
use super::session::{TaskGuard, VaultSession};
use crate::SecretString;

/// Metadata of one version of a KV v2 secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct KvVersion {
    /// The version number (1, 2, …).
    pub version: u64,
    /// When it was written.
    pub created_time: DateTime<Utc>,
    /// When it was soft-deleted, if it was.
    #[serde(default, deserialize_with = "empty_time")]
    pub deletion_time: Option<DateTime<Utc>>,
    /// Whether it was destroyed.
    #[serde(default)]
    pub destroyed: bool,
    /// The secret's custom metadata (not secret).
    #[serde(default, deserialize_with = "null_map")]
    pub custom_metadata: HashMap<String, String>,
}

/// Vault writes `""` for "no deletion time".
fn empty_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    match text.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(serde::de::Error::custom),
    }
}

fn null_map<'de, D: Deserializer<'de>>(d: D) -> Result<HashMap<String, String>, D::Error> {
    Ok(Option::<HashMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

/// A KV v2 secret: its data and the metadata of the version read. `Debug` never shows the data.
#[derive(Clone)]
#[non_exhaustive]
pub struct KvSecret<T = KvData> {
    /// The secret's data.
    pub data: T,
    /// The version read.
    pub metadata: KvVersion,
}

impl<T> fmt::Debug for KvSecret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvSecret")
            .field("data", &"[redacted]")
            .field("metadata", &self.metadata)
            .finish()
    }
}

/// The key/value data of a secret, as JSON. `Debug` shows the keys only; string values are
/// wiped on drop.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct KvData(Map<String, Value>);

impl KvData {
    /// Empty data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to a string value (builder style).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(key.into(), Value::String(value.into()));
        self
    }

    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        if let Some(mut old) = self.0.insert(key.into(), value) {
            wipe(&mut old);
        }
    }

    /// The string value of `key`, as a secret.
    pub fn get_secret(&self, key: &str) -> Option<SecretString> {
        self.0
            .get(key)
            .and_then(Value::as_str)
            .map(SecretString::from)
    }

    /// The keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The whole map. Keep the borrow short and never log it.
    pub fn expose(&self) -> &Map<String, Value> {
        &self.0
    }

    /// Decodes the data into `T` (errors never quote values).
    pub fn decode<T: DeserializeOwned>(&self, path: &str) -> Result<T, VaultError> {
        serde_json::from_value(Value::Object(self.0.clone())).map_err(|e| VaultError::Data {
            action: "decode",
            path: path.to_owned(),
            detail: serde_detail(&e),
        })
    }
}

impl From<Map<String, Value>> for KvData {
    fn from(map: Map<String, Value>) -> Self {
        Self(map)
    }
}

impl fmt::Debug for KvData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvData")
            .field("keys", &self.0.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Drop for KvData {
    fn drop(&mut self) {
        for value in self.0.values_mut() {
            wipe(value);
        }
    }
}

/// Zeroizes the strings inside a JSON value.
fn wipe(value: &mut Value) {
    match value {
        Value::String(text) => zeroize::Zeroize::zeroize(text),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

#[derive(Deserialize)]
struct ReadResponse<T> {
    data: Option<T>,
    metadata: KvVersion,
}

#[derive(Deserialize)]
struct MetadataResponse {
    #[serde(default)]
    current_version: u64,
    #[serde(default)]
    oldest_version: u64,
    #[serde(default)]
    versions: HashMap<String, KvVersion>,
}

/// Metadata of a whole KV v2 secret (all versions).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KvMetadata {
    /// The current (latest) version, 0 if none.
    pub current_version: u64,
    /// The oldest version kept.
    pub oldest_version: u64,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Serialize)]
struct WriteBody<'a, T: ?Sized> {
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<WriteOptions>,
    data: &'a T,
}

#[derive(Serialize)]
struct WriteOptions {
    cas: u64,
}

/// A KV v2 mount used with the session's current token.
#[derive(Debug, Clone)]
pub struct Kv2 {
    session: VaultSession,
    mount: String,
}

impl Kv2 {
    /// The KV v2 engine mounted at `mount` (e.g. `secret`).
    pub fn new(session: VaultSession, mount: &str) -> Result<Self, VaultError> {
        check_path("KV mount", mount)?;
        Ok(Self {
            session,
            mount: clean(mount).to_owned(),
        })
    }

    /// The mount path.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    fn api_path(&self, kind: &str, path: &str) -> Result<String, VaultError> {
        check_path("KV path", path)?;
        Ok(format!("{}/{kind}/{}", self.mount, clean(path)))
    }

    /// Reads the latest version. A deleted or destroyed latest version is [`VaultError::NotFound`].
    pub async fn read(&self, path: &str) -> Result<KvSecret<KvData>, VaultError> {
        self.read_as(path, None).await
    }

    /// Reads version `version`.
    pub async fn read_version(
        &self,
        path: &str,
        version: u64,
    ) -> Result<KvSecret<KvData>, VaultError> {
        self.read_as(path, Some(version)).await
    }

    /// Reads the latest version (`None`) or a given one, decoded into `T`.
    pub async fn read_as<T: DeserializeOwned + Send + Sync>(
        &self,
        path: &str,
        version: Option<u64>,
    ) -> Result<KvSecret<T>, VaultError> {
        let api_path = self.api_path("data", path)?;
        let response = self
            .session
            .call(|| {
                let request = RawRequest::<ReadResponse<T>>::new(RequestMethod::GET, &api_path);
                Ok(match version {
                    Some(version) => request.query(format!("version={version}")),
                    None => request,
                })
            })
            .await?
            .into_data(&api_path)?;
        match response.data {
            Some(data) => Ok(KvSecret {
                data,
                metadata: response.metadata,
            }),
            // Deleted (soft) or destroyed version: Vault answers 200 with `data: null` for a
            // version read and 404 for the latest.
            None => Err(VaultError::NotFound { path: api_path }),
        }
    }

    /// Writes a new version. With `cas: Some(v)` the write succeeds only if the current version
    /// is `v` (`Some(0)`: only if the secret does not exist), else [`VaultError::CasConflict`].
    pub async fn write<T: Serialize + Sync + ?Sized>(
        &self,
        path: &str,
        data: &T,
        cas: Option<u64>,
    ) -> Result<KvVersion, VaultError> {
        let api_path = self.api_path("data", path)?;
        let body = WriteBody {
            options: cas.map(|cas| WriteOptions { cas }),
            data,
        };
        let version = self
            .session
            .call(|| RawRequest::<KvVersion>::with_body(RequestMethod::POST, &api_path, &body))
            .await?
            .into_data(&api_path)?;
        tracing::debug!(path = %api_path, version = version.version, cas = ?cas, "wrote KV v2 secret");
        Ok(version)
    }

    /// Read-modify-write with check-and-set: reads the latest version (`None` if there is
    /// none), calls `update`, writes the result with `cas` = the version read, and starts over
    /// on a conflict, up to `max_attempts` times. `update` returning `None` leaves the secret
    /// unchanged (the result is then `Ok(None)`).
    pub async fn read_modify_write<T, F>(
        &self,
        path: &str,
        max_attempts: u32,
        mut update: F,
    ) -> Result<Option<KvVersion>, VaultError>
    where
        T: DeserializeOwned + Serialize + Send + Sync,
        F: FnMut(Option<T>) -> Option<T> + Send,
    {
        let attempts = max_attempts.max(1);
        let mut last_conflict = None;
        for attempt in 1..=attempts {
            let (current, cas) = match self.read_as::<T>(path, None).await {
                Ok(secret) => (Some(secret.data), secret.metadata.version),
                // Never written (cas 0), or the latest version deleted (cas = its number).
                Err(VaultError::NotFound { .. }) => match self.metadata(path).await {
                    Ok(metadata) => (None, metadata.current_version),
                    Err(VaultError::NotFound { .. }) => (None, 0),
                    Err(other) => return Err(other),
                },
                Err(other) => return Err(other),
            };
            let Some(next) = update(current) else {
                return Ok(None);
            };
            match self.write(path, &next, Some(cas)).await {
                Ok(version) => return Ok(Some(version)),
                Err(error @ VaultError::CasConflict { .. }) => {
                    tracing::debug!(path, attempt, cas, "KV v2 check-and-set conflict, retrying");
                    last_conflict = Some(error);
                }
                Err(other) => return Err(other),
            }
        }
        Err(last_conflict.unwrap_or_else(|| VaultError::CasConflict {
            path: path.to_owned(),
        }))
    }

    /// Metadata of the secret (current and oldest version).
    pub async fn metadata(&self, path: &str) -> Result<KvMetadata, VaultError> {
        let api_path = self.api_path("metadata", path)?;
        let response = self
            .session
            .call(|| {
                Ok(RawRequest::<MetadataResponse>::new(
                    RequestMethod::GET,
                    &api_path,
                ))
            })
            .await?
            .into_data(&api_path)?;
        let _ = response.versions;
        Ok(KvMetadata {
            current_version: response.current_version,
            oldest_version: response.oldest_version,
        })
    }

    /// Lists the keys under `path` (sub-folders end with `/`); empty when there is nothing.
    pub async fn list(&self, path: &str) -> Result<Vec<String>, VaultError> {
        let api_path = if clean(path).is_empty() {
            format!("{}/metadata", self.mount)
        } else {
            self.api_path("metadata", path)?
        };
        let result = self
            .session
            .call(|| {
                Ok(
                    RawRequest::<ListResponse>::new(RequestMethod::GET, &api_path)
                        .query("list=true"),
                )
            })
            .await;
        match result {
            Ok(envelope) => Ok(envelope.into_data(&api_path)?.keys),
            Err(VaultError::NotFound { .. }) => Ok(Vec::new()),
            Err(other) => Err(other),
        }
    }

    /// Deletes the secret with all its versions and metadata.
    pub async fn delete_all(&self, path: &str) -> Result<(), VaultError> {
        let api_path = self.api_path("metadata", path)?;
        self.session
            .call(|| Ok(RawRequest::<Value>::new(RequestMethod::DELETE, &api_path)))
            .await?;
        Ok(())
    }

    /// Starts polling `path` every `interval`, publishing each new version (a deleted secret
    /// publishes `None`). Failures keep the last value and back off.
    pub fn watch(&self, path: &str, interval: Duration) -> Result<KvWatch, VaultError> {
        check_path("KV path", path)?;
        let (tx, rx) = watch::channel(None);
        let shared = Arc::new(WatchShared {
            kv: self.clone(),
            path: clean(path).to_owned(),
            interval,
            tx,
            refresh: Notify::new(),
            status: Mutex::new(KvWatchStatus::default()),
        });
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            VaultError::Config("KV watch must be started inside a Tokio runtime".into())
        })?;
        let task = runtime.spawn(watch_loop(Arc::clone(&shared)));
        Ok(KvWatch {
            rx,
            shared,
            _task: Arc::new(TaskGuard(task)),
        })
    }
}

/// State of a [`KvWatch`].
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct KvWatchStatus {
    /// The version last published (0: none).
    pub version: u64,
    /// When the last successful poll started.
    pub last_poll_at: Option<DateTime<Utc>>,
    /// Failed polls since the last success.
    pub consecutive_failures: u32,
    /// The last error.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<DateTime<Utc>>,
}

struct WatchShared {
    kv: Kv2,
    path: String,
    interval: Duration,
    tx: watch::Sender<Option<Arc<KvSecret<KvData>>>>,
    refresh: Notify,
    status: Mutex<KvWatchStatus>,
}

/// A polled KV v2 secret: the latest version as a watch channel.
#[derive(Clone)]
pub struct KvWatch {
    rx: watch::Receiver<Option<Arc<KvSecret<KvData>>>>,
    shared: Arc<WatchShared>,
    _task: Arc<TaskGuard>,
}

impl fmt::Debug for KvWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvWatch")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl KvWatch {
    /// The latest version seen (`None` before the first read or when deleted).
    pub fn current(&self) -> Option<Arc<KvSecret<KvData>>> {
        self.rx.borrow().clone()
    }

    /// A receiver that fires on every new version.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<KvSecret<KvData>>>> {
        self.rx.clone()
    }

    /// Polls now instead of at the next interval.
    pub fn refresh_now(&self) {
        self.shared.refresh.notify_one();
    }

    /// The poller's state.
    pub fn status(&self) -> KvWatchStatus {
        self.shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn watch_loop(shared: Arc<WatchShared>) {
    let clock = Arc::clone(shared.kv.session.clock());
    let policy = shared.kv.session.renewal_policy().clone();
    let mut failures = 0u32;
    loop {
        let started = clock.now();
        let delay = match shared.kv.read(&shared.path).await {
            Ok(secret) => {
                failures = 0;
                publish_version(&shared, Some(secret), started);
                shared.interval
            }
            Err(VaultError::NotFound { .. }) => {
                failures = 0;
                publish_version(&shared, None, started);
                shared.interval
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::warn!(path = %shared.path, error = %error, "KV v2 poll failed");
                let mut status = shared.status.lock().unwrap_or_else(PoisonError::into_inner);
                status.consecutive_failures = failures;
                status.last_error = Some(error.to_string());
                status.last_error_at = Some(started);
                backoff_delay(failures, &policy, random_unit()).min(shared.interval)
            }
        };
        tokio::select! {
            () = clock.sleep_until(add(clock.now(), delay)) => {}
            () = shared.refresh.notified() => {}
        }
    }
}

fn publish_version(shared: &WatchShared, secret: Option<KvSecret<KvData>>, at: DateTime<Utc>) {
    let version = secret.as_ref().map_or(0, |s| s.metadata.version);
    {
        let mut status = shared.status.lock().unwrap_or_else(PoisonError::into_inner);
        status.consecutive_failures = 0;
        status.last_poll_at = Some(at);
        status.version = version;
    }
    shared.tx.send_if_modified(|current| {
        let old = current.as_ref().map_or(0, |s| s.metadata.version);
        if old == version {
            return false;
        }
        tracing::info!(path = %shared.path, version, "KV v2 secret changed");
        *current = secret.map(Arc::new);
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_data_debug_shows_keys_only() {
        let data = KvData::new()
            .with("password", "hunter2-xyz")
            .with("user", "svc");
        let debug = format!("{data:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("password"));
        let secret = KvSecret {
            data,
            metadata: KvVersion {
                version: 3,
                created_time: DateTime::from_timestamp(0, 0).unwrap(),
                deletion_time: None,
                destroyed: false,
                custom_metadata: HashMap::new(),
            },
        };
        let debug = format!("{secret:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("version: 3"));
        assert_eq!(
            secret.data.get_secret("password").unwrap().expose(),
            "hunter2-xyz"
        );
    }

    #[test]
    fn version_metadata_parses_vault_shapes() {
        let json = r#"{"created_time":"2026-03-22T02:24:06.945319214Z","custom_metadata":null,
            "deletion_time":"","destroyed":false,"version":2}"#;
        let version: KvVersion = serde_json::from_str(json).unwrap();
        assert_eq!(version.version, 2);
        assert!(version.deletion_time.is_none());
        let json = r#"{"created_time":"2026-03-22T02:24:06Z","deletion_time":"2026-03-23T00:00:00Z",
            "destroyed":true,"version":1,"custom_metadata":{"owner":"ops"}}"#;
        let version: KvVersion = serde_json::from_str(json).unwrap();
        assert!(version.deletion_time.is_some());
        assert_eq!(version.custom_metadata["owner"], "ops");
    }

    #[test]
    fn decode_errors_do_not_quote_values() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Creds {
            port: u16,
        }
        let data = KvData::new().with("port", "s3cr3t-not-a-number");
        let error = data.decode::<Creds>("secret/data/x").unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn write_body_shape() {
        let data = KvData::new().with("k", "v");
        let body = WriteBody {
            options: Some(WriteOptions { cas: 0 }),
            data: &data,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"options":{"cas":0},"data":{"k":"v"}}"#
        );
        let body = WriteBody {
            options: None,
            data: &data,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"data":{"k":"v"}}"#
        );
    }
}
