//! The digest's numbers: every scope's two weeks from the per-day rollups in one statement.
use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    config::urlencode,
    domain::{ids::OrgId, metrics::Counts, DomainResult, Services},
    rollups::{col, DAY_COLUMNS, PLATFORM},
};

/// One scope's counters of the digested week and of the week before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WeekNumbers {
    /// The digested week, in `DAY_COLUMNS` order.
    pub this: [i64; 15],
    /// The week before it.
    pub previous: [i64; 15],
}

impl WeekNumbers {
    /// Any invitation or shared-link activity in the digested week.
    pub fn active(&self) -> bool {
        [
            col::SENT,
            col::OPENED,
            col::ACCEPTED,
            col::LINKS,
            col::VISITS,
        ]
        .iter()
        .any(|c| self.this[*c] > 0)
    }

    /// The webhook `data` (and what the email shows): both weeks' numbers as
    /// METRICS.md defines them for a window of one whole week.
    pub fn to_json(&self, svc: &Services, scope: Uuid, week: NaiveDate) -> Value {
        let end = week + Duration::days(7);
        let org = (scope != PLATFORM).then(|| OrgId(scope).to_string());
        let dashboard = format!(
            "{}/dashboard?org={}&range=custom&from={week}&to={}&interval=day",
            svc.config.public_url,
            urlencode(org.as_deref().unwrap_or("platform")),
            end - Duration::days(1),
        );
        json!({
            "organization_id": org,
            "week_start": format!("{week}T00:00:00Z"),
            "week_end": format!("{end}T00:00:00Z"),
            "this_week": week_json(&self.this),
            "previous_week": week_json(&self.previous),
            "dashboard_url": dashboard,
        })
    }
}

fn week_json(row: &[i64; 15]) -> Value {
    let c = Counts::from_row(row);
    json!({
        "signups": c.signups(),
        "signups_by_source": {
            "organic": c.by_source[0],
            "invite": c.by_source[1],
            "referral": c.by_source[2],
            "share": c.by_source[3],
            "paid": c.by_source[4],
        },
        "viral_coefficient": c.viral_coefficient(),
        "invitations_per_user": c.invitations_per_user(),
        "invitation_conversion_rate": c.conversion_rate(),
        "share_coefficient": c.share_coefficient(),
        "invitations_sent": c.sent,
        "invitations_opened": c.opened,
        "invitations_accepted": c.accepted,
        "invitations_activated": c.activated,
        "links_created": row[col::LINKS],
        "visits": row[col::VISITS],
        "share_signups": row[col::SHARE_SIGNUPS],
    })
}

/// Every scope's counters of the week starting `week` and of the week before, from one
/// `GROUP BY` over the rollups. Scopes without a rollup row in the two weeks are absent.
pub async fn week_numbers(
    db: &impl ConnectionTrait,
    week: NaiveDate,
) -> DomainResult<BTreeMap<Uuid, WeekNumbers>> {
    let (prev, end) = (week - Duration::days(7), week + Duration::days(7));
    let mut sums = Vec::new();
    for (i, c) in DAY_COLUMNS.iter().enumerate() {
        sums.push(format!(
            "CAST(SUM(CASE WHEN day >= $2 THEN {c} ELSE 0 END) AS BIGINT) AS t{i}, \
             CAST(SUM(CASE WHEN day < $2 THEN {c} ELSE 0 END) AS BIGINT) AS p{i}"
        ));
    }
    let sql = format!(
        "SELECT scope_id, {} FROM growth_days WHERE day >= $1 AND day < $3 GROUP BY scope_id",
        sums.join(", ")
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            [
                prev.to_string().into(),
                week.to_string().into(),
                end.to_string().into(),
            ],
        ))
        .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let mut n = WeekNumbers::default();
        for i in 0..DAY_COLUMNS.len() {
            n.this[i] = r.try_get("", &format!("t{i}"))?;
            n.previous[i] = r.try_get("", &format!("p{i}"))?;
        }
        out.insert(r.try_get("", "scope_id")?, n);
    }
    Ok(out)
}
