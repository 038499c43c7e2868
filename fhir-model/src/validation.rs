//! Structural validation of incoming resources against the official R4 JSON Schema.
//!
//! The schema (`schemas/fhir/fhir.schema.json`) is embedded in the binary and compiled once per
//! process into one validator per resource type, so a write pays only for walking its own
//! resource. Errors come back as `OperationOutcome` issues whose `expression` says where in the
//! resource the problem is (`Patient.name[0].given`), which is what a FHIR client shows its user.
//!
//! The published schema describes each complex type (`HumanName`, `Patient.contact`, every
//! resource) by its properties alone, without `"type": "object"`, so under JSON Schema any
//! number, string or array would satisfy it. Loading completes those definitions (see
//! [`complete_types`]), so every complex type in every resource is checked the same way.
//!
//! Values are also checked for what the schema does not say ([`check_values`]): numbers are
//! bounded ([`MAX_NUMBER_TEXT`], [`MAX_DECIMAL_EXPONENT`]), since a decimal the search indexes
//! (Postgres `numeric`) cannot hold would otherwise be accepted here and refused by every later
//! reader of the event; and strings may not hold control characters, which FHIR forbids
//! (below U+0020 only tab, carriage return and line feed) and Postgres text cannot hold (NUL).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use jsonschema::{Validator, error::ValidationErrorKind};
use serde_json::{Value, json};

use crate::outcome::{IssueCode, OutcomeIssue};
use crate::resource_type::ResourceType;

const FHIR_SCHEMA: &str = include_str!("../../schemas/fhir/fhir.schema.json");

/// At most this many issues are reported for one resource: enough to fix it, not a flood.
const MAX_ISSUES: usize = 50;
/// Diagnostics longer than this are cut (a failed `oneOf` can quote a whole subtree).
const MAX_DIAGNOSTICS: usize = 400;
/// Longest number accepted, as written (sign, digits, point and exponent). FHIR decimals carry
/// at most 18 significant digits in practice; the search indexes take up to this length.
pub const MAX_NUMBER_TEXT: usize = 64;
/// Largest exponent magnitude a number may be written with (`1e1000`, `1e-1000`): the bound
/// Postgres `numeric` input accepts, so with [`MAX_NUMBER_TEXT`] every accepted number fits
/// the indexes' `numeric` columns.
pub const MAX_DECIMAL_EXPONENT: u32 = 1000;

/// The R4 schema, compiled into one validator per resource type on first use.
pub struct ResourceValidator {
    definitions: Value,
    compiled: RwLock<HashMap<ResourceType, Arc<Validator>>>,
}

