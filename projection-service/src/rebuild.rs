//! Rebuilding the projections from the event store, without taking them offline.
//!
//! The replay writes into copies of the tables in a schema of its own (`projection_rebuild`)
//! while the live tables keep serving and the live consumer keeps applying. When the replay
//! has reached the store's head, one transaction takes the swap lock exclusively (so no live
//! batch is half-way), replays the last few events, drops the live tables and moves the copies
//! into their place, and recreates the views. Readers wait for that transaction only.
//! Afterwards the live consumer's redelivered or in-flight events are older than what the
//! rebuilt tables hold and are skipped by the version rule.

use std::time::Instant;

use fhir_search::{ExtractOptions, Registry};
use serde::Serialize;
use sqlx::{Connection, PgConnection, PgPool};

use fhir_search::schema::{hfj_history_horizon, projection_checkpoint};

use crate::apply::{self, ADVANCE_CHECKPOINT, CHECKPOINT, SWAP_LOCK};
use crate::change::Change;
use crate::tables;
use crate::workflow;

/// The schema the copies are built in.
pub const REBUILD_SCHEMA: &str = "projection_rebuild";

/// Only one rebuild at a time (a session-level advisory lock).
const REBUILD_LOCK: i64 = 0x5752_5245_4255; // "WRREBU"

const REPLAY_BATCH: i64 = 1_000;

/// What a rebuild did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RebuildReport {
    /// Events replayed (all versions, deletes included).
    pub events: u64,
    /// The position the rebuilt tables are complete up to when swapped in.
    pub position: i64,
    pub seconds: f64,
    /// Seconds the swap transaction held the tables locked.
    pub swap_seconds: f64,
    pub index_problems: usize,
    /// Events that could not be indexed (listed in `projection_quarantine`).
    pub quarantined: usize,
}

/// Why a rebuild did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("another rebuild is running")]
    AlreadyRunning,
    #[error("Postgres: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event store: {0}")]
    Store(#[from] event_store::StoreError),
    #[error("{0}")]
    Malformed(#[from] crate::change::MalformedEvent),
}

/// Replays the whole event store into fresh tables and swaps them in.
pub async fn rebuild(
    pool: &PgPool,
    database_url: &str,
    registry: &'static Registry,
    options: &ExtractOptions,
) -> Result<RebuildReport, RebuildError> {
    let started = Instant::now();
    let store = event_store::EventStore::new(pool.clone());
    // A connection of its own: its search_path points at the copies, so the projector's
    // statements (which name tables unqualified) write there.
    let mut conn = PgConnection::connect(database_url).await?;
    let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
        .bind(REBUILD_LOCK)
        .fetch_one(&mut conn)
        .await?;
    if !locked {
        return Err(RebuildError::AlreadyRunning);
    }
    let result = replay_and_swap(&mut conn, &store, registry, options, started).await;
    if result.is_err() {
        let drop = format!("DROP SCHEMA IF EXISTS {REBUILD_SCHEMA} CASCADE");
        let _ = sqlx::query(&drop).execute(&mut conn).await;
    }
    let _ = conn.close().await;
    result
}

async fn replay_and_swap(
    conn: &mut PgConnection,
    store: &event_store::EventStore,
    registry: &'static Registry,
    options: &ExtractOptions,
    started: Instant,
) -> Result<RebuildReport, RebuildError> {
    create_copies(conn).await?;
    let search_path = format!("SET search_path TO {REBUILD_SCHEMA}, public");
    sqlx::query(&search_path).execute(&mut *conn).await?;
    let mut progress = Replay::default();
    // Catch up outside the lock until the remainder is small, so the swap is short.
    loop {
        let before = progress.events;
        replay(conn, store, registry, options, &mut progress).await?;
        if progress.events - before < REPLAY_BATCH as u64 {
            break;
        }
    }
    let swap_started = Instant::now();
    let mut transaction = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SWAP_LOCK)
        .execute(&mut *transaction)
        .await?;
    replay(&mut transaction, store, registry, options, &mut progress).await?;
    let mut swap = vec!["SET LOCAL search_path TO public".to_owned()];
    for table in tables::all_tables() {
        swap.push(format!("DROP TABLE public.{table} CASCADE"));
        swap.push(format!(
            "ALTER TABLE {REBUILD_SCHEMA}.{table} SET SCHEMA public"
        ));
    }
    // The copies' extended statistics (see the migrations) stay in the schema they were created
    // in when their tables move; they follow them, or the schema could not be dropped.
    swap.push(format!(
        "DO $$ DECLARE statistic name; BEGIN \
         FOR statistic IN SELECT stxname FROM pg_statistic_ext \
         WHERE stxnamespace = '{REBUILD_SCHEMA}'::regnamespace LOOP \
         EXECUTE format('ALTER STATISTICS {REBUILD_SCHEMA}.%I SET SCHEMA public', statistic); \
         END LOOP; END $$"
    ));
    swap.push(format!("DROP SCHEMA {REBUILD_SCHEMA}"));
    execute_all(&mut transaction, &swap).await?;
    workflow::install_views(&mut transaction).await?;
    transaction.commit().await?;
    sqlx::query("SET search_path TO DEFAULT")
        .execute(&mut *conn)
        .await?;
    Ok(RebuildReport {
        events: progress.events,
        position: progress.position,
        seconds: started.elapsed().as_secs_f64(),
        swap_seconds: swap_started.elapsed().as_secs_f64(),
        index_problems: progress.problems,
        quarantined: progress.quarantined,
    })
}

