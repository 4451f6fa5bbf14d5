//! Leaving for good: deleting an account, deleting an organization (after a grace period
//! an owner can undo), and the purge that carries out the latter.
//!
//! Growth metrics are computed from stored facts, and foreign keys from invitations and
//! shared links to users cascade, so neither an account nor an organization row is
//! removed: each becomes an anonymous tombstone. A deleted account keeps its id, signup
//! time, acquisition source and inviter (the facts of its signup) and loses its email
//! (a unique, undeliverable placeholder), name, password, sessions, referral code, staff
//! flag and memberships; its name and address are also scrubbed from activity summaries
//! and from invitations sent to it. A purged organization keeps its row (renamed) and its
//! invitations (addresses replaced), so invitation counts and conversions stay; its
//! projects with their comments, its shared links with their visits, its webhook
//! endpoints, activity feed and usage rows are deleted.
use chrono::Duration;
use entity::ids::{EmailTokenId, SharedLinkId};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait,
    Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    activity::ActivityType,
    identity,
    ids::{OrgId, UserId},
    metrics::{
        probe::{Probe, Scopes},
        sql::Only,
    },
    orgs::{self, OrgAccess, Role},
    ratelimit::Client,
    DomainError, DomainResult, Services,
};
use crate::db::Tx;
use crate::outbox::{self, Actor, Event};
use entity::enums::{EmailStatus, InvitationState};
use entity::{
    activity_events, email_tokens, emails, entitlement_overrides, idempotency_keys, invitations,
    memberships, organizations, projects, sessions, shared_links, usage_alerts, usage_counters,
    users, webhook_endpoints,
};

/// The display name a deleted account leaves behind.
pub const DELETED_NAME: &str = "Deleted user";
/// The name a purged organization leaves behind.
pub const DELETED_ORG_NAME: &str = "Deleted organization";

/// A unique address that can never receive mail (`.invalid` is reserved, RFC 2606).
fn placeholder(id: impl Into<Uuid>) -> String {
    format!("deleted+{}@deleted.invalid", id.into().simple())
}

