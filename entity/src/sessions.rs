//! A signed-in session. Only the SHA-256 of the bearer token is stored.
use crate::ids::{SessionId, UserId};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: SessionId,
    pub user_id: UserId,
    /// Lower-case hex SHA-256 of the token.
    pub token_hash: String,
    pub created_at: DateTimeUtc,
    pub last_used_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// The `User-Agent` the session was started with.
    pub user_agent: Option<String>,
    /// The client address the session was started from.
    pub ip: Option<String>,
    /// What the session authenticates: the API (a bearer token) or the pages (a cookie).
    pub kind: SessionKind,
}

/// Where a session's token is accepted. The two never cross: `/graphql` takes only `api`
/// sessions, the pages only `page` sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum SessionKind {
    /// A bearer token from `logIn` or `signUp`.
    #[sea_orm(string_value = "api")]
    Api,
    /// A browser cookie from `POST /login`.
    #[sea_orm(string_value = "page")]
    Page,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
