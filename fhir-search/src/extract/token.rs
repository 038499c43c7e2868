//! Token parameters: codes, identifiers, booleans, contact points, ids.
//!
//! After search.html ("token") and HAPI:
//! - Coding: `system`, `code`, and `display` as the folded `text` (for `:text`).
//! - CodeableConcept: a row per coding, plus a row holding only `text` when it has one, so
//!   `:text` finds either the concept's text or a coding's display.
//! - Identifier: `system`, `value` as code, `type.text` as text, and a row per coding of `type`
//!   in `type_system`/`type_code` (for `:of-type`).
//! - ContactPoint: `value` as code and `system` (`phone`, `email`) as system, as HAPI does. The
//!   specification leaves the system empty; a search without a system (`telecom=555-1234`)
//!   matches either way, and HAPI's form also answers `telecom=phone|555-1234`.
//! - boolean: `true`/`false`; id, string, uri: the value as code, without system. A `code` has
//!   the system of the value set its element is bound to when that value set draws on one code
//!   system (`Patient.gender` is in `http://hl7.org/fhir/administrative-gender`), so
//!   `gender=http://hl7.org/fhir/administrative-gender|male` finds it, as in HAPI;
//!   `CodeSystem.concept.code` has the CodeSystem's `url`.
//!
//! A row needs a system or a code (or, for text-only rows, a text, except inside a composite,
//! which has no `:text`); blank strings count as absent.

use serde_json::{Map, Value};

use super::node::Node;
use super::{Context, Target};
use crate::ResourceIndex;
use crate::index::TokenRow;
use crate::normalize::string::normalize;

pub(super) fn extract(
    ctx: &Context<'_>,
    out: &mut ResourceIndex,
    target: &Target<'_>,
    node: Node<'_>,
) {
    if let Some(value) = as_bool(node) {
        push(
            out,
            target,
            Token::code(if value { "true" } else { "false" }),
        );
        return;
    }
    match (node.ty(), node.object()) {
        ("Coding", Some(coding)) => push(out, target, coding_token(coding)),
        ("CodeableConcept", Some(concept)) => codeable_concept(out, target, concept),
        ("Identifier", Some(identifier)) => self::identifier(out, target, identifier),
        ("ContactPoint", Some(contact)) => {
            if let Some(value) = text_of(contact, "value") {
                push(
                    out,
                    target,
                    Token {
                        system: text_of(contact, "system"),
                        code: Some(value),
                        ..Token::default()
                    },
                );
            }
        }
        _ => {
            if let Some(code) = node.as_str() {
                let system = if target.source_path == "CodeSystem.concept.code" {
                    ctx.root.get("url").and_then(Value::as_str)
                } else if let Node::Json { code_system, .. } = node {
                    code_system
                } else {
                    None
                };
                push(
                    out,
                    target,
                    Token {
                        system,
                        ..Token::code(code)
                    },
                );
            } else if let Node::Int(value) = node {
                push(out, target, Token::code(&value.to_string()));
            }
        }
    }
}

fn as_bool(node: Node<'_>) -> Option<bool> {
    match node {
        Node::Bool(value) => Some(value),
        Node::Json { value, .. } => value.as_bool(),
        _ => None,
    }
}

/// A token before it becomes a row; strings are borrowed from the resource.
#[derive(Debug, Default, Clone, Copy)]
struct Token<'a> {
    system: Option<&'a str>,
    code: Option<&'a str>,
    text: Option<&'a str>,
    type_system: Option<&'a str>,
    type_code: Option<&'a str>,
}

impl<'a> Token<'a> {
    fn code(code: &'a str) -> Self {
        Token {
            code: Some(code),
            ..Token::default()
        }
    }
}

fn codeable_concept(out: &mut ResourceIndex, target: &Target<'_>, concept: &Map<String, Value>) {
    for coding in array_of_objects(concept, "coding") {
        push(out, target, coding_token(coding));
    }
    if let Some(text) = text_of(concept, "text") {
        push(
            out,
            target,
            Token {
                text: Some(text),
                ..Token::default()
            },
        );
    }
}

fn coding_token(coding: &Map<String, Value>) -> Token<'_> {
    Token {
        system: text_of(coding, "system"),
        code: text_of(coding, "code"),
        text: text_of(coding, "display"),
        ..Token::default()
    }
}

fn identifier(out: &mut ResourceIndex, target: &Target<'_>, identifier: &Map<String, Value>) {
    let base = Token {
        system: text_of(identifier, "system"),
        code: text_of(identifier, "value"),
        ..Token::default()
    };
    let id_type = identifier.get("type").and_then(Value::as_object);
    let type_text = id_type.and_then(|t| text_of(t, "text"));
    let type_codings: Vec<(Option<&str>, Option<&str>)> = id_type
        .map(|t| {
            array_of_objects(t, "coding")
                .map(|c| (text_of(c, "system"), text_of(c, "code")))
                .filter(|(system, code)| system.is_some() || code.is_some())
                .collect()
        })
        .unwrap_or_default();
    if type_codings.is_empty() {
        push(
            out,
            target,
            Token {
                text: type_text,
                ..base
            },
        );
        return;
    }
    for (type_system, type_code) in type_codings {
        push(
            out,
            target,
            Token {
                text: type_text,
                type_system,
                type_code,
                ..base
            },
        );
    }
}

