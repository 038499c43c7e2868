//! Which record a page shows: the live record, the live record as it stood at a past instant,
//! or a teaching sandbox (ADR 0013, ADR 0014). The server offers each as a FHIR base of its
//! own, so the pages stay the same and only ask elsewhere: `/fhir`, `/fhir/_asof/<instant>`
//! (read-only, and never changing, so there is nothing to subscribe to) and
//! `/sandbox/<name>/fhir` with its own feed `/sandbox/<name>/ws`.

use crate::fhir;
use crate::protocol::ClientMessage;

/// The resource types a ward page draws. A sandbox's ward subscribes to each of them: the
/// notifier decides a `ward` subscription by the live record's census, which knows nothing of
/// the patients a sandbox admits, and a class's sandbox is small enough to hear all of it.
const WARD_TYPES: [&str; 7] = [
    "Location",
    "Encounter",
    "Patient",
    "Observation",
    "ServiceRequest",
    "MedicationRequest",
    "Task",
];

/// The record a page reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum View {
    /// The live record, kept live over `/ws`.
    #[default]
    Live,
    /// The live record as it stood at an instant (seconds since the Unix epoch).
    Past(i64),
    /// A teaching sandbox, by name.
    Sandbox(String),
}

impl View {
    /// The FHIR base the page's requests go to (no trailing `/`).
    pub fn fhir_base(&self) -> String {
        match self {
            View::Live => "/fhir".to_owned(),
            View::Past(at) => format!("/fhir/_asof/{}", fhir::format_instant(*at)),
            View::Sandbox(name) => format!("/sandbox/{name}/fhir"),
        }
    }

    /// The path of the feed that keeps a page live; none for the past, which does not change.
    pub fn feed(&self) -> Option<String> {
        match self {
            View::Live => Some("/ws".to_owned()),
            View::Past(_) => None,
            View::Sandbox(name) => Some(format!("/sandbox/{name}/ws")),
        }
    }

    /// What a ward page of this view subscribes to on its feed.
    pub fn subscriptions(&self, ward: &str) -> Vec<ClientMessage> {
        let ward = ClientMessage::Subscribe {
            ward: ward.to_owned(),
        };
        match self {
            View::Live => vec![ward],
            View::Past(_) => Vec::new(),
            View::Sandbox(_) => std::iter::once(ward)
                .chain(
                    WARD_TYPES
                        .iter()
                        .map(|resource_type| ClientMessage::SubscribeType {
                            resource_type: (*resource_type).to_owned(),
                        }),
                )
                .collect(),
        }
    }

    /// The instant shown, when this is the past.
    pub fn past(&self) -> Option<i64> {
        match self {
            View::Past(at) => Some(*at),
            _ => None,
        }
    }

    /// The sandbox shown, when this is one.
    pub fn sandbox(&self) -> Option<&str> {
        match self {
            View::Sandbox(name) => Some(name),
            _ => None,
        }
    }
}

/// Whether `text` is a sandbox name as the server makes them: 1 to 63 lower-case letters,
/// digits and `-`, not starting with `-` (so it is safe in a path as it is).
pub fn is_sandbox_name(text: &str) -> bool {
    (1..=63).contains(&text.len())
        && !text.starts_with('-')
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_view_has_its_base_and_feed() {
        assert_eq!(View::Live.fhir_base(), "/fhir");
        assert_eq!(View::Live.feed().as_deref(), Some("/ws"));
        let at = fhir::parse_time("2026-06-01T10:00:05Z").unwrap();
        assert_eq!(
            View::Past(at).fhir_base(),
            "/fhir/_asof/2026-06-01T10:00:05Z"
        );
        assert_eq!(View::Past(at).feed(), None);
        let sandbox = View::Sandbox("night-7".into());
        assert_eq!(sandbox.fhir_base(), "/sandbox/night-7/fhir");
        assert_eq!(sandbox.feed().as_deref(), Some("/sandbox/night-7/ws"));
    }

    #[test]
    fn a_sandbox_ward_hears_its_types_and_the_past_nothing() {
        let ward = ClientMessage::Subscribe {
            ward: "ward-a".into(),
        };
        let live = View::Live.subscriptions("ward-a");
        assert_eq!((live.len(), &live[0]), (1, &ward));
        assert!(View::Past(0).subscriptions("ward-a").is_empty());
        let sandbox = View::Sandbox("s".into()).subscriptions("ward-a");
        assert_eq!(sandbox[0], ward);
        assert!(sandbox.contains(&ClientMessage::SubscribeType {
            resource_type: "Observation".into()
        }));
        assert_eq!(sandbox.len(), 1 + WARD_TYPES.len());
    }

    #[test]
    fn sandbox_names_are_the_servers() {
        assert!(is_sandbox_name("night-shift-2"));
        assert!(is_sandbox_name(&"a".repeat(63)));
        for refused in ["", "-night", "Night", "a/b", "a.b", "a_b", &"a".repeat(64)] {
            assert!(!is_sandbox_name(refused), "{refused}");
        }
    }
}