impl ResourceValidator {
    /// The process-wide validator.
    pub fn global() -> &'static ResourceValidator {
        static VALIDATOR: OnceLock<ResourceValidator> = OnceLock::new();
        VALIDATOR.get_or_init(|| {
            let mut schema: Value = serde_json::from_str(FHIR_SCHEMA)
                .unwrap_or_else(|error| panic!("the embedded FHIR schema is not JSON: {error}"));
            let mut definitions = schema
                .get_mut("definitions")
                .map(Value::take)
                .unwrap_or_else(|| panic!("the embedded FHIR schema has no definitions"));
            complete_types(&mut definitions);
            ResourceValidator {
                definitions,
                compiled: RwLock::new(HashMap::new()),
            }
        })
    }

    /// The validator of one resource type, compiled the first time it is asked for (a few
    /// milliseconds to a few hundred, by the size of the type).
    fn validator(&self, resource_type: ResourceType) -> Result<Arc<Validator>, String> {
        if let Some(validator) = self
            .compiled
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&resource_type)
        {
            return Ok(validator.clone());
        }
        let schema = self.schema_of(resource_type);
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft6)
            .should_validate_formats(false)
            .build(&schema)
            .map(Arc::new)
            .map_err(|error| format!("the schema of {resource_type} does not compile: {error}"))?;
        self.compiled
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(resource_type, validator.clone());
        Ok(validator)
    }

    /// A schema document for one type holding only the definitions that type reaches through
    /// `$ref`: compiling it costs a fraction of the whole document in time and memory.
    fn schema_of(&self, resource_type: ResourceType) -> Value {
        let mut reached = serde_json::Map::new();
        let mut pending = vec![resource_type.as_str().to_owned()];
        while let Some(name) = pending.pop() {
            if reached.contains_key(&name) || name == "ResourceList" {
                continue;
            }
            let Some(definition) = self.definitions.get(&name) else {
                continue;
            };
            collect_refs(definition, &mut pending);
            reached.insert(name, definition.clone());
        }
        // Nested resources (contained, Bundle entries, Parameters) are validated one by one
        // against their own types; here they only need to be objects with a resourceType.
        // Without this, every type would reach every other through `contained`.
        reached.insert(
            "ResourceList".to_owned(),
            json!({"type": "object", "required": ["resourceType"], "properties": {"resourceType": {"type": "string"}}}),
        );
        json!({
            "$schema": "http://json-schema.org/draft-06/schema#",
            "definitions": reached,
            "allOf": [{"$ref": format!("#/definitions/{resource_type}")}],
        })
    }

    /// Checks `resource` against the schema of `resource_type`; every problem becomes an issue.
    pub fn validate(&self, resource_type: ResourceType, resource: &Value) -> Vec<OutcomeIssue> {
        let mut issues = Vec::new();
        self.validate_at(resource_type, resource, resource_type.as_str(), &mut issues);
        check_values(
            resource,
            &mut String::new(),
            resource_type.as_str(),
            &mut issues,
        );
        issues.truncate(MAX_ISSUES);
        issues
    }

    /// Validates one resource whose location is `at` (`Patient`, `Patient.contained[0]`), then
    /// each resource nested in it (contained resources, Bundle entries) against its own type.
    fn validate_at(
        &self,
        resource_type: ResourceType,
        resource: &Value,
        at: &str,
        issues: &mut Vec<OutcomeIssue>,
    ) {
        let validator = match self.validator(resource_type) {
            Ok(validator) => validator,
            Err(problem) => {
                issues.push(OutcomeIssue::error(IssueCode::NotSupported, problem).at(at));
                return;
            }
        };
        for error in validator.iter_errors(resource).take(MAX_ISSUES) {
            let code = match error.kind() {
                ValidationErrorKind::Required { .. } => IssueCode::Required,
                ValidationErrorKind::AdditionalProperties { .. } => IssueCode::Structure,
                ValidationErrorKind::Type { .. } => IssueCode::Structure,
                _ => IssueCode::Value,
            };
            let mut diagnostics = error.to_string();
            if diagnostics.len() > MAX_DIAGNOSTICS {
                let mut cut = MAX_DIAGNOSTICS;
                while !diagnostics.is_char_boundary(cut) {
                    cut -= 1;
                }
                diagnostics.truncate(cut);
                diagnostics.push_str("...");
            }
            issues.push(
                OutcomeIssue::error(code, diagnostics)
                    .at(expression_for(at, error.instance_path().as_str())),
            );
        }
        let mut nested = Vec::new();
        nested_resources(resource, String::new(), true, &mut nested);
        for (pointer, inner) in nested {
            if issues.len() >= MAX_ISSUES {
                return;
            }
            let location = expression_for(at, &pointer);
            match inner
                .get("resourceType")
                .and_then(Value::as_str)
                .map(ResourceType::parse)
            {
                Some(Ok(inner_type)) => self.validate_at(inner_type, inner, &location, issues),
                _ => issues.push(
                    OutcomeIssue::error(IssueCode::NotSupported, "not a FHIR R4 resource type")
                        .at(format!("{location}.resourceType")),
                ),
            }
        }
    }
}

