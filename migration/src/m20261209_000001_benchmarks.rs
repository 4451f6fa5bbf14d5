//! Cross-organization benchmarks: the organizations that opted out of contributing to (and
//! seeing) them. No row: the organization contributes.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BenchmarkOptOuts {
    Table,
    OrganizationId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(BenchmarkOptOuts::Table)
                .col(uuid_pk(BenchmarkOptOuts::OrganizationId))
                .col(ts(BenchmarkOptOuts::CreatedAt))
                .foreign_key(&mut org_fk(
                    BenchmarkOptOuts::Table,
                    BenchmarkOptOuts::OrganizationId,
                ))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(BenchmarkOptOuts::Table).to_owned())
            .await
    }
}
