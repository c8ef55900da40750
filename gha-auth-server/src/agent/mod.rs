//! `gha-auth agent`: secrets from the broker written to files for programs that cannot embed
//! the consumer client (non-Rust containers), and the authority's public keys in slot files for
//! HAProxy's edge verification ([`edge`]).
//!
//! The agent gets a token with client credentials, reads each configured secret or database
//! role through [`SecretsClient`] (kept fresh in the background: refreshed before it goes out
//! of date, stale-if-error for a bounded time), writes each file atomically with mode 0600 when
//! its content changes, and then runs the reload command once. Secrets go only into those
//! files: never into an environment variable, an argument or a log line (logs name paths,
//! fields, versions and serials).

mod cli;
pub(crate) mod config;
mod edge;
mod reload;
mod render;
mod slots;
mod write;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use gha_auth::consumer::{
    ClientAuth, ConsumerError, DatabaseCredsHandle, SecretHandle, SecretsClient, TokenKeeper,
};
use gha_auth::{SharedClock, schedule::RenewalPolicy};
use tokio::sync::mpsc;

pub(crate) use cli::{AgentArgs, run_cli};
pub(crate) use config::{AgentConfig, AgentConfigError};
pub(crate) use render::RenderError;

use config::{Content, Source};

/// How long the agent waits for more changes before writing, so values that change together
/// (a rotation touching several secrets) cause one reload, not several.
const SETTLE: Duration = Duration::from_millis(200);

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] AgentConfigError),
    /// The authority or broker refused or failed the first read of a file's value.
    #[error("{}: {source}", path.display())]
    Consumer {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        source: ConsumerError,
    },
    /// The value cannot be written in the configured form.
    #[error("{}: {source}", path.display())]
    Render {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        source: RenderError,
    },
    /// The file could not be written.
    #[error("cannot write {}: {message}", path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The edge key slots could not be brought up to date at start.
    #[error("edge keys: {0}")]
    EdgeKeys(String),
}

/// A value from the broker, shared by the files made of it.
#[derive(Clone)]
enum Feed {
    Secret(SecretHandle),
    Database(DatabaseCredsHandle),
}

struct OutputFile {
    path: PathBuf,
    content: Content,
    /// Index into the feeds.
    feed: usize,
    handle: Feed,
}

impl OutputFile {
    /// Renders the latest value and writes it if it differs from the file; returns whether it
    /// wrote.
    fn write(&self) -> Result<bool, AgentError> {
        let rendered = match &self.handle {
            Feed::Secret(handle) => render::secret(&handle.latest(), &self.content),
            Feed::Database(handle) => render::database(&handle.latest(), &self.content),
        }
        .map_err(|source| AgentError::Render {
            path: self.path.clone(),
            source,
        })?;
        write::write_if_changed(&self.path, &rendered).map_err(|e| AgentError::Write {
            path: self.path.clone(),
            message: e.kind().to_string(),
        })
    }
}

impl Feed {
    /// A task that sends `index` on `changes` each time the value changes.
    fn watch(&self, index: usize, changes: mpsc::UnboundedSender<usize>) {
        match self {
            Feed::Secret(handle) => spawn_forward(handle.subscribe(), index, changes),
            Feed::Database(handle) => spawn_forward(handle.subscribe(), index, changes),
        }
    }
}

fn spawn_forward<T: Send + Sync + 'static>(
    mut rx: tokio::sync::watch::Receiver<T>,
    index: usize,
    changes: mpsc::UnboundedSender<usize>,
) {
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            if changes.send(index).is_err() {
                break;
            }
        }
    });
}

/// Runs the agent until `shutdown` completes; with `once`, writes the files and returns.
pub async fn run(
    config: AgentConfig,
    clock: SharedClock,
    once: bool,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    config.validate()?;
    // The first read of every value must succeed, so files exist before anything reads them.
    let mut edge = match &config.edge_keys {
        Some(section) => {
            let mut edge = edge::EdgeKeys::new(&config, section)?;
            edge.refresh().await?;
            Some(edge)
        }
        None => None,
    };
    let secrets = if config.files.is_empty() {
        None
    } else {
        let (feeds, files) = start(&config, clock).await?;
        for file in &files {
            let wrote = file.write()?;
            tracing::info!(path = %file.path.display(), wrote, "secret file ready");
        }
        Some((feeds, files))
    };
    if once {
        return Ok(());
    }
    if let Some(edge) = &mut edge
        && !edge.reload_if_due().await
    {
        // At start the program may not be running yet (it reads the files when it starts):
        // a failure now is not retried.
        edge.forget_reload();
    }
    let shutdown = futures_util::FutureExt::shared(Box::pin(shutdown));
    let edge_loop = async {
        if let Some(edge) = edge {
            run_edge(edge, shutdown.clone()).await;
        }
    };
    let secrets_loop = async {
        if let Some((feeds, files)) = secrets {
            run_secrets(&config, &feeds, &files, shutdown.clone()).await;
        }
    };
    tokio::join!(edge_loop, secrets_loop);
    tracing::info!("agent stopped");
    Ok(())
}

