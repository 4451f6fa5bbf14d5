//! `createInvitations`: many addresses in one transaction, each succeeding or failing on its
//! own. The steps, per call: [`validate`] the request, authorize and open the [`Batch`]
//! (budget and pending count); per address: parse it, check its [`Batch::limits`],
//! [`Batch::upsert`] the invitation, [`Batch::send`] it; then the call's [`Batch::events`].
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter,
};

use super::{in_org, pending_count, rate_limited, record_send, send_budget, status, Status};
use crate::db::Tx;
use crate::domain::{
    entitlements,
    identity::Email,
    ids::{InvitationId, OrgId, UserId},
    metrics::{probe::Probe, sql::Only},
    orgs::{self, InvitePolicy, Role},
    referrals, DomainError, DomainResult, Services,
};
use entity::enums::InvitationState;
use entity::{invitations, users};

/// Most emails in one `createInvitations` call.
pub const MAX_BATCH: usize = 100;
/// Longest accepted surface label.
const MAX_SURFACE: usize = 100;

/// What `createInvitations` asks for.
#[derive(Clone, Debug)]
pub struct NewInvitations {
    /// Where to.
    pub org: OrgId,
    /// Raw addresses, each validated on its own.
    pub emails: Vec<String>,
    /// The role they will get.
    pub role: Role,
    /// Product surface label.
    pub surface: Option<String>,
}

/// Result of a bulk send: the invitations that went out, and per-email errors by index.
#[derive(Debug, Default)]
pub struct Sent {
    /// Created or re-sent invitations.
    pub invitations: Vec<invitations::Model>,
    /// `(index in the input, error)`.
    pub errors: Vec<(usize, DomainError)>,
}

/// An address's own failure (it becomes that address's error; the others still go out), or a
/// failure of the whole call.
type PerAddress<T> = DomainResult<Result<T, DomainError>>;

/// Sends invitations to many addresses. Each address succeeds or fails on its own; a
/// pending invitation to the same address is re-sent (new token, new expiry), never
/// duplicated.
pub async fn create(
    svc: &Services,
    caller: &users::Model,
    req: NewInvitations,
) -> DomainResult<Sent> {
    let surface = validate(&req)?;
    let mut batch = Batch::open(svc, caller, &req, surface).await?;
    let mut sent = Sent::default();
    for (i, raw) in req.emails.iter().enumerate() {
        match batch.invite(raw).await? {
            Ok(inv) => sent.invitations.push(inv),
            Err(e) => sent.errors.push((i, e)),
        }
    }
    batch.events(&sent).await?;
    batch.tx.commit(&svc.bus).await?;
    Ok(sent)
}

/// The request as a whole: 1..=MAX_BATCH addresses, a role that can be invited, a
/// surface label of bounded length (returned trimmed, None when blank).
fn validate(req: &NewInvitations) -> DomainResult<Option<String>> {
    if req.emails.is_empty() || req.emails.len() > MAX_BATCH {
        return Err(DomainError::invalid(
            &["input", "emails"],
            format!("Send between 1 and {MAX_BATCH} invitations at a time."),
        ));
    }
    if req.role == Role::Owner {
        return Err(DomainError::invalid(
            &["input", "role"],
            "Owners cannot be invited; invite an admin and make them an owner once they joined.",
        ));
    }
    clean_surface(req.surface.clone())
}

fn clean_surface(surface: Option<String>) -> DomainResult<Option<String>> {
    let s = surface
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if s.as_ref().is_some_and(|s| s.chars().count() > MAX_SURFACE) {
        return Err(DomainError::invalid(
            &["input", "surface"],
            format!("surface can be at most {MAX_SURFACE} characters long."),
        ));
    }
    Ok(s)
}

/// The invite policy and role rules.
fn may_invite(access: &orgs::OrgAccess, role: Role) -> DomainResult<()> {
    if access.org.invite_policy == InvitePolicy::AdminsOnly {
        access.require(Role::Admin, "invite people to this organization")?;
    }
    if role == Role::Admin {
        access.require(Role::Admin, "invite admins")?;
    }
    Ok(())
}

/// One call's transaction and what every address is checked against as the call goes on.
struct Batch<'a> {
    svc: &'a Services,
    tx: Tx,
    caller: &'a users::Model,
    me: UserId,
    /// The organization, locked, and the caller's role in it.
    access: orgs::OrgAccess,
    role: Role,
    surface: Option<String>,
    now: DateTime<Utc>,
    /// Sends left in the caller's hourly budget, and the seconds until one frees up.
    budget: u64,
    retry_after: u64,
    /// The organization's pending invitations, counting those this call added.
    pending: u64,
    /// Addresses already handled by this call.
    seen: Vec<String>,
    /// Invitations this call created (not re-sent): new growth facts.
    created: Vec<InvitationId>,
}

