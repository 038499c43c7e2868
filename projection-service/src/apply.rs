//! Applying a batch of changes to the projection tables.
//!
//! The rule that makes redelivery, replays and several instances safe: a resource's version is
//! applied only if it is newer than the one in `hfj_resource`, and applying it replaces all of
//! the resource's rows. So the live tables always hold the rows of each resource's newest
//! version seen, whatever order the versions came in, and a delete (a newer version that is
//! deleted) leaves no rows. The past is kept beside them (ADR 0013): every version is recorded
//! once in `hfj_res_ver` with the positions over which it was current, replaced rows move to
//! the history twins, and a version older than the stored one that was never recorded (a late
//! redelivery) is indexed straight into the twins, between its neighbours. Each batch is one transaction that also records the positions it applied;
//! the checkpoint then advances over them (see the migration's `projection_advance_checkpoint`).
//!
//! An event that cannot be indexed is quarantined rather than retried for ever: when the
//! database refuses a batch for a reason retrying cannot cure (a data exception, an integrity
//! violation or a program limit: SQLSTATE classes 22, 23 and 54), its
//! changes are written one by one, and one refused again is written without rows and recorded
//! in `projection_quarantine` with the reason, in the batch's transaction; its position counts
//! as applied, so the checkpoint moves on. An event whose rows could not be computed (a defect
//! in extraction) and a message that is not an event are quarantined the same way. Anything
//! else (a lost connection, a serialisation failure, a timeout) fails the batch, which is
//! retried whole.

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use fhir_search::normalize::words::words;
use fhir_search::schema;
use fhir_search::{ExtractOptions, Registry, ResourceIndex};
use sqlx::{Connection, PgConnection, PgPool};

use crate::change::Change;
use crate::tables::{self, Rows, Target};
use crate::workflow::{self, WorkflowRows};

/// The name of the checkpoint row of the search and workflow projections.
pub const CHECKPOINT: &str = schema::SEARCH_CHECKPOINT;

/// A rebuild's swap takes this advisory lock exclusively; every batch takes it shared, so no
/// batch is half-way when the tables are swapped.
pub const SWAP_LOCK: i64 = 0x5752_5052_4f4a; // "WRPROJ"

/// A change with its rows computed, ready to be written.
pub struct PreparedChange {
    pub change: Change,
    pub index: ResourceIndex,
    pub workflow: WorkflowRows,
    pub words: TextWords,
    /// Why the change is written without rows and quarantined, when it is.
    pub quarantine: Option<String>,
}

impl PreparedChange {
    /// The change without rows, to be quarantined for `reason`.
    fn without_rows(change: Change, reason: String) -> Self {
        Self {
            change,
            index: ResourceIndex::default(),
            workflow: WorkflowRows::default(),
            words: TextWords::default(),
            quarantine: Some(reason),
        }
    }
}

/// An event the projection could not index, as `projection_quarantine` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub position: i64,
    /// `None` for a message that is not an event.
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub version: Option<i32>,
    pub reason: String,
}

impl Quarantined {
    /// `change`, quarantined for `reason`.
    pub fn change(change: &Change, reason: &str) -> Self {
        Self {
            position: change.position,
            resource_type: Some(change.resource_type.clone()),
            resource_id: Some(change.resource_id.clone()),
            version: Some(change.version),
            reason: reason.to_owned(),
        }
    }

    /// A message at `position` that is not an event.
    pub fn message(position: i64, reason: String) -> Self {
        Self {
            position,
            resource_type: None,
            resource_id: None,
            version: None,
            reason,
        }
    }
}

/// The folded words of the narrative and of all the resource's strings, space-separated, for
/// `hfj_res_text` (computed here, off the executor, rather than by the database).
#[derive(Debug, Default, Clone)]
pub struct TextWords {
    pub narrative: String,
    pub content: String,
}

impl TextWords {
    fn of(index: &ResourceIndex) -> Self {
        Self {
            narrative: words(&index.narrative).join(" "),
            content: words(&index.content).join(" "),
        }
    }
}

/// A batch ready to be written: every version in it (each resource's in version order), and
/// every position the batch covers.
pub struct PreparedBatch {
    pub changes: Vec<PreparedChange>,
    pub positions: Vec<i64>,
    /// Messages of the batch that are not events (their positions are in `positions`).
    pub quarantined: Vec<Quarantined>,
}

