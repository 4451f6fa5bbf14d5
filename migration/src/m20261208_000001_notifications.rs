//! Notifications: one row per recipient of something that happened to them (a comment on a
//! project they created or commented on, a mention, an accepted invitation, a signup
//! through their link or referral code, a limit their organization reached), written in the
//! transaction of its cause; and each user's notification preferences.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    UserId,
    OrganizationId,
    Kind,
    ActorUserId,
    ActorName,
    ProjectId,
    CommentId,
    Summary,
    CreatedAt,
    ReadAt,
    EmailBatchId,
}

#[derive(DeriveIden)]
enum NotificationPreferences {
    Table,
    UserId,
    Comments,
    Mentions,
    InvitationAccepted,
    Signups,
    LimitReached,
    Email,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

fn user_fk<T: IntoIden + 'static>(table: T, col: T) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn flag<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .boolean()
        .not_null()
        .default(true)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Notifications::Table)
                .col(uuid_pk(Notifications::Id))
                .col(ColumnDef::new(Notifications::UserId).uuid().not_null())
                // Null for what concerns the user alone (a signup through their referral code).
                .col(ColumnDef::new(Notifications::OrganizationId).uuid().null())
                .col(ColumnDef::new(Notifications::Kind).string().not_null())
                .col(ColumnDef::new(Notifications::ActorUserId).uuid().null())
                .col(ColumnDef::new(Notifications::ActorName).string().not_null())
                .col(ColumnDef::new(Notifications::ProjectId).uuid().null())
                .col(ColumnDef::new(Notifications::CommentId).uuid().null())
                .col(ColumnDef::new(Notifications::Summary).text().not_null())
                .col(ts(Notifications::CreatedAt))
                .col(ts_null(Notifications::ReadAt))
                // The email batch that listed it; null until one did.
                .col(ColumnDef::new(Notifications::EmailBatchId).uuid().null())
                .foreign_key(&mut user_fk(Notifications::Table, Notifications::UserId))
                .foreign_key(&mut org_fk(
                    Notifications::Table,
                    Notifications::OrganizationId,
                ))
                .to_owned(),
        )
        .await?;
        // A user's list, newest first, and their unread count.
        m.create_index(
            Index::create()
                .name("notifications_user_idx")
                .table(Notifications::Table)
                .col(Notifications::UserId)
                .col(Notifications::Id)
                .to_owned(),
        )
        .await?;
        // The batcher's scan: not yet batched, oldest first.
        m.create_index(
            Index::create()
                .name("notifications_batch_idx")
                .table(Notifications::Table)
                .col(Notifications::EmailBatchId)
                .col(Notifications::CreatedAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("notifications_batch_id_idx")
                .table(Notifications::Table)
                .col(Notifications::EmailBatchId)
                .col(Notifications::UserId)
                .to_owned(),
        )
        .await?;

        // No row: everything on (the defaults).
        m.create_table(
            Table::create()
                .table(NotificationPreferences::Table)
                .col(uuid_pk(NotificationPreferences::UserId))
                .col(flag(NotificationPreferences::Comments))
                .col(flag(NotificationPreferences::Mentions))
                .col(flag(NotificationPreferences::InvitationAccepted))
                .col(flag(NotificationPreferences::Signups))
                .col(flag(NotificationPreferences::LimitReached))
                .col(flag(NotificationPreferences::Email))
                .col(ts(NotificationPreferences::UpdatedAt))
                .foreign_key(&mut user_fk(
                    NotificationPreferences::Table,
                    NotificationPreferences::UserId,
                ))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(NotificationPreferences::Table)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(Notifications::Table).to_owned())
            .await?;
        Ok(())
    }
}
