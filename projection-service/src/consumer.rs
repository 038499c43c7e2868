//! The live path: a durable JetStream pull consumer feeding batches to the projector.
//!
//! All instances share one durable consumer, so JetStream hands each message to one of them;
//! acks are explicit and sent only after the batch's transaction committed, so a crash means
//! redelivery, never loss, and redelivery is harmless because applying is idempotent. Batches
//! form naturally: the first message is awaited, then whatever else has already arrived is
//! taken with it (up to the batch size), so a quiet system applies each event at once and a
//! busy one amortises the transaction over hundreds.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use fhir_search::{ExtractOptions, Registry};
use futures::{FutureExt, StreamExt};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::apply::{self, PreparedBatch, Quarantined};
use crate::cache::CacheInvalidator;
use crate::change::{Change, MalformedEvent};
use event_store::EventStore;
use event_store::relay::referenced_event;

/// Where the projector reads from and what it needs besides Postgres.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub nats_url: String,
    pub stream: String,
    pub subject_prefix: String,
    /// The durable consumer's name, shared by all instances.
    pub consumer: String,
    pub batch_size: usize,
    pub redis_url: String,
    pub extract: ExtractOptions,
}

/// Counters for `/status` and `/metrics`.
#[derive(Debug, Default)]
pub struct ConsumerStatus {
    connected: AtomicBool,
    events: AtomicU64,
    stale: AtomicU64,
    batches: AtomicU64,
    problems: AtomicU64,
    cache_failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ConsumerStatus {
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
    /// Events received and applied (stale ones included).
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }
    /// Events that were older than what the tables held (redelivered or out of order).
    pub fn stale(&self) -> u64 {
        self.stale.load(Ordering::Relaxed)
    }
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }
    /// Search-parameter expressions that failed on some resource.
    pub fn problems(&self) -> u64 {
        self.problems.load(Ordering::Relaxed)
    }
    pub fn cache_failures(&self) -> u64 {
        self.cache_failures.load(Ordering::Relaxed)
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

/// The running consumer task.
pub struct Consumer {
    status: Arc<ConsumerStatus>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Consumer {
    /// Starts consuming in the background; it reconnects by itself.
    pub fn start(pool: PgPool, settings: ConsumerSettings) -> Self {
        let status = Arc::new(ConsumerStatus::default());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(pool, settings, status.clone(), stopped));
        Self { status, stop, task }
    }

    pub fn status(&self) -> Arc<ConsumerStatus> {
        self.status.clone()
    }

    /// Stops after the batch in hand (its messages are acked if it committed).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

#[derive(Debug, thiserror::Error)]
enum ConsumeError {
    #[error("NATS: {0}")]
    Nats(String),
    #[error("the consumer's message stream ended")]
    Ended,
}

fn nats_error(error: impl std::fmt::Display) -> ConsumeError {
    ConsumeError::Nats(error.to_string())
}

async fn run(
    pool: PgPool,
    settings: ConsumerSettings,
    status: Arc<ConsumerStatus>,
    mut stopped: watch::Receiver<bool>,
) {
    let registry = Registry::r4();
    let mut cache = CacheInvalidator::new(&settings.redis_url);
    let mut backoff = Duration::from_millis(100);
    loop {
        let outcome = consume(
            &pool,
            &settings,
            registry,
            &status,
            &mut cache,
            &mut stopped,
        )
        .await;
        status.connected.store(false, Ordering::Relaxed);
        match outcome {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "projection consumer stopped; reconnecting");
                status.set_error(Some(error.to_string()));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stopped.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn consume(
    pool: &PgPool,
    settings: &ConsumerSettings,
    registry: &'static Registry,
    status: &Arc<ConsumerStatus>,
    cache: &mut CacheInvalidator,
    stopped: &mut watch::Receiver<bool>,
) -> Result<(), ConsumeError> {
    let store = EventStore::new(pool.clone());
    let client = event_store::relay::connect_nats(&settings.nats_url)
        .await
        .map_err(nats_error)?;
    let context = jetstream::new(client);
    let stream = context
        .get_or_create_stream(event_store::relay::events_stream_config(
            &settings.stream,
            &settings.subject_prefix,
        ))
        .await
        .map_err(nats_error)?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &settings.consumer,
            consumer::pull::Config {
                durable_name: Some(settings.consumer.clone()),
                description: Some("FHIR search indexes and clinical workflow tables".to_owned()),
                ack_policy: consumer::AckPolicy::Explicit,
                deliver_policy: consumer::DeliverPolicy::All,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 20_000,
                ..Default::default()
            },
        )
        .await
        .map_err(nats_error)?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(settings.batch_size)
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .map_err(nats_error)?;
    status.connected.store(true, Ordering::Relaxed);
    status.set_error(None);
    tracing::info!(consumer = %settings.consumer, "projection consumer connected");

    // While there is a backlog (large batches), up to WRITERS batches are written at once: while
    // one transaction waits for its commit to reach the disk, the next is already being written. Applying is order-insensitive, so
    // batches may commit in any order; the checkpoint only passes a position once everything
    // before it is applied.
    let mut writes: JoinSet<Option<Written>> = JoinSet::new();
    loop {
        while let Some(done) = writes.try_join_next() {
            finish(done, status, cache).await;
        }
        if writes.len() >= WRITERS {
            if let Some(done) = writes.join_next().await {
                finish(done, status, cache).await;
            }
            continue;
        }
        let first = tokio::select! {
            next = messages.next() => next,
            Some(done) = writes.join_next() => {
                finish(done, status, cache).await;
                continue;
            }
            _ = stopped.changed() => {
                while let Some(done) = writes.join_next().await {
                    finish(done, status, cache).await;
                }
                return Ok(());
            }
        };
        let mut batch = vec![first.ok_or(ConsumeError::Ended)?.map_err(nats_error)?];
        while batch.len() < settings.batch_size {
            match messages.next().now_or_never() {
                Some(Some(Ok(message))) => batch.push(message),
                Some(Some(Err(error))) => {
                    tracing::warn!(%error, "error in the consumer's message stream");
                    break;
                }
                _ => break,
            }
        }
        let prepared = prepare(registry, &settings.extract, &store, &batch).await;
        if batch.len() < settings.batch_size / 5 {
            // No backlog: write after the batch in flight. Small batches written side by side
            // only contend (GIN pending-list merges of one stall the other; measured as
            // 400 ms lag spikes at 200 writes/s), and one writer keeps up with them.
            while let Some(done) = writes.join_next().await {
                finish(done, status, cache).await;
            }
        }
        let (pool, writer_status, mut stopped) = (pool.clone(), status.clone(), stopped.clone());
        writes.spawn(async move {
            let applied = write_until_done(&pool, &prepared, &writer_status, &mut stopped).await?;
            Some(Written { batch, applied })
        });
    }
}

/// How many batches are written concurrently.
const WRITERS: usize = 2;

/// A committed batch, waiting for its acks.
struct Written {
    batch: Vec<jetstream::Message>,
    applied: apply::Applied,
}

/// Acks a committed batch, invalidates its cache entries and counts it. A batch whose writer
/// stopped or failed is not acked: JetStream redelivers it.
async fn finish(
    done: Result<Option<Written>, tokio::task::JoinError>,
    status: &ConsumerStatus,
    cache: &mut CacheInvalidator,
) {
    let Written { batch, applied } = match done {
        Ok(Some(written)) => written,
        Ok(None) => return,
        Err(error) => {
            tracing::error!(%error, "a batch writer failed; its messages will be redelivered");
            return;
        }
    };
    futures::future::join_all(batch.iter().map(|message| message.ack())).await;
    cache.invalidate(&applied.replaced).await;
    for problem in &applied.problems {
        tracing::warn!(%problem, "search parameter could not be indexed");
    }
    for event in &applied.quarantined {
        tracing::error!(
            position = event.position,
            resource_type = ?event.resource_type,
            resource_id = ?event.resource_id,
            version = ?event.version,
            reason = %event.reason,
            "event quarantined: it cannot be indexed"
        );
    }
    status
        .events
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    status
        .stale
        .fetch_add(applied.stale as u64, Ordering::Relaxed);
    status.batches.fetch_add(1, Ordering::Relaxed);
    status
        .problems
        .fetch_add(applied.problems.len() as u64, Ordering::Relaxed);
    status
        .cache_failures
        .store(cache.failures(), Ordering::Relaxed);
}

/// Decodes the messages and computes their rows on the blocking pool. A message that is not an
/// event envelope is quarantined: its position (from the `Fhir-Position` header) counts as
/// applied, so one bad message cannot hold the checkpoint back forever. An event that travels by
/// reference (too large for a NATS message) is read from the event store.
async fn prepare(
    registry: &'static Registry,
    options: &ExtractOptions,
    store: &EventStore,
    batch: &[jetstream::Message],
) -> PreparedBatch {
    let mut changes = Vec::with_capacity(batch.len());
    let mut skipped = Vec::new();
    let mut malformed = Vec::new();
    for message in batch {
        let decoded = match referenced_event(store, message.headers.as_ref()).await {
            Some(Ok(event)) => Change::from_stored(&event),
            Some(Err(error)) => Err(MalformedEvent::new(error.to_string())),
            None => Change::from_message(&message.payload),
        };
        match decoded {
            Ok(change) => changes.push(change),
            Err(error) => {
                let position = message
                    .headers
                    .as_ref()
                    .and_then(|headers| headers.get(event_store::relay::POSITION_HEADER))
                    .and_then(|value| value.as_str().parse::<i64>().ok());
                tracing::error!(%error, subject = %message.subject, ?position, "skipping a message that is not an event");
                skipped.extend(position);
                malformed.extend(
                    position.map(|position| Quarantined::message(position, error.to_string())),
                );
            }
        }
    }
    let positions: Vec<i64> = changes
        .iter()
        .map(|change| change.position)
        .chain(skipped.iter().copied())
        .collect();
    let options = options.clone();
    let prepared =
        tokio::task::spawn_blocking(move || apply::prepare(registry, &options, changes)).await;
    let mut prepared = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            // Extraction panicked: a defect. Skip the batch's rows rather than stop projecting;
            // a rebuild brings them back once the defect is fixed.
            tracing::error!(%error, "computing index rows panicked; the batch's rows are skipped");
            return PreparedBatch {
                changes: Vec::new(),
                positions,
                quarantined: malformed,
            };
        }
    };
    prepared.positions.extend(skipped);
    prepared.quarantined = malformed;
    prepared
}

/// Writes the batch, retrying while Postgres is unavailable; `None` if stopped meanwhile.
async fn write_until_done(
    pool: &PgPool,
    batch: &PreparedBatch,
    status: &ConsumerStatus,
    stopped: &mut watch::Receiver<bool>,
) -> Option<apply::Applied> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match apply::write(pool, batch).await {
            Ok(applied) => return Some(applied),
            Err(error) => {
                tracing::warn!(%error, "cannot write a projection batch; retrying");
                status.set_error(Some(format!("Postgres: {error}")));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stopped.changed() => return None,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
