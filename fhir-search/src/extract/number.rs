//! Number parameters: decimals and integers, as written (their precision matters to `eq`).
//!
//! R4's number parameters yield `decimal`, `integer` and, for `RiskAssessment.probability`, a
//! Range: a Range gives its low and high values as two rows (HAPI skips Ranges here; their bounds
//! are what a number search would mean). Quantity-like values give their `value`.

use std::borrow::Cow;

use serde_json::Value;

use super::Target;
use super::node::Node;
use crate::ResourceIndex;
use crate::index::NumberRow;
use crate::normalize::decimal::{clamped, decimal_text, is_decimal};

pub(super) fn extract(out: &mut ResourceIndex, target: &Target<'_>, node: Node<'_>) {
    match node {
        Node::Int(value) => push(out, target, value.to_string()),
        Node::Text { text, .. } => {
            if is_decimal(text) {
                push(out, target, text.to_owned());
            } else {
                target.problem(out, format!("`{}` is not a number", short(text)));
            }
        }
        Node::Bool(_) => {}
        Node::Json { value, ty, .. } => match ty {
            "Range" => {
                for end in ["low", "high"] {
                    if let Some(number) = value.get(end).and_then(|q| q.get("value")) {
                        json_number(out, target, number);
                    }
                }
            }
            "Quantity" | "SimpleQuantity" | "Age" | "Duration" | "Count" | "Distance" => {
                if let Some(number) = value.get("value") {
                    json_number(out, target, number);
                }
            }
            _ if value.is_object() => {}
            _ => json_number(out, target, value),
        },
    }
}

fn json_number(out: &mut ResourceIndex, target: &Target<'_>, value: &Value) {
    match decimal_text(value) {
        Some(text) => push(out, target, text.into_owned()),
        None => target.problem(
            out,
            format!("`{}` is not a number", short(&value.to_string())),
        ),
    }
}

fn short(text: &str) -> &str {
    text.char_indices()
        .nth(40)
        .map_or(text, |(cut, _)| &text[..cut])
}

fn push(out: &mut ResourceIndex, target: &Target<'_>, value: String) {
    let value = match clamped(&value) {
        Cow::Borrowed(_) => value,
        Cow::Owned(clamped) => clamped,
    };
    out.numbers.push(NumberRow {
        param: target.code.to_owned(),
        composite: target.composite,
        value,
    });
}

#[cfg(test)]
mod tests {
    use fhirpath::Item;
    use serde_json::Value;

    use crate::extract::testing::{node, rows, untyped};

    fn values(index: &crate::ResourceIndex) -> Vec<&str> {
        index.numbers.iter().map(|r| r.value.as_str()).collect()
    }

    #[test]
    fn numbers_keep_their_precision() {
        let root: Value = serde_json::from_str(
            r#"{"resourceType": "RiskAssessment",
                "prediction": [{"probabilityDecimal": 0.250},
                               {"probabilityRange": {"low": {"value": 0.1}, "high": {"value": 0.30}}}]}"#,
        )
        .unwrap();
        let index = rows(
            &root,
            "probability",
            &[
                node(&root["prediction"][0]["probabilityDecimal"], "decimal"),
                node(&root["prediction"][1]["probabilityRange"], "Range"),
                Item::Integer(3),
                Item::Decimal("1.0".to_owned()),
            ],
        );
        assert_eq!(values(&index), vec!["0.1", "0.250", "0.30", "1.0", "3"]);
    }

    #[test]
    fn non_numbers_are_problems() {
        let root: Value = serde_json::from_str(r#"{"resourceType": "RiskAssessment"}"#).unwrap();
        let text = Value::String("a lot".to_owned());
        let index = rows(&root, "probability", &[untyped(&text)]);
        assert!(index.numbers.is_empty());
        assert_eq!(index.problems.len(), 1);
    }
}
