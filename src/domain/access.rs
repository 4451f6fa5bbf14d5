//! Who is calling and what they may do across organizations.
//!
//! A request has one [`Caller`], decided once from its bearer token: a signed-in user (whose
//! rights inside an organization come from their membership) or a server-to-server API key
//! (whose rights come from its scopes and span every organization, but which is never a
//! member of any: it cannot act as a user, read members, projects, links or activity).
//! Domain functions that admit keys take a `Caller` and check scopes here, so a transport
//! never decides what a scope allows.
use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, EntityTrait};
use serde::{Deserialize, Serialize};

use super::{
    ids::{ApiKeyId, OrgId, UserId},
    orgs::{self, Role},
    DomainError, DomainResult,
};
use crate::outbox::Actor;
use entity::{organizations, users};

/// What an API key may do. A key without scopes can do nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// `changePlan` for any organization (a billing system).
    #[serde(rename = "plans:write")]
    PlansWrite,
    /// Growth metrics of the platform and of any organization.
    #[serde(rename = "growth:read")]
    GrowthRead,
    /// Webhook endpoints of any organization: list, create, change, delete, rotate, test,
    /// redeliver.
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 3] = [Scope::PlansWrite, Scope::GrowthRead, Scope::WebhooksWrite];

    /// The scope's name, e.g. `plans:write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::PlansWrite => "plans:write",
            Scope::GrowthRead => "growth:read",
            Scope::WebhooksWrite => "webhooks:write",
        }
    }

    /// Parses a scope name.
    pub fn parse(raw: &str) -> DomainResult<Scope> {
        let raw = raw.trim();
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| {
                DomainError::invalid(
                    &["scope"],
                    format!(
                        "Unknown scope {raw:?}. Known scopes: {}.",
                        Scope::ALL.map(Scope::as_str).join(", ")
                    ),
                )
            })
    }
}

/// An authenticated API key: who it is and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// Its id (`key_…`).
    pub id: ApiKeyId,
    /// Its name, e.g. "billing".
    pub name: String,
    /// What it may do.
    pub scopes: BTreeSet<Scope>,
}

impl ApiKey {
    /// Whether the key has `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Requires `scope`: PERMISSION_DENIED otherwise, naming what is missing.
    pub fn require(&self, scope: Scope) -> DomainResult<()> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(DomainError::PermissionDenied(format!(
                "This API key lacks the {} scope.",
                scope.as_str()
            )))
        }
    }
}

/// The principal of a request.
#[derive(Clone, Copy, Debug)]
pub enum Caller<'a> {
    /// A signed-in user.
    User(&'a users::Model),
    /// A server-to-server API key.
    Key(&'a ApiKey),
}

impl Caller<'_> {
    /// Platform staff (a user flag; keys are never staff).
    pub fn is_staff(&self) -> bool {
        matches!(self, Caller::User(u) if u.is_staff)
    }

    /// How summaries name the caller: the user's name, or `API key "billing"`.
    pub fn display_name(&self) -> String {
        match self {
            Caller::User(u) => u.name.clone(),
            Caller::Key(k) => format!("API key \"{}\"", k.name),
        }
    }

    /// The caller's id as webhooks carry it (`changed_by`): `usr_…` or `key_…`.
    pub fn id(&self) -> String {
        match self {
            Caller::User(u) => u.id.to_string(),
            Caller::Key(k) => k.id.to_string(),
        }
    }

    /// The activity actor: the user; a key is shown by name in the summary instead.
    pub fn actor(&self) -> Actor {
        match self {
            Caller::User(u) => Actor::user(u.id),
            Caller::Key(_) => Actor::default(),
        }
    }

    /// Platform staff only (a key never is); PERMISSION_DENIED (saying `what`) otherwise.
    pub fn require_staff(&self, what: &str) -> DomainResult<()> {
        if self.is_staff() {
            Ok(())
        } else {
            Err(DomainError::PermissionDenied(format!(
                "Only platform staff can {what}."
            )))
        }
    }

    /// Staff, or a key with `scope`; PERMISSION_DENIED (saying `what`) otherwise.
    pub fn require_staff_or(&self, scope: Scope, what: &str) -> DomainResult<()> {
        match self {
            Caller::Key(k) => k.require(scope),
            Caller::User(u) if u.is_staff => Ok(()),
            Caller::User(_) => Err(DomainError::PermissionDenied(format!(
                "Only platform staff can {what}."
            ))),
        }
    }
}

