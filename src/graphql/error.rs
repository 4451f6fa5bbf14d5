//! Error mapping: the one place where domain errors become GraphQL errors.
//!
//! In mutations, what the user can fix becomes a `userErrors` entry with a stable
//! [`ErrorCode`]; everything else becomes a top-level error whose `extensions.code` is one of
//! [`TopLevelCode`]. Internal errors are logged with context and answered without detail.
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use async_graphql::{Context, Enum, ErrorExtensions, Response, SimpleObject};

use crate::domain::DomainError;

/// Stable codes of `userErrors`.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ErrorCode {
    InvalidInput,
    EmailTaken,
    InvalidCredentials,
    NotFound,
    PermissionDenied,
    AlreadyMember,
    LastOwner,
    InvitationExpired,
    InvitationRevoked,
    InvitationAlreadyAccepted,
    InvitationEmailMismatch,
    LinkExpired,
    LinkRevoked,
    SelfReferral,
    LimitReached,
    FeatureNotInPlan,
    RateLimited,
    /// The operation needs a verified email address; a verification email was sent.
    EmailNotVerified,
    /// A link sent by email has expired.
    TokenExpired,
    /// A single-use link sent by email was already used.
    TokenAlreadyUsed,
}

/// Codes of top-level errors (`extensions.code`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TopLevelCode {
    /// No valid session.
    Unauthenticated,
    /// Signed in but not allowed.
    Forbidden,
    /// The id names nothing the caller can see.
    NotFound,
    /// Slow down; see `extensions.retryAfterSeconds`.
    RateLimited,
    /// The query exceeds the depth or complexity limit.
    QueryTooComplex,
    /// Bad arguments of a query (e.g. a malformed cursor).
    InvalidInput,
    /// Something broke on our side.
    Internal,
    /// A subscriber fell too far behind its feed; its stream ended (subscribe again).
    Lagged,
    /// A WebSocket connection already runs as many operations as it may.
    TooManyOperations,
}

impl TopLevelCode {
    /// The `extensions.code` string.
    pub fn as_str(self) -> &'static str {
        match self {
            TopLevelCode::Unauthenticated => "UNAUTHENTICATED",
            TopLevelCode::Forbidden => "FORBIDDEN",
            TopLevelCode::NotFound => "NOT_FOUND",
            TopLevelCode::RateLimited => "RATE_LIMITED",
            TopLevelCode::QueryTooComplex => "QUERY_TOO_COMPLEX",
            TopLevelCode::InvalidInput => "INVALID_INPUT",
            TopLevelCode::Internal => "INTERNAL",
            TopLevelCode::Lagged => "LAGGED",
            TopLevelCode::TooManyOperations => "TOO_MANY_OPERATIONS",
        }
    }
}

/// A business outcome the user can act on.
#[derive(SimpleObject, Clone, Debug)]
pub struct UserError {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Written for the end user.
    pub message: String,
    /// Path of the offending input field, e.g. `["input","emails","2"]`.
    pub field: Option<Vec<String>>,
    /// How to lift a plan limit, when one was hit.
    pub upgrade: Option<super::plans::UpgradePrompt>,
}

impl UserError {
    /// A user error without an upgrade prompt.
    pub fn new(code: ErrorCode, message: impl Into<String>, field: Option<Vec<String>>) -> Self {
        UserError {
            code,
            message: message.into(),
            field,
            upgrade: None,
        }
    }
}

/// A top-level error with a code. The code is also the error's typed `source`, so what an
/// executed response's errors mean can be read without looking at their text.
pub fn top(code: TopLevelCode, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error {
        message: message.into(),
        source: Some(Arc::new(code)),
        extensions: None,
    }
    .extend_with(|_, e| e.set("code", code.as_str()))
}

/// What an executed operation came to, as far as a retry with the same `Idempotency-Key` is
/// concerned. The HTTP layer puts one into the request's data; a resolver that answers a
/// rate limit inside its payload (a per-item userError) marks it; top-level errors carry
/// their [`TopLevelCode`] as their source.
#[derive(Clone, Debug, Default)]
pub struct Outcome(Arc<AtomicBool>);

impl Outcome {
    /// Records that a rate limit was answered as a userError (the request's outcome depends
    /// on timing, so it must not become the key's stored answer).
    pub fn rate_limited(ctx: &Context<'_>) {
        if let Some(o) = ctx.data_opt::<Outcome>() {
            o.0.store(true, Ordering::Relaxed);
        }
    }

