//! Batch loaders, so lists of memberships or events resolve their users in one query.
use crate::domain::ids::UserId;
use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    dataloader::{DataLoader, Loader},
    Context,
};

use super::error::internal;
use crate::domain::records;
use crate::domain::{identity, Services};

/// Loads users by id.
pub struct UserLoader(pub Arc<Services>);

impl Loader<UserId> for UserLoader {
    type Value = records::User;
    type Error = Arc<anyhow::Error>;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, records::User>, Self::Error> {
        let rows = identity::users_by_ids(&self.0.db.read, keys)
            .await
            .map_err(|e| Arc::new(anyhow::anyhow!("{e}")))?;
        Ok(rows.into_iter().map(|u| (u.id, u)).collect())
    }
}

/// A batch loader of users for one request, its batches run by `spawn` (the HTTP layer
/// passes one that counts their statements for the request): a batch holds only this
/// request's keys.
pub fn for_request(
    svc: &Arc<Services>,
    spawn: impl Fn(futures_util::future::BoxFuture<'static, ()>) + Send + Sync + 'static,
) -> DataLoader<UserLoader> {
    DataLoader::new(UserLoader(svc.clone()), spawn)
}

/// One user through the request's batch loader.
pub async fn user(ctx: &Context<'_>, id: UserId) -> async_graphql::Result<Option<records::User>> {
    ctx.data_unchecked::<DataLoader<UserLoader>>()
        .load_one(id)
        .await
        .map_err(|e| internal(anyhow::anyhow!("loading user: {e}")))
}