/// Deletes the caller's account (the password is required and counts against the log-in
/// limits). Refused with LAST_OWNER while they are the last owner of an organization that
/// has other members; organizations where they are the only member are purged with the
/// account. The row stays as an anonymous tombstone (see the module documentation).
pub async fn delete_account(
    svc: &Services,
    client: &Client,
    user: &users::Model,
    password: &str,
) -> DomainResult<UserId> {
    identity::verify_credentials(svc, client, &user.email, password).await?;
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    let me = user.id;
    // Organizations are locked in id order (before the user's row, the order every
    // transaction keeps), so concurrent deletions never wait on each other in a cycle.
    let ms = memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(user.id))
        .order_by(memberships::Column::OrganizationId, Order::Asc)
        .all(&*tx)
        .await?;
    for m in ms {
        let access = orgs::access_locked(&tx, me, m.organization_id).await?;
        let others = orgs::members_in_org(m.organization_id)
            .filter(memberships::Column::UserId.ne(user.id))
            .count(&*tx)
            .await?;
        if others == 0 {
            refuse_while_paid(&tx, &access.org).await?;
            purge_in_tx(&mut tx, svc, &access.org).await?;
            continue;
        }
        if access.role == Role::Owner {
            let owners = orgs::members_in_org(m.organization_id)
                .filter(memberships::Column::Role.eq(Role::Owner))
                .count(&*tx)
                .await?;
            if owners <= 1 {
                return Err(DomainError::LastOwnerOf(access.org.name));
            }
        }
        // What the membership contributed to the organization's growth leaves with it.
        let probe = Probe::open(
            &tx,
            svc,
            Only {
                members: vec![user.id],
                ..Only::default()
            },
            &[user.id],
            Scopes::Orgs,
        )
        .await?;
        memberships::Entity::delete_by_id(m.id).exec(&*tx).await?;
        probe.close(&mut tx, svc).await?;
        outbox::record(
            &mut tx,
            now,
            Event {
                org: access.org.id,
                kind: ActivityType::MemberRemoved,
                actor: Actor::default(),
                resource: None,
                summary: "A member deleted their account".into(),
                data: json!({ "userId": me.to_string(), "role": access.role.as_api(), "reason": "account_deleted" }),
                webhook: None,
            },
        )
        .await?;
    }
    scrub_activity(&tx, user).await?;
    let gone = placeholder(user.id);
    // Invitations to the address now point at no one; the pending ones the user sent are
    // withdrawn (nobody is invited by a deleted account).
    invitations::Entity::update_many()
        .col_expr(invitations::Column::Email, Expr::value(gone.clone()))
        .filter(invitations::Column::Email.eq(user.email.as_str()))
        .exec(&*tx)
        .await?;
    invitations::Entity::update_many()
        .col_expr(
            invitations::Column::Status,
            Expr::value(InvitationState::Revoked),
        )
        .filter(invitations::Column::InvitedByUserId.eq(user.id))
        .filter(invitations::Column::Status.eq(InvitationState::Pending))
        .exec(&*tx)
        .await?;
    sessions::Entity::delete_many()
        .filter(sessions::Column::UserId.eq(user.id))
        .exec(&*tx)
        .await?;
    // The email outbox forgets the address too: messages to it, and those about the
    // account's links (a new address it was changing to), keep only that they existed.
    let links: Vec<EmailTokenId> = email_tokens::Entity::find()
        .select_only()
        .column(email_tokens::Column::Id)
        .filter(email_tokens::Column::UserId.eq(user.id))
        .into_tuple()
        .all(&*tx)
        .await?;
    scrub_emails(
        &tx,
        Condition::any()
            .add(emails::Column::Recipient.eq(user.email.as_str()))
            .add(emails::Column::SubjectId.is_in(links)),
        &gone,
    )
    .await?;
    email_tokens::Entity::delete_many()
        .filter(email_tokens::Column::UserId.eq(user.id))
        .exec(&*tx)
        .await?;
    idempotency_keys::Entity::delete_many()
        .filter(idempotency_keys::Column::Scope.eq(me.to_string()))
        .exec(&*tx)
        .await?;
    let mut am: users::ActiveModel = user.clone().into();
    am.email = Set(gone);
    am.name = Set(DELETED_NAME.into());
    // Not a PHC string: no password ever matches it.
    am.password_hash = Set("!deleted".into());
    am.referral_code = Set(format!("deleted-{}", user.id.0.simple()));
    am.is_staff = Set(false);
    am.active_organization_id = Set(None);
    am.email_verified_at = Set(None);
    am.deleted_at = Set(Some(now));
    am.update(&*tx).await?;
    tx.revoke(crate::db::bus::Revocation::User(user.id));
    tx.commit(&svc.bus).await?;
    tracing::info!(user_id = %me, "account deleted");
    Ok(me)
}

/// Replaces the recipient of the email outbox rows `which` with an undeliverable
/// placeholder; unsent ones will never be sent. Bodies are not stored (they are rendered
/// at send time), so the address is all a row held.
async fn scrub_emails(tx: &Tx, which: Condition, placeholder: &str) -> DomainResult<()> {
    emails::Entity::update_many()
        .col_expr(emails::Column::Status, Expr::value(EmailStatus::Superseded))
        .filter(which.clone())
        .filter(emails::Column::Status.eq(EmailStatus::Pending))
        .exec(&**tx)
        .await?;
    emails::Entity::update_many()
        .col_expr(emails::Column::Recipient, Expr::value(placeholder))
        .col_expr(
            emails::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .filter(which)
        .exec(&**tx)
        .await?;
    Ok(())
}

/// Replaces a string equal to `from` anywhere in a JSON value.
fn replace_strings(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(s) if s == from => *s = to.to_string(),
        Value::Array(items) => items.iter_mut().for_each(|i| replace_strings(i, from, to)),
        Value::Object(map) => map.values_mut().for_each(|i| replace_strings(i, from, to)),
        _ => {}
    }
}

/// Removes a deleting user's name and address from activity: summaries start with the
/// actor's name ("Ana invited bo@x.io"), and invitations name the invitee's address.
async fn scrub_activity(tx: &Tx, user: &users::Model) -> DomainResult<()> {
    let rows = activity_events::Entity::find()
        .filter(
            Condition::any()
                .add(activity_events::Column::ActorUserId.eq(user.id))
                .add(activity_events::Column::Summary.contains(user.email.as_str())),
        )
        .all(&**tx)
        .await?;
    for row in rows {
        let mut summary = row.summary.replace(user.email.as_str(), "a deleted user");
        if row.actor_user_id == Some(user.id) {
            if let Some(rest) = summary.strip_prefix(user.name.as_str()) {
                summary = format!("{DELETED_NAME}{rest}");
            }
        }
        let mut data = row.data.clone();
        replace_strings(&mut data, &user.email, &placeholder(user.id));
        if summary != row.summary || data != row.data {
            let mut am: activity_events::ActiveModel = row.into();
            am.summary = Set(summary);
            am.data = Set(data);
            am.update(&**tx).await?;
        }
    }
    Ok(())
}

