//! The plan catalog (`plans.toml`): plans, their features and limits. Loaded and validated
//! once at start-up; `kfactor plans check` runs the same validation.
use std::collections::BTreeMap;

use serde::Deserialize;

/// The catalog compiled into the binary.
pub const DEFAULT_CATALOG: &str = include_str!("../../plans.toml");

/// Features the code asks for, with their kinds: a catalog must define them (others are free
/// to add).
pub const REQUIRED_FEATURES: &[(&str, FeatureKind)] = &[
    ("projects", FeatureKind::Limit),
    ("members", FeatureKind::Limit),
    ("active_shared_links", FeatureKind::Limit),
    ("invitations_per_month", FeatureKind::PeriodicLimit),
    ("guest_comments", FeatureKind::Boolean),
    ("edit_links", FeatureKind::Boolean),
    ("webhooks", FeatureKind::Boolean),
];

/// How a feature is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// On or off.
    Boolean,
    /// A cap on how many exist.
    Limit,
    /// A cap per billing period.
    PeriodicLimit,
}

/// A feature of the catalog.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// How it is measured.
    pub kind: FeatureKind,
    /// Human label used in messages, e.g. "projects".
    pub label: String,
    /// For periodic limits: "month".
    #[serde(default)]
    pub period: Option<String>,
}

/// What a plan grants for one feature, as written in the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Grant {
    /// A boolean feature.
    Flag(bool),
    /// A limit.
    Count(i64),
    /// The string "unlimited".
    Word(String),
}

/// A plan.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Stable key, e.g. "free".
    pub key: String,
    /// Display name, e.g. "Free".
    pub name: String,
    /// Higher is more.
    pub rank: i32,
    /// The plan new organizations start on.
    #[serde(default)]
    pub default: bool,
    /// Grants by feature name.
    pub features: BTreeMap<String, Grant>,
}

/// The validated catalog.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Features by name.
    pub features: BTreeMap<String, Feature>,
    /// Plans, ordered by rank once validated.
    pub plans: Vec<Plan>,
}

impl Catalog {
    /// Parses and validates a catalog. Errors are one readable paragraph (with the line for
    /// syntax errors).
    pub fn parse(text: &str) -> Result<Catalog, String> {
        let mut c: Catalog = toml::from_str(text).map_err(|e| e.to_string())?;
        c.plans.sort_by_key(|p| p.rank);
        if c.plans.is_empty() {
            return Err("the catalog defines no plans".into());
        }
        if c.plans.iter().filter(|p| p.default).count() != 1 {
            return Err("exactly one plan must have `default = true`".into());
        }
        for (i, p) in c.plans.iter().enumerate() {
            if c.plans[..i].iter().any(|q| q.key == p.key) {
                return Err(format!("plan key {:?} is defined twice", p.key));
            }
            if c.plans[..i].iter().any(|q| q.rank == p.rank) {
                return Err(format!(
                    "plans {:?} and another share rank {}",
                    p.key, p.rank
                ));
            }
            for name in p.features.keys() {
                if !c.features.contains_key(name) {
                    return Err(format!(
                        "plan {:?} sets feature {name:?}, which is not defined under [features]",
                        p.key
                    ));
                }
            }
            for (name, f) in &c.features {
                let Some(g) = p.features.get(name) else {
                    return Err(format!("plan {:?} does not set feature {name:?}", p.key));
                };
                let ok = match (f.kind, g) {
                    (FeatureKind::Boolean, Grant::Flag(_)) => true,
                    (FeatureKind::Limit | FeatureKind::PeriodicLimit, Grant::Count(n)) => *n >= 0,
                    (FeatureKind::Limit | FeatureKind::PeriodicLimit, Grant::Word(w)) => {
                        w == "unlimited"
                    }
                    _ => false,
                };
                if !ok {
                    let want = match f.kind {
                        FeatureKind::Boolean => "true or false",
                        _ => "a non-negative integer or \"unlimited\"",
                    };
                    return Err(format!(
                        "plan {:?}, feature {name:?}: expected {want}, found {g:?}",
                        p.key
                    ));
                }
            }
        }
        for (name, kind) in REQUIRED_FEATURES {
            match c.features.get(*name) {
                Some(f) if f.kind == *kind => {}
                Some(_) => return Err(format!("feature {name:?} must be of kind {kind:?}")),
                None => return Err(format!("feature {name:?} is missing: kfactor enforces it")),
            }
        }
        for (name, f) in &c.features {
            match (f.kind, f.period.as_deref()) {
                (FeatureKind::PeriodicLimit, Some("month")) => {}
                (FeatureKind::PeriodicLimit, _) => {
                    return Err(format!(
                        "feature {name:?}: periodic limits need period = \"month\""
                    ))
                }
                (_, Some(_)) => {
                    return Err(format!(
                        "feature {name:?}: only periodic limits have a period"
                    ))
                }
                _ => {}
            }
        }
        Ok(c)
    }

