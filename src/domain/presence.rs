//! Presence rules: who may be seen viewing a project, under which name, and what an update
//! may carry. The rooms themselves are ephemeral state on the bus (`db::bus::presence`);
//! nothing here writes to the database.
//!
//! A member of the project's organization comes in with the project id, a link holder with
//! the link's token. Every viewer is shown to the others only as an opaque id, a display name
//! and a kind: a member's own name, a guest's chosen one (or "Guest"), never a user id,
//! email or organization. A viewer's key (handed to its own subscription only) is
//! base64url(project ‖ viewer id ‖ HMAC(server secret, project ‖ viewer id ‖ door)), so
//! updates need no lookup and nobody, seeing another viewer's id, can move its entry.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use entity::users;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{
    identity, ids::ProjectId, projects, ratelimit, sharing, tokens::Keys, DomainError,
    DomainResult, Services,
};
use crate::db::bus::{
    presence::{Change, Full, Point, Seat, Updated, Viewer, ViewerKind},
    Revocation,
};

/// The room types the transport shows (rooms live on the bus).
pub mod room {
    pub use crate::db::bus::presence::{Frame, Viewer, ViewerKind};
}

/// Longest guest name, in characters.
pub const MAX_NAME: usize = 60;
/// Largest selection, in bytes (UTF-8).
pub const MAX_SELECTION_BYTES: usize = 1024;
/// Largest state, in bytes (UTF-8).
pub const MAX_STATE_BYTES: usize = 256;
/// Largest absolute cursor coordinate.
pub const MAX_COORDINATE: f64 = 1e9;
/// The name of a guest who gave none.
pub const DEFAULT_GUEST_NAME: &str = "Guest";

/// How a viewer comes in: exactly one of the two.
#[derive(Clone, Debug)]
pub enum Door {
    /// A member of the project's organization, by project id.
    Member(ProjectId),
    /// A shared link's holder, by its token.
    Link(String),
}

impl Door {
    /// The door of `projectId` or `token`: INVALID_INPUT unless exactly one is given.
    pub fn parse(project_id: Option<&str>, token: Option<&str>) -> DomainResult<Door> {
        match (project_id, token) {
            (Some(p), None) => Ok(Door::Member(ProjectId::parse(p)?)),
            (None, Some(t)) => Ok(Door::Link(t.trim().to_string())),
            _ => Err(DomainError::invalid(
                &["projectId"],
                "Pass exactly one of projectId (members of the project's organization) and token (holders of a shared link).",
            )),
        }
    }

    /// What the viewer key binds besides the project: members, or the claimed link.
    fn tag(&self) -> [u8; 16] {
        match self {
            Door::Member(_) => [0; 16],
            Door::Link(t) => Keys::claimed_id(t).map_or([0xff; 16], |id| id.into_bytes()),
        }
    }
}

/// A viewer allowed in: who it is shown as, and what its access depends on.
#[derive(Debug)]
pub struct Admission {
    /// The project viewed.
    pub project: ProjectId,
    /// How the viewer is shown to the others.
    pub viewer: Viewer,
    /// The secret that lets this viewer update its entry.
    pub key: String,
    /// The scopes whose change makes the stream check its access again.
    pub scopes: Vec<Revocation>,
    /// When access lapses on its own (the session's or the link's expiry).
    pub until: Option<DateTime<Utc>>,
}

/// A signed-in caller: their user row and session token.
pub type Session = (users::Model, String);

