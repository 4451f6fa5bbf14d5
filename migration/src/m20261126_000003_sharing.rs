//! Projects (the shared artifact), comments, shared links and their visits.
use sea_orm_migration::prelude::*;

use crate::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    OrganizationId,
    Name,
    Content,
    CreatedByUserId,
    CreatedByGuestName,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Comments {
    Table,
    Id,
    ProjectId,
    OrganizationId,
    Body,
    AuthorUserId,
    GuestName,
    VisitorId,
    SharedLinkId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SharedLinks {
    Table,
    Id,
    OrganizationId,
    ResourceType,
    ResourceId,
    Permission,
    Audience,
    CreatedByUserId,
    TokenVersion,
    Surface,
    ExpiresAt,
    RevokedAt,
    CreatedAt,
    AccessCount,
    UniqueVisitors,
    FirstAccessedAt,
    LastAccessedAt,
}

#[derive(DeriveIden)]
enum LinkVisits {
    Table,
    Id,
    SharedLinkId,
    OrganizationId,
    VisitorId,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LinkVisitors {
    Table,
    SharedLinkId,
    VisitorId,
    FirstSeenAt,
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
                .table(Projects::Table)
                .col(ColumnDef::new(Projects::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Projects::OrganizationId).uuid().not_null())
                .col(ColumnDef::new(Projects::Name).string().not_null())
                .col(ColumnDef::new(Projects::Content).text().not_null())
                .col(ColumnDef::new(Projects::CreatedByUserId).uuid().null())
                .col(ColumnDef::new(Projects::CreatedByGuestName).string().null())
                .col(ts(Projects::CreatedAt))
                .col(ts(Projects::UpdatedAt))
                .foreign_key(&mut org_fk(Projects::Table, Projects::OrganizationId))
                .foreign_key(
                    ForeignKey::create()
                        .from(Projects::Table, Projects::CreatedByUserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("projects_org_id_idx")
                .table(Projects::Table)
                .col(Projects::OrganizationId)
                .col(Projects::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Comments::Table)
                .col(ColumnDef::new(Comments::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Comments::ProjectId).uuid().not_null())
                .col(ColumnDef::new(Comments::OrganizationId).uuid().not_null())
                .col(ColumnDef::new(Comments::Body).text().not_null())
                .col(ColumnDef::new(Comments::AuthorUserId).uuid().null())
                .col(ColumnDef::new(Comments::GuestName).string().null())
                .col(ColumnDef::new(Comments::VisitorId).string().null())
                .col(ColumnDef::new(Comments::SharedLinkId).uuid().null())
                .col(ts(Comments::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Comments::Table, Comments::ProjectId)
                        .to(Projects::Table, Projects::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Comments::Table, Comments::AuthorUserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("comments_project_id_idx")
                .table(Comments::Table)
                .col(Comments::ProjectId)
                .col(Comments::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("comments_visitor_idx")
                .table(Comments::Table)
                .col(Comments::VisitorId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(SharedLinks::Table)
                .col(
                    ColumnDef::new(SharedLinks::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(SharedLinks::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(SharedLinks::ResourceType)
                        .string()
                        .not_null(),
                )
                .col(ColumnDef::new(SharedLinks::ResourceId).uuid().not_null())
                .col(ColumnDef::new(SharedLinks::Permission).string().not_null())
                .col(ColumnDef::new(SharedLinks::Audience).string().not_null())
                .col(
                    ColumnDef::new(SharedLinks::CreatedByUserId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(SharedLinks::TokenVersion)
                        .integer()
                        .not_null(),
                )
                .col(ColumnDef::new(SharedLinks::Surface).string().null())
                .col(ts_null(SharedLinks::ExpiresAt))
                .col(ts_null(SharedLinks::RevokedAt))
                .col(ts(SharedLinks::CreatedAt))
                .col(
                    ColumnDef::new(SharedLinks::AccessCount)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(SharedLinks::UniqueVisitors)
                        .big_integer()
                        .not_null(),
                )
                .col(ts_null(SharedLinks::FirstAccessedAt))
                .col(ts_null(SharedLinks::LastAccessedAt))
                .foreign_key(&mut org_fk(SharedLinks::Table, SharedLinks::OrganizationId))
                .foreign_key(
                    ForeignKey::create()
                        .from(SharedLinks::Table, SharedLinks::ResourceId)
                        .to(Projects::Table, Projects::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(SharedLinks::Table, SharedLinks::CreatedByUserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("shared_links_org_id_idx")
                .table(SharedLinks::Table)
                .col(SharedLinks::OrganizationId)
                .col(SharedLinks::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("shared_links_resource_idx")
                .table(SharedLinks::Table)
                .col(SharedLinks::ResourceId)
                .to_owned(),
        )
        .await?;

        // One row per open: the stored fact behind accessCount and the share funnel.
        m.create_table(
            Table::create()
                .table(LinkVisits::Table)
                .col(
                    ColumnDef::new(LinkVisits::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(LinkVisits::SharedLinkId).uuid().not_null())
                .col(ColumnDef::new(LinkVisits::OrganizationId).uuid().not_null())
                .col(ColumnDef::new(LinkVisits::VisitorId).string().not_null())
                .col(ColumnDef::new(LinkVisits::UserId).uuid().null())
                .col(ts(LinkVisits::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(LinkVisits::Table, LinkVisits::SharedLinkId)
                        .to(SharedLinks::Table, SharedLinks::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("link_visits_link_idx")
                .table(LinkVisits::Table)
                .col(LinkVisits::SharedLinkId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("link_visits_created_at_idx")
                .table(LinkVisits::Table)
                .col(LinkVisits::CreatedAt)
                .to_owned(),
        )
        .await?;

        // Distinct visitors per link: the insert that succeeds is a new unique visitor.
        m.create_table(
            Table::create()
                .table(LinkVisitors::Table)
                .col(ColumnDef::new(LinkVisitors::SharedLinkId).uuid().not_null())
                .col(ColumnDef::new(LinkVisitors::VisitorId).string().not_null())
                .col(ts(LinkVisitors::FirstSeenAt))
                .primary_key(
                    Index::create()
                        .col(LinkVisitors::SharedLinkId)
                        .col(LinkVisitors::VisitorId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(LinkVisitors::Table, LinkVisitors::SharedLinkId)
                        .to(SharedLinks::Table, SharedLinks::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            LinkVisitors::Table.into_iden(),
            LinkVisits::Table.into_iden(),
            SharedLinks::Table.into_iden(),
            Comments::Table.into_iden(),
            Projects::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
