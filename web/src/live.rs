//! The dashboard's side of the notifier protocol, without the socket: what to send when a
//! connection opens, which received events are new, and how long to wait before reconnecting.
//!
//! The browser glue (`ui::socket`) owns the WebSocket and asks a [`Session`] what to do, so
//! the rules that keep a ward correct across dropped connections are tested here on the host:
//! remember the last position; on a new connection subscribe again and resume after it; never
//! pass on an event at or before it. A connection that drops before any position is known
//! cannot resume, so the page reloads the ward instead.

use crate::protocol::{ClientMessage, Event, ServerMessage};
use crate::route::encode;

/// What the connection indicator shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// The first connection is being made.
    Connecting,
    /// Connected and subscribed: changes arrive as they happen.
    Live,
    /// The connection dropped; the next attempt is waiting or under way.
    Reconnecting,
}

impl ConnectionState {
    /// The value of the indicator's `data-state` attribute.
    pub fn hook(self) -> &'static str {
        match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Live => "live",
            ConnectionState::Reconnecting => "reconnecting",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ConnectionState::Connecting => "Connecting…",
            ConnectionState::Live => "Live",
            ConnectionState::Reconnecting => "Reconnecting…",
        }
    }
}

/// How long a connection may stay silent before it is taken for dead: three of the server's
/// 15 s heartbeat intervals.
pub const SILENCE_LIMIT_MS: u32 = 45_000;

/// The first wait before reconnecting, doubled on each failure up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: u32 = 500;
const MAX_BACKOFF_MS: u32 = 15_000;

/// The WebSocket address of a feed (`/ws`, the live record's, or `/sandbox/<name>/ws`) on the
/// page's own origin: `wss:` under `https:`.
pub fn socket_url(page_protocol: &str, host: &str, path: &str) -> String {
    let scheme = if page_protocol == "https:" {
        "wss"
    } else {
        "ws"
    };
    format!("{scheme}://{host}{path}")
}

/// The socket address with the access token to open it with: browsers cannot set headers on a
/// WebSocket, so the notifier takes the token as the `access_token` query parameter. Each
/// connection takes the token current when it opens (the notifier closes a connection whose
/// token expires, and the next one opens with the refreshed token).
pub fn with_token(url: &str, token: &str) -> String {
    format!("{url}?access_token={}", encode(token))
}

/// How long to wait after `failures` failed connections in a row (at least one): doubling
/// from half a second to fifteen, then reduced by up to half by `jitter` (in `0..1`), so that a
/// ward full of screens does not reconnect in step after the notifier restarts.
pub fn backoff_ms(failures: u32, jitter: f64) -> u32 {
    let exponent = failures.saturating_sub(1).min(16);
    let full = FIRST_BACKOFF_MS
        .saturating_mul(1 << exponent)
        .min(MAX_BACKOFF_MS);
    let jitter = jitter.clamp(0.0, 1.0);
    (f64::from(full) * (1.0 - jitter / 2.0)).round() as u32
}

/// What to do once a connection has opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    /// Send these, in order.
    pub messages: Vec<ClientMessage>,
    /// Load the ward again from the FHIR API: the connection before this one dropped before
    /// any position was known, so events may have been missed and cannot be replayed.
    pub reload: bool,
}

/// What a received frame means for the page.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A change not seen before: apply it.
    Event(Event),
    /// An event at or before the last position seen (a replay overlapping what arrived
    /// live): already applied, so dropped.
    Duplicate { position: u64 },
    /// The server could not take a message of ours.
    Refused(String),
    /// Not a message of the protocol.
    Malformed(String),
    /// Nothing for the page: a subscription confirmed, a heartbeat, the end of a replay.
    Nothing,
}

/// One live subscription (to a ward, or to a sandbox's types), across however many connections
/// it takes.
#[derive(Debug, Clone)]
pub struct Session {
    /// The `subscribe` messages each connection opens with.
    subscriptions: Vec<ClientMessage>,
    state: ConnectionState,
    last_position: Option<u64>,
    /// Connections in a row that failed before the server said anything.
    failures: u32,
    /// Whether a connection has dropped since the ward was last loaded from scratch.
    dropped: bool,
}

