//! What changed between versions: `GET /fhir/<Type>/<id>/$diff?from=<v>&to=<v>` and
//! `GET /fhir/<Type>/<id>/$timeline`, from the event store, in the record the request reads
//! (the live one, a sandbox's, or the past's).
//!
//! `$diff` answers a `Parameters` resource: `from`, `to`, the JSON Patch (RFC 6902) that turns
//! version `from` into version `to` (`patch`, as JSON text: applied to the older version it
//! gives the newer, `meta` included), and each changed element as a FHIR path (`path`:
//! `Observation.valueQuantity.value`, array positions left out). `$timeline` answers a
//! `Parameters` resource with one `version` per version, oldest first: its id, time, kind, who
//! made it (user, role, `fhirUser`, client), the transaction, request id and reason its event
//! recorded, and the paths changed since the version before.

use std::collections::BTreeSet;

use access_policy::Interaction;
use axum::http::StatusCode;
use axum::response::Response;
use event_store::StoredEvent;
use fhir_model::{IssueCode, ResourceId, ResourceType};
use serde_json::{Value, json};
use service_kit::fhir_response::{FhirError, fhir_json};

use super::AppState;
use crate::access::Caller;

/// `$diff` of `resource_type/id` with the request's `from` and `to`.
pub(crate) async fn diff(
    state: &AppState,
    caller: &Caller,
    resource_type: ResourceType,
    id: &ResourceId,
    params: &[(String, String)],
) -> Result<Response, FhirError> {
    let versions = visible_versions(state, caller, resource_type, id).await?;
    let version = |name: &str| -> Result<i32, FhirError> {
        let text = params
            .iter()
            .find(|(param, _)| param == name)
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| invalid(format!("$diff needs `{name}`, a version number")))?;
        text.parse::<i32>()
            .ok()
            .filter(|version| *version > 0)
            .ok_or_else(|| invalid(format!("`{name}` is a version number, not `{text}`")))
    };
    let (from, to) = (version("from")?, version("to")?);
    let find = |wanted: i32| {
        versions
            .iter()
            .find(|event| event.version == wanted)
            .ok_or_else(|| {
                FhirError::new(
                    StatusCode::NOT_FOUND,
                    IssueCode::NotFound,
                    format!("{resource_type}/{id} has no version {wanted}"),
                )
            })
    };
    let (older, newer) = (body(find(from)?)?, body(find(to)?)?);
    let patch = json_patch::diff(&older, &newer);
    let patch = serde_json::to_value(&patch).map_err(FhirError::internal)?;
    let mut parameters = vec![
        json!({"name": "from", "valueInteger": from}),
        json!({"name": "to", "valueInteger": to}),
        json!({"name": "patch", "valueString": patch.to_string()}),
    ];
    parameters.extend(
        changed_paths(resource_type.as_str(), &patch)
            .into_iter()
            .map(|path| json!({"name": "path", "valueString": path})),
    );
    Ok(fhir_json(
        StatusCode::OK,
        json!({"resourceType": "Parameters", "parameter": parameters}).to_string(),
    ))
}

/// `$timeline` of `resource_type/id`.
pub(crate) async fn timeline(
    state: &AppState,
    caller: &Caller,
    resource_type: ResourceType,
    id: &ResourceId,
) -> Result<Response, FhirError> {
    let versions = visible_versions(state, caller, resource_type, id).await?;
    let mut previous: Option<Value> = None;
    let mut parameters = Vec::with_capacity(versions.len());
    for event in &versions {
        let resource = body(event)?;
        let changed = match &previous {
            Some(before) => {
                let patch = serde_json::to_value(json_patch::diff(before, &resource))
                    .map_err(FhirError::internal)?;
                changed_paths(resource_type.as_str(), &patch)
            }
            None => Vec::new(),
        };
        let metadata: Value = serde_json::from_str(&event.metadata).unwrap_or(Value::Null);
        let text = |value: &Value| value.as_str().map(str::to_owned);
        let mut parts = vec![
            json!({"name": "versionId", "valueString": event.version.to_string()}),
            json!({"name": "lastUpdated", "valueInstant": fhir_model::format_instant(event.recorded_at)}),
            json!({"name": "kind", "valueCode": event.kind}),
            json!({"name": "transaction", "valueString": event.transaction_id.to_string()}),
        ];
        let actor = &metadata["actor"];
        for (name, value) in [
            ("user", text(&actor["user"])),
            ("role", text(&actor["role"])),
            ("fhirUser", text(&actor["fhirUser"])),
            ("client", text(&actor["clientId"])),
            ("requestId", text(&metadata["requestId"])),
            ("reason", text(&metadata["reason"])),
            ("sandbox", text(&metadata["sandbox"]["name"])),
        ] {
            if let Some(value) = value.filter(|value| !value.is_empty()) {
                parts.push(json!({"name": name, "valueString": value}));
            }
        }
        parts.extend(
            changed
                .into_iter()
                .map(|path| json!({"name": "changed", "valueString": path})),
        );
        parameters.push(json!({"name": "version", "part": parts}));
        previous = Some(resource);
    }
    Ok(fhir_json(
        StatusCode::OK,
        json!({"resourceType": "Parameters", "parameter": parameters}).to_string(),
    ))
}