/// The resources nested inside `value` (objects with a `resourceType`, below the root), with
/// their JSON pointers; not descending into them (each validates its own).
fn nested_resources<'v>(
    value: &'v Value,
    pointer: String,
    root: bool,
    found: &mut Vec<(String, &'v Value)>,
) {
    match value {
        Value::Object(object) => {
            if !root && object.contains_key("resourceType") {
                found.push((pointer, value));
                return;
            }
            for (key, inner) in object {
                nested_resources(inner, format!("{pointer}/{key}"), false, found);
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                nested_resources(inner, format!("{pointer}/{index}"), false, found);
            }
        }
        _ => {}
    }
}

/// Makes every definition say what JSON type it is. A complex type (a definition with
/// `properties`) must be an object; `xhtml`, the one primitive published without a type, is a
/// string. Array-valued elements already say `"type": "array"` in the published schema.
fn complete_types(definitions: &mut Value) {
    let Some(definitions) = definitions.as_object_mut() else {
        return;
    };
    for (name, definition) in definitions.iter_mut() {
        let Some(definition) = definition.as_object_mut() else {
            continue;
        };
        if definition.contains_key("type") {
            continue;
        }
        if definition.contains_key("properties") {
            definition.insert("type".to_owned(), json!("object"));
        } else if name == "xhtml" {
            definition.insert("type".to_owned(), json!("string"));
        }
    }
}

/// Reports every number in `value` (at JSON pointer `pointer`) that is longer than
/// [`MAX_NUMBER_TEXT`] or written with an exponent beyond [`MAX_DECIMAL_EXPONENT`], and every
/// string with a control character FHIR does not allow.
fn check_values(value: &Value, pointer: &mut String, at: &str, issues: &mut Vec<OutcomeIssue>) {
    if issues.len() >= MAX_ISSUES {
        return;
    }
    let problem = match value {
        Value::Number(number) => number_problem(number.as_str()),
        Value::String(text) => string_problem(text),
        _ => None,
    };
    if let Some(problem) = problem {
        issues.push(OutcomeIssue::error(IssueCode::Value, problem).at(expression_for(at, pointer)));
    }
    match value {
        Value::Object(object) => {
            for (key, inner) in object {
                let length = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                check_values(inner, pointer, at, issues);
                pointer.truncate(length);
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                let length = pointer.len();
                pointer.push('/');
                pointer.push_str(&index.to_string());
                check_values(inner, pointer, at, issues);
                pointer.truncate(length);
            }
        }
        _ => {}
    }
}

/// Why a string is not a FHIR string: a character below U+0020 other than tab, carriage return
/// and line feed; `None` when it is one.
fn string_problem(text: &str) -> Option<String> {
    // Bytes, not chars: every byte of a multi-byte UTF-8 character is 0x80 or above.
    text.bytes()
        .find(|byte| *byte < b' ' && !matches!(byte, b'\t' | b'\r' | b'\n'))
        .map(|byte| format!("strings may not contain the control character U+{byte:04X}"))
}

/// Why a number, as written, cannot be stored and indexed; `None` when it can.
fn number_problem(text: &str) -> Option<String> {
    if text.len() > MAX_NUMBER_TEXT {
        return Some(format!(
            "a number may be written with at most {MAX_NUMBER_TEXT} characters; this one has {}",
            text.len()
        ));
    }
    let exponent = text
        .find(['e', 'E'])
        .map(|at| text[at + 1..].trim_start_matches(['+', '-']));
    match exponent {
        Some(digits)
            if digits
                .parse::<u32>()
                .is_ok_and(|e| e <= MAX_DECIMAL_EXPONENT) =>
        {
            None
        }
        Some(_) => Some(format!(
            "the exponent of {text} is out of range: at most {MAX_DECIMAL_EXPONENT} either way"
        )),
        None => None,
    }
}

/// Adds the definition names of every `#/definitions/<name>` reference inside `schema`.
fn collect_refs(schema: &Value, names: &mut Vec<String>) {
    match schema {
        Value::Object(object) => {
            for (key, value) in object {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => {
                        if let Some(name) = target.strip_prefix("#/definitions/") {
                            names.push(name.to_owned());
                        }
                    }
                    _ => collect_refs(value, names),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, names)),
        _ => {}
    }
}

