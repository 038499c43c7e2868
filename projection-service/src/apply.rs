//! Applying a batch of changes to the projection tables.
//!
//! The rule that makes redelivery, replays and several instances safe: a resource's version is
//! applied only if it is newer than the one in `hfj_resource`, and applying it replaces all of
//! the resource's rows. So the tables always hold the rows of each resource's newest version
//! seen, whatever order the versions came in, and a delete (a newer version that is deleted)
//! leaves no rows. Each batch is one transaction that also records the positions it applied;
//! the checkpoint then advances over them (see the migration's `projection_advance_checkpoint`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fhir_search::{ExtractOptions, Registry, ResourceIndex};
use sqlx::{PgConnection, PgPool};

use crate::change::Change;
use crate::tables::{self, Target};
use crate::workflow::{self, WorkflowRows};

/// The name of the checkpoint row of the search and workflow projections.
pub const CHECKPOINT: &str = "search";

/// A rebuild's swap takes this advisory lock exclusively; every batch takes it shared, so no
/// batch is half-way when the tables are swapped.
pub const SWAP_LOCK: i64 = 0x5752_5052_4f4a; // "WRPROJ"

/// A change with its rows computed, ready to be written.
pub struct PreparedChange {
    pub change: Change,
    pub index: ResourceIndex,
    pub workflow: WorkflowRows,
}

/// A batch ready to be written: the newest change of each resource in it, and every position
/// the batch covers (superseded versions included, since they are applied by being superseded).
pub struct PreparedBatch {
    pub changes: Vec<PreparedChange>,
    pub positions: Vec<i64>,
}

/// What a batch changed.
#[derive(Debug, Default)]
pub struct Applied {
    /// `(type, id)` of the resources whose rows were replaced.
    pub replaced: Vec<(String, String)>,
    /// Changes that were older than what the tables had (redelivered, or out of order).
    pub stale: usize,
    /// Expressions that failed on some resource: logged, the other rows are kept.
    pub problems: Vec<String>,
}

/// Computes index and workflow rows; pure and CPU-bound, so callers run it off the async
/// executor and outside any transaction.
pub fn prepare(
    registry: &Registry,
    options: &ExtractOptions,
    changes: Vec<Change>,
) -> PreparedBatch {
    let positions = changes.iter().map(|change| change.position).collect();
    let mut newest: HashMap<(String, String), Change> = HashMap::new();
    for change in changes {
        let key = (change.resource_type.clone(), change.resource_id.clone());
        match newest.get(&key) {
            Some(kept) if kept.version >= change.version => {}
            _ => {
                newest.insert(key, change);
            }
        }
    }
    let mut changes: Vec<PreparedChange> = newest
        .into_values()
        .map(|change| {
            let (index, workflow) = if change.deleted {
                (ResourceIndex::default(), WorkflowRows::default())
            } else {
                (
                    fhir_search::index_resource(registry, options, &change.resource),
                    workflow::extract(&change.resource_type, &change.resource),
                )
            };
            PreparedChange {
                change,
                index,
                workflow,
            }
        })
        .collect();
    // One lock order for every batch, so concurrent instances cannot deadlock on hfj_resource.
    changes.sort_by(|a, b| {
        (&a.change.resource_type, &a.change.resource_id)
            .cmp(&(&b.change.resource_type, &b.change.resource_id))
    });
    PreparedBatch { changes, positions }
}

/// Writes `batch` in one transaction, then advances the checkpoint. Returns what changed.
pub async fn write(pool: &PgPool, batch: &PreparedBatch) -> Result<Applied, sqlx::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match write_once(pool, batch).await {
            Err(error) if attempt < 5 && is_retryable(&error) => {
                tracing::debug!(%error, attempt, "batch conflicted with another writer; retrying");
            }
            result => return result,
        }
    }
}

async fn write_once(pool: &PgPool, batch: &PreparedBatch) -> Result<Applied, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(SWAP_LOCK)
        .execute(&mut *transaction)
        .await?;
    let applied = write_rows(&mut transaction, batch).await?;
    transaction.commit().await?;
    advance_checkpoint(pool).await?;
    Ok(applied)
}

