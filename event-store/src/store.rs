//! Postgres persistence of the event streams (schema in `event-store/migrations/`).
//!
//! Writing is two short steps. `insert` appends the events of one request, and queues them
//! for a position, with a single statement (so many streams commit atomically, or none do); the unique
//! `(resource_type, resource_id, version)` constraint turns a concurrent write of the same
//! version into `StoreError::Conflict`. Then `sequence` gives the committed events their global
//! positions through `fhir_sequence_events()`, which numbers queued events under a lock:
//! positions become visible in increasing order, so `read_feed(after)` never skips an event
//! that commits late. `append` does both and returns the positions.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Postgres;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use thiserror::Error;
use uuid::Uuid;

use crate::event::{EventKind, EventMetadata, NewEvent, StoredEvent, event_hash};
use crate::sequencer::GroupSequencer;

/// The event store's migrations (`event-store/migrations/`): its tables and its sequencing
/// function, nothing else. Every service that reads or writes events runs them at start-up.
///
/// Other schemas in the same database (the search indexes, `fhir_search::schema`) record their
/// migrations in the same `_sqlx_migrations` table, so versions this set does not hold are
/// ignored rather than refused. A changed file is still refused: versions this set holds must
/// match what was applied.
pub fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// Applies [`migrator`]'s pending migrations (concurrent runs, of this set or another, are
/// serialised by sqlx's migration lock).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    migrator().run(pool).await
}

/// What can go wrong when writing or reading events.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Another writer committed the same version of a stream first.
    #[error("a concurrent write committed the same version first: {detail}")]
    Conflict { detail: String },
    #[error("event store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event store: cannot encode metadata: {0}")]
    Encoding(#[from] serde_json::Error),
    #[error("event store: sequencing failed: {0}")]
    Sequencing(String),
    #[error("event store: events {0:?} were committed but got no position")]
    Unsequenced(Vec<i64>),
    /// A message named an event by a position the feed does not hold.
    #[error("event store: no event at position {0}")]
    NotInFeed(i64),
}

/// What one request's events share: the transaction and the metadata.
#[derive(Debug, Clone)]
pub struct CommitContext {
    pub metadata: EventMetadata,
}

impl CommitContext {
    pub fn transaction_id(&self) -> Uuid {
        self.metadata.transaction_id
    }

    pub fn recorded_at(&self) -> DateTime<Utc> {
        self.metadata.recorded_at
    }

    /// The partition the events go to: their sandbox run's, or the live record's (0).
    pub fn partition(&self) -> i64 {
        self.metadata
            .sandbox
            .as_ref()
            .map_or(0, |sandbox| sandbox.partition)
    }
}

/// An appended event: where it landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedEvent {
    pub event_id: i64,
    pub position: i64,
    pub resource_type: String,
    pub resource_id: String,
    pub version: u32,
}

/// The event store. Cheap to clone (a pool handle), and scoped to one record: the live one, or
/// a teaching sandbox's ([`EventStore::within`]).
#[derive(Debug, Clone)]
pub struct EventStore {
    pool: PgPool,
    sequencer: GroupSequencer,
    record: Record,
}

/// Which record a store handle reads and writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Record {
    /// The live record: partition 0.
    #[default]
    Live,
    /// A teaching sandbox's current run: the live events up to its fork position, then its own.
    Sandbox(SandboxRecord),
}

/// A sandbox run as the store sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRecord {
    pub name: String,
    pub partition: i64,
    pub fork: i64,
}

impl Record {
    /// The condition on an event `e` (left-joined to its position `p`) of belonging to this
    /// record's streams. Partition and fork are numbers, formatted into the statement.
    fn events(&self, e: &str, p: &str) -> String {
        match self {
            Record::Live => format!("{e}.partition = 0"),
            Record::Sandbox(sandbox) => format!(
                "({e}.partition = {} OR ({e}.partition = 0 AND {p}.position <= {}))",
                sandbox.partition, sandbox.fork
            ),
        }
    }

    /// The partition this record's writes go to.
    pub fn partition(&self) -> i64 {
        match self {
            Record::Live => 0,
            Record::Sandbox(sandbox) => sandbox.partition,
        }
    }
}