/// Turns a JSON pointer inside a resource (`/name/0/given`) into a FHIRPath-like location
/// (`Patient.name[0].given`).
fn expression_for(at: &str, pointer: &str) -> String {
    let mut expression = at.to_owned();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if token.bytes().all(|b| b.is_ascii_digit()) && !token.is_empty() {
            expression.push('[');
            expression.push_str(&token);
            expression.push(']');
        } else {
            expression.push('.');
            expression.push_str(&token);
        }
    }
    expression
}

/// The checks every incoming resource passes before it can become an event: a JSON object,
/// a known `resourceType`, and valid against that type's schema. Returns the type.
pub fn check_resource(resource: &Value) -> Result<ResourceType, Vec<OutcomeIssue>> {
    let Some(object) = resource.as_object() else {
        return Err(vec![OutcomeIssue::error(
            IssueCode::Structure,
            "a FHIR resource must be a JSON object",
        )]);
    };
    let resource_type = match object.get("resourceType") {
        None => {
            return Err(vec![
                OutcomeIssue::error(IssueCode::Required, "the resource has no resourceType")
                    .at("resourceType"),
            ]);
        }
        Some(Value::String(name)) => ResourceType::parse(name).map_err(|error| {
            vec![OutcomeIssue::error(IssueCode::NotSupported, error.to_string()).at("resourceType")]
        })?,
        Some(_) => {
            return Err(vec![
                OutcomeIssue::error(IssueCode::Structure, "resourceType must be a string")
                    .at("resourceType"),
            ]);
        }
    };
    let issues = ResourceValidator::global().validate(resource_type, resource);
    if issues.is_empty() {
        Ok(resource_type)
    } else {
        Err(issues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_patient_passes() {
        let patient = json!({
            "resourceType": "Patient",
            "id": "p1",
            "name": [{"family": "Smith", "given": ["Ann"]}],
            "birthDate": "1970-02-03",
            "_birthDate": {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}
        });
        assert_eq!(check_resource(&patient).unwrap().as_str(), "Patient");
    }

    #[test]
    fn every_problem_is_named_with_its_path() {
        let patient = json!({
            "resourceType": "Patient",
            "name": [{"family": 42}],
            "birthDate": "03/02/1970",
            "favouriteColour": "blue"
        });
        let issues = check_resource(&patient).unwrap_err();
        let paths: Vec<&str> = issues
            .iter()
            .flat_map(|i| i.expression.iter().map(String::as_str))
            .collect();
        assert!(paths.contains(&"Patient.name[0].family"), "{issues:?}");
        assert!(paths.contains(&"Patient.birthDate"), "{issues:?}");
        assert!(
            paths.contains(&"Patient"),
            "unknown element reported at the resource: {issues:?}"
        );
        assert!(issues.iter().any(|i| {
            i.diagnostics
                .as_deref()
                .unwrap_or("")
                .contains("favouriteColour")
        }));
    }

    #[test]
    fn contained_resources_are_checked_against_their_own_type() {
        let good = json!({
            "resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "contained": [{"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01"}],
            "subject": {"reference": "#p"}
        });
        assert!(check_resource(&good).is_ok(), "{:?}", check_resource(&good));
        let bad = json!({
            "resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "contained": [{"resourceType": "Patient", "id": "p", "birthDate": "01/01/1970"},
                          {"resourceType": "Starship", "id": "s"}]
        });
        let issues = check_resource(&bad).unwrap_err();
        let paths: Vec<&str> = issues
            .iter()
            .flat_map(|i| i.expression.iter().map(String::as_str))
            .collect();
        assert!(
            paths.contains(&"Observation.contained[0].birthDate"),
            "{issues:?}"
        );
        assert!(
            paths.contains(&"Observation.contained[1].resourceType"),
            "{issues:?}"
        );
    }

    #[test]
    fn type_checks_come_before_the_schema() {
        assert!(check_resource(&json!([1, 2])).is_err());
        let missing = check_resource(&json!({"id": "x"})).unwrap_err();
        assert_eq!(missing[0].code, IssueCode::Required);
        let unknown = check_resource(&json!({"resourceType": "Spaceship"})).unwrap_err();
        assert_eq!(unknown[0].code, IssueCode::NotSupported);
    }

    #[test]
    fn decimals_keep_their_precision() {
        let text = r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50}}"#;
        let value: Value = serde_json::from_str(text).unwrap();
        assert!(check_resource(&value).is_ok());
        assert_eq!(serde_json::to_string(&value).unwrap(), text);
    }

    #[test]
    fn complex_types_must_be_objects() {
        let patient = json!({"resourceType": "Patient", "name": [5, "x", [1, [2]], true]});
        let issues = check_resource(&patient).unwrap_err();
        let paths: Vec<&str> = issues
            .iter()
            .flat_map(|i| i.expression.iter().map(String::as_str))
            .collect();
        for path in [
            "Patient.name[0]",
            "Patient.name[1]",
            "Patient.name[2]",
            "Patient.name[3]",
        ] {
            assert!(paths.contains(&path), "{path} not reported: {issues:?}");
        }
        // The same holds at any depth and for backbone elements and resources.
        for (resource, path) in [
            (
                json!({"resourceType": "Patient", "contact": [{"name": 7}]}),
                "Patient.contact[0].name",
            ),
            (
                json!({"resourceType": "Patient", "contact": ["x"]}),
                "Patient.contact[0]",
            ),
            (
                json!({"resourceType": "Observation", "status": "final", "code": [1]}),
                "Observation.code",
            ),
            (
                json!({"resourceType": "Patient", "text": {"status": "generated", "div": 5}}),
                "Patient.text.div",
            ),
        ] {
            let issues = check_resource(&resource).unwrap_err();
            assert!(
                issues.iter().any(|i| i.expression == [path]),
                "{path} not reported: {issues:?}"
            );
        }
    }

    #[test]
    fn numbers_the_indexes_cannot_hold_are_refused() {
        let observation = |value: &str| -> Value {
            serde_json::from_str(&format!(
                r#"{{"resourceType":"Observation","status":"final","code":{{"text":"x"}},"valueQuantity":{{"value":{value}}}}}"#
            ))
            .unwrap()
        };
        for refused in ["1e999999999", "1E-1001", "1e1001", &"9".repeat(65)] {
            let issues = check_resource(&observation(refused)).unwrap_err();
            assert!(
                issues
                    .iter()
                    .any(|i| i.expression == ["Observation.valueQuantity.value"]
                        && i.code == IssueCode::Value),
                "{refused}: {issues:?}"
            );
        }
        for accepted in ["1e1000", "-2.5E-1000", "0.000001", &"9".repeat(64), "1.50"] {
            assert!(
                check_resource(&observation(accepted)).is_ok(),
                "{accepted} refused"
            );
        }
    }

    #[test]
    fn control_characters_in_strings_are_refused() {
        for refused in ["a\u{0}b", "x\u{1b}[31m", "\u{7}"] {
            let issues =
                check_resource(&json!({"resourceType": "Patient", "name": [{"family": refused}]}))
                    .unwrap_err();
            assert!(
                issues
                    .iter()
                    .any(|i| i.expression == ["Patient.name[0].family"]
                        && i.code == IssueCode::Value),
                "{refused:?}: {issues:?}"
            );
        }
        let text = json!({"resourceType": "Patient", "name": [{"text": "line one\r\nline\ttwo"}]});
        assert!(check_resource(&text).is_ok());
    }

    #[test]
    fn every_resource_type_has_a_schema() {
        let validator = ResourceValidator::global();
        for resource_type in ResourceType::all() {
            let issues = validator.validate(
                resource_type,
                &json!({"resourceType": resource_type.as_str()}),
            );
            assert!(
                issues.iter().all(|i| i.code != IssueCode::NotSupported),
                "{resource_type}: {issues:?}"
            );
        }
    }
}
