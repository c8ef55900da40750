//! Who may do what through the admin API: one pure decision, table-tested.
//!
//! - A client's own token (`client_credentials`: `sub` is the client id) is allowed an area by
//!   its scope `admin:<area>`. When the client is bound to a tenant, it reaches only that
//!   tenant's clients and users, and no area that is not a tenant's.
//! - A user's token is allowed by the user's roles: `admin` reaches every area and tenant;
//!   `tenant-admin` reaches only its own tenant's clients and users, and may not hand out the
//!   `admin` role.

/// Role of a user who may administer everything.
pub(crate) const ADMIN_ROLE: &str = "admin";
/// Role of a user who administers its own tenant's clients and users.
pub(crate) const TENANT_ADMIN_ROLE: &str = "tenant-admin";

/// An area of the admin API, each with its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Area {
    /// OAuth clients and their legacy keys.
    Clients,
    /// Built-in users.
    Users,
    /// Signing keys.
    Keys,
    /// Link keys.
    LinkKeys,
    /// The secrets broker's grants and cache.
    Broker,
    /// The audit log.
    Audit,
    /// The health board (`/admin/v1/monitor`).
    Monitor,
}

impl Area {
    /// The scope a client needs for this area.
    pub(crate) fn scope(self) -> &'static str {
        match self {
            Area::Clients => "admin:clients",
            Area::Users => "admin:users",
            Area::Keys => "admin:keys",
            Area::LinkKeys => "admin:link-keys",
            Area::Broker => "admin:broker",
            Area::Audit => "admin:audit",
            Area::Monitor => "admin:monitor",
        }
    }

    /// Whether the area's objects belong to tenants (so a tenant admin may manage some).
    fn is_per_tenant(self) -> bool {
        matches!(self, Area::Clients | Area::Users)
    }
}

/// The caller, as its token describes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Actor<'a> {
    /// A user's token (else a client's own token).
    pub(crate) is_user: bool,
    /// Granted scopes.
    pub(crate) scopes: &'a [String],
    /// The user's roles.
    pub(crate) roles: &'a [String],
    /// The tenant the token is bound to (none or empty for none).
    pub(crate) tenant: Option<&'a str>,
}

/// What the caller asks to touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Target<'a> {
    /// The area as a whole (a listing: a tenant admin sees its own tenant's part).
    Area,
    /// An object of this tenant (`None` or empty: of no tenant).
    Tenant(Option<&'a str>),
}

/// What the caller may see or touch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Reach {
    /// Everything in the area.
    All,
    /// Only this tenant's objects.
    Tenant(String),
}

