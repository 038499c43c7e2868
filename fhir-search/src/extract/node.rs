//! One value found by an expression, with the FHIR type that decides how it is indexed.
//!
//! The evaluator names the type of most nodes (`Period`, `dateTime`, `CodeableConcept`). When it
//! cannot (`type_name` is `None`), the type is inferred from the JSON shape and the parameter's
//! type, the way a reader would: an object with `coding` is a CodeableConcept, a string for a
//! date parameter is a dateTime. Type names are compared without a `FHIR.`/`System.` namespace,
//! and FHIRPath system types map to their FHIR primitive (`System.String` → `string`).

use serde_json::{Map, Value};

use crate::registry::ParamType;

/// A value to index.
#[derive(Debug, Clone, Copy)]
pub enum Node<'n> {
    /// A part of the resource, with its FHIR type.
    Json {
        value: &'n Value,
        ty: &'n str,
        /// For a `code`, the code system its element's binding implies.
        code_system: Option<&'static str>,
    },
    /// A string computed by the expression (not a part of the resource).
    Text {
        text: &'n str,
        ty: &'static str,
    },
    Bool(bool),
    Int(i64),
}

impl<'n> Node<'n> {
    /// The FHIR type name.
    pub fn ty(&self) -> &'n str {
        match *self {
            Node::Json { ty, .. } => ty,
            Node::Text { ty, .. } => ty,
            Node::Bool(_) => "boolean",
            Node::Int(_) => "integer",
        }
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&'n str> {
        match *self {
            Node::Json { value, .. } => value.as_str(),
            Node::Text { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The members of an object value.
    pub fn object(&self) -> Option<&'n Map<String, Value>> {
        match *self {
            Node::Json { value, .. } => value.as_object(),
            _ => None,
        }
    }
}

/// The type to index `value` as: the evaluator's name without namespace, or one inferred.
pub fn resolve_type<'t>(value: &Value, given: Option<&'t str>, kind: ParamType) -> &'t str {
    match given {
        Some(name) => without_namespace(name),
        None => infer(value, kind),
    }
}

fn without_namespace(name: &str) -> &str {
    if let Some(system) = name.strip_prefix("System.") {
        return match system {
            "String" => "string",
            "Boolean" => "boolean",
            "Integer" => "integer",
            "Decimal" => "decimal",
            "Date" => "date",
            "DateTime" => "dateTime",
            "Time" => "time",
            other => other,
        };
    }
    name.strip_prefix("FHIR.").unwrap_or(name)
}

/// Infers a FHIR type from the JSON shape; `""` when nothing fits.
pub fn infer(value: &Value, kind: ParamType) -> &'static str {
    match value {
        Value::Bool(_) => "boolean",
        Value::Number(number) => {
            if number.is_i64() || number.is_u64() {
                "integer"
            } else {
                "decimal"
            }
        }
        Value::String(_) => match kind {
            ParamType::Date => "dateTime",
            ParamType::Token => "code",
            ParamType::Uri | ParamType::Reference => "uri",
            ParamType::Number | ParamType::Quantity => "decimal",
            _ => "string",
        },
        Value::Object(map) => infer_object(map, kind),
        _ => "",
    }
}

