//! Cross-cutting GraphQL behaviour: stable codes for rejected queries, and Prometheus
//! metrics per operation.
use std::{
    sync::{Arc, Mutex, OnceLock},
    time::Instant,
};

use std::collections::{BTreeMap, BTreeSet};

use async_graphql::{
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
    },
    parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet},
    Response, ServerError, ServerResult, ValidationResult, Variables,
};

use super::error::TopLevelCode;

/// Factory of [`ObserveExt`], one per request.
pub struct Observe;

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObserveExt::default())
    }
}

/// Per-request state: what the operation is, for metric labels.
#[derive(Default)]
pub struct ObserveExt {
    label: Mutex<Option<(&'static str, String)>>,
    /// The operation's success counter and duration histogram, looked up in the registry
    /// once: a subscription runs `execute` for every event it delivers, and a lookup hashes
    /// and clones the labels.
    handles: OnceLock<Handles>,
}

struct Handles {
    ok: metrics::Counter,
    duration: metrics::Histogram,
}

impl ObserveExt {
    fn labels(&self) -> (&'static str, String) {
        self.label
            .lock()
            .expect("label lock")
            .clone()
            .unwrap_or(("unknown", String::new()))
    }
}

/// The metric label of an operation: its type and root fields (bounded by the schema, unlike
/// client-chosen operation names), e.g. `("mutation", "signUp")`.
fn label(doc: &ExecutableDocument, name: Option<&str>) -> Option<(&'static str, String)> {
    let op = doc
        .operations
        .iter()
        .find(|(n, _)| name.is_none() || n.map(|n| n.as_str()) == name)?
        .1;
    let kind = match op.node.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let mut fields: Vec<&str> = op
        .node
        .selection_set
        .node
        .items
        .iter()
        .filter_map(|s| match &s.node {
            Selection::Field(f) => Some(f.node.name.node.as_str()),
            _ => None,
        })
        .collect();
    fields.sort_unstable();
    fields.dedup();
    Some((kind, fields.join(",")))
}

#[async_trait::async_trait]
impl Extension for ObserveExt {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await.map_err(|mut e| {
            let ext = e.extensions.get_or_insert_with(Default::default);
            // A later check (ExpensiveFields) may have refused the document with its own code.
            if ext.get("code").is_none() {
                ext.set("code", "GRAPHQL_PARSE_FAILED");
                e.message = one_line(&e.message, e.locations.first().copied());
            }
            e
        })?;
        *self.label.lock().expect("label lock") = label(&doc, None);
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|mut e| {
                    let ext = e.extensions.get_or_insert_with(Default::default);
                    // The depth and complexity refusals carry their own code.
                    if ext.get("code").is_none() {
                        ext.set("code", "GRAPHQL_VALIDATION_FAILED");
                    }
                    e
                })
                .collect()
        })
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let start = Instant::now();
        let resp = next.run(ctx, operation_name).await;
        let handles = self.handles.get_or_init(|| {
            let (kind, fields) = self.labels();
            Handles {
                ok: metrics::counter!("kfactor_graphql_operations_total",
                    "type" => kind, "fields" => fields.clone(), "outcome" => "ok"),
                duration: metrics::histogram!("kfactor_graphql_operation_duration_seconds",
                    "type" => kind, "fields" => fields),
            }
        });
        if resp.errors.is_empty() {
            handles.ok.increment(1);
        } else {
            let (kind, fields) = self.labels();
            metrics::counter!("kfactor_graphql_operations_total",
                "type" => kind, "fields" => fields, "outcome" => "error")
            .increment(1);
        }
        handles.duration.record(start.elapsed().as_secs_f64());
        resp
    }
}

/// The parser's multi-line report (source excerpt, caret art) as one line with the position,
/// e.g. "Syntax error at line 1, column 6: expected selection set."
fn one_line(report: &str, at: Option<async_graphql::Pos>) -> String {
    let what = report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("= "))
        .map(|w| w.trim().replace('_', " "))
        .unwrap_or_else(|| report.split_whitespace().collect::<Vec<_>>().join(" "));
    match at {
        Some(p) => format!(
            "Syntax error at line {}, column {}: {what}.",
            p.line, p.column
        ),
        None => format!("Syntax error: {what}."),
    }
}

/// Root fields that are expensive or guard something (a password, an email, a token):
/// aliases must not multiply them within one request.
pub const EXPENSIVE: &[&str] = &[
    "logIn",
    "signUp",
    "acceptInvitation",
    "createInvitations",
    "resendInvitation",
    "guestComment",
    "guestEdit",
    "sendTestWebhook",
    "redeliverWebhook",
    "verifyEmail",
    "resendVerificationEmail",
    "requestPasswordReset",
    "resetPassword",
    "changePassword",
    "changeEmail",
    "deleteAccount",
    "exportMyData",
    "sharedLink",
    "invitation",
];

/// Refuses, before anything runs, a document in which one operation asks for an
/// [`EXPENSIVE`] root field under more than `.0` response keys (aliases). Fields merged by
/// GraphQL (same response key) run once and count once.
pub struct ExpensiveFields(pub usize);

impl ExtensionFactory for ExpensiveFields {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ExpensiveFieldsExt(self.0))
    }
}

struct ExpensiveFieldsExt(usize);

/// Root fields of `set` (through fragments) by name, with their response keys.
fn root_fields<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    depth: usize,
    out: &mut BTreeMap<&'a str, BTreeSet<&'a str>>,
) {
    // Fragment cycles are refused by validation later; here they simply stop.
    if depth > 16 {
        return;
    }
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                let name = f.node.name.node.as_str();
                let key = f.node.alias.as_ref().map_or(name, |a| a.node.as_str());
                out.entry(name).or_default().insert(key);
            }
            Selection::InlineFragment(fr) => {
                root_fields(doc, &fr.node.selection_set.node, depth + 1, out)
            }
            Selection::FragmentSpread(sp) => {
                if let Some(fd) = doc.fragments.get(&sp.node.fragment_name.node) {
                    root_fields(doc, &fd.node.selection_set.node, depth + 1, out);
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Extension for ExpensiveFieldsExt {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        for (_, op) in doc.operations.iter() {
            let mut fields = BTreeMap::new();
            root_fields(&doc, &op.node.selection_set.node, 0, &mut fields);
            for (name, keys) in fields {
                if keys.len() > self.0 && EXPENSIVE.contains(&name) {
                    let mut e = ServerError::new(
                        format!(
                            "A request may contain `{name}` at most {} time(s); this one has it {} times. Send separate requests.",
                            self.0,
                            keys.len()
                        ),
                        None,
                    );
                    e.extensions
                        .get_or_insert_with(Default::default)
                        .set("code", TopLevelCode::QueryTooComplex.as_str());
                    return Err(e);
                }
            }
        }
        Ok(doc)
    }
}
