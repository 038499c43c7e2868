//! Runs entries as one transaction, all or nothing (http.html#transaction): every write of the
//! service goes through here. A REST write is a transaction of one entry; a transaction Bundle
//! is a list of entries; a batch runs each of its entries as a transaction of one.
//!
//! 1. Each entry's body is checked on its own (`plan::check`), and the entry against the
//!    authorisation policy (`access.rs`).
//! 2. Every search the entries depend on is checked, then matched in one conditional-write
//!    session (`conditional.rs`), whose locks are held until the events have committed.
//! 3. The planner decides what each entry does (`plan::plan`).
//! 4. The commit loop decides every command on its stream's head and appends all events in one
//!    database transaction under one transaction id (`commit.rs`); each committed version is
//!    put in the read cache before anything is answered.
//! 5. Reads (`GET`/`HEAD` entries of a Bundle) run after it and see its writes.
//!
//! Any failure names its entry and writes nothing.

use std::collections::HashMap;

use access_policy::Principal;
use axum::http::StatusCode;
use event_store::CommitContext;
use fhir_model::ResourceType;
use fhir_search::Registry;
use fhir_search::extract::ExtractOptions;
use service_kit::fhir_response::FhirError;

use crate::AppState;
use crate::access::WriteGuard;
use crate::commit::{Write, WriteOutcome, cache_version, commit};
use crate::entry::{Entry, Method, Target};
use crate::error::{EntryError, WriteError};
use crate::plan::{self, Item, Plan, Scope, Step};

/// What one entry did, for its answer.
#[derive(Debug)]
pub struct EntryResult {
    pub method: Method,
    pub status: StatusCode,
    pub resource_type: ResourceType,
    pub id: Option<String>,
    /// The version written or read, for `location` and `etag`.
    pub outcome: Option<WriteOutcome>,
    /// What happened, where the status and the resource do not say it (nothing was created,
    /// nothing deleted, nothing changed, deleted).
    pub message: Option<String>,
    /// Why a read failed (it fails only its own entry: reads change nothing).
    pub failure: Option<FhirError>,
}

/// Runs `entries` (in Bundle order; one for a REST request) as one transaction, for `principal`.
pub async fn run(
    state: &AppState,
    principal: &Principal,
    context: &CommitContext,
    mut entries: Vec<Entry>,
    scope: Scope,
) -> Result<Vec<EntryResult>, EntryError> {
    let guard = WriteGuard {
        principal,
        sandbox: state.sandbox.as_deref(),
        registry: Registry::r4(),
        extract: ExtractOptions {
            base_url: Some(state.settings.reference_base_url.clone()),
        },
    };
    for entry in &mut entries {
        plan::check(entry).map_err(EntryError::at(entry.index))?;
        guard
            .authorize(&state.store, entry)
            .await
            .map_err(EntryError::at(entry.index))?;
    }
    let wanted = plan::criteria(&state.matcher, &entries, scope)?;
    let mut session = if wanted.is_empty() {
        None
    } else {
        let wanted: Vec<(ResourceType, &str)> =
            wanted.iter().map(|(t, c)| (*t, c.as_str())).collect();
        Some(
            state
                .matcher
                .session(&state.store, &wanted)
                .await
                .map_err(EntryError::any)?,
        )
    };
    let result = run_in(state, context, entries, session.as_mut(), scope).await;
    if let Some(session) = session {
        session.release().await;
    }
    result
}

async fn run_in(
    state: &AppState,
    context: &CommitContext,
    entries: Vec<Entry>,
    session: Option<&mut crate::conditional::Session>,
    scope: Scope,
) -> Result<Vec<EntryResult>, EntryError> {
    let Plan { items, mut writes } =
        plan::plan(&state.store, entries, session, scope, context.recorded_at()).await?;
    commit(
        &state.store,
        state.settings.write_limits(),
        context,
        &mut writes,
    )
    .await?;
    for write in &writes {
        cache_version(&state.cache, write).await;
    }
    let mut writes: HashMap<usize, Write> = writes
        .into_iter()
        .map(|write| (write.entry, write))
        .collect();
    let mut results = Vec::with_capacity(items.len());
    for Item { entry, step } in items {
        let result = match step {
            Step::Write { .. } => written(&entry, writes.remove(&entry.index)),
            Step::Existing { id } => existing(state, &entry, id)
                .await
                .map_err(EntryError::at(entry.index))?,
            Step::NothingToDelete { criteria } => EntryResult {
                method: entry.method,
                status: StatusCode::OK,
                resource_type: entry.target.resource_type(),
                id: None,
                outcome: None,
                message: Some(format!(
                    "no resource matches {criteria}; nothing was deleted"
                )),
                failure: None,
            },
            Step::Read => read(state, &entry).await.unwrap_or_else(|error| {
                let failure = FhirError::from(error);
                EntryResult {
                    method: entry.method,
                    status: failure.status,
                    resource_type: entry.target.resource_type(),
                    id: None,
                    outcome: None,
                    message: None,
                    failure: Some(failure),
                }
            }),
        };
        results.push(result);
    }
    Ok(results)
}

