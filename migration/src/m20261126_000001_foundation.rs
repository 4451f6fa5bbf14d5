//! Identity, organizations, sessions, the activity log, the webhook outbox and settings.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    AcquisitionSource,
    InvitedByUserId,
    InviteTokenId,
    UtmSource,
    ReferralCode,
    ActivatedAt,
    IsStaff,
    ActiveOrganizationId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    TokenHash,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Name,
    InvitePolicy,
    PlanKey,
    BillingAnchor,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
    OrganizationId,
    UserId,
    Role,
    JoinedAt,
}

#[derive(DeriveIden)]
enum ActivityEvents {
    Table,
    Id,
    OrganizationId,
    EventType,
    ActorUserId,
    ActorGuestName,
    ResourceType,
    ResourceId,
    Summary,
    Data,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WebhookMessages {
    Table,
    Id,
    OrganizationId,
    EventType,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Key,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Organizations::Table)
                .col(uuid_pk(Organizations::Id))
                .col(ColumnDef::new(Organizations::Name).string().not_null())
                .col(
                    ColumnDef::new(Organizations::InvitePolicy)
                        .string()
                        .not_null(),
                )
                .col(ColumnDef::new(Organizations::PlanKey).string().not_null())
                .col(ts(Organizations::BillingAnchor))
                .col(ts(Organizations::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(uuid_pk(Users::Id))
                .col(ColumnDef::new(Users::Email).string().not_null())
                .col(ColumnDef::new(Users::Name).string().not_null())
                .col(ColumnDef::new(Users::PasswordHash).string().not_null())
                .col(ColumnDef::new(Users::AcquisitionSource).string().not_null())
                .col(ColumnDef::new(Users::InvitedByUserId).uuid().null())
                // The invitation (or shared link) the user signed up through; its table comes
                // with the invitations capability, so no foreign key here.
                .col(ColumnDef::new(Users::InviteTokenId).uuid().null())
                .col(ColumnDef::new(Users::UtmSource).string().null())
                .col(ColumnDef::new(Users::ReferralCode).string().not_null())
                .col(
                    ColumnDef::new(Users::ActivatedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(
                    ColumnDef::new(Users::IsStaff)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(ColumnDef::new(Users::ActiveOrganizationId).uuid().null())
                .col(ts(Users::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Users::Table, Users::InvitedByUserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Users::Table, Users::ActiveOrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("users_email_key")
                .table(Users::Table)
                .col(Users::Email)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("users_referral_code_key")
                .table(Users::Table)
                .col(Users::ReferralCode)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("users_invited_by_idx")
                .table(Users::Table)
                .col(Users::InvitedByUserId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("users_created_at_idx")
                .table(Users::Table)
                .col(Users::CreatedAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(uuid_pk(Sessions::Id))
                .col(ColumnDef::new(Sessions::UserId).uuid().not_null())
                .col(ColumnDef::new(Sessions::TokenHash).string().not_null())
                .col(ts(Sessions::CreatedAt))
                .col(ts(Sessions::LastUsedAt))
                .col(ts(Sessions::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Sessions::Table, Sessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("sessions_token_hash_key")
                .table(Sessions::Table)
                .col(Sessions::TokenHash)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("sessions_user_idx")
                .table(Sessions::Table)
                .col(Sessions::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Memberships::Table)
                .col(uuid_pk(Memberships::Id))
                .col(
                    ColumnDef::new(Memberships::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(ColumnDef::new(Memberships::UserId).uuid().not_null())
                .col(ColumnDef::new(Memberships::Role).string().not_null())
                .col(ts(Memberships::JoinedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Memberships::Table, Memberships::OrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Memberships::Table, Memberships::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("memberships_org_user_key")
                .table(Memberships::Table)
                .col(Memberships::OrganizationId)
                .col(Memberships::UserId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("memberships_user_idx")
                .table(Memberships::Table)
                .col(Memberships::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ActivityEvents::Table)
                .col(uuid_pk(ActivityEvents::Id))
                .col(
                    ColumnDef::new(ActivityEvents::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ActivityEvents::EventType)
                        .string()
                        .not_null(),
                )
                .col(ColumnDef::new(ActivityEvents::ActorUserId).uuid().null())
                .col(
                    ColumnDef::new(ActivityEvents::ActorGuestName)
                        .string()
                        .null(),
                )
                .col(ColumnDef::new(ActivityEvents::ResourceType).string().null())
                .col(ColumnDef::new(ActivityEvents::ResourceId).uuid().null())
                .col(ColumnDef::new(ActivityEvents::Summary).string().not_null())
                .col(
                    ColumnDef::new(ActivityEvents::Data)
                        .json_binary()
                        .not_null(),
                )
                .col(ts(ActivityEvents::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ActivityEvents::Table, ActivityEvents::OrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("activity_events_org_id_idx")
                .table(ActivityEvents::Table)
                .col(ActivityEvents::OrganizationId)
                .col(ActivityEvents::Id)
                .to_owned(),
        )
        .await?;

        // The webhook outbox. Messages outlive the organization they came from (a CRM still
        // wants the last events of a deleted workspace), so no foreign key to organizations.
        m.create_table(
            Table::create()
                .table(WebhookMessages::Table)
                .col(uuid_pk(WebhookMessages::Id))
                .col(
                    ColumnDef::new(WebhookMessages::OrganizationId)
                        .uuid()
                        .null(),
                )
                .col(
                    ColumnDef::new(WebhookMessages::EventType)
                        .string()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(WebhookMessages::Payload)
                        .json_binary()
                        .not_null(),
                )
                .col(ts(WebhookMessages::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("webhook_messages_created_at_idx")
                .table(WebhookMessages::Table)
                .col(WebhookMessages::CreatedAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Settings::Table)
                .col(
                    ColumnDef::new(Settings::Key)
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Settings::Value).string().not_null())
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Settings::Table.into_iden(),
            WebhookMessages::Table.into_iden(),
            ActivityEvents::Table.into_iden(),
            Memberships::Table.into_iden(),
            Sessions::Table.into_iden(),
            Users::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
