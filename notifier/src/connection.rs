//! One WebSocket client: its subscriptions, its resume, its heartbeats, its queue.
//!
//! A connection starts by holding live events back: a client that reconnects subscribes and
//! then sends `resume`, and its replay must come before anything live. Held events are sent
//! once the replay has caught up (those the replay already covered are dropped), or, for a
//! client that does not resume, a moment (`--resume-grace-ms`) after its first subscription.
//! So events reach each client once and in position order. A `resume` that comes after live
//! events have flowed replays only what came before the first of them.
//!
//! Everything the client is sent goes through this task, and every send is abandoned when the
//! hub evicts the connection: a client that stops reading cannot hold the task forever.
//!
//! No message can take the connection down: handling one that panics is answered with an
//! `error` message, and however the task ends (closed, failed, panicked, aborted) the
//! connection leaves the hub and gives its seat back ([`crate::presence::Seat`]), so an address
//! cannot be locked out by connections that died. A message larger than the socket takes is
//! answered with close code 1009 (message too big).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use access_policy::{Interaction, Principal, authorize};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use axum::extract::{ConnectInfo, Path, RawQuery, State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use event_store::EventStore;
use futures::{FutureExt, SinkExt, StreamExt};
use http::HeaderMap;
use service_kit::auth::{Authenticator, bearer_token};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

use crate::audience::Interest;
use crate::event::Event;
use crate::hub::{Delivery, Hub};
use crate::presence::{Presence, Seat};
use crate::protocol::{self, ClientMessage, Topic};

/// Bytes read from a socket at a time.
const READ_BUFFER: usize = 4 * 1024;

/// Events read from the store per replay query: what a replay holds in memory at a time.
const REPLAY_PAGE: i64 = 100;

/// What every connection shares.
#[derive(Clone)]
pub struct Shared {
    pub hub: Arc<Hub>,
    pub presence: Arc<Presence>,
    pub store: EventStore,
    pub limits: Limits,
    /// Proxies (the edge) whose `X-Forwarded-For` names the client; every other peer is the
    /// client itself (`service_kit::forwarded`).
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// Replay pages being read and matched at once, across connections
    /// (`--concurrent-replays`): many clients resuming from far back share the database with
    /// the live path instead of taking it over.
    pub replays: Arc<tokio::sync::Semaphore>,
    pub stopping: watch::Receiver<bool>,
    /// Checks the access token a connection opens with.
    pub auth: Authenticator,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Silence after which a heartbeat is sent.
    pub heartbeat: Duration,
    /// How long live events wait for a `resume` after the first subscription.
    pub resume_grace: Duration,
    /// Live events held during a replay before the client counts as too slow.
    pub held: usize,
    /// Subscriptions one connection may hold.
    pub max_subscriptions: usize,
}

/// `GET /ws`: authenticated before the upgrade, with the bearer token of the `Authorization`
/// header, or (browsers cannot set headers on a WebSocket) of the `access_token` query
/// parameter. Without a good token the answer is the 401 of any other request.
pub async fn upgrade(
    upgrade: WebSocketUpgrade,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: RawQuery,
    State(shared): State<Shared>,
) -> Response {
    let hub = shared.hub.clone();
    open(upgrade, peer, headers, query, shared, hub, None).await
}

/// `GET /sandbox/<name>/ws`: the feed of a teaching sandbox (ADR 0014), authenticated as
/// `/ws` is; the sandbox's events only, never the live record's. An unknown sandbox is 404.
pub async fn upgrade_sandbox(
    upgrade: WebSocketUpgrade,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: RawQuery,
    Path(name): Path<String>,
    State(shared): State<Shared>,
) -> Response {
    let hub = shared.hub.clone();
    open(upgrade, peer, headers, query, shared, hub, Some(name)).await
}

