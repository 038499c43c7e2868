//! Evaluates a syntax tree on a resource: paths, operators and type tests.
//!
//! An expression maps an input collection to an output collection. At the top the input is
//! the resource; inside a function argument such as `where(...)` it is one item (`$this`).
//! Results are [`Val`]s borrowing the resource JSON, typed from the element model as they are
//! reached. Functions live in [`crate::functions`].

use std::borrow::Cow;
use std::collections::HashSet;
use std::slice;

use serde_json::Value;

use crate::ast::{BinaryOp, Expr, TypeOp, Variable};
use crate::functions;
use crate::types::{Node, is_fhir_type};
use crate::value::{Val, compare, equal, equivalent};

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("{operation} needs a single item, but got {count}")]
    NotSingleton {
        operation: &'static str,
        count: usize,
    },
    #[error("{operation} needs {expected}, but got {found}")]
    WrongArgument {
        operation: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("cannot compare {left} with {right}")]
    Incomparable { left: String, right: String },
    #[error("{0} is not supported")]
    Unsupported(&'static str),
}

/// What an evaluation runs in: the resource, and where it started.
pub(crate) struct Env<'a> {
    /// The resource JSON (`%resource`); contained references resolve inside it.
    pub root: &'a Value,
    /// The resource as an item.
    pub resource: Val<'a>,
    /// `%context`: the item the evaluation started from.
    pub context: Val<'a>,
}

impl<'a> Env<'a> {
    /// An evaluation of `root` that starts at `context` (the resource itself unless given).
    pub fn new(root: &'a Value, context: Option<Val<'a>>) -> Env<'a> {
        let resource = Val::Node(Node::resource(root));
        Env {
            root,
            context: context.unwrap_or_else(|| resource.clone()),
            resource,
        }
    }
}

/// Evaluates `expr` on the collection `input`.
pub(crate) fn evaluate<'a>(
    expr: &Expr,
    input: &[Val<'a>],
    env: &Env<'a>,
) -> Result<Vec<Val<'a>>, Failure> {
    match expr {
        Expr::Empty => Ok(Vec::new()),
        Expr::Literal(literal) => Ok(vec![Val::from_literal(literal)]),
        Expr::This => Ok(input.to_vec()),
        Expr::Variable(Variable::Resource | Variable::RootResource) => {
            Ok(vec![env.resource.clone()])
        }
        Expr::Variable(Variable::Context) => Ok(vec![env.context.clone()]),
        Expr::Identifier(name) => Ok(identifier(name, input)),
        Expr::Member { base, name } => {
            let items = evaluate(base, input, env)?;
            let mut out = Vec::with_capacity(items.len());
            for item in &items {
                if let Val::Node(node) = item {
                    node.push_children(name, &mut out);
                }
            }
            Ok(out)
        }
        Expr::Call { base, function } => {
            let focus = match base {
                Some(base) => Cow::Owned(evaluate(base, input, env)?),
                None => Cow::Borrowed(input),
            };
            functions::call(function, &focus, input, env)
        }
        Expr::Index { base, index } => {
            let items = evaluate(base, input, env)?;
            let index = evaluate(index, input, env)?;
            let position = integer_argument(&index, "an indexer")?;
            Ok(usize::try_from(position)
                .ok()
                .and_then(|position| items.into_iter().nth(position))
                .into_iter()
                .collect())
        }
        Expr::Binary { op, lhs, rhs } => binary(*op, lhs, rhs, input, env),
        Expr::TypeOperation {
            op,
            operand,
            type_specifier,
        } => {
            let items = evaluate(operand, input, env)?;
            match op {
                TypeOp::Is => {
                    let Some(item) = singleton(&items, "`is`")? else {
                        return Ok(Vec::new());
                    };
                    Ok(vec![Val::Boolean(type_specifier.matches(item))])
                }
                // R4 search parameters apply `as` to collections (`Observation.component.value
                // as Quantity`), so it filters like `ofType` instead of requiring one item.
                TypeOp::As => Ok(items
                    .into_iter()
                    .filter(|item| type_specifier.matches(item))
                    .collect()),
            }
        }
    }
}