/// The resource's versions the caller may see, oldest first: in the request's record, up to
/// its past position if it asked for one; 404 when there are none.
async fn visible_versions(
    state: &AppState,
    caller: &Caller,
    resource_type: ResourceType,
    id: &ResourceId,
) -> Result<Vec<StoredEvent>, FhirError> {
    let access = caller.allow(Interaction::History, resource_type)?;
    let mut versions = caller
        .store(state)
        .stream(resource_type.as_str(), id.as_str())
        .await
        .map_err(FhirError::internal)?;
    if let Some(past) = caller.past {
        versions.retain(|event| event.position.is_some_and(|at| at <= past.position));
    }
    let not_known = || {
        FhirError::new(
            StatusCode::NOT_FOUND,
            IssueCode::NotFound,
            format!("{resource_type}/{id} is not known"),
        )
    };
    let latest = versions.last().ok_or_else(not_known)?;
    if !access.is_unbounded() {
        // A bound token sees what it may see now: the newest version decides, as for history.
        let resource = body(latest)?;
        if !latest.is_delete()
            && !caller.sees(
                state,
                &access,
                resource_type.as_str(),
                id.as_str(),
                &resource,
            )
        {
            return Err(not_known());
        }
    }
    Ok(versions)
}

fn body(event: &StoredEvent) -> Result<Value, FhirError> {
    serde_json::from_str(&event.resource).map_err(FhirError::internal)
}

/// The FHIR paths of the elements a JSON Patch touches: `Observation.valueQuantity.value` for
/// `/valueQuantity/value` and `/code/coding/0/code` alike (array positions are not elements).
fn changed_paths(resource_type: &str, patch: &Value) -> Vec<String> {
    let mut paths = BTreeSet::new();
    for operation in patch.as_array().into_iter().flatten() {
        let Some(pointer) = operation["path"].as_str() else {
            continue;
        };
        let segments: Vec<String> = pointer
            .split('/')
            .skip(1)
            .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
            .filter(|segment| segment.parse::<usize>().is_err())
            .collect();
        let path = if segments.is_empty() {
            resource_type.to_owned()
        } else {
            format!("{resource_type}.{}", segments.join("."))
        };
        paths.insert(path);
    }
    paths.into_iter().collect()
}

fn invalid(message: String) -> FhirError {
    FhirError::new(StatusCode::BAD_REQUEST, IssueCode::Invalid, message)
}

#[cfg(test)]
mod tests {
    use super::changed_paths;
    use serde_json::json;

    #[test]
    fn paths_are_elements_without_array_positions() {
        let patch = json!([
            {"op": "replace", "path": "/valueQuantity/value", "value": 3},
            {"op": "add", "path": "/code/coding/1", "value": {}},
            {"op": "remove", "path": "/code/coding/0/display"},
            {"op": "replace", "path": "/meta/versionId", "value": "2"}
        ]);
        assert_eq!(
            changed_paths("Observation", &patch),
            [
                "Observation.code.coding",
                "Observation.code.coding.display",
                "Observation.meta.versionId",
                "Observation.valueQuantity.value"
            ]
        );
    }
}
