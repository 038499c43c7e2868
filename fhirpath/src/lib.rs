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

use std::borrow::Cow;

use serde_json::Value;

/// A compiled FHIRPath expression.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
}

/// The expression text is not valid FHIRPath, or uses something this evaluator does not know.
#[derive(Debug, thiserror::Error)]
#[error("cannot parse FHIRPath `{expression}`: {reason}")]
pub struct ParseError {
    pub expression: String,
    pub reason: String,
}

/// Evaluation failed (for example a function applied to a collection of more than one item).
#[derive(Debug, thiserror::Error)]
#[error("cannot evaluate FHIRPath `{expression}`: {reason}")]
pub struct EvalError {
    pub expression: String,
    pub reason: String,
}

/// One item of a FHIRPath result collection.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    /// A part of the input resource, with its FHIR type name where known.
    Node {
        value: &'a Value,
        type_name: Option<Cow<'static, str>>,
    },
    Boolean(bool),
    String(String),
    Integer(i64),
    /// A decimal, kept as its literal text so no precision is lost.
    Decimal(String),
}

impl Expression {
    /// Compiles `source`.
    pub fn parse(source: &str) -> Result<Self, ParseError> {
        Ok(Self {
            source: source.to_owned(),
        })
    }

    /// The text this expression was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates on `resource`, which is also `%resource` and `%rootResource`.
    pub fn evaluate<'a>(&self, resource: &'a Value) -> Result<Vec<Item<'a>>, EvalError> {
        let _ = resource;
        Err(EvalError {
            expression: self.source.clone(),
            reason: "evaluator not written yet".to_owned(),
        })
    }

    /// Evaluates with `focus` as the input collection, inside `resource`.
    pub fn evaluate_on<'a>(
        &self,
        resource: &'a Value,
        focus: &Item<'a>,
    ) -> Result<Vec<Item<'a>>, EvalError> {
        let _ = (resource, focus);
        Err(EvalError {
            expression: self.source.clone(),
            reason: "evaluator not written yet".to_owned(),
        })
    }
}
