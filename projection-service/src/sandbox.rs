//! Projecting the changes made in teaching sandboxes (ADR 0014).
//!
//! A sandbox run's versions are indexed like the past: each is recorded in `hfj_res_ver` under
//! the run's partition with the positions it was current over, and its rows go to the history
//! twins, never to the live tables (a search of the live record must not see them, nor pay for
//! them). A resource written in a sandbox is keyed in `hfj_sandbox_resource` under a key of its
//! own; the sandbox's searches see it in place of the live resource of the same type and id.
//!
//! The rules that make redelivery and replays safe are the live ones: a version already
//! recorded is skipped, a late one takes its place between its neighbours, and
//! `hfj_sandbox_resource` keeps the newest version seen.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use fhir_search::schema;
use sqlx::PgConnection;

use crate::apply::{
    Applied, PreparedChange, Quarantined, close_versions, keyed, newest_of, record_versions,
};
use crate::tables::{self, Rows, Target};

/// Writes the sandbox changes of a batch (any partitions but 0).
pub async fn write_changes(
    conn: &mut PgConnection,
    changes: &[&PreparedChange],
) -> Result<Applied, sqlx::Error> {
    let mut applied = Applied::default();
    let mut by_partition: BTreeMap<i64, Vec<&PreparedChange>> = BTreeMap::new();
    for prepared in changes {
        by_partition
            .entry(prepared.change.partition)
            .or_default()
            .push(prepared);
    }
    for (partition, changes) in by_partition {
        write_partition(conn, partition, &changes, &mut applied).await?;
    }
    Ok(applied)
}

async fn write_partition(
    conn: &mut PgConnection,
    partition: i64,
    changes: &[&PreparedChange],
    applied: &mut Applied,
) -> Result<(), sqlx::Error> {
    let keys = claim(conn, partition, changes).await?;
    let recorded = record_versions(conn, changes, &keys, partition).await?;
    let mut targets = Vec::new();
    for prepared in changes {
        let change = &prepared.change;
        let key = (change.resource_type.as_str(), change.resource_id.as_str());
        let Some(&res_pk) = keys.get(&key) else {
            applied.stale += 1;
            continue;
        };
        if !recorded.contains(&(res_pk, change.version)) {
            applied.stale += 1;
            continue;
        }
        applied
            .problems
            .extend(prepared.index.problems.iter().map(|problem| {
                format!(
                    "sandbox partition {partition}: {}/{}: {problem}",
                    change.resource_type, change.resource_id
                )
            }));
        if let Some(reason) = &prepared.quarantine {
            applied
                .quarantined
                .push(Quarantined::change(change, reason));
        }
        if !change.deleted {
            targets.push(Target {
                res_pk,
                version: change.version,
                resource_type: &change.resource_type,
                resource_id: &change.resource_id,
                last_updated: change.recorded_at,
                index: &prepared.index,
                workflow: &prepared.workflow,
                words: &prepared.words,
            });
        }
    }
    let touched: Vec<i64> = recorded.iter().map(|(res_pk, _)| *res_pk).collect();
    close_versions(conn, &touched).await?;
    tables::insert_rows(conn, &targets, Rows::Superseded).await
}

