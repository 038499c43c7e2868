//! `GET /status` and `GET /metrics`: how far behind the event store the projections are.
//!
//! "Behind" is measured against the store's feed, not against NATS: an event counts from the
//! moment it has a position, so a stalled relay shows up as projection lag too, which is what
//! a reader waiting for its write cares about. Events the projection could not index
//! (`projection_quarantine`, see [`crate::apply`]) are counted, and the latest listed with
//! their reasons, so someone can look at them: they no longer hold up the lag.

use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use fhir_search::schema::{projection_checkpoint, projection_quarantine};
use serde::Serialize;
use sqlx::PgPool;

use crate::apply::CHECKPOINT;
use crate::consumer::ConsumerStatus;

/// The projections' progress, as `/status` reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Every event up to this position is in the tables.
    pub position: i64,
    /// The newest position in the event store.
    pub head: i64,
    pub events_behind: i64,
    /// How long ago the oldest event not yet applied was recorded (0 when caught up).
    pub seconds_behind: f64,
    pub checkpoint_updated_at: DateTime<Utc>,
}

/// Reads the checkpoint and the store's head.
pub async fn progress(pool: &PgPool) -> Result<Progress, sqlx::Error> {
    let (position, updated_at, head, seconds_behind): (
        i64,
        DateTime<Utc>,
        Option<i64>,
        Option<f64>,
    ) = sqlx::query_as(&PROGRESS)
        .bind(CHECKPOINT)
        .fetch_one(pool)
        .await?;
    let head = head.unwrap_or(0);
    Ok(Progress {
        position,
        head,
        events_behind: (head - position).max(0),
        seconds_behind: seconds_behind.unwrap_or(0.0).max(0.0),
        checkpoint_updated_at: updated_at,
    })
}

static PROGRESS: LazyLock<String> = LazyLock::new(|| {
    use projection_checkpoint::{NAME, POSITION, TABLE, UPDATED_AT};
    format!(
        "SELECT c.{POSITION}, c.{UPDATED_AT}, \
                    (SELECT max(position) FROM fhir_event_position), \
                    (SELECT extract(epoch FROM clock_timestamp() - e.recorded_at)::float8 \
                       FROM fhir_event_position p JOIN fhir_event e ON e.event_id = p.event_id \
                      WHERE p.position = c.{POSITION} + 1) \
             FROM {TABLE} c WHERE c.{NAME} = $1"
    )
});

/// How many of the latest quarantined events `/status` lists.
const LATEST_QUARANTINED: i64 = 10;

/// An event the projection could not index, as `/status` lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QuarantinedEvent {
    pub position: i64,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub version: Option<i32>,
    pub reason: String,
    pub quarantined_at: DateTime<Utc>,
}