async fn open(
    upgrade: WebSocketUpgrade,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    shared: Shared,
    live: Arc<Hub>,
    sandbox: Option<String>,
) -> Response {
    let from_query = query.as_deref().and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "access_token")
            .map(|(_, token)| token.into_owned())
    });
    let principal = match (bearer_token(&headers), from_query) {
        (Some(_), _) | (None, None) => shared.auth.authenticate(&headers).await,
        (None, Some(token)) => shared.auth.authenticate_token(&token).await,
    };
    let principal = match principal {
        Ok(principal) => principal,
        Err(refused) => return refused.into_response(),
    };
    let hub = match sandbox {
        None => live,
        Some(name) => {
            let found = if event_store::sandbox::valid_name(&name) {
                match event_store::sandbox::find(shared.store.pool(), &name).await {
                    Ok(found) => found,
                    Err(error) => {
                        return service_kit::fhir_response::FhirError::internal(error)
                            .into_response();
                    }
                }
            } else {
                None
            };
            match found {
                Some(sandbox) => live.sandbox(&sandbox.name, sandbox.fork_position),
                None => {
                    return service_kit::sandbox_path::unknown_sandbox(&name).into_response();
                }
            }
        }
    };
    let address = service_kit::forwarded::client_address(peer, &headers, &shared.trusted_proxies);
    // Small buffers: the socket library zero-fills its whole read buffer on every poll (128 KiB
    // by default), which at ten thousand connections was a third of a core while idle, and
    // clients only send short messages.
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(protocol::MAX_CLIENT_MESSAGE * 2)
        .on_upgrade(move |socket| serve(socket, address, shared, principal, hub))
}

async fn serve(
    mut socket: WebSocket,
    address: IpAddr,
    shared: Shared,
    principal: Principal,
    hub: Arc<Hub>,
) {
    let registration = hub.register();
    let seat = match shared.presence.admit(address, registration.id).await {
        Ok(seat) => seat,
        Err(refused) => {
            hub.unregister(registration.id);
            tracing::debug!(%address, "connection refused: too many from its address");
            let _ = socket
                .send(close(close_code::POLICY, &refused.to_string()))
                .await;
            return;
        }
    };
    let (sink, stream) = socket.split();
    let mut connection = Connection {
        principal,
        hub: hub.clone(),
        id: registration.id,
        shared: shared.clone(),
        sink,
        evicted: registration.evicted,
        seat: Some(seat),
        state: Flow::Holding { since: None },
        held: VecDeque::new(),
        last_sent: 0,
        replayed_to: 0,
        first_live: None,
        last_activity: Instant::now(),
    };
    let ended = connection.run(stream, registration.live).await;
    hub.unregister(connection.id);
    if let Some((frame, patience)) = ended.close_frame() {
        let _ = tokio::time::timeout(patience, connection.sink.send(frame)).await;
    }
    if let Some(seat) = connection.seat.take() {
        seat.leave().await;
    }
}

/// Whether live events go out as they come.
enum Flow {
    /// Not yet: held until a `resume` or the grace after the first subscription (`since`).
    Holding {
        since: Option<Instant>,
    },
    /// A replay is running; live events are held until it has caught up.
    Replaying(mpsc::Receiver<Replayed>),
    Live,
}

/// What the replay task sends.
enum Replayed {
    Event(Delivery),
    /// Every event up to this position has been looked at.
    CaughtUp(i64),
    Failed(String),
}