    /// Whether retrying with the same key may give another answer: something failed on our
    /// side (INTERNAL) or a rate limit refused part or all of it (RATE_LIMITED, top-level or
    /// as a userError). Such a response is answered but not stored for its key.
    pub fn retryable(&self, response: &Response) -> bool {
        self.0.load(Ordering::Relaxed)
            || response.errors.iter().any(|e| {
                matches!(
                    e.source::<TopLevelCode>(),
                    Some(TopLevelCode::Internal | TopLevelCode::RateLimited)
                )
            })
    }
}

/// A domain error as a top-level error (queries, fields, subscriptions).
pub fn top_level(e: DomainError) -> async_graphql::Error {
    use TopLevelCode as C;
    match e {
        DomainError::Unauthenticated(m) => top(C::Unauthenticated, m),
        DomainError::Forbidden
        | DomainError::PermissionDenied(_)
        | DomainError::CheckoutRequired { .. } => top(C::Forbidden, e.to_string()),
        DomainError::NotFound(_) => top(C::NotFound, e.to_string()),
        DomainError::RateLimited {
            retry_after_seconds,
        } => top(C::RateLimited, e.to_string()).extend_with(|_, x| {
            x.set("retryAfterSeconds", retry_after_seconds);
        }),
        DomainError::InvalidInput { .. } => top(C::InvalidInput, e.to_string()),
        DomainError::At { error, .. } => top_level(*error),
        DomainError::Internal(err) => internal(err),
        // A business outcome reaching a query (an expired link…) keeps its ErrorCode name.
        other => match user_error(other) {
            Ok(ue) => async_graphql::Error::new(ue.message)
                .extend_with(|_, x| x.set("code", code_name(ue.code))),
            Err(e) => e,
        },
    }
}

/// The SCREAMING_SNAKE_CASE name of a code, as in the schema.
pub fn code_name(code: ErrorCode) -> &'static str {
    use ErrorCode as C;
    match code {
        C::InvalidInput => "INVALID_INPUT",
        C::EmailTaken => "EMAIL_TAKEN",
        C::InvalidCredentials => "INVALID_CREDENTIALS",
        C::NotFound => "NOT_FOUND",
        C::PermissionDenied => "PERMISSION_DENIED",
        C::AlreadyMember => "ALREADY_MEMBER",
        C::LastOwner => "LAST_OWNER",
        C::InvitationExpired => "INVITATION_EXPIRED",
        C::InvitationRevoked => "INVITATION_REVOKED",
        C::InvitationAlreadyAccepted => "INVITATION_ALREADY_ACCEPTED",
        C::InvitationEmailMismatch => "INVITATION_EMAIL_MISMATCH",
        C::LinkExpired => "LINK_EXPIRED",
        C::LinkRevoked => "LINK_REVOKED",
        C::SelfReferral => "SELF_REFERRAL",
        C::LimitReached => "LIMIT_REACHED",
        C::FeatureNotInPlan => "FEATURE_NOT_IN_PLAN",
        C::RateLimited => "RATE_LIMITED",
        C::EmailNotVerified => "EMAIL_NOT_VERIFIED",
        C::TokenExpired => "TOKEN_EXPIRED",
        C::TokenAlreadyUsed => "TOKEN_ALREADY_USED",
    }
}

/// Logs an internal error with its chain and answers without detail.
pub fn internal(err: anyhow::Error) -> async_graphql::Error {
    tracing::error!(error = ?err, "internal error");
    top(
        TopLevelCode::Internal,
        "Something went wrong on our side. Try again; if it keeps happening, contact support.",
    )
}

