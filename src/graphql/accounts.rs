//! Account safety: verifying an address, passwords, sessions.
use async_graphql::{Context, Object, SimpleObject};

use super::{
    auth, client,
    error::{payload, top_level, UserError},
    svc,
    types::{Organization, User},
};
use crate::domain::accounts;

/// Result of `verifyEmail`.
#[derive(SimpleObject, Default)]
pub struct VerifyEmailPayload {
    /// The user whose address is now verified (with the new address after an email change).
    user: Option<User>,
    /// The organization joined now: set when the user had signed up through a copied
    /// invitation link and was waiting for this.
    organization: Option<Organization>,
    /// What went wrong, if anything (NOT_FOUND, TOKEN_EXPIRED, TOKEN_ALREADY_USED,
    /// EMAIL_TAKEN).
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
    /// PUBLIC (the token is the proof). Uses a verification link: the account's address is
    /// verified (or the new address of `changeEmail` becomes the account's). Single-use.
    /// A signup through a copied invitation link joins its organization now.
    async fn verify_email(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> async_graphql::Result<VerifyEmailPayload> {
        let r = accounts::verify_email(svc(ctx), client(ctx), &token).await;
        payload(
            r,
            |v| VerifyEmailPayload {
                user: Some(User::themselves(v.user)),
                organization: v.joined.map(|(o, r)| Organization::new(o, r)),
                user_errors: vec![],
            },
            |user_errors| VerifyEmailPayload {
                user_errors,
                ..Default::default()
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
}