/// What a batch changed.
#[derive(Debug, Default)]
pub struct Applied {
    /// `(type, id, version)` of the resources whose rows were replaced.
    pub replaced: Vec<(String, String, i32)>,
    /// Changes that were older than what the tables had (redelivered, or out of order).
    pub stale: usize,
    /// Expressions that failed on some resource: logged, the other rows are kept.
    pub problems: Vec<String>,
    /// Events recorded in `projection_quarantine` by this batch.
    pub quarantined: Vec<Quarantined>,
}

impl Applied {
    pub(crate) fn merge(&mut self, other: Applied) {
        self.replaced.extend(other.replaced);
        self.stale += other.stale;
        self.problems.extend(other.problems);
        self.quarantined.extend(other.quarantined);
    }
}

/// Computes index and workflow rows; pure and CPU-bound, so callers run it off the async
/// executor and outside any transaction.
pub fn prepare(
    registry: &Registry,
    options: &ExtractOptions,
    changes: Vec<Change>,
) -> PreparedBatch {
    let positions = changes.iter().map(|change| change.position).collect();
    // Every version is kept, not only the newest: the ones it supersedes are indexed too, for
    // the past. A version delivered twice in one batch is written once.
    let mut versions: HashMap<(i64, String, String, i32), Change> = HashMap::new();
    for change in changes {
        let key = (
            change.partition,
            change.resource_type.clone(),
            change.resource_id.clone(),
            change.version,
        );
        versions.entry(key).or_insert(change);
    }
    let mut changes: Vec<PreparedChange> = versions
        .into_values()
        .map(|change| {
            if change.deleted {
                return PreparedChange {
                    change,
                    index: ResourceIndex::default(),
                    workflow: WorkflowRows::default(),
                    words: TextWords::default(),
                    quarantine: None,
                };
            }
            // A panic here is a defect in extraction: it costs this resource its rows, not the
            // batch or the consumer.
            let computed = catch_unwind(AssertUnwindSafe(|| {
                let index = fhir_search::index_resource(registry, options, &change.resource);
                let workflow = workflow::extract(&change.resource_type, &change.resource);
                let words = TextWords::of(&index);
                (index, workflow, words)
            }));
            match computed {
                Ok((index, workflow, words)) => PreparedChange {
                    change,
                    index,
                    workflow,
                    words,
                    quarantine: None,
                },
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|text| (*text).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    PreparedChange::without_rows(
                        change,
                        format!("computing its index rows panicked: {message}"),
                    )
                }
            }
        })
        .collect();
    // One lock order for every batch, so concurrent instances cannot deadlock on hfj_resource.
    changes.sort_by(|a, b| {
        let key = |change: &Change| {
            (
                change.partition,
                change.resource_type.clone(),
                change.resource_id.clone(),
                change.version,
            )
        };
        key(&a.change).cmp(&key(&b.change))
    });
    PreparedBatch {
        changes,
        positions,
        quarantined: Vec::new(),
    }
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

/// Writes a batch inside the caller's transaction (a rebuild uses it on its own tables): the
/// changes' rows, the quarantined events, then the positions covered.
///
/// A resource whose rows the database refuses (a value too long for an index, a NUL character,
/// a number out of range) must not stop projecting, since its event would be redelivered for
/// ever. So when the batch as a whole is refused, its changes are written one at a time, each
/// in a savepoint, and one that is refused again is written without rows and quarantined: its
/// version is recorded (so the version rule still holds, and older index rows are gone rather
/// than describing a version that is no longer current).
pub async fn write_rows(
    conn: &mut PgConnection,
    batch: &PreparedBatch,
) -> Result<Applied, sqlx::Error> {
    let changes: Vec<&PreparedChange> = batch.changes.iter().collect();
    let mut applied = match write_in_savepoint(conn, &changes).await? {
        Ok(applied) => applied,
        Err(refused) => {
            tracing::warn!(error = %refused, "batch refused by the database; writing its changes one by one");
            let mut applied = Applied::default();
            for prepared in &changes {
                match write_in_savepoint(conn, &[prepared]).await? {
                    Ok(one) => applied.merge(one),
                    Err(refused) => {
                        let reason =
                            format!("the database refused its rows: {}", describe(&refused));
                        applied.merge(write_without_rows(conn, &prepared.change, reason).await?);
                    }
                }
            }
            applied
        }
    };
    applied
        .quarantined
        .extend(batch.quarantined.iter().cloned());
    record_quarantined(conn, &applied.quarantined).await?;
    sqlx::query(&INSERT_APPLIED)
        .bind(&batch.positions)
        .execute(&mut *conn)
        .await?;
    Ok(applied)
}

