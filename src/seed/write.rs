//! Writes a simulated world through the real schema: multi-row INSERTs of a few thousand
//! rows each, in large transactions, in foreign-key order.
use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Alias, Query},
    ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait, Value,
};
use serde_json::json;
use uuid::Uuid;

use super::sim::{Ms, World};
use crate::domain::ids::{InvitationId, ProjectId, SharedLinkId};

/// Most bound values per statement (SQLite allows 32,766; PostgreSQL 65,535).
const MAX_VALUES: usize = 30_000;
/// Rows per transaction.
const ROWS_PER_TX: usize = 200_000;

fn at(ms: Ms) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("time in range")
}

/// A time-ordered (v7) id for a row made at `ms`, derived from `key` so every run makes the
/// same ids (multiplying by an odd constant is a bijection on u128).
fn derived(ms: Ms, key: u128) -> Uuid {
    let mixed = key
        .wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
        .to_be_bytes();
    let bytes: [u8; 10] = mixed[..10].try_into().expect("10 bytes");
    uuid::Builder::from_unix_timestamp_millis(ms.max(0) as u64, &bytes).into_uuid()
}

/// Buffers the rows of one table and flushes them in statements of at most [`MAX_VALUES`].
struct Table {
    name: &'static str,
    cols: &'static [&'static str],
    rows: Vec<Vec<Value>>,
    written: u64,
}

impl Table {
    fn new(name: &'static str, cols: &'static [&'static str]) -> Table {
        Table {
            name,
            cols,
            rows: Vec::new(),
            written: 0,
        }
    }

    async fn push(&mut self, w: &mut Writer<'_>, row: Vec<Value>) -> Result<(), DbErr> {
        debug_assert_eq!(row.len(), self.cols.len(), "{}", self.name);
        self.rows.push(row);
        if self.rows.len() * self.cols.len() >= MAX_VALUES {
            self.flush(w).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, w: &mut Writer<'_>) -> Result<(), DbErr> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut q = Query::insert();
        q.into_table(Alias::new(self.name))
            .columns(self.cols.iter().map(|c| Alias::new(*c)));
        let n = self.rows.len();
        for row in self.rows.drain(..) {
            q.values_panic(row.into_iter().map(Into::into));
        }
        w.exec(&q, n)
            .await
            .map_err(|e| DbErr::Custom(format!("writing {}: {e}", self.name)))?;
        self.written += n as u64;
        Ok(())
    }
}

/// Statements go into a transaction that is committed every [`ROWS_PER_TX`] rows.
struct Writer<'a> {
    db: &'a DatabaseConnection,
    txn: Option<sea_orm::DatabaseTransaction>,
    in_tx: usize,
}

impl Writer<'_> {
    async fn exec(
        &mut self,
        q: &sea_orm::sea_query::InsertStatement,
        rows: usize,
    ) -> Result<(), DbErr> {
        if self.txn.is_none() {
            self.txn = Some(self.db.begin().await?);
        }
        self.txn.as_ref().expect("open").execute(q).await?;
        self.in_tx += rows;
        if self.in_tx >= ROWS_PER_TX {
            self.commit().await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), DbErr> {
        if let Some(t) = self.txn.take() {
            t.commit().await?;
        }
        self.in_tx = 0;
        Ok(())
    }
}

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
    let mut wr = Writer {
        db,
        txn: None,
        in_tx: 0,
    };
    let mut out = Vec::new();
    macro_rules! done {
        ($t:expr) => {{
            $t.flush(&mut wr).await?;
            out.push(($t.name, $t.written));
        }};
    }

    // Organizations, with their plan as it is now.
    let mut t = Table::new(
        "organizations",
        &[
            "id",
            "name",
            "invite_policy",
            "plan_key",
            "billing_anchor",
            "created_at",
        ],
    );
    for o in &w.orgs {
        t.push(
            &mut wr,
            vec![
                o.id.into(),
                o.name.clone().into(),
                "any_member".into(),
                o.plan.into(),
                at(o.created).into(),
                at(o.created).into(),
            ],
        )
        .await?;
    }
    done!(t);