/// Schedules the organization's deletion (OWNER): it is purged once
/// `KFACTOR_ORGANIZATION_DELETION_GRACE_DAYS` have passed, unless an owner restores it.
/// Meanwhile its members keep working in it, but its shared links and invitation links
/// stop working and no invitation email goes out.
pub async fn delete_organization(
    svc: &Services,
    user: &users::Model,
    org: OrgId,
) -> DomainResult<OrgAccess> {
    let now = svc.now();
    let mut tx = Tx::begin(&svc.db).await?;
    let access = orgs::access_locked(&tx, user.id, org).await?;
    access.require(Role::Owner, "delete this organization")?;
    if access.org.deletion_scheduled_for.is_some() {
        return Ok(access);
    }
    refuse_while_paid(&tx, &access.org).await?;
    let grace = Duration::days(svc.config.safety.organization_deletion_grace_days);
    let mut am: organizations::ActiveModel = access.org.into();
    am.deletion_scheduled_for = Set(Some(now + grace));
    let o = am.update(&*tx).await?;
    if grace.is_zero() {
        purge_in_tx(&mut tx, svc, &o).await?;
    }
    tx.revoke(crate::db::bus::Revocation::Org(o.id));
    tx.commit(&svc.bus).await?;
    tracing::info!(org_id = %org, due = %(now + grace), "organization deletion scheduled");
    let o = organizations::Entity::find_by_id(org.0)
        .one(&svc.db.read)
        .await?
        .ok_or(DomainError::NotFound("Organization"))?;
    Ok(OrgAccess {
        org: o,
        role: access.role,
    })
}

/// Deleting an organization someone pays for would leave its subscription charging for
/// nothing (and its later events applying to a tombstone): PERMISSION_DENIED, as
/// `mergeOrganization` answers, until the subscription is canceled.
async fn refuse_while_paid(tx: &Tx, org: &organizations::Model) -> DomainResult<()> {
    if super::billing::attached_in_org(org.id).count(&**tx).await? > 0 {
        return Err(DomainError::PermissionDenied(format!(
            "{} has a paid subscription: cancel it in billing first, then delete it. A subscription set to cancel at the end of its period counts until it ends.",
            org.name
        )));
    }
    Ok(())
}

/// Undoes [`delete_organization`] during the grace period (OWNER).
pub async fn restore_organization(
    svc: &Services,
    user: &users::Model,
    org: OrgId,
) -> DomainResult<OrgAccess> {
    let tx = Tx::begin(&svc.db).await?;
    let access = orgs::access_locked(&tx, user.id, org).await?;
    access.require(Role::Owner, "restore this organization")?;
    let mut am: organizations::ActiveModel = access.org.into();
    am.deletion_scheduled_for = Set(None);
    let o = am.update(&*tx).await?;
    tx.commit(&svc.bus).await?;
    Ok(OrgAccess {
        org: o,
        role: access.role,
    })
}

/// Purges every organization whose grace period is over, one transaction each; several
/// instances may run it at once (each organization's row lock decides). Also drops email
/// links that expired a week ago. Returns how many organizations were purged.
pub async fn purge_due(svc: &Services) -> DomainResult<usize> {
    let now = svc.now();
    email_tokens::Entity::delete_many()
        .filter(email_tokens::Column::ExpiresAt.lt(now - Duration::days(7)))
        .exec(&svc.db.write)
        .await?;
    let due: Vec<OrgId> = organizations::Entity::find()
        .select_only()
        .column(organizations::Column::Id)
        .filter(organizations::Column::DeletionScheduledFor.lte(now))
        .filter(organizations::Column::DeletedAt.is_null())
        .into_tuple()
        .all(&svc.db.read)
        .await?;
    let mut purged = 0;
    for id in due {
        let mut tx = Tx::begin(&svc.db).await?;
        let org = organizations::Entity::find_by_id(id)
            .lock_exclusive()
            .one(&*tx)
            .await?
            .filter(|o| {
                o.deleted_at.is_none() && o.deletion_scheduled_for.is_some_and(|d| d <= now)
            });
        // A subscription attached during the grace period keeps the organization until
        // it is canceled (checked again every pass).
        if let Some(org) = org {
            if super::billing::attached_in_org(org.id).count(&*tx).await? > 0 {
                tracing::warn!(org_id = %id, "deletion due but a subscription is attached; kept until it is canceled");
                continue;
            }
            purge_in_tx(&mut tx, svc, &org).await?;
            tx.commit(&svc.bus).await?;
            purged += 1;
            tracing::info!(org_id = %id, "organization purged");
        }
    }
    Ok(purged)
}

