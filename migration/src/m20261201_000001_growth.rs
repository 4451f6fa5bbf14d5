//! Growth metrics: the facts an invitation keeps across re-sends and revivals, the
//! organization a signup is credited to, and the indexes the metric queries read through.
//!
//! A revived invitation (re-invited after it was revoked, expired or accepted) starts a new
//! round: `invited_by_user_id`, `opened_at`, `accepted_at` describe that round. The metrics
//! count the pair (organization, email) from its first send, so the `first_*` columns keep
//! what the pair did at any time and are never reset.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Invitations {
    Table,
    OrganizationId,
    CreatedAt,
    FirstSentByUserId,
    FirstOpenedAt,
    FirstAcceptedAt,
    FirstAcceptedByUserId,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    CreatedAt,
    AcquisitionSource,
    InviteTokenId,
    AttributedOrganizationId,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    OrganizationId,
    JoinedAt,
}

#[derive(DeriveIden)]
enum SharedLinks {
    Table,
    OrganizationId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LinkVisits {
    Table,
    OrganizationId,
    CreatedAt,
    VisitorId,
}

/// Fills the new columns from what the rows already say.
const BACKFILL: &[&str] = &[
    "UPDATE invitations SET first_sent_by_user_id = COALESCE(
        (SELECT s.sender_user_id FROM invitation_sends s
          WHERE s.invitation_id = invitations.id ORDER BY s.sent_at, s.id LIMIT 1),
        invited_by_user_id)",
    "UPDATE invitations SET first_accepted_at = accepted_at,
        first_accepted_by_user_id = accepted_by_user_id,
        first_opened_at = COALESCE(opened_at, accepted_at)",
    "UPDATE users SET attributed_organization_id = CASE acquisition_source
        WHEN 'invite' THEN (SELECT i.organization_id FROM invitations i WHERE i.id = users.invite_token_id)
        WHEN 'share' THEN (SELECT l.organization_id FROM shared_links l WHERE l.id = users.invite_token_id)
        WHEN 'referral' THEN (SELECT r.organization_id FROM referral_events r
            WHERE r.action = 'signed_up' AND r.resulted_in_signup_id = users.id LIMIT 1)
        END",
];

fn index(name: &str, table: impl IntoIden, cols: Vec<DynIden>) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in cols {
        i.col(c);
    }
    i.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for col in [
            ColumnDef::new(Invitations::FirstSentByUserId)
                .uuid()
                .null()
                .to_owned(),
            ColumnDef::new(Invitations::FirstOpenedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(Invitations::FirstAcceptedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(Invitations::FirstAcceptedByUserId)
                .uuid()
                .null()
                .to_owned(),
        ] {
            m.alter_table(
                Table::alter()
                    .table(Invitations::Table)
                    .add_column(col)
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(
                    ColumnDef::new(Users::AttributedOrganizationId)
                        .uuid()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        for sql in BACKFILL {
            db.execute_unprepared(sql).await?;
        }

        // Every metric filters on a half-open time window; these indexes hold the columns
        // each query reads, so the window is one range scan.
        for stmt in [
            index(
                "users_created_source_idx",
                Users::Table,
                vec![
                    Users::CreatedAt.into_iden(),
                    Users::AcquisitionSource.into_iden(),
                ],
            ),
            index(
                "users_invite_token_idx",
                Users::Table,
                vec![Users::InviteTokenId.into_iden()],
            ),
            index(
                "users_attributed_org_idx",
                Users::Table,
                vec![
                    Users::AttributedOrganizationId.into_iden(),
                    Users::CreatedAt.into_iden(),
                ],
            ),
            index(
                "invitations_first_sender_idx",
                Invitations::Table,
                vec![
                    Invitations::FirstSentByUserId.into_iden(),
                    Invitations::CreatedAt.into_iden(),
                ],
            ),
            index(
                "invitations_org_created_idx",
                Invitations::Table,
                vec![
                    Invitations::OrganizationId.into_iden(),
                    Invitations::CreatedAt.into_iden(),
                ],
            ),
            index(
                "memberships_org_joined_idx",
                Memberships::Table,
                vec![
                    Memberships::OrganizationId.into_iden(),
                    Memberships::JoinedAt.into_iden(),
                ],
            ),
            index(
                "shared_links_created_idx",
                SharedLinks::Table,
                vec![SharedLinks::CreatedAt.into_iden()],
            ),
            index(
                "shared_links_org_created_idx",
                SharedLinks::Table,
                vec![
                    SharedLinks::OrganizationId.into_iden(),
                    SharedLinks::CreatedAt.into_iden(),
                ],
            ),
            index(
                "link_visits_created_visitor_idx",
                LinkVisits::Table,
                vec![
                    LinkVisits::CreatedAt.into_iden(),
                    LinkVisits::VisitorId.into_iden(),
                ],
            ),
            index(
                "link_visits_org_created_idx",
                LinkVisits::Table,
                vec![
                    LinkVisits::OrganizationId.into_iden(),
                    LinkVisits::CreatedAt.into_iden(),
                    LinkVisits::VisitorId.into_iden(),
                ],
            ),
        ] {
            m.create_index(stmt).await?;
        }
        // Superseded by the covering indexes above.
        for (name, table) in [
            ("users_created_at_idx", Users::Table.into_iden()),
            ("link_visits_created_at_idx", LinkVisits::Table.into_iden()),
        ] {
            m.drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in INDEXES {
            m.drop_index(
                Index::drop()
                    .name(*name)
                    .table(Alias::new(*table))
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(index(
            "users_created_at_idx",
            Users::Table,
            vec![Users::CreatedAt.into_iden()],
        ))
        .await?;
        m.create_index(index(
            "link_visits_created_at_idx",
            LinkVisits::Table,
            vec![LinkVisits::CreatedAt.into_iden()],
        ))
        .await?;
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .drop_column(Users::AttributedOrganizationId)
                .to_owned(),
        )
        .await?;
        for col in [
            Invitations::FirstSentByUserId,
            Invitations::FirstOpenedAt,
            Invitations::FirstAcceptedAt,
            Invitations::FirstAcceptedByUserId,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Invitations::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

/// The indexes `up` creates, by (name, table), for `down`.
const INDEXES: &[(&str, &str)] = &[
    ("users_created_source_idx", "users"),
    ("users_invite_token_idx", "users"),
    ("users_attributed_org_idx", "users"),
    ("invitations_first_sender_idx", "invitations"),
    ("invitations_org_created_idx", "invitations"),
    ("memberships_org_joined_idx", "memberships"),
    ("shared_links_created_idx", "shared_links"),
    ("shared_links_org_created_idx", "shared_links"),
    ("link_visits_created_visitor_idx", "link_visits"),
    ("link_visits_org_created_idx", "link_visits"),
];
