//! The commit loop: every write of a transaction decided on its stream's head, checked, and
//! appended in one database transaction, or none are. A REST write is a transaction of one.
//!
//! Each attempt loads every head in one query, lets the aggregate decide each command, checks
//! every reference in one query (against the store and the transaction's own writes), checks
//! every new version against [`WriteLimits`], and appends all events together. A concurrent
//! writer may commit one of the same versions first; the store then reports a conflict and the
//! whole attempt runs again on the new heads. A command with `If-Match` then fails with 412
//! (the version it named is no longer current), so of two concurrent conditional updates
//! exactly one wins; a command without it applies on top, so no update is lost.
//!
//! This is the one place every write passes, so the size checked is that of the exact JSON the
//! event will carry, whichever way the version came about (create, update, the result of a
//! patch).

use std::collections::HashMap;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use event_store::{
    CommitContext, EventStore, FhirResource, NewEvent, ResourceCommand, ResourceEvent,
    ResourceServices, StoredEvent,
};
use fhir_model::{PatchLimits, ResourceType};
use serde_json::Value;
use service_kit::resource_cache::{CachedVersion, ResourceCache};

use crate::error::{EntryError, WriteError};
use crate::references::Pending;

/// How often a transaction is re-run after losing a race for one of its versions.
const MAX_ATTEMPTS: u64 = 32;

/// How large a write may make a resource.
#[derive(Debug, Clone, Copy)]
pub struct WriteLimits {
    /// Largest resource version accepted, in bytes of the JSON the event stores (larger: 413).
    pub max_resource_bytes: usize,
    /// Most operations in one JSON Patch (more: 413).
    pub max_patch_operations: usize,
}

impl WriteLimits {
    /// What the aggregate consults, with a patch held to these limits while it is applied.
    fn services(self) -> ResourceServices {
        ResourceServices {
            patch_limits: PatchLimits {
                max_operations: self.max_patch_operations,
                max_bytes: self.max_resource_bytes,
            },
            ..ResourceServices::default()
        }
    }

    /// Refuses a new version larger than the limit. Deletes carry the version before them,
    /// which was accepted when it was written.
    fn check(self, event: &ResourceEvent, stored: &NewEvent) -> Result<(), WriteError> {
        let writes_a_version = matches!(
            event,
            ResourceEvent::ResourceCreated { .. } | ResourceEvent::ResourceUpdated { .. }
        );
        if writes_a_version && stored.resource.len() > self.max_resource_bytes {
            return Err(WriteError::ResourceTooLarge {
                size: stored.resource.len(),
                limit: self.max_resource_bytes,
            });
        }
        Ok(())
    }
}

/// One write of a transaction: a command on a stream, and, once committed, what it did.
#[derive(Debug)]
pub struct Write {
    /// The entry it came from (its index in the Bundle; 0 for a REST request), for blame.
    pub entry: usize,
    pub resource_type: ResourceType,
    pub id: String,
    pub command: ResourceCommand,
    /// The id was just generated: the stream is known to be empty, and is not loaded.
    pub fresh: bool,
    /// Set by [`commit`].
    pub outcome: Option<WriteOutcome>,
}

/// What a write did.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    /// The resource as it now stands (for a delete: as it stood before), as the exact JSON
    /// text the event store holds, so the response body is not serialised a second time.
    pub resource_json: String,
    pub version: u32,
    /// Whether this write created the resource (201) rather than changing it (200).
    pub created: bool,
    pub deleted: bool,
    /// Whether an event was recorded (false for a no-op update or a repeated delete).
    pub recorded: bool,
    /// The global position of the event; for a no-op, of the stream's latest event if it has one.
    pub position: Option<i64>,
    pub last_updated: chrono::DateTime<chrono::Utc>,
}

impl WriteOutcome {
    /// The resource as it stands at `head`, for an answer that wrote nothing.
    pub fn current(head: StoredEvent) -> Self {
        let deleted = head.is_delete();
        WriteOutcome {
            resource_json: head.resource,
            version: u32::try_from(head.version).unwrap_or(0),
            created: false,
            deleted,
            recorded: false,
            position: head.position,
            last_updated: head.recorded_at,
        }
    }
}

/// One write's decision in one attempt.
struct Decided {
    head: Option<StoredEvent>,
    aggregate: FhirResource,
    event: Option<ResourceEvent>,
    /// The row the event becomes, until it is appended.
    row: Option<NewEvent>,
}