/// A domain error in a mutation: a `userErrors` entry when the user can fix it, else a
/// top-level error.
pub fn user_error(e: DomainError) -> async_graphql::Result<UserError> {
    use ErrorCode as C;
    let (code, field) = match &e {
        DomainError::InvalidInput { field, .. } => (C::InvalidInput, Some(field.clone())),
        DomainError::EmailTaken => (C::EmailTaken, Some(vec!["input".into(), "email".into()])),
        DomainError::InvalidCredentials => (C::InvalidCredentials, None),
        DomainError::NotFound(_) => (C::NotFound, None),
        DomainError::PermissionDenied(_) | DomainError::Forbidden => (C::PermissionDenied, None),
        DomainError::AlreadyMember => (C::AlreadyMember, None),
        DomainError::LastOwner | DomainError::LastOwnerOf(_) => (C::LastOwner, None),
        DomainError::InvitationExpired => (C::InvitationExpired, None),
        DomainError::InvitationRevoked => (C::InvitationRevoked, None),
        DomainError::InvitationAlreadyAccepted => (C::InvitationAlreadyAccepted, None),
        DomainError::InvitationEmailMismatch => (C::InvitationEmailMismatch, None),
        DomainError::SelfReferral => (C::SelfReferral, None),
        DomainError::LinkExpired => (C::LinkExpired, None),
        DomainError::LinkRevoked => (C::LinkRevoked, None),
        DomainError::EmailNotVerified(_) => (C::EmailNotVerified, None),
        DomainError::TokenExpired => (C::TokenExpired, None),
        DomainError::TokenUsed => (C::TokenAlreadyUsed, None),
        DomainError::LimitReached { upgrade, .. } => {
            let mut ue = UserError::new(C::LimitReached, e.to_string(), None);
            ue.upgrade = upgrade.as_deref().cloned().map(Into::into);
            return Ok(ue);
        }
        DomainError::FeatureNotInPlan { upgrade, .. } => {
            let mut ue = UserError::new(C::FeatureNotInPlan, e.to_string(), None);
            ue.upgrade = upgrade.as_deref().cloned().map(Into::into);
            return Ok(ue);
        }
        DomainError::CheckoutRequired { upgrade, .. } => {
            let mut ue = UserError::new(C::PermissionDenied, e.to_string(), None);
            ue.upgrade = Some((**upgrade).clone().into());
            return Ok(ue);
        }
        DomainError::At { .. } => {
            let DomainError::At { field, error } = e else {
                unreachable!()
            };
            let mut ue = user_error(*error)?;
            ue.field = Some(field);
            return Ok(ue);
        }
        DomainError::RateLimited { .. }
        | DomainError::Unauthenticated(_)
        | DomainError::Internal(_) => return Err(top_level(e)),
    };
    Ok(UserError::new(code, e.to_string(), field))
}

/// Runs a domain result into a mutation payload: `ok` builds the success payload, a
/// user-fixable error becomes `err(vec![user_error])`, anything else a top-level error.
pub fn payload<T, P>(
    r: Result<T, DomainError>,
    ok: impl FnOnce(T) -> P,
    err: impl FnOnce(Vec<UserError>) -> P,
) -> async_graphql::Result<P> {
    match r {
        Ok(v) => Ok(ok(v)),
        Err(e) => Ok(err(vec![user_error(e)?])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let e = user_error(DomainError::invalid(&["input", "email"], "bad")).unwrap();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert_eq!(e.field.unwrap(), vec!["input", "email"]);
        assert_eq!(
            user_error(DomainError::LastOwner).unwrap().code,
            ErrorCode::LastOwner
        );
        assert!(user_error(DomainError::Unauthenticated("x")).is_err());
        let internal = top_level(DomainError::Internal(anyhow::anyhow!(
            "db password is hunter2"
        )));
        assert!(
            !internal.message.contains("hunter2"),
            "internals never leak"
        );
        let ext = format!("{:?}", internal.extensions);
        assert!(ext.contains("INTERNAL"), "{ext}");
    }

    /// The idempotency decision reads the errors' typed source, never their text: failures
    /// on our side and rate limits are retryable, the caller's own mistakes are final.
    #[test]
    fn retryable_outcomes_come_from_the_typed_code() {
        let pos = async_graphql::Pos::default();
        let response = |errors: Vec<async_graphql::Error>| {
            let mut r = Response::new(async_graphql::Value::Null);
            r.errors = errors
                .into_iter()
                .map(|e| e.into_server_error(pos))
                .collect();
            r
        };
        let limited = top_level(DomainError::RateLimited {
            retry_after_seconds: 5,
        });
        assert_eq!(
            limited
                .clone()
                .into_server_error(pos)
                .source::<TopLevelCode>(),
            Some(&TopLevelCode::RateLimited)
        );
        let ours = top_level(DomainError::Internal(anyhow::anyhow!("boom")));
        let theirs = top_level(DomainError::NotFound("Project"));
        let outcome = Outcome::default();
        assert!(outcome.retryable(&response(vec![limited])));
        assert!(outcome.retryable(&response(vec![ours])));
        assert!(!outcome.retryable(&response(vec![theirs])));
        // An error that merely says RATE_LIMITED in its text is not one.
        let spoof = async_graphql::Error::new("RATE_LIMITED INTERNAL");
        assert!(!outcome.retryable(&response(vec![spoof])));
        // A rate limit answered inside a payload is recorded on the outcome itself.
        outcome.0.store(true, Ordering::Relaxed);
        assert!(outcome.retryable(&response(vec![])));
    }
}
