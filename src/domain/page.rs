//! Keyset pagination over time-ordered ids, for Relay connections.
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use uuid::Uuid;

use super::DomainResult;

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
    let total = match req.count {
        true => Some(select.clone().count(db).await?),
        false => None,
    };
    let mut q = select;
    if let Some(after) = req.after {
        q = match order {
            Order::Desc => q.filter(id.lt(after)),
            _ => q.filter(id.gt(after)),
        };
    }
    let mut items = q.order_by(id, order).limit(req.first + 1).all(db).await?;
    let has_next = items.len() as u64 > req.first;
    items.truncate(req.first as usize);
    Ok(Page {
        items,
        has_next,
        total,
    })
}
