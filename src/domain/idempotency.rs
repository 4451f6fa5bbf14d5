//! `Idempotency-Key`: a retried mutation with the same key and the same request within 24 h
//! gets the first response again, and consumes nothing twice.
//!
//! The key is claimed with an insert before the mutation runs (the primary key makes two
//! concurrent requests with one key race for it: one runs, the other is told to retry), and
//! the response is stored when it finishes.
use chrono::Duration;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};

use super::{DomainError, DomainResult, Services};
use crate::crypto::Purpose as SealPurpose;
use entity::idempotency_keys;

/// How long a response is remembered (set beside the retention setting it bounds).
pub const TTL_HOURS: i64 = crate::config::IDEMPOTENCY_REPLAY_HOURS;

/// What to do with a request carrying a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// First time: run it, then [`complete`].
    Fresh,
    /// Seen before: answer with this response body.
    Replay(String),
    /// The first request with this key is still running.
    InProgress,
    /// The key was used for a different request.
    Mismatch,
}

/// Root mutation fields that create something, and so honour `Idempotency-Key`: a retry
/// must not create it twice. A key sent with any other mutation is refused (it would be
/// silently ignored otherwise, and the client would believe its retry safe).
pub const SUPPORTED: [&str; 11] = [
    "signUp",
    "createOrganization",
    "createInvitations",
    "createProject",
    "addComment",
    "createSharedLink",
    "guestComment",
    "createWebhookEndpoint",
    "sendTestWebhook",
    "redeliverWebhook",
    "changePlan",
];

/// A GraphQL document with its insignificant characters removed: whitespace, commas and
/// comments outside strings collapse, so a retry that differs only in formatting has the
/// same fingerprint. (Tokens are kept apart by one space only where two would merge.)
pub fn normalise_document(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut chars = query.chars().peekable();
    let mut gap = false;
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '$';
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() || c == ',' || c == '\u{feff}' => gap = true,
            '#' => {
                for n in chars.by_ref() {
                    if n == '\n' || n == '\r' {
                        break;
                    }
                }
                gap = true;
            }
            '"' => {
                if gap && out.ends_with(word) {
                    out.push(' ');
                }
                gap = false;
                out.push('"');
                // A block string `"""…"""` or a plain string with escapes, verbatim.
                let block = chars.peek() == Some(&'"') && {
                    let mut ahead = chars.clone();
                    ahead.next();
                    ahead.next() == Some('"')
                };
                if block {
                    out.push_str("\"\"");
                    chars.next();
                    chars.next();
                    let mut quotes = 0;
                    for n in chars.by_ref() {
                        out.push(n);
                        quotes = if n == '"' { quotes + 1 } else { 0 };
                        if quotes == 3 && !out.ends_with("\\\"\"\"") {
                            break;
                        }
                    }
                } else {
                    let mut escaped = false;
                    for n in chars.by_ref() {
                        out.push(n);
                        if escaped {
                            escaped = false;
                        } else if n == '\\' {
                            escaped = true;
                        } else if n == '"' || n == '\n' {
                            break;
                        }
                    }
                }
            }
            c => {
                if gap && word(c) && out.ends_with(word) {
                    out.push(' ');
                }
                gap = false;
                out.push(c);
            }
        }
    }
    out
}