fn push(out: &mut ResourceIndex, target: &Target<'_>, token: Token<'_>) {
    fn present(text: Option<&str>) -> Option<&str> {
        text.filter(|t| !t.trim().is_empty())
    }
    let (system, code) = (present(token.system), present(token.code));
    if system.is_none() && code.is_none() {
        // A text-only row serves `:text`, which composites do not have.
        if target.composite.is_some() || present(token.text).is_none() {
            return;
        }
    }
    out.tokens.push(TokenRow {
        param: target.code.to_owned(),
        composite: target.composite,
        system: system.map(str::to_owned),
        code: code.map(str::to_owned),
        text: token.text.map(normalize).filter(|t| !t.is_empty()),
        type_system: token.type_system.map(str::to_owned),
        type_code: token.type_code.map(str::to_owned),
    });
}

/// A non-blank string member.
pub(super) fn text_of<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|text| !text.trim().is_empty())
}

/// The objects of an array member (other members and elements are ignored).
pub(super) fn array_of_objects<'a>(
    object: &'a Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a Map<String, Value>> {
    object
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

#[cfg(test)]
mod tests {
    use fhirpath::Item;
    use serde_json::json;

    use crate::extract::testing::{node, rows, s, untyped};
    use crate::index::TokenRow;

    fn token(system: Option<&str>, code: Option<&str>, text: Option<&str>) -> TokenRow {
        TokenRow {
            param: String::new(),
            composite: None,
            system: system.map(str::to_owned),
            code: code.map(str::to_owned),
            text: text.map(str::to_owned),
            type_system: None,
            type_code: None,
        }
    }

    fn without_param(rows: &[TokenRow]) -> Vec<TokenRow> {
        rows.iter()
            .map(|r| TokenRow {
                param: String::new(),
                ..r.clone()
            })
            .collect()
    }

    #[test]
    fn codes_have_no_system() {
        let root = json!({"resourceType": "Patient", "gender": "female"});
        let index = rows(&root, "gender", &[node(&root["gender"], "code")]);
        assert_eq!(index.tokens.len(), 1);
        assert_eq!(index.tokens[0].param, "gender");
        assert_eq!(
            without_param(&index.tokens),
            vec![token(None, Some("female"), None)]
        );
    }

    #[test]
    fn codeable_concepts_give_each_coding_and_their_text() {
        let root = json!({"resourceType": "Observation"});
        let concept = json!({
            "coding": [
                {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"},
                {"system": "http://snomed.info/sct", "code": "364075005"},
                {"display": "  "}
            ],
            "text": "Heart Rate (Beats/Min)"
        });
        let index = rows(&root, "code", &[node(&concept, "CodeableConcept")]);
        let mut expected = vec![
            token(Some("http://loinc.org"), Some("8867-4"), Some("heart rate")),
            token(Some("http://snomed.info/sct"), Some("364075005"), None),
            token(None, None, Some("heart rate (beats/min)")),
        ];
        expected.sort();
        assert_eq!(without_param(&index.tokens), expected);
    }

    #[test]
    fn identifiers_carry_their_type() {
        let root = json!({"resourceType": "Patient"});
        let identifier = json!({
            "system": "http://hospital.example.org/mrn",
            "value": "MRN-1",
            "type": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}],
                "text": "Medical Record Number"
            }
        });
        let plain = json!({"value": "X9"});
        let index = rows(
            &root,
            "identifier",
            &[node(&identifier, "Identifier"), node(&plain, "Identifier")],
        );
        let mut mrn = token(
            Some("http://hospital.example.org/mrn"),
            Some("MRN-1"),
            Some("medical record number"),
        );
        mrn.type_system = s("http://terminology.hl7.org/CodeSystem/v2-0203");
        mrn.type_code = s("MR");
        let mut expected = vec![mrn, token(None, Some("X9"), None)];
        expected.sort();
        assert_eq!(without_param(&index.tokens), expected);
    }

    #[test]
    fn contact_points_use_their_system_and_value() {
        let root = json!({"resourceType": "Patient"});
        let phone = json!({"system": "phone", "value": "555-1234", "use": "home"});
        let no_value = json!({"system": "email"});
        let index = rows(
            &root,
            "telecom",
            &[
                node(&phone, "ContactPoint"),
                node(&no_value, "ContactPoint"),
            ],
        );
        assert_eq!(
            without_param(&index.tokens),
            vec![token(Some("phone"), Some("555-1234"), None)]
        );
    }

    #[test]
    fn booleans_from_the_resource_or_computed() {
        let root = json!({"resourceType": "Patient", "active": false});
        let index = rows(&root, "active", &[untyped(&root["active"])]);
        assert_eq!(
            without_param(&index.tokens),
            vec![token(None, Some("false"), None)]
        );
        let index = rows(&root, "deceased", &[Item::Boolean(true)]);
        assert_eq!(
            without_param(&index.tokens),
            vec![token(None, Some("true"), None)]
        );
    }

    #[test]
    fn code_system_concepts_take_the_code_system_url() {
        let root = json!({
            "resourceType": "CodeSystem",
            "url": "http://example.org/cs",
            "concept": [{"code": "a"}]
        });
        let index = rows(&root, "code", &[node(&root["concept"][0]["code"], "code")]);
        assert_eq!(
            without_param(&index.tokens),
            vec![token(Some("http://example.org/cs"), Some("a"), None)]
        );
    }

    #[test]
    fn wrong_json_types_are_ignored() {
        let root = json!({"resourceType": "Observation"});
        let odd = json!({"coding": "not an array", "text": 12});
        let odd_coding = json!({"system": 5, "code": ["x"]});
        let index = rows(
            &root,
            "code",
            &[node(&odd, "CodeableConcept"), node(&odd_coding, "Coding")],
        );
        assert!(index.tokens.is_empty());
        assert!(index.problems.is_empty());
    }
}