    /// The plan new organizations start on.
    pub fn default_plan(&self) -> &Plan {
        self.plans.iter().find(|p| p.default).expect("validated")
    }

    /// A plan by key.
    pub fn plan(&self, key: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.key == key)
    }
}

/// Changes an organization's plan (its OWNER, or platform staff), effective at once. Usage
/// counted in the current period is kept and the billing anchor does not move; a downgrade
/// takes nothing away, it only refuses new creation beyond the new limits. Writes
/// PLAN_CHANGED and `subscription.upgraded` / `subscription.downgraded` (by rank).
/// Returns the organization (with the caller's role, if a member) and the previous plan.
pub async fn change_plan(
    svc: &super::Services,
    caller: &entity::users::Model,
    org: super::ids::OrgId,
    plan_key: &str,
) -> super::DomainResult<(
    entity::organizations::Model,
    Option<super::orgs::Role>,
    Plan,
)> {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, QuerySelect};

    use super::{activity::ActivityType, ids::UserId, orgs, DomainError};
    use crate::outbox::{self, Actor, Event, Tx, WebhookEvent};

    let target = svc
        .plans
        .plan(plan_key.trim())
        .ok_or_else(|| DomainError::invalid(&["plan"], format!("Unknown plan {plan_key:?}.")))?
        .clone();
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    let (current, role) = match orgs::access_locked(&tx, UserId(caller.id), org).await {
        Ok(a) => {
            if !caller.is_staff {
                a.require(orgs::Role::Owner, "change the plan")?;
            }
            (a.org, Some(a.role))
        }
        Err(DomainError::Forbidden) if caller.is_staff => {
            let o = entity::organizations::Entity::find_by_id(org.0)
                .lock_exclusive()
                .one(&*tx)
                .await?
                .ok_or(DomainError::NotFound("Organization"))?;
            (o, None)
        }
        Err(e) => return Err(e),
    };
    let previous = super::entitlements::plan_of(&svc.plans, &current).clone();
    if previous.key == target.key {
        return Ok((current, role, previous));
    }
    let mut am: entity::organizations::ActiveModel = current.clone().into();
    am.plan_key = Set(target.key.clone());
    let updated = am.update(&*tx).await?;
    let event_type = if target.rank > previous.rank {
        "subscription.upgraded"
    } else {
        "subscription.downgraded"
    };
    outbox::record(
        &mut tx,
        now,
        Event {
            org,
            kind: ActivityType::PlanChanged,
            actor: Actor::user(caller.id),
            resource: None,
            summary: format!(
                "{} moved {} from {} to {}",
                caller.name, updated.name, previous.name, target.name
            ),
            data: serde_json::json!({ "fromPlan": previous.key, "toPlan": target.key }),
            webhook: Some(WebhookEvent {
                event_type,
                data: serde_json::json!({
                    "organization_id": org.to_string(),
                    "from_plan": previous.key,
                    "to_plan": target.key,
                    "changed_by": UserId(caller.id).to_string(),
                }),
            }),
        },
    )
    .await?;
    super::entitlements::alert_all(&mut tx, svc, &updated).await?;
    tx.commit(&svc.bus).await?;
    Ok((updated, role, previous))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalog_is_valid() {
        let c = Catalog::parse(DEFAULT_CATALOG).unwrap();
        assert_eq!(c.default_plan().key, "free");
        assert_eq!(c.plans.len(), 3);
        assert_eq!(
            c.plan("free").unwrap().features["projects"],
            Grant::Count(3)
        );
    }

    #[test]
    fn errors_are_readable() {
        let broken = DEFAULT_CATALOG.replace("projects = 3", "projects = \"lots\"");
        let e = Catalog::parse(&broken).unwrap_err();
        assert!(e.contains("\"free\"") && e.contains("projects"), "{e}");
        let e = Catalog::parse("plans = [").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }
}