/// The sandbox keys of every resource of `changes`, claiming new ones and advancing the
/// newest version where a change is newer.
async fn claim<'a>(
    conn: &mut PgConnection,
    partition: i64,
    changes: &[&'a PreparedChange],
) -> Result<HashMap<(&'a str, &'a str), i64>, sqlx::Error> {
    let contenders = newest_of(changes);
    let mut types = Vec::new();
    let mut ids = Vec::new();
    let mut versions = Vec::new();
    let mut deleted = Vec::new();
    for prepared in &contenders {
        let change = &prepared.change;
        types.push(change.resource_type.as_str());
        ids.push(change.resource_id.as_str());
        versions.push(change.version);
        deleted.push(change.deleted);
    }
    let claimed: Vec<(i64, String, String, bool)> = sqlx::query_as(&CLAIM)
        .bind(partition)
        .bind(&types)
        .bind(&ids)
        .bind(&versions)
        .bind(&deleted)
        .fetch_all(&mut *conn)
        .await?;
    let mut keys: HashMap<(&str, &str), i64> = keyed(&contenders, claimed)
        .into_iter()
        .map(|(key, (res_pk, _))| (key, res_pk))
        .collect();
    let known: HashSet<(&str, &str)> = keys.keys().copied().collect();
    let (types, ids): (Vec<&str>, Vec<&str>) = types
        .iter()
        .zip(&ids)
        .filter(|key| !known.contains(&(*key.0, *key.1)))
        .map(|(resource_type, id)| (*resource_type, *id))
        .unzip();
    if !types.is_empty() {
        let existing: Vec<(i64, String, String, bool)> = sqlx::query_as(&KEYS)
            .bind(partition)
            .bind(&types)
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
        keys.extend(
            keyed(&contenders, existing)
                .into_iter()
                .map(|(key, (res_pk, _))| (key, res_pk)),
        );
    }
    Ok(keys)
}

/// Inserts or advances `hfj_sandbox_resource` rows where the version is newer; returns those
/// written.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    use schema::hfj_sandbox_resource::*;
    format!(
        "INSERT INTO {TABLE} ({PARTITION}, {RES_TYPE}, {RES_ID}, {RES_VER}, {DELETED}) \
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::bool[]) \
         ON CONFLICT ({PARTITION}, {RES_TYPE}, {RES_ID}) DO UPDATE \
             SET {RES_VER} = EXCLUDED.{RES_VER}, {DELETED} = EXCLUDED.{DELETED} \
             WHERE {TABLE}.{RES_VER} < EXCLUDED.{RES_VER} \
         RETURNING {RES_PK}, {RES_TYPE}, {RES_ID}, (xmax = 0) AS fresh"
    )
});

static KEYS: LazyLock<String> = LazyLock::new(|| {
    use schema::hfj_sandbox_resource::*;
    format!(
        "SELECT s.{RES_PK}, s.{RES_TYPE}, s.{RES_ID}, false FROM {TABLE} s \
         JOIN unnest($2::text[], $3::text[]) AS k(res_type, res_id) \
           ON s.{RES_TYPE} = k.res_type AND s.{RES_ID} = k.res_id \
         WHERE s.{PARTITION} = $1"
    )
});

/// How often the rows of ended sandbox runs are looked for.
pub const DROP_ENDED_RUNS_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Drops the index rows of sandbox runs no sandbox uses any more (reset or deleted ones): what
/// a reset or a delete costs, paid here, after the instructor has their sandbox back. Returns
/// how many runs were dropped. Events of an ended run still in flight may be projected after
/// this; the next pass drops their rows.
pub async fn drop_ended_runs(pool: &sqlx::PgPool) -> Result<usize, sqlx::Error> {
    use schema::hfj_res_ver as versions;
    use schema::hfj_sandbox_resource as own;
    let ended: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT DISTINCT {partition} FROM {versions} WHERE {partition} <> 0 \
         AND {partition} NOT IN (SELECT partition FROM sandbox)",
        partition = versions::PARTITION,
        versions = versions::TABLE,
    ))
    .fetch_all(pool)
    .await?;
    if ended.is_empty() {
        return Ok(0);
    }
    let mut transaction = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(crate::apply::SWAP_LOCK)
        .execute(&mut *transaction)
        .await?;
    let keys = format!(
        "SELECT {} FROM {} WHERE {} = ANY($1)",
        own::RES_PK,
        own::TABLE,
        own::PARTITION
    );
    for (_, twin) in schema::HISTORY {
        sqlx::query(&format!(
            "DELETE FROM {twin} WHERE {} IN ({keys})",
            schema::shared::RES_PK
        ))
        .bind(&ended)
        .execute(&mut *transaction)
        .await?;
    }
    for table in [versions::TABLE, own::TABLE] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE {} = ANY($1)",
            versions::PARTITION
        ))
        .bind(&ended)
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await?;
    tracing::info!(runs = ?ended, "dropped the index rows of ended sandbox runs");
    Ok(ended.len())
}