fn infer_object(map: &Map<String, Value>, kind: ParamType) -> &'static str {
    let has = |key: &str| map.contains_key(key);
    if has("resourceType") {
        return "Resource";
    }
    if kind == ParamType::Reference && (has("reference") || has("identifier") || has("type")) {
        return "Reference";
    }
    if has("latitude") || has("longitude") {
        return "Location.position";
    }
    if has("coding") {
        return "CodeableConcept";
    }
    if has("family") || has("given") || has("prefix") || has("suffix") {
        return "HumanName";
    }
    if has("line") || has("city") || has("district") || has("state") || has("postalCode") {
        return "Address";
    }
    if has("currency") {
        return "Money";
    }
    if has("low") || has("high") {
        return "Range";
    }
    if has("event") || has("repeat") {
        return "Timing";
    }
    if has("start") || has("end") {
        return "Period";
    }
    if has("value") && (has("unit") || has("comparator") || (has("code") && !has("system"))) {
        return "Quantity";
    }
    if has("value") && has("code") && has("system") {
        return if kind == ParamType::Quantity {
            "Quantity"
        } else {
            "Identifier"
        };
    }
    if has("value") {
        let contact_system = map.get("system").and_then(Value::as_str).is_some_and(|s| {
            matches!(
                s,
                "phone" | "fax" | "email" | "pager" | "url" | "sms" | "other"
            )
        });
        return if contact_system || has("use") && !has("system") && !has("type") {
            "ContactPoint"
        } else {
            "Identifier"
        };
    }
    if has("system") || has("code") || has("display") {
        return "Coding";
    }
    if has("text") && kind == ParamType::Token {
        return "CodeableConcept";
    }
    if has("reference") || has("identifier") {
        return "Reference";
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn given_names_lose_their_namespace() {
        let v = json!("x");
        assert_eq!(
            resolve_type(&v, Some("FHIR.Period"), ParamType::Date),
            "Period"
        );
        assert_eq!(
            resolve_type(&v, Some("System.String"), ParamType::Token),
            "string"
        );
        assert_eq!(
            resolve_type(&v, Some("System.DateTime"), ParamType::Date),
            "dateTime"
        );
        assert_eq!(
            resolve_type(&v, Some("dateTime"), ParamType::Date),
            "dateTime"
        );
    }

    #[test]
    fn infers_types_from_shape() {
        let cases = [
            (
                json!({"coding": [{"code": "a"}]}),
                ParamType::Token,
                "CodeableConcept",
            ),
            (json!({"text": "free"}), ParamType::Token, "CodeableConcept"),
            (
                json!({"system": "s", "code": "c"}),
                ParamType::Token,
                "Coding",
            ),
            (
                json!({"system": "urn:x", "value": "1"}),
                ParamType::Token,
                "Identifier",
            ),
            (
                json!({"system": "phone", "value": "555"}),
                ParamType::Token,
                "ContactPoint",
            ),
            (json!({"family": "Smith"}), ParamType::String, "HumanName"),
            (json!({"city": "Oslo"}), ParamType::String, "Address"),
            (json!({"start": "2020"}), ParamType::Date, "Period"),
            (json!({"event": ["2020"]}), ParamType::Date, "Timing"),
            (
                json!({"value": 1, "unit": "mg"}),
                ParamType::Quantity,
                "Quantity",
            ),
            (
                json!({"value": 1, "system": "http://unitsofmeasure.org", "code": "mg"}),
                ParamType::Quantity,
                "Quantity",
            ),
            (
                json!({"value": 1, "currency": "EUR"}),
                ParamType::Quantity,
                "Money",
            ),
            (json!({"low": {"value": 1}}), ParamType::Quantity, "Range"),
            (
                json!({"reference": "Patient/1"}),
                ParamType::Reference,
                "Reference",
            ),
            (
                json!({"latitude": 1, "longitude": 2}),
                ParamType::Special,
                "Location.position",
            ),
            (
                json!({"resourceType": "Patient"}),
                ParamType::Reference,
                "Resource",
            ),
            (json!("2020"), ParamType::Date, "dateTime"),
            (json!("male"), ParamType::Token, "code"),
            (json!(true), ParamType::Token, "boolean"),
            (json!(1.5), ParamType::Number, "decimal"),
            (json!(3), ParamType::Number, "integer"),
            (json!({}), ParamType::Token, ""),
            (json!(null), ParamType::Token, ""),
        ];
        for (value, kind, expected) in cases {
            assert_eq!(infer(&value, kind), expected, "{value} as {kind:?}");
        }
    }
}
