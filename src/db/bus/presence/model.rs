//! What presence is made of: its limits, a viewer as the others see it, a change, and what
//! instances tell each other.
use std::time::Duration;

use entity::ids::ProjectId;
use serde::{Deserialize, Serialize};

/// Limits of presence on this instance.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// A viewer silent for this long is gone.
    pub timeout: Duration,
    /// Viewers one project may have at once (all instances together, as far as this one
    /// knows).
    pub max_viewers: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timeout: Duration::from_millis(8000),
            max_viewers: 200,
        }
    }
}

/// Whether a viewer is a member of the project's organization or a link holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewerKind {
    /// A member of the project's organization.
    Member,
    /// Someone holding a shared link.
    Guest,
}

/// A point on the viewed page, in the client's coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Horizontal.
    pub x: f64,
    /// Vertical.
    pub y: f64,
}

/// One viewer as every viewer of the project sees it: nothing that names a user, an
/// address or an organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Viewer {
    /// Opaque per-viewer id (a new one per subscription).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Member or guest.
    pub kind: ViewerKind,
    /// Where the pointer is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Point>,
    /// What is selected (free text the client chooses, e.g. an element path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
    /// A client-defined status (e.g. "typing").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When it last changed (milliseconds since the epoch, by the clock of the instance that
    /// took the change).
    pub updated_at: i64,
}

/// A change of one viewer. A viewer points at one thing at a time: a cursor clears the
/// selection and a selection clears the cursor; an empty selection or state clears it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The new cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Point>,
    /// The new selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
    /// The new state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl Change {
    pub(super) fn apply(&self, v: &mut Viewer, at: i64) {
        if let Some(c) = self.cursor {
            v.cursor = Some(c);
            v.selection = None;
        }
        if let Some(s) = &self.selection {
            v.selection = (!s.is_empty()).then(|| s.clone());
            v.cursor = None;
        }
        if let Some(s) = &self.state {
            v.state = (!s.is_empty()).then(|| s.clone());
        }
        v.updated_at = at;
    }
}

/// What one instance tells the others about presence (inside a bus announcement).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(in crate::db::bus) enum Wire {
    /// A viewer is here (a join, or a reply to `hello`); `hello` asks the other instances
    /// for the viewers they hold (the sender's room is new).
    Join {
        p: ProjectId,
        v: Viewer,
        #[serde(default)]
        hello: bool,
    },
    /// A viewer changed.
    Update {
        p: ProjectId,
        id: String,
        c: Change,
        at: i64,
    },
    /// A viewer left.
    Leave { p: ProjectId, id: String },
}
