//! Member counts of the organizations of a window, for their size buckets: read with the
//! `growth_days` sums of the organizations with a row in the window ([`of_group`]), then for
//! the few others with facts only in its partial days or visitor rows ([`of_the_rest`], by
//! id); removed organizations count none ([`removed`]).
use std::collections::HashSet;

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, Value};
use uuid::Uuid;

use super::Out;
use crate::domain::DomainResult;

/// Ids per statement of [`of_the_rest`] (far below both backends' parameter limits).
const CHUNK: usize = 500;

/// The member count of the organization of a `growth_days` group `g`, as a select
/// expression: one index lookup per organization, only for those with a row in the window
/// (counting every organization's members would read a row per organization, half a million
/// on the demo dataset, most of them idle in the window).
pub(super) fn of_group(backend: DatabaseBackend) -> &'static str {
    match backend {
        // The declared types give the two columns different affinities on SQLite, and then
        // the comparison cannot use the membership index: the unary plus strips the rollup
        // column's affinity (the values are the same 16-byte blobs).
        DatabaseBackend::Sqlite => {
            "(SELECT COUNT(*) FROM memberships m WHERE m.organization_id = +g.scope_id)"
        }
        _ => "(SELECT COUNT(*) FROM memberships m WHERE m.organization_id = g.scope_id)",
    }
}

/// Counts the members of the organizations not counted yet (facts only in the partial days
/// or visitor rows), by id. Returns how many there were.
pub(super) async fn of_the_rest(db: &impl ConnectionTrait, out: &mut Out) -> DomainResult<usize> {
    let rest: Vec<Uuid> = out
        .iter()
        .filter(|(_, p)| !p.counted)
        .map(|(id, _)| *id)
        .collect();
    for ids in rest.chunks(CHUNK) {
        let marks = (1..=ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                format!(
                    "SELECT organization_id, COUNT(*) FROM memberships \
                     WHERE organization_id IN ({marks}) GROUP BY organization_id"
                ),
                ids.iter().map(|id| Value::from(*id)),
            ))
            .await?;
        for row in rows {
            let org: Uuid = row.try_get_by_index(0)?;
            if let Some(p) = out.get_mut(&org) {
                p.totals.members = row.try_get_by_index::<i64>(1)?.max(0) as u64;
            }
        }
        for id in ids {
            if let Some(p) = out.get_mut(id) {
                p.counted = true;
            }
        }
    }
    Ok(rest.len())
}

/// Removed organizations (deleted, their purge pending) count no members. Returns how many
/// there are.
pub(super) async fn removed(db: &impl ConnectionTrait, out: &mut Out) -> DomainResult<usize> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id FROM organizations WHERE deleted_at IS NOT NULL",
        ))
        .await?;
    let removed: HashSet<Uuid> = rows
        .iter()
        .map(|r| r.try_get_by_index(0))
        .collect::<Result<_, _>>()?;
    for id in &removed {
        if let Some(p) = out.get_mut(id) {
            p.totals.members = 0;
        }
    }
    Ok(removed.len())
}
