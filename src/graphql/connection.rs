//! Relay cursor connections: `edges { cursor node }`, `nodes`, `pageInfo`, `totalCount`.
//! Cursors are opaque (base64url of the item's time-ordered id).
use async_graphql::SimpleObject;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use uuid::Uuid;

use super::error::{top, TopLevelCode};
use crate::domain::page::{PageRequest, MAX_PAGE};

/// Where a page ends.
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    /// Whether more items follow this page.
    pub has_next_page: bool,
    /// Cursor of the last item of this page; pass it as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// Complexity of a connection field: a page of `first` items (default 20, at most 100) costs
/// `first` times its selection, so list fan-out counts against the limit.
pub fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    (first.unwrap_or(20).clamp(1, MAX_PAGE as i32) as usize).saturating_mul(child_complexity.max(1))
}

/// The opaque cursor of an item id.
pub fn cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// Parses `first` (default 20, capped at 100) and `after` into a page request for the
/// connection field being resolved; the list is counted only when its selection asks for
/// `totalCount` (directly, through a fragment or under an alias).
pub fn page_request(
    ctx: &async_graphql::Context<'_>,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<PageRequest> {
    let first = match first {
        None => 20,
        Some(n) if n < 0 => {
            return Err(top(
                TopLevelCode::InvalidInput,
                "`first` cannot be negative.",
            ));
        }
        Some(n) => (n as u64).min(MAX_PAGE),
    };
    let after = match after.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(c) => Some(
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| Uuid::from_slice(&b).ok())
                .ok_or_else(|| top(TopLevelCode::InvalidInput, "`after` is not a valid cursor."))?,
        ),
    };
    let count = ctx.look_ahead().field("totalCount").exists();
    Ok(PageRequest {
        first,
        after,
        count,
    })
}

/// Declares `XConnection` and `XEdge` for node type `X`.
macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty, $doc:literal) => {
        #[doc = concat!("A page of ", $doc, ".")]
        #[derive(async_graphql::SimpleObject)]
        pub struct $conn {
            /// The items with their cursors.
            pub edges: Vec<$edge>,
            /// The items.
            pub nodes: Vec<$node>,
            /// Where this page ends.
            pub page_info: $crate::graphql::connection::PageInfo,
            /// How many items the whole list has.
            pub total_count: i32,
        }

        #[doc = concat!("One of ", $doc, " with its cursor.")]
        #[derive(async_graphql::SimpleObject)]
        pub struct $edge {
            /// Opaque cursor of this item.
            pub cursor: String,
            /// The item.
            pub node: $node,
        }

        impl $conn {
            /// Builds the connection from a domain page; `id` gives each item's id.
            pub fn from_page<T, I: Into<uuid::Uuid>>(
                page: $crate::domain::page::Page<T>,
                id: impl Fn(&T) -> I,
                node: impl Fn(T) -> $node,
            ) -> Self {
                let mut edges = Vec::with_capacity(page.items.len());
                let mut nodes = Vec::with_capacity(page.items.len());
                for item in page.items {
                    let cursor = $crate::graphql::connection::cursor(id(&item).into());
                    let n = node(item);
                    nodes.push(n.clone());
                    edges.push($edge { cursor, node: n });
                }
                let end_cursor = edges.last().map(|e| e.cursor.clone());
                $conn {
                    edges,
                    nodes,
                    page_info: $crate::graphql::connection::PageInfo {
                        has_next_page: page.has_next,
                        end_cursor,
                    },
                    // Not counted only when the selection does not read it.
                    total_count: page.total.unwrap_or(0).min(i32::MAX as u64) as i32,
                }
            }
        }
    };
}
pub(crate) use connection;