/// The body of a batch, inside the caller's transaction (a rebuild uses it on its own tables).
pub async fn write_rows(
    conn: &mut PgConnection,
    batch: &PreparedBatch,
) -> Result<Applied, sqlx::Error> {
    let mut applied = Applied::default();
    let winners = claim_versions(conn, batch).await?;
    let mut replace = Vec::new();
    let mut targets = Vec::new();
    for prepared in &batch.changes {
        let change = &prepared.change;
        let Some(&(res_pk, fresh)) =
            winners.get(&(change.resource_type.as_str(), change.resource_id.as_str()))
        else {
            applied.stale += 1;
            continue;
        };
        if !fresh {
            replace.push(res_pk);
        }
        applied
            .replaced
            .push((change.resource_type.clone(), change.resource_id.clone()));
        applied.problems.extend(
            prepared.index.problems.iter().map(|problem| {
                format!("{}/{}: {problem}", change.resource_type, change.resource_id)
            }),
        );
        if !change.deleted {
            targets.push(Target {
                res_pk,
                resource_type: &change.resource_type,
                resource_id: &change.resource_id,
                last_updated: change.recorded_at,
                index: &prepared.index,
                workflow: &prepared.workflow,
            });
        }
    }
    tables::delete_rows(conn, &replace).await?;
    tables::insert_rows(conn, &targets).await?;
    sqlx::query(
        "INSERT INTO projection_applied (position) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING",
    )
    .bind(&batch.positions)
    .execute(&mut *conn)
    .await?;
    Ok(applied)
}

/// Upserts `hfj_resource` for every change whose version is newer than the stored one; returns
/// those, with their `res_pk` and whether the row is new (then there are no old rows to delete).
async fn claim_versions<'a>(
    conn: &mut PgConnection,
    batch: &'a PreparedBatch,
) -> Result<HashMap<(&'a str, &'a str), (i64, bool)>, sqlx::Error> {
    let mut types = Vec::new();
    let mut ids = Vec::new();
    let mut versions = Vec::new();
    let mut updated: Vec<DateTime<Utc>> = Vec::new();
    let mut deleted = Vec::new();
    let mut positions = Vec::new();
    for prepared in &batch.changes {
        let change = &prepared.change;
        types.push(change.resource_type.as_str());
        ids.push(change.resource_id.as_str());
        versions.push(change.version);
        updated.push(change.recorded_at);
        deleted.push(change.deleted);
        positions.push(change.position);
    }
    let rows: Vec<(i64, String, String, bool)> = sqlx::query_as(
        "INSERT INTO hfj_resource (res_type, res_id, res_ver, last_updated, deleted, position) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::bool[], $6::bigint[]) \
         ON CONFLICT (res_type, res_id) DO UPDATE \
             SET res_ver = EXCLUDED.res_ver, last_updated = EXCLUDED.last_updated, \
                 deleted = EXCLUDED.deleted, position = EXCLUDED.position \
             WHERE hfj_resource.res_ver < EXCLUDED.res_ver \
         RETURNING res_pk, res_type, res_id, (xmax = 0) AS fresh",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&versions)
    .bind(&updated)
    .bind(&deleted)
    .bind(&positions)
    .fetch_all(&mut *conn)
    .await?;
    let by_key: HashMap<(&str, &str), &'a Change> = batch
        .changes
        .iter()
        .map(|prepared| {
            let change = &prepared.change;
            (
                (change.resource_type.as_str(), change.resource_id.as_str()),
                change,
            )
        })
        .collect();
    let mut winners = HashMap::with_capacity(rows.len());
    for (res_pk, resource_type, resource_id, fresh) in rows {
        // Keyed by the batch's own strings, so the map borrows from the batch.
        if let Some(change) = by_key.get(&(resource_type.as_str(), resource_id.as_str())) {
            winners.insert(
                (change.resource_type.as_str(), change.resource_id.as_str()),
                (res_pk, fresh),
            );
        }
    }
    Ok(winners)
}

/// Moves the checkpoint over the applied positions; returns it.
pub async fn advance_checkpoint(pool: &PgPool) -> Result<i64, sqlx::Error> {
    let (position,): (i64,) = sqlx::query_as("SELECT projection_advance_checkpoint($1)")
        .bind(CHECKPOINT)
        .fetch_one(pool)
        .await?;
    Ok(position)
}

/// Deadlocks and serialisation failures: another instance touched the same resources.
fn is_retryable(error: &sqlx::Error) -> bool {
    matches!(
        error
            .as_database_error()
            .and_then(|error| error.code())
            .as_deref(),
        Some("40P01" | "40001")
    )
}
