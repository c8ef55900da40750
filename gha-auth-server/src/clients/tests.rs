use gha_auth::{Clock, ManualClock};
use serde_json::json;

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    registry: ClientRegistry,
    clock: ManualClock,
    store: Store,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &format!("sqlite://{}", dir.path().join("c.db").display()),
        2,
    )
    .await
    .unwrap();
    let clock = ManualClock::at_unix(1_700_000_000);
    let audit = Arc::new(AuditLog::new(store.clone(), clock.shared()));
    let registry = ClientRegistry::new(
        store.clone(),
        Arc::new(Pepper::new(vec![9; 32]).unwrap()),
        audit,
        clock.shared(),
        TimeDelta::hours(1),
    );
    Fixture {
        _dir: dir,
        registry,
        clock,
        store,
    }
}

fn service(id: &str) -> ClientRegistration {
    ClientRegistration::new(id)
        .grant(GrantType::ClientCredentials)
        .scope("orders:read")
        .audience("mfs.api")
        .tenant("acme")
}

fn parse(secret: &IssuedSecret) -> ApiKey {
    ApiKey::parse(secret.expose()).unwrap()
}

#[tokio::test]
async fn registration_issues_a_ghac_secret_once_and_stores_only_its_hash() {
    let f = fixture().await;
    let (client, secret) = f.registry.register(service("svc"), "cli").await.unwrap();
    let secret = secret.expect("confidential clients get a secret");
    assert!(secret.expose().starts_with("ghac_"));
    assert_eq!(client.auth_method, AuthMethod::ClientSecret);
    let now = f.clock.unix_seconds();
    assert!(client.secret_matches(f.registry.pepper(), &parse(&secret), now));
    let row = f.store.client("svc").await.unwrap().unwrap();
    assert!(!format!("{row:?}").contains(secret.expose()));
    assert_eq!(row.secret_hash.unwrap().len(), 64);
    assert_eq!(format!("{secret:?}"), "IssuedSecret([redacted])");
    let json = serde_json::to_string(&client).unwrap();
    assert!(!json.contains("secret_hash"), "{json}");
}

#[tokio::test]
async fn rotation_keeps_two_valid_secrets_until_the_grace_ends() {
    let f = fixture().await;
    let (_, old) = f.registry.register(service("svc"), "cli").await.unwrap();
    let old = parse(&old.unwrap());
    let new = parse(
        &f.registry
            .rotate_secret("svc", TimeDelta::hours(24), "cli")
            .await
            .unwrap(),
    );
    let client = f.registry.get("svc").await.unwrap();
    let pepper = f.registry.pepper();
    let now = f.clock.unix_seconds();
    assert!(client.secret_matches(pepper, &old, now));
    assert!(client.secret_matches(pepper, &new, now));
    f.clock.advance(TimeDelta::hours(24));
    let now = f.clock.unix_seconds();
    assert!(
        !client.secret_matches(pepper, &old, now),
        "old secret expires with the grace"
    );
    assert!(client.secret_matches(pepper, &new, now));

    // A second rotation drops the oldest: never more than two valid secrets.
    let newest = parse(
        &f.registry
            .rotate_secret("svc", TimeDelta::hours(1), "cli")
            .await
            .unwrap(),
    );
    let client = f.registry.get("svc").await.unwrap();
    assert!(!client.secret_matches(pepper, &old, now));
    assert!(client.secret_matches(pepper, &new, now));
    assert!(client.secret_matches(pepper, &newest, now));
    let unrelated = ApiKey::generate(SecretKind::ClientSecret).unwrap();
    assert!(!client.secret_matches(pepper, &unrelated, now));
}

#[tokio::test]
async fn disable_and_audit() {
    let f = fixture().await;
    f.registry.register(service("svc"), "cli").await.unwrap();
    f.registry.disable("svc", "cli").await.unwrap();
    assert!(f.registry.get("svc").await.unwrap().disabled);
    assert!(matches!(
        f.registry.disable("nope", "cli").await,
        Err(ClientError::NotFound(_))
    ));
    let report = crate::audit::verify(&f.store).await.unwrap();
    assert!(report.ok());
    assert_eq!(report.rows, 3);
    let rows = f.store.audit_rows_after(0, 10).await.unwrap();
    assert_eq!(rows[0].kind, "admin.client_created");
    // Disabling writes two events (the revocation is recorded before the admin action).
    let kinds: Vec<&str> = rows[1..].iter().map(|row| row.kind.as_str()).collect();
    assert!(kinds.contains(&"admin.client_disabled"), "{kinds:?}");
    // Its tokens are revoked through the feed: a not-before for the client.
    let revocation = rows
        .iter()
        .find(|row| row.kind == "revocation.added")
        .expect("a revocation event");
    assert!(
        revocation.detail.contains("client_disabled"),
        "{}",
        revocation.detail
    );
    let live = crate::revocations::store::live_entries(&f.store, 0)
        .await
        .unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(
        live[0].kind,
        crate::revocations::store::RevocationKind::Client
    );
    assert_eq!(live[0].value, "svc");
}

