//! Strict decoding of the joined side of a two-table select.
//!
//! SeaORM decodes the second model of `find_also_related` / `select_also` leniently: a row
//! whose joined columns fail to decode (an unknown stored enum value, say) becomes `None`,
//! indistinguishable from "no joined row". [`Joined`] keeps the two apart, so one statement
//! can read a row and its related row without turning corrupt data into "not found".
use sea_orm::{DbErr, FromQueryResult, QueryResult, TryGetError};

/// The joined side of a select, decoded strictly: `None` only when the join found no row
/// (its non-null columns are NULL), an error when a row is there but does not decode.
#[derive(Clone, Debug, PartialEq)]
pub struct Joined<M>(pub M);

impl<M: FromQueryResult> FromQueryResult for Joined<M> {
    fn from_query_result(res: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        M::from_query_result(res, pre).map(Joined)
    }

    fn from_query_result_optional(res: &QueryResult, pre: &str) -> Result<Option<Self>, DbErr> {
        match M::from_query_result_nullable(res, pre) {
            Ok(m) => Ok(Some(Joined(m))),
            Err(TryGetError::Null(_)) => Ok(None),
            Err(TryGetError::DbErr(e)) => Err(e),
        }
    }
}

/// Unwraps the joined side of a `(row, Option<Joined<_>>)` pair.
pub fn unjoin<A, B>((a, b): (A, Option<Joined<B>>)) -> (A, Option<B>) {
    (a, b.map(|Joined(b)| b))
}
