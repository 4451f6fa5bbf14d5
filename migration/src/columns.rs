//! Column and key shapes every migration uses, so each migration states only its tables.
use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

/// A UUID primary key.
pub fn uuid_pk<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .uuid()
        .not_null()
        .primary_key()
        .to_owned()
}

/// A required timestamp with time zone.
pub fn ts<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

/// An optional timestamp with time zone.
pub fn ts_null<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

/// `table.col` references an organization; its rows go when the organization goes.
pub fn org_fk<T: IntoIden + 'static>(table: T, col: T) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Organizations::Table, Organizations::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}
