//! The one read-modify-write loop with compare-and-set: read a versioned document, change it,
//! save it only if nobody saved in between, and start over when somebody did. The signing-key
//! ring, each link key's state and the broker's local secrets are all changed through it, on
//! whichever backend holds them (the store's sealed documents or Vault KV v2).

use async_trait::async_trait;

use super::sealed::CasOutcome;

/// Most attempts of one read-modify-write before [`read_modify_write`] gives up.
pub(crate) const MAX_ATTEMPTS: u32 = 16;

/// One versioned document, wherever it is kept.
#[async_trait]
pub(crate) trait Versioned: Send + Sync {
    /// The document's type.
    type Document: Send;
    /// What reading or saving fails with.
    type Error: Send;

    /// The document and its version (`None` when it was never saved, with a starting value).
    async fn load(&self) -> Result<(Option<u64>, Self::Document), Self::Error>;

    /// Saves `document` if the stored version is still `expected` (`None`: only if there is
    /// none).
    async fn save(
        &self,
        expected: Option<u64>,
        document: &Self::Document,
    ) -> Result<CasOutcome, Self::Error>;
}

/// What a change decided.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum Change<T> {
    /// Save the changed document, then return the value.
    Save(T),
    /// Save nothing and return the value (nothing to do, or a guard failed).
    Keep(T),
}

/// The document after a [`read_modify_write`]: the value `change` returned, the document as it
/// is now and its version (`None` if it is still not saved).
#[derive(Debug)]
#[non_exhaustive]
pub(crate) struct Written<D, T> {
    /// What `change` returned.
    pub(crate) value: T,
    /// The document now.
    pub(crate) document: D,
    /// Its version now.
    pub(crate) version: Option<u64>,
    /// Whether this call saved it.
    pub(crate) saved: bool,
}

/// Applies `change` to the latest document and saves it with compare-and-set; when another
/// writer saved first, reloads and applies `change` again (so `change` must decide from the
/// document alone). After [`MAX_ATTEMPTS`] conflicts in a row it gives up with `contended()`.
pub(crate) async fn read_modify_write<V, T>(
    documents: &V,
    mut change: impl FnMut(&mut V::Document) -> Result<Change<T>, V::Error> + Send,
    contended: impl FnOnce() -> V::Error + Send,
) -> Result<Written<V::Document, T>, V::Error>
where
    V: Versioned,
    T: Send,
{
    for _ in 0..MAX_ATTEMPTS {
        let (version, mut document) = documents.load().await?;
        let value = match change(&mut document)? {
            Change::Keep(value) => {
                return Ok(Written {
                    value,
                    document,
                    version,
                    saved: false,
                });
            }
            Change::Save(value) => value,
        };
        match documents.save(version, &document).await? {
            CasOutcome::Saved(version) => {
                return Ok(Written {
                    value,
                    document,
                    version: Some(version),
                    saved: true,
                });
            }
            CasOutcome::Conflict => tracing::debug!("changed concurrently; reloading"),
        }
    }
    Err(contended())
}