#[tokio::test]
async fn invalid_registrations_are_refused_with_a_reason() {
    let f = fixture().await;
    let cases: Vec<(ClientRegistration, &str)> = vec![
        (service("bad id"), "client id"),
        (service(""), "client id"),
        (
            ClientRegistration::new("x").scope("a").audience("b"),
            "--grant",
        ),
        (service("x").scope("bad\"scope"), "invalid scope"),
        (
            ClientRegistration::new("x").grant(GrantType::ClientCredentials),
            "--audience",
        ),
        (service("x").token_lifetime(TimeDelta::hours(2)), "lifetime"),
        (
            service("x").public(true),
            "public client cannot use client_credentials",
        ),
        (
            ClientRegistration::new("x")
                .grant(GrantType::Password)
                .audience("a")
                .public(true),
            "first-party",
        ),
        (
            service("x").jwk(json!({"kty": "oct", "k": "c2VjcmV0"})),
            "private member",
        ),
        (
            service("x").jwk(json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"})),
            "private member",
        ),
        (service("x").jwk(json!("nope")), "JSON object"),
    ];
    for (registration, expected) in cases {
        let err = f
            .registry
            .register(registration, "cli")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(expected),
            "{err:?} should mention {expected:?}"
        );
    }
    f.registry.register(service("dup"), "cli").await.unwrap();
    assert!(matches!(
        f.registry.register(service("dup"), "cli").await,
        Err(ClientError::AlreadyExists(_))
    ));
}

#[tokio::test]
async fn public_first_party_clients_have_no_secret() {
    let f = fixture().await;
    let registration = ClientRegistration::new("mfs-app")
        .grant(GrantType::Password)
        .grant(GrantType::RefreshToken)
        .audience("mfs.api")
        .first_party(true)
        .public(true);
    let (client, secret) = f.registry.register(registration, "cli").await.unwrap();
    assert!(secret.is_none());
    assert_eq!(client.auth_method, AuthMethod::None);
    assert!(
        f.registry
            .rotate_secret("mfs-app", TimeDelta::hours(1), "cli")
            .await
            .is_err()
    );
}

#[test]
fn grant_names_parse() {
    assert_eq!(
        "client_credentials".parse::<GrantType>().unwrap(),
        GrantType::ClientCredentials
    );
    assert_eq!(
        "token-exchange".parse::<GrantType>().unwrap(),
        GrantType::TokenExchange
    );
    assert_eq!(
        GrantType::from_wire("urn:ietf:params:oauth:grant-type:token-exchange"),
        Some(GrantType::TokenExchange)
    );
    assert!("implicit".parse::<GrantType>().is_err());
}

#[test]
fn identifier_rules() {
    assert!(is_valid_client_id("svc-a.b_c~1"));
    assert!(!is_valid_client_id("a:b"));
    assert!(!is_valid_client_id(&"a".repeat(129)));
    assert!(is_valid_scope("orders:read"));
    assert!(!is_valid_scope("a b"));
    assert!(!is_valid_scope("a\\b"));
    assert!(is_valid_audience("https://mfs.api/v1"));
    assert!(!is_valid_audience("a b"));
}

#[tokio::test]
async fn the_auth_cache_sees_local_changes_at_once_and_others_after_the_ttl() {
    let f = fixture().await;
    let registry = f.registry.clone().with_cache_ttl(TimeDelta::seconds(5));
    // Another process: its own registry on the same store.
    let other = f.registry.clone().with_cache_ttl(TimeDelta::zero());
    registry.register(service("svc"), "cli").await.unwrap();
    assert!(
        !registry
            .find_for_auth("svc", false)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );

    other.disable("svc", "cli").await.unwrap();
    assert!(
        !registry
            .find_for_auth("svc", false)
            .await
            .unwrap()
            .unwrap()
            .disabled,
        "cached"
    );
    assert!(
        registry
            .find_for_auth("svc", true)
            .await
            .unwrap()
            .unwrap()
            .disabled,
        "fresh"
    );
    f.clock.advance(TimeDelta::seconds(5));
    assert!(
        registry
            .find_for_auth("svc", false)
            .await
            .unwrap()
            .unwrap()
            .disabled,
        "expired"
    );

    registry.register(service("svc2"), "cli").await.unwrap();
    registry.find_for_auth("svc2", false).await.unwrap();
    registry.disable("svc2", "cli").await.unwrap();
    assert!(
        registry
            .find_for_auth("svc2", false)
            .await
            .unwrap()
            .unwrap()
            .disabled,
        "local change"
    );
    assert!(
        registry
            .find_for_auth("nobody", false)
            .await
            .unwrap()
            .is_none()
    );
}

/// The race at the end of a database outage (seen under load by bench/chaos.sh): a request
/// began, its read failed, and meanwhile a later request's read succeeded and refreshed the
/// entry. The failed one must still be served from the cache, not refused.
#[tokio::test]
async fn an_outage_read_accepts_an_entry_refreshed_after_the_request_began() {
    let f = fixture().await;
    f.registry.register(service("svc"), "cli").await.unwrap();
    let client = f.registry.get("svc").await.unwrap();
    let cache = cache::ClientCache::new(TimeDelta::seconds(30), TimeDelta::minutes(5));
    let began = f.clock.now();
    cache.put(&client, began + TimeDelta::milliseconds(300));
    assert!(cache.get_during_outage("svc", began).is_some());
    assert!(
        cache
            .get_during_outage("svc", began + TimeDelta::minutes(6))
            .is_none(),
        "past the outage window"
    );
}
