//! Makes async-graphql's answers follow the GraphQL spec where it does not by itself.
//!
//! - **Field order and errored fields.** async-graphql resolves the fields of an object
//!   concurrently and inserts each into the response map when it completes
//!   (`resolver_utils::container::do_resolve_container`: `FuturesUnordered`), so the order
//!   of keys follows completion, not the selection set; and a field whose resolver failed is
//!   left out of its object instead of being `null` (with a non-null field nulling its
//!   parent). [`shape`] rewrites the executed response once, from the document and the
//!   schema's registry: keys in selection order, `null` for each errored nullable field,
//!   and null propagation for non-null ones, up to `data: null`.
//! - **Argument values before execution.** async-graphql's validation checks argument
//!   values with each scalar's `is_valid`, which for `Int` accepts any 64-bit number (the
//!   32-bit range is only checked when the resolver parses it) and for `DateTime` anything;
//!   a bad value below a field that resolved to null was never parsed, and a mutation ran.
//!   [`args`] checks every variable and every argument in the document strictly during
//!   validation, so such a document is refused whole before anything runs.
use std::sync::{Arc, Mutex};

use async_graphql::{
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
        NextPrepareRequest, NextValidation,
    },
    parser::types::{ExecutableDocument, OperationDefinition},
    Positioned, Request, Response, ServerError, ServerResult, ValidationResult, Variables,
};

use super::error::TopLevelCode;

mod args;
mod shape;

/// Factory of the per-request [`ConformExt`], with the limits it enforces. (They are
/// enforced here rather than by the schema builder, whose refusal says neither the limit
/// nor the query's cost.)
#[derive(Clone, Copy)]
pub struct Conform {
    /// `graphql_max_depth`.
    pub max_depth: usize,
    /// `graphql_max_complexity`.
    pub max_complexity: usize,
}

impl ExtensionFactory for Conform {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ConformExt {
            limits: *self,
            operation_name: Mutex::default(),
            document: Mutex::default(),
        })
    }
}

/// What one request's later hooks need from its earlier ones.
struct ConformExt {
    limits: Conform,
    operation_name: Mutex<Option<String>>,
    document: Mutex<Option<(ExecutableDocument, Variables)>>,
}

impl ConformExt {
    fn with_operation<T>(
        &self,
        f: impl FnOnce(&ExecutableDocument, &Positioned<OperationDefinition>, &Variables) -> T,
    ) -> Option<T> {
        let name = self.operation_name.lock().expect("conform lock").clone();
        let guard = self.document.lock().expect("conform lock");
        let (doc, vars) = guard.as_ref()?;
        let op = doc
            .operations
            .iter()
            .find(|(n, _)| name.is_none() || n.map(|n| n.as_str()) == name.as_deref())?
            .1;
        Some(f(doc, op, vars))
    }
}

#[async_trait::async_trait]
impl Extension for ConformExt {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request = next.run(ctx, request).await?;
        *self.operation_name.lock().expect("conform lock") = request.operation_name.clone();
        Ok(request)
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        *self.document.lock().expect("conform lock") = Some((doc.clone(), variables.clone()));
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let too_complex = |message: String| {
            let mut e = ServerError::new(message, None);
            e.extensions
                .get_or_insert_with(Default::default)
                .set("code", TopLevelCode::QueryTooComplex.as_str());
            Err(vec![e])
        };
        let Conform {
            max_depth,
            max_complexity,
        } = self.limits;
        if result.depth > max_depth {
            return too_complex(format!(
                "This query is nested {} levels deep; the limit is {max_depth} (setting `graphql_max_depth`, KFACTOR_GRAPHQL_MAX_DEPTH). Select less deeply.",
                result.depth
            ));
        }
        if result.complexity > max_complexity {
            return too_complex(format!(
                "This query costs {} (one per field, times `first` for lists); the limit is {max_complexity} (setting `graphql_max_complexity`, KFACTOR_GRAPHQL_MAX_COMPLEXITY). Select fewer fields or ask for smaller pages.",
                result.complexity
            ));
        }
        let registry = &ctx.schema_env.registry;
        let errors = self
            .with_operation(|doc, op, vars| args::check(registry, doc, op, vars))
            .unwrap_or_default();
        if errors.is_empty() {
            Ok(result)
        } else {
            Err(errors)
        }
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        let registry = &ctx.schema_env.registry;
        let mut data = Some(std::mem::take(&mut response.data));
        let errors = &response.errors;
        let shaped = self.with_operation(|doc, op, vars| {
            let data = data.take().unwrap_or_default();
            shape::response(registry, doc, op, vars, errors, data)
        });
        response.data = shaped.or(data).unwrap_or_default();
        response
    }
}
