//! The activity feed's objects: an event and who did it.
use crate::domain::ids::UserId;
use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::{
    connection::connection,
    loaders,
    types::{ActivityType, ResourceType, User},
};
use crate::domain::records;

/// Who did something: a user, or a guest who came through a shared link.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Actor {
    /// The guest's name, for guests.
    pub guest_name: Option<String>,
    #[graphql(skip)]
    user_id: Option<UserId>,
}

impl Actor {
    /// An actor from stored columns.
    pub fn new(user_id: Option<UserId>, guest_name: Option<String>) -> Self {
        Actor {
            guest_name,
            user_id,
        }
    }
}

#[ComplexObject]
impl Actor {
    /// The user, for signed-in actors.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.user_id {
            None => Ok(None),
            Some(id) => Ok(loaders::user(ctx, id).await?.map(User::new)),
        }
    }

    /// The user's name, or the guest's.
    async fn display_name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        if let Some(id) = self.user_id {
            if let Some(u) = loaders::user(ctx, id).await? {
                return Ok(u.name);
            }
        }
        Ok(self.guest_name.clone().unwrap_or_else(|| "Someone".into()))
    }
}

/// An event's `data`, serialized from the shared event itself: a live event is resolved
/// once per subscriber, and a copy of the JSON each time added up.
pub struct Details(Arc<records::Activity>);

impl serde::Serialize for Details {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.data.serialize(s)
    }
}

/// One entry of an organization's activity feed.
#[derive(Clone)]
pub struct ActivityEvent(pub Arc<records::Activity>);

#[Object]
impl ActivityEvent {
    /// Opaque id (`act_…`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// What happened.
    #[graphql(name = "type")]
    async fn kind(&self) -> ActivityType {
        self.0.event_type.into()
    }

    /// Who did it.
    async fn actor(&self) -> Option<Actor> {
        (self.0.actor_user_id.is_some() || self.0.actor_guest_name.is_some()).then(|| Actor {
            guest_name: self.0.actor_guest_name.clone(),
            user_id: self.0.actor_user_id,
        })
    }

    /// The organization it happened in.
    async fn organization_id(&self) -> ID {
        ID(self.0.organization_id.to_string())
    }

    /// The kind of resource it happened to.
    async fn resource_type(&self) -> Option<ResourceType> {
        self.0.resource_type.as_ref().map(|_| ResourceType::Project)
    }

    /// The resource it happened to.
    async fn resource_id(&self) -> Option<ID> {
        self.0
            .resource_id
            .map(|id| ID(format!("prj_{}", id.simple())))
    }

    /// One human sentence, e.g. "Ana invited bo@acme.io".
    async fn summary(&self) -> &str {
        &self.0.summary
    }

    /// Machine-readable details.
    async fn data(&self) -> Json<Details> {
        Json(Details(self.0.clone()))
    }

    /// When it happened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(
    ActivityEventConnection,
    ActivityEventEdge,
    ActivityEvent,
    "activity events"
);
