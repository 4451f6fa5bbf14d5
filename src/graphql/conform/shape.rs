//! Rewrites an executed response into the shape the spec gives it: keys in the order of the
//! selection set, `null` for an errored nullable field, and a `null` propagated to the
//! nearest nullable ancestor for an errored non-null field.
use async_graphql::{
    indexmap::IndexMap,
    parser::types::{
        Directive, ExecutableDocument, OperationDefinition, OperationType, Selection, SelectionSet,
    },
    registry::{MetaType, MetaTypeName, Registry},
    Name, PathSegment, Positioned, ServerError, Value, Variables,
};

/// The shaped `data` of a response to `op`.
pub fn response(
    registry: &Registry,
    doc: &ExecutableDocument,
    op: &Positioned<OperationDefinition>,
    vars: &Variables,
    errors: &[ServerError],
    data: Value,
) -> Value {
    let root = match op.node.ty {
        OperationType::Query => Some(registry.query_type.as_str()),
        OperationType::Mutation => registry.mutation_type.as_deref(),
        OperationType::Subscription => registry.subscription_type.as_deref(),
    };
    let Some(root) = root else { return data };
    // No field ran at all (a request error): nothing to shape.
    if data == Value::Null && errors.iter().all(|e| e.path.is_empty()) {
        return data;
    }
    let walk = Walk {
        registry,
        doc,
        vars,
        errors,
    };
    let fields = match data {
        Value::Object(fields) => fields,
        // async-graphql answers `null` when every root field failed.
        _ => IndexMap::new(),
    };
    walk.object(
        root,
        &[&op.node.selection_set.node],
        fields,
        &mut Vec::new(),
    )
}

struct Walk<'a> {
    registry: &'a Registry,
    doc: &'a ExecutableDocument,
    vars: &'a Variables,
    errors: &'a [ServerError],
}

/// One response key of an object: the field's declared type and every selection set merged
/// under that key.
struct Collected<'a> {
    key: &'a Name,
    ty: Option<&'a str>,
    sets: Vec<&'a SelectionSet>,
}

impl<'a> Walk<'a> {
    /// An error was raised at `path` or below it: the field there ran and failed.
    fn failed_at_or_below(&self, path: &[PathSegment]) -> bool {
        self.errors
            .iter()
            .any(|e| e.path.len() >= path.len() && e.path[..path.len()] == *path)
    }

