//! Sign-up, log-in, log-out and `me`.
use async_graphql::{Context, InputObject, Object, SimpleObject};

use super::{
    auth, client,
    error::{payload, top_level, user_error, UserError},
    orgs::Organization,
    svc,
    types::User,
};
use crate::domain::{identity, DomainError};

/// Input of `signUp`.
#[derive(InputObject)]
pub struct SignUpInput {
    /// Email address; compared trimmed and lower-cased.
    email: String,
    /// 10..1024 characters; stored with Argon2id.
    password: String,
    /// Display name.
    name: String,
    /// Joins that organization (attribution INVITE).
    invite_token: Option<String>,
    /// Signed up from a shared link (attribution SHARE).
    share_token: Option<String>,
    /// The guest's visitor id: their guest comments become theirs.
    visitor_id: Option<String>,
    /// Signed up from a referral link (attribution REFERRAL).
    referral_code: Option<String>,
    /// e.g. "google-ads": attribution PAID when no viral token.
    utm_source: Option<String>,
}

/// Input of `logIn`.
#[derive(InputObject)]
pub struct LogInInput {
    /// Email address.
    email: String,
    /// Password.
    password: String,
}

/// Result of `signUp` and `logIn`.
#[derive(SimpleObject, Default)]
pub struct AuthPayload {
    /// Session token, present on success. Send it as `Authorization: Bearer <token>`.
    token: Option<String>,
    /// The signed-in user.
    user: Option<User>,
    /// The organization the user landed in.
    organization: Option<Organization>,
    /// What went wrong, if anything.
    user_errors: Vec<UserError>,
}

impl AuthPayload {
    /// A session, with what still stands in the way (e.g. EMAIL_NOT_VERIFIED) as userErrors.
    pub fn signed_in(s: identity::SignedIn) -> async_graphql::Result<Self> {
        Ok(AuthPayload {
            token: Some(s.token),
            user: Some(User::themselves(s.user)),
            organization: s.organization.map(|(o, r)| Organization::new(o, r)),
            user_errors: s.notice.map(user_error).transpose()?.into_iter().collect(),
        })
    }
}

/// A failed `signUp` or `logIn`.
pub fn failed(user_errors: Vec<UserError>) -> AuthPayload {
    AuthPayload {
        user_errors,
        ..Default::default()
    }
}

#[derive(Default)]
pub struct IdentityQuery;

#[Object]
impl IdentityQuery {
    /// The signed-in user; null when not signed in.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match auth(ctx) {
            super::Auth::User { user, .. } => Ok(Some(User::themselves((**user).clone()))),
            super::Auth::Anonymous => Ok(None),
            invalid => Err(top_level(invalid.user().expect_err("invalid session"))),
        }
    }
}

#[derive(Default)]
pub struct IdentityMutation;

#[Object]
impl IdentityMutation {
    /// PUBLIC. Creates an account. A user who does not join through an invitation gets an
    /// organization ("<name>'s workspace") of which they are OWNER. Attribution precedence:
    /// inviteToken > shareToken > referralCode > utmSource > ORGANIC.
    async fn sign_up(
        &self,
        ctx: &Context<'_>,
        input: SignUpInput,
    ) -> async_graphql::Result<AuthPayload> {
        let r = identity::sign_up(
            svc(ctx),
            identity::SignUpInput {
                email: input.email,
                password: input.password,
                name: input.name,
                invite_token: input.invite_token,
                share_token: input.share_token,
                visitor_id: input.visitor_id,
                referral_code: input.referral_code,
                utm_source: input.utm_source,
                client: client(ctx).clone(),
            },
        )
        .await
        .map_err(|e| e.under("input"));
        payload(r, AuthPayload::signed_in, |e| Ok(failed(e)))?
    }

    /// PUBLIC. Starts a session.
    async fn log_in(
        &self,
        ctx: &Context<'_>,
        input: LogInInput,
    ) -> async_graphql::Result<AuthPayload> {
        let r = identity::log_in(svc(ctx), client(ctx), &input.email, &input.password).await;
        payload(r, AuthPayload::signed_in, |e| Ok(failed(e)))?
    }

    /// Ends the caller's session; its token stops working at once.
    async fn log_out(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        match auth(ctx) {
            super::Auth::User { token, .. } => {
                identity::log_out(svc(ctx), token).await.map_err(top_level)
            }
            other => {
                Err(top_level(other.user().err().unwrap_or(
                    DomainError::Unauthenticated("Sign in to do this."),
                )))
            }
        }
    }
}
