//! Building blocks of configuration sections, shared by every feature that owns one: the
//! [`Duration`] type of the file and the [`Problems`] a section's check reports.
//!
//! A leaf module: features import it, it imports no feature, so a feature can own its section
//! without importing the aggregate in `config/`.

pub(crate) mod duration;
pub(crate) mod problem;

pub(crate) use duration::Duration;
pub(crate) use problem::{ConfigProblem, Problems};

/// Whether `host` is loopback (`localhost`, 127.0.0.0/8, `::1`).
pub(crate) fn is_loopback_host(host: Option<url::Host<&str>>) -> bool {
    match host {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