impl Session {
    pub fn new(subscriptions: Vec<ClientMessage>) -> Self {
        Session {
            subscriptions,
            state: ConnectionState::Connecting,
            last_position: None,
            failures: 0,
            dropped: false,
        }
    }

    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// The position of the last event (or replay) seen.
    pub fn last_position(&self) -> Option<u64> {
        self.last_position
    }

    /// A connection is open: subscribe, and resume after the last position if there is one.
    pub fn opened(&mut self) -> Opening {
        self.state = ConnectionState::Live;
        let mut messages = self.subscriptions.clone();
        if let Some(after) = self.last_position {
            messages.push(ClientMessage::Resume { after });
        }
        let reload = self.dropped && self.last_position.is_none();
        self.dropped = false;
        Opening { messages, reload }
    }

    /// Reads one text frame from the server.
    pub fn receive(&mut self, text: &str) -> Received {
        let message = match ServerMessage::parse(text) {
            Ok(message) => message,
            Err(error) => return Received::Malformed(error.to_string()),
        };
        // The server answered: this connection works, so the next drop starts the backoff
        // afresh.
        self.failures = 0;
        match message {
            ServerMessage::Event(event) => {
                if self
                    .last_position
                    .is_some_and(|last| event.position <= last)
                {
                    return Received::Duplicate {
                        position: event.position,
                    };
                }
                self.last_position = Some(event.position);
                Received::Event(event)
            }
            ServerMessage::CaughtUp { position } => {
                self.last_position = self.last_position.max(Some(position));
                Received::Nothing
            }
            ServerMessage::Error { message } => Received::Refused(message),
            ServerMessage::Subscribed { .. }
            | ServerMessage::Unsubscribed { .. }
            | ServerMessage::Heartbeat { .. }
            | ServerMessage::Pong
            | ServerMessage::Unknown => Received::Nothing,
        }
    }

