//! Quantity parameters: Quantity and its profiles (Age, Duration, Count, Distance,
//! SimpleQuantity), Money and Range.
//!
//! A row keeps the value as written with its comparator, system, code and unit, and, when the
//! unit is UCUM (system `http://unitsofmeasure.org`, or no system and a code that parses as
//! UCUM), the value in canonical units ([`crate::ucum`]). Money is `value` with the currency as
//! code and system `urn:iso:std:iso:4217`, as HAPI stores it; currencies have no canonical form.
//! A Range gives a row for its low and one for its high (HAPI). A quantity without a value gives
//! no row; SampledData is not indexed (HAPI ignores it too).

use serde_json::{Map, Value};

use super::Target;
use super::node::Node;
use super::token::text_of;
use crate::ResourceIndex;
use crate::index::QuantityRow;
use crate::normalize::decimal::{clamped, decimal_text};
use crate::ucum::{UCUM_SYSTEM, canonicalize};

/// Money's code system (ISO 4217 currency codes).
pub(crate) const CURRENCY_SYSTEM: &str = "urn:iso:std:iso:4217";

pub(super) fn extract(out: &mut ResourceIndex, target: &Target<'_>, node: Node<'_>) {
    let Some(object) = node.object() else {
        return;
    };
    match node.ty() {
        "Quantity" | "SimpleQuantity" | "Age" | "Duration" | "Count" | "Distance"
        | "MoneyQuantity" => quantity(out, target, object),
        "Money" => money(out, target, object),
        "Range" => {
            for end in ["low", "high"] {
                if let Some(bound) = object.get(end).and_then(Value::as_object) {
                    quantity(out, target, bound);
                }
            }
        }
        _ => {}
    }
}

/// The decimal text of `value`, or a reported problem.
fn value_text(
    out: &mut ResourceIndex,
    target: &Target<'_>,
    object: &Map<String, Value>,
) -> Option<String> {
    let raw = object.get("value").filter(|v| !v.is_null())?;
    match decimal_text(raw) {
        Some(text) => Some(clamped(&text).into_owned()),
        None => {
            target.problem(out, "a quantity value that is not a number");
            None
        }
    }
}

fn quantity(out: &mut ResourceIndex, target: &Target<'_>, object: &Map<String, Value>) {
    let Some(value) = value_text(out, target, object) else {
        return;
    };
    let system = text_of(object, "system");
    let code = text_of(object, "code");
    let canonical = match (system, code) {
        (None | Some(UCUM_SYSTEM), Some(code)) => canonicalize(&value, code),
        _ => None,
    };
    let (canonical_value, canonical_code) = match canonical {
        Some(c) => (Some(c.value), Some(c.code)),
        None => (None, None),
    };
    out.quantities.push(QuantityRow {
        param: target.code.to_owned(),
        composite: target.composite,
        value,
        comparator: text_of(object, "comparator").map(str::to_owned),
        system: system.map(str::to_owned),
        code: code.map(str::to_owned),
        unit: text_of(object, "unit").map(str::to_owned),
        canonical_value,
        canonical_code,
    });
}

fn money(out: &mut ResourceIndex, target: &Target<'_>, object: &Map<String, Value>) {
    let Some(value) = value_text(out, target, object) else {
        return;
    };
    out.quantities.push(QuantityRow {
        param: target.code.to_owned(),
        composite: target.composite,
        value,
        comparator: None,
        system: Some(CURRENCY_SYSTEM.to_owned()),
        code: text_of(object, "currency").map(str::to_owned),
        unit: None,
        canonical_value: None,
        canonical_code: None,
    });
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::extract::testing::{node, rows, s, untyped};
    use crate::index::QuantityRow;

    type Summary<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
    );

    fn parse(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn ucum_quantities_get_canonical_values() {
        let root = parse(r#"{"resourceType": "Observation"}"#);
        let glucose = parse(
            r#"{"value": 95.0, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}"#,
        );
        let index = rows(&root, "value-quantity", &[node(&glucose, "Quantity")]);
        assert_eq!(
            index.quantities,
            vec![QuantityRow {
                param: "value-quantity".to_owned(),
                composite: None,
                value: "95.0".to_owned(),
                comparator: None,
                system: s("http://unitsofmeasure.org"),
                code: s("mg/dL"),
                unit: s("mg/dL"),
                canonical_value: s("950"),
                canonical_code: s("g.m-3"),
            }]
        );
    }

    #[test]
    fn only_ucum_units_are_converted() {
        let root = parse(r#"{"resourceType": "Observation"}"#);
        let other_system =
            parse(r#"{"value": 5, "system": "http://snomed.info/sct", "code": "mg"}"#);
        let no_system = parse(r#"{"value": 5, "code": "mg", "comparator": "<"}"#);
        let unit_only = parse(r#"{"value": 5, "unit": "beats/min"}"#);
        let no_value = parse(r#"{"unit": "mg", "code": "mg"}"#);
        let index = rows(
            &root,
            "value-quantity",
            &[
                node(&other_system, "Quantity"),
                node(&no_system, "Quantity"),
                untyped(&unit_only),
                node(&no_value, "Quantity"),
            ],
        );
        let summary: Vec<Summary<'_>> = index
            .quantities
            .iter()
            .map(|q| {
                (
                    q.system.as_deref(),
                    q.unit.as_deref(),
                    q.comparator.as_deref(),
                    q.canonical_value.as_deref(),
                )
            })
            .collect();
        let mut expected = vec![
            (Some("http://snomed.info/sct"), None, None, None),
            (None, None, Some("<"), Some("0.005")),
            (None, Some("beats/min"), None, None),
        ];
        expected.sort();
        let mut summary = summary;
        summary.sort();
        assert_eq!(summary, expected);
    }

    #[test]
    fn money_and_ranges() {
        let money = parse(r#"{"value": 120.50, "currency": "USD"}"#);
        let root = parse(r#"{"resourceType": "ChargeItemDefinition"}"#);
        let range = parse(
            r#"{"low": {"value": 1, "system": "http://unitsofmeasure.org", "code": "kg"},
                "high": {"value": 2000, "system": "http://unitsofmeasure.org", "code": "g"}}"#,
        );
        let index = rows(
            &root,
            "context-quantity",
            &[node(&money, "Money"), node(&range, "Range")],
        );
        let summary: Vec<Summary<'_>> = index
            .quantities
            .iter()
            .map(|q| {
                (
                    Some(q.value.as_str()),
                    q.system.as_deref(),
                    q.code.as_deref(),
                    q.canonical_value.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    Some("1"),
                    Some("http://unitsofmeasure.org"),
                    Some("kg"),
                    Some("1000")
                ),
                (
                    Some("120.50"),
                    Some("urn:iso:std:iso:4217"),
                    Some("USD"),
                    None
                ),
                (
                    Some("2000"),
                    Some("http://unitsofmeasure.org"),
                    Some("g"),
                    Some("2000")
                ),
            ]
        );
    }

    #[test]
    fn non_numeric_values_are_problems() {
        let root = parse(r#"{"resourceType": "Observation"}"#);
        let bad = parse(r#"{"value": "lots", "code": "mg"}"#);
        let index = rows(&root, "value-quantity", &[node(&bad, "Quantity")]);
        assert!(index.quantities.is_empty());
        assert_eq!(index.problems.len(), 1);
    }
}
