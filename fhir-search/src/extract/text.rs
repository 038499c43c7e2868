//! The full-text fields: `narrative` for `_text` and `content` for `_content`.
//!
//! `narrative` is the resource's `text.div` as plain text ([`crate::normalize::narrative`]).
//! `content` is every string value of the resource in document order, joined by spaces, without
//! any narrative `div` (the resource's or its contained resources'): the narrative is `_text`'s,
//! and its markup is not content. Keys, numbers and booleans are not text; control characters
//! other than whitespace are dropped.

use serde_json::Value;

use crate::normalize::narrative::xhtml_to_text;

/// Deepest nesting walked for `content` (FHIR resources are far shallower).
const MAX_DEPTH: usize = 64;

pub(super) fn narrative(resource: &Value) -> String {
    resource
        .get("text")
        .and_then(|text| text.get("div"))
        .and_then(Value::as_str)
        .map(xhtml_to_text)
        .unwrap_or_default()
}

pub(super) fn content(resource: &Value) -> String {
    let mut content = String::new();
    walk(resource, false, 0, &mut content);
    content
}

fn walk(value: &Value, in_narrative: bool, depth: usize, content: &mut String) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::String(text) => append(text, content),
        Value::Array(values) => {
            for value in values {
                walk(value, false, depth + 1, content);
            }
        }
        Value::Object(members) => {
            for (key, member) in members {
                if in_narrative && key == "div" {
                    continue;
                }
                walk(
                    member,
                    key == "text" && member.is_object(),
                    depth + 1,
                    content,
                );
            }
        }
        _ => {}
    }
}

fn append(text: &str, content: &mut String) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    if !content.is_empty() {
        content.push(' ');
    }
    content.extend(
        text.chars()
            .filter(|c| !c.is_control() || c.is_whitespace()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_is_every_string_but_the_narrative() {
        let resource = json!({
            "resourceType": "Patient",
            "text": {"status": "generated", "div": "<div>Hidden markup</div>"},
            "name": [{"family": "Smith", "given": ["Ann", " "]}],
            "active": true,
            "multipleBirthInteger": 2,
            "contained": [{"resourceType": "Basic", "text": {"div": "<div>no</div>"}, "id": "b1"}],
            "note": "a\u{0}b"
        });
        assert_eq!(
            content(&resource),
            "Patient generated Smith Ann Basic b1 ab"
        );
        assert_eq!(narrative(&resource), "Hidden markup");
    }

    #[test]
    fn deep_nesting_stops_without_overflowing() {
        let mut value = json!("leaf");
        for _ in 0..200 {
            value = json!([value]);
        }
        let resource = json!({"resourceType": "Basic", "deep": value});
        assert_eq!(content(&resource), "Basic");
    }
}
