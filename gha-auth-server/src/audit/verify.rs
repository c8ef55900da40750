//! `gha-auth audit verify`: recompute the chain and report every break.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{GENESIS_HASH, row_hash};
use crate::store::{Store, StoreError};

const PAGE: i64 = 1000;
const MAX_PROBLEMS: usize = 100;

/// One break in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChainProblem {
    /// Rows are missing: `expected` was the next position, `found` came instead.
    Missing {
        /// The position that should have come next.
        expected: i64,
        /// The position found.
        found: i64,
    },
    /// The row's `prev_hash` is not the previous row's hash: rows were removed, inserted or
    /// reordered before it.
    BrokenLink {
        /// The row.
        seq: i64,
    },
    /// The row's contents no longer match its hash: it was changed.
    Altered {
        /// The row.
        seq: i64,
    },
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainProblem::Missing { expected, found } => {
                write!(f, "rows {expected}..{} are missing", found - 1)
            }
            ChainProblem::BrokenLink { seq } => write!(
                f,
                "row {seq} does not link to the row before it (rows removed, inserted or reordered)"
            ),
            ChainProblem::Altered { seq } => {
                write!(f, "row {seq} was changed after it was written")
            }
        }
    }
}

/// What [`verify`] found (read back from the admin API's answer by `--server`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Rows read.
    pub rows: u64,
    /// The last row's position and hash.
    pub head_seq: Option<i64>,
    /// The last row's hash: record it elsewhere to detect a truncated tail later.
    pub head_hash: Option<String>,
    /// Every break found (at most 100).
    pub problems: Vec<ChainProblem>,
}

impl VerifyReport {
    /// Whether the chain is intact.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads the whole chain in order and checks every link and hash.
pub async fn verify(store: &Store) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport {
        rows: 0,
        head_seq: None,
        head_hash: None,
        problems: Vec::new(),
    };
    let mut expected_seq = 1;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut after = 0;
    loop {
        let rows = store.audit_rows_after(after, PAGE).await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.seq;
        for row in rows {
            report.rows += 1;
            if row.seq != expected_seq {
                report.problems.push(ChainProblem::Missing {
                    expected: expected_seq,
                    found: row.seq,
                });
            }
            if row.prev_hash != prev_hash {
                report
                    .problems
                    .push(ChainProblem::BrokenLink { seq: row.seq });
            }
            if row_hash(&row) != row.hash {
                report.problems.push(ChainProblem::Altered { seq: row.seq });
            }
            expected_seq = row.seq + 1;
            prev_hash.clone_from(&row.hash);
            report.head_seq = Some(row.seq);
            report.head_hash = Some(row.hash);
        }
        if report.problems.len() >= MAX_PROBLEMS {
            report.problems.truncate(MAX_PROBLEMS);
            break;
        }
    }
    Ok(report)
}
