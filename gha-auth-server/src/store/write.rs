//! Writes of the hot paths (refresh rotation, family start): SQLite writers' turns.
//!
//! SQLite lets one writer in at a time and makes the others wait in its busy handler, which
//! sleeps in steps of milliseconds: under load, pooled connections of one process spend more
//! time asleep than writing. So this process's writers take turns on an in-process lock first
//! and reach SQLite one at a time; other processes (admin commands) still meet the busy timeout.
//! PostgreSQL needs no turn: its row locks and group commit serve concurrent writers.

use std::sync::Arc;

use sqlx::{Any, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{Store, StoreError};

/// The SQLite writers' turn; `None` on PostgreSQL.
pub(super) type WriterTurn = Option<Arc<Mutex<()>>>;

/// An open transaction; commit it, or dropping it rolls back.
pub(crate) struct WriteTx<'c> {
    tx: Transaction<'c, Any>,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl WriteTx<'_> {
    /// The connection to run statements on.
    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    /// Commits (and gives the turn to the next writer).
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Begins a write transaction on a pooled connection, after this process's other SQLite
    /// writers.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx<'static>, StoreError> {
        let turn = self.writer_turn().await;
        let tx = self.pool.begin().await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// This process's turn to write to SQLite (nothing on PostgreSQL), for writes that are
    /// single statements rather than a [`WriteTx`]; held until dropped.
    pub(crate) async fn writer_turn(&self) -> Option<OwnedMutexGuard<()>> {
        match &self.writer_turn {
            Some(lock) => Some(Arc::clone(lock).lock_owned().await),
            None => None,
        }
    }
}
