//! The notifier's WebSocket messages (docs/notifier-protocol.md,
//! schemas/notifier/ws-protocol.schema.json), as far as the dashboard sends and reads them.
//!
//! Both sides ignore members they do not know, so the server's messages are read leniently: an
//! unknown `type` is [`ServerMessage::Unknown`], not an error, and extra members are dropped.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the dashboard sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ClientMessage {
    /// Events of the patients on a ward (a Location id) and of the ward's Locations.
    Subscribe { ward: String },
    /// Every event of one resource type (`{"type":"subscribe","resourceType":"Observation"}`).
    #[serde(rename = "subscribe")]
    SubscribeType {
        #[serde(rename = "resourceType")]
        resource_type: String,
    },
    /// Replays every matching event after `after`, then continues live.
    Resume { after: u64 },
}

impl ClientMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What the notifier sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    Subscribed {
        id: String,
    },
    Unsubscribed {
        id: String,
    },
    Event(Event),
    /// The replay asked for by `resume` has reached `position`; live events follow.
    CaughtUp {
        position: u64,
    },
    /// Sent after 15 s of silence: the connection is alive.
    Heartbeat {
        position: u64,
    },
    Pong,
    Error {
        message: String,
    },
    #[serde(other)]
    Unknown,
}

impl ServerMessage {
    /// Reads one text frame.
    pub fn parse(text: &str) -> Result<ServerMessage, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// One committed change of a resource.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The change's global position: increasing, the key for resuming and de-duplicating.
    pub position: u64,
    pub kind: EventKind,
    pub resource_type: String,
    pub id: String,
    pub version: u64,
    /// The resource after the change; for a delete, as it stood before.
    pub resource: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum EventKind {
    ResourceCreated,
    ResourceUpdated,
    ResourceDeleted,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_messages_are_the_documented_json() {
        let subscribe = ClientMessage::Subscribe {
            ward: "ward-a".into(),
        };
        assert_eq!(
            serde_json::from_str::<Value>(&subscribe.to_json()).unwrap(),
            json!({"type": "subscribe", "ward": "ward-a"})
        );
        let every = ClientMessage::SubscribeType {
            resource_type: "Observation".into(),
        };
        assert_eq!(
            serde_json::from_str::<Value>(&every.to_json()).unwrap(),
            json!({"type": "subscribe", "resourceType": "Observation"})
        );
        let resume = ClientMessage::Resume { after: 4711 };
        assert_eq!(
            serde_json::from_str::<Value>(&resume.to_json()).unwrap(),
            json!({"type": "resume", "after": 4711})
        );
    }

    #[test]
    fn the_documented_event_parses() {
        let text = r#"{"type": "event", "position": 4711, "kind": "ResourceCreated",
            "resourceType": "Observation", "id": "o1", "version": 1,
            "recordedAt": "2026-12-01T10:00:00.000Z", "resource": {"resourceType": "Observation", "id": "o1"},
            "subscriptions": ["s1"], "somethingNew": true}"#;
        let ServerMessage::Event(event) = ServerMessage::parse(text).unwrap() else {
            panic!("not an event");
        };
        assert_eq!(event.position, 4711);
        assert_eq!(event.kind, EventKind::ResourceCreated);
        assert_eq!(event.resource_type, "Observation");
        assert_eq!(event.id, "o1");
        assert_eq!(event.version, 1);
        assert_eq!(event.resource["id"], "o1");
    }

    #[test]
    fn control_messages_parse() {
        let cases = [
            (
                r#"{"type":"caught-up","position":9}"#,
                ServerMessage::CaughtUp { position: 9 },
            ),
            (
                r#"{"type":"heartbeat","position":12}"#,
                ServerMessage::Heartbeat { position: 12 },
            ),
            (
                r#"{"type":"subscribed","id":"s1","filter":{"ward":"ward-a"}}"#,
                ServerMessage::Subscribed { id: "s1".into() },
            ),
            (
                r#"{"type":"error","message":"unknown type","received":"{}"}"#,
                ServerMessage::Error {
                    message: "unknown type".into(),
                },
            ),
            (r#"{"type":"pong"}"#, ServerMessage::Pong),
            (
                r#"{"type":"shiny-new-thing","x":1}"#,
                ServerMessage::Unknown,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(ServerMessage::parse(text).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn malformed_messages_are_errors() {
        assert!(ServerMessage::parse("not json").is_err());
        assert!(ServerMessage::parse(r#"{"type":"event","position":"x"}"#).is_err());
        assert!(ServerMessage::parse(r#"{"position":1}"#).is_err());
    }
}