impl Reach {
    /// Whether an object of `tenant` is within reach.
    pub(crate) fn covers(&self, tenant: Option<&str>) -> bool {
        match self {
            Reach::All => true,
            Reach::Tenant(own) => tenant == Some(own.as_str()),
        }
    }
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Decision {
    /// Allowed, within this reach.
    Allow(Reach),
    /// Refused, with the reason (for the caller and the audit log; names no secret).
    Deny(&'static str),
}

/// Whether `actor` may act on `target` in `area`; `grants_admin` when the act hands out the
/// `admin` role (only a full administrator may).
pub(crate) fn decide(
    actor: Actor<'_>,
    area: Area,
    target: Target<'_>,
    grants_admin: bool,
) -> Decision {
    let own_tenant = actor.tenant.filter(|t| !t.is_empty());
    let has = |list: &[String], item: &str| list.iter().any(|x| x == item);
    let reach = if actor.is_user {
        if has(actor.roles, ADMIN_ROLE) {
            Reach::All
        } else if has(actor.roles, TENANT_ADMIN_ROLE) {
            match own_tenant {
                Some(tenant) => Reach::Tenant(tenant.to_owned()),
                None => return Decision::Deny("a tenant admin without a tenant manages nothing"),
            }
        } else {
            return Decision::Deny("the user has neither the admin nor the tenant-admin role");
        }
    } else {
        if !has(actor.scopes, area.scope()) {
            return Decision::Deny("the token lacks the area's admin scope");
        }
        match own_tenant {
            Some(tenant) => Reach::Tenant(tenant.to_owned()),
            None => Reach::All,
        }
    };
    if let Reach::Tenant(_) = reach {
        if !area.is_per_tenant() {
            return Decision::Deny("a tenant's administrator cannot reach this area");
        }
        if grants_admin {
            return Decision::Deny("only an administrator may grant the admin role");
        }
    }
    match target {
        Target::Area => Decision::Allow(reach),
        Target::Tenant(tenant) => {
            let tenant = tenant.filter(|t| !t.is_empty());
            if reach.covers(tenant) {
                Decision::Allow(reach)
            } else {
                Decision::Deny("the object belongs to another tenant")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// (user?, scopes, roles, tenant, area, target, grants admin, expected)
    type Case = (
        bool,
        &'static [&'static str],
        &'static [&'static str],
        Option<&'static str>,
        Area,
        Target<'static>,
        bool,
        Decision,
    );

    #[test]
    fn the_table() {
        let all = Decision::Allow(Reach::All);
        let acme = Decision::Allow(Reach::Tenant("acme".into()));
        // (user?, scopes, roles, tenant, area, target, grants admin, expected)
        let cases: Vec<Case> = vec![
            // clients: by scope, per area
            (
                false,
                &["admin:clients"],
                &[],
                None,
                Area::Clients,
                Target::Area,
                false,
                all.clone(),
            ),
            (
                false,
                &["admin:clients"],
                &[],
                None,
                Area::Clients,
                Target::Tenant(Some("x")),
                false,
                all.clone(),
            ),
            (
                false,
                &["admin:users"],
                &[],
                None,
                Area::Clients,
                Target::Area,
                false,
                Decision::Deny("the token lacks the area's admin scope"),
            ),
            (
                false,
                &["admin:keys"],
                &[],
                None,
                Area::Keys,
                Target::Area,
                false,
                all.clone(),
            ),
            (
                false,
                &["admin:link-keys"],
                &[],
                None,
                Area::LinkKeys,
                Target::Area,
                false,
                all.clone(),
            ),
            (
                false,
                &["admin:broker"],
                &[],
                None,
                Area::Broker,
                Target::Area,
                false,
                all.clone(),
            ),
            (
                false,
                &["admin:audit"],
                &[],
                None,
                Area::Audit,
                Target::Area,
                false,
                all.clone(),
            ),
            (
                false,
                &["admin:audit"],
                &[],
                None,
                Area::Keys,
                Target::Area,
                false,
                Decision::Deny("the token lacks the area's admin scope"),
            ),
            // a client's roles mean nothing; a user's scopes mean nothing
            (
                false,
                &[],
                &["admin"],
                None,
                Area::Keys,
                Target::Area,
                false,
                Decision::Deny("the token lacks the area's admin scope"),
            ),
            (
                true,
                &["admin:keys"],
                &[],
                None,
                Area::Keys,
                Target::Area,
                false,
                Decision::Deny("the user has neither the admin nor the tenant-admin role"),
            ),
            // a tenant-bound client: its own tenant's clients and users only
            (
                false,
                &["admin:clients"],
                &[],
                Some("acme"),
                Area::Clients,
                Target::Area,
                false,
                acme.clone(),
            ),
            (
                false,
                &["admin:clients"],
                &[],
                Some("acme"),
                Area::Clients,
                Target::Tenant(Some("acme")),
                false,
                acme.clone(),
            ),
            (
                false,
                &["admin:clients"],
                &[],
                Some("acme"),
                Area::Clients,
                Target::Tenant(Some("other")),
                false,
                Decision::Deny("the object belongs to another tenant"),
            ),
            (
                false,
                &["admin:clients"],
                &[],
                Some("acme"),
                Area::Clients,
                Target::Tenant(None),
                false,
                Decision::Deny("the object belongs to another tenant"),
            ),
            (
                false,
                &["admin:keys"],
                &[],
                Some("acme"),
                Area::Keys,
                Target::Area,
                false,
                Decision::Deny("a tenant's administrator cannot reach this area"),
            ),
            (
                false,
                &["admin:clients"],
                &[],
                Some(""),
                Area::Clients,
                Target::Tenant(Some("x")),
                false,
                all.clone(),
            ),
            // users: admin reaches everything, whatever its tenant
            (
                true,
                &[],
                &["admin"],
                None,
                Area::Audit,
                Target::Area,
                false,
                all.clone(),
            ),
            (
                true,
                &[],
                &["admin"],
                Some("acme"),
                Area::Users,
                Target::Tenant(Some("other")),
                true,
                all.clone(),
            ),
            // tenant admin
            (
                true,
                &[],
                &["tenant-admin"],
                Some("acme"),
                Area::Users,
                Target::Area,
                false,
                acme.clone(),
            ),
            (
                true,
                &[],
                &["tenant-admin"],
                Some("acme"),
                Area::Users,
                Target::Tenant(Some("acme")),
                false,
                acme.clone(),
            ),
            (
                true,
                &[],
                &["tenant-admin"],
                Some("acme"),
                Area::Clients,
                Target::Tenant(Some("acme")),
                false,
                acme.clone(),
            ),
            (
                true,
                &[],
                &["tenant-admin"],
                Some("acme"),
                Area::Users,
                Target::Tenant(Some("other")),
                false,
                Decision::Deny("the object belongs to another tenant"),
            ),
            (
                true,
                &[],
                &["tenant-admin"],
                Some("acme"),
                Area::Clients,
                Target::Tenant(Some("")),
                false,
                Decision::Deny("the object belongs to another tenant"),
            ),
            (
                true,
                &[],
                &["tenant-admin"],
                Some("acme"),
                Area::Users,
                Target::Tenant(Some("acme")),
                true,
                Decision::Deny("only an administrator may grant the admin role"),
            ),
            (
                true,
                &[],
                &["tenant-admin"],
                Some("acme"),
                Area::LinkKeys,
                Target::Area,
                false,
                Decision::Deny("a tenant's administrator cannot reach this area"),
            ),
            (
                true,
                &[],
                &["tenant-admin"],
                None,
                Area::Users,
                Target::Area,
                false,
                Decision::Deny("a tenant admin without a tenant manages nothing"),
            ),
            (
                true,
                &[],
                &["tenant-admin"],
                Some(""),
                Area::Users,
                Target::Area,
                false,
                Decision::Deny("a tenant admin without a tenant manages nothing"),
            ),
            (
                true,
                &[],
                &["viewer"],
                Some("acme"),
                Area::Users,
                Target::Area,
                false,
                Decision::Deny("the user has neither the admin nor the tenant-admin role"),
            ),
        ];
        for (i, (is_user, scopes, roles, tenant, area, target, grants_admin, expected)) in
            cases.into_iter().enumerate()
        {
            let (scopes, roles) = (strings(scopes), strings(roles));
            let actor = Actor {
                is_user,
                scopes: &scopes,
                roles: &roles,
                tenant,
            };
            assert_eq!(
                decide(actor, area, target, grants_admin),
                expected,
                "case {i}"
            );
        }
    }

    /// (user?, scopes, roles, tenant, expected)
    type BoardCase = (
        bool,
        &'static [&'static str],
        &'static [&'static str],
        Option<&'static str>,
        Decision,
    );

    /// The health board's rules, as the board had them before it decided here: the scope
    /// `admin:monitor` for a client, the role `admin` for a user, nothing for a tenant's
    /// administrator (the board is the whole authority's). One change: an `admin` user bound to
    /// a tenant reads it, as it reads every other area.
    #[test]
    fn who_may_read_the_board() {
        let all = Decision::Allow(Reach::All);
        let no_scope = Decision::Deny("the token lacks the area's admin scope");
        let no_role = Decision::Deny("the user has neither the admin nor the tenant-admin role");
        let tenant = Decision::Deny("a tenant's administrator cannot reach this area");
        let cases: Vec<BoardCase> = vec![
            (false, &["admin:monitor"], &[], None, all.clone()),
            (true, &[], &["admin"], None, all.clone()),
            (
                false,
                &["admin:monitor", "jobs:read"],
                &["user"],
                None,
                all.clone(),
            ),
            (false, &[], &[], None, no_scope.clone()),
            (true, &[], &[], None, no_role.clone()),
            (false, &["admin:clients"], &["user"], None, no_scope.clone()),
            (
                false,
                &["admin:monitorx"],
                &["administrator"],
                None,
                no_scope.clone(),
            ),
            (
                true,
                &["admin:monitor"],
                &["administrator"],
                None,
                no_role.clone(),
            ),
            (false, &["admin:monitor"], &[], Some("acme"), tenant.clone()),
            (true, &[], &["tenant-admin"], Some("acme"), tenant),
            (true, &[], &["admin"], Some("acme"), all),
        ];
        for (i, (is_user, scopes, roles, tenant, expected)) in cases.into_iter().enumerate() {
            let (scopes, roles) = (strings(scopes), strings(roles));
            let actor = Actor {
                is_user,
                scopes: &scopes,
                roles: &roles,
                tenant,
            };
            assert_eq!(
                decide(actor, Area::Monitor, Target::Area, false),
                expected,
                "case {i}"
            );
        }
    }

    #[test]
    fn reach_covers_only_its_tenant() {
        assert!(Reach::All.covers(None));
        assert!(Reach::Tenant("a".into()).covers(Some("a")));
        assert!(!Reach::Tenant("a".into()).covers(Some("b")));
        assert!(!Reach::Tenant("a".into()).covers(None));
    }
}
