//! Error mapping: the one place where domain errors become GraphQL errors.
//!
//! In mutations, what the user can fix becomes a `userErrors` entry with a stable
//! [`ErrorCode`]; everything else becomes a top-level error whose `extensions.code` is one of
//! [`TopLevelCode`]. Internal errors are logged with context and answered without detail.
use async_graphql::{Enum, ErrorExtensions, SimpleObject};

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
    pub upgrade: Option<super::types::UpgradePrompt>,
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

/// Resolves a nullable field the way the GraphQL spec asks (a field error makes the field
/// `null` and is reported in `errors`): async-graphql 7 drops an errored field from `data`
/// altogether, which breaks clients reading `data.x === null`.
pub fn or_null<T>(
    ctx: &async_graphql::Context<'_>,
    r: async_graphql::Result<Option<T>>,
) -> async_graphql::Result<Option<T>> {
    match r {
        Ok(v) => Ok(v),
        Err(e) => {
            ctx.add_error(ctx.set_error_path(e.into_server_error(ctx.item.pos)));
            Ok(None)
        }
    }
}

/// A top-level error with a code.
pub fn top(code: TopLevelCode, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code.as_str()))
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
        } => async_graphql::Error::new(e.to_string()).extend_with(|_, x| {
            x.set("code", C::RateLimited.as_str());
            x.set("retryAfterSeconds", retry_after_seconds);
        }),
        DomainError::InvalidInput { .. } => top(C::InvalidInput, e.to_string()),
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
}
