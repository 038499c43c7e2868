//! The server's part of `Resource.meta`: `versionId` and `lastUpdated` belong to the server,
//! whatever a client sends; the client's tags, profiles and security labels are kept.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// Formats an instant the way this server writes `meta.lastUpdated`: UTC, milliseconds.
pub fn format_instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Sets `id`, `meta.versionId` and `meta.lastUpdated`, keeping the rest of `meta` and the order
/// of the elements (`id` and `meta` directly after `resourceType`, where FHIR puts them).
pub fn stamp_meta(resource: &mut Map<String, Value>, id: &str, version: u32, at: DateTime<Utc>) {
    resource.shift_remove("id");
    resource.shift_insert(1.min(resource.len()), "id".into(), Value::String(id.into()));
    let mut meta = match resource.shift_remove("meta") {
        Some(Value::Object(meta)) => meta,
        _ => Map::new(),
    };
    meta.shift_remove("versionId");
    meta.shift_remove("lastUpdated");
    meta.shift_insert(0, "versionId".into(), Value::String(version.to_string()));
    meta.shift_insert(1, "lastUpdated".into(), Value::String(format_instant(at)));
    resource.shift_insert(2.min(resource.len()), "meta".into(), Value::Object(meta));
}

/// Removes what `stamp_meta` sets, so two versions can be compared on content alone.
pub fn strip_server_meta(resource: &Value) -> Value {
    let mut copy = resource.clone();
    if let Some(object) = copy.as_object_mut()
        && let Some(Value::Object(meta)) = object.get_mut("meta")
    {
        meta.shift_remove("versionId");
        meta.shift_remove("lastUpdated");
        if meta.is_empty() {
            object.shift_remove("meta");
        }
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn stamps_server_fields_and_keeps_client_meta() {
        let mut patient = json!({
            "resourceType": "Patient",
            "active": true,
            "meta": {"versionId": "99", "tag": [{"code": "x"}]},
            "id": "old"
        });
        let at = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        stamp_meta(patient.as_object_mut().unwrap(), "p1", 3, at);
        assert_eq!(
            serde_json::to_string(&patient).unwrap(),
            r#"{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","lastUpdated":"2024-01-02T03:04:05.000Z","tag":[{"code":"x"}]},"active":true}"#
        );
        assert_eq!(
            strip_server_meta(&patient),
            json!({"resourceType": "Patient", "id": "p1", "meta": {"tag": [{"code": "x"}]}, "active": true})
        );
    }
}
