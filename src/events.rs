//! The kinds of things that happen, as stored in the outbox and shown on the API: a leaf that
//! the outbox (which writes them) and the domain (which decides them) both import.

/// The kinds of activity the contract knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ActivityType {
    MemberJoined,
    MemberRemoved,
    InvitationSent,
    InvitationAccepted,
    ProjectCreated,
    ProjectUpdated,
    CommentAdded,
    SharedLinkCreated,
    SharedLinkVisited,
    PlanChanged,
    LimitReached,
    WebhookDisabled,
}

impl ActivityType {
    /// Every kind, in contract order.
    pub const ALL: [ActivityType; 12] = [
        ActivityType::MemberJoined,
        ActivityType::MemberRemoved,
        ActivityType::InvitationSent,
        ActivityType::InvitationAccepted,
        ActivityType::ProjectCreated,
        ActivityType::ProjectUpdated,
        ActivityType::CommentAdded,
        ActivityType::SharedLinkCreated,
        ActivityType::SharedLinkVisited,
        ActivityType::PlanChanged,
        ActivityType::LimitReached,
        ActivityType::WebhookDisabled,
    ];

    /// The stored and API name, e.g. `MEMBER_JOINED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityType::MemberJoined => "MEMBER_JOINED",
            ActivityType::MemberRemoved => "MEMBER_REMOVED",
            ActivityType::InvitationSent => "INVITATION_SENT",
            ActivityType::InvitationAccepted => "INVITATION_ACCEPTED",
            ActivityType::ProjectCreated => "PROJECT_CREATED",
            ActivityType::ProjectUpdated => "PROJECT_UPDATED",
            ActivityType::CommentAdded => "COMMENT_ADDED",
            ActivityType::SharedLinkCreated => "SHARED_LINK_CREATED",
            ActivityType::SharedLinkVisited => "SHARED_LINK_VISITED",
            ActivityType::PlanChanged => "PLAN_CHANGED",
            ActivityType::LimitReached => "LIMIT_REACHED",
            ActivityType::WebhookDisabled => "WEBHOOK_DISABLED",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<ActivityType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}
