//! A FHIRPath evaluator for the expressions of the FHIR R4 SearchParameter definitions.
//!
//! The projection service turns every resource into search-index rows by evaluating each search
//! parameter's `expression` on it; this crate is that evaluation. It is pure: no I/O, and
//! `resolve()` answers only what the reference text itself says (its type), which is all the
//! R4 definitions ask of it (`where(resolve() is Patient)`).
//!
//! Contract used by `fhir-search` (keep these signatures):
//! - [`Expression::parse`] compiles once; [`Expression::evaluate`] runs on a resource;
//!   [`Expression::evaluate_on`] runs relative to an item (composite components).
//! - Results that are parts of the input are [`Item::Node`]s borrowing the JSON, with their FHIR
//!   type name where it is known (`"Period"`, `"dateTime"`, `"CodeableConcept"`, ...).
//!
//! Node types come from the R4 element model (`fhir_model::ElementModel`, built from the
//! StructureDefinitions), so a choice element reached as `Observation.value` is typed by the
//! property actually present (`valueQuantity` is a `Quantity`), and `as`/`ofType`/`is` test
//! those types.
//!
//! Supported: paths (with the leading type name), `|`, `=`, `!=`, `~`, `!~`, `<`, `<=`, `>`,
//! `>=`, `in`, `contains`, `and`, `or`, `xor`, `implies`, `is`, `as`, indexers, `$this`,
//! `%resource`, `%rootResource`, `%context`, `%ucum`/`%sct`/`%loinc`, string, integer,
//! decimal and Boolean literals, `{}`, and the functions `where`, `select`, `all`, `exists`,
//! `empty`, `not`, `first`, `last`, `tail`, `skip`, `take`, `single`, `count`, `distinct`,
//! `ofType`, `as`, `is`, `resolve`, `extension`, `hasValue`. Anything else (arithmetic, date
//! literals, other functions) is refused by [`Expression::parse`], never evaluated wrongly.
//!
//! Module map: `lexer` and `parser` build the `ast`; `eval` walks it, with `functions` and
//! `resolve`; `types` types nodes from the element model; `value` holds the internal item
//! type and comparisons.

mod ast;
mod eval;
mod functions;
mod lexer;
mod parser;
mod resolve;
mod types;
mod value;

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use crate::ast::Expr;
use crate::eval::Env;
use crate::value::Val;

/// A compiled FHIRPath expression. Parse once, evaluate many times; it is `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
    ast: Expr,
}

/// The expression text is not valid FHIRPath, or uses something this evaluator does not know.
#[derive(Debug, thiserror::Error)]
#[error("cannot parse FHIRPath `{expression}`: {reason}")]
pub struct ParseError {
    /// The expression text.
    pub expression: String,
    /// What is wrong, with the byte offset where it was found.
    pub reason: String,
}

/// Evaluation failed (for example a function applied to a collection of more than one item).
#[derive(Debug, thiserror::Error)]
#[error("cannot evaluate FHIRPath `{expression}`: {reason}")]
pub struct EvalError {
    /// The expression text.
    pub expression: String,
    /// What went wrong.
    pub reason: String,
}

/// One item of a FHIRPath result collection.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    /// A part of the input resource, with its FHIR type name where known: the declared type
    /// of its element (`"dateTime"`, `"Period"`, `"Age"`, `"code"`), the resource type for
    /// resources, `"BackboneElement"` or `"Element"` for inline structures, `None` for JSON
    /// the R4 model does not describe.
    Node {
        /// The JSON of the node (never an array: collections are flattened).
        value: &'a Value,
        /// Its FHIR type name, as above.
        type_name: Option<Cow<'static, str>>,
        /// For a `code` whose element is bound to a value set of one code system, that system
        /// (`Patient.gender`: `http://hl7.org/fhir/administrative-gender`).
        code_system: Option<&'static str>,
    },
    /// A Boolean computed by the expression (`exists()`, `=`, `and`, ...).
    Boolean(bool),
    /// A string computed by the expression (a literal, `%ucum`).
    String(String),
    /// An integer computed by the expression (a literal, `count()`).
    Integer(i64),
    /// A decimal, kept as its literal text so no precision is lost.
    Decimal(String),
    /// What `resolve()` gives for a reference to a resource outside the one evaluated: only
    /// its type, read from the reference text (`Patient/123` is a `Patient`).
    Resolved {
        /// The resource type the reference names.
        resource_type: &'static str,
        /// The reference text it was resolved from.
        reference: &'a str,
    },
}

impl<'a> Item<'a> {
    /// The item's type: the FHIR type name of a node or resolved reference (lower case for
    /// FHIR primitives, such as `"dateTime"`), or the FHIRPath system type of a value computed
    /// by the expression (`"Boolean"`, `"String"`, `"Integer"`, `"Decimal"`).
    pub fn type_name(&self) -> Option<&str> {
        match self {
            Item::Node { type_name, .. } => type_name.as_deref(),
            Item::Resolved { resource_type, .. } => Some(resource_type),
            Item::Boolean(_) => Some("Boolean"),
            Item::String(_) => Some("String"),
            Item::Integer(_) => Some("Integer"),
            Item::Decimal(_) => Some("Decimal"),
        }
    }

    /// The JSON of a node.
    pub fn as_json(&self) -> Option<&'a Value> {
        match self {
            Item::Node { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The text of a string-valued node or a computed string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Item::Node { value, .. } => value.as_str(),
            Item::String(text) => Some(text),
            _ => None,
        }
    }
}

/// A syntax error and the byte offset in the expression where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

impl SyntaxError {
    pub(crate) fn new(offset: usize, message: impl Into<String>) -> Self {
        SyntaxError {
            offset,
            message: message.into(),
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}: {}", self.offset, self.message)
    }
}

impl Expression {
    /// Compiles `source`. Type names are checked against the FHIR element model here, and
    /// unsupported constructs are refused here, so evaluation never meets them.
    pub fn parse(source: &str) -> Result<Self, ParseError> {
        let ast = lexer::tokenize(source)
            .and_then(|tokens| parser::parse(&tokens))
            .map_err(|error| ParseError {
                expression: source.to_owned(),
                reason: error.to_string(),
            })?;
        Ok(Self {
            source: source.to_owned(),
            ast,
        })
    }

    /// The text this expression was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates on `resource`, which is also `%resource` and `%rootResource`.
    pub fn evaluate<'a>(&self, resource: &'a Value) -> Result<Vec<Item<'a>>, EvalError> {
        let env = Env::new(resource, None);
        self.run(std::slice::from_ref(&env.resource), &env)
    }

    /// Evaluates with `focus` as the input collection, inside `resource`.
    pub fn evaluate_on<'a>(
        &self,
        resource: &'a Value,
        focus: &Item<'a>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        let focus = Val::from_item(focus, resource);
        let env = Env::new(resource, Some(focus.clone()));
        self.run(std::slice::from_ref(&focus), &env)
    }

    fn run<'a>(&self, input: &[Val<'a>], env: &Env<'a>) -> Result<Vec<Item<'a>>, EvalError> {
        eval::evaluate(&self.ast, input, env)
            .map(|items| items.into_iter().map(Val::into_item).collect())
            .map_err(|failure| EvalError {
                expression: self.source.clone(),
                reason: failure.to_string(),
            })
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests;
