//! The messages of the `/ws` protocol (docs/notifier-protocol.md,
//! schemas/notifier/ws-protocol.schema.json): what a client may send, parsed into values that can
//! only be valid, and the server's replies.
//!
//! A subscription's id is its filter written out (`ward:ward-a`), so the same filter gets the
//! same id on every connection and every notifier instance, and an event's message can be
//! shared by all connections that matched it through the same subscriptions.

use std::fmt;

use fhir_model::ResourceType;
use fhir_search::Registry;
use fhir_search::query::SearchQuery;
use serde_json::{Value, json};

/// Longest client message taken; anything longer is answered with an error.
pub const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

/// What a subscription selects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Resources in the patient's compartment, and the Patient.
    Patient(String),
    /// Events of patients on the ward (a Location id) and of the ward's Locations.
    Ward(String),
    /// Every event of one resource type.
    Type(String),
    /// A FHIR search (`Type?params`), kept as the client wrote it.
    Criteria(Criteria),
}

impl Topic {
    /// The subscription id: the filter written out.
    pub fn id(&self) -> String {
        self.to_string()
    }

    /// The filter as the protocol's `Filter` object.
    pub fn filter(&self) -> Value {
        match self {
            Topic::Patient(id) => json!({"patient": id}),
            Topic::Ward(id) => json!({"ward": id}),
            Topic::Type(name) => json!({"resourceType": name}),
            Topic::Criteria(criteria) => json!({"criteria": criteria.text}),
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Patient(id) => write!(f, "patient:{id}"),
            Topic::Ward(id) => write!(f, "ward:{id}"),
            Topic::Type(name) => write!(f, "resourceType:{name}"),
            Topic::Criteria(criteria) => write!(f, "criteria:{}", criteria.text),
        }
    }
}

/// A search subscription: checked with the query service's parser when subscribed, so that
/// every later evaluation can only fail on the database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Criteria {
    pub text: String,
    pub resource_type: String,
    /// The decoded parameters, in the order given.
    pub params: Vec<(String, String)>,
}

impl Criteria {
    /// Parses `Type?params`; unknown parameters are errors (as under `Prefer: handling=strict`),
    /// and so are parameters that shape results rather than select (`_sort`, `_include`, ...).
    pub fn parse(text: &str, registry: &Registry, base_url: &str) -> Result<Self, String> {
        let (type_name, query) = text
            .split_once('?')
            .ok_or_else(|| format!("criteria must be `Type?parameters`, not `{text}`"))?;
        let resource_type = ResourceType::parse(type_name)
            .map_err(|_| format!("`{type_name}` is not a FHIR R4 resource type"))?;
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        if let Some((name, _)) = params
            .iter()
            .find(|(name, _)| fhir_search::query::RESULT_PARAMETERS.contains(&name.as_str()))
        {
            return Err(format!(
                "`{name}` shapes search results and has no meaning in a subscription"
            ));
        }
        let criteria = Criteria {
            text: text.to_owned(),
            resource_type: resource_type.as_str().to_owned(),
            params,
        };
        let query = criteria.query(registry, base_url, None)?;
        if query.criteria.is_empty() {
            return Err(format!(
                "`{text}` selects nothing: use {{\"resourceType\": \"{type_name}\"}} for every {type_name}"
            ));
        }
        Ok(criteria)
    }

    /// The search, restricted to one resource when `id` is given.
    pub fn query(
        &self,
        registry: &Registry,
        base_url: &str,
        id: Option<&str>,
    ) -> Result<SearchQuery, String> {
        let mut params = self.params.clone();
        if let Some(id) = id {
            params.push(("_id".to_owned(), id.to_owned()));
        }
        let query = fhir_search::query::parse(
            registry,
            vec![self.resource_type.clone()],
            &params,
            base_url,
        )
        .map_err(|error| error.to_string())?;
        if let Some(ignored) = query.ignored.first() {
            return Err(format!("{}: {}", ignored.name, ignored.reason));
        }
        Ok(query)
    }
}

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    Subscribe(Topic),
    /// By filter, or by id (which is the filter written out).
    Unsubscribe(String),
    Resume {
        after: i64,
    },
    Ping,
}

/// Why a client message was refused: sent back as an `error` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl ClientMessage {
    /// Parses a text frame.
    pub fn parse(text: &str, registry: &Registry, base_url: &str) -> Result<Self, Refused> {
        if text.len() > MAX_CLIENT_MESSAGE {
            return Err(Refused(format!(
                "messages are at most {MAX_CLIENT_MESSAGE} bytes"
            )));
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|error| Refused(format!("not valid JSON: {error}")))?;
        let Some(kind) = value.get("type").and_then(Value::as_str) else {
            return Err(Refused(
                "a message is a JSON object with a string `type`".to_owned(),
            ));
        };
        match kind {
            "subscribe" => Ok(ClientMessage::Subscribe(topic(&value, registry, base_url)?)),
            "unsubscribe" => match value.get("id") {
                Some(Value::String(id)) => Ok(ClientMessage::Unsubscribe(id.clone())),
                Some(_) => Err(Refused("`id` must be a string".to_owned())),
                None => Ok(ClientMessage::Unsubscribe(
                    topic(&value, registry, base_url)?.id(),
                )),
            },
            "resume" => match value.get("after").and_then(Value::as_i64) {
                Some(after) if after >= 0 => Ok(ClientMessage::Resume { after }),
                _ => Err(Refused(
                    "`resume` needs `after`: the last position seen, a whole number ≥ 0".to_owned(),
                )),
            },
            "ping" => Ok(ClientMessage::Ping),
            other => Err(Refused(format!(
                "unknown message type `{other}`: subscribe, unsubscribe, resume or ping"
            ))),
        }
    }
}

