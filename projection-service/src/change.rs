//! One committed change to one resource, as the projector needs it: from a JetStream message
//! (the live path) or from a row of the event store (a rebuild).

use chrono::{DateTime, Utc};
use event_store::StoredEvent;
use serde::Deserialize;
use serde_json::Value;

/// A resource version to project (or a delete).
#[derive(Debug, Clone)]
pub struct Change {
    pub position: i64,
    pub resource_type: String,
    pub resource_id: String,
    pub version: i32,
    pub recorded_at: DateTime<Utc>,
    pub deleted: bool,
    /// The resource after the change (before it, for a delete).
    pub resource: Value,
    /// 0 for the live record, else the teaching sandbox run the change was made in.
    pub partition: i64,
}

/// The event envelope (`schemas/events/fhir-event.schema.json`); members not listed are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    position: i64,
    kind: String,
    resource_type: String,
    resource_id: String,
    version: i32,
    recorded_at: DateTime<Utc>,
    resource: Value,
    #[serde(default)]
    partition: i64,
}

/// A message that is not a FHIR event envelope.
#[derive(Debug, thiserror::Error)]
#[error("not a FHIR event envelope: {0}")]
pub struct MalformedEvent(String);

impl MalformedEvent {
    /// A message whose event could not be read, for `reason`.
    pub fn new(reason: String) -> Self {
        Self(reason)
    }
}

impl Change {
    /// Decodes a message published by the outbox relay.
    pub fn from_message(payload: &[u8]) -> Result<Self, MalformedEvent> {
        let envelope: Envelope =
            serde_json::from_slice(payload).map_err(|error| MalformedEvent(error.to_string()))?;
        Ok(Self {
            position: envelope.position,
            deleted: envelope.kind == event_store::EventKind::ResourceDeleted.as_str(),
            resource_type: envelope.resource_type,
            resource_id: envelope.resource_id,
            version: envelope.version,
            recorded_at: envelope.recorded_at,
            resource: envelope.resource,
            partition: envelope.partition,
        })
    }

    /// Reads an event from the store (it must have been sequenced).
    pub fn from_stored(event: &StoredEvent) -> Result<Self, MalformedEvent> {
        let position = event.position.ok_or_else(|| {
            MalformedEvent(format!("event {} has no position yet", event.event_id))
        })?;
        let resource = serde_json::from_str(&event.resource)
            .map_err(|error| MalformedEvent(error.to_string()))?;
        Ok(Self {
            position,
            resource_type: event.resource_type.clone(),
            resource_id: event.resource_id.clone(),
            version: event.version,
            recorded_at: event.recorded_at,
            deleted: event.is_delete(),
            resource,
            partition: event.partition,
        })
    }
}