impl<'a> Batch<'a> {
    /// Begins the transaction, authorizes the caller (locking the organization, then the
    /// caller's budget) and reads the limits. A caller with no sends left is refused as a
    /// whole.
    async fn open(
        svc: &'a Services,
        caller: &'a users::Model,
        req: &NewInvitations,
        surface: Option<String>,
    ) -> DomainResult<Batch<'a>> {
        let now = svc.now();
        let me = caller.id;
        let tx = Tx::begin(&svc.db).await?;
        let access = orgs::access_locked(&tx, me, req.org).await?;
        may_invite(&access, req.role)?;
        let (budget, retry_after) = send_budget(svc, &tx, me, now).await?;
        if budget == 0 {
            return Err(rate_limited(retry_after));
        }
        let pending = pending_count(&tx, req.org, now).await?;
        Ok(Batch {
            svc,
            tx,
            caller,
            me,
            access,
            role: req.role,
            surface,
            now,
            budget,
            retry_after,
            pending,
            seen: Vec::new(),
            created: Vec::new(),
        })
    }

    fn org(&self) -> OrgId {
        self.access.org.id
    }

    /// One address: parsed, not a member, within the limits, then upserted and sent.
    async fn invite(&mut self, raw: &str) -> PerAddress<invitations::Model> {
        let email = match self.address(raw) {
            Ok(e) => e,
            Err(e) => return Ok(Err(e)),
        };
        if is_member(&*self.tx, self.org(), &email).await? {
            return Ok(Err(DomainError::AlreadyMember));
        }
        if self.budget == 0 {
            return Ok(Err(rate_limited(self.retry_after)));
        }
        let existing = in_org(self.org())
            .filter(invitations::Column::Email.eq(email.as_str()))
            .one(&*self.tx)
            .await?;
        let counts_as_new_pending = existing
            .as_ref()
            .is_none_or(|e| status(e, self.now) != Status::Pending);
        if counts_as_new_pending {
            if let Err(e) = self.limits().await? {
                return Ok(Err(e));
            }
        }
        let inv = match self.upsert(existing, &email).await? {
            Ok(inv) => inv,
            Err(e) => return Ok(Err(e)),
        };
        self.send(&inv, counts_as_new_pending).await?;
        Ok(Ok(inv))
    }

    /// A valid address not listed earlier in this call.
    fn address(&mut self, raw: &str) -> Result<Email, DomainError> {
        let Ok(email) = Email::parse(raw) else {
            return Err(DomainError::invalid(
                &[],
                format!("{:?} is not a valid email address.", raw.trim()),
            ));
        };
        if self.seen.iter().any(|s| s == email.as_str()) {
            return Err(DomainError::invalid(
                &[],
                format!("{} is listed twice.", email.as_str()),
            ));
        }
        self.seen.push(email.as_str().to_string());
        Ok(email)
    }

    /// Room for one more pending invitation: under the organization's pending cap, and a
    /// member seat and one of the month's sends in its plan (consumed here: both must fit
    /// before either is recorded).
    async fn limits(&mut self) -> PerAddress<()> {
        let svc = self.svc;
        if self.pending >= svc.config.max_pending_invitations {
            return Ok(Err(DomainError::LimitReached {
                upgrade: None,
                feature: "pending_invitations".into(),
                message: format!(
                    "{} already has {} pending invitations, the most allowed. Revoke some or wait for them to be accepted.",
                    self.access.org.name, self.pending
                ),
            }));
        }
        let org = &self.access.org;
        let tx = &mut self.tx;
        let consumed = async {
            entitlements::ensure_room(&**tx, svc, org, "invitations_per_month", 1).await?;
            entitlements::ensure_room(&**tx, svc, org, "members", 1).await?;
            entitlements::consume(tx, svc, org, "invitations_per_month", 1).await?;
            entitlements::consume(tx, svc, org, "members", 1).await
        }
        .await;
        match consumed {
            Ok(()) => Ok(Ok(())),
            Err(e @ (DomainError::LimitReached { .. } | DomainError::FeatureNotInPlan { .. })) => {
                Ok(Err(e))
            }
            Err(other) => Err(other),
        }
    }

    /// The pair's row: an existing one re-sent (a new token version and expiry; a finished
    /// round starts over with the caller as its sender), or a new one. Someone else's pending
    /// invitation is theirs to re-send, unless the caller manages the organization's
    /// invitations.
    async fn upsert(
        &mut self,
        existing: Option<invitations::Model>,
        email: &Email,
    ) -> PerAddress<invitations::Model> {
        let (svc, now, me) = (self.svc, self.now, self.me);
        let expires_at = now + Duration::days(svc.config.invitation_ttl_days);
        let inv = match existing {
            Some(e)
                if status(&e, now) == Status::Pending
                    && e.invited_by_user_id != me
                    && self.access.role < Role::Admin =>
            {
                return Ok(Err(DomainError::PermissionDenied(format!(
                    "{} already has a pending invitation from someone else.",
                    e.email
                ))));
            }
            Some(e) => {
                let revived = status(&e, now) != Status::Pending;
                let mut am: invitations::ActiveModel = e.clone().into();
                am.status = Set(InvitationState::Pending);
                am.role = Set(self.role);
                am.token_version = Set(e.token_version + 1);
                am.last_sent_at = Set(now);
                am.send_count = Set(e.send_count + 1);
                am.expires_at = Set(expires_at);
                if revived {
                    // A new round for the same pair: the caller sends it, and what happened
                    // to the previous round (opened, accepted) no longer describes it.
                    am.invited_by_user_id = Set(me);
                    am.opened_at = Set(None);
                    am.accepted_at = Set(None);
                    am.accepted_by_user_id = Set(None);
                }
                am.update(&*self.tx).await?
            }
            None => {
                // A team invitation cannot create a new user, so it never counts in K: the
                // address has an account, or is the inviter's own mailbox (`ana+2@` is
                // `ana@`), which would let anyone inflate K with aliases of themselves.
                let team_invite = referrals::mailbox(email.as_str())
                    == referrals::mailbox(&self.caller.email)
                    || user_exists(&*self.tx, email).await?;
                let inv = invitations::ActiveModel {
                    id: Set(InvitationId::generate()),
                    organization_id: Set(self.org()),
                    email: Set(email.as_str().into()),
                    role: Set(self.role),
                    invited_by_user_id: Set(me),
                    surface: Set(self.surface.clone()),
                    status: Set(InvitationState::Pending),
                    token_version: Set(1),
                    team_invite: Set(team_invite),
                    created_at: Set(now),
                    last_sent_at: Set(now),
                    send_count: Set(1),
                    expires_at: Set(expires_at),
                    opened_at: Set(None),
                    accepted_at: Set(None),
                    accepted_by_user_id: Set(None),
                    first_sent_by_user_id: Set(Some(me)),
                    first_opened_at: Set(None),
                    first_accepted_at: Set(None),
                    first_accepted_by_user_id: Set(None),
                }
                .insert(&*self.tx)
                .await?;
                self.created.push(inv.id);
                inv
            }
        };
        Ok(Ok(inv))
    }

    /// Sends it: a new pending invitation (or a new round of an old pair) goes into the
    /// attribution log and the pending count; every send takes one of the caller's budget
    /// and writes its email, event and webhook message.
    async fn send(&mut self, inv: &invitations::Model, new_pending: bool) -> DomainResult<()> {
        if new_pending {
            referrals::record(
                &self.tx,
                self.now,
                Some(self.org()),
                Some(self.me),
                "invited",
                Some(("invitation", inv.id.0)),
                None,
            )
            .await?;
            self.pending += 1;
        }
        self.budget -= 1;
        record_send(&mut self.tx, self.now, self.caller, &self.access.org, inv).await
    }

    /// The call's own facts: growth metrics for the invitations it created, and the
    /// caller's activation when anything went out.
    async fn events(&mut self, sent: &Sent) -> DomainResult<()> {
        if !self.created.is_empty() {
            Probe::created(
                &mut self.tx,
                self.svc,
                Only {
                    invitations: std::mem::take(&mut self.created),
                    ..Only::default()
                },
                &[self.me],
            )
            .await?;
        }
        if !sent.invitations.is_empty() {
            let org = self.org();
            crate::domain::activation::on(
                &mut self.tx,
                self.svc,
                crate::config::ActivationEvent::InvitationSent,
                self.now,
                self.caller,
                org,
            )
            .await?;
        }
        Ok(())
    }
}

async fn user_exists(db: &impl ConnectionTrait, email: &Email) -> DomainResult<bool> {
    Ok(users::Entity::find()
        .filter(users::Column::Email.eq(email.as_str()))
        .filter(users::Column::DeletedAt.is_null())
        .count(db)
        .await?
        > 0)
}

async fn is_member(db: &impl ConnectionTrait, org: OrgId, email: &Email) -> DomainResult<bool> {
    let Some(user) = users::Entity::find()
        .filter(users::Column::Email.eq(email.as_str()))
        .filter(users::Column::DeletedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    Ok(orgs::membership(db, org, user.id).await?.is_some())
}