/// The one filter of a subscribe or unsubscribe message.
fn topic(value: &Value, registry: &Registry, base_url: &str) -> Result<Topic, Refused> {
    const FILTERS: [&str; 4] = ["patient", "ward", "resourceType", "criteria"];
    let given: Vec<&str> = FILTERS
        .into_iter()
        .filter(|name| value.get(name).is_some())
        .collect();
    let [name] = given.as_slice() else {
        return Err(Refused(
            "a subscription has exactly one of `patient`, `ward`, `resourceType`, `criteria`"
                .to_owned(),
        ));
    };
    let Some(text) = value.get(name).and_then(Value::as_str) else {
        return Err(Refused(format!("`{name}` must be a string")));
    };
    match *name {
        "patient" => Ok(Topic::Patient(resource_id(text, "patient")?)),
        "ward" => Ok(Topic::Ward(resource_id(text, "ward")?)),
        "resourceType" => ResourceType::parse(text)
            .map(|t| Topic::Type(t.as_str().to_owned()))
            .map_err(|_| Refused(format!("`{text}` is not a FHIR R4 resource type"))),
        _ => Criteria::parse(text, registry, base_url)
            .map(Topic::Criteria)
            .map_err(Refused),
    }
}

fn resource_id(text: &str, what: &str) -> Result<String, Refused> {
    fhir_model::ResourceId::parse(text)
        .map(|id| id.as_str().to_owned())
        .map_err(|_| Refused(format!("`{text}` is not a valid {what} id")))
}

/// `subscribed`.
pub fn subscribed(topic: &Topic) -> String {
    json!({"type": "subscribed", "id": topic.id(), "filter": topic.filter()}).to_string()
}

/// `unsubscribed`.
pub fn unsubscribed(id: &str) -> String {
    json!({"type": "unsubscribed", "id": id}).to_string()
}

/// `caught-up`.
pub fn caught_up(position: i64) -> String {
    json!({"type": "caught-up", "position": position}).to_string()
}

/// `heartbeat`.
pub fn heartbeat(position: i64) -> String {
    json!({"type": "heartbeat", "position": position}).to_string()
}

/// `pong`.
pub fn pong() -> String {
    json!({"type": "pong"}).to_string()
}

/// `error`, with the start of the offending message.
pub fn error(message: &str, received: &str) -> String {
    let start: String = received.chars().take(200).collect();
    json!({"type": "error", "message": message, "received": start}).to_string()
}

/// `error` with a `code` a client can act on: `subscription-budget` (a subscribe past a
/// limit) or `server-error` (the server failed on the message, which was not applied).
pub fn error_with_code(code: &str, message: &str, received: &str) -> String {
    let start: String = received.chars().take(200).collect();
    json!({"type": "error", "code": code, "message": message, "received": start}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ClientMessage, Refused> {
        ClientMessage::parse(text, Registry::r4(), "http://fhir.test/fhir")
    }

    #[test]
    fn subscriptions_of_each_kind() {
        assert_eq!(
            parse(r#"{"type":"subscribe","patient":"p-1"}"#),
            Ok(ClientMessage::Subscribe(Topic::Patient("p-1".to_owned())))
        );
        assert_eq!(
            parse(r#"{"type":"subscribe","ward":"ward-a"}"#).map(|m| match m {
                ClientMessage::Subscribe(topic) => topic.id(),
                _ => String::new(),
            }),
            Ok("ward:ward-a".to_owned())
        );
        let Ok(ClientMessage::Subscribe(Topic::Criteria(criteria))) = parse(
            r#"{"type":"subscribe","criteria":"Observation?category=vital-signs&subject=Patient/123"}"#,
        ) else {
            panic!("criteria refused");
        };
        assert_eq!(criteria.resource_type, "Observation");
        assert_eq!(criteria.params.len(), 2);
        assert_eq!(
            parse(r#"{"type":"unsubscribe","resourceType":"Observation"}"#),
            Ok(ClientMessage::Unsubscribe(
                "resourceType:Observation".to_owned()
            ))
        );
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        for (text, says) in [
            ("{", "not valid JSON"),
            ("[]", "string `type`"),
            (r#"{"type":"shout"}"#, "unknown message type `shout`"),
            (r#"{"type":"subscribe"}"#, "exactly one of"),
            (
                r#"{"type":"subscribe","patient":"1","ward":"w"}"#,
                "exactly one of",
            ),
            (r#"{"type":"subscribe","patient":7}"#, "must be a string"),
            (
                r#"{"type":"subscribe","patient":"a b"}"#,
                "not a valid patient id",
            ),
            (
                r#"{"type":"subscribe","resourceType":"Observations"}"#,
                "not a FHIR R4 resource type",
            ),
            (
                r#"{"type":"subscribe","criteria":"Observation"}"#,
                "Type?parameters",
            ),
            (
                r#"{"type":"subscribe","criteria":"Observation?colour=red"}"#,
                "colour",
            ),
            (
                r#"{"type":"subscribe","criteria":"Observation?_sort=date&code=1"}"#,
                "_sort",
            ),
            (
                r#"{"type":"subscribe","criteria":"Observation?date=yesterday"}"#,
                "date",
            ),
            (r#"{"type":"resume","after":-1}"#, "after"),
            (r#"{"type":"resume"}"#, "after"),
        ] {
            let refused = parse(text).expect_err(text);
            assert!(refused.0.contains(says), "{text}: {refused}");
        }
        let huge = format!(
            r#"{{"type":"ping","pad":"{}"}}"#,
            "x".repeat(MAX_CLIENT_MESSAGE)
        );
        assert!(parse(&huge).is_err());
    }
}