    let mut t = Table::new(
        "users",
        &[
            "id",
            "email",
            "name",
            "password_hash",
            "acquisition_source",
            "invited_by_user_id",
            "invite_token_id",
            "utm_source",
            "referral_code",
            "activated_at",
            "is_staff",
            "active_organization_id",
            "created_at",
            "attributed_organization_id",
        ],
    );
    for u in &w.users {
        t.push(
            &mut wr,
            vec![
                u.id.into(),
                u.email.clone().into(),
                format!("Demo User {}", u.n).into(),
                hash.into(),
                u.source.stored().into(),
                u.invited_by.map(|i| w.users[i].id).into(),
                u.via_token.into(),
                u.utm.map(str::to_string).into(),
                format!("demo{:x}", u.n).into(),
                u.activated.map(at).into(),
                (u.n == staff).into(),
                Some(w.orgs[u.org].id).into(),
                at(u.created).into(),
                u.attributed_org.map(|o| w.orgs[o].id).into(),
            ],
        )
        .await?;
    }
    done!(t);

    let mut t = Table::new(
        "memberships",
        &["id", "organization_id", "user_id", "role", "joined_at"],
    );
    let mut activity = Table::new(
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
    );
    let event = |id: Uuid,
                 org: Uuid,
                 kind: &'static str,
                 actor: Option<Uuid>,
                 resource: Option<Uuid>,
                 summary: String,
                 data: serde_json::Value,
                 when: Ms| {
        vec![
            id.into(),
            org.into(),
            kind.into(),
            actor.into(),
            Option::<String>::None.into(),
            resource.map(|_| "PROJECT".to_string()).into(),
            resource.into(),
            summary.into(),
            data.into(),
            at(when).into(),
        ]
    };
    for m in &w.members {
        let (org, user) = (&w.orgs[m.org], &w.users[m.user]);
        t.push(
            &mut wr,
            vec![
                m.id.into(),
                org.id.into(),
                user.id.into(),
                m.role.into(),
                at(m.joined).into(),
            ],
        )
        .await?;
        activity
            .push(
                &mut wr,
                event(
                    derived(m.joined, m.id.as_u128() ^ 1),
                    org.id,
                    "MEMBER_JOINED",
                    Some(user.id),
                    None,
                    format!("Demo User {} joined {}", user.n, org.name),
                    json!({ "role": m.role.to_uppercase() }),
                    m.joined,
                ),
            )
            .await?;
    }
    done!(t);