    /// The completed value of a position of type `ty`, or None when it is null but must not
    /// be (the caller nulls its own position).
    fn complete(
        &self,
        ty: &str,
        sets: &[&'a SelectionSet],
        value: Value,
        path: &mut Vec<PathSegment>,
    ) -> Option<Value> {
        match MetaTypeName::create(ty) {
            MetaTypeName::NonNull(inner) => match self.complete(inner, sets, value, path)? {
                Value::Null => None,
                v => Some(v),
            },
            MetaTypeName::List(inner) => match value {
                Value::List(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.into_iter().enumerate() {
                        path.push(PathSegment::Index(i));
                        let done = self.complete(inner, sets, item, path);
                        path.pop();
                        match done {
                            Some(v) => out.push(v),
                            None => return Some(Value::Null),
                        }
                    }
                    Some(Value::List(out))
                }
                other => Some(other),
            },
            MetaTypeName::Named(name) => {
                if sets.is_empty() {
                    return Some(value);
                }
                match value {
                    Value::Object(fields) => Some(self.object(name, sets, fields, path)),
                    // An object all of whose fields failed comes back as null.
                    Value::Null if self.failed_below(path) => {
                        Some(self.object(name, sets, IndexMap::new(), path))
                    }
                    other => Some(other),
                }
            }
        }
    }

    fn failed_below(&self, path: &[PathSegment]) -> bool {
        self.errors
            .iter()
            .any(|e| e.path.len() > path.len() && e.path[..path.len()] == *path)
    }

    /// An object of (static) type `ty`: its keys in selection order, or null when a
    /// non-null field of it is null.
    fn object(
        &self,
        ty: &str,
        sets: &[&'a SelectionSet],
        mut fields: IndexMap<Name, Value>,
        path: &mut Vec<PathSegment>,
    ) -> Value {
        let concrete = match self.registry.types.get(ty) {
            Some(MetaType::Object { .. }) => Some(ty.to_string()),
            _ => match fields.get("__typename") {
                Some(Value::String(t)) => Some(t.clone()),
                _ => None,
            },
        };
        let mut collected = Vec::new();
        for set in sets {
            self.collect(ty, concrete.as_deref(), set, &mut collected, 0);
        }
        let mut out = IndexMap::with_capacity(fields.len());
        for c in collected {
            path.push(PathSegment::Field(c.key.to_string()));
            let value = fields.shift_remove(c.key);
            let done = match (value, c.ty) {
                (Some(v), Some(fty)) => self.complete(fty, &c.sets, v, path).map(Some),
                (Some(v), None) => Some(Some(v)),
                (None, Some(fty)) if self.failed_at_or_below(path) => {
                    if MetaTypeName::create(fty).is_non_null() {
                        None
                    } else {
                        Some(Some(Value::Null))
                    }
                }
                // Not in the response and no error explains why: leave it out as it was.
                (None, _) => Some(None),
            };
            path.pop();
            match done {
                Some(Some(v)) => {
                    out.insert(c.key.clone(), v);
                }
                Some(None) => {}
                None => return Value::Null,
            }
        }
        // Anything the walk did not foresee keeps its place after the rest.
        out.extend(fields);
        Value::Object(out)
    }

    /// The fields `set` selects on an object of static type `ty` (concrete type `concrete`
    /// when known), merged by response key in first-seen order.
    fn collect(
        &self,
        ty: &'a str,
        concrete: Option<&str>,
        set: &'a SelectionSet,
        out: &mut Vec<Collected<'a>>,
        depth: usize,
    ) {
        // Validation refused fragment cycles; this only bounds a document it let through.
        if depth > 32 {
            return;
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    if !self.included(&f.node.directives) {
                        continue;
                    }
                    let key = &f.node.response_key().node;
                    let name = f.node.name.node.as_str();
                    let sub = &f.node.selection_set.node;
                    if let Some(c) = out.iter_mut().find(|c| c.key == key) {
                        c.sets.push(sub);
                        continue;
                    }
                    let fty = self
                        .registry
                        .types
                        .get(ty)
                        .and_then(|t| t.field_by_name(name))
                        .map(|f| f.ty.as_str());
                    let fty = if name == "__typename" {
                        Some("String!")
                    } else {
                        fty
                    };
                    out.push(Collected {
                        key,
                        ty: fty,
                        sets: if sub.items.is_empty() {
                            vec![]
                        } else {
                            vec![sub]
                        },
                    });
                }
                Selection::InlineFragment(fr) => {
                    if !self.included(&fr.node.directives) {
                        continue;
                    }
                    let cond = fr
                        .node
                        .type_condition
                        .as_ref()
                        .map_or(ty, |c| c.node.on.node.as_str());
                    if self.applies(ty, cond, concrete) {
                        self.collect(cond, concrete, &fr.node.selection_set.node, out, depth + 1);
                    }
                }
                Selection::FragmentSpread(sp) => {
                    if !self.included(&sp.node.directives) {
                        continue;
                    }
                    let Some(fd) = self.doc.fragments.get(&sp.node.fragment_name.node) else {
                        continue;
                    };
                    let cond = fd.node.type_condition.node.on.node.as_str();
                    if self.applies(ty, cond, concrete) {
                        self.collect(cond, concrete, &fd.node.selection_set.node, out, depth + 1);
                    }
                }
            }
        }
    }

    /// Whether a fragment on `cond` applies to an object of static type `ty`. With the
    /// concrete type unknown it is assumed to: a field is only ever nulled when an error
    /// says it ran.
    fn applies(&self, ty: &str, cond: &str, concrete: Option<&str>) -> bool {
        if cond == ty {
            return true;
        }
        let Some(concrete) = concrete else {
            return true;
        };
        cond == concrete
            || self
                .registry
                .types
                .get(cond)
                .is_some_and(|t| t.is_possible_type(concrete))
    }

    /// `@skip` / `@include`, as the executor evaluates them.
    fn included(&self, directives: &[Positioned<Directive>]) -> bool {
        directives.iter().all(|d| {
            let on = || {
                d.node.get_argument("if").is_some_and(|v| {
                    v.node
                        .clone()
                        .into_const_with(|var| self.vars.get(&var).cloned().ok_or(()))
                        == Ok(Value::Boolean(true))
                })
            };
            match d.node.name.node.as_str() {
                "skip" => !on(),
                "include" => on(),
                _ => true,
            }
        })
    }
}