/// Polls the key states every interval until `shutdown`.
async fn run_edge(mut edge: edge::EdgeKeys, shutdown: impl Future<Output = ()>) {
    let mut ticks = tokio::time::interval(edge.interval());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; the slots were just written.
    ticks.tick().await;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = &mut shutdown => break,
        }
        if let Err(error) = edge.refresh().await {
            // The files keep the last keys; the next poll tries again.
            tracing::warn!(error = %error, "edge key slots not refreshed");
        }
        edge.reload_if_due().await;
    }
}

/// Writes the secret files each time their values change, until `shutdown`.
async fn run_secrets(
    config: &AgentConfig,
    feeds: &[Feed],
    files: &[OutputFile],
    shutdown: impl Future<Output = ()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    for (index, feed) in feeds.iter().enumerate() {
        feed.watch(index, tx.clone());
    }
    drop(tx);
    tokio::pin!(shutdown);
    loop {
        let first = tokio::select! {
            changed = rx.recv() => changed,
            () = &mut shutdown => break,
        };
        let Some(first) = first else { break };
        let mut due = vec![first];
        // Let changes that arrive together settle into one reload.
        let settle = tokio::time::sleep(SETTLE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                more = rx.recv() => match more {
                    Some(index) => due.push(index),
                    None => break,
                },
                () = &mut settle => break,
            }
        }
        due.sort_unstable();
        due.dedup();
        let mut wrote_any = false;
        for file in files.iter().filter(|f| due.contains(&f.feed)) {
            match file.write() {
                Ok(wrote) => {
                    wrote_any |= wrote;
                    if wrote {
                        tracing::info!(path = %file.path.display(), "secret file rewritten");
                    }
                }
                // The old file stays; the next change tries again.
                Err(error) => tracing::error!(error = %error, "secret file not updated"),
            }
        }
        if wrote_any && let Some(reload) = &config.reload {
            match reload::run(&reload.command, reload.timeout.as_std()).await {
                Ok(()) => tracing::info!(
                    program = reload
                        .command
                        .first()
                        .map(String::as_str)
                        .unwrap_or_default(),
                    "reload command ran"
                ),
                Err(error) => tracing::error!(error = %error, "reload command failed"),
            }
        }
    }
}

/// Starts one handle per distinct secret or role (the first read of each must succeed): files
/// made of the same value change together, and cause one reload.
async fn start(
    config: &AgentConfig,
    clock: SharedClock,
) -> Result<(Vec<Feed>, Vec<OutputFile>), AgentError> {
    let (Some(client_id), Some(secret_file)) = (&config.client_id, &config.client_secret_file)
    else {
        return Err(AgentConfigError::Invalid(
            "[[file]] entries need client_id and client_secret_file".into(),
        )
        .into());
    };
    let keeper = TokenKeeper::builder(
        &config.authority,
        ClientAuth::secret_file(client_id, secret_file),
    )
    .audience(&config.audience)
    .clock(clock)
    .timeout(config.timeout.as_std())
    .danger_accept_plain_http(config.danger_accept_plain_http)
    .build()
    .map_err(|e| AgentConfigError::Invalid(e.to_string()))?;
    let mut builder = SecretsClient::builder(keeper)
        .timeout(config.timeout.as_std())
        .stale_window(config.stale_window.as_std())
        .renewal_policy(
            RenewalPolicy::default().with_backoff(Duration::from_secs(1), Duration::from_secs(30)),
        )
        .danger_accept_plain_http(config.danger_accept_plain_http);
    if let Some(url) = &config.broker_url {
        builder = builder.broker_url(url);
    }
    let client = builder
        .build()
        .map_err(|e| AgentConfigError::Invalid(e.to_string()))?;
    let mut sources: Vec<Source> = Vec::new();
    let mut feeds: Vec<Feed> = Vec::new();
    let mut files = Vec::with_capacity(config.files.len());
    for file in &config.files {
        let (source, content) = file.parts()?;
        let feed = match sources.iter().position(|s| *s == source) {
            Some(index) => index,
            None => {
                let failed = |source| AgentError::Consumer {
                    path: file.path.clone(),
                    source,
                };
                let handle = match &source {
                    Source::Secret(path) => {
                        Feed::Secret(client.secret(path).await.map_err(failed)?)
                    }
                    Source::DatabaseRole(role) => {
                        Feed::Database(client.database_credentials(role).await.map_err(failed)?)
                    }
                };
                sources.push(source);
                feeds.push(handle);
                feeds.len() - 1
            }
        };
        let Some(handle) = feeds.get(feed).cloned() else {
            continue;
        };
        files.push(OutputFile {
            path: file.path.clone(),
            content,
            feed,
            handle,
        });
    }
    Ok((feeds, files))
}
