//! The outbox relay: publishes every committed event to JetStream, in position order.
//!
//! The event table is its own outbox: an event and its "to be published" record are the same
//! row, committed together. The relay reads the feed from the last position it published and
//! publishes each event to `<prefix>.<ResourceType>` with `Nats-Msg-Id = <Type>/<id>/<version>`
//! (a sandbox's to `<prefix>.sandbox.<name>.<ResourceType>`, `<Type>/<id>/<version>@<partition>`).
//! Messages are pipelined, each carrying `Nats-Expected-Last-Sequence`, so the server stores one
//! only directly after its predecessor: the stream is always a contiguous prefix of the feed, in
//! position order, even when a reconnect loses a message in flight. After a failure, and on
//! every (re)start, the relay resumes after the position of the stream's newest message, so
//! nothing is sent twice even outside JetStream's duplicate window (which, with the message
//! ids, is a second guard).
//!
//! An event whose envelope does not fit in a NATS message (the server's `max_payload`, 1 MiB by
//! default, less room for headers), or whose stored JSON cannot be sent as it stands, travels
//! **by reference**: a small envelope without the resource ([`StoredEvent::reference_json`]),
//! marked with the [`BY_REFERENCE_HEADER`], from which a consumer reads the event from the store
//! ([`referenced_event`]). So no event is ever refused for its size or content, and no event
//! holds up the ones after it: the relay only retries what NATS or Postgres failed to do, which
//! a later attempt can do.
//!
//! With NATS down, writes go on (they only touch Postgres) and events wait; the relay retries
//! with backoff and catches up when NATS returns. One relay publishes at a time: leadership is
//! a Postgres advisory lock held on a dedicated connection, so several command-service
//! instances can run without publishing out of order.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgListener};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::event::StoredEvent;
use crate::store::{EventStore, StoreError};

/// Where and how the relay publishes.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub nats_url: String,
    /// The JetStream stream, `FHIR_EVENTS` in production; tests use their own.
    pub stream: String,
    /// Subjects are `<prefix>.<ResourceType>`.
    pub subject_prefix: String,
}

/// The header that carries an event's global position on every message.
pub const POSITION_HEADER: &str = "Fhir-Position";

/// The header on a message that names its event by reference (see the module documentation).
pub const BY_REFERENCE_HEADER: &str = "Fhir-By-Reference";

/// Room left in a message for its headers and subject when deciding whether an event fits.
const HEADER_ROOM: usize = 8 * 1024;

const BATCH: i64 = 500;
const IDLE_WAIT: Duration = Duration::from_secs(1);
const ACK_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Connects to the NATS server at `url`, with the user and password the URL carries
/// (`nats://user:password@host:port`, percent-encoded as in any URL).
///
/// The NATS client reads only the host and port from a URL, so without this a server that
/// requires a password refuses every service. All of the platform's NATS connections go
/// through here.
pub async fn connect_nats(url: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
    let mut options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(2));
    if let Ok(address) = url.parse::<async_nats::ServerAddr>()
        && let Some(user) = address.username()
    {
        let decode = |part: &str| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8_lossy()
                .into_owned()
        };
        options =
            options.user_and_password(decode(user), decode(address.password().unwrap_or_default()));
    }
    options.connect(url).await
}

/// The JetStream stream of FHIR events. Consumers that start before the relay create it with
/// this same configuration, so whoever comes first makes the stream the relay expects.
pub fn events_stream_config(name: &str, subject_prefix: &str) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{subject_prefix}.>")],
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

/// What the relay is doing, for `/ready` and metrics.
#[derive(Debug, Default)]
pub struct RelayStatus {
    leader: AtomicBool,
    connected: AtomicBool,
    published_position: AtomicI64,
    by_reference: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl RelayStatus {
    /// Whether this relay holds the publishing lock.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// Whether the relay is connected to JetStream and publishing.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// The highest position this relay has seen acknowledged by JetStream.
    pub fn published_position(&self) -> i64 {
        self.published_position.load(Ordering::Relaxed)
    }

    /// How many events this relay has published by reference (too large for a NATS message, or
    /// stored JSON that could not be sent as it stands).
    pub fn by_reference(&self) -> u64 {
        self.by_reference.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_error(&self, error: Option<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }
}

#[derive(Debug, Error)]
enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
    #[error("nats: {0}")]
    Nats(String),
}

fn nats_error(error: impl std::fmt::Display) -> RelayError {
    RelayError::Nats(error.to_string())
}

/// A running relay.
pub struct OutboxRelay {
    status: Arc<RelayStatus>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl OutboxRelay {
    /// Starts the relay in the background.
    pub fn start(store: EventStore, settings: RelaySettings) -> Self {
        let status = Arc::new(RelayStatus::default());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(store, settings, status.clone(), stopped));
        OutboxRelay { status, stop, task }
    }

