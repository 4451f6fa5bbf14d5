//! Server-to-server API keys: random bearer tokens stored as SHA-256 hashes, with scopes.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    Name,
    TokenHash,
    Scopes,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(uuid_pk(ApiKeys::Id))
                .col(ColumnDef::new(ApiKeys::Name).string().not_null())
                .col(ColumnDef::new(ApiKeys::TokenHash).string().not_null())
                .col(ColumnDef::new(ApiKeys::Scopes).json_binary().not_null())
                .col(ts(ApiKeys::CreatedAt))
                .col(ts_null(ApiKeys::LastUsedAt))
                .col(ts_null(ApiKeys::RevokedAt))
                .to_owned(),
        )
        .await?;
        // Authentication is one lookup by hash.
        m.create_index(
            Index::create()
                .name("api_keys_token_hash_idx")
                .table(ApiKeys::Table)
                .col(ApiKeys::TokenHash)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ApiKeys::Table).to_owned())
            .await
    }
}
