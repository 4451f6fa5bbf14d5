//! Automatic Persisted Queries: the `persistedQuery` request extension (version 1) that
//! Apollo Client and urql send, so a client may send a document's SHA-256 instead of its
//! text once the server has seen the text.
//!
//! Resolved here, before anything reads the document, so a hash-only request is in every
//! way the request its text makes (a mutation is still refused over GET, an
//! `Idempotency-Key` still applies).
use std::sync::Mutex;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Most bytes of query text kept (evicting the least recently used first).
const BUDGET: usize = 4 * 1024 * 1024;
/// What one entry costs beyond its text (key, LRU links).
const OVERHEAD: usize = 128;

/// Why a request's persisted query could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The hash is unknown here: the client sends the text with it next (the protocol's
    /// `PERSISTED_QUERY_NOT_FOUND`).
    NotFound,
    /// The extension is malformed, of another version, or does not match the text.
    Invalid(&'static str),
}

/// Query texts by their SHA-256 (lowercase hex), least recently used evicted first.
pub struct PersistedQueries {
    entries: Mutex<(lru::LruCache<String, String>, usize)>,
}

impl Default for PersistedQueries {
    fn default() -> Self {
        PersistedQueries {
            entries: Mutex::new((lru::LruCache::unbounded(), 0)),
        }
    }
}

impl std::fmt::Debug for PersistedQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = self.entries.lock().expect("persisted queries");
        f.debug_struct("PersistedQueries")
            .field("entries", &e.0.len())
            .field("bytes", &e.1)
            .finish()
    }
}

impl PersistedQueries {
    /// The query text of a request carrying `extension` (the value of
    /// `extensions.persistedQuery`) and maybe its text: with the text, checks the hash and
    /// remembers it; without, looks the hash up.
    pub fn resolve(&self, extension: &Value, query: Option<&str>) -> Result<String, Refused> {
        if extension.get("version").and_then(Value::as_i64) != Some(1) {
            return Err(Refused::Invalid(
                "Only version 1 of the persistedQuery extension is supported.",
            ));
        }
        let Some(hash) = extension
            .get("sha256Hash")
            .and_then(Value::as_str)
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            return Err(Refused::Invalid(
                "persistedQuery.sha256Hash must be the query's SHA-256 in hex.",
            ));
        };
        let hash = hash.to_ascii_lowercase();
        match query.filter(|q| !q.is_empty()) {
            None => self
                .entries
                .lock()
                .expect("persisted queries")
                .0
                .get(&hash)
                .cloned()
                .ok_or(Refused::NotFound),
            Some(text) => {
                if hex::encode(Sha256::digest(text.as_bytes())) != hash {
                    return Err(Refused::Invalid(
                        "provided sha does not match query (persistedQuery.sha256Hash must be the SHA-256 of `query`).",
                    ));
                }
                self.remember(hash, text);
                Ok(text.to_owned())
            }
        }
    }

    fn remember(&self, hash: String, text: &str) {
        let weight = text.len() + OVERHEAD;
        if weight > BUDGET {
            return;
        }
        let mut e = self.entries.lock().expect("persisted queries");
        let (lru, bytes) = &mut *e;
        if lru.get(&hash).is_some() {
            return;
        }
        while *bytes + weight > BUDGET {
            match lru.pop_lru() {
                Some((_, t)) => *bytes -= t.len() + OVERHEAD,
                None => break,
            }
        }
        lru.put(hash, text.to_owned());
        *bytes += weight;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ext(hash: &str) -> Value {
        json!({ "version": 1, "sha256Hash": hash })
    }

    #[test]
    fn a_hash_resolves_once_its_text_was_sent_with_it() {
        let q = PersistedQueries::default();
        let text = "{ plans { key } }";
        let hash = hex::encode(Sha256::digest(text));
        assert_eq!(q.resolve(&ext(&hash), None), Err(Refused::NotFound));
        assert_eq!(q.resolve(&ext(&hash), Some(text)).unwrap(), text);
        assert_eq!(q.resolve(&ext(&hash), None).unwrap(), text);
        assert_eq!(q.resolve(&ext(&hash.to_uppercase()), None).unwrap(), text);
    }

    #[test]
    fn a_wrong_hash_or_version_is_refused_and_remembers_nothing() {
        let q = PersistedQueries::default();
        let other = hex::encode(Sha256::digest("{ me { id } }"));
        assert!(matches!(
            q.resolve(&ext(&other), Some("{ plans { key } }")),
            Err(Refused::Invalid(_))
        ));
        assert_eq!(q.resolve(&ext(&other), None), Err(Refused::NotFound));
        for bad in [
            json!({ "version": 2, "sha256Hash": other }),
            json!({ "version": 1, "sha256Hash": "abc" }),
            json!("x"),
        ] {
            assert!(matches!(q.resolve(&bad, None), Err(Refused::Invalid(_))));
        }
    }

    #[test]
    fn it_holds_at_most_its_budget() {
        let q = PersistedQueries::default();
        let big = "x".repeat(1024 * 1024);
        for i in 0..10 {
            let text = format!("{big}{i}");
            let hash = hex::encode(Sha256::digest(&text));
            q.resolve(&ext(&hash), Some(&text)).unwrap();
        }
        let e = q.entries.lock().unwrap();
        assert!(e.1 <= BUDGET, "{}", e.1);
        assert_eq!(e.0.len(), 3);
    }
}
