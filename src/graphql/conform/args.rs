//! A strict check of every variable and argument value of an operation, run in validation:
//! each value must be one its input type's resolver will accept, so that no value is first
//! found invalid during execution (after a mutation has run, or never, below a field that
//! resolved to null).
use async_graphql::{
    parser::types::{ExecutableDocument, OperationDefinition, Selection, SelectionSet},
    registry::{MetaType, MetaTypeName, Registry},
    Pos, Positioned, ServerError, Value, Variables,
};

/// Every invalid value of `op`: the variables, or when they are valid every argument in
/// document order.
pub fn check(
    registry: &Registry,
    doc: &ExecutableDocument,
    op: &Positioned<OperationDefinition>,
    vars: &Variables,
) -> Vec<ServerError> {
    let mut errors = Vec::new();
    for def in &op.node.variable_definitions {
        let name = &def.node.name.node;
        let value = match vars.get(name) {
            Some(v) => v.clone(),
            None => match &def.node.default_value {
                Some(d) => d.node.clone(),
                None => continue,
            },
        };
        if let Err(why) = value_of(registry, &def.node.var_type.node.to_string(), &value) {
            errors.push(ServerError::new(
                format!("Variable `${name}` is invalid: {why}"),
                Some(def.pos),
            ));
        }
    }
    // A bad variable would be reported again at each argument it is used in.
    if !errors.is_empty() {
        return errors;
    }
    let root = match op.node.ty {
        async_graphql::parser::types::OperationType::Query => Some(registry.query_type.as_str()),
        async_graphql::parser::types::OperationType::Mutation => registry.mutation_type.as_deref(),
        async_graphql::parser::types::OperationType::Subscription => {
            registry.subscription_type.as_deref()
        }
    };
    if let Some(root) = root {
        let mut walk = Walk {
            registry,
            doc,
            op,
            vars,
            errors: &mut errors,
            path: Vec::new(),
        };
        walk.set(root, &op.node.selection_set.node, 0);
    }
    errors
}

struct Walk<'a, 'e> {
    registry: &'a Registry,
    doc: &'a ExecutableDocument,
    op: &'a Positioned<OperationDefinition>,
    vars: &'a Variables,
    errors: &'e mut Vec<ServerError>,
    path: Vec<&'a str>,
}

impl<'a> Walk<'a, '_> {
    fn set(&mut self, ty: &'a str, set: &'a SelectionSet, depth: usize) {
        // Validation already refused fragment cycles; this only bounds the walk.
        if depth > 64 {
            return;
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    let Some(field) = self
                        .registry
                        .types
                        .get(ty)
                        .and_then(|t| t.field_by_name(name))
                    else {
                        continue;
                    };
                    self.path.push(f.node.response_key().node.as_str());
                    for (arg, value) in &f.node.arguments {
                        let Some(meta) = field.args.get(arg.node.as_str()) else {
                            continue;
                        };
                        let defaults = &self.op.node.variable_definitions;
                        let value = value.node.clone().into_const_with(|var| {
                            self.vars
                                .get(&var)
                                .cloned()
                                .or_else(|| {
                                    defaults
                                        .iter()
                                        .find(|d| d.node.name.node == var)
                                        .and_then(|d| d.node.default_value().cloned())
                                })
                                .ok_or(())
                        });
                        // An undefined variable is refused by validation's own rules.
                        if let Ok(value) = value {
                            self.argument(&arg.node, &meta.ty, &value, arg.pos);
                        }
                    }
                    let inner = MetaTypeName::concrete_typename(&field.ty);
                    self.set(inner, &f.node.selection_set.node, depth + 1);
                    self.path.pop();
                }
                Selection::InlineFragment(fr) => {
                    let cond = fr
                        .node
                        .type_condition
                        .as_ref()
                        .map_or(ty, |c| c.node.on.node.as_str());
                    self.set(cond, &fr.node.selection_set.node, depth + 1);
                }
                Selection::FragmentSpread(sp) => {
                    if let Some(fd) = self.doc.fragments.get(&sp.node.fragment_name.node) {
                        let cond = fd.node.type_condition.node.on.node.as_str();
                        self.set(cond, &fd.node.selection_set.node, depth + 1);
                    }
                }
            }
        }
    }

    fn argument(&mut self, name: &str, ty: &str, value: &Value, pos: Pos) {
        if let Err(why) = value_of(self.registry, ty, value) {
            self.errors.push(ServerError::new(
                format!(
                    "Argument `{name}` of `{}` is invalid: {why}",
                    self.path.join(".")
                ),
                Some(pos),
            ));
        }
    }
}

/// Whether `value` is a valid `ty` (a type reference such as `[Int!]!`), and if not why.
pub fn value_of(registry: &Registry, ty: &str, value: &Value) -> Result<(), String> {
    match MetaTypeName::create(ty) {
        MetaTypeName::NonNull(inner) => match value {
            Value::Null => Err(format!("expected a non-null {inner}.")),
            v => value_of(registry, inner, v),
        },
        MetaTypeName::List(inner) => match value {
            Value::List(items) => items.iter().enumerate().try_for_each(|(i, v)| {
                value_of(registry, inner, v).map_err(|e| format!("item {i}: {e}"))
            }),
            Value::Null => Ok(()),
            // A single value stands for a list of one (input coercion).
            v => value_of(registry, inner, v),
        },
        MetaTypeName::Named(_) if *value == Value::Null => Ok(()),
        MetaTypeName::Named(name) => named(registry, name, value),
    }
}

fn named(registry: &Registry, name: &str, value: &Value) -> Result<(), String> {
    fn parsed<T: async_graphql::InputType>(value: &Value) -> Result<(), String> {
        T::parse(Some(value.clone())).map(|_| ()).map_err(|e| {
            let msg = e.into_server_error(Pos::default()).message;
            format!("{msg}.").replace("..", ".")
        })
    }
    match registry.types.get(name) {
        // The built-in scalars and this schema's own, by the resolvers' own parsers.
        Some(MetaType::Scalar { is_valid, .. }) => match name {
            "Int" => parsed::<i32>(value),
            "Float" => parsed::<f64>(value),
            "String" => parsed::<String>(value),
            "Boolean" => parsed::<bool>(value),
            "ID" => parsed::<async_graphql::ID>(value),
            "DateTime" => parsed::<chrono::DateTime<chrono::Utc>>(value),
            _ => match is_valid {
                Some(ok) if !ok(value) => Err(format!("expected a {name}.")),
                _ => Ok(()),
            },
        },
        Some(MetaType::Enum { enum_values, .. }) => match value {
            // Variables arrive from JSON as strings.
            Value::Enum(v) if enum_values.contains_key(v.as_str()) => Ok(()),
            Value::String(v) if enum_values.contains_key(v.as_str()) => Ok(()),
            _ => Err(format!(
                "expected one of {name}: {}.",
                enum_values.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        },
        Some(MetaType::InputObject { input_fields, .. }) => {
            let Value::Object(given) = value else {
                return Err(format!("expected an input object {name}."));
            };
            if let Some(unknown) = given
                .keys()
                .find(|k| !input_fields.contains_key(k.as_str()))
            {
                return Err(format!("{name} has no field `{unknown}`."));
            }
            for (field, meta) in input_fields {
                match given.get(field.as_str()) {
                    Some(v) => value_of(registry, &meta.ty, v)
                        .map_err(|e| format!("field `{field}`: {e}"))?,
                    None if meta.ty.ends_with('!') && meta.default_value.is_none() => {
                        return Err(format!("{name}.{field} is required."))
                    }
                    None => {}
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