static INSERT_APPLIED: LazyLock<String> = LazyLock::new(|| {
    use schema::projection_applied::*;
    format!("INSERT INTO {TABLE} ({POSITION}) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING")
});

/// Claims `change`'s version without rows and quarantines it for `reason`. Should even its
/// `hfj_resource` row be refused (a forged message's id too long for the index), the event is
/// quarantined without it.
async fn write_without_rows(
    conn: &mut PgConnection,
    change: &Change,
    reason: String,
) -> Result<Applied, sqlx::Error> {
    let bare = PreparedChange::without_rows(change.clone(), reason.clone());
    match write_in_savepoint(conn, &[&bare]).await? {
        Ok(applied) => Ok(applied),
        Err(refused) => Ok(Applied {
            quarantined: vec![Quarantined::change(
                change,
                &format!(
                    "{reason}; its version could not be recorded either: {}",
                    describe(&refused)
                ),
            )],
            ..Applied::default()
        }),
    }
}

/// Longest reason, type or id recorded in `projection_quarantine`, in characters.
const MAX_QUARANTINE_TEXT: usize = 1_000;

/// Inserts `quarantined` into `projection_quarantine` (a redelivered event keeps its first
/// record). Texts are cut and stripped of NUL characters, which a text column refuses: the
/// record of a bad event must not be refused in turn.
async fn record_quarantined(
    conn: &mut PgConnection,
    quarantined: &[Quarantined],
) -> Result<(), sqlx::Error> {
    if quarantined.is_empty() {
        return Ok(());
    }
    let clean = |text: &str| -> String {
        text.chars()
            .filter(|&ch| ch != '\0')
            .take(MAX_QUARANTINE_TEXT)
            .collect()
    };
    let mut positions = Vec::new();
    let mut types = Vec::new();
    let mut ids = Vec::new();
    let mut versions = Vec::new();
    let mut reasons = Vec::new();
    for entry in quarantined {
        positions.push(entry.position);
        types.push(entry.resource_type.as_deref().map(clean));
        ids.push(entry.resource_id.as_deref().map(clean));
        versions.push(entry.version);
        reasons.push(clean(&entry.reason));
    }
    sqlx::query(&INSERT_QUARANTINED)
        .bind(positions)
        .bind(types)
        .bind(ids)
        .bind(versions)
        .bind(reasons)
        .execute(conn)
        .await?;
    Ok(())
}

static INSERT_QUARANTINED: LazyLock<String> = LazyLock::new(|| {
    use schema::projection_quarantine::*;
    format!(
        "INSERT INTO {TABLE} ({POSITION}, {RESOURCE_TYPE}, {RESOURCE_ID}, {VERSION}, {REASON}) \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::text[]) \
         ON CONFLICT ({POSITION}) DO NOTHING"
    )
});

/// A refused write as a reason: the database's message and SQLSTATE.
fn describe(error: &sqlx::Error) -> String {
    match error.as_database_error() {
        Some(database) => match database.code() {
            Some(code) => format!("{} (SQLSTATE {code})", database.message()),
            None => database.message().to_owned(),
        },
        None => error.to_string(),
    }
}

/// Writes `changes` in a savepoint: `Ok(Err(_))` when the database refused their values (the
/// savepoint is rolled back), `Err(_)` for any other failure.
async fn write_in_savepoint(
    conn: &mut PgConnection,
    changes: &[&PreparedChange],
) -> Result<Result<Applied, sqlx::Error>, sqlx::Error> {
    let mut savepoint = conn.begin().await?;
    match write_changes(&mut savepoint, changes).await {
        Ok(applied) => {
            savepoint.commit().await?;
            Ok(Ok(applied))
        }
        Err(error) if is_refused_value(&error) => {
            savepoint.rollback().await?;
            Ok(Err(error))
        }
        Err(error) => Err(error),
    }
}

