//! The values an evaluation passes around, and how FHIRPath compares them.
//!
//! Internally an item is a [`Val`]: like the public [`Item`], but a node keeps its full
//! [`NodeType`] (including the backbone definition that types its children), so navigation
//! never has to look a type up again. Nodes borrow the input JSON; nothing is cloned.
//! Equality, equivalence and ordering follow the FHIRPath rules for the value kinds the R4
//! search parameters meet: strings, numbers (compared exactly as decimals), booleans, and
//! complex nodes (compared structurally).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::ptr;

use serde_json::Value;

use crate::Item;
use crate::ast::Literal;
use crate::eval::Failure;
use crate::types::{Node, NodeType, SystemType};

/// One item of a collection during evaluation.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    Node(Node<'a>),
    /// A resource known only by the type its reference names (`resolve()` of `Patient/1`).
    Resolved {
        resource_type: &'static str,
        reference: &'a str,
    },
    Boolean(bool),
    String(String),
    Integer(i64),
    Decimal(String),
}

impl<'a> Val<'a> {
    pub fn from_literal(literal: &Literal) -> Val<'a> {
        match literal {
            Literal::Boolean(value) => Val::Boolean(*value),
            Literal::String(value) => Val::String(value.clone()),
            Literal::Integer(value) => Val::Integer(*value),
            Literal::Decimal(value) => Val::Decimal(value.clone()),
        }
    }

    /// The public form of this item.
    pub fn into_item(self) -> Item<'a> {
        match self {
            Val::Node(node) => Item::Node {
                value: node.value,
                type_name: node.ty.code.map(Cow::Borrowed),
                code_system: node.ty.code_system,
            },
            Val::Resolved {
                resource_type,
                reference,
            } => Item::Resolved {
                resource_type,
                reference,
            },
            Val::Boolean(value) => Item::Boolean(value),
            Val::String(value) => Item::String(value),
            Val::Integer(value) => Item::Integer(value),
            Val::Decimal(value) => Item::Decimal(value),
        }
    }

    /// The internal form of an item a caller hands back, inside `resource`. A node whose type
    /// name does not identify its structure (a backbone element) is found in `resource` to
    /// recover its element definition.
    pub fn from_item(item: &Item<'a>, resource: &'a Value) -> Val<'a> {
        match item {
            Item::Node {
                value,
                type_name,
                code_system,
            } => {
                let mut ty = type_name
                    .as_deref()
                    .and_then(NodeType::named)
                    .or_else(|| Node::resource(resource).locate(value))
                    .unwrap_or(NodeType::UNKNOWN);
                ty.code_system = ty.code_system.or(*code_system);
                Val::Node(Node { value, ty })
            }
            Item::Resolved {
                resource_type,
                reference,
            } => Val::Resolved {
                resource_type,
                reference,
            },
            Item::Boolean(value) => Val::Boolean(*value),
            Item::String(value) => Val::String(value.clone()),
            Item::Integer(value) => Val::Integer(*value),
            Item::Decimal(value) => Val::Decimal(value.clone()),
        }
    }

    /// The Boolean this item is, if it is one (a literal or a FHIR `boolean` node).
    pub fn as_boolean(&self) -> Option<bool> {
        match self {
            Val::Boolean(value) => Some(*value),
            Val::Node(node) => node.value.as_bool(),
            _ => None,
        }
    }

    /// The integer this item is, if it is one (a literal or an integral FHIR number node).
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Val::Integer(value) => Some(*value),
            Val::Node(node) => node.value.as_i64(),
            _ => None,
        }
    }

    /// The text of a string literal or a string-valued node.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::String(value) => Some(value),
            Val::Node(node) => node.value.as_str(),
            _ => None,
        }
    }

    /// Whether the two are the same item: the same node of the same input (by identity), or
    /// equal values. Union and `distinct()` drop repeats by this.
    pub fn same_item(&self, other: &Val<'_>) -> bool {
        match (self, other) {
            (Val::Node(a), Val::Node(b)) => ptr::eq(a.value, b.value) && a.ty.code == b.ty.code,
            (Val::Node(_), _) | (_, Val::Node(_)) => false,
            _ => equal(self, other),
        }
    }

    /// How this item is described in error messages.
    pub fn describe(&self) -> String {
        match self {
            Val::Node(node) => match node.ty.code {
                Some(code) => format!("a {code} node"),
                None => "a node of unknown type".to_owned(),
            },
            Val::Resolved { resource_type, .. } => format!("a reference to a {resource_type}"),
            Val::Boolean(_) => "a Boolean".to_owned(),
            Val::String(_) => "a String".to_owned(),
            Val::Integer(_) => "an Integer".to_owned(),
            Val::Decimal(_) => "a Decimal".to_owned(),
        }
    }

    fn primitive(&self) -> Option<Primitive<'_>> {
        Some(match self {
            Val::Boolean(value) => Primitive::Boolean(*value),
            Val::String(value) => Primitive::String(value),
            Val::Integer(value) => Primitive::Number(Cow::Owned(value.to_string())),
            Val::Decimal(value) => Primitive::Number(Cow::Borrowed(value)),
            Val::Resolved { .. } => return None,
            Val::Node(node) => match node.value {
                Value::Bool(value) => Primitive::Boolean(*value),
                Value::Number(number) => Primitive::Number(Cow::Borrowed(number.as_str())),
                Value::String(text) => {
                    let temporal = node.ty.code.and_then(SystemType::of_fhir).is_some_and(|t| {
                        matches!(
                            t,
                            SystemType::Date | SystemType::DateTime | SystemType::Time
                        )
                    });
                    if temporal {
                        Primitive::Temporal(text)
                    } else {
                        Primitive::String(text)
                    }
                }
                _ => return None,
            },
        })
    }
}

