//! The one error type of the domain layer. Transport layers map each variant to a stable
//! code (GraphQL: a `userErrors` entry or a top-level error); the domain never builds those.
use sea_orm::DbErr;

/// What can go wrong in a domain operation.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Bad input the user can fix; `field` is the path of the input, e.g. `["input","email"]`.
    #[error("{message}")]
    InvalidInput {
        /// Path of the offending input field.
        field: Vec<String>,
        /// Human message.
        message: String,
    },
    /// Sign-up with an email that already has an account.
    #[error("An account with this email already exists. Log in instead.")]
    EmailTaken,
    /// Unknown email or wrong password: deliberately the same error.
    #[error("Email or password is incorrect.")]
    InvalidCredentials,
    /// The thing does not exist (or the caller may not know it exists).
    #[error("{0} not found.")]
    NotFound(&'static str),
    /// The caller is known but their role does not allow this.
    #[error("{0}")]
    PermissionDenied(String),
    /// Deleting the account would leave this organization, which has other members, without
    /// an owner.
    #[error("You are the last owner of {0}, which has other members. Make one of them an owner, or delete the organization, first.")]
    LastOwnerOf(String),
    /// The person is already a member.
    #[error("Already a member of this organization.")]
    AlreadyMember,
    /// The change would leave the organization without an owner.
    #[error("An organization needs at least one owner. Make someone else an owner first.")]
    LastOwner,
    /// No valid session.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Signed in, but not a member of the organization asked for.
    #[error("You are not a member of this organization.")]
    Forbidden,
    /// The invitation's expiry has passed.
    #[error("This invitation has expired. Ask for a new one.")]
    InvitationExpired,
    /// The invitation was revoked.
    #[error("This invitation was revoked.")]
    InvitationRevoked,
    /// The invitation was already used.
    #[error("This invitation has already been accepted.")]
    InvitationAlreadyAccepted,
    /// The invitation is for another email address.
    #[error("This invitation was sent to another email address. Sign in with that address to accept it.")]
    InvitationEmailMismatch,
    /// The shared link's expiry has passed.
    #[error("This link has expired.")]
    LinkExpired,
    /// The shared link was revoked.
    #[error("This link was revoked.")]
    LinkRevoked,
    /// Someone tried to credit themselves.
    #[error("You can't refer yourself.")]
    SelfReferral,
    /// A limit was reached.
    #[error("{message}")]
    LimitReached {
        /// The limited feature, e.g. "projects".
        feature: String,
        /// Human message.
        message: String,
        /// How to lift it, when a plan does.
        upgrade: Option<Box<super::entitlements::UpgradePrompt>>,
    },
    /// A plan feature is off.
    #[error("{message}")]
    FeatureNotInPlan {
        /// Human message.
        message: String,
        /// Which plan has it.
        upgrade: Option<Box<super::entitlements::UpgradePrompt>>,
    },
    /// Plan changes go through the billing provider: the caller (an owner) is sent to
    /// checkout instead.
    #[error("{message}")]
    CheckoutRequired {
        /// Human message.
        message: String,
        /// Where to pay for the plan asked for.
        upgrade: Box<super::entitlements::UpgradePrompt>,
    },
    /// The operation needs a verified email address; the message says where the link went.
    #[error("{0}")]
    EmailNotVerified(String),
    /// A link sent by email (verification, password reset) has expired.
    #[error("This link has expired. Ask for a new one.")]
    TokenExpired,
    /// A single-use link sent by email was already used.
    #[error("This link was already used. Ask for a new one if you still need it.")]
    TokenUsed,
    /// Too many requests; try again later.
    #[error("Too many requests. Try again in {retry_after_seconds} seconds.")]
    RateLimited {
        /// Seconds until the next attempt may succeed.
        retry_after_seconds: u64,
    },
    /// Another error, about the input at `field` (the token or code it concerns): the same
    /// condition answers with the same code wherever it is met, and says which input it was.
    #[error("{error}")]
    At {
        /// Path of the input, e.g. `["input","inviteToken"]`.
        field: Vec<String>,
        /// The condition itself.
        error: Box<DomainError>,
    },
    /// A bug or an infrastructure failure; logged, never shown in detail.
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

impl From<DbErr> for DomainError {
    fn from(e: DbErr) -> Self {
        DomainError::Internal(anyhow::Error::new(e))
    }
}

impl DomainError {
    /// An [`DomainError::InvalidInput`] at the given input path.
    pub fn invalid(field: &[&str], message: impl Into<String>) -> Self {
        DomainError::InvalidInput {
            field: field.iter().map(|s| s.to_string()).collect(),
            message: message.into(),
        }
    }

    /// Prefixes the input path, e.g. `["email"]` becomes `["input","email"]`.
    pub fn under(self, prefix: &str) -> Self {
        match self {
            DomainError::InvalidInput { mut field, message } => {
                field.insert(0, prefix.to_string());
                DomainError::InvalidInput { field, message }
            }
            DomainError::At { mut field, error } => {
                field.insert(0, prefix.to_string());
                DomainError::At { field, error }
            }
            other => other,
        }
    }

    /// Pins the error to the input at `field` (user-fixable conditions only: internal
    /// errors, rate limits and authentication stay as they are).
    pub fn at(self, field: &[&str]) -> Self {
        let field = field.iter().map(|s| s.to_string()).collect();
        match self {
            DomainError::InvalidInput { message, .. } => {
                DomainError::InvalidInput { field, message }
            }
            DomainError::At { error, .. } => DomainError::At { field, error },
            e @ (DomainError::Internal(_)
            | DomainError::RateLimited { .. }
            | DomainError::Unauthenticated(_)) => e,
            error => DomainError::At {
                field,
                error: Box::new(error),
            },
        }
    }

    /// The condition, without the input it was pinned to.
    pub fn condition(&self) -> &DomainError {
        match self {
            DomainError::At { error, .. } => error.condition(),
            e => e,
        }
    }
}

/// Shorthand for domain results.
pub type DomainResult<T> = Result<T, DomainError>;
