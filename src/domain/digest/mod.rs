//! The weekly growth digest: last week's numbers against the week before, by email to the
//! ADMINs and OWNERs of every organization that had something going on (two or more
//! members, or invitation or link activity that week), to staff for the platform, and as a
//! `growth.weekly` webhook message.
//!
//! Exactly once per scope and week, across restarts and instances: a `digest_runs` row keyed
//! by (scope, week) is inserted (`ON CONFLICT DO NOTHING`) in the same transaction as the
//! digest's emails and webhook message; whoever inserts it sends, everyone else skips. The
//! platform row is written last, so "the platform row exists" means the week is done and a
//! run that crashed half-way is finished by the next one.
//!
//! The numbers of every organization come from the per-day rollups in one `GROUP BY` over
//! the two weeks (whole UTC days, so the rollups are exact), and eligibility from one
//! `GROUP BY` over memberships: a fixed number of statements reads the whole platform, then
//! one small batch of statements per 500 digests writes them.
mod numbers;
mod unsubscribe;

use entity::ids::{OrgId, UserId};
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use sea_orm::{
    sea_query::{OnConflict, Query},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Statement,
};
use uuid::Uuid;

pub use numbers::{week_numbers, WeekNumbers};
pub use unsubscribe::{
    is_opted_out, resubscribe, unsubscribe, unsubscribe_link, verify_unsubscribe,
};

use super::{orgs::Role, DomainResult, Services};
use crate::db::Tx;
use crate::{
    config::DigestSchedule,
    outbox::{self, WebhookEvent},
    rollups::PLATFORM,
};
use entity::{digest_opt_outs, digest_runs, memberships, organizations, users};

/// The email kind of a digest.
pub const EMAIL_KIND: &str = "growth_digest";
/// The webhook event type of a digest.
pub const EVENT_TYPE: &str = "growth.weekly";
/// Digests written per transaction.
const CHUNK: usize = 500;

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
}

