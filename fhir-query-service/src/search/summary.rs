//! `_summary` and `_elements`: returning part of each resource, driven by the R4 element model
//! (`isSummary` and minimum cardinality from the StructureDefinitions), never by hand.
//!
//! A trimmed resource is marked with the `SUBSETTED` tag from
//! `http://terminology.hl7.org/CodeSystem/v3-ObservationValue`, as the specification asks, so no
//! client mistakes it for the whole resource.

use fhir_model::ElementModel;
use fhir_search::query::Summary;
use serde_json::{Map, Value, json};

const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// How to trim the resources of a search page.
#[derive(Debug, Clone)]
pub enum Trim {
    Summary(Summary),
    Elements(Vec<String>),
}

impl Trim {
    /// What the request asks for; `None` when resources go out whole.
    pub fn from_request(summary: Option<Summary>, elements: &[String]) -> Option<Self> {
        match summary {
            Some(Summary::False) | None if elements.is_empty() => None,
            Some(Summary::False) | None => Some(Self::Elements(elements.to_vec())),
            Some(summary) => Some(Self::Summary(summary)),
        }
    }

    /// Trims `resource` in place.
    pub fn apply(&self, resource: &mut Value) {
        let Some(object) = resource.as_object_mut() else {
            return;
        };
        let Some(resource_type) = object
            .get("resourceType")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return;
        };
        let model = ElementModel::global();
        let Some(definition) = model.type_definition(&resource_type) else {
            return;
        };
        let keep = |name: &str| -> bool {
            if matches!(name, "resourceType" | "id" | "meta") {
                return true;
            }
            let element = definition
                .child(name.trim_start_matches('_'))
                .map(|child| child.element);
            match self {
                Trim::Summary(Summary::True) => element.is_some_and(|e| e.is_summary()),
                Trim::Summary(Summary::Text) => {
                    name == "text" || element.is_some_and(|e| e.min() > 0)
                }
                Trim::Summary(Summary::Data) => name != "text",
                Trim::Summary(Summary::Count | Summary::False) => true,
                Trim::Elements(wanted) => {
                    let bare = name.trim_start_matches('_');
                    element.is_some_and(|e| e.min() > 0)
                        || wanted.iter().any(|w| {
                            w == bare || element.is_some_and(|e| e.is_choice() && e.name() == w)
                        })
                }
            }
        };
        let before = object.len();
        object.retain(|name, _| keep(name));
        if object.len() < before {
            mark_subsetted(object);
        }
    }
}

fn mark_subsetted(object: &mut Map<String, Value>) {
    let meta = object
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let tags = meta
        .entry("tag")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(tags) = tags.as_array_mut() {
        tags.push(json!({"system": SUBSETTED_SYSTEM, "code": "SUBSETTED"}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient() -> Value {
        json!({
            "resourceType": "Patient", "id": "p", "meta": {"versionId": "1"},
            "text": {"status": "generated", "div": "<div>x</div>"},
            "name": [{"family": "Ng"}], "birthDate": "1970-01-01",
            "photo": [{"contentType": "image/png"}], "maritalStatus": {"text": "M"},
            "deceasedBoolean": false
        })
    }

    fn tagged(resource: &Value) -> bool {
        resource["meta"]["tag"]
            .as_array()
            .is_some_and(|tags| tags.iter().any(|t| t["code"] == "SUBSETTED"))
    }

    #[test]
    fn summary_true_keeps_summary_elements() {
        let mut resource = patient();
        Trim::Summary(Summary::True).apply(&mut resource);
        assert!(resource.get("name").is_some() && resource.get("birthDate").is_some());
        assert!(resource.get("deceasedBoolean").is_some());
        assert!(resource.get("photo").is_none() && resource.get("text").is_none());
        assert!(resource.get("maritalStatus").is_none());
        assert!(tagged(&resource));
    }

    #[test]
    fn summary_text_and_data() {
        let mut text = patient();
        Trim::Summary(Summary::Text).apply(&mut text);
        assert!(text.get("text").is_some() && text.get("name").is_none());
        let mut data = patient();
        Trim::Summary(Summary::Data).apply(&mut data);
        assert!(data.get("text").is_none() && data.get("photo").is_some());
    }

    #[test]
    fn elements_keep_what_was_asked() {
        let mut resource = patient();
        Trim::Elements(vec!["birthDate".into(), "deceased".into()]).apply(&mut resource);
        let keys: Vec<&String> = resource.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            vec!["resourceType", "id", "meta", "birthDate", "deceasedBoolean"]
        );
        assert!(tagged(&resource));
    }

    #[test]
    fn nothing_removed_means_no_tag() {
        let mut resource = json!({"resourceType": "Patient", "id": "p"});
        Trim::Elements(vec!["id".into()]).apply(&mut resource);
        assert!(!tagged(&resource));
    }
}
