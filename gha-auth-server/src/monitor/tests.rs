//! Two boards on one store, ticking at the same instants of a manual clock, against a local
//! health endpoint that counts its checks: the lease lets exactly one of them poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::TimeDelta;
use gha_auth::ManualClock;

use super::config::{MonitorConfig, MonitorTarget};
use super::{Monitor, store};
use crate::settings::Duration;
use crate::store::Store;

/// A health endpoint answering `Healthy`, and how many checks it answered.
async fn endpoint() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let router = axum::Router::new().route(
        "/HealthCheck",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                axum::Json(serde_json::json!({
                    "status": "Healthy", "checked_at": "2026-01-01T00:00:00Z", "checks": {}
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/HealthCheck"), hits)
}

fn board(url: &str, store: &Store, clock: &ManualClock, node: &str) -> Monitor {
    let config = MonitorConfig {
        targets: vec![
            MonitorTarget::new("api", url).every(Duration::seconds(1), Duration::seconds(1)),
        ],
        lease_ttl: Duration::seconds(3),
        ..MonitorConfig::default()
    };
    Monitor::new(config, None, store.clone(), clock.shared(), node.to_owned()).unwrap()
}

#[tokio::test]
async fn one_of_two_replicas_polls_and_the_other_takes_over_after_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let store = Store::open(&url, 4).await.unwrap();
    let clock = ManualClock::at_unix(1_767_225_600);
    let (target, hits) = endpoint().await;
    let a = board(&target, &store, &clock, "a");
    let b = board(&target, &store, &clock, "b");

    // The same instants on both: one check per due time, not two.
    for round in 1..=3 {
        let (ra, rb) = tokio::join!(a.tick(), b.tick());
        ra.unwrap();
        rb.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), round, "round {round}");
        clock.advance(TimeDelta::seconds(1));
    }
    let holder = store::read_lease(&store).await.unwrap().unwrap().holder;
    let survivor = if holder == "a" { &b } else { &a };

    // The holder stops; before its lease expires the other does not poll, after it does.
    survivor.tick().await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    clock.advance(TimeDelta::seconds(3));
    survivor.tick().await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    assert_ne!(
        store::read_lease(&store).await.unwrap().unwrap().holder,
        holder
    );
    let rows = store::history(&store, "api", 100).await.unwrap();
    assert_eq!(rows.len(), 4, "one result per check");
}
