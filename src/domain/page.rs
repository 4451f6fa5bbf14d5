//! Keyset pagination over time-ordered ids, for Relay connections.
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, Order, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, RelationDef, Select,
};
use uuid::Uuid;

use super::DomainResult;
use crate::db::Joined;

/// The largest page a client may ask for.
pub const MAX_PAGE: u64 = 100;

/// Which page: at most `first` items after the item with id `after`.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    /// Page size, already capped at [`MAX_PAGE`].
    pub first: u64,
    /// Id of the last item of the previous page.
    pub after: Option<Uuid>,
    /// Whether the caller wants the whole list's size (a `COUNT(*)` of its own, so it is
    /// run only when asked for).
    pub count: bool,
}

/// One page of items.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The items, in order.
    pub items: Vec<T>,
    /// Whether more items follow.
    pub has_next: bool,
    /// How many items the whole list has; None when the request did not ask
    /// ([`PageRequest::count`]).
    pub total: Option<u64>,
}

impl<T> Page<T> {
    /// Maps the items.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next: self.has_next,
            total: self.total,
        }
    }
}

/// Fetches one page of `select`, ordered by the time-ordered `id` column (`Order::Desc` for
/// newest first).
pub async fn fetch<E, C>(
    db: &C,
    select: Select<E>,
    id: E::Column,
    order: Order,
    req: PageRequest,
) -> DomainResult<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let total = total(db, &select, req).await?;
    let items = after(select, id, &order, req)
        .order_by(id, order)
        .limit(req.first + 1)
        .all(db)
        .await?;
    Ok(page_of(items, req, total))
}

/// Like [`fetch`], each item with the row `join` (a relation from `E` to `F` that every
/// row has) leads to, read in the same statement.
pub async fn fetch_joined<E, F, C>(
    db: &C,
    select: Select<E>,
    join: RelationDef,
    id: E::Column,
    order: Order,
    req: PageRequest,
) -> DomainResult<Page<(E::Model, F::Model)>>
where
    E: EntityTrait,
    F: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let total = total(db, &select, req).await?;
    let rows = after(select, id, &order, req)
        .join(JoinType::InnerJoin, join)
        .select_also(F::default())
        .order_by(id, order)
        .limit(req.first + 1)
        .into_model::<E::Model, Joined<F::Model>>()
        .all(db)
        .await?;
    // An inner join: every row has its joined side.
    let items = rows
        .into_iter()
        .filter_map(|(a, b)| Some((a, b?.0)))
        .collect();
    Ok(page_of(items, req, total))
}

/// The whole list's size, when the request asks for it.
async fn total<E, C>(db: &C, select: &Select<E>, req: PageRequest) -> DomainResult<Option<u64>>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    Ok(match req.count {
        true => Some(select.clone().count(db).await?),
        false => None,
    })
}

/// `select` narrowed to the items after the cursor.
fn after<E: EntityTrait>(
    select: Select<E>,
    id: E::Column,
    order: &Order,
    req: PageRequest,
) -> Select<E> {
    match (req.after, order) {
        (None, _) => select,
        (Some(after), Order::Desc) => select.filter(id.lt(after)),
        (Some(after), _) => select.filter(id.gt(after)),
    }
}

/// The page of `items`, read with one more than the page size to tell whether more follow.
fn page_of<T>(mut items: Vec<T>, req: PageRequest, total: Option<u64>) -> Page<T> {
    let has_next = items.len() as u64 > req.first;
    items.truncate(req.first as usize);
    Page {
        items,
        has_next,
        total,
    }
}