/// Lets a viewer in through `door`: members of the project's organization (signed in) by
/// project id, link holders by a usable token (rate-limited like every public token lookup).
/// `name` is a guest's display name; members are shown by their own.
pub async fn admit(
    svc: &Services,
    client: &ratelimit::Client,
    door: &Door,
    session: Option<&Session>,
    name: Option<&str>,
) -> DomainResult<Admission> {
    let (project, kind, shown, mut scopes, until) = match door {
        Door::Member(id) => {
            let (user, token) = session.ok_or(DomainError::Unauthenticated(
                "Sign in to be seen on a project, or pass a shared link's token.",
            ))?;
            let until = identity::session_expiry(svc, token).await?;
            let (p, _) = projects::get(&svc.db.read, user.id, *id).await?;
            let scopes = vec![Revocation::Org(p.organization_id)];
            let shown = user.name.clone();
            (p.id, ViewerKind::Member, shown, scopes, Some(until))
        }
        Door::Link(token) => {
            ratelimit::public_lookup(svc, client)?;
            let opened =
                sharing::resolve(svc, &svc.db.read, token, session.map(|(u, _)| u)).await?;
            let scopes = vec![
                Revocation::Link(opened.link.id),
                Revocation::Org(opened.organization.id),
            ];
            let (kind, shown) = match (opened.member_role, session) {
                (Some(_), Some((u, _))) => (ViewerKind::Member, u.name.clone()),
                _ => (ViewerKind::Guest, guest_name(name)?),
            };
            (
                opened.project.id,
                kind,
                shown,
                scopes,
                opened.link.expires_at,
            )
        }
    };
    scopes.push(Revocation::Project(project));
    if let Some((u, _)) = session {
        scopes.push(Revocation::User(u.id));
    }
    let mut id = [0u8; 16];
    rand::rng().fill_bytes(&mut id);
    let key = viewer_key(&svc.keys, project, &id, door);
    Ok(Admission {
        project,
        viewer: Viewer {
            id: URL_SAFE_NO_PAD.encode(id),
            name: shown,
            kind,
            cursor: None,
            selection: None,
            state: None,
            updated_at: svc.now().timestamp_millis(),
        },
        key,
        scopes,
        until,
    })
}