/// Empty copies of every projection table, with their indexes, defaults and identities.
async fn create_copies(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let mut statements = vec![
        format!("DROP SCHEMA IF EXISTS {REBUILD_SCHEMA} CASCADE"),
        format!("CREATE SCHEMA {REBUILD_SCHEMA}"),
    ];
    for table in tables::all_tables() {
        statements.push(format!(
            "CREATE TABLE {REBUILD_SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL)"
        ));
    }
    // The replay indexes every version, so the copies know the past from the start.
    statements.push(format!(
        "INSERT INTO {REBUILD_SCHEMA}.{} ({}) VALUES (0)",
        hfj_history_horizon::TABLE,
        hfj_history_horizon::POSITION,
    ));
    statements.push(format!(
        "INSERT INTO {REBUILD_SCHEMA}.{} ({}, {}) VALUES ('{CHECKPOINT}', 0)",
        projection_checkpoint::TABLE,
        projection_checkpoint::NAME,
        projection_checkpoint::POSITION,
    ));
    execute_all(conn, &statements).await
}

/// Runs DDL statements one by one (no parameters, so each is a plain query).
async fn execute_all(conn: &mut PgConnection, statements: &[String]) -> Result<(), sqlx::Error> {
    for statement in statements {
        sqlx::query(statement).execute(&mut *conn).await?;
    }
    Ok(())
}

#[derive(Default)]
struct Replay {
    position: i64,
    events: u64,
    problems: usize,
    quarantined: usize,
}

/// Applies the feed after `progress.position` up to its current end, batch by batch, each in a
/// transaction (nested in the caller's, as a savepoint, during the swap).
async fn replay(
    conn: &mut PgConnection,
    store: &event_store::EventStore,
    registry: &'static Registry,
    options: &ExtractOptions,
    progress: &mut Replay,
) -> Result<(), RebuildError> {
    loop {
        let events = store.read_feed(progress.position, REPLAY_BATCH).await?;
        let Some(last) = events.last().and_then(|event| event.position) else {
            return Ok(());
        };
        let changes = events
            .iter()
            .map(Change::from_stored)
            .collect::<Result<Vec<_>, _>>()?;
        let count = changes.len();
        let options = options.clone();
        let batch =
            tokio::task::spawn_blocking(move || apply::prepare(registry, &options, changes))
                .await
                .map_err(|error| {
                    sqlx::Error::Protocol(format!("computing index rows failed: {error}"))
                })?;
        let mut transaction = conn.begin().await?;
        let applied = apply::write_rows(&mut transaction, &batch).await?;
        sqlx::query(&ADVANCE_CHECKPOINT)
            .bind(CHECKPOINT)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        progress.position = last;
        progress.events += count as u64;
        progress.problems += applied.problems.len();
        progress.quarantined += applied.quarantined.len();
        if progress.events % 10_000 < count as u64 {
            tracing::info!(
                events = progress.events,
                position = last,
                "rebuild replaying"
            );
        }
    }
}