    /// The connection closed, failed to open, or fell silent: returns how many milliseconds
    /// to wait before the next attempt (`jitter` in `0..1`, see [`backoff_ms`]).
    pub fn closed(&mut self, jitter: f64) -> u32 {
        self.state = ConnectionState::Reconnecting;
        self.dropped = true;
        self.failures = self.failures.saturating_add(1);
        backoff_ms(self.failures, jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: u64) -> String {
        format!(
            r#"{{"type":"event","position":{position},"kind":"ResourceCreated","resourceType":"Observation","id":"o{position}","version":1,"resource":{{}},"subscriptions":["s"]}}"#
        )
    }

    fn subscribe() -> ClientMessage {
        ClientMessage::Subscribe {
            ward: "ward-a".into(),
        }
    }

    fn ward_a() -> Session {
        Session::new(vec![subscribe()])
    }

    #[test]
    fn the_first_connection_subscribes_without_resuming() {
        let mut session = ward_a();
        assert_eq!(session.state(), ConnectionState::Connecting);
        let opening = session.opened();
        assert_eq!(opening.messages, [subscribe()]);
        assert!(!opening.reload);
        assert_eq!(session.state(), ConnectionState::Live);
    }

    #[test]
    fn a_new_connection_resumes_after_the_last_event() {
        let mut session = ward_a();
        session.opened();
        assert!(matches!(session.receive(&event(10)), Received::Event(_)));
        assert!(matches!(session.receive(&event(12)), Received::Event(_)));
        session.closed(0.0);
        assert_eq!(session.state(), ConnectionState::Reconnecting);
        let opening = session.opened();
        assert_eq!(
            opening.messages,
            [subscribe(), ClientMessage::Resume { after: 12 }]
        );
        assert!(!opening.reload);
    }

    #[test]
    fn events_at_or_before_the_last_position_are_dropped() {
        let mut session = ward_a();
        session.opened();
        let Received::Event(first) = session.receive(&event(5)) else {
            panic!("event 5 is new");
        };
        assert_eq!(first.position, 5);
        assert_eq!(
            session.receive(&event(5)),
            Received::Duplicate { position: 5 }
        );
        assert_eq!(
            session.receive(&event(3)),
            Received::Duplicate { position: 3 }
        );
        assert!(matches!(session.receive(&event(6)), Received::Event(_)));
        assert_eq!(session.last_position(), Some(6));
    }

    #[test]
    fn a_replay_that_overlaps_what_arrived_live_is_not_doubled() {
        let mut session = ward_a();
        session.opened();
        session.receive(&event(7));
        session.closed(0.0);
        session.opened();
        let replayed: Vec<u64> = [6, 7, 8, 9]
            .into_iter()
            .filter_map(|position| match session.receive(&event(position)) {
                Received::Event(event) => Some(event.position),
                _ => None,
            })
            .collect();
        assert_eq!(replayed, [8, 9]);
    }

    #[test]
    fn caught_up_moves_the_resume_point_forward_only() {
        let mut session = ward_a();
        session.opened();
        session.receive(&event(20));
        assert_eq!(
            session.receive(r#"{"type":"caught-up","position":25}"#),
            Received::Nothing
        );
        assert_eq!(session.last_position(), Some(25));
        session.receive(r#"{"type":"caught-up","position":22}"#);
        assert_eq!(session.last_position(), Some(25));
        assert_eq!(
            session.receive(&event(24)),
            Received::Duplicate { position: 24 }
        );
    }

    #[test]
    fn heartbeats_keep_the_connection_but_do_not_move_the_resume_point() {
        let mut session = ward_a();
        session.opened();
        assert_eq!(
            session.receive(r#"{"type":"heartbeat","position":99}"#),
            Received::Nothing
        );
        assert_eq!(session.last_position(), None);
    }

    #[test]
    fn a_drop_before_any_position_reloads_the_ward() {
        let mut session = ward_a();
        session.opened();
        session.closed(0.0);
        let opening = session.opened();
        assert_eq!(opening.messages, [subscribe()]);
        assert!(opening.reload);
        // Still nothing seen when it drops again: nothing to resume from, so again.
        session.closed(0.0);
        assert!(session.opened().reload);
    }

    #[test]
    fn errors_and_garbage_are_reported_not_applied() {
        let mut session = ward_a();
        session.opened();
        assert_eq!(
            session.receive(r#"{"type":"error","message":"bad filter"}"#),
            Received::Refused("bad filter".into())
        );
        assert!(matches!(session.receive("}{"), Received::Malformed(_)));
        assert_eq!(session.last_position(), None);
    }

    #[test]
    fn backoff_doubles_to_a_ceiling_and_resets_when_the_server_answers() {
        let waits: Vec<u32> = (1..=8).map(|failures| backoff_ms(failures, 0.0)).collect();
        assert_eq!(
            waits,
            [500, 1_000, 2_000, 4_000, 8_000, 15_000, 15_000, 15_000]
        );
        assert_eq!(backoff_ms(3, 1.0), 1_000);
        assert_eq!(backoff_ms(u32::MAX, 0.0), 15_000);

        let mut session = ward_a();
        assert_eq!(session.closed(0.0), 500);
        assert_eq!(session.closed(0.0), 1_000);
        assert_eq!(session.closed(0.0), 2_000);
        session.opened();
        session.receive(r#"{"type":"subscribed","id":"s"}"#);
        assert_eq!(session.closed(0.0), 500);
    }

    #[test]
    fn the_socket_opens_with_the_access_token() {
        assert_eq!(
            with_token("wss://ward.example/ws", "eyJ.a-b_c.d"),
            "wss://ward.example/ws?access_token=eyJ.a-b_c.d"
        );
        assert_eq!(
            with_token("ws://localhost:8080/ws", "a+b/c="),
            "ws://localhost:8080/ws?access_token=a%2Bb%2Fc%3D"
        );
    }

    #[test]
    fn the_socket_follows_the_page_scheme() {
        assert_eq!(
            socket_url("http:", "localhost:8080", "/ws"),
            "ws://localhost:8080/ws"
        );
        assert_eq!(
            socket_url("https:", "ward.example", "/sandbox/night/ws"),
            "wss://ward.example/sandbox/night/ws"
        );
    }

    #[test]
    fn every_subscription_is_sent_again_on_each_connection() {
        let types = ClientMessage::SubscribeType {
            resource_type: "Observation".into(),
        };
        let mut session = Session::new(vec![subscribe(), types.clone()]);
        assert_eq!(session.opened().messages, [subscribe(), types.clone()]);
        session.receive(&event(3));
        session.closed(0.0);
        assert_eq!(
            session.opened().messages,
            [subscribe(), types, ClientMessage::Resume { after: 3 }]
        );
    }
}