/// Writes `changes`: the newest version of each resource replaces the live rows if it is newer
/// than the stored one, and every version not seen before is recorded in `hfj_res_ver`, the
/// ones already superseded with their rows in the history twins.
async fn write_changes(
    conn: &mut PgConnection,
    changes: &[&PreparedChange],
) -> Result<Applied, sqlx::Error> {
    let (live, sandboxes): (Vec<&PreparedChange>, Vec<&PreparedChange>) = changes
        .iter()
        .copied()
        .partition(|prepared| prepared.change.partition == 0);
    let mut applied = write_live_changes(conn, &live).await?;
    applied.merge(crate::sandbox::write_changes(conn, &sandboxes).await?);
    Ok(applied)
}

/// The live record's changes: see [`write_changes`].
async fn write_live_changes(
    conn: &mut PgConnection,
    changes: &[&PreparedChange],
) -> Result<Applied, sqlx::Error> {
    let mut applied = Applied::default();
    let contenders = newest_of(changes);
    let newest: HashMap<(&str, &str), i32> = contenders
        .iter()
        .map(|prepared| {
            let change = &prepared.change;
            (
                (change.resource_type.as_str(), change.resource_id.as_str()),
                change.version,
            )
        })
        .collect();
    let winners = claim_versions(conn, &contenders).await?;
    let keys = resource_keys(conn, &contenders, &winners).await?;
    let recorded = record_versions(conn, changes, &keys, 0).await?;
    let mut retire = Vec::new();
    let mut current = Vec::new();
    let mut superseded = Vec::new();
    for prepared in changes {
        let change = &prepared.change;
        let key = (change.resource_type.as_str(), change.resource_id.as_str());
        let Some(&res_pk) = keys.get(&key) else {
            applied.stale += 1;
            continue;
        };
        let won = winners
            .get(&key)
            .filter(|_| newest.get(&key) == Some(&change.version));
        let rows = match won {
            Some(&(_, fresh)) => {
                if !fresh {
                    retire.push(res_pk);
                }
                applied.replaced.push((
                    change.resource_type.clone(),
                    change.resource_id.clone(),
                    change.version,
                ));
                Rows::Current
            }
            None if recorded.contains(&(res_pk, change.version)) => Rows::Superseded,
            None => {
                applied.stale += 1;
                continue;
            }
        };
        applied.problems.extend(
            prepared.index.problems.iter().map(|problem| {
                format!("{}/{}: {problem}", change.resource_type, change.resource_id)
            }),
        );
        if let Some(reason) = &prepared.quarantine {
            applied
                .quarantined
                .push(Quarantined::change(change, reason));
        }
        if !change.deleted {
            let target = Target {
                res_pk,
                version: change.version,
                resource_type: &change.resource_type,
                resource_id: &change.resource_id,
                last_updated: change.recorded_at,
                index: &prepared.index,
                workflow: &prepared.workflow,
                words: &prepared.words,
            };
            match rows {
                Rows::Current => current.push(target),
                Rows::Superseded => superseded.push(target),
            }
        }
    }
    let touched: Vec<i64> = recorded.iter().map(|(res_pk, _)| *res_pk).collect();
    close_versions(conn, &touched).await?;
    tables::retire_rows(conn, &retire).await?;
    tables::insert_rows(conn, &current, Rows::Current).await?;
    tables::insert_rows(conn, &superseded, Rows::Superseded).await?;
    Ok(applied)
}

/// The newest change of each resource in `changes`, by type then id: the one lock order every
/// batch takes, so concurrent instances cannot deadlock on the rows they claim.
pub(crate) fn newest_of<'a>(changes: &[&'a PreparedChange]) -> Vec<&'a PreparedChange> {
    let mut newest: BTreeMap<(&str, &str), &PreparedChange> = BTreeMap::new();
    for prepared in changes {
        let change = &prepared.change;
        let key = (change.resource_type.as_str(), change.resource_id.as_str());
        match newest.get(&key) {
            Some(kept) if kept.change.version >= change.version => {}
            _ => {
                newest.insert(key, prepared);
            }
        }
    }
    newest.into_values().collect()
}

