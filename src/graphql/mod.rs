//! The GraphQL API: schema assembly, the caller's identity, and thin resolvers per area.
//! Resolvers parse arguments, call the domain, and shape the output; rules live in
//! `crate::domain`.
use std::sync::Arc;

use async_graphql::{dataloader::DataLoader, Context, MergedObject, Schema};

use crate::domain::records;
use crate::domain::{
    access::{ApiKey, Caller},
    api_keys, DomainError, Services,
};

mod accounts;
pub mod activity;
pub mod benchmarks;
mod billing;
mod conform;
pub mod connection;
mod documents;
pub mod error;
pub mod extensions;
pub mod growth;
pub mod guest;
mod identity;
pub mod invitations;
pub mod loaders;
pub mod notifications;
pub mod orgs;
pub mod plans;
mod presence;
pub mod projects;
pub mod sharing;
mod subscription;
pub mod types;
pub mod webhooks;

/// The root query type.
#[derive(MergedObject, Default)]
pub struct Query(
    identity::IdentityQuery,
    orgs::OrgQuery,
    invitations::InvitationQuery,
    projects::ProjectQuery,
    sharing::SharingQuery,
    webhooks::WebhookQuery,
    growth::GrowthQuery,
);

/// The root mutation type.
#[derive(MergedObject, Default)]
pub struct Mutation(
    identity::IdentityMutation,
    accounts::AccountMutation,
    orgs::OrgMutation,
    invitations::InvitationMutation,
    projects::ProjectMutation,
    sharing::SharingMutation,
    webhooks::WebhookMutation,
    notifications::NotificationMutation,
    benchmarks::BenchmarkMutation,
    presence::PresenceMutation,
);

pub use subscription::Subscription;

/// The executable schema.
pub type KfSchema = Schema<Query, Mutation, Subscription>;

/// Who is calling, decided once per request from the bearer token.
#[derive(Clone, Debug)]
pub enum Auth {
    /// No token.
    Anonymous,
    /// A token was sent but is not (or no longer) valid.
    Invalid(&'static str),
    /// The token could not be checked (the database did not answer): not the caller's fault.
    Unavailable,
    /// A signed-in user and their token.
    User {
        /// The user, as loaded at the start of the request.
        user: Box<records::User>,
        /// The bearer token (for logOut).
        token: String,
    },
    /// A server-to-server API key (`kfk_…`): acts for no user, only within its scopes.
    ApiKey(Box<ApiKey>),
}

impl Auth {
    /// The signed-in user, or UNAUTHENTICATED.
    pub fn user(&self) -> Result<&records::User, DomainError> {
        match self {
            Auth::User { user, .. } => Ok(user),
            Auth::Invalid(why) => Err(DomainError::Unauthenticated(why)),
            Auth::Unavailable => Err(DomainError::Internal(anyhow::anyhow!(
                "the session could not be checked"
            ))),
            Auth::Anonymous => Err(DomainError::Unauthenticated("Sign in to do this.")),
            Auth::ApiKey(_) => Err(DomainError::PermissionDenied(
                "API keys act for no user: this needs a signed-in user.".into(),
            )),
        }
    }

    /// The caller as the domain sees it: a user or an API key; UNAUTHENTICATED otherwise.
    pub fn caller(&self) -> Result<Caller<'_>, DomainError> {
        match self {
            Auth::ApiKey(k) => Ok(Caller::Key(k)),
            other => other.user().map(Caller::User),
        }
    }

    /// Resolves an `Authorization` header value (`Bearer <token>`).
    pub async fn from_header(svc: &Services, header: Option<&str>) -> Auth {
        let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) else {
            return Auth::Anonymous;
        };
        let token = match h.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
            _ => return Auth::Invalid("Use `Authorization: Bearer <token>`."),
        };
        if token.starts_with(api_keys::PREFIX) {
            return match api_keys::authenticate(svc, token).await {
                Ok(key) => Auth::ApiKey(Box::new(key)),
                Err(DomainError::Unauthenticated(why)) => Auth::Invalid(why),
                Err(e) => {
                    tracing::error!(error = ?e, "authenticating an API key failed");
                    Auth::Unavailable
                }
            };
        }
        match crate::domain::identity::authenticate(svc, token).await {
            Ok(user) => Auth::User {
                user: Box::new(user),
                token: token.to_string(),
            },
            Err(DomainError::Unauthenticated(why)) => Auth::Invalid(why),
            Err(e) => {
                tracing::error!(error = ?e, "authenticating a session failed");
                Auth::Unavailable
            }
        }
    }
}

/// The services of this server.
pub fn svc<'a>(ctx: &Context<'a>) -> &'a Arc<Services> {
    ctx.data_unchecked::<Arc<Services>>()
}

/// The caller.
pub fn auth<'a>(ctx: &Context<'a>) -> &'a Auth {
    ctx.data_opt::<Auth>().unwrap_or(&Auth::Anonymous)
}

/// The caller's network identity (rate limits, session records).
pub fn client<'a>(ctx: &Context<'a>) -> &'a crate::domain::ratelimit::Client {
    static INTERNAL: std::sync::LazyLock<crate::domain::ratelimit::Client> =
        std::sync::LazyLock::new(crate::domain::ratelimit::Client::internal);
    ctx.data_opt().unwrap_or(&INTERNAL)
}

/// Builds the schema with its limits and extensions.
pub fn schema(svc: Arc<Services>) -> KfSchema {
    let cfg = svc.config.clone();
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .data(DataLoader::new(
        loaders::UserLoader(svc.clone()),
        tokio::spawn,
    ))
    .data(svc)
    .extension(extensions::Observe)
    .extension(conform::Conform {
        max_depth: cfg.graphql_max_depth,
        max_complexity: cfg.graphql_max_complexity,
    })
    .extension(extensions::ExpensiveFields(
        cfg.safety.graphql_max_expensive_fields,
    ))
    // Last: the innermost, next to the parser.
    .extension(documents::DocumentCache::default())
    .finish()
}

/// The SDL of the schema (what `kfactor schema` prints and `schema.graphql` holds).
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .finish()
    .sdl()
}
