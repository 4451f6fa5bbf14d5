//! A bounded cache of parsed documents, keyed by their text: clients send the same few
//! queries over and over, and parsing is the largest fixed cost of a small request.
//!
//! Only parsing is skipped. Validation still runs on every request, since its outcome
//! depends on the variables, and so does every other extension's look at the document.
use std::sync::{Arc, Mutex};

use async_graphql::{
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::ExecutableDocument,
    ServerResult, Variables,
};

/// Documents kept at most.
const ENTRIES: usize = 512;
/// Longer documents are parsed every time (they are rare, and would crowd out the others).
const LONGEST: usize = 16 * 1024;

/// The extension; register it last, so it sits next to the parser and every other
/// extension still sees each request's document.
#[derive(Clone)]
pub struct DocumentCache(Arc<Mutex<lru::LruCache<String, ExecutableDocument>>>);

impl Default for DocumentCache {
    fn default() -> Self {
        DocumentCache(Arc::new(Mutex::new(lru::LruCache::new(
            std::num::NonZeroUsize::new(ENTRIES).expect("non-zero"),
        ))))
    }
}

impl ExtensionFactory for DocumentCache {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Extension for DocumentCache {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(doc) = self.0.lock().expect("document cache").get(query) {
            return Ok(doc.clone());
        }
        // Only documents that parsed (and passed the parser's own depth checks) are kept.
        let doc = next.run(ctx, query, variables).await?;
        if query.len() <= LONGEST {
            self.0
                .lock()
                .expect("document cache")
                .put(query.to_owned(), doc.clone());
        }
        Ok(doc)
    }
}