/// Upserts `hfj_resource` for every change whose version is newer than the stored one; returns
/// those, with their `res_pk` and whether the row is new (then there are no old rows to retire).
/// `changes` holds one change per resource.
async fn claim_versions<'a>(
    conn: &mut PgConnection,
    changes: &[&'a PreparedChange],
) -> Result<HashMap<(&'a str, &'a str), (i64, bool)>, sqlx::Error> {
    let mut types = Vec::new();
    let mut ids = Vec::new();
    let mut versions = Vec::new();
    let mut updated: Vec<DateTime<Utc>> = Vec::new();
    let mut deleted = Vec::new();
    let mut positions = Vec::new();
    for prepared in changes {
        let change = &prepared.change;
        types.push(change.resource_type.as_str());
        ids.push(change.resource_id.as_str());
        versions.push(change.version);
        updated.push(change.recorded_at);
        deleted.push(change.deleted);
        positions.push(change.position);
    }
    let rows: Vec<(i64, String, String, bool)> = sqlx::query_as(&CLAIM_VERSIONS)
        .bind(&types)
        .bind(&ids)
        .bind(&versions)
        .bind(&updated)
        .bind(&deleted)
        .bind(&positions)
        .fetch_all(&mut *conn)
        .await?;
    Ok(keyed(changes, rows))
}

/// The `res_pk` of every resource of `changes`: the winners' from the claim, the others' (whose
/// stored version is newer) from `hfj_resource`.
async fn resource_keys<'a>(
    conn: &mut PgConnection,
    changes: &[&'a PreparedChange],
    winners: &HashMap<(&'a str, &'a str), (i64, bool)>,
) -> Result<HashMap<(&'a str, &'a str), i64>, sqlx::Error> {
    let mut keys: HashMap<(&str, &str), i64> = winners
        .iter()
        .map(|(key, (res_pk, _))| (*key, *res_pk))
        .collect();
    let (types, ids): (Vec<&str>, Vec<&str>) = changes
        .iter()
        .map(|prepared| {
            let change = &prepared.change;
            (change.resource_type.as_str(), change.resource_id.as_str())
        })
        .filter(|key| !keys.contains_key(key))
        .unzip();
    if types.is_empty() {
        return Ok(keys);
    }
    let rows: Vec<(i64, String, String, bool)> = sqlx::query_as(&RESOURCE_KEYS)
        .bind(&types)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
    keys.extend(
        keyed(changes, rows)
            .into_iter()
            .map(|(key, (res_pk, _))| (key, res_pk)),
    );
    Ok(keys)
}

/// Rows `(res_pk, type, id, flag)` keyed by the batch's own strings, so the map borrows from
/// the batch.
pub(crate) fn keyed<'a>(
    changes: &[&'a PreparedChange],
    rows: Vec<(i64, String, String, bool)>,
) -> HashMap<(&'a str, &'a str), (i64, bool)> {
    let by_key: HashMap<(&str, &str), &'a Change> = changes
        .iter()
        .map(|prepared| {
            let change = &prepared.change;
            (
                (change.resource_type.as_str(), change.resource_id.as_str()),
                change,
            )
        })
        .collect();
    let mut keyed = HashMap::with_capacity(rows.len());
    for (res_pk, resource_type, resource_id, flag) in rows {
        if let Some(change) = by_key.get(&(resource_type.as_str(), resource_id.as_str())) {
            keyed.insert(
                (change.resource_type.as_str(), change.resource_id.as_str()),
                (res_pk, flag),
            );
        }
    }
    keyed
}