/// The number of quarantined events and the latest of them, newest first.
pub async fn quarantine(pool: &PgPool) -> Result<(i64, Vec<QuarantinedEvent>), sqlx::Error> {
    use projection_quarantine::{
        POSITION, QUARANTINED_AT, REASON, RESOURCE_ID, RESOURCE_TYPE, TABLE, VERSION,
    };
    let (count,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {TABLE}"))
        .fetch_one(pool)
        .await?;
    let latest: Vec<QuarantinedRow> = sqlx::query_as(&format!(
        "SELECT {POSITION}, {RESOURCE_TYPE}, {RESOURCE_ID}, {VERSION}, {REASON}, {QUARANTINED_AT} \
         FROM {TABLE} ORDER BY {QUARANTINED_AT} DESC, {POSITION} DESC LIMIT $1"
    ))
    .bind(LATEST_QUARANTINED)
    .fetch_all(pool)
    .await?;
    let latest = latest
        .into_iter()
        .map(
            |(position, resource_type, resource_id, version, reason, quarantined_at)| {
                QuarantinedEvent {
                    position,
                    resource_type,
                    resource_id,
                    version,
                    reason,
                    quarantined_at,
                }
            },
        )
        .collect();
    Ok((count, latest))
}

/// A `projection_quarantine` row, in the order `quarantine` selects its columns.
type QuarantinedRow = (
    i64,
    Option<String>,
    Option<String>,
    Option<i32>,
    String,
    DateTime<Utc>,
);

#[derive(Clone)]
struct StatusState {
    pool: PgPool,
    consumer: Arc<ConsumerStatus>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody {
    #[serde(flatten)]
    progress: Progress,
    consumer_connected: bool,
    events_received: u64,
    stale_events: u64,
    batches: u64,
    index_problems: u64,
    /// Events that could not be indexed, in all (every instance, since the last rebuild).
    quarantined_events: i64,
    /// The latest of them, newest first.
    latest_quarantined: Vec<QuarantinedEvent>,
    cache_invalidation_failures: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
}

/// The `/status` and `/metrics` routes.
pub fn routes(pool: PgPool, consumer: Arc<ConsumerStatus>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(StatusState { pool, consumer })
}

async fn status(State(state): State<StatusState>) -> Response {
    let read = async {
        let progress = progress(&state.pool).await?;
        let (quarantined, latest) = quarantine(&state.pool).await?;
        Ok::<_, sqlx::Error>((progress, quarantined, latest))
    };
    match read.await {
        Ok((progress, quarantined_events, latest_quarantined)) => {
            let consumer = &state.consumer;
            Json(StatusBody {
                progress,
                consumer_connected: consumer.is_connected(),
                events_received: consumer.events(),
                stale_events: consumer.stale(),
                batches: consumer.batches(),
                index_problems: consumer.problems(),
                quarantined_events,
                latest_quarantined,
                cache_invalidation_failures: consumer.cache_failures(),
                last_error: consumer.last_error(),
            })
            .into_response()
        }
        Err(error) => unavailable(&error),
    }
}

async fn metrics(State(state): State<StatusState>) -> Response {
    let progress = match progress(&state.pool).await {
        Ok(progress) => progress,
        Err(error) => return unavailable(&error),
    };
    let quarantined = match quarantine(&state.pool).await {
        Ok((count, _)) => count,
        Err(error) => return unavailable(&error),
    };
    let consumer = &state.consumer;
    let mut text = String::new();
    let gauges: [(&str, &str, f64); 10] = [
        (
            "projection_position",
            "Every event up to this position is projected.",
            progress.position as f64,
        ),
        (
            "projection_head_position",
            "Newest position in the event store.",
            progress.head as f64,
        ),
        (
            "projection_events_behind",
            "Events in the store not yet projected.",
            progress.events_behind as f64,
        ),
        (
            "projection_lag_seconds",
            "Age of the oldest event not yet projected.",
            progress.seconds_behind,
        ),
        (
            "projection_consumer_connected",
            "1 when the JetStream consumer is connected.",
            f64::from(u8::from(consumer.is_connected())),
        ),
        (
            "projection_events_received_total",
            "Events received from JetStream by this instance.",
            consumer.events() as f64,
        ),
        (
            "projection_stale_events_total",
            "Events older than the projected version (redelivered or out of order).",
            consumer.stale() as f64,
        ),
        (
            "projection_index_problems_total",
            "Search-parameter expressions that failed on a resource.",
            consumer.problems() as f64,
        ),
        (
            "projection_quarantined_events",
            "Events that could not be indexed and were set aside (projection_quarantine).",
            quarantined as f64,
        ),
        (
            "projection_cache_invalidation_failures_total",
            "Redis invalidations that failed.",
            consumer.cache_failures() as f64,
        ),
    ];
    for (name, help, value) in gauges {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(
            text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

fn unavailable(error: &sqlx::Error) -> Response {
    tracing::warn!(%error, "cannot read the projection checkpoint");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"error": "cannot read the projection checkpoint from Postgres"})),
    )
        .into_response()
}
