//! The write path: load the stream's head, let the aggregate decide, append what it decided.
//!
//! A concurrent writer may commit the same version first; the store then reports a conflict and
//! the command runs again on the new head. A command with `If-Match` then fails with 412 (the
//! version it named is no longer current), so of two concurrent conditional updates exactly one
//! wins; a command without it applies on top, so no update is lost.
//!
//! [`execute_all`] does the same for the commands of a transaction Bundle: every stream is
//! loaded, every command decided, every reference checked (against the store and the bundle's
//! own writes), and all events are appended in one database transaction, or none are.
//!
//! Both check every version they are about to append against [`WriteLimits`]: this is the one
//! place every write path (create, update, patch, each Bundle entry) passes, and the size checked
//! is that of the exact JSON the event will carry.

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use event_store::{
    CommitContext, EventStore, FhirResource, NewEvent, ResourceCommand, ResourceEvent,
    ResourceServices,
};
use fhir_model::PatchLimits;
use service_kit::resource_cache::{CachedVersion, ResourceCache};

use crate::error::WriteError;
use crate::references::Pending;

/// How often a command is re-run after losing a race for the same version.
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
    pub fn current(head: event_store::StoredEvent) -> Self {
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

/// Runs `command` on stream `(resource_type, id)`. `fresh` skips loading: the id was just
/// generated, so the stream is known to be empty.
pub async fn execute(
    store: &EventStore,
    limits: WriteLimits,
    context: &CommitContext,
    resource_type: &str,
    id: &str,
    command: ResourceCommand,
    fresh: bool,
) -> Result<WriteOutcome, WriteError> {
    let services = limits.services();
    for attempt in 0..MAX_ATTEMPTS {
        let head = if fresh {
            None
        } else {
            store.latest(resource_type, id).await?
        };
        let mut aggregate =
            match &head {
                Some(event) => FhirResource::from_latest(event.to_domain().map_err(|error| {
                    WriteError::Store(event_store::StoreError::Encoding(error))
                })?),
                None => FhirResource::default(),
            };
        let sink = EventSink::default();
        aggregate.handle(command.clone(), &services, &sink).await?;
        let events = sink.collect().await;
        let Some(event) = events.last() else {
            return Ok(unchanged(&aggregate, head));
        };
        if let ResourceEvent::ResourceCreated { resource }
        | ResourceEvent::ResourceUpdated { resource, .. } = event
        {
            crate::references::check(store, resource_type, resource, &Pending::default()).await?;
        }
        let new_event = NewEvent::from_domain(resource_type, id, event, head.map(|h| h.hash));
        limits.check(event, &new_event)?;
        match store
            .append(context, std::slice::from_ref(&new_event))
            .await
        {
            Ok(committed) => return Ok(recorded(event, new_event, &committed, context)),
            Err(event_store::StoreError::Conflict { .. }) if !fresh => {
                // Lost the race for this version: let the winner's commit settle, then re-run
                // on the new head.
                tokio::time::sleep(std::time::Duration::from_micros(200 * attempt)).await;
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(WriteError::Contended)
}

/// One command of a transaction, on stream `(resource_type, id)`.
#[derive(Debug, Clone)]
pub struct Planned {
    pub resource_type: String,
    pub id: String,
    pub command: ResourceCommand,
    /// The id was just generated: the stream is known to be empty.
    pub fresh: bool,
}

/// Runs every command of a transaction and appends all their events in one database
/// transaction. Each stream may appear once. On failure, returns the index of the command
/// that failed (`None` when no one command is to blame) and nothing is written.
pub async fn execute_all(
    store: &EventStore,
    limits: WriteLimits,
    context: &CommitContext,
    planned: &[Planned],
) -> Result<Vec<WriteOutcome>, (Option<usize>, WriteError)> {
    let services = limits.services();
    let pending = Pending {
        written: planned
            .iter()
            .filter(|p| !matches!(p.command, ResourceCommand::Delete { .. }))
            .map(|p| (p.resource_type.clone(), p.id.clone()))
            .collect(),
        deleted: planned
            .iter()
            .filter(|p| matches!(p.command, ResourceCommand::Delete { .. }))
            .map(|p| (p.resource_type.clone(), p.id.clone()))
            .collect(),
    };
    let existing: Vec<(String, String)> = planned
        .iter()
        .filter(|plan| !plan.fresh)
        .map(|plan| (plan.resource_type.clone(), plan.id.clone()))
        .collect();
    for attempt in 0..MAX_ATTEMPTS {
        // Every head in one query, every decision, then every reference in one query.
        let mut heads = store
            .latest_many(&existing)
            .await
            .map_err(|error| (None, error.into()))?;
        let mut decided = Vec::with_capacity(planned.len());
        for (index, plan) in planned.iter().enumerate() {
            let blame = |error: WriteError| (Some(index), error);
            let head = heads.remove(&(plan.resource_type.clone(), plan.id.clone()));
            let mut aggregate = match &head {
                Some(event) => FhirResource::from_latest(event.to_domain().map_err(|error| {
                    blame(WriteError::Store(event_store::StoreError::Encoding(error)))
                })?),
                None => FhirResource::default(),
            };
            let sink = EventSink::default();
            aggregate
                .handle(plan.command.clone(), &services, &sink)
                .await
                .map_err(|error| blame(error.into()))?;
            let event = sink.collect().await.pop();
            decided.push((aggregate, head, event));
        }
        let written: Vec<(usize, &str, &serde_json::Value)> = planned
            .iter()
            .zip(&decided)
            .enumerate()
            .filter_map(|(index, (plan, (_, _, event)))| match event {
                Some(ResourceEvent::ResourceCreated { resource })
                | Some(ResourceEvent::ResourceUpdated { resource, .. }) => {
                    Some((index, plan.resource_type.as_str(), resource))
                }
                _ => None,
            })
            .collect();
        let to_check: Vec<(&str, &serde_json::Value)> =
            written.iter().map(|(_, t, r)| (*t, *r)).collect();
        crate::references::check_all(store, &to_check, &pending)
            .await
            .map_err(|(n, error)| (written.get(n).map(|(index, _, _)| *index), error))?;
        let mut new_events: Vec<NewEvent> = Vec::with_capacity(planned.len());
        for (index, (plan, (_, head, event))) in planned.iter().zip(&decided).enumerate() {
            let Some(event) = event else {
                continue;
            };
            let prev_hash = head.as_ref().map(|h| h.hash.clone());
            let new_event = NewEvent::from_domain(&plan.resource_type, &plan.id, event, prev_hash);
            limits
                .check(event, &new_event)
                .map_err(|error| (Some(index), error))?;
            new_events.push(new_event);
        }
        match store.append(context, &new_events).await {
            Ok(committed) => {
                let mut committed = committed.iter();
                let mut stored = new_events.into_iter();
                return Ok(decided
                    .into_iter()
                    .map(|(aggregate, head, event)| match event {
                        Some(event) => {
                            let position = committed.next();
                            let stored = stored.next();
                            match (stored, position) {
                                (Some(stored), Some(position)) => recorded(
                                    &event,
                                    stored,
                                    std::slice::from_ref(position),
                                    context,
                                ),
                                _ => unchanged(&aggregate, head),
                            }
                        }
                        None => unchanged(&aggregate, head),
                    })
                    .collect());
            }
            Err(event_store::StoreError::Conflict { .. }) => {
                tokio::time::sleep(std::time::Duration::from_micros(200 * attempt)).await;
            }
            Err(other) => return Err((None, other.into())),
        }
    }
    Err((None, WriteError::Contended))
}

fn recorded(
    event: &ResourceEvent,
    stored: NewEvent,
    committed: &[event_store::CommittedEvent],
    context: &CommitContext,
) -> WriteOutcome {
    WriteOutcome {
        resource_json: stored.resource,
        version: stored.version,
        created: matches!(event, ResourceEvent::ResourceCreated { .. }),
        deleted: matches!(event, ResourceEvent::ResourceDeleted { .. }),
        recorded: true,
        position: committed.first().map(|c| c.position),
        last_updated: context.recorded_at(),
    }
}

/// The command changed nothing: the stream's head (which exists, or the aggregate would have
/// refused the command) is the answer.
fn unchanged(aggregate: &FhirResource, head: Option<event_store::StoredEvent>) -> WriteOutcome {
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
pub async fn cache_version(
    cache: &ResourceCache,
    resource_type: &str,
    id: &str,
    outcome: &WriteOutcome,
) {
    if !outcome.recorded {
        return;
    }
    let entry = CachedVersion {
        version: i32::try_from(outcome.version).unwrap_or(i32::MAX),
        recorded_at: outcome.last_updated,
        deleted: outcome.deleted,
        resource: outcome.resource_json.clone(),
    };
    cache.store_committed(resource_type, id, &entry).await;
}