/// Removes an organization's content and members, keeping an anonymous row for the growth
/// facts that point at it (see the module documentation).
async fn purge_in_tx(tx: &mut Tx, svc: &Services, org: &organizations::Model) -> DomainResult<()> {
    let now = svc.now();
    let id = org.id;
    tx.revoke(crate::db::bus::Revocation::Org(id));
    // Growth: its links and their visits leave every number, its members its cohort; its
    // invitations stay (as anonymous facts), and so do the signups credited to it.
    let links: Vec<SharedLinkId> = shared_links::Entity::find()
        .select_only()
        .column(shared_links::Column::Id)
        .filter(shared_links::Column::OrganizationId.eq(id))
        .into_tuple()
        .all(&**tx)
        .await?;
    let members: Vec<UserId> = orgs::members_in_org(id)
        .select_only()
        .column(memberships::Column::UserId)
        .into_tuple()
        .all(&**tx)
        .await?;
    let probe = Probe::open_with_links(
        tx,
        svc,
        Only {
            links,
            members: members.clone(),
            ..Only::default()
        },
        &members,
        None,
    )
    .await?;
    // Links go with their projects, and visits with their links (cascades); deleting the
    // links first keeps that true for any link whose project is already gone.
    shared_links::Entity::delete_many()
        .filter(shared_links::Column::OrganizationId.eq(id))
        .exec(&**tx)
        .await?;
    projects::Entity::delete_many()
        .filter(projects::Column::OrganizationId.eq(id))
        .exec(&**tx)
        .await?;
    webhook_endpoints::Entity::delete_many()
        .filter(webhook_endpoints::Column::OrganizationId.eq(id))
        .exec(&**tx)
        .await?;
    activity_events::Entity::delete_many()
        .filter(activity_events::Column::OrganizationId.eq(id))
        .exec(&**tx)
        .await?;
    entitlement_overrides::Entity::delete_many()
        .filter(entitlement_overrides::Column::OrganizationId.eq(id))
        .exec(&**tx)
        .await?;
    usage_counters::Entity::delete_many()
        .filter(usage_counters::Column::OrganizationId.eq(id))
        .exec(&**tx)
        .await?;
    usage_alerts::Entity::delete_many()
        .filter(usage_alerts::Column::OrganizationId.eq(id))
        .exec(&**tx)
        .await?;
    // Members leave; whoever worked in it lands in another of their organizations.
    memberships::Entity::delete_many()
        .filter(memberships::Column::OrganizationId.eq(id))
        .exec(&**tx)
        .await?;
    for user in users::Entity::find()
        .filter(users::Column::Id.is_in(members))
        .filter(users::Column::ActiveOrganizationId.eq(id))
        .all(&**tx)
        .await?
    {
        let next = memberships::Entity::find()
            .filter(memberships::Column::UserId.eq(user.id))
            .order_by(memberships::Column::Id, Order::Asc)
            .one(&**tx)
            .await?
            .map(|m| m.organization_id);
        identity::set_active_org(&**tx, user, next).await?;
    }
    // Invitations stay as facts, without the invitees' addresses.
    for inv in invitations::Entity::find()
        .filter(invitations::Column::OrganizationId.eq(id))
        .all(&**tx)
        .await?
    {
        let status = match inv.status {
            InvitationState::Pending => InvitationState::Revoked,
            other => other,
        };
        scrub_emails(
            tx,
            Condition::all().add(emails::Column::SubjectId.eq(inv.id)),
            &placeholder(inv.id),
        )
        .await?;
        let mut am: invitations::ActiveModel = inv.clone().into();
        am.email = Set(placeholder(inv.id));
        am.status = Set(status);
        am.update(&**tx).await?;
    }
    let mut am: organizations::ActiveModel = org.clone().into();
    am.name = Set(DELETED_ORG_NAME.into());
    am.deleted_at = Set(Some(now));
    am.deletion_scheduled_for = Set(Some(org.deletion_scheduled_for.unwrap_or(now)));
    am.update(&**tx).await?;
    probe.close(tx, svc).await
}