/// Records every version of `changes` (all of `partition`) in `hfj_res_ver`; returns those not
/// recorded before (a redelivered version was, and has its rows already).
pub(crate) async fn record_versions(
    conn: &mut PgConnection,
    changes: &[&PreparedChange],
    keys: &HashMap<(&str, &str), i64>,
    partition: i64,
) -> Result<std::collections::HashSet<(i64, i32)>, sqlx::Error> {
    let mut res_pks = Vec::new();
    let mut versions = Vec::new();
    let mut types = Vec::new();
    let mut ids = Vec::new();
    let mut positions = Vec::new();
    let mut updated: Vec<DateTime<Utc>> = Vec::new();
    let mut deleted = Vec::new();
    for prepared in changes {
        let change = &prepared.change;
        let key = (change.resource_type.as_str(), change.resource_id.as_str());
        let Some(&res_pk) = keys.get(&key) else {
            continue;
        };
        res_pks.push(res_pk);
        versions.push(change.version);
        types.push(key.0);
        ids.push(key.1);
        positions.push(change.position);
        updated.push(change.recorded_at);
        deleted.push(change.deleted);
    }
    if res_pks.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(i64, i32)> = sqlx::query_as(&RECORD_VERSIONS)
        .bind(&res_pks)
        .bind(&versions)
        .bind(&types)
        .bind(&ids)
        .bind(&positions)
        .bind(&updated)
        .bind(&deleted)
        .bind(partition)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Sets each version's `pos_to` to the next version's position, for the resources `res_pks`:
/// a version recorded late closes the one before it and is closed by the one after.
pub(crate) async fn close_versions(
    conn: &mut PgConnection,
    res_pks: &[i64],
) -> Result<(), sqlx::Error> {
    if res_pks.is_empty() {
        return Ok(());
    }
    let mut res_pks = res_pks.to_vec();
    res_pks.sort_unstable();
    res_pks.dedup();
    sqlx::query(&CLOSE_VERSIONS)
        .bind(&res_pks)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Inserts or advances `hfj_resource` rows, only where the version is newer; returns the rows
/// written and whether each is new (`xmax = 0`: inserted, not updated).
static CLAIM_VERSIONS: LazyLock<String> = LazyLock::new(|| {
    use schema::hfj_resource::*;
    format!(
        "INSERT INTO {TABLE} ({RES_TYPE}, {RES_ID}, {RES_VER}, {LAST_UPDATED}, {DELETED}, {POSITION}) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::bool[], $6::bigint[]) \
         ON CONFLICT ({RES_TYPE}, {RES_ID}) DO UPDATE \
             SET {RES_VER} = EXCLUDED.{RES_VER}, {LAST_UPDATED} = EXCLUDED.{LAST_UPDATED}, \
                 {DELETED} = EXCLUDED.{DELETED}, {POSITION} = EXCLUDED.{POSITION} \
             WHERE {TABLE}.{RES_VER} < EXCLUDED.{RES_VER} \
         RETURNING {RES_PK}, {RES_TYPE}, {RES_ID}, (xmax = 0) AS fresh"
    )
});

static RESOURCE_KEYS: LazyLock<String> = LazyLock::new(|| {
    use schema::hfj_resource::*;
    format!(
        "SELECT r.{RES_PK}, r.{RES_TYPE}, r.{RES_ID}, false FROM {TABLE} r \
         JOIN unnest($1::text[], $2::text[]) AS k(res_type, res_id) \
           ON r.{RES_TYPE} = k.res_type AND r.{RES_ID} = k.res_id"
    )
});

static RECORD_VERSIONS: LazyLock<String> = LazyLock::new(|| {
    use schema::hfj_res_ver::*;
    format!(
        "INSERT INTO {TABLE} ({RES_PK}, {RES_VER}, {RES_TYPE}, {RES_ID}, {POS_FROM}, {LAST_UPDATED}, {DELETED}, {PARTITION}) \
         SELECT *, $8::bigint FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[], $7::bool[]) \
         ON CONFLICT ({RES_PK}, {RES_VER}) DO NOTHING \
         RETURNING {RES_PK}, {RES_VER}"
    )
});

static CLOSE_VERSIONS: LazyLock<String> = LazyLock::new(|| {
    use schema::hfj_res_ver::*;
    format!(
        "UPDATE {TABLE} v SET {POS_TO} = n.next_from \
         FROM (SELECT {RES_PK}, {RES_VER}, lead({POS_FROM}) OVER (PARTITION BY {RES_PK} ORDER BY {RES_VER}) AS next_from \
               FROM {TABLE} WHERE {RES_PK} = ANY($1)) n \
         WHERE v.{RES_PK} = n.{RES_PK} AND v.{RES_VER} = n.{RES_VER} AND v.{POS_TO} IS DISTINCT FROM n.next_from"
    )
});

/// Moves the checkpoint over the applied positions; returns it.
pub async fn advance_checkpoint(pool: &PgPool) -> Result<i64, sqlx::Error> {
    let (position,): (i64,) = sqlx::query_as(&ADVANCE_CHECKPOINT)
        .bind(CHECKPOINT)
        .fetch_one(pool)
        .await?;
    Ok(position)
}

/// Advances the checkpoint named by the parameter (the statement a rebuild runs on its copies
/// too, since the function resolves its tables through `search_path`).
pub static ADVANCE_CHECKPOINT: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {}($1)", schema::ADVANCE_CHECKPOINT));

/// Values the database will not store, however often asked: data exceptions (SQLSTATE class 22:
/// a NUL character, a number out of range), integrity violations (23) and program limits (54:
/// an index row too large). Everything else (a lost connection, a serialisation failure, a
/// cancelled statement, a missing table) is worth retrying, and is.
fn is_refused_value(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|error| error.code())
        .is_some_and(|code| {
            code.starts_with("22") || code.starts_with("23") || code.starts_with("54")
        })
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