/// A primitive value as comparisons see it.
enum Primitive<'x> {
    Boolean(bool),
    String(&'x str),
    /// A date, dateTime, instant or time, as written.
    Temporal(&'x str),
    /// An integer or decimal, as written.
    Number(Cow<'x, str>),
}

/// FHIRPath `=` on two items.
pub(crate) fn equal(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (
            Val::Resolved {
                resource_type: type_a,
                reference: ref_a,
            },
            Val::Resolved {
                resource_type: type_b,
                reference: ref_b,
            },
        ) => type_a == type_b && ref_a == ref_b,
        _ => match (a.primitive(), b.primitive()) {
            (Some(x), Some(y)) => primitives_equal(&x, &y),
            (None, None) => match (a, b) {
                (Val::Node(x), Val::Node(y)) => x.value == y.value,
                _ => false,
            },
            _ => false,
        },
    }
}

fn primitives_equal(a: &Primitive<'_>, b: &Primitive<'_>) -> bool {
    match (a, b) {
        (Primitive::Boolean(x), Primitive::Boolean(y)) => x == y,
        (
            Primitive::String(x) | Primitive::Temporal(x),
            Primitive::String(y) | Primitive::Temporal(y),
        ) => x == y,
        (Primitive::Number(x), Primitive::Number(y)) => {
            compare_numbers(x, y) == Some(Ordering::Equal)
        }
        _ => false,
    }
}

/// FHIRPath `~` on two items: strings ignore case and collapse white space.
pub(crate) fn equivalent(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a.primitive(), b.primitive()) {
        (Some(Primitive::String(x)), Some(Primitive::String(y))) => {
            normalise_whitespace(x) == normalise_whitespace(y)
        }
        _ => equal(a, b),
    }
}

fn normalise_whitespace(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The order of two items for `<`, `<=`, `>`, `>=`: numbers and strings only.
pub(crate) fn compare(a: &Val<'_>, b: &Val<'_>) -> Result<Ordering, Failure> {
    let incomparable = || Failure::Incomparable {
        left: a.describe(),
        right: b.describe(),
    };
    match (a.primitive(), b.primitive()) {
        (Some(Primitive::Number(x)), Some(Primitive::Number(y))) => {
            compare_numbers(&x, &y).ok_or_else(incomparable)
        }
        (Some(Primitive::String(x)), Some(Primitive::String(y))) => Ok(x.cmp(y)),
        (Some(Primitive::Temporal(_)), _) | (_, Some(Primitive::Temporal(_))) => Err(
            Failure::Unsupported("ordering of dates and times (precision and time zones)"),
        ),
        _ => Err(incomparable()),
    }
}

/// Compares two decimal numbers written as text, exactly (`1.50` equals `1.5`); numbers with
/// an exponent, which FHIR allows but rarely sees, are compared as floating point.
fn compare_numbers(a: &str, b: &str) -> Option<Ordering> {
    match (DecimalText::parse(a), DecimalText::parse(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.parse::<f64>().ok()?.partial_cmp(&b.parse::<f64>().ok()?),
    }
}

/// A plain decimal (`-12.340`), split into sign, integer digits without leading zeros and
/// fraction digits without trailing zeros, so that comparing the parts compares the numbers.
struct DecimalText<'x> {
    negative: bool,
    integer: &'x str,
    fraction: &'x str,
}

impl<'x> DecimalText<'x> {
    fn parse(text: &'x str) -> Option<DecimalText<'x>> {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(integer) || !(fraction.is_empty() || digits(fraction)) {
            return None;
        }
        let integer = integer.trim_start_matches('0');
        let fraction = fraction.trim_end_matches('0');
        // Zero has no sign.
        let negative = negative && !(integer.is_empty() && fraction.is_empty());
        Some(DecimalText {
            negative,
            integer,
            fraction,
        })
    }

    fn cmp(&self, other: &DecimalText<'_>) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }

    fn cmp_magnitude(&self, other: &DecimalText<'_>) -> Ordering {
        self.integer
            .len()
            .cmp(&other.integer.len())
            .then_with(|| self.integer.cmp(other.integer))
            .then_with(|| self.fraction.cmp(other.fraction))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_compare_exactly() {
        assert_eq!(compare_numbers("1.50", "1.5"), Some(Ordering::Equal));
        assert_eq!(compare_numbers("0.25", "0.5"), Some(Ordering::Less));
        assert_eq!(compare_numbers("10", "9.99"), Some(Ordering::Greater));
        assert_eq!(compare_numbers("-2", "-10"), Some(Ordering::Greater));
        assert_eq!(compare_numbers("-0.0", "0"), Some(Ordering::Equal));
        assert_eq!(compare_numbers("007", "7.000"), Some(Ordering::Equal));
        assert_eq!(compare_numbers("1e2", "100"), Some(Ordering::Equal));
        assert_eq!(compare_numbers("x", "1"), None);
    }

    #[test]
    fn literals_compare_by_kind() {
        assert!(equal(&Val::Integer(2), &Val::Decimal("2.0".to_owned())));
        assert!(!equal(&Val::Integer(2), &Val::String("2".to_owned())));
        assert!(equal(&Val::Boolean(true), &Val::Boolean(true)));
        assert!(equivalent(
            &Val::String("Hello  World".to_owned()),
            &Val::String("hello world".to_owned())
        ));
        assert!(compare(&Val::String("a".to_owned()), &Val::Integer(1)).is_err());
    }
}
