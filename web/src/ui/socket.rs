//! The notifier WebSocket of a ward page: connects to a feed on the page's origin (`/ws`, or a
//! sandbox's `/sandbox/<name>/ws`), and keeps reconnecting (with backoff) for as long as the
//! page holds its [`Subscription`]. What to
//! send, which events are new and how long to wait are the [`Session`]'s decisions; this module
//! only moves frames and reports what happened.
//!
//! Each connection opens with the access token current at that moment (`?access_token=`,
//! refreshed first if it is about to expire). The notifier closes a connection when its token
//! expires; the next one opens with the refreshed token and resumes after the last event seen.

use futures::channel::oneshot;
use futures::future::{Either, poll_fn, select};
use futures::{SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, State};
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen_futures::spawn_local;
use yew::Callback;

use super::session::access_token;
use crate::live::{ConnectionState, Received, SILENCE_LIMIT_MS, Session, socket_url, with_token};
use crate::protocol::{ClientMessage, Event};

/// What the page hears from its subscription.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveUpdate {
    /// The connection indicator's new state.
    State(ConnectionState),
    /// A change not seen before.
    Event(Box<Event>),
    /// Events may have been missed and cannot be replayed: load the ward afresh.
    Reload,
    /// The notifier refused a message of ours.
    Refused(String),
}

/// A live subscription; dropping it closes the socket and stops reconnecting.
pub struct Subscription {
    _stop: oneshot::Sender<()>,
}

/// Subscribes to events on the feed at `path` (`/ws`), opening each connection with
/// `subscriptions`.
pub fn subscribe(
    path: String,
    subscriptions: Vec<ClientMessage>,
    updates: Callback<LiveUpdate>,
) -> Subscription {
    let (stop, stopped) = oneshot::channel::<()>();
    spawn_local(async move {
        // Whichever ends first: the page drops the sender, or (never) the loop.
        let connected = keep_connected(path, Session::new(subscriptions), updates);
        select(Box::pin(connected), stopped).await;
    });
    Subscription { _stop: stop }
}

async fn keep_connected(path: String, mut session: Session, updates: Callback<LiveUpdate>) {
    let url = match page_origin() {
        Some((protocol, host)) => socket_url(&protocol, &host, &path),
        None => return,
    };
    loop {
        updates.emit(LiveUpdate::State(session.state()));
        // Signed out: the page goes, and this subscription with it.
        let Some(token) = access_token().await else {
            return;
        };
        if let Err(problem) = connection(&with_token(&url, &token), &mut session, &updates).await {
            warn(&format!("notifier connection ended: {problem}"));
        }
        let wait = session.closed(js_sys::Math::random());
        updates.emit(LiveUpdate::State(session.state()));
        TimeoutFuture::new(wait).await;
    }
}

/// One connection, from opening to its end (closed by the server, failed, or silent for too
/// long). Returns why it ended.
async fn connection(
    url: &str,
    session: &mut Session,
    updates: &Callback<LiveUpdate>,
) -> Result<(), String> {
    let mut socket = WebSocket::open(url).map_err(|error| error.to_string())?;
    // gloo-net's sink is ready once the socket has stopped connecting: opened, or failed.
    poll_fn(|context| socket.poll_ready_unpin(context))
        .await
        .map_err(|error| error.to_string())?;
    if !matches!(socket.state(), State::Open) {
        return Err("could not connect".to_owned());
    }
    let opening = session.opened();
    updates.emit(LiveUpdate::State(session.state()));
    for message in opening.messages {
        socket
            .send(Message::Text(message.to_json()))
            .await
            .map_err(|error| error.to_string())?;
    }
    if opening.reload {
        updates.emit(LiveUpdate::Reload);
    }
    loop {
        let next = select(socket.next(), TimeoutFuture::new(SILENCE_LIMIT_MS)).await;
        let frame = match next {
            Either::Left((Some(Ok(frame)), _)) => frame,
            Either::Left((Some(Err(error)), _)) => return Err(error.to_string()),
            Either::Left((None, _)) => return Ok(()),
            Either::Right(_) => return Err("no message or heartbeat for 45 s".to_owned()),
        };
        let Message::Text(text) = frame else {
            continue;
        };
        match session.receive(&text) {
            Received::Event(event) => updates.emit(LiveUpdate::Event(Box::new(event))),
            Received::Refused(message) => updates.emit(LiveUpdate::Refused(message)),
            Received::Malformed(problem) => {
                warn(&format!("unreadable notifier message: {problem}"))
            }
            Received::Duplicate { .. } | Received::Nothing => {}
        }
    }
}

/// The page's `location.protocol` and `location.host`.
fn page_origin() -> Option<(String, String)> {
    let location = web_sys::window()?.location();
    Some((location.protocol().ok()?, location.host().ok()?))
}

fn warn(text: &str) {
    web_sys::console::warn_1(&text.into());
}
