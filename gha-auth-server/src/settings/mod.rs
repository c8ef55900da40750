//! Building blocks of configuration sections, shared by every feature that owns one: the
//! [`Duration`] type of the file and the [`Problems`] a section's check reports.
//!
//! A leaf module: features import it, it imports no feature, so a feature can own its section
//! without importing the aggregate in `config/`.

pub(crate) mod duration;
pub(crate) mod problem;

pub(crate) use duration::Duration;
pub(crate) use problem::{ConfigProblem, Problems};