/// A name at the start of a path: an input item whose type it names (`Patient` on a Patient,
/// `Resource` on any resource), or else the input's children of that name. Only capitalised
/// names are type names: every FHIR element name starts in lower case.
fn identifier<'a>(name: &str, input: &[Val<'a>]) -> Vec<Val<'a>> {
    let type_name = name.starts_with(|c: char| c.is_ascii_uppercase());
    let mut out = Vec::new();
    for item in input {
        match item {
            Val::Node(node) => {
                if type_name && node.ty.code.is_some_and(|code| is_fhir_type(code, name)) {
                    out.push(item.clone());
                } else {
                    node.push_children(name, &mut out);
                }
            }
            Val::Resolved { resource_type, .. }
                if type_name && is_fhir_type(resource_type, name) =>
            {
                out.push(item.clone());
            }
            _ => {}
        }
    }
    out
}

/// The only item of `items`, `None` if there is none, an error if there are several.
pub(crate) fn singleton<'v, 'a>(
    items: &'v [Val<'a>],
    operation: &'static str,
) -> Result<Option<&'v Val<'a>>, Failure> {
    match items {
        [] => Ok(None),
        [item] => Ok(Some(item)),
        _ => Err(Failure::NotSingleton {
            operation,
            count: items.len(),
        }),
    }
}

/// A collection where a Boolean is expected: empty is unknown, a Boolean is itself, any other
/// single item is `true` (FHIRPath singleton evaluation), several items are an error.
pub(crate) fn to_boolean(
    items: &[Val<'_>],
    operation: &'static str,
) -> Result<Option<bool>, Failure> {
    Ok(singleton(items, operation)?.map(|item| item.as_boolean().unwrap_or(true)))
}

/// The single integer of an argument collection.
pub(crate) fn integer_argument(items: &[Val<'_>], operation: &'static str) -> Result<i64, Failure> {
    let wrong = |found: String| Failure::WrongArgument {
        operation,
        expected: "an integer",
        found,
    };
    match singleton(items, operation)? {
        Some(item) => item.as_integer().ok_or_else(|| wrong(item.describe())),
        None => Err(wrong("nothing".to_owned())),
    }
}

fn binary<'a>(
    op: BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
    input: &[Val<'a>],
    env: &Env<'a>,
) -> Result<Vec<Val<'a>>, Failure> {
    match op {
        BinaryOp::And | BinaryOp::Or | BinaryOp::Xor | BinaryOp::Implies => {
            logic(op, lhs, rhs, input, env)
        }
        _ => {
            let left = evaluate(lhs, input, env)?;
            let right = evaluate(rhs, input, env)?;
            Ok(match op {
                BinaryOp::Union => union(left, right),
                BinaryOp::Equal => equality(&left, &right)
                    .map(Val::Boolean)
                    .into_iter()
                    .collect(),
                BinaryOp::NotEqual => equality(&left, &right)
                    .map(|equal| Val::Boolean(!equal))
                    .into_iter()
                    .collect(),
                BinaryOp::Equivalent => vec![Val::Boolean(equivalence(&left, &right))],
                BinaryOp::NotEquivalent => vec![Val::Boolean(!equivalence(&left, &right))],
                BinaryOp::In => membership(&left, &right, "`in`")?,
                BinaryOp::Contains => membership(&right, &left, "`contains`")?,
                _ => ordering(op, &left, &right)?,
            })
        }
    }
}

/// `|`: both collections in order, each item once.
fn union<'a>(left: Vec<Val<'a>>, right: Vec<Val<'a>>) -> Vec<Val<'a>> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut seen = Seen::default();
    for item in left.into_iter().chain(right) {
        if seen.first_time(&item, &out) {
            out.push(item);
        }
    }
    out
}

