//! Setup shared by the areas that run the authority in-process on a manual clock.

use gha_auth_server::audit::VerifyReport;
use gha_auth_server::clients::{ClientRegistration, ClientRegistry, GrantType};
use gha_auth_server::store::Store;
use gha_auth_testkit::PgDatabase;

/// The manual clocks' start: 2026-01-01T00:00:00Z.
pub(crate) const START: i64 = 1_767_225_600;
/// The audience the test clients are registered for.
pub(crate) const AUDIENCE: &str = "mfs.api";

/// Where the store lives for one test.
pub(crate) enum Backend {
    Sqlite,
    Postgres(PgDatabase),
}

impl Backend {
    /// A throwaway database on the shared PostgreSQL, dropped with the value.
    pub(crate) async fn postgres() -> Self {
        Backend::Postgres(
            PgDatabase::create()
                .await
                .expect("throwaway PostgreSQL database"),
        )
    }
}

/// Registers a confidential client-credentials client for [`AUDIENCE`] as `actor`; returns its
/// secret.
pub(crate) async fn register_service_client(
    clients: &ClientRegistry,
    id: &str,
    actor: &str,
) -> String {
    let (_, secret) = clients
        .register(
            ClientRegistration::new(id)
                .grant(GrantType::ClientCredentials)
                .audience(AUDIENCE),
            actor,
        )
        .await
        .unwrap();
    secret.unwrap().expose().to_owned()
}

/// Verifies the audit hash chain of `store`, failing the test on any problem; returns the report.
pub(crate) async fn assert_audit_intact(store: &Store) -> VerifyReport {
    let report = gha_auth_server::audit::verify(store).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    report
}