/// Decides and appends every write in one database transaction, setting each one's outcome.
/// Each stream may appear once. On failure nothing is written, and the error names the entry
/// to blame where one is.
pub async fn commit(
    store: &EventStore,
    limits: WriteLimits,
    context: &CommitContext,
    writes: &mut [Write],
) -> Result<(), EntryError> {
    let services = limits.services();
    let pending = Pending {
        written: streams(writes, |command| {
            !matches!(command, ResourceCommand::Delete { .. })
        }),
        deleted: streams(writes, |command| {
            matches!(command, ResourceCommand::Delete { .. })
        }),
    };
    let existing: Vec<(String, String)> = writes
        .iter()
        .filter(|write| !write.fresh)
        .map(|write| (write.resource_type.as_str().to_owned(), write.id.clone()))
        .collect();
    for attempt in 0..MAX_ATTEMPTS {
        let mut heads = store
            .latest_many(&existing)
            .await
            .map_err(EntryError::any)?;
        let mut decided = Vec::with_capacity(writes.len());
        for write in writes.iter() {
            let head = heads.remove(&(write.resource_type.as_str().to_owned(), write.id.clone()));
            decided.push(
                decide(write, head, &services)
                    .await
                    .map_err(EntryError::at(write.entry))?,
            );
        }
        check_references(store, writes, &decided, &pending).await?;
        for (write, decision) in writes.iter().zip(decided.iter_mut()) {
            if let Some(event) = &decision.event {
                let prev_hash = decision.head.as_ref().map(|head| head.hash.clone());
                let row = NewEvent::from_domain(
                    write.resource_type.as_str(),
                    &write.id,
                    event,
                    prev_hash,
                );
                limits
                    .check(event, &row)
                    .map_err(EntryError::at(write.entry))?;
                decision.row = Some(row);
            }
        }
        let rows: Vec<NewEvent> = decided
            .iter_mut()
            .filter_map(|decision| decision.row.take())
            .collect();
        match store.append(context, &rows).await {
            Ok(committed) => {
                let mut appended = rows.into_iter().zip(committed);
                for (write, decision) in writes.iter_mut().zip(decided) {
                    let row = decision.event.as_ref().and_then(|event| {
                        let (row, committed) = appended.next()?;
                        Some(recorded(event, row, committed, context))
                    });
                    write.outcome =
                        Some(row.unwrap_or_else(|| unchanged(&decision.aggregate, decision.head)));
                }
                return Ok(());
            }
            Err(event_store::StoreError::Conflict { .. }) => {
                // Lost the race for a version: let the winner's commit settle, then re-run on
                // the new heads.
                tokio::time::sleep(std::time::Duration::from_micros(200 * attempt)).await;
            }
            Err(other) => return Err(EntryError::any(other)),
        }
    }
    Err(EntryError::any(WriteError::Contended))
}

/// The streams of the writes whose command `keep` selects.
fn streams(
    writes: &[Write],
    keep: impl Fn(&ResourceCommand) -> bool,
) -> std::collections::BTreeSet<(String, String)> {
    writes
        .iter()
        .filter(|write| keep(&write.command))
        .map(|write| (write.resource_type.as_str().to_owned(), write.id.clone()))
        .collect()
}

/// Lets the aggregate, as `head` leaves it, decide `write`'s command.
async fn decide(
    write: &Write,
    head: Option<StoredEvent>,
    services: &ResourceServices,
) -> Result<Decided, WriteError> {
    let mut aggregate = match &head {
        Some(event) => FhirResource::from_latest(
            event
                .to_domain()
                .map_err(|error| WriteError::Store(event_store::StoreError::Encoding(error)))?,
        ),
        None => FhirResource::default(),
    };
    let sink = EventSink::default();
    aggregate
        .handle(write.command.clone(), services, &sink)
        .await?;
    Ok(Decided {
        head,
        aggregate,
        event: sink.collect().await.pop(),
        row: None,
    })
}

/// Every reference of every version about to be written, in one query.
async fn check_references(
    store: &EventStore,
    writes: &[Write],
    decided: &[Decided],
    pending: &Pending,
) -> Result<(), EntryError> {
    let mut blame: HashMap<usize, usize> = HashMap::new();
    let mut resources: Vec<(&str, &Value)> = Vec::new();
    for (write, decision) in writes.iter().zip(decided) {
        if let Some(
            ResourceEvent::ResourceCreated { resource }
            | ResourceEvent::ResourceUpdated { resource, .. },
        ) = &decision.event
        {
            blame.insert(resources.len(), write.entry);
            resources.push((write.resource_type.as_str(), resource));
        }
    }
    crate::references::check_all(store, &resources, pending)
        .await
        .map_err(|(failed, error)| EntryError {
            index: blame.get(&failed).copied(),
            error,
        })
}

fn recorded(
    event: &ResourceEvent,
    stored: NewEvent,
    committed: event_store::CommittedEvent,
    context: &CommitContext,
) -> WriteOutcome {
    WriteOutcome {
        resource_json: stored.resource,
        version: stored.version,
        created: matches!(event, ResourceEvent::ResourceCreated { .. }),
        deleted: matches!(event, ResourceEvent::ResourceDeleted { .. }),
        recorded: true,
        position: Some(committed.position),
        last_updated: context.recorded_at(),
    }
}

/// The command changed nothing: the stream's head (which exists, or the aggregate would have
/// refused the command) is the answer.
fn unchanged(aggregate: &FhirResource, head: Option<StoredEvent>) -> WriteOutcome {
    let (resource_json, position, last_updated) = match head {
        Some(event) => (event.resource, event.position, event.recorded_at),
        None => ("null".to_owned(), None, chrono::Utc::now()),
    };
    WriteOutcome {
        resource_json,
        version: aggregate.version,
        created: false,
        deleted: aggregate.deleted,
        recorded: false,
        position,
        last_updated,
    }
}

/// Stores the version a write committed in the read cache, before the write is acknowledged,
/// so that no read after the acknowledgement can be served an older cached version (see
/// `service_kit::resource_cache`). Nothing to store for a write that recorded nothing.
pub async fn cache_version(cache: &ResourceCache, write: &Write) {
    let Some(outcome) = write.outcome.as_ref().filter(|outcome| outcome.recorded) else {
        return;
    };
    let entry = CachedVersion {
        version: i32::try_from(outcome.version).unwrap_or(i32::MAX),
        recorded_at: outcome.last_updated,
        deleted: outcome.deleted,
        resource: outcome.resource_json.clone(),
    };
    cache
        .store_committed(write.resource_type.as_str(), &write.id, &entry)
        .await;
}
