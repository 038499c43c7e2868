//! The WebSocket protocol's JSON Schema (`schemas/notifier/ws-protocol.schema.json`) accepts
//! the messages `docs/notifier-protocol.md` shows and refuses malformed ones, so clients can
//! validate against it.

use serde_json::{Value, json};

fn validator(definition: &str) -> jsonschema::Validator {
    let mut schema: Value = serde_json::from_str(include_str!(
        "../../../schemas/notifier/ws-protocol.schema.json"
    ))
    .unwrap();
    schema["$ref"] = json!(format!("#/$defs/{definition}"));
    jsonschema::validator_for(&schema).unwrap()
}

#[test]
fn client_messages() {
    let client = validator("ClientMessage");
    for good in [
        json!({"type": "subscribe", "patient": "123"}),
        json!({"type": "subscribe", "ward": "ward-a"}),
        json!({"type": "subscribe", "resourceType": "Observation"}),
        json!({"type": "subscribe", "criteria": "Observation?category=vital-signs&subject=Patient/123"}),
        json!({"type": "unsubscribe", "id": "s1"}),
        json!({"type": "resume", "after": 4711}),
        json!({"type": "ping"}),
    ] {
        assert!(client.is_valid(&good), "{good}");
    }
    for bad in [
        json!({"type": "subscribe"}),
        json!({"type": "subscribe", "patient": "123", "ward": "ward-a"}),
        json!({"type": "subscribe", "criteria": "not a search"}),
        json!({"type": "subscribe", "resourceType": "observation"}),
        json!({"type": "resume"}),
        json!({"type": "resume", "after": -1}),
        json!({"type": "shout"}),
        json!("subscribe"),
    ] {
        assert!(!client.is_valid(&bad), "{bad}");
    }
}

#[test]
fn server_messages() {
    let server = validator("ServerMessage");
    for good in [
        json!({"type": "subscribed", "id": "s1"}),
        json!({"type": "event", "position": 4711, "kind": "ResourceCreated", "resourceType": "Observation",
               "id": "o1", "version": 1, "recordedAt": "2026-12-01T10:00:00.000Z",
               "resource": {"resourceType": "Observation", "id": "o1"}, "subscriptions": ["s1"]}),
        json!({"type": "caught-up", "position": 4711}),
        json!({"type": "heartbeat", "position": 4711}),
        json!({"type": "error", "message": "unknown message type"}),
        json!({"type": "error", "code": "subscription-budget", "message": "at most 50"}),
    ] {
        assert!(server.is_valid(&good), "{good}");
    }
    for bad in [
        json!({"type": "event", "position": 0, "kind": "ResourceCreated", "resourceType": "Observation",
               "id": "o1", "version": 1, "resource": {}, "subscriptions": []}),
        json!({"type": "event", "position": 1, "kind": "Made", "resourceType": "Observation",
               "id": "o1", "version": 1, "resource": {}, "subscriptions": []}),
        json!({"type": "heartbeat"}),
        json!({"type": "error", "code": 50, "message": "at most 50"}),
    ] {
        assert!(!server.is_valid(&bad), "{bad}");
    }
}
