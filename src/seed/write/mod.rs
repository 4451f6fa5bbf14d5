//! Writes a simulated world through the real schema: multi-row INSERTs of a few thousand
//! rows each, in large transactions, in foreign-key order. Each part of the world has its own
//! file; the activity feed and the attribution log collect rows from all of them.
mod content;
mod invitations;
mod people;
mod table;

use sea_orm::{DatabaseConnection, DbErr, Value};
use serde_json::json;
use uuid::Uuid;

use self::table::{at, derived, Table, Writer};
use super::sim::{Ms, World};

/// What was written, table by table.
pub type Counts = Vec<(&'static str, u64)>;

/// Writes the world; `hash` is every demo user's password hash, `staff` the index of the
/// staff user, `now` the end of the simulated span.
pub async fn world(
    db: &DatabaseConnection,
    w: &World,
    hash: &str,
    staff: usize,
    now: Ms,
) -> Result<Counts, DbErr> {
    let mut wr = Writer::new(db);
    let mut logs = Logs::new();
    let mut out = Counts::new();
    people::write(&mut wr, &mut logs, &mut out, w, hash, staff).await?;
    invitations::write(&mut wr, &mut logs, &mut out, w).await?;
    content::write(&mut wr, &mut logs, &mut out, w).await?;
    for c in &w.plan_changes {
        let org = &w.orgs[c.org];
        logs.event(
            &mut wr,
            Event {
                id: derived(c.at, org.id.as_u128() ^ (c.at as u128)),
                org: org.id,
                kind: "PLAN_CHANGED",
                actor: None,
                project: None,
                summary: format!("{} moved from {} to {}", org.name, c.from, c.to),
                data: json!({ "from": c.from, "to": c.to }),
                at: c.at,
            },
        )
        .await?;
    }
    logs.attribution.done(&mut wr, &mut out).await?;
    logs.activity.done(&mut wr, &mut out).await?;
    usage(&mut wr, &mut out, w, now).await?;
    wr.commit().await?;
    Ok(out)
}

/// The month's invitation counter of each organization, as the server keeps it.
async fn usage(wr: &mut Writer<'_>, out: &mut Counts, w: &World, now: Ms) -> Result<(), DbErr> {
    let mut t = Table::new(
        "usage_counters",
        &["organization_id", "feature", "period_start", "used"],
    );
    let mut used: std::collections::BTreeMap<usize, i64> = Default::default();
    let starts: Vec<Ms> = w
        .orgs
        .iter()
        .map(|o| {
            let (start, _) = crate::domain::entitlements::period(at(o.created), at(now));
            start.timestamp_millis()
        })
        .collect();
    for i in &w.invitations {
        if i.sent >= starts[i.org] {
            *used.entry(i.org).or_default() += 1;
        }
    }
    for (org, n) in used {
        t.push(
            wr,
            vec![
                w.orgs[org].id.into(),
                "invitations_per_month".into(),
                at(starts[org]).into(),
                n.into(),
            ],
        )
        .await?;
    }
    t.done(wr, out).await
}

/// One row of the activity feed.
struct Event {
    id: Uuid,
    org: Uuid,
    kind: &'static str,
    actor: Option<Uuid>,
    /// The project it is about, if any.
    project: Option<Uuid>,
    summary: String,
    data: serde_json::Value,
    at: Ms,
}

/// One row of the attribution log (`referral_events`).
struct Credit {
    org: Option<Uuid>,
    actor: Uuid,
    action: &'static str,
    resource: (&'static str, Uuid),
    signup: Option<Uuid>,
    at: Ms,
}

/// The tables every part of the world adds to: written last, after what they reference.
struct Logs {
    activity: Table,
    attribution: Table,
}

impl Logs {
    fn new() -> Logs {
        Logs {
            activity: Table::new(
                "activity_events",
                &[
                    "id",
                    "organization_id",
                    "event_type",
                    "actor_user_id",
                    "actor_guest_name",
                    "resource_type",
                    "resource_id",
                    "summary",
                    "data",
                    "created_at",
                ],
            ),
            attribution: Table::new(
                "referral_events",
                &[
                    "id",
                    "organization_id",
                    "actor_user_id",
                    "action",
                    "resource_type",
                    "resource_id",
                    "resulted_in_signup_id",
                    "created_at",
                ],
            ),
        }
    }

    async fn event(&mut self, wr: &mut Writer<'_>, e: Event) -> Result<(), DbErr> {
        let row: Vec<Value> = vec![
            e.id.into(),
            e.org.into(),
            e.kind.into(),
            e.actor.into(),
            Option::<String>::None.into(),
            e.project.map(|_| "PROJECT".to_string()).into(),
            e.project.into(),
            e.summary.into(),
            e.data.into(),
            at(e.at).into(),
        ];
        self.activity.push(wr, row).await
    }

    async fn credit(&mut self, wr: &mut Writer<'_>, c: Credit) -> Result<(), DbErr> {
        let id = derived(
            c.at,
            c.resource.1.as_u128() ^ c.actor.as_u128().rotate_left(7) ^ c.action.len() as u128,
        );
        let row: Vec<Value> = vec![
            id.into(),
            c.org.into(),
            Some(c.actor).into(),
            c.action.into(),
            Some(c.resource.0.to_string()).into(),
            Some(c.resource.1).into(),
            c.signup.into(),
            at(c.at).into(),
        ];
        self.attribution.push(wr, row).await
    }
}