    pub fn status(&self) -> Arc<RelayStatus> {
        self.status.clone()
    }

    /// Stops publishing (what is in flight finishes or is retried by the next relay).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run(
    store: EventStore,
    settings: RelaySettings,
    status: Arc<RelayStatus>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        match lead(&store, &settings, &status, &mut stopped).await {
            Ok(()) => return,
            Err(error) => {
                status.connected.store(false, Ordering::Relaxed);
                status.leader.store(false, Ordering::Relaxed);
                tracing::warn!(%error, stream = %settings.stream, "outbox relay interrupted; retrying");
                status.set_error(Some(error.to_string()));
            }
        }
        if started.elapsed() > MAX_BACKOFF * 4 {
            backoff = Duration::from_millis(100);
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stopped.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Takes the publishing lock, then publishes until stopped or until something fails.
async fn lead(
    store: &EventStore,
    settings: &RelaySettings,
    status: &RelayStatus,
    stopped: &mut watch::Receiver<bool>,
) -> Result<(), RelayError> {
    let options = store.pool().connect_options();
    let mut lock = PgConnection::connect_with(&options).await?;
    let lock_name = format!("fhir-outbox-relay:{}", settings.stream);
    loop {
        let (acquired,): (bool,) =
            sqlx::query_as("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(&lock_name)
                .fetch_one(&mut lock)
                .await?;
        if acquired {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(IDLE_WAIT) => {}
            _ = stopped.changed() => return Ok(()),
        }
    }
    status.leader.store(true, Ordering::Relaxed);

    let client = connect_nats(&settings.nats_url).await.map_err(nats_error)?;
    let inline_limit = client.server_info().max_payload.saturating_sub(HEADER_ROOM);
    let mut context = jetstream::new(client);
    context.set_timeout(ACK_TIMEOUT);
    let mut stream = context
        .get_or_create_stream(events_stream_config(
            &settings.stream,
            &settings.subject_prefix,
        ))
        .await
        .map_err(nats_error)?;

    let mut saved = saved_cursor(store, &settings.stream).await?;
    let head = stream_head(&mut stream).await?;
    // What the stream holds is the truth: it is a contiguous prefix of the feed (see
    // `publish_batch`). The saved cursor only serves when the stream's newest message is gone.
    let mut cursor = head.position.unwrap_or(saved);
    let mut last_sequence = head.sequence;
    let mut last_save = Instant::now();
    status.published_position.store(cursor, Ordering::Relaxed);
    status.connected.store(true, Ordering::Relaxed);
    status.set_error(None);
    tracing::info!(stream = %settings.stream, cursor, "outbox relay publishing");

    let mut listener = PgListener::connect_with(store.pool()).await?;
    listener.listen("fhir_event_sequenced").await?;
    let mut last_sweep = Instant::now();
    loop {
        if *stopped.borrow() {
            return Ok(());
        }
        if last_sweep.elapsed() >= IDLE_WAIT {
            // Events whose writer stopped between commit and sequencing get their positions,
            // and a lost lock connection ends this leadership.
            store.sequence_pending().await?;
            sqlx::query("SELECT 1").execute(&mut lock).await?;
            last_sweep = Instant::now();
        }
        let batch = store.read_feed(cursor, BATCH).await?;
        if batch.is_empty() {
            if saved != cursor {
                save_cursor(store, &settings.stream, cursor).await?;
                saved = cursor;
                last_save = Instant::now();
            }
            tokio::select! {
                notification = listener.recv() => { notification?; }
                () = tokio::time::sleep(IDLE_WAIT) => {}
                _ = stopped.changed() => return Ok(()),
            }
            continue;
        }
        let published = publish_batch(
            &context,
            settings,
            &batch,
            inline_limit,
            status,
            &mut last_sequence,
        )
        .await;
        if let Some(position) = published
            .count
            .checked_sub(1)
            .and_then(|last| batch.get(last))
            .and_then(|event| event.position)
        {
            cursor = position;
            status.published_position.store(cursor, Ordering::Relaxed);
        }
        if let Some(error) = published.error {
            return Err(error);
        }
        // The saved cursor is only where a restarted relay starts looking (it also checks the
        // stream's newest message), so saving it once a second is enough.
        if last_save.elapsed() >= IDLE_WAIT {
            save_cursor(store, &settings.stream, cursor).await?;
            saved = cursor;
            last_save = Instant::now();
        }
    }
}

async fn save_cursor(store: &EventStore, stream: &str, cursor: i64) -> Result<(), RelayError> {
    sqlx::query(
        "INSERT INTO fhir_outbox_cursor (stream, published_position) VALUES ($1, $2) \
         ON CONFLICT (stream) DO UPDATE \
         SET published_position = greatest(fhir_outbox_cursor.published_position, excluded.published_position), \
             updated_at = now()",
    )
    .bind(stream)
    .bind(cursor)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// How far a batch got: the first `count` events are in the stream; `error` stopped the rest.
struct Published {
    count: usize,
    error: Option<RelayError>,
}

/// Publishes `batch` pipelined (all sent, then the acks read in order), each message carrying
/// `Nats-Expected-Last-Sequence`: the server stores a message only if the one before it is the
/// stream's last. So even when a message is lost in a reconnect and a later one arrives, the
/// later one is refused, and the stream stays a contiguous prefix of the feed. After any
/// failure the relay re-reads the stream's head and resumes from there.
async fn publish_batch(
    context: &jetstream::Context,
    settings: &RelaySettings,
    batch: &[StoredEvent],
    inline_limit: usize,
    status: &RelayStatus,
    last_sequence: &mut u64,
) -> Published {
    let mut pending = Vec::with_capacity(batch.len());
    for (offset, event) in batch.iter().enumerate() {
        let subject = match event.sandbox() {
            Some(sandbox) => format!(
                "{}.sandbox.{}.{}",
                settings.subject_prefix, sandbox.name, event.resource_type
            ),
            None => format!("{}.{}", settings.subject_prefix, event.resource_type),
        };
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.message_id().as_str());
        headers.insert(
            POSITION_HEADER,
            event.position.unwrap_or(0).to_string().as_str(),
        );
        let expected = *last_sequence + offset as u64;
        headers.insert("Nats-Expected-Last-Sequence", expected.to_string().as_str());
        let payload = match event.envelope_json() {
            Ok(payload) if payload.len() <= inline_limit => payload,
            inline => {
                let reason = match inline {
                    Ok(payload) => format!("{} bytes", payload.len()),
                    Err(error) => format!("stored JSON not sendable: {error}"),
                };
                tracing::info!(
                    position = event.position,
                    message_id = %event.message_id(),
                    %reason,
                    "event published by reference"
                );
                headers.insert(BY_REFERENCE_HEADER, "true");
                status.by_reference.fetch_add(1, Ordering::Relaxed);
                event.reference_json()
            }
        };
        match context
            .publish_with_headers(subject, headers, payload.into())
            .await
        {
            Ok(ack) => pending.push(Ok((expected, ack))),
            Err(error) => {
                pending.push(Err(nats_error(error)));
                break;
            }
        }
    }
    let mut count = 0;
    for outcome in pending {
        let result = match outcome {
            Ok((expected, ack)) => match ack.await {
                Ok(ack) if ack.sequence == expected + 1 => Ok(ack.sequence),
                Ok(ack) => Err(RelayError::Nats(format!(
                    "stored at sequence {} where {} was expected",
                    ack.sequence,
                    expected + 1
                ))),
                Err(error) => Err(nats_error(error)),
            },
            Err(error) => Err(error),
        };
        match result {
            Ok(sequence) => {
                *last_sequence = sequence;
                count += 1;
            }
            Err(error) => {
                return Published {
                    count,
                    error: Some(error),
                };
            }
        }
    }
    Published { count, error: None }
}

/// The event a message names by reference, read from `store`; `None` for a message that carries
/// its event inline (the usual case). A consumer calls this before decoding a message.
pub async fn referenced_event(
    store: &EventStore,
    headers: Option<&HeaderMap>,
) -> Option<Result<StoredEvent, StoreError>> {
    let headers = headers?;
    headers.get(BY_REFERENCE_HEADER)?;
    let position = headers
        .get(POSITION_HEADER)
        .and_then(|value| value.as_str().parse::<i64>().ok());
    Some(match position {
        Some(position) => store
            .event_at(position)
            .await
            .and_then(|event| event.ok_or(StoreError::NotInFeed(position))),
        // A by-reference message always carries its position; one without is not ours.
        None => Err(StoreError::NotInFeed(0)),
    })
}

async fn saved_cursor(store: &EventStore, stream: &str) -> Result<i64, RelayError> {
    let saved: Option<(i64,)> =
        sqlx::query_as("SELECT published_position FROM fhir_outbox_cursor WHERE stream = $1")
            .bind(stream)
            .fetch_optional(store.pool())
            .await?;
    Ok(saved.map_or(0, |(position,)| position))
}

/// The stream's last sequence, and the feed position of its newest message when that
/// message is still there.
struct StreamHead {
    sequence: u64,
    position: Option<i64>,
}

async fn stream_head(stream: &mut jetstream::stream::Stream) -> Result<StreamHead, RelayError> {
    let sequence = stream.info().await.map_err(nats_error)?.state.last_sequence;
    if sequence == 0 {
        return Ok(StreamHead {
            sequence,
            position: Some(0),
        });
    }
    let position = match stream.get_raw_message(sequence).await {
        Ok(message) => message
            .headers
            .get(POSITION_HEADER)
            .and_then(|value| value.as_str().parse().ok()),
        Err(_) => None,
    };
    Ok(StreamHead { sequence, position })
}
