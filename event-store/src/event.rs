//! What the store holds and what goes on NATS.
//!
//! An event row is the resource after the change (as exact JSON text), the patch that made it,
//! and metadata: who (the actor), in which request and transaction, when, and from which
//! address. Each event's hash covers all of that and the hash of the previous event of its
//! stream, so an edited or removed version is detectable (`EventStore::verify_stream`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::aggregate::ResourceEvent;

/// The three things that can happen to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    ResourceCreated,
    ResourceUpdated,
    ResourceDeleted,
}

impl EventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::ResourceCreated => "ResourceCreated",
            EventKind::ResourceUpdated => "ResourceUpdated",
            EventKind::ResourceDeleted => "ResourceDeleted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ResourceCreated" => Some(EventKind::ResourceCreated),
            "ResourceUpdated" => Some(EventKind::ResourceUpdated),
            "ResourceDeleted" => Some(EventKind::ResourceDeleted),
            _ => None,
        }
    }
}

/// Who made a change: taken from the request's checked access token (never from what the
/// request otherwise claims).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// The user's id, or the client id of a backend service.
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The client software (User-Agent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The user's FHIR resource (`Practitioner/<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// The OAuth client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The scopes the token granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<String>,
}

/// Metadata recorded with every event of one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMetadata {
    pub actor: Actor,
    pub request_id: String,
    /// One per HTTP request; the events of a transaction Bundle share it.
    pub transaction_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    /// The peer address the request came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    /// The client's address behind trusted proxies (the right-most `X-Forwarded-For` address
    /// that is not one), when the request came through one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded_for: Option<String>,
    /// Why the change was made, when the client said (`X-Change-Reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The teaching sandbox the change was made in; none for the live record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxTag>,
}

/// Which sandbox, and which run of it, an event belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxTag {
    pub name: String,
    /// The run's partition of the store (a reset starts a new one).
    pub partition: i64,
}

/// An event ready to be appended: the stream, its version, and the exact JSON texts.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub resource_type: String,
    pub resource_id: String,
    pub version: u32,
    pub kind: EventKind,
    pub resource: String,
    pub patch: Option<String>,
    /// The hash of the stream's previous event; `None` for the first.
    pub prev_hash: Option<Vec<u8>>,
}

impl NewEvent {
    /// The row for a domain event of stream `(resource_type, resource_id)`.
    pub fn from_domain(
        resource_type: &str,
        resource_id: &str,
        event: &ResourceEvent,
        prev_hash: Option<Vec<u8>>,
    ) -> Self {
        let (kind, resource, patch) = match event {
            ResourceEvent::ResourceCreated { resource } => {
                (EventKind::ResourceCreated, resource, None)
            }
            ResourceEvent::ResourceUpdated { resource, patch } => {
                (EventKind::ResourceUpdated, resource, patch.as_ref())
            }
            ResourceEvent::ResourceDeleted { previous, .. } => {
                (EventKind::ResourceDeleted, previous, None)
            }
        };
        NewEvent {
            resource_type: resource_type.to_owned(),
            resource_id: resource_id.to_owned(),
            version: event.version(),
            kind,
            resource: resource.to_string(),
            patch: patch.map(ToString::to_string),
            prev_hash,
        }
    }
}

/// An event as the store holds it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredEvent {
    pub event_id: i64,
    /// `None` for the moment between commit and sequencing.
    pub position: Option<i64>,
    pub resource_type: String,
    pub resource_id: String,
    pub version: i32,
    pub kind: String,
    pub resource: String,
    pub patch: Option<String>,
    pub metadata: String,
    pub transaction_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub prev_hash: Option<Vec<u8>>,
    pub hash: Vec<u8>,
    /// 0 for the live record, else the sandbox run's partition.
    pub partition: i64,
}

impl StoredEvent {
    /// The sandbox the event was written in, from its metadata (none for the live record).
    pub fn sandbox(&self) -> Option<SandboxTag> {
        if self.partition == 0 {
            return None;
        }
        #[derive(Deserialize)]
        struct Tagged {
            sandbox: Option<SandboxTag>,
        }
        serde_json::from_str::<Tagged>(&self.metadata)
            .ok()
            .and_then(|tagged| tagged.sandbox)
    }

    pub fn event_kind(&self) -> Option<EventKind> {
        EventKind::parse(&self.kind)
    }

    pub fn is_delete(&self) -> bool {
        self.kind == EventKind::ResourceDeleted.as_str()
    }