/// Checks again that the viewer let in through `door` may still be there (a scope of its
/// admission changed, or its deadline passed); the next deadline, or the refusal.
pub async fn recheck(
    svc: &Services,
    door: &Door,
    session: Option<&Session>,
) -> DomainResult<Option<DateTime<Utc>>> {
    let until = match session {
        Some((_, token)) => Some(identity::session_expiry(svc, token).await?),
        None => None,
    };
    match door {
        Door::Member(id) => {
            let (user, _) = session.ok_or(DomainError::Unauthenticated("Sign in again."))?;
            projects::get(&svc.db.read, user.id, *id).await?;
            Ok(until)
        }
        Door::Link(token) => {
            let opened =
                sharing::resolve(svc, &svc.db.read, token, session.map(|(u, _)| u)).await?;
            Ok(match (opened.link.expires_at, until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
        }
    }
}

/// Seats an admitted viewer in its project's room: LIMIT_REACHED when the room is full.
pub fn join(svc: &Services, admission: &Admission) -> DomainResult<Seat> {
    svc.bus
        .presence()
        .join(admission.project, admission.viewer.clone())
        .map_err(|Full(n)| DomainError::LimitReached {
            feature: "presence_viewers".into(),
            message: format!(
                "This project already has {n} viewers, the most it may have at once; try again when someone leaves."
            ),
            upgrade: None,
        })
}

/// A guest's display name: trimmed, without control characters, at most [`MAX_NAME`]
/// characters; [`DEFAULT_GUEST_NAME`] when empty or not given.
pub fn guest_name(name: Option<&str>) -> DomainResult<String> {
    let cleaned: String = name
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string();
    if cleaned.chars().count() > MAX_NAME {
        return Err(DomainError::invalid(
            &["name"],
            format!("A name has at most {MAX_NAME} characters."),
        ));
    }
    Ok(if cleaned.is_empty() {
        DEFAULT_GUEST_NAME.to_string()
    } else {
        cleaned
    })
}

/// What a viewer sends: a cursor or a selection, and a state.
#[derive(Clone, Debug, Default)]
pub struct Update {
    /// Where the pointer is.
    pub cursor: Option<(f64, f64)>,
    /// What is selected (empty clears it).
    pub selection: Option<String>,
    /// A client-defined status (empty clears it).
    pub state: Option<String>,
}

/// Updates the entry of the viewer holding `viewer_key` (and refreshes its silence timer:
/// an update without fields is a heartbeat). Rate-limited per viewer.
pub fn update(svc: &Services, door: &Door, viewer_key: &str, update: Update) -> DomainResult<()> {
    let (project, id) = open_key(&svc.keys, door, viewer_key)?;
    let change = validate(update)?;
    let public = URL_SAFE_NO_PAD.encode(id);
    ratelimit::presence_update(svc, &public)?;
    match svc.bus.presence().update(project, &public, change) {
        Updated::Applied | Updated::Relayed => Ok(()),
        Updated::Gone => Err(DomainError::At {
            field: vec!["viewerKey".into()],
            error: Box::new(DomainError::NotFound(
                "Viewer (it left or was silent too long; subscribe again)",
            )),
        }),
    }
}

fn validate(u: Update) -> DomainResult<Change> {
    if u.cursor.is_some() && u.selection.is_some() {
        return Err(DomainError::invalid(
            &["selection"],
            "Pass a cursor or a selection, not both.",
        ));
    }
    let cursor = match u.cursor {
        Some((x, y)) => {
            for (name, v) in [("x", x), ("y", y)] {
                if !v.is_finite() || v.abs() > MAX_COORDINATE {
                    return Err(DomainError::invalid(
                        &["cursor", name],
                        format!("A coordinate is a finite number between -{MAX_COORDINATE:e} and {MAX_COORDINATE:e}."),
                    ));
                }
            }
            Some(Point { x, y })
        }
        None => None,
    };
    let text = |field: &str, v: Option<String>, max: usize, newlines: bool| match v {
        Some(s) if s.len() > max => Err(DomainError::invalid(
            &[field],
            format!("At most {max} bytes."),
        )),
        Some(s)
            if s.chars()
                .any(|c| c.is_control() && !(newlines && matches!(c, '\n' | '\t'))) =>
        {
            Err(DomainError::invalid(
                &[field],
                "Control characters are not allowed.",
            ))
        }
        other => Ok(other),
    };
    Ok(Change {
        cursor,
        selection: text("selection", u.selection, MAX_SELECTION_BYTES, true)?,
        state: text("state", u.state, MAX_STATE_BYTES, false)?,
    })
}

fn mac(keys: &Keys, project: ProjectId, id: &[u8; 16], door: &Door) -> [u8; 16] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&keys.subkey(b"presence viewer keys"))
        .expect("any key size");
    m.update(project.0.as_bytes());
    m.update(id);
    m.update(&door.tag());
    let full = m.finalize().into_bytes();
    full[..16].try_into().expect("16 bytes")
}

fn viewer_key(keys: &Keys, project: ProjectId, id: &[u8; 16], door: &Door) -> String {
    let mut raw = Vec::with_capacity(48);
    raw.extend_from_slice(project.0.as_bytes());
    raw.extend_from_slice(id);
    raw.extend_from_slice(&mac(keys, project, id, door));
    URL_SAFE_NO_PAD.encode(raw)
}

/// The project and viewer id of a genuine key used through the door it was issued for.
fn open_key(keys: &Keys, door: &Door, key: &str) -> DomainResult<(ProjectId, [u8; 16])> {
    let bad = || {
        DomainError::invalid(
            &["viewerKey"],
            "Not the viewer key of a viewer of this project: use the viewerKey of your own presence subscription.",
        )
    };
    let raw = URL_SAFE_NO_PAD.decode(key.trim()).map_err(|_| bad())?;
    if raw.len() != 48 {
        return Err(bad());
    }
    let project = ProjectId(Uuid::from_slice(&raw[..16]).map_err(|_| bad())?);
    let id: [u8; 16] = raw[16..32].try_into().expect("16 bytes");
    if let Door::Member(p) = door {
        if *p != project {
            return Err(bad());
        }
    }
    if !bool::from(raw[32..].ct_eq(&mac(keys, project, &id, door))) {
        return Err(bad());
    }
    Ok((project, id))
}
