//! Invitations, the attribution log (referral_events), and the email outbox.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    OrganizationId,
    Email,
    Role,
    InvitedByUserId,
    Surface,
    Status,
    TokenVersion,
    TeamInvite,
    CreatedAt,
    LastSentAt,
    SendCount,
    ExpiresAt,
    OpenedAt,
    AcceptedAt,
    AcceptedByUserId,
}

#[derive(DeriveIden)]
enum InvitationSends {
    Table,
    Id,
    InvitationId,
    SenderUserId,
    SentAt,
}

#[derive(DeriveIden)]
enum ReferralEvents {
    Table,
    Id,
    OrganizationId,
    ActorUserId,
    Action,
    ResourceType,
    ResourceId,
    ResultedInSignupId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Emails {
    Table,
    Id,
    Kind,
    Recipient,
    SubjectId,
    SubjectVersion,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LastError,
    CreatedAt,
    SentAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Invitations::Table)
                .col(
                    ColumnDef::new(Invitations::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(Invitations::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(ColumnDef::new(Invitations::Email).string().not_null())
                .col(ColumnDef::new(Invitations::Role).string().not_null())
                .col(
                    ColumnDef::new(Invitations::InvitedByUserId)
                        .uuid()
                        .not_null(),
                )
                .col(ColumnDef::new(Invitations::Surface).string().null())
                .col(ColumnDef::new(Invitations::Status).string().not_null())
                .col(
                    ColumnDef::new(Invitations::TokenVersion)
                        .integer()
                        .not_null(),
                )
                .col(ColumnDef::new(Invitations::TeamInvite).boolean().not_null())
                .col(ts(Invitations::CreatedAt))
                .col(ts(Invitations::LastSentAt))
                .col(ColumnDef::new(Invitations::SendCount).integer().not_null())
                .col(ts(Invitations::ExpiresAt))
                .col(ts_null(Invitations::OpenedAt))
                .col(ts_null(Invitations::AcceptedAt))
                .col(ColumnDef::new(Invitations::AcceptedByUserId).uuid().null())
                .foreign_key(
                    ForeignKey::create()
                        .from(Invitations::Table, Invitations::OrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Invitations::Table, Invitations::InvitedByUserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Invitations::Table, Invitations::AcceptedByUserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        // An invitation is the pair (organization, email): re-sends reuse the row.
        m.create_index(
            Index::create()
                .name("invitations_org_email_key")
                .table(Invitations::Table)
                .col(Invitations::OrganizationId)
                .col(Invitations::Email)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("invitations_inviter_idx")
                .table(Invitations::Table)
                .col(Invitations::InvitedByUserId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("invitations_created_at_idx")
                .table(Invitations::Table)
                .col(Invitations::CreatedAt)
                .to_owned(),
        )
        .await?;

        // Every send (first and re-sends): the per-user rate limit counts these.
        m.create_table(
            Table::create()
                .table(InvitationSends::Table)
                .col(
                    ColumnDef::new(InvitationSends::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(InvitationSends::InvitationId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(InvitationSends::SenderUserId)
                        .uuid()
                        .not_null(),
                )
                .col(ts(InvitationSends::SentAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(InvitationSends::Table, InvitationSends::InvitationId)
                        .to(Invitations::Table, Invitations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("invitation_sends_sender_idx")
                .table(InvitationSends::Table)
                .col(InvitationSends::SenderUserId)
                .col(InvitationSends::SentAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ReferralEvents::Table)
                .col(
                    ColumnDef::new(ReferralEvents::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(ReferralEvents::OrganizationId).uuid().null())
                .col(ColumnDef::new(ReferralEvents::ActorUserId).uuid().null())
                .col(ColumnDef::new(ReferralEvents::Action).string().not_null())
                .col(ColumnDef::new(ReferralEvents::ResourceType).string().null())
                .col(ColumnDef::new(ReferralEvents::ResourceId).uuid().null())
                .col(
                    ColumnDef::new(ReferralEvents::ResultedInSignupId)
                        .uuid()
                        .null(),
                )
                .col(ts(ReferralEvents::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("referral_events_actor_idx")
                .table(ReferralEvents::Table)
                .col(ReferralEvents::ActorUserId)
                .col(ReferralEvents::CreatedAt)
                .to_owned(),
        )
        .await?;

        // The email outbox. Rows hold what to send (kind + subject row and version), never
        // a token: the message is rendered when it is sent.
        m.create_table(
            Table::create()
                .table(Emails::Table)
                .col(ColumnDef::new(Emails::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Emails::Kind).string().not_null())
                .col(ColumnDef::new(Emails::Recipient).string().not_null())
                .col(ColumnDef::new(Emails::SubjectId).uuid().not_null())
                .col(ColumnDef::new(Emails::SubjectVersion).integer().not_null())
                .col(ColumnDef::new(Emails::Status).string().not_null())
                .col(ColumnDef::new(Emails::Attempts).integer().not_null())
                .col(ts(Emails::NextAttemptAt))
                .col(ts_null(Emails::LockedUntil))
                .col(ColumnDef::new(Emails::LastError).string().null())
                .col(ts(Emails::CreatedAt))
                .col(ts_null(Emails::SentAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("emails_due_idx")
                .table(Emails::Table)
                .col(Emails::Status)
                .col(Emails::NextAttemptAt)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Emails::Table.into_iden(),
            ReferralEvents::Table.into_iden(),
            InvitationSends::Table.into_iden(),
            Invitations::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