/// The columns of `StoredEvent`, from `fhir_event e` left-joined to `fhir_event_position p`.
/// What a `_history` interaction asks for; `None` leaves a filter out.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery<'a> {
    pub resource_type: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    /// `_since`: versions recorded at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// `_at`: versions that were current at some instant of `[low, high)`.
    pub at: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The page cursor: only events before this position.
    pub before_position: Option<i64>,
    pub limit: i64,
}

const EVENT_COLUMNS: &str = "e.event_id, p.position, e.resource_type, e.resource_id, e.version, e.kind, \
     e.resource::text AS resource, e.patch::text AS patch, e.metadata::text AS metadata, \
     e.transaction_id, e.recorded_at, e.prev_hash, e.hash, e.partition";
/// The conditions of a `_history` query, over `p` (positions) and `e` (events), binding $1 to
/// $6 as [`bind_history`] does; `{next}` is replaced by the condition on a next version `n` of
/// being in the same record.
const HISTORY_FILTER: &str = "($1::text IS NULL OR e.resource_type = $1) AND ($2::text IS NULL OR e.resource_id = $2) \
     AND ($3::timestamptz IS NULL OR e.recorded_at >= $3) \
     AND ($4::bigint IS NULL OR p.position < $4) \
     AND ($5::timestamptz IS NULL OR (e.recorded_at < $6 AND NOT EXISTS ( \
         SELECT 1 FROM fhir_event n WHERE n.resource_type = e.resource_type \
         AND n.resource_id = e.resource_id AND n.version = e.version + 1 AND n.recorded_at <= $5 \
         AND {next})))";

fn bind_history<'q, O>(
    statement: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    query: &HistoryQuery<'q>,
) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
    let (at_low, at_high) = query.at.unzip();
    statement
        .bind(query.resource_type)
        .bind(query.resource_id)
        .bind(query.since)
        .bind(query.before_position)
        .bind(at_low)
        .bind(at_high)
}

const EVENTS: &str = "fhir_event e LEFT JOIN fhir_event_position p ON p.event_id = e.event_id";

impl EventStore {
    /// A store on `pool`. Starts this process's group sequencer, so it must run inside a Tokio
    /// runtime.
    pub fn new(pool: PgPool) -> Self {
        let sequencer = GroupSequencer::start(pool.clone());
        EventStore {
            pool,
            sequencer,
            record: Record::Live,
        }
    }

    /// This store scoped to `record`: reads see that record's streams, writes go to it.
    pub fn within(&self, record: Record) -> EventStore {
        EventStore {
            pool: self.pool.clone(),
            sequencer: self.sequencer.clone(),
            record,
        }
    }

    /// The record this handle reads and writes.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The conditions of a `_history` query of this record (see [`HISTORY_FILTER`]): its
    /// events, and for `_at` its next versions only (a live version written after a sandbox's
    /// fork is not the sandbox's next version).
    fn history_filter(&self) -> String {
        let next = match &self.record {
            Record::Live => "n.partition = 0".to_owned(),
            Record::Sandbox(sandbox) => format!(
                "(n.partition = {} OR (n.partition = 0 AND EXISTS (SELECT 1 FROM fhir_event_position np \
                 WHERE np.event_id = n.event_id AND np.position <= {})))",
                sandbox.partition, sandbox.fork
            ),
        };
        format!(
            "{} AND {}",
            HISTORY_FILTER.replace("{next}", &next),
            self.record.events("e", "p")
        )
    }

