//! The FHIRPath functions this evaluator supports, applied to an input collection.
//!
//! The R4 search parameters use `where`, `exists`, `as` and `resolve`; the others here are
//! the common collection functions (`first`, `ofType`, `extension`, ...) that expressions
//! written for this server are likely to need. Unknown functions are refused when parsing.

use crate::ast::{Expr, Function};
use crate::eval::{
    Env, Failure, Seen, evaluate, for_each_item, integer_argument, singleton, to_boolean,
};
use crate::resolve;
use crate::value::Val;

/// Applies `function` to `focus`; `outer` is the input its non-criteria arguments (such as the
/// url of `extension(url)`) are evaluated on.
pub(crate) fn call<'a>(
    function: &Function,
    focus: &[Val<'a>],
    outer: &[Val<'a>],
    env: &Env<'a>,
) -> Result<Vec<Val<'a>>, Failure> {
    let boolean = |value: bool| Ok(vec![Val::Boolean(value)]);
    match function {
        Function::Where(criteria) => filter(criteria, focus, env, "where()"),
        Function::Select(projection) => {
            let mut out = Vec::with_capacity(focus.len());
            for (_, result) in for_each_item(projection, focus, env) {
                out.extend(result?);
            }
            Ok(out)
        }
        Function::All(criteria) => {
            for (_, result) in for_each_item(criteria, focus, env) {
                if to_boolean(&result?, "all()")? != Some(true) {
                    return boolean(false);
                }
            }
            boolean(true)
        }
        Function::Exists(None) => boolean(!focus.is_empty()),
        Function::Exists(Some(criteria)) => {
            boolean(!filter(criteria, focus, env, "exists()")?.is_empty())
        }
        Function::Empty => boolean(focus.is_empty()),
        Function::Not => Ok(to_boolean(focus, "not()")?
            .map(|value| Val::Boolean(!value))
            .into_iter()
            .collect()),
        Function::First => Ok(focus.first().cloned().into_iter().collect()),
        Function::Last => Ok(focus.last().cloned().into_iter().collect()),
        Function::Tail => Ok(focus.iter().skip(1).cloned().collect()),
        Function::Skip(count) => {
            let count = count_argument(count, outer, env, "skip()")?;
            Ok(focus.iter().skip(count).cloned().collect())
        }
        Function::Take(count) => {
            let count = count_argument(count, outer, env, "take()")?;
            Ok(focus.iter().take(count).cloned().collect())
        }
        Function::Single => Ok(singleton(focus, "single()")?.cloned().into_iter().collect()),
        Function::Count => Ok(vec![Val::Integer(
            i64::try_from(focus.len()).unwrap_or(i64::MAX),
        )]),
        Function::Distinct => {
            let mut out = Vec::with_capacity(focus.len());
            let mut seen = Seen::default();
            for item in focus {
                if seen.first_time(item, &out) {
                    out.push(item.clone());
                }
            }
            Ok(out)
        }
        Function::OfType(type_specifier) | Function::As(type_specifier) => Ok(focus
            .iter()
            .filter(|item| type_specifier.matches(item))
            .cloned()
            .collect()),
        Function::Is(type_specifier) => Ok(singleton(focus, "is()")?
            .map(|item| Val::Boolean(type_specifier.matches(item)))
            .into_iter()
            .collect()),
        Function::Resolve => {
            let mut out = Vec::with_capacity(focus.len());
            for item in focus {
                resolve::resolve(item, env, &mut out);
            }
            Ok(out)
        }
        Function::Extension(url) => extension(url, focus, outer, env),
        Function::HasValue => boolean(matches!(
            focus,
            [Val::Node(node)] if !node.value.is_object() && !node.value.is_array()
        )),
    }
}

/// The items of `focus` for which `criteria` is true.
fn filter<'a>(
    criteria: &Expr,
    focus: &[Val<'a>],
    env: &Env<'a>,
    operation: &'static str,
) -> Result<Vec<Val<'a>>, Failure> {
    let mut out = Vec::new();
    for (item, result) in for_each_item(criteria, focus, env) {
        if to_boolean(&result?, operation)? == Some(true) {
            out.push(item.clone());
        }
    }
    Ok(out)
}

fn count_argument<'a>(
    argument: &Expr,
    outer: &[Val<'a>],
    env: &Env<'a>,
    operation: &'static str,
) -> Result<usize, Failure> {
    let count = integer_argument(&evaluate(argument, outer, env)?, operation)?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// `extension(url)`: the `extension` children whose `url` is `url`.
fn extension<'a>(
    url: &Expr,
    focus: &[Val<'a>],
    outer: &[Val<'a>],
    env: &Env<'a>,
) -> Result<Vec<Val<'a>>, Failure> {
    let argument = evaluate(url, outer, env)?;
    let wanted = match singleton(&argument, "extension()")? {
        Some(item) => item.as_str().ok_or_else(|| Failure::WrongArgument {
            operation: "extension()",
            expected: "a url string",
            found: item.describe(),
        })?,
        None => return Ok(Vec::new()),
    };
    let mut extensions = Vec::new();
    for item in focus {
        if let Val::Node(node) = item {
            node.push_children("extension", &mut extensions);
        }
    }
    extensions.retain(|extension| match extension {
        Val::Node(node) => node.value.get("url").and_then(|u| u.as_str()) == Some(wanted),
        _ => false,
    });
    Ok(extensions)
}