    /// The domain event this row records, to rebuild the aggregate from.
    pub fn to_domain(&self) -> Result<ResourceEvent, serde_json::Error> {
        let resource = serde_json::from_str(&self.resource)?;
        Ok(match self.event_kind() {
            Some(EventKind::ResourceDeleted) => ResourceEvent::ResourceDeleted {
                version: u32::try_from(self.version).unwrap_or(0),
                at: self.recorded_at,
                previous: resource,
            },
            Some(EventKind::ResourceUpdated) => ResourceEvent::ResourceUpdated {
                resource,
                patch: self
                    .patch
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()?,
            },
            _ => ResourceEvent::ResourceCreated { resource },
        })
    }

    /// Recomputes this event's hash from its stored content.
    pub fn computed_hash(&self) -> Vec<u8> {
        event_hash(
            self.prev_hash.as_deref(),
            &self.resource_type,
            &self.resource_id,
            self.version,
            &self.kind,
            &self.resource,
            self.patch.as_deref(),
            &self.metadata,
        )
    }

    /// The message published on NATS: the contract in `schemas/events/fhir-event.schema.json`.
    pub fn envelope_json(&self) -> Result<String, serde_json::Error> {
        let envelope = Envelope {
            position: self.position,
            event_id: self.event_id,
            kind: &self.kind,
            resource_type: &self.resource_type,
            resource_id: &self.resource_id,
            version: self.version,
            transaction_id: self.transaction_id,
            recorded_at: self.recorded_at,
            resource: RawValue::from_string(self.resource.clone())?,
            patch: self.patch.clone().map(RawValue::from_string).transpose()?,
            metadata: RawValue::from_string(self.metadata.clone())?,
            partition: self.partition,
            hash: hex::encode(&self.hash),
            prev_hash: self.prev_hash.as_ref().map(hex::encode),
        };
        serde_json::to_string(&envelope)
    }

    /// The message for an event too large for NATS, or whose stored JSON cannot be sent as it
    /// stands: every member of [`Self::envelope_json`] but the resource, the patch and the
    /// metadata, and `"byReference": true`. A consumer reads the event itself from the store by
    /// its position ([`EventStore::event_at`](crate::EventStore::event_at)). Made of plain
    /// values only, so it cannot fail to serialise.
    pub fn reference_json(&self) -> String {
        let mut reference = serde_json::json!({
            "position": self.position,
            "eventId": self.event_id,
            "kind": self.kind,
            "resourceType": self.resource_type,
            "resourceId": self.resource_id,
            "version": self.version,
            "transactionId": self.transaction_id,
            "recordedAt": self.recorded_at,
            "hash": hex::encode(&self.hash),
            "prevHash": self.prev_hash.as_ref().map(hex::encode),
            "byReference": true,
        });
        if self.partition != 0 {
            reference["partition"] = self.partition.into();
        }
        reference.to_string()
    }

    /// The JetStream message id: a retry of the same event is a duplicate, never a second copy.
    pub fn message_id(&self) -> String {
        if self.partition == 0 {
            format!(
                "{}/{}/{}",
                self.resource_type, self.resource_id, self.version
            )
        } else {
            // A sandbox's version 2 of a resource is not the live record's version 2.
            format!(
                "{}/{}/{}@{}",
                self.resource_type, self.resource_id, self.version, self.partition
            )
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    position: Option<i64>,
    event_id: i64,
    kind: &'a str,
    resource_type: &'a str,
    resource_id: &'a str,
    version: i32,
    transaction_id: Uuid,
    recorded_at: DateTime<Utc>,
    resource: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<Box<RawValue>>,
    metadata: Box<RawValue>,
    hash: String,
    prev_hash: Option<String>,
    #[serde(skip_serializing_if = "is_live")]
    partition: i64,
}

fn is_live(partition: &i64) -> bool {
    *partition == 0
}

/// SHA-256 over the previous hash and every stored field, each length-prefixed so that no two
/// different events can produce the same input.
#[allow(clippy::too_many_arguments)]
pub(crate) fn event_hash(
    prev_hash: Option<&[u8]>,
    resource_type: &str,
    resource_id: &str,
    version: i32,
    kind: &str,
    resource: &str,
    patch: Option<&str>,
    metadata: &str,
) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.unwrap_or(&[0u8; 32]));
    let version = version.to_string();
    for field in [
        resource_type,
        resource_id,
        &version,
        kind,
        resource,
        patch.unwrap_or(""),
        metadata,
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.finalize().to_vec()
}
