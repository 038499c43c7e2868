//! Evaluates a resource's search parameters into index rows.
//!
//! For each parameter that applies to the resource's type, the branches of its expression that
//! apply are evaluated (see [`crate::registry::branch`]), and every value found becomes rows by
//! the parameter's type and the value's FHIR type, one module per parameter type. Composites
//! evaluate their components on each value of their own expression. Then `meta` gives the tag
//! rows, the narrative and every string give the full-text fields, and identical rows are
//! removed.
//!
//! Extraction never fails as a whole: an expression the evaluator rejects, or a value that is
//! not what its type says (a date that is no date), is reported in
//! [`ResourceIndex::problems`] with the parameter's code, and the other rows are kept.

mod composite;
mod coords;
mod date;
mod meta;
mod node;
mod number;
mod quantity;
mod reference;
mod string;
#[cfg(test)]
mod testing;
mod text;
mod token;
mod uri;

use fhirpath::Item;
use serde_json::Value;

use crate::index::CompositePart;
use crate::registry::{Indexing, ParamType};
use crate::{Registry, ResourceIndex};

use self::node::Node;

/// What extraction needs to know about the server.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// This server's FHIR base URL (`http://localhost:8080/fhir`): absolute references on it
    /// are local.
    pub base_url: Option<String>,
}

/// The index rows of `resource` (of type `resourceType`) under every parameter that applies.
pub fn index_resource(
    registry: &Registry,
    options: &ExtractOptions,
    resource: &Value,
) -> ResourceIndex {
    let mut out = ResourceIndex::default();
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
        out.problems
            .push("the resource has no resourceType: nothing indexed".to_owned());
        return out;
    };
    let ctx = Context {
        root: resource,
        resource_type,
        base_url: options
            .base_url
            .as_deref()
            .map(|base| base.trim_end_matches('/'))
            .filter(|base| !base.is_empty()),
    };

    for applicable in registry.applicable(resource_type) {
        let param = registry.param(applicable.param);
        if param.indexing != Indexing::Indexed {
            continue;
        }
        let mut next_group = 0i32;
        for &branch_index in &applicable.branches {
            let branch = &param.branches[branch_index];
            if param.kind == ParamType::Composite {
                composite::extract(&ctx, &mut out, param, branch, &mut next_group);
                continue;
            }
            let items = match branch.expression.evaluate(resource) {
                Ok(items) => items,
                Err(error) => {
                    out.problems.push(format!("{}: {error}", param.code));
                    continue;
                }
            };
            let target = Target {
                code: &param.code,
                kind: param.kind,
                composite: None,
                source_path: &branch.source_path,
                targets: &param.target,
            };
            for item in &items {
                emit(&ctx, &mut out, &target, item);
            }
        }
    }

    meta::tags(resource, &mut out.tags);
    out.narrative = text::narrative(resource);
    out.content = text::content(resource);
    dedupe(&mut out);
    out
}

/// The resource being indexed and the server facts extraction needs.
pub(crate) struct Context<'a> {
    pub root: &'a Value,
    pub resource_type: &'a str,
    /// The base URL without a trailing slash.
    pub base_url: Option<&'a str>,
}

/// Where the rows of one parameter (or one composite component) go.
pub(crate) struct Target<'p> {
    /// The parameter's code: the `param` of every row.
    pub code: &'p str,
    /// The type that decides the table (a component's own type inside a composite).
    pub kind: ParamType,
    pub composite: Option<CompositePart>,
    /// The element path, for link rows.
    pub source_path: &'p str,
    /// Allowed reference target types, empty when unrestricted.
    pub targets: &'p [String],
}

impl Target<'_> {
    /// Records a problem with a value of this parameter.
    pub fn problem(&self, out: &mut ResourceIndex, message: impl std::fmt::Display) {
        out.problems.push(format!("{}: {message}", self.code));
    }

    pub fn allows_target(&self, resource_type: &str) -> bool {
        self.targets.is_empty()
            || self
                .targets
                .binary_search_by(|t| t.as_str().cmp(resource_type))
                .is_ok()
    }
}

/// Turns one result item into rows. Items that are not values (a `resolve()` result) give none;
/// the match is written so that variants the evaluator adds later are skipped the same way.
pub(crate) fn emit(
    ctx: &Context<'_>,
    out: &mut ResourceIndex,
    target: &Target<'_>,
    item: &Item<'_>,
) {
    let node = if let Item::Node {
        value,
        type_name,
        code_system,
    } = item
    {
        let typed = Typed {
            name: type_name.as_deref(),
            code_system: *code_system,
        };
        emit_value(ctx, out, target, value, typed, 0);
        return;
    } else if let Item::Boolean(value) = item {
        Node::Bool(*value)
    } else if let Item::String(text) = item {
        Node::Text { text, ty: "string" }
    } else if let Item::Integer(value) = item {
        Node::Int(*value)
    } else if let Item::Decimal(text) = item {
        Node::Text {
            text,
            ty: "decimal",
        }
    } else {
        return;
    };
    dispatch(ctx, out, target, node);
}

fn emit_value(
    ctx: &Context<'_>,
    out: &mut ResourceIndex,
    target: &Target<'_>,
    value: &Value,
    typed: Typed<'_>,
    depth: usize,
) {
    match value {
        Value::Null => {}
        // The evaluator flattens collections; an array here is defensive, one level deep.
        Value::Array(values) if depth == 0 => {
            for value in values {
                emit_value(ctx, out, target, value, typed, depth + 1);
            }
        }
        Value::Array(_) => {}
        _ => {
            let ty = node::resolve_type(value, typed.name, target.kind);
            let code_system = typed.code_system;
            dispatch(
                ctx,
                out,
                target,
                Node::Json {
                    value,
                    ty,
                    code_system,
                },
            );
        }
    }
}

/// What the evaluator said about a node's type.
#[derive(Clone, Copy)]
struct Typed<'t> {
    name: Option<&'t str>,
    code_system: Option<&'static str>,
}

fn dispatch(ctx: &Context<'_>, out: &mut ResourceIndex, target: &Target<'_>, node: Node<'_>) {
    match target.kind {
        ParamType::String => string::extract(out, target, node),
        ParamType::Token => token::extract(ctx, out, target, node),
        ParamType::Date => date::extract(out, target, node),
        ParamType::Number => number::extract(out, target, node),
        ParamType::Quantity => quantity::extract(out, target, node),
        ParamType::Uri => uri::extract(out, target, node),
        ParamType::Reference => reference::extract(ctx, out, target, node),
        ParamType::Special => coords::extract(out, target, node),
        // R4 has no composite made of composites.
        ParamType::Composite => {}
    }
}

/// Sorts every table and removes identical rows.
fn dedupe(out: &mut ResourceIndex) {
    fn sort_dedup<T: Ord>(rows: &mut Vec<T>) {
        rows.sort_unstable();
        rows.dedup();
    }
    sort_dedup(&mut out.strings);
    sort_dedup(&mut out.tokens);
    sort_dedup(&mut out.dates);
    sort_dedup(&mut out.numbers);
    sort_dedup(&mut out.quantities);
    sort_dedup(&mut out.uris);
    sort_dedup(&mut out.links);
    sort_dedup(&mut out.tags);
    out.problems.dedup();
    out.coords
        .sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    out.coords.dedup();
}