/// The answer to a committed write: 201 when it created the resource, else 200.
fn written(entry: &Entry, write: Option<Write>) -> EntryResult {
    let (id, outcome) = match write {
        Some(write) => (Some(write.id), write.outcome),
        None => (None, None),
    };
    let resource_type = entry.target.resource_type();
    let message = match (&outcome, &id) {
        (Some(outcome), Some(id)) if entry.method == Method::Delete => Some(if outcome.recorded {
            format!("deleted {resource_type}/{id} (version {})", outcome.version)
        } else {
            format!("{resource_type}/{id} was already deleted; nothing changed")
        }),
        (Some(outcome), _) if !outcome.recorded && entry.method == Method::Patch => {
            Some("no change: the patch leaves the resource as it was".to_owned())
        }
        (Some(outcome), _) if !outcome.recorded => {
            Some("no change: the content equals the current version".to_owned())
        }
        _ => None,
    };
    EntryResult {
        method: entry.method,
        status: match &outcome {
            Some(outcome) if outcome.created => StatusCode::CREATED,
            _ => StatusCode::OK,
        },
        resource_type,
        id,
        outcome,
        message,
        failure: None,
    }
}

/// The answer to a create whose `If-None-Exist` matched: 200 with the resource as it stands.
async fn existing(state: &AppState, entry: &Entry, id: String) -> Result<EntryResult, WriteError> {
    let resource_type = entry.target.resource_type();
    let head = state
        .store
        .latest(resource_type.as_str(), &id)
        .await?
        .ok_or(WriteError::Resource(event_store::ResourceError::NotFound))?;
    Ok(EntryResult {
        method: entry.method,
        status: StatusCode::OK,
        resource_type,
        message: Some(format!(
            "{resource_type}/{id} matches If-None-Exist; nothing was created"
        )),
        id: Some(id),
        outcome: Some(WriteOutcome::current(head)),
        failure: None,
    })
}

/// A `GET`/`HEAD` entry: the current version, or the one named.
async fn read(state: &AppState, entry: &Entry) -> Result<EntryResult, WriteError> {
    let (resource_type, id, version) = match &entry.target {
        Target::Instance(t, id) => (*t, id.to_string(), None),
        Target::Version(t, id, v) => (*t, id.to_string(), Some(*v)),
        _ => {
            return Err(WriteError::NotImplemented(
                "searches inside Bundles (only reads of Type/id and Type/id/_history/n)",
            ));
        }
    };
    let found = match version {
        Some(v) => {
            state
                .store
                .version(
                    resource_type.as_str(),
                    &id,
                    i32::try_from(v).unwrap_or(i32::MAX),
                )
                .await?
        }
        None => state.store.latest(resource_type.as_str(), &id).await?,
    };
    let head = found.ok_or(WriteError::Resource(event_store::ResourceError::NotFound))?;
    if head.is_delete() {
        return Err(WriteError::Resource(event_store::ResourceError::Gone {
            version: u32::try_from(head.version).unwrap_or(0),
        }));
    }
    Ok(EntryResult {
        method: entry.method,
        status: StatusCode::OK,
        resource_type,
        id: Some(id),
        outcome: Some(WriteOutcome::current(head)),
        message: None,
        failure: None,
    })
}

/// Runs one entry as a transaction of one: a REST request, or an entry of a batch.
pub async fn run_one(
    state: &AppState,
    principal: &Principal,
    context: &CommitContext,
    entry: Entry,
    scope: Scope,
) -> Result<EntryResult, EntryError> {
    let index = entry.index;
    run(state, principal, context, vec![entry], scope)
        .await?
        .pop()
        .ok_or_else(|| {
            EntryError::at(index)(WriteError::Rule("the entry planned nothing".to_owned()))
        })
}
