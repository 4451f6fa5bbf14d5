//! What the simulation produces: the demo world as plain rows (organizations, users, memberships,
//! invitations, projects, links, plan changes).

use super::*;
use uuid::Uuid;

/// An organization.
pub struct Org {
    pub id: Uuid,
    pub name: String,
    pub plan: &'static str,
    pub created: Ms,
    /// Members so far (in simulation time).
    pub(super) members: usize,
    pub(super) projects: usize,
    /// Until when each invitation counts as pending (accept or expiry).
    pub(super) pending_until: Vec<Ms>,
}

/// How a user came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Organic,
    Paid,
    Invite,
    Share,
    Referral,
}

impl Source {
    pub fn stored(self) -> &'static str {
        match self {
            Source::Organic => "organic",
            Source::Paid => "paid",
            Source::Invite => "invite",
            Source::Share => "share",
            Source::Referral => "referral",
        }
    }
}

/// A user.
pub struct User {
    pub id: Uuid,
    pub n: usize,
    /// The invitation's address for invite signups, else `user{n}@demo.kfactor.test`.
    pub email: String,
    pub created: Ms,
    pub source: Source,
    pub utm: Option<&'static str>,
    pub invited_by: Option<usize>,
    /// The invitation or shared link signed up through.
    pub via_token: Option<Uuid>,
    pub attributed_org: Option<usize>,
    /// The organization they landed in (their own workspace, or the inviter's).
    pub org: usize,
    pub activated: Option<Ms>,
}

/// A membership.
pub struct Member {
    pub id: Uuid,
    pub org: usize,
    pub user: usize,
    pub role: &'static str,
    pub joined: Ms,
}

/// An invitation (one per organization and email) and what became of it.
pub struct Invitation {
    pub id: Uuid,
    pub org: usize,
    pub inviter: usize,
    pub email: String,
    pub surface: Option<&'static str>,
    pub team: bool,
    pub sent: Ms,
    pub resent: Option<Ms>,
    pub opened: Option<Ms>,
    pub accepted: Option<(Ms, usize)>,
    pub revoked: bool,
}

/// A project, with the comments on it as (author, at).
pub struct Project {
    pub id: Uuid,
    pub org: usize,
    pub creator: usize,
    pub created: Ms,
    pub comments: Vec<(Option<usize>, Ms)>,
}

/// A shared link and its opens as (visitor id, at).
pub struct Link {
    pub id: Uuid,
    pub org: usize,
    pub project: usize,
    pub creator: usize,
    pub permission: &'static str,
    pub surface: &'static str,
    pub created: Ms,
    pub visits: Vec<(String, Ms)>,
}

/// A plan change of an organization.
pub struct PlanChange {
    pub org: usize,
    pub from: &'static str,
    pub to: &'static str,
    pub at: Ms,
}

/// Everything the simulation made.
#[derive(Default)]
pub struct World {
    pub orgs: Vec<Org>,
    pub users: Vec<User>,
    pub members: Vec<Member>,
    pub invitations: Vec<Invitation>,
    pub projects: Vec<Project>,
    pub links: Vec<Link>,
    pub plan_changes: Vec<PlanChange>,
}

/// What to simulate.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub users: usize,
    pub start: Ms,
    pub end: Ms,
    pub seed: u64,
}