    let mut t = Table::new(
        "invitations",
        &[
            "id",
            "organization_id",
            "email",
            "role",
            "invited_by_user_id",
            "surface",
            "status",
            "token_version",
            "team_invite",
            "created_at",
            "last_sent_at",
            "send_count",
            "expires_at",
            "opened_at",
            "accepted_at",
            "accepted_by_user_id",
            "first_sent_by_user_id",
            "first_opened_at",
            "first_accepted_at",
            "first_accepted_by_user_id",
        ],
    );
    let mut sends = Table::new(
        "invitation_sends",
        &["id", "invitation_id", "sender_user_id", "sent_at"],
    );
    let mut attribution = Table::new(
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
    );
    let log = |org: Option<Uuid>,
               actor: Uuid,
               action: &'static str,
               resource: (&'static str, Uuid),
               signup: Option<Uuid>,
               when: Ms| {
        vec![
            derived(
                when,
                resource.1.as_u128() ^ actor.as_u128().rotate_left(7) ^ action.len() as u128,
            )
            .into(),
            org.into(),
            Some(actor).into(),
            action.into(),
            Some(resource.0.to_string()).into(),
            Some(resource.1).into(),
            signup.into(),
            at(when).into(),
        ]
    };
    for i in &w.invitations {
        let (org, inviter) = (&w.orgs[i.org], &w.users[i.inviter]);
        let last = i.resent.unwrap_or(i.sent);
        let accepted = i.accepted.map(|(t, u)| (at(t), w.users[u].id));
        let status = match (accepted, i.revoked) {
            (Some(_), _) => "accepted",
            (None, true) => "revoked",
            (None, false) => "pending",
        };
        t.push(
            &mut wr,
            vec![
                i.id.into(),
                org.id.into(),
                i.email.clone().into(),
                "member".into(),
                inviter.id.into(),
                i.surface.map(str::to_string).into(),
                status.into(),
                (1 + i32::from(i.resent.is_some())).into(),
                i.team.into(),
                at(i.sent).into(),
                at(last).into(),
                (1 + i32::from(i.resent.is_some())).into(),
                at(last + 7 * 24 * 3_600_000).into(),
                i.opened.map(at).into(),
                accepted.map(|a| a.0).into(),
                accepted.map(|a| a.1).into(),
                Some(inviter.id).into(),
                i.opened.map(at).into(),
                accepted.map(|a| a.0).into(),
                accepted.map(|a| a.1).into(),
            ],
        )
        .await?;
        for (k, when) in std::iter::once(i.sent).chain(i.resent).enumerate() {
            activity
                .push(
                    &mut wr,
                    event(
                        derived(when, i.id.as_u128() ^ ((k as u128 + 1) << 64)),
                        org.id,
                        "INVITATION_SENT",
                        Some(inviter.id),
                        None,
                        format!("Demo User {} invited {}", inviter.n, i.email),
                        json!({
                            "invitationId": InvitationId(i.id).to_string(),
                            "email": i.email,
                            "role": "MEMBER",
                            "surface": i.surface,
                            "sendCount": k + 1,
                        }),
                        when,
                    ),
                )
                .await?;
        }
        attribution
            .push(
                &mut wr,
                log(
                    Some(org.id),
                    inviter.id,
                    "invited",
                    ("invitation", i.id),
                    None,
                    i.sent,
                ),
            )
            .await?;
        if let Some((when, u)) = i.accepted {
            let user = &w.users[u];
            attribution
                .push(
                    &mut wr,
                    log(
                        Some(org.id),
                        user.id,
                        "accepted",
                        ("invitation", i.id),
                        None,
                        when,
                    ),
                )
                .await?;
            activity
                .push(
                    &mut wr,
                    event(
                        derived(when, i.id.as_u128() ^ (7 << 64)),
                        org.id,
                        "INVITATION_ACCEPTED",
                        Some(user.id),
                        None,
                        format!(
                            "Demo User {} accepted the invitation to {}",
                            user.n, org.name
                        ),
                        json!({ "invitationId": InvitationId(i.id).to_string() }),
                        when,
                    ),
                )
                .await?;
        }
    }
    done!(t);
    // After every invitation is in: a send references its invitation.
    for i in &w.invitations {
        for (k, when) in std::iter::once(i.sent).chain(i.resent).enumerate() {
            sends
                .push(
                    &mut wr,
                    vec![
                        derived(when, i.id.as_u128() ^ (k as u128 + 1)).into(),
                        i.id.into(),
                        w.users[i.inviter].id.into(),
                        at(when).into(),
                    ],
                )
                .await?;
        }
    }
    done!(sends);

    // Viral signups are credited in the attribution log like the server does it.
    for u in &w.users {
        let Some(by) = u.invited_by else { continue };
        let resource = match u.source.stored() {
            "invite" => ("invitation", u.via_token.expect("invite token")),
            "share" => ("shared_link", u.via_token.expect("link")),
            _ => ("referral_code", w.users[by].id),
        };
        attribution
            .push(
                &mut wr,
                log(
                    u.attributed_org.map(|o| w.orgs[o].id),
                    w.users[by].id,
                    "signed_up",
                    resource,
                    Some(u.id),
                    u.created,
                ),
            )
            .await?;
    }

    let mut t = Table::new(
        "projects",
        &[
            "id",
            "organization_id",
            "name",
            "content",
            "created_by_user_id",
            "created_by_guest_name",
            "created_at",
            "updated_at",
        ],
    );
    let mut comments = Table::new(
        "comments",
        &[
            "id",
            "project_id",
            "organization_id",
            "body",
            "author_user_id",
            "guest_name",
            "visitor_id",
            "shared_link_id",
            "created_at",
        ],
    );
    for (n, p) in w.projects.iter().enumerate() {
        let org = &w.orgs[p.org];
        let creator = &w.users[p.creator];
        t.push(
            &mut wr,
            vec![
                p.id.into(),
                org.id.into(),
                format!("Project {n}").into(),
                "A demo project: the plan, the notes and the open questions.".into(),
                Some(creator.id).into(),
                Option::<String>::None.into(),
                at(p.created).into(),
                at(p.created).into(),
            ],
        )
        .await?;
        activity
            .push(
                &mut wr,
                event(
                    derived(p.created, p.id.as_u128() ^ 1),
                    org.id,
                    "PROJECT_CREATED",
                    Some(creator.id),
                    Some(p.id),
                    format!("Demo User {} created Project {n}", creator.n),
                    json!({ "projectId": ProjectId(p.id).to_string(), "name": format!("Project {n}") }),
                    p.created,
                ),
            )
            .await?;
    }
    done!(t);
    for p in &w.projects {
        let org = &w.orgs[p.org];
        for (k, (author, when)) in p.comments.iter().enumerate() {
            let id = derived(*when, p.id.as_u128() ^ (k as u128 + 1));
            let author = author.map(|a| w.users[a].id);
            comments
                .push(
                    &mut wr,
                    vec![
                        id.into(),
                        p.id.into(),
                        org.id.into(),
                        "Looks good, one question on the second part.".into(),
                        author.into(),
                        author.is_none().then(|| "A guest".to_string()).into(),
                        Option::<String>::None.into(),
                        Option::<Uuid>::None.into(),
                        at(*when).into(),
                    ],
                )
                .await?;
        }
    }
    done!(comments);

    let mut t = Table::new(
        "shared_links",
        &[
            "id",
            "organization_id",
            "resource_type",
            "resource_id",
            "permission",
            "audience",
            "created_by_user_id",
            "token_version",
            "surface",
            "expires_at",
            "revoked_at",
            "created_at",
            "access_count",
            "unique_visitors",
            "first_accessed_at",
            "last_accessed_at",
        ],
    );
    let mut visits = Table::new(
        "link_visits",
        &[
            "id",
            "shared_link_id",
            "organization_id",
            "visitor_id",
            "user_id",
            "created_at",
        ],
    );
    let mut visitors = Table::new(
        "link_visitors",
        &["shared_link_id", "visitor_id", "first_seen_at"],
    );
    for l in &w.links {
        let org = &w.orgs[l.org];
        let mut first_seen: std::collections::BTreeMap<&str, Ms> = Default::default();
        for (v, when) in &l.visits {
            first_seen.entry(v.as_str()).or_insert(*when);
        }
        let first = l.visits.iter().map(|v| v.1).min();
        let last = l.visits.iter().map(|v| v.1).max();
        t.push(
            &mut wr,
            vec![
                l.id.into(),
                org.id.into(),
                "PROJECT".into(),
                w.projects[l.project].id.into(),
                l.permission.into(),
                "anyone".into(),
                w.users[l.creator].id.into(),
                1i32.into(),
                Some(l.surface.to_string()).into(),
                Option::<DateTime<Utc>>::None.into(),
                Option::<DateTime<Utc>>::None.into(),
                at(l.created).into(),
                (l.visits.len() as i64).into(),
                (first_seen.len() as i64).into(),
                first.map(at).into(),
                last.map(at).into(),
            ],
        )
        .await?;
        activity
            .push(
                &mut wr,
                event(
                    derived(l.created, l.id.as_u128() ^ 1),
                    org.id,
                    "SHARED_LINK_CREATED",
                    Some(w.users[l.creator].id),
                    Some(w.projects[l.project].id),
                    format!("Demo User {} shared a project ({})", w.users[l.creator].n, l.permission),
                    json!({ "sharedLinkId": SharedLinkId(l.id).to_string(), "permission": l.permission.to_uppercase(), "audience": "ANYONE" }),
                    l.created,
                ),
            )
            .await?;
        attribution
            .push(
                &mut wr,
                log(
                    Some(org.id),
                    w.users[l.creator].id,
                    "shared",
                    ("shared_link", l.id),
                    None,
                    l.created,
                ),
            )
            .await?;
    }
    done!(t);
    for l in &w.links {
        let org = &w.orgs[l.org];
        let mut seen = std::collections::BTreeSet::new();
        for (k, (v, when)) in l.visits.iter().enumerate() {
            visits
                .push(
                    &mut wr,
                    vec![
                        derived(*when, l.id.as_u128() ^ (k as u128 + 1)).into(),
                        l.id.into(),
                        org.id.into(),
                        v.clone().into(),
                        Option::<Uuid>::None.into(),
                        at(*when).into(),
                    ],
                )
                .await?;
            if seen.insert(v.as_str()) {
                visitors
                    .push(
                        &mut wr,
                        vec![l.id.into(), v.clone().into(), at(*when).into()],
                    )
                    .await?;
            }
        }
    }
    done!(visits);
    done!(visitors);
    done!(attribution);

    for c in &w.plan_changes {
        let org = &w.orgs[c.org];
        activity
            .push(
                &mut wr,
                event(
                    derived(c.at, org.id.as_u128() ^ (c.at as u128)),
                    org.id,
                    "PLAN_CHANGED",
                    None,
                    None,
                    format!("{} moved from {} to {}", org.name, c.from, c.to),
                    json!({ "from": c.from, "to": c.to }),
                    c.at,
                ),
            )
            .await?;
    }
    done!(activity);

    // The month's invitation counter of each organization, as the server keeps it.
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
            &mut wr,
            vec![
                w.orgs[org].id.into(),
                "invitations_per_month".into(),
                at(starts[org]).into(),
                n.into(),
            ],
        )
        .await?;
    }
    done!(t);
    wr.commit().await?;
    Ok(out)
}