/// The Monday of the last whole week (Monday–Monday, UTC) whose digest is due at `now`: the
/// week before this one once this week's scheduled time has passed, else the week before
/// that (its digest was due last week; a late run still sends it).
pub fn due_week(schedule: DigestSchedule, now: DateTime<Utc>) -> NaiveDate {
    let today = now.date_naive();
    let monday = today - Duration::days(today.weekday().num_days_from_monday().into());
    let send_at = midnight(monday)
        + Duration::days(schedule.weekday.num_days_from_monday().into())
        + Duration::minutes(schedule.minute_of_day.into());
    if now >= send_at {
        monday - Duration::days(7)
    } else {
        monday - Duration::days(14)
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Monday of the digested week.
    pub week_start: Option<NaiveDate>,
    /// Digests (scopes) this run wrote, the platform included.
    pub digests: usize,
    /// Emails it queued.
    pub emails: usize,
    /// The week had been digested before this run.
    pub already_done: bool,
}

/// Runs the digest that is due now, if the schedule is on.
pub async fn run_due(svc: &Services) -> DomainResult<Option<Report>> {
    let Some(schedule) = svc.config.digest_schedule else {
        return Ok(None);
    };
    let week = due_week(schedule, svc.now());
    Ok(Some(run(svc, week).await?))
}

/// Whether the digest of the week starting `week` is complete.
pub async fn is_done(db: &impl ConnectionTrait, week: NaiveDate) -> DomainResult<bool> {
    Ok(digest_runs::Entity::find()
        .filter(digest_runs::Column::ScopeId.eq(PLATFORM))
        .filter(digest_runs::Column::WeekStart.eq(week.to_string()))
        .one(db)
        .await?
        .is_some())
}

/// Digests the week starting on Monday `week` for every eligible organization and the
/// platform; what an earlier or concurrent run already wrote is skipped.
pub async fn run(svc: &Services, week: NaiveDate) -> DomainResult<Report> {
    let mut report = Report {
        week_start: Some(week),
        ..Default::default()
    };
    let db = &svc.db.read;
    if is_done(db, week).await? {
        report.already_done = true;
        return Ok(report);
    }
    let numbers = week_numbers(db, week).await?;
    let eligible = eligible(db, week, &numbers).await?;
    for chunk in eligible.chunks(CHUNK) {
        let (d, e) = write_chunk(svc, week, chunk, &numbers).await?;
        report.digests += d;
        report.emails += e;
    }
    // Staff get the platform digest (written last: it marks the week done).
    let staff: Vec<users::Model> = users::Entity::find()
        .filter(users::Column::IsStaff.eq(true))
        .filter(users::Column::DeletedAt.is_null())
        .all(db)
        .await?;
    let out = opted_out(db, &staff.iter().map(|u| u.id).collect::<Vec<_>>()).await?;
    let staff_emails: Vec<String> = staff
        .into_iter()
        .filter(|u| !out.contains(&u.id))
        .map(|u| u.email)
        .collect();
    let mut recipients = HashMap::new();
    recipients.insert(PLATFORM, staff_emails);
    let (d, e) = write_digests(svc, week, &[PLATFORM], &numbers, &recipients).await?;
    report.digests += d;
    report.emails += e;
    // Another instance finished the week while this one was writing.
    report.already_done = d == 0 && report.digests == 0;
    Ok(report)
}

/// Organizations due a digest for the week, in id order: two or more members, or any
/// invitation or link activity in the week; not being deleted; not digested yet.
async fn eligible(
    db: &impl ConnectionTrait,
    week: NaiveDate,
    numbers: &BTreeMap<Uuid, WeekNumbers>,
) -> DomainResult<Vec<Uuid>> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT organization_id FROM memberships GROUP BY organization_id HAVING COUNT(*) >= 2",
        ))
        .await?;
    let mut set: HashSet<Uuid> = HashSet::with_capacity(rows.len());
    for r in rows {
        set.insert(r.try_get("", "organization_id")?);
    }
    set.extend(
        numbers
            .iter()
            .filter(|(scope, n)| **scope != PLATFORM && n.active())
            .map(|(scope, _)| *scope),
    );
    let done = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT scope_id FROM digest_runs WHERE week_start = $1",
            [week.to_string().into()],
        ))
        .await?;
    for r in done {
        set.remove(&r.try_get::<Uuid>("", "scope_id")?);
    }
    let mut out: Vec<Uuid> = set.into_iter().collect();
    out.sort();
    Ok(out)
}

/// Of `users`, those who opted out.
async fn opted_out(db: &impl ConnectionTrait, users: &[UserId]) -> DomainResult<HashSet<UserId>> {
    if users.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(digest_opt_outs::Entity::find()
        .filter(digest_opt_outs::Column::UserId.is_in(users.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|o| o.user_id)
        .collect())
}

/// Writes the digests of a chunk of organizations: live ones that existed in the week
/// only, to their ADMINs and OWNERs who did not opt out.
async fn write_chunk(
    svc: &Services,
    week: NaiveDate,
    chunk: &[Uuid],
    numbers: &BTreeMap<Uuid, WeekNumbers>,
) -> DomainResult<(usize, usize)> {
    let db = &svc.db.read;
    let live: Vec<Uuid> = organizations::Entity::find()
        .filter(organizations::Column::Id.is_in(chunk.iter().copied()))
        .filter(organizations::Column::DeletionScheduledFor.is_null())
        .filter(organizations::Column::DeletedAt.is_null())
        // Nothing to say about a week before the organization existed.
        .filter(organizations::Column::CreatedAt.lt(midnight(week + Duration::days(7))))
        .all(db)
        .await?
        .into_iter()
        .map(|o| o.id.0)
        .collect();
    let admins = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.is_in(live.iter().copied()))
        .filter(memberships::Column::Role.is_in([Role::Owner, Role::Admin]))
        .all(db)
        .await?;
    let user_ids: Vec<UserId> = admins.iter().map(|m| m.user_id).collect();
    let out = opted_out(db, &user_ids).await?;
    let emails: HashMap<UserId, String> = users::Entity::find()
        .filter(users::Column::Id.is_in(user_ids.iter().copied()))
        .filter(users::Column::DeletedAt.is_null())
        .all(db)
        .await?
        .into_iter()
        .filter(|u| !out.contains(&u.id))
        .map(|u| (u.id, u.email))
        .collect();
    let mut recipients: HashMap<Uuid, Vec<String>> = HashMap::new();
    for m in &admins {
        if let Some(e) = emails.get(&m.user_id) {
            recipients
                .entry(m.organization_id.0)
                .or_default()
                .push(e.clone());
        }
    }
    write_digests(svc, week, &live, numbers, &recipients).await
}