/// Tells whether an item is already in a collection being built, by [`Val::same_item`]. Small
/// collections (the usual case) are scanned; nodes of larger ones are looked up by identity.
#[derive(Default)]
pub(crate) struct Seen {
    nodes: Option<HashSet<(*const Value, Option<&'static str>)>>,
}

/// Up to this many items, scanning beats hashing.
const SCAN_LIMIT: usize = 16;

impl Seen {
    /// Whether `item` is not yet in `collected` (the items pushed so far).
    pub fn first_time(&mut self, item: &Val<'_>, collected: &[Val<'_>]) -> bool {
        let Val::Node(node) = item else {
            return !collected.iter().any(|seen| seen.same_item(item));
        };
        if collected.len() < SCAN_LIMIT && self.nodes.is_none() {
            return !collected.iter().any(|seen| seen.same_item(item));
        }
        let nodes = self.nodes.get_or_insert_with(|| {
            collected
                .iter()
                .filter_map(|seen| match seen {
                    Val::Node(node) => Some((node.value as *const Value, node.ty.code)),
                    _ => None,
                })
                .collect()
        });
        nodes.insert((node.value as *const Value, node.ty.code))
    }
}

/// `=`: unknown if either side is empty, else whether both hold equal items in the same order.
fn equality(left: &[Val<'_>], right: &[Val<'_>]) -> Option<bool> {
    if left.is_empty() || right.is_empty() {
        return None;
    }
    Some(left.len() == right.len() && left.iter().zip(right).all(|(a, b)| equal(a, b)))
}

/// `~`: whether both hold equivalent items, in any order (two empty collections are).
fn equivalence(left: &[Val<'_>], right: &[Val<'_>]) -> bool {
    left.len() == right.len() && left.iter().all(|a| right.iter().any(|b| equivalent(a, b)))
}

/// `item in collection`.
fn membership<'a>(
    item: &[Val<'a>],
    collection: &[Val<'a>],
    operation: &'static str,
) -> Result<Vec<Val<'a>>, Failure> {
    Ok(singleton(item, operation)?
        .map(|item| Val::Boolean(collection.iter().any(|other| equal(item, other))))
        .into_iter()
        .collect())
}

fn ordering<'a>(
    op: BinaryOp,
    left: &[Val<'a>],
    right: &[Val<'a>],
) -> Result<Vec<Val<'a>>, Failure> {
    let (Some(a), Some(b)) = (
        singleton(left, "a comparison")?,
        singleton(right, "a comparison")?,
    ) else {
        return Ok(Vec::new());
    };
    let order = compare(a, b)?;
    let result = match op {
        BinaryOp::Less => order.is_lt(),
        BinaryOp::LessOrEqual => order.is_le(),
        BinaryOp::Greater => order.is_gt(),
        _ => order.is_ge(),
    };
    Ok(vec![Val::Boolean(result)])
}

/// `and`, `or`, `xor`, `implies` with FHIRPath's three-valued logic (empty is unknown). The
/// right side is not evaluated when the left decides the result.
fn logic<'a>(
    op: BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
    input: &[Val<'a>],
    env: &Env<'a>,
) -> Result<Vec<Val<'a>>, Failure> {
    let name = match op {
        BinaryOp::And => "`and`",
        BinaryOp::Or => "`or`",
        BinaryOp::Xor => "`xor`",
        _ => "`implies`",
    };
    let left = to_boolean(&evaluate(lhs, input, env)?, name)?;
    let decided = match (op, left) {
        (BinaryOp::And, Some(false)) => Some(false),
        (BinaryOp::Or, Some(true)) | (BinaryOp::Implies, Some(false)) => Some(true),
        _ => None,
    };
    if let Some(result) = decided {
        return Ok(vec![Val::Boolean(result)]);
    }
    let right = to_boolean(&evaluate(rhs, input, env)?, name)?;
    let result = match op {
        BinaryOp::And => match (left, right) {
            (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        BinaryOp::Or => match (left, right) {
            (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        BinaryOp::Xor => left.zip(right).map(|(a, b)| a != b),
        // `implies` with a true or unknown left side.
        _ => match (left, right) {
            (_, Some(true)) => Some(true),
            (Some(true), other) => other,
            _ => None,
        },
    };
    Ok(result.map(Val::Boolean).into_iter().collect())
}

/// Evaluates `expr` once per item of `focus`, each time with that item as `$this`.
pub(crate) fn for_each_item<'a, 'f>(
    expr: &Expr,
    focus: &'f [Val<'a>],
    env: &Env<'a>,
) -> impl Iterator<Item = (&'f Val<'a>, Result<Vec<Val<'a>>, Failure>)> {
    focus
        .iter()
        .map(move |item| (item, evaluate(expr, slice::from_ref(item), env)))
}
