//! One committed change as the notifier handles it, whether it came live from JetStream or was
//! replayed from the event store for a resuming client, and the `event` message it becomes.
//!
//! The message is rendered once per event up to its `subscriptions` member; each connection
//! only appends which of its subscriptions matched, so ten thousand dashboards watching one ward
//! cost one serialisation of the resource, not ten thousand.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// A change, parsed once and shared by every connection it goes to.
#[derive(Debug)]
pub struct Event {
    pub position: i64,
    pub kind: String,
    pub resource_type: String,
    pub id: String,
    /// The resource after the change (for a delete, as it stood before).
    pub resource: Value,
    /// The teaching sandbox the change was made in (its name and run), if not the live record.
    pub sandbox: Option<event_store::SandboxTag>,
    /// The `event` message without its closing `"subscriptions":[...]}`.
    message_head: String,
}

/// The envelope the outbox relay publishes (`schemas/events/fhir-event.schema.json`); only the
/// members the notifier uses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    position: Option<i64>,
    kind: String,
    resource_type: String,
    resource_id: String,
    version: i32,
    recorded_at: String,
    #[serde(borrow)]
    resource: &'a RawValue,
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// The part of the metadata the notifier reads: which sandbox, if any.
#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    sandbox: Option<event_store::SandboxTag>,
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the event is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the event has no position")]
    NoPosition,
}

impl Event {
    /// From a JetStream message's payload.
    pub fn from_envelope(payload: &[u8]) -> Result<Arc<Event>, EventError> {
        let envelope: Envelope = serde_json::from_slice(payload)?;
        let mut event = Event::new(
            envelope.position.ok_or(EventError::NoPosition)?,
            envelope.kind,
            envelope.resource_type,
            envelope.resource_id,
            envelope.version,
            &envelope.recorded_at,
            envelope.resource.get(),
        )?;
        event.sandbox = envelope.metadata.and_then(|metadata| metadata.sandbox);
        Ok(Arc::new(event))
    }

    /// From a row of the event store (a replay).
    pub fn from_stored(stored: &event_store::event::StoredEvent) -> Result<Arc<Event>, EventError> {
        let mut event = Event::new(
            stored.position.ok_or(EventError::NoPosition)?,
            stored.kind.clone(),
            stored.resource_type.clone(),
            stored.resource_id.clone(),
            stored.version,
            &fhir_model::format_instant(stored.recorded_at),
            &stored.resource,
        )?;
        event.sandbox = stored.sandbox();
        Ok(Arc::new(event))
    }

    fn new(
        position: i64,
        kind: String,
        resource_type: String,
        id: String,
        version: i32,
        recorded_at: &str,
        resource: &str,
    ) -> Result<Event, EventError> {
        let parsed: Value = serde_json::from_str(resource)?;
        let quote = |text: &str| Value::from(text).to_string();
        let message_head = format!(
            r#"{{"type":"event","position":{position},"kind":{},"resourceType":{},"id":{},"version":{version},"recordedAt":{},"resource":{resource},"subscriptions":"#,
            quote(&kind),
            quote(&resource_type),
            quote(&id),
            quote(recorded_at),
        );
        Ok(Event {
            position,
            kind,
            resource_type,
            id,
            resource: parsed,
            sandbox: None,
            message_head,
        })
    }

    pub fn is_delete(&self) -> bool {
        self.kind == event_store::event::EventKind::ResourceDeleted.as_str()
    }

    /// The `event` message for a connection whose subscriptions `ids` matched.
    pub fn message(&self, ids: &[String]) -> String {
        let ids = Value::from(ids.to_vec()).to_string();
        let mut message = String::with_capacity(self.message_head.len() + ids.len() + 1);
        message.push_str(&self.message_head);
        message.push_str(&ids);
        message.push('}');
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_carries_the_event_and_the_matched_subscriptions() {
        // Raw text: the decimal's trailing zero must survive, as the stored resource has it.
        let payload = r#"{"position": 12, "eventId": 40, "kind": "ResourceUpdated",
            "resourceType": "Observation", "resourceId": "o\"1", "version": 2,
            "transactionId": "5f0c8e52-8d4a-4c43-9d1e-4c1f1d3b9a11",
            "recordedAt": "2026-12-01T10:00:00.000Z",
            "resource": {"resourceType": "Observation", "id": "o\"1", "valueQuantity": {"value": 1.50}},
            "metadata": {}, "hash": "00"}"#;
        let event = Event::from_envelope(payload.as_bytes()).unwrap();
        let message: Value =
            serde_json::from_str(&event.message(&["patient:p1".to_owned()])).unwrap();
        assert_eq!(message["type"], "event");
        assert_eq!(message["position"], 12);
        assert_eq!(message["kind"], "ResourceUpdated");
        assert_eq!(message["id"], "o\"1");
        assert_eq!(message["version"], 2);
        assert_eq!(message["recordedAt"], "2026-12-01T10:00:00.000Z");
        assert_eq!(
            message["resource"]["valueQuantity"]["value"].to_string(),
            "1.50"
        );
        assert_eq!(message["subscriptions"], serde_json::json!(["patient:p1"]));
        assert!(Event::from_envelope(b"{}").is_err());
    }
}