/// The fingerprint of a request.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// Claims `key` for `scope` (the caller) or reports what happened to it before.
pub async fn begin(svc: &Services, scope: &str, key: &str, hash: &str) -> DomainResult<Begin> {
    if key.is_empty() || key.len() > 255 || key.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            &["Idempotency-Key"],
            "Idempotency-Key must have 1 to 255 printable characters.",
        ));
    }
    let now = svc.now();
    let db = &svc.db.write;
    for _ in 0..2 {
        let existing = idempotency_keys::Entity::find_by_id((scope.to_string(), key.to_string()))
            .one(db)
            .await?;
        if let Some(row) = existing {
            // A claim without a response is never run again while it is remembered: the first
            // request may have committed before its process died.
            let remembered = match (
                &row.response,
                row.created_at + Duration::hours(TTL_HOURS) > now,
            ) {
                (_, false) => None,
                _ if row.request_hash != hash => Some(Begin::Mismatch),
                (None, true) => Some(Begin::InProgress),
                (Some(sealed), true) => open(svc, scope, key, sealed).map(Begin::Replay),
            };
            if let Some(answer) = remembered {
                return Ok(answer);
            }
            // Expired, or its response unreadable: reclaim exactly the row that was read (a
            // concurrent reclaimer that got there first leaves nothing to delete, and this one
            // looks again).
            let reclaimed = idempotency_keys::Entity::delete_many()
                .filter(idempotency_keys::Column::Scope.eq(scope))
                .filter(idempotency_keys::Column::Key.eq(key))
                .filter(idempotency_keys::Column::CreatedAt.eq(row.created_at))
                .exec(db)
                .await?;
            if reclaimed.rows_affected == 0 {
                continue;
            }
        }
        let claimed = idempotency_keys::Entity::insert(idempotency_keys::ActiveModel {
            scope: Set(scope.into()),
            key: Set(key.into()),
            request_hash: Set(hash.into()),
            response: Set(None),
            created_at: Set(now),
        })
        .exec_without_returning(db)
        .await;
        match claimed {
            Ok(_) => return Ok(Begin::Fresh),
            Err(e)
                if matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Begin::InProgress)
}

/// Stores the response of a claimed key, encrypted: a response may carry a share or
/// invitation link, which is otherwise never stored.
pub async fn complete(svc: &Services, scope: &str, key: &str, response: &str) -> DomainResult<()> {
    let sealed = svc.keys.ring().seal(
        SealPurpose::IdempotentResponse,
        &seal_context(scope, key),
        response.as_bytes(),
    );
    idempotency_keys::Entity::update_many()
        .col_expr(
            idempotency_keys::Column::Response,
            sea_orm::sea_query::Expr::value(sealed),
        )
        .filter(idempotency_keys::Column::Scope.eq(scope))
        .filter(idempotency_keys::Column::Key.eq(key))
        .exec(&svc.db.write)
        .await?;
    Ok(())
}

/// What a stored response is bound to: it opens only for the key it was stored under.
pub fn seal_context(scope: &str, key: &str) -> Vec<u8> {
    [scope.as_bytes(), &[0], key.as_bytes()].concat()
}

/// A stored response in clear text (responses stored before they were encrypted are plain
/// JSON). None if it does not open with the current or a previous secret: it cannot be
/// replayed, so the key is treated as expired. (Start-up refuses a database whose live
/// responses do not open, so this is a row altered under a running server.)
fn open(svc: &Services, scope: &str, key: &str, stored: &str) -> Option<String> {
    if stored.starts_with('{') {
        return Some(stored.to_string());
    }
    let text = svc
        .keys
        .ring()
        .open(
            SealPurpose::IdempotentResponse,
            &seal_context(scope, key),
            stored,
        )
        .ok()
        .and_then(|o| String::from_utf8(o.plaintext).ok());
    if text.is_none() {
        tracing::warn!("a stored idempotent response does not open with KFACTOR_SECRET or KFACTOR_SECRET_PREVIOUS; its key starts afresh");
    }
    text
}

/// Releases a claimed key (the request failed on our side and may be retried).
pub async fn abort(svc: &Services, scope: &str, key: &str) -> DomainResult<()> {
    idempotency_keys::Entity::delete_by_id((scope.to_string(), key.to_string()))
        .exec(&svc.db.write)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::normalise_document as n;

    #[test]
    fn formatting_does_not_change_the_fingerprint_but_content_does() {
        let a = "mutation($i: ID!) { addComment(input: {projectId: $i, body: \"a  b, c\"}) { comment { id } } }";
        let b = "mutation ( $i : ID! ) {\n  addComment( input : { projectId : $i , body : \"a  b, c\" } ) {\n    comment { id } # the new one\n  }\n}\n";
        assert_eq!(n(a), n(b));
        assert_ne!(
            n(a),
            n(&a.replace("a  b", "a b")),
            "strings are kept verbatim"
        );
        assert_ne!(n("{ a b }"), n("{ ab }"));
        assert_eq!(
            n("{ a(x: \"\"\"q \\\"\"\" # \"\"\") }"),
            "{a(x:\"\"\"q \\\"\"\" # \"\"\")}"
        );
    }
}