/// An organization as the caller sees it. `role` is the caller's membership; None for a
/// caller who sees it from the platform side (staff who are not members, API keys): such a
/// caller sees the organization itself (name, plan, billing, entitlements), never what is
/// inside (members, invitations, projects, links, activity).
#[derive(Clone, Debug)]
pub struct OrgView {
    /// The organization.
    pub org: organizations::Model,
    /// The caller's role, if a member.
    pub role: Option<Role>,
}

impl OrgView {
    /// A member's view, holding `role`.
    pub fn member(org: organizations::Model, role: Role) -> OrgView {
        OrgView {
            org,
            role: Some(role),
        }
    }

    /// Its id.
    pub fn id(&self) -> OrgId {
        self.org.id
    }

    /// Members only: what is inside an organization (its people, projects, links and
    /// activity) is never shown to API keys or to staff who are not members. Returns the
    /// member's role; PERMISSION_DENIED from the platform side.
    pub fn inside(&self) -> DomainResult<Role> {
        self.role.ok_or_else(|| {
            DomainError::PermissionDenied(
                "Only members see this; API keys and platform staff see the organization, not what is inside it.".into(),
            )
        })
    }

    /// Whose shared links `viewer` sees inside: None for every link (admins and owners),
    /// Some(viewer) for their own only (members). PERMISSION_DENIED from the platform side.
    pub fn links_of(&self, viewer: UserId) -> DomainResult<Option<UserId>> {
        Ok((self.inside()? < Role::Admin).then_some(viewer))
    }
}

async fn find_org(db: &impl ConnectionTrait, org: OrgId) -> DomainResult<organizations::Model> {
    organizations::Entity::find_by_id(org.0)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("Organization"))
}

/// The caller's view of an organization: members see it with their role; staff and API keys
/// with any scope see it from the platform side; anyone else gets FORBIDDEN (NOT_FOUND when
/// it does not exist).
pub async fn org_view(
    db: &impl ConnectionTrait,
    caller: Caller<'_>,
    org: OrgId,
) -> DomainResult<OrgView> {
    match caller {
        Caller::User(u) => match orgs::access(db, u.id, org).await {
            Ok(a) => Ok(OrgView {
                org: a.org,
                role: Some(a.role),
            }),
            Err(DomainError::Forbidden) if u.is_staff => Ok(OrgView {
                org: find_org(db, org).await?,
                role: None,
            }),
            Err(e) => Err(e),
        },
        Caller::Key(k) if k.scopes.is_empty() => Err(DomainError::PermissionDenied(
            "This API key has no scopes, so it can do nothing.".into(),
        )),
        Caller::Key(_) => Ok(OrgView {
            org: find_org(db, org).await?,
            role: None,
        }),
    }
}

/// Authorizes reading the platform's growth metrics: staff, or an API key with `growth:read`.
pub fn authorize_platform_growth(caller: Caller<'_>) -> DomainResult<()> {
    caller.require_staff_or(Scope::GrowthRead, "read platform growth")
}

/// Authorizes reading one organization's growth metrics: its ADMINs and OWNERs, staff, or an
/// API key with `growth:read`. Returns the organization (its plan decides what is shown).
pub async fn authorize_org_growth(
    db: &impl ConnectionTrait,
    caller: Caller<'_>,
    org: OrgId,
) -> DomainResult<organizations::Model> {
    match caller {
        Caller::Key(k) => {
            k.require(Scope::GrowthRead)?;
            find_org(db, org).await
        }
        Caller::User(u) => match orgs::access(db, u.id, org).await {
            Ok(a) if u.is_staff => Ok(a.org),
            Ok(a) => {
                a.require(Role::Admin, "see growth metrics")?;
                Ok(a.org)
            }
            Err(DomainError::Forbidden) if u.is_staff => find_org(db, org).await,
            Err(e) => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_names_are_one_spelling_everywhere() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()).unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!(Scope::parse("plans:read").is_err());
    }
}
