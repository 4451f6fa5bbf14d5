//! Cross-cutting GraphQL behaviour: stable codes for rejected queries, and Prometheus
//! metrics per operation.
use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use async_graphql::{
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
    },
    parser::types::{ExecutableDocument, OperationType, Selection},
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
            e.extensions
                .get_or_insert_with(Default::default)
                .set("code", "GRAPHQL_PARSE_FAILED");
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
                    let too_complex = e.message == "Query is too complex."
                        || e.message == "Query is nested too deep.";
                    let code = if too_complex {
                        TopLevelCode::QueryTooComplex.as_str()
                    } else {
                        "GRAPHQL_VALIDATION_FAILED"
                    };
                    e.extensions
                        .get_or_insert_with(Default::default)
                        .set("code", code);
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
        let (kind, fields) = self
            .label
            .lock()
            .expect("label lock")
            .clone()
            .unwrap_or(("unknown", String::new()));
        let outcome = if resp.errors.is_empty() {
            "ok"
        } else {
            "error"
        };
        metrics::counter!("kfactor_graphql_operations_total",
            "type" => kind, "fields" => fields.clone(), "outcome" => outcome)
        .increment(1);
        metrics::histogram!("kfactor_graphql_operation_duration_seconds",
            "type" => kind, "fields" => fields)
        .record(start.elapsed().as_secs_f64());
        resp
    }
}
