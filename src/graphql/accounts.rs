//! Account safety: verifying an address, passwords, sessions.
use async_graphql::{Context, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::{
    auth, client,
    error::{payload, top_level, ErrorCode, UserError},
    identity::{failed, AuthPayload},
    orgs::{DeletePayload, Organization},
    svc,
    types::User,
    Auth,
};
use crate::domain::records;
use crate::domain::{
    accounts::{self, confirm::Holder, sessions},
    ids::{SessionId, UserId},
    DomainError,
};

/// A place the user is signed in.
#[derive(SimpleObject)]
pub struct Session {
    /// Opaque id (`ses_…`), for `revokeSession`.
    id: ID,
    /// When it was started (sign-up, log-in or password reset).
    created_at: DateTime<Utc>,
    /// Last request made with it (updated at most once a minute).
    last_used_at: DateTime<Utc>,
    /// When it ends unless used again.
    expires_at: DateTime<Utc>,
    /// The `User-Agent` it was started with.
    user_agent: Option<String>,
    /// The client address it was started from.
    ip: Option<String>,
    /// Whether this request uses it.
    current: bool,
}

impl Session {
    /// A session of the caller; `token` is the caller's bearer token.
    pub fn new(m: records::Session, token: Option<&str>) -> Self {
        Session {
            id: ID(m.id.to_string()),
            current: token.is_some_and(|t| sessions::is_token_of(&m, t)),
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            expires_at: m.expires_at,
            user_agent: m.user_agent,
            ip: m.ip,
        }
    }
}

/// Result of `exportMyData`.
#[derive(SimpleObject, Default)]
pub struct DataExportPayload {
    /// The caller's data (`format: "kfactor.export.v1"`): `profile`, `memberships`,
    /// `projects` they created, `comments` they wrote, `sessions`.
    export: Option<Json<serde_json::Value>>,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

/// Result of `changePassword`.
#[derive(SimpleObject, Default)]
pub struct ChangePasswordPayload {
    /// The user, with the new password in force.
    user: Option<User>,
    /// What went wrong, if anything (INVALID_CREDENTIALS for a wrong current password).
    user_errors: Vec<UserError>,
}

fn session_token<'a>(ctx: &Context<'a>) -> async_graphql::Result<(&'a records::User, &'a str)> {
    match auth(ctx) {
        Auth::User { user, token } => Ok((user, token)),
        other => {
            Err(top_level(other.user().err().unwrap_or(
                DomainError::Unauthenticated("Sign in to do this."),
            )))
        }
    }
}

/// Result of `verifyEmail`.
#[derive(SimpleObject, Default)]
pub struct VerifyEmailPayload {
    /// The user whose address is now verified (with the new address after an email change).
    user: Option<User>,
    /// The organization joined now: set when the user had signed up through a copied
    /// invitation link and was waiting for this.
    organization: Option<Organization>,
    /// A new session token when confirming ended the account's earlier sessions (it
    /// completed a join) and it was confirmed with the password.
    token: Option<String>,
    /// What went wrong, if anything (NOT_FOUND, TOKEN_EXPIRED, TOKEN_ALREADY_USED,
    /// INVALID_INPUT without a proof of the account, INVALID_CREDENTIALS, EMAIL_TAKEN).
    user_errors: Vec<UserError>,
}

/// Result of an operation that sends an email.
#[derive(SimpleObject, Default)]
pub struct EmailSentPayload {
    /// True when the request was accepted (for `requestPasswordReset`, whether or not the
    /// address has an account).
    ok: bool,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

fn sent(r: Result<(), crate::domain::DomainError>) -> async_graphql::Result<EmailSentPayload> {
    payload(
        r,
        |_| EmailSentPayload {
            ok: true,
            user_errors: vec![],
        },
        |user_errors| EmailSentPayload {
            ok: false,
            user_errors,
        },
    )
}

/// Account mutations.
#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// PUBLIC (the link proves the mailbox). Uses a verification link: the account's
    /// address is verified (or the new address of `changeEmail` becomes the account's).
    /// Single-use. Confirming also needs the account's holder: send it signed in as the
    /// account, or with the account's `password` (else INVALID_INPUT on `password`; a
    /// wrong one is INVALID_CREDENTIALS and counts against the log-in limits). A signup
    /// through a copied invitation link joins its organization now, and the account's
    /// earlier sessions end, except the one that sent this; `token` is then a new session.
    async fn verify_email(
        &self,
        ctx: &Context<'_>,
        token: String,
        password: Option<String>,
    ) -> async_graphql::Result<VerifyEmailPayload> {
        let holder = match (&password, auth(ctx)) {
            (Some(p), _) => Holder::Password(p),
            (None, Auth::User { user, token }) => Holder::Session { user, token },
            (None, _) => Holder::Nothing,
        };
        let r = accounts::verify_email(svc(ctx), client(ctx), &token, holder, true).await;
        payload(
            r,
            |v| VerifyEmailPayload {
                // Whoever confirmed holds the account (its session or its password).
                user: Some(User::themselves(v.user)),
                organization: v.joined.map(|(o, r)| Organization::new(o, r)),
                token: v.session,
                user_errors: vec![],
            },
            |mut user_errors| {
                // There is no input field to point at: the address is the link's.
                for e in &mut user_errors {
                    if e.code == ErrorCode::EmailTaken {
                        e.field = None;
                        e.message =
                            "Another account uses this address now, so it cannot become yours."
                                .into();
                    }
                }
                VerifyEmailPayload {
                    user_errors,
                    ..Default::default()
                }
            },
        )
    }

    /// Sends a new verification link to the signed-in user's address (rate-limited per
    /// address and per client).
    async fn resend_verification_email(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<EmailSentPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        sent(accounts::resend_verification(svc(ctx), client(ctx), user).await)
    }

    /// PUBLIC. Sends a password-reset link (valid one hour, single-use) if the address has
    /// an account. The answer is the same either way, after the same work.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        email: String,
    ) -> async_graphql::Result<EmailSentPayload> {
        sent(accounts::passwords::request_reset(svc(ctx), client(ctx), &email).await)
    }

    /// PUBLIC (the token is the proof). Sets a new password with a reset link. Every
    /// session of the account ends; the payload carries a new one.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        new_password: String,
    ) -> async_graphql::Result<AuthPayload> {
        let r =
            accounts::passwords::reset_password(svc(ctx), client(ctx), &token, &new_password).await;
        payload(r, AuthPayload::signed_in, |e| Ok(failed(e)))?
    }

    /// Changes the password (the current one is required). Every other session ends; this
    /// one stays.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> async_graphql::Result<ChangePasswordPayload> {
        let (user, token) = session_token(ctx)?;
        let r = accounts::passwords::change_password(
            svc(ctx),
            client(ctx),
            user,
            token,
            &current_password,
            &new_password,
        )
        .await;
        payload(
            r,
            |u| ChangePasswordPayload {
                user: Some(User::themselves(u)),
                user_errors: vec![],
            },
            |user_errors| ChangePasswordPayload {
                user: None,
                user_errors,
            },
        )
    }

    /// Starts changing the account's email address (the password is required): a link goes
    /// to the new address, and the change happens when it is confirmed (`verifyEmail`).
    /// The answer is the same whether or not the address has an account (its owner then
    /// gets a notice instead, and nothing changes).
    async fn change_email(
        &self,
        ctx: &Context<'_>,
        new_email: String,
        password: String,
    ) -> async_graphql::Result<EmailSentPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        sent(accounts::change_email(svc(ctx), client(ctx), user, &new_email, &password).await)
    }

    /// Ends one of the caller's sessions (see `me.sessions`); its token stops working.
    async fn revoke_session(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<DeletePayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = async {
            let id = SessionId::parse(&id)?;
            sessions::revoke(svc(ctx), user.id, id).await
        }
        .await;
        DeletePayload::from(r.map(|id| id.to_string()))
    }

    /// Deletes the caller's account for good (the password is required). Refused with
    /// LAST_OWNER while the caller is the last owner of an organization with other members;
    /// organizations where the caller is the only member go with the account. What the
    /// account did stays in growth metrics as anonymous facts (no email, no name).
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        password: String,
    ) -> async_graphql::Result<DeletePayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r =
            crate::domain::deletion::delete_account(svc(ctx), client(ctx), user, &password).await;
        DeletePayload::from(r.map(|id| id.to_string()))
    }

    /// Everything kfactor holds about the caller, as one JSON document, at once.
    async fn export_my_data(&self, ctx: &Context<'_>) -> async_graphql::Result<DataExportPayload> {
        let user = auth(ctx).user().map_err(top_level)?;
        let r = crate::domain::export::export(svc(ctx), user).await;
        payload(
            r,
            |doc| DataExportPayload {
                export: Some(Json(doc)),
                user_errors: vec![],
            },
            |user_errors| DataExportPayload {
                export: None,
                user_errors,
            },
        )
    }

    /// Logs out everywhere: every session of the caller ends, this one included. Returns
    /// how many ended.
    async fn log_out_all(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let user = auth(ctx).user().map_err(top_level)?;
        let n = sessions::log_out_all(svc(ctx), user.id)
            .await
            .map_err(top_level)?;
        Ok(n.min(i32::MAX as u64) as i32)
    }
}

/// The caller's sessions (for `User.sessions`).
pub async fn sessions_of(ctx: &Context<'_>, user: UserId) -> async_graphql::Result<Vec<Session>> {
    let token = match auth(ctx) {
        Auth::User { token, .. } => Some(token.as_str()),
        _ => None,
    };
    Ok(sessions::list(svc(ctx), user)
        .await
        .map_err(top_level)?
        .into_iter()
        .map(|m| Session::new(m, token))
        .collect())
}