/// One transaction: claims the (scope, week) rows, and for those it won queues the emails
/// and the webhook messages. Returns (digests written, emails queued).
async fn write_digests(
    svc: &Services,
    week: NaiveDate,
    scopes: &[Uuid],
    numbers: &BTreeMap<Uuid, WeekNumbers>,
    recipients: &HashMap<Uuid, Vec<String>>,
) -> DomainResult<(usize, usize)> {
    if scopes.is_empty() {
        return Ok((0, 0));
    }
    let now = svc.now();
    let zero = WeekNumbers::default();
    let mut tx = Tx::begin(&svc.db).await?;
    let mut insert = Query::insert();
    insert.into_table(digest_runs::Entity).columns([
        digest_runs::Column::Id,
        digest_runs::Column::ScopeId,
        digest_runs::Column::WeekStart,
        digest_runs::Column::Numbers,
        digest_runs::Column::Recipients,
        digest_runs::Column::CreatedAt,
    ]);
    let mut data = HashMap::new();
    for scope in scopes {
        let n = numbers.get(scope).unwrap_or(&zero);
        let json = n.to_json(svc, *scope, week);
        let to = recipients.get(scope).map_or(0, Vec::len) as i32;
        insert.values_panic([
            Uuid::now_v7().into(),
            (*scope).into(),
            week.to_string().into(),
            json.clone().into(),
            to.into(),
            now.into(),
        ]);
        data.insert(*scope, json);
    }
    insert
        .on_conflict(
            OnConflict::columns([digest_runs::Column::ScopeId, digest_runs::Column::WeekStart])
                .do_nothing()
                .to_owned(),
        )
        .returning(
            Query::returning().columns([digest_runs::Column::Id, digest_runs::Column::ScopeId]),
        );
    let won = tx
        .query_all_raw(tx.get_database_backend().build(&insert))
        .await?;
    let mut emails = Vec::new();
    let mut hooks = Vec::new();
    for row in &won {
        let id: Uuid = row.try_get("", "id")?;
        let scope: Uuid = row.try_get("", "scope_id")?;
        for to in recipients.get(&scope).into_iter().flatten() {
            emails.push((to.clone(), id));
        }
        let org = (scope != PLATFORM).then_some(OrgId(scope));
        hooks.push((
            org,
            WebhookEvent {
                event_type: EVENT_TYPE,
                data: data.remove(&scope).unwrap_or_default(),
            },
        ));
    }
    outbox::email::enqueue_many(&mut tx, now, EMAIL_KIND, &emails).await?;
    outbox::webhooks(&mut tx, now, hooks).await?;
    tx.commit(&svc.bus).await?;
    Ok((won.len(), emails.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_due_week_is_the_last_whole_week_once_its_time_has_come() {
        let mon9 = DigestSchedule::parse("mon 09:00").unwrap().unwrap();
        let at = |d: u32, h: u32| Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap();
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        // Monday 30 November 2026, before and after 09:00.
        assert_eq!(due_week(mon9, at(30, 8)), day(16));
        assert_eq!(due_week(mon9, at(30, 9)), day(23));
        assert_eq!(
            due_week(mon9, at(29, 23)),
            day(16),
            "Sunday: still last week's run"
        );
        let fri = DigestSchedule::parse("fri 17:00").unwrap().unwrap();
        assert_eq!(due_week(fri, at(26, 17)), day(9));
        assert_eq!(due_week(fri, at(27, 17)), day(16));
        assert_eq!(due_week(fri, at(27, 16)), day(9));
    }
}