/// Why the connection ended.
enum Ended {
    ClientLeft,
    SlowConsumer,
    Stopping,
    /// The client sent a message larger than the socket takes.
    TooBig,
    /// The token the connection opened with expired, or its session ended.
    TokenGone(&'static str),
}

impl Ended {
    /// The close frame to send, and how long to try: a slow consumer's socket is full, and the
    /// frame only goes once the client reads what is ahead of it.
    fn close_frame(&self) -> Option<(Message, Duration)> {
        match self {
            Ended::ClientLeft => None,
            Ended::SlowConsumer => Some((
                close(close_code::POLICY, "slow consumer"),
                Duration::from_secs(30),
            )),
            Ended::Stopping => Some((
                close(close_code::AWAY, "the notifier is stopping"),
                Duration::from_secs(1),
            )),
            Ended::TooBig => Some((
                close(
                    close_code::SIZE,
                    &format!(
                        "message too big: messages are at most {} bytes",
                        protocol::MAX_CLIENT_MESSAGE
                    ),
                ),
                Duration::from_secs(1),
            )),
            Ended::TokenGone(why) => Some((close(close_code::POLICY, why), Duration::from_secs(1))),
        }
    }
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

struct Connection {
    /// Who opened the connection: what it may subscribe to and be sent.
    principal: Principal,
    /// The hub it is registered with: the live record's, or a sandbox's.
    hub: Arc<Hub>,
    id: u64,
    shared: Shared,
    sink: futures::stream::SplitSink<WebSocket, Message>,
    evicted: Arc<Notify>,
    /// Taken when the connection ends normally; dropped with the connection otherwise.
    seat: Option<Seat>,
    state: Flow,
    held: VecDeque<Delivery>,
    /// The newest event position sent.
    last_sent: i64,
    /// The newest position a replay sent: a second resume does not send it again.
    replayed_to: i64,
    /// The first event sent live, if any: a late replay stops before it.
    first_live: Option<i64>,
    last_activity: Instant,
}

impl Drop for Connection {
    /// However the task ends, the hub stops sending to it (twice is harmless); the seat gives
    /// itself back when dropped.
    fn drop(&mut self) {
        self.hub.unregister(self.id);
    }
}

/// The connection must end (the client left, or the hub evicted it mid-send).
struct Gone(Ended);

/// What woke the connection.
enum Input {
    Client(Option<Result<Message, axum::Error>>),
    Replayed(Option<Replayed>),
    Live(Delivery),
    GraceOver,
    Beat,
}

impl Connection {
    async fn run(
        &mut self,
        mut stream: futures::stream::SplitStream<WebSocket>,
        mut live: mpsc::Receiver<Delivery>,
    ) -> Ended {
        let heartbeat = self.shared.limits.heartbeat;
        let mut stopping = self.shared.stopping.clone();
        let evicted = self.evicted.clone();
        loop {
            let grace_over = self.grace_deadline();
            // One timer for the next heartbeat, not a periodic tick: every wake-up polls the
            // socket too.
            let beat = self.last_activity + heartbeat;
            let input = tokio::select! {
                biased;
                _ = evicted.notified() => return Ended::SlowConsumer,
                _ = stopping.wait_for(|stop| *stop) => return Ended::Stopping,
                incoming = stream.next() => Input::Client(incoming),
                replayed = next_replayed(&mut self.state) => Input::Replayed(replayed),
                Some(delivery) = live.recv() => Input::Live(delivery),
                _ = sleep_until(grace_over) => Input::GraceOver,
                _ = tokio::time::sleep_until(beat) => Input::Beat,
            };
            let step = match input {
                Input::Client(Some(Ok(Message::Text(text)))) => {
                    self.on_text_guarded(text.as_str()).await
                }
                Input::Client(Some(Ok(Message::Binary(_)))) => {
                    let refused = protocol::error("messages are JSON text frames", "");
                    self.send_text(refused).await
                }
                Input::Client(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => Ok(()),
                Input::Client(Some(Err(error))) if too_big(&error) => return Ended::TooBig,
                Input::Client(Some(Ok(Message::Close(_)) | Err(_)) | None) => {
                    return Ended::ClientLeft;
                }
                Input::Replayed(replayed) => self.on_replayed(replayed).await,
                Input::Live(delivery) => self.on_live(delivery).await,
                Input::GraceOver => self.go_live().await,
                Input::Beat => {
                    if let Some(ended) = self.token_ended().await {
                        return ended;
                    }
                    let position = self.hub.latest_position();
                    self.send_text(protocol::heartbeat(position)).await
                }
            };
            if let Err(Gone(ended)) = step {
                return ended;
            }
        }
    }

    fn grace_deadline(&self) -> Option<Instant> {
        match self.state {
            Flow::Holding { since: Some(since) } => Some(since + self.shared.limits.resume_grace),
            _ => None,
        }
    }

    /// [`Connection::on_text`], with a panic answered by an `error` message: one bad message
    /// must not drop the connection (nor, elsewhere, anything else).
    async fn on_text_guarded(&mut self, text: &str) -> Result<(), Gone> {
        match AssertUnwindSafe(self.on_text(text)).catch_unwind().await {
            Ok(step) => step,
            Err(panic) => {
                let what = panic_message(panic.as_ref());
                tracing::error!(panic = %what, received = %text.chars().take(200).collect::<String>(),
                    "handling a client message panicked");
                let refused = protocol::error_with_code(
                    "server-error",
                    "the server failed on this message; it was not applied",
                    text,
                );
                self.send_text(refused).await
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), Gone> {
        let hub = self.hub.clone();
        let audience = hub.audience();
        let message = ClientMessage::parse(text, audience.registry(), audience.reference_base());
        let reply = match message {
            Err(refused) => protocol::error(&refused.0, text),
            Ok(ClientMessage::Ping) => protocol::pong(),
            Ok(ClientMessage::Subscribe(topic)) => {
                if let Err(refused) = self.permitted(&topic) {
                    let reply = protocol::error_with_code("forbidden", &refused, text);
                    return self.send_text(reply).await;
                }
                if let Err(refused) = self.within_budget(&topic).await {
                    return self.send_text(refused.reply(text)).await;
                }
                hub.subscribe(self.id, topic.clone());
                if let Flow::Holding {
                    since: since @ None,
                } = &mut self.state
                {
                    *since = Some(Instant::now());
                }
                self.record_subscriptions().await;
                protocol::subscribed(&topic)
            }
            Ok(ClientMessage::Unsubscribe(id)) => match hub.unsubscribe(self.id, &id) {
                Some(topic) => {
                    if let (Topic::Criteria(_), Some(seat)) = (&topic, self.seat.as_mut()) {
                        self.shared.presence.release_criteria(seat).await;
                    }
                    self.record_subscriptions().await;
                    protocol::unsubscribed(&id)
                }
                None => {
                    protocol::error(&format!("no subscription `{id}` on this connection"), text)
                }
            },
            Ok(ClientMessage::Resume { after }) => {
                if matches!(self.state, Flow::Replaying(_)) {
                    protocol::error("a resume is already running", text)
                } else {
                    let topics: Vec<Topic> = hub.topics(self.id).into_iter().collect();
                    let before = self.first_live.unwrap_or(i64::MAX);
                    self.state = Flow::Replaying(self.start_replay(topics, after, before));
                    return Ok(());
                }
            }
        };
        self.send_text(reply).await
    }

    /// Whether the token may subscribe to `topic` (the policy's `subscribe` on its types). A
    /// token bound to one patient may follow that patient only; a ward or a whole type spans
    /// many patients, and search criteria could too.
    fn permitted(&self, topic: &Topic) -> Result<(), String> {
        let principal = &self.principal;
        let type_of =
            |name: &str| fhir_model::ResourceType::parse(name).map_err(|error| error.to_string());
        let unbounded = |name: &str| -> Result<(), String> {
            let access = authorize(principal, Interaction::Subscribe, type_of(name)?)
                .map_err(|denied| denied.to_string())?;
            if access.is_unbounded() {
                Ok(())
            } else {
                Err(format!(
                    "the token is bound to a patient or restricted: it may follow its patient \
                     (`patient` topic) only, not every {name}"
                ))
            }
        };
        match topic {
            Topic::Type(name) => unbounded(name),
            Topic::Criteria(criteria) => unbounded(&criteria.resource_type),
            Topic::Ward(_) => unbounded("Encounter").and(unbounded("Observation")),
            Topic::Patient(id) => {
                // A patient's feed carries every type of the record; each event is then sent
                // only if the token may read its type.
                let (patient, observation) = (type_of("Patient")?, type_of("Observation")?);
                let access = authorize(principal, Interaction::Subscribe, patient)
                    .or_else(|_| authorize(principal, Interaction::Subscribe, observation))
                    .map_err(|denied| denied.to_string())?;
                match access.patient {
                    Some(bound) if &bound != id => Err(format!(
                        "the token is bound to Patient/{bound} and may not follow another patient"
                    )),
                    _ => Ok(()),
                }
            }
        }
    }

    /// Whether an event of `resource_type` may be sent on this connection.
    fn may_read(&self, resource_type: Option<fhir_model::ResourceType>) -> bool {
        resource_type.is_some_and(|resource_type| {
            authorize(&self.principal, Interaction::Read, resource_type).is_ok()
        })
    }

    /// Why the connection must close now that its token has expired or its session ended
    /// (checked at every heartbeat).
    async fn token_ended(&self) -> Option<Ended> {
        let now = chrono::Utc::now().timestamp();
        if now >= self.principal.expires_at {
            return Some(Ended::TokenGone(
                "the access token has expired: reconnect with a new one",
            ));
        }
        if !self.shared.auth.session_alive(&self.principal).await {
            return Some(Ended::TokenGone(
                "the session has ended (signed out or revoked)",
            ));
        }
        None
    }

    /// Whether the connection may add `topic`: at most `--max-subscriptions-per-connection`,
    /// and a search subscription is counted against its address's budget (claimed here).
    async fn within_budget(&mut self, topic: &Topic) -> Result<(), OverBudget> {
        let held = self.hub.topics(self.id);
        if held.contains(topic) {
            return Ok(());
        }
        let max = self.shared.limits.max_subscriptions;
        if held.len() >= max {
            return Err(OverBudget(format!(
                "a connection may hold at most {max} subscriptions: unsubscribe from one first"
            )));
        }
        if let (Topic::Criteria(_), Some(seat)) = (topic, self.seat.as_mut()) {
            self.shared
                .presence
                .claim_criteria(seat)
                .await
                .map_err(|refused| OverBudget(format!("{refused}: unsubscribe from one first")))?;
        }
        Ok(())
    }

    async fn record_subscriptions(&self) {
        let Some(seat) = &self.seat else {
            return;
        };
        let ids: Vec<String> = self
            .shared
            .hub
            .topics(self.id)
            .iter()
            .map(Topic::id)
            .collect();
        self.shared.presence.update(seat, &ids).await;
    }

    async fn on_live(&mut self, delivery: Delivery) -> Result<(), Gone> {
        if matches!(self.state, Flow::Live) {
            return self.send_event(delivery).await;
        }
        if self.held.len() >= self.shared.limits.held {
            return Err(Gone(Ended::SlowConsumer));
        }
        self.held.push_back(delivery);
        Ok(())
    }

    async fn on_replayed(&mut self, replayed: Option<Replayed>) -> Result<(), Gone> {
        match replayed {
            Some(Replayed::Event(delivery)) => self.send_replayed(delivery).await,
            Some(Replayed::CaughtUp(position)) => {
                // Held events up to `position` were in the store when the replay read it.
                self.last_sent = self.last_sent.max(position);
                self.send_text(protocol::caught_up(self.last_sent)).await?;
                self.go_live().await
            }
            Some(Replayed::Failed(message)) => {
                self.send_text(protocol::error(&message, "")).await?;
                self.go_live().await
            }
            None => self.go_live().await,
        }
    }

    /// Sends what was held and lets live events through.
    async fn go_live(&mut self) -> Result<(), Gone> {
        self.state = Flow::Live;
        while let Some(delivery) = self.held.pop_front() {
            self.send_event(delivery).await?;
        }
        Ok(())
    }

    async fn send_replayed(&mut self, delivery: Delivery) -> Result<(), Gone> {
        if delivery.position <= self.replayed_to {
            return Ok(());
        }
        self.replayed_to = delivery.position;
        self.last_sent = self.last_sent.max(delivery.position);
        if !self.may_read(delivery.resource_type) {
            return Ok(());
        }
        self.send(Message::Text(delivery.text)).await
    }

    async fn send_event(&mut self, delivery: Delivery) -> Result<(), Gone> {
        if delivery.position <= self.last_sent {
            return Ok(());
        }
        if matches!(self.state, Flow::Live) && self.first_live.is_none() {
            self.first_live = Some(delivery.position);
        }
        self.last_sent = delivery.position;
        if !self.may_read(delivery.resource_type) {
            return Ok(());
        }
        self.send(Message::Text(delivery.text)).await
    }

    async fn send_text(&mut self, text: String) -> Result<(), Gone> {
        self.send(Message::Text(Utf8Bytes::from(text))).await
    }

    async fn send(&mut self, message: Message) -> Result<(), Gone> {
        self.last_activity = Instant::now();
        tokio::select! {
            sent = self.sink.send(message) => sent.map_err(|_| Gone(Ended::ClientLeft)),
            _ = self.evicted.notified() => Err(Gone(Ended::SlowConsumer)),
        }
    }

    /// Starts reading the store after `after` (and before `before`) for the events matching
    /// `topics`.
    fn start_replay(
        &self,
        topics: Vec<Topic>,
        after: i64,
        before: i64,
    ) -> mpsc::Receiver<Replayed> {
        let (sender, receiver) = mpsc::channel(64);
        let store = self.shared.store.clone();
        let hub = self.hub.clone();
        let replays = self.shared.replays.clone();
        tokio::spawn(async move {
            let outcome = AssertUnwindSafe(replay(
                &store, &hub, &replays, &topics, after, before, &sender,
            ))
            .catch_unwind()
            .await;
            let last = match outcome {
                Ok(Ok(position)) => Replayed::CaughtUp(position),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "replay for a resuming client failed");
                    Replayed::Failed(format!("the replay failed: {error}; resume again"))
                }
                Err(panic) => {
                    let what = panic_message(panic.as_ref());
                    tracing::error!(panic = %what, "replay for a resuming client panicked");
                    Replayed::Failed("the replay failed; resume again".to_owned())
                }
            };
            let _ = sender.send(last).await;
        });
        receiver
    }
}

/// A subscribe past a budget: answered with an `error` whose `code` is `subscription-budget`.
struct OverBudget(String);

impl OverBudget {
    fn reply(&self, received: &str) -> String {
        protocol::error_with_code("subscription-budget", &self.0, received)
    }
}

/// Whether a read failed because the client's message was larger than the socket takes.
fn too_big(error: &axum::Error) -> bool {
    let source: &(dyn std::error::Error + 'static) = error;
    let mut cause = std::error::Error::source(source);
    while let Some(error) = cause {
        if let Some(tungstenite::Error::Capacity(_)) = error.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// What a panic said, when it said it with a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

async fn next_replayed(state: &mut Flow) -> Option<Replayed> {
    match state {
        Flow::Replaying(receiver) => receiver.recv().await,
        _ => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Sends the stored events after `after` and before `before` that match `topics`; gives the
/// position it read up to.
///
/// A page at a time, each page read and matched under a permit of `replays`, yielding to the
/// scheduler after every event: a replay of thousands of events costs the live path (other
/// connections' events, which the hub matches in the same process) no more than its share,
/// and at most a page of events and the channel's few messages are held in memory, however far
/// back it starts. The connection sends what it receives as its client reads it.
async fn replay(
    store: &EventStore,
    hub: &Hub,
    replays: &tokio::sync::Semaphore,
    topics: &[Topic],
    after: i64,
    before: i64,
    sender: &mpsc::Sender<Replayed>,
) -> Result<i64, event_store::StoreError> {
    let patients = topics.iter().any(|t| matches!(t, Topic::Patient(_)));
    let wards = topics.iter().any(|t| matches!(t, Topic::Ward(_)));
    let mut cursor = after;
    loop {
        let mut matched = Vec::new();
        let (read, reached_before) = {
            let Ok(_permit) = replays.acquire().await else {
                return Ok(cursor);
            };
            let page = store.read_feed(cursor, REPLAY_PAGE).await?;
            let mut reached_before = false;
            for stored in &page {
                let Some(position) = stored.position else {
                    continue;
                };
                if position >= before {
                    reached_before = true;
                    break;
                }
                cursor = position;
                if let Some(delivery) = replayed(hub, topics, patients, wards, stored).await {
                    matched.push(delivery);
                }
                tokio::task::yield_now().await;
            }
            (page.len(), reached_before)
        };
        for delivery in matched {
            if sender.send(Replayed::Event(delivery)).await.is_err() {
                return Ok(cursor);
            }
        }
        if reached_before || read < REPLAY_PAGE as usize {
            return Ok(cursor);
        }
    }
}

/// The message for a stored event, if it matches any of `topics`.
async fn replayed(
    hub: &Hub,
    topics: &[Topic],
    patients: bool,
    wards: bool,
    stored: &event_store::event::StoredEvent,
) -> Option<Delivery> {
    let position = stored.position?;
    let event = Event::from_stored(stored).ok()?;
    // A replay sends the hub's own events: a sandbox's feed never the live record's, and
    // the other way round.
    if !hub.holds(&event) {
        return None;
    }
    let interest = Interest {
        patients,
        wards,
        criteria: topics
            .iter()
            .filter_map(|t| match t {
                Topic::Criteria(c) if c.resource_type == event.resource_type => Some(c),
                _ => None,
            })
            .collect(),
    };
    let matched: Vec<String> = hub
        .audience()
        .topics(&event, &interest, hub.view(&event))
        .await
        .iter()
        .filter(|topic| topics.contains(topic))
        .map(Topic::id)
        .collect();
    if matched.is_empty() {
        return None;
    }
    Some(Delivery {
        position,
        resource_type: fhir_model::ResourceType::parse(&event.resource_type).ok(),
        text: Utf8Bytes::from(event.message(&matched)),
    })
}