    /// Opens a pool on `url`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
        PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The latest event of a stream (its current state: events are fat).
    pub async fn latest(
        &self,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM {EVENTS} WHERE e.resource_type = $1 AND e.resource_id = $2 \
             AND {} ORDER BY e.version DESC LIMIT 1",
            self.record.events("e", "p")
        );
        Ok(sqlx::query_as(&sql)
            .bind(resource_type)
            .bind(resource_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The latest event of a stream among those at or before `position`: the resource as it
    /// was there, in this handle's record (a sandbox's: the live events up to its fork, then
    /// its own up to `position`). Events not yet given a position are not part of any past.
    pub async fn latest_at(
        &self,
        resource_type: &str,
        resource_id: &str,
        position: i64,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM fhir_event e JOIN fhir_event_position p ON p.event_id = e.event_id \
             WHERE e.resource_type = $1 AND e.resource_id = $2 AND {} AND p.position <= $3 \
             ORDER BY e.version DESC LIMIT 1",
            self.record.events("e", "p")
        );
        Ok(sqlx::query_as(&sql)
            .bind(resource_type)
            .bind(resource_id)
            .bind(position)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The position of the record just before `instant`: the highest position of the events
    /// recorded before it (0 when none was). Writers commit side by side, so positions follow
    /// recording times only roughly; the newest few hundred events before the instant are
    /// looked at, which covers any overlap of concurrent writes.
    pub async fn position_at(&self, instant: DateTime<Utc>) -> Result<i64, StoreError> {
        let (position,): (Option<i64>,) = sqlx::query_as(
            "SELECT max(p.position) FROM (SELECT event_id FROM fhir_event WHERE recorded_at <= $1 \
             ORDER BY recorded_at DESC LIMIT 512) e JOIN fhir_event_position p ON p.event_id = e.event_id",
        )
        .bind(instant)
        .fetch_one(&self.pool)
        .await?;
        Ok(position.unwrap_or(0))
    }

    /// The latest events of several streams in one query (a transaction Bundle's heads), by
    /// `(type, id)`; streams without events are absent.
    pub async fn latest_many(
        &self,
        streams: &[(String, String)],
    ) -> Result<std::collections::HashMap<(String, String), StoredEvent>, StoreError> {
        if streams.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let (types, ids): (Vec<&str>, Vec<&str>) = streams
            .iter()
            .map(|(t, i)| (t.as_str(), i.as_str()))
            .unzip();
        let sql = format!(
            "SELECT x.* FROM unnest($1::text[], $2::text[]) AS t(resource_type, resource_id) \
             CROSS JOIN LATERAL (SELECT {EVENT_COLUMNS} FROM {EVENTS} \
                 WHERE e.resource_type = t.resource_type AND e.resource_id = t.resource_id AND {} \
                 ORDER BY e.version DESC LIMIT 1) x",
            self.record.events("e", "p")
        );
        let rows: Vec<StoredEvent> = sqlx::query_as(&sql)
            .bind(&types)
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|event| {
                (
                    (event.resource_type.clone(), event.resource_id.clone()),
                    event,
                )
            })
            .collect())
    }

    /// One version of a stream.
    pub async fn version(
        &self,
        resource_type: &str,
        resource_id: &str,
        version: i32,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM {EVENTS} \
             WHERE e.resource_type = $1 AND e.resource_id = $2 AND e.version = $3 AND {}",
            self.record.events("e", "p")
        );
        Ok(sqlx::query_as(&sql)
            .bind(resource_type)
            .bind(resource_id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Every event of a stream, oldest first.
    pub async fn stream(
        &self,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM {EVENTS} \
             WHERE e.resource_type = $1 AND e.resource_id = $2 AND {} ORDER BY e.version",
            self.record.events("e", "p")
        );
        Ok(sqlx::query_as(&sql)
            .bind(resource_type)
            .bind(resource_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Appends and commits `events` atomically, then sequences them; returns their positions.
    pub async fn append(
        &self,
        context: &CommitContext,
        events: &[NewEvent],
    ) -> Result<Vec<CommittedEvent>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.pool.acquire().await?;
        let inserted = insert(&mut connection, context, events).await?;
        drop(connection);
        self.sequence(&inserted).await
    }

    /// Gives positions to `inserted` (committed) events and to any other committed events still
    /// waiting for one; returns the positions of `inserted`.
    pub async fn sequence(
        &self,
        inserted: &[InsertedEvent],
    ) -> Result<Vec<CommittedEvent>, StoreError> {
        let ids: Vec<i64> = inserted.iter().map(|event| event.event_id).collect();
        let rows = self
            .sequencer
            .positions(ids)
            .await
            .map_err(StoreError::Sequencing)?;
        let mut committed = Vec::with_capacity(inserted.len());
        let mut missing = Vec::new();
        for event in inserted {
            match rows.iter().find(|(id, _)| *id == event.event_id) {
                Some((_, Some(position))) => committed.push(CommittedEvent {
                    event_id: event.event_id,
                    position: *position,
                    resource_type: event.resource_type.clone(),
                    resource_id: event.resource_id.clone(),
                    version: event.version,
                }),
                _ => missing.push(event.event_id),
            }
        }
        if missing.is_empty() {
            Ok(committed)
        } else {
            Err(StoreError::Unsequenced(missing))
        }
    }

    /// Sequences whatever is committed and unnumbered (events whose writer stopped between its
    /// commit and its own sequencing call). The outbox relay calls this periodically.
    pub async fn sequence_pending(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT count(*) FROM fhir_sequence_events(NULL)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The global feed: events with a position greater than `after`, in position order.
    pub async fn read_feed(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM fhir_event_position p JOIN fhir_event e ON e.event_id = p.event_id \
             WHERE p.position > $1 ORDER BY p.position LIMIT $2"
        );
        Ok(sqlx::query_as(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The event at `position`, for a message that names it by reference.
    pub async fn event_at(&self, position: i64) -> Result<Option<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM fhir_event_position p JOIN fhir_event e ON e.event_id = p.event_id \
             WHERE p.position = $1"
        );
        Ok(sqlx::query_as(&sql)
            .bind(position)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Events for a `_history` interaction, newest first (by position, so a page boundary
    /// never moves as events are added).
    pub async fn history(&self, query: &HistoryQuery<'_>) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM fhir_event_position p JOIN fhir_event e ON e.event_id = p.event_id \
             WHERE {} ORDER BY p.position DESC LIMIT $7",
            self.history_filter()
        );
        Ok(bind_history(sqlx::query_as(&sql), query)
            .bind(query.limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// How many events a `_history` interaction covers (`_summary=count`; the limit is not
    /// applied).
    pub async fn history_count(&self, query: &HistoryQuery<'_>) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT count(*) FROM fhir_event_position p JOIN fhir_event e ON e.event_id = p.event_id \
             WHERE {}",
            self.history_filter()
        );
        let (count,): (i64,) = bind_history(sqlx::query_as(&sql), query)
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }

    /// How many versions a resource has (the total of its `_history`), counting only those at
    /// or before `until` when given.
    pub async fn version_count(
        &self,
        resource_type: &str,
        resource_id: &str,
        until: Option<i64>,
    ) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT count(*) FROM fhir_event e LEFT JOIN fhir_event_position p ON p.event_id = e.event_id \
             WHERE e.resource_type = $1 AND e.resource_id = $2 AND ($3::bigint IS NULL OR p.position <= $3) \
             AND {}",
            self.record.events("e", "p")
        );
        let (count,): (i64,) = sqlx::query_as(&sql)
            .bind(resource_type)
            .bind(resource_id)
            .bind(until)
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }

    /// The highest position given so far (0 when the store is empty).
    pub async fn head_position(&self) -> Result<i64, StoreError> {
        let (head,): (Option<i64>,) =
            sqlx::query_as("SELECT max(position) FROM fhir_event_position")
                .fetch_one(&self.pool)
                .await?;
        Ok(head.unwrap_or(0))
    }

    /// Which of `targets` (type, id) exist and are not deleted.
    pub async fn live_resources(
        &self,
        targets: &std::collections::BTreeSet<(String, String)>,
    ) -> Result<std::collections::BTreeSet<(String, String)>, StoreError> {
        let (types, ids): (Vec<&str>, Vec<&str>) = targets
            .iter()
            .map(|(t, i)| (t.as_str(), i.as_str()))
            .unzip();
        let sql = format!(
            "SELECT DISTINCT ON (e.resource_type, e.resource_id) e.resource_type, e.resource_id, e.kind \
             FROM fhir_event e JOIN unnest($1::text[], $2::text[]) AS t(resource_type, resource_id) \
               ON e.resource_type = t.resource_type AND e.resource_id = t.resource_id \
             LEFT JOIN fhir_event_position p ON p.event_id = e.event_id \
             WHERE {} \
             ORDER BY e.resource_type, e.resource_id, e.version DESC",
            self.record.events("e", "p")
        );
        let rows: Vec<(String, String, String)> = sqlx::query_as(&sql)
            .bind(&types)
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .filter(|(_, _, kind)| kind != EventKind::ResourceDeleted.as_str())
            .map(|(resource_type, resource_id, _)| (resource_type, resource_id))
            .collect())
    }

    /// How many events the store holds.
    pub async fn count(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM fhir_event")
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }

    /// Checks a stream's hash chain: every event's hash matches its content and links to the
    /// previous event. Returns the first version that fails, if any.
    pub async fn verify_stream(
        &self,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<Option<i32>, StoreError> {
        let mut previous: Option<Vec<u8>> = None;
        for event in self.stream(resource_type, resource_id).await? {
            if event.prev_hash != previous || event.computed_hash() != event.hash {
                return Ok(Some(event.version));
            }
            previous = Some(event.hash);
        }
        Ok(None)
    }
}

/// An event inserted (and, once its transaction commits, committed) but not yet sequenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertedEvent {
    pub event_id: i64,
    pub resource_type: String,
    pub resource_id: String,
    pub version: u32,
}

/// Inserts `events` with one statement on `connection`. Outside a transaction that statement
/// commits on its own; inside one, with it. Positions come later, from `EventStore::sequence`.
pub async fn insert(
    connection: &mut PgConnection,
    context: &CommitContext,
    events: &[NewEvent],
) -> Result<Vec<InsertedEvent>, StoreError> {
    let metadata = serde_json::to_string(&context.metadata)?;
    let count = events.len();
    let mut types = Vec::with_capacity(count);
    let mut ids = Vec::with_capacity(count);
    let mut versions = Vec::with_capacity(count);
    let mut kinds = Vec::with_capacity(count);
    let mut resources = Vec::with_capacity(count);
    let mut patches = Vec::with_capacity(count);
    let mut prev_hashes = Vec::with_capacity(count);
    let mut hashes = Vec::with_capacity(count);
    for event in events {
        let version = i32::try_from(event.version).unwrap_or(i32::MAX);
        hashes.push(event_hash(
            event.prev_hash.as_deref(),
            &event.resource_type,
            &event.resource_id,
            version,
            event.kind.as_str(),
            &event.resource,
            event.patch.as_deref(),
            &metadata,
        ));
        types.push(event.resource_type.as_str());
        ids.push(event.resource_id.as_str());
        versions.push(version);
        kinds.push(event.kind.as_str());
        resources.push(event.resource.as_str());
        patches.push(event.patch.as_deref());
        prev_hashes.push(event.prev_hash.as_deref());
    }
    let result = sqlx::query_as::<Postgres, (i64, String, String, i32)>(
        "WITH inserted AS ( \
             INSERT INTO fhir_event (resource_type, resource_id, version, kind, resource, patch, \
                                     metadata, transaction_id, recorded_at, prev_hash, hash, partition) \
             SELECT t, i, v, k, r::json, p::json, $8::json, $9, $10, ph, h, $12 \
             FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[], $5::text[], $6::text[], \
                         $7::bytea[], $11::bytea[]) WITH ORDINALITY AS u(t, i, v, k, r, p, ph, h, n) \
             ORDER BY n \
             RETURNING event_id, resource_type, resource_id, version), \
         queued AS (INSERT INTO fhir_event_queue (event_id) SELECT event_id FROM inserted) \
         SELECT event_id, resource_type, resource_id, version FROM inserted ORDER BY event_id",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&versions)
    .bind(&kinds)
    .bind(&resources)
    .bind(&patches)
    .bind(&prev_hashes)
    .bind(&metadata)
    .bind(context.transaction_id())
    .bind(context.recorded_at())
    .bind(&hashes)
    .bind(context.partition())
    .fetch_all(&mut *connection)
    .await;
    let rows = match result {
        Ok(rows) => rows,
        Err(sqlx::Error::Database(error))
            if error.constraint() == Some("fhir_event_stream_version") =>
        {
            let detail = error
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .and_then(|error| error.detail())
                .unwrap_or_else(|| error.message())
                .to_owned();
            return Err(StoreError::Conflict { detail });
        }
        Err(other) => return Err(other.into()),
    };
    Ok(rows
        .into_iter()
        .map(
            |(event_id, resource_type, resource_id, version)| InsertedEvent {
                event_id,
                resource_type,
                resource_id,
                version: u32::try_from(version).unwrap_or(0),
            },
        )
        .collect())
}
