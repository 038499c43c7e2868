//! A transaction Bundle, all or nothing (http.html#transaction).
//!
//! 1. **Conditions first.** Every search the bundle depends on (`ifNoneExist`, conditional
//!    `PUT`/`PATCH`/`DELETE` urls, conditional references such as
//!    `Organization?identifier=...`) is checked, then matched in one conditional-write session
//!    (its locks held until the events have committed; see `conditional.rs`).
//! 2. **Targets.** Entries are visited in processing order (DELETE, POST, PUT/PATCH, GET/HEAD):
//!    each gets the stream it writes (a new id for a create, the match of its criteria, ...),
//!    and each `fullUrl` (`urn:uuid:`, `urn:oid:`, or a URL) is mapped to the `Type/id` it
//!    becomes. Two entries writing one resource is an error.
//! 3. **References.** Every `reference` anywhere in every resource (nested, in extensions, in
//!    contained resources) that names a `fullUrl` of the bundle or a conditional reference is
//!    rewritten to `Type/id`; a `urn:` reference to no entry fails the bundle.
//! 4. **One commit.** Every resource is validated, every command decided on its stream's head,
//!    and all events are appended in one database transaction (`write::execute_all`) under one
//!    transaction id. Reads (`GET`/`HEAD`) run after it and see its writes.
//!
//! Any failure names its entry and writes nothing. A batch runs each entry through the same
//! code as a transaction of one entry.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use event_store::{CommitContext, ResourceCommand};
use fhir_model::{ResourceId, ResourceType};
use serde_json::Value;
use service_kit::fhir_response::FhirError;
use uuid::Uuid;

use super::entry::{Entry, Method, Target};
use crate::AppState;
use crate::conditional::Session;
use crate::error::WriteError;
use crate::request::now;
use crate::routes::check_body;
use crate::write::{Planned, WriteOutcome, cache_version, execute_all};

/// Why a bundle failed: the error, and the entry (its index in the Bundle) it is about.
#[derive(Debug)]
pub struct EntryError {
    pub index: Option<usize>,
    pub error: WriteError,
}

fn at(index: usize) -> impl Fn(WriteError) -> EntryError {
    move |error| EntryError {
        index: Some(index),
        error,
    }
}

/// What one entry did, for its `response`.
#[derive(Debug)]
pub struct EntryResult {
    pub status: StatusCode,
    pub resource_type: String,
    pub id: Option<String>,
    /// The version written or read, for `location` and `etag`.
    pub outcome: Option<WriteOutcome>,
    /// A note for entries that did nothing (a conditional delete that matched nothing).
    pub message: Option<String>,
    /// Why a read failed (it fails only its own entry: reads change nothing).
    pub failure: Option<FhirError>,
}

/// Where an entry's criteria (if any) led.
enum Resolved {
    /// Write this stream.
    Write(String),
    /// `ifNoneExist` matched this resource.
    Existing(String),
    /// A conditional delete matched nothing.
    NothingToDelete(String),
    Read,
}

/// What an entry will do, once its target is known.
enum Action {
    /// Create, update, patch or delete this stream.
    Write { id: String, planned: usize },
    /// `ifNoneExist` matched: nothing is written, the match is the answer.
    Existing { id: String },
    /// A conditional delete that matched nothing.
    NothingToDelete { criteria: String },
    /// A read, after the writes.
    Read,
}

/// Runs `entries` (already read, in Bundle order) as one transaction.
pub async fn run(
    state: &AppState,
    context: &CommitContext,
    entries: Vec<Entry>,
) -> Result<Vec<EntryResult>, EntryError> {
    let mut session = open_session(state, &entries).await?;
    let result = run_in(state, context, entries, session.as_mut()).await;
    if let Some(session) = session {
        session.release().await;
    }
    result
}

async fn run_in(
    state: &AppState,
    context: &CommitContext,
    mut entries: Vec<Entry>,
    mut session: Option<&mut Session>,
) -> Result<Vec<EntryResult>, EntryError> {
    let conditional_references = resolve_conditional_references(&entries, &mut session).await?;
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&n| entries[n].method.processing_rank());

    // Targets, in processing order.
    let mut full_urls: HashMap<String, String> = HashMap::new();
    let mut actions: BTreeMap<usize, Action> = BTreeMap::new();
    let mut writers: HashMap<(ResourceType, String), usize> = HashMap::new();
    let mut planned: Vec<(usize, ResourceType, String, bool)> = Vec::new();
    for &n in &order {
        let entry = &entries[n];
        let resolved = target_of(entry, &mut session).await.map_err(at(n))?;
        let resource_type = entry.target.resource_type();
        if let (Resolved::Write(id) | Resolved::Existing(id), Some(full_url)) =
            (&resolved, &entry.full_url)
        {
            full_urls.insert(full_url.clone(), format!("{resource_type}/{id}"));
        }
        let action = match resolved {
            Resolved::Write(id) => {
                if let Some(previous) = writers.insert((resource_type, id.clone()), n) {
                    return Err(at(n)(WriteError::Rule(format!(
                        "{resource_type}/{id} is written by entries {previous} and {n}; a transaction writes each resource once"
                    ))));
                }
                let fresh = entry.method == Method::Post;
                planned.push((n, resource_type, id.clone(), fresh));
                Action::Write {
                    id,
                    planned: planned.len() - 1,
                }
            }
            Resolved::Existing(id) => Action::Existing { id },
            Resolved::NothingToDelete(criteria) => Action::NothingToDelete { criteria },
            Resolved::Read => Action::Read,
        };
        actions.insert(n, action);
    }

    // References, then validation.
    for entry in &mut entries {
        if let (Method::Post | Method::Put, Some(body)) = (entry.method, entry.body.as_mut()) {
            rewrite_references(body, &full_urls, &conditional_references)
                .map_err(at(entry.index))?;
        }
    }
    let at_time = now();
    let mut plans = Vec::with_capacity(planned.len());
    for (n, resource_type, id, fresh) in &planned {
        let entry = &entries[*n];
        let command = command_for(state, entry, *resource_type, id, at_time)
            .await
            .map_err(at(*n))?;
        plans.push(Planned {
            resource_type: resource_type.as_str().to_owned(),
            id: id.clone(),
            command,
            fresh: *fresh,
        });
    }

    let outcomes = execute_all(&state.store, state.settings.write_limits(), context, &plans)
        .await
        .map_err(|(failed, error)| EntryError {
            index: failed.map(|p| planned[p].0),
            error,
        })?;
    for (plan, outcome) in plans.iter().zip(&outcomes) {
        cache_version(&state.cache, &plan.resource_type, &plan.id, outcome).await;
    }

    // Answers, in Bundle order; reads happen now, after the writes.
    let mut outcomes: Vec<Option<WriteOutcome>> = outcomes.into_iter().map(Some).collect();
    let mut results = Vec::with_capacity(entries.len());
    for (n, entry) in entries.iter().enumerate() {
        let resource_type = entry.target.resource_type().as_str().to_owned();
        let result = match actions.remove(&n) {
            Some(Action::Write { id, planned }) => {
                let outcome = outcomes[planned].take();
                let status = match &outcome {
                    Some(outcome) if outcome.created => StatusCode::CREATED,
                    Some(outcome) if outcome.deleted && entry.method == Method::Delete => {
                        StatusCode::NO_CONTENT
                    }
                    _ => StatusCode::OK,
                };
                EntryResult {
                    status,
                    resource_type,
                    id: Some(id),
                    outcome,
                    message: None,
                    failure: None,
                }
            }
            Some(Action::Existing { id }) => {
                let head = state
                    .store
                    .latest(&resource_type, &id)
                    .await
                    .map_err(|error| at(n)(error.into()))?;
                EntryResult {
                    status: StatusCode::OK,
                    resource_type,
                    id: Some(id),
                    outcome: head.map(WriteOutcome::current),
                    message: Some(
                        "an existing resource matches ifNoneExist; nothing was created".to_owned(),
                    ),
                    failure: None,
                }
            }
            Some(Action::NothingToDelete { criteria }) => EntryResult {
                status: StatusCode::OK,
                resource_type,
                id: None,
                outcome: None,
                message: Some(format!(
                    "no resource matches {criteria}; nothing was deleted"
                )),
                failure: None,
            },
            Some(Action::Read) | None => match read(state, entry).await {
                Ok(result) => result,
                Err(error) => {
                    let failure = FhirError::from(error);
                    EntryResult {
                        status: failure.status,
                        resource_type,
                        id: None,
                        outcome: None,
                        message: None,
                        failure: Some(failure),
                    }
                }
            },
        };
        results.push(result);
    }
    Ok(results)
}

/// Checks every criteria the bundle depends on, then opens one session holding all their locks.
async fn open_session(state: &AppState, entries: &[Entry]) -> Result<Option<Session>, EntryError> {
    let mut wanted: Vec<(ResourceType, String)> = Vec::new();
    for entry in entries {
        let mut mine = Vec::new();
        match (&entry.target, &entry.if_none_exist) {
            (Target::Type(t), Some(criteria)) if entry.method == Method::Post => {
                mine.push((*t, criteria.clone()));
            }
            (Target::Criteria(t, criteria), _) if entry.method != Method::Post => {
                mine.push((*t, criteria.clone()));
            }
            _ => {}
        }
        if let Some(body) = &entry.body {
            for reference in conditional_references_in(body) {
                let (type_name, criteria) = reference.split_once('?').unwrap_or_default();
                let resource_type = ResourceType::parse(type_name).map_err(|_| {
                    at(entry.index)(WriteError::Rule(format!(
                        "conditional reference {reference:?}: {type_name:?} is not a resource type"
                    )))
                })?;
                mine.push((resource_type, criteria.to_owned()));
            }
        }
        for (resource_type, criteria) in &mine {
            state
                .matcher
                .check(*resource_type, criteria)
                .map_err(at(entry.index))?;
        }
        wanted.extend(mine);
    }
    if wanted.is_empty() {
        return Ok(None);
    }
    let wanted: Vec<(ResourceType, &str)> = wanted.iter().map(|(t, c)| (*t, c.as_str())).collect();
    state
        .matcher
        .session(&state.store, &wanted)
        .await
        .map(Some)
        .map_err(|error| EntryError { index: None, error })
}

/// `reference` values of the form `Type?criteria` anywhere in `value`.
fn conditional_references_in(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    visit_references(value, &mut |text| {
        if crate::references::is_conditional(text) {
            found.push(text.to_owned());
        }
    });
    found
}

fn visit_references(value: &Value, visit: &mut impl FnMut(&str)) {
    match value {
        Value::Object(members) => {
            for (name, member) in members {
                match (name.as_str(), member) {
                    ("reference", Value::String(text)) => visit(text),
                    _ => visit_references(member, visit),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| visit_references(item, visit)),
        _ => {}
    }
}

/// Each conditional reference in the bundle, resolved to the `Type/id` of its one match.
async fn resolve_conditional_references(
    entries: &[Entry],
    session: &mut Option<&mut Session>,
) -> Result<HashMap<String, String>, EntryError> {
    let mut resolved = HashMap::new();
    for entry in entries {
        let Some(body) = &entry.body else { continue };
        for reference in conditional_references_in(body) {
            if resolved.contains_key(&reference) {
                continue;
            }
            let (type_name, criteria) = reference.split_once('?').unwrap_or_default();
            let resource_type = ResourceType::parse(type_name)
                .map_err(|_| at(entry.index)(WriteError::UnknownType(type_name.to_owned())))?;
            let Some(session) = session.as_deref_mut() else {
                return Err(at(entry.index)(WriteError::Rule(
                    "conditional reference outside a session".to_owned(),
                )));
            };
            let matched = session
                .find(resource_type, criteria)
                .await
                .map_err(at(entry.index))?;
            let id = matched
                .single()
                .map_err(at(entry.index))?
                .ok_or_else(|| at(entry.index)(WriteError::NoMatch(matched.criteria.clone())))?;
            resolved.insert(reference, format!("{resource_type}/{id}"));
        }
    }
    Ok(resolved)
}

/// Which stream an entry writes, matching its criteria where it has some.
async fn target_of(
    entry: &Entry,
    session: &mut Option<&mut Session>,
) -> Result<Resolved, WriteError> {
    let mut find = async |resource_type: ResourceType, criteria: &str| {
        let session = session
            .as_deref_mut()
            .ok_or_else(|| WriteError::Rule("criteria outside a session".to_owned()))?;
        session.find(resource_type, criteria).await
    };
    let new_id = || ResourceId::from_uuid(Uuid::now_v7()).to_string();
    Ok(match (entry.method, &entry.target) {
        (Method::Get | Method::Head, _) => Resolved::Read,
        (Method::Post, Target::Type(resource_type)) => match &entry.if_none_exist {
            Some(criteria) => {
                let matched = find(*resource_type, criteria).await?;
                match matched.single()? {
                    Some(id) => Resolved::Existing(id.to_owned()),
                    None => Resolved::Write(new_id()),
                }
            }
            None => Resolved::Write(new_id()),
        },
        (_, Target::Instance(_, id)) => Resolved::Write(id.to_string()),
        (method, Target::Criteria(resource_type, criteria)) => {
            let matched = find(*resource_type, criteria).await?;
            let body_id = entry
                .body
                .as_ref()
                .and_then(|body| body.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            match (method, matched.single()?) {
                (Method::Put, Some(found)) => {
                    if let Some(body_id) = body_id.filter(|body_id| body_id != found) {
                        return Err(WriteError::Rule(format!(
                            "the resource's id '{body_id}' is not the id of the resource {} matches ({found})",
                            matched.criteria
                        )));
                    }
                    Resolved::Write(found.to_owned())
                }
                (Method::Put, None) => Resolved::Write(body_id.unwrap_or_else(new_id)),
                (Method::Delete, None) => Resolved::NothingToDelete(matched.criteria.clone()),
                (Method::Patch, None) => return Err(WriteError::NoMatch(matched.criteria.clone())),
                (_, Some(found)) => Resolved::Write(found.to_owned()),
                (_, None) => return Err(WriteError::NoMatch(matched.criteria.clone())),
            }
        }
        _ => {
            return Err(WriteError::Rule(format!(
                "{} is not a request this server accepts in a Bundle",
                entry.describe()
            )));
        }
    })
}

/// Rewrites every reference to a `fullUrl` of the bundle, or a conditional reference, to the
/// `Type/id` it resolved to.
fn rewrite_references(
    value: &mut Value,
    full_urls: &HashMap<String, String>,
    conditional: &HashMap<String, String>,
) -> Result<(), WriteError> {
    match value {
        Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                match (name.as_str(), member) {
                    ("reference", Value::String(text)) => {
                        if let Some(local) = full_urls
                            .get(text.as_str())
                            .or_else(|| conditional.get(text.as_str()))
                        {
                            *text = local.clone();
                        } else if text.starts_with("urn:uuid:") || text.starts_with("urn:oid:") {
                            return Err(WriteError::Rule(format!(
                                "the reference {text:?} names no entry of this Bundle"
                            )));
                        }
                    }
                    (_, member) => rewrite_references(member, full_urls, conditional)?,
                }
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|item| rewrite_references(item, full_urls, conditional)),
        _ => Ok(()),
    }
}

/// The command an entry runs on its stream `resource_type/id`.
async fn command_for(
    state: &AppState,
    entry: &Entry,
    resource_type: ResourceType,
    id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<ResourceCommand, WriteError> {
    let body = || {
        entry
            .body
            .clone()
            .ok_or_else(|| WriteError::Rule(format!("{} needs a resource", entry.describe())))
    };
    Ok(match entry.method {
        Method::Post => {
            let mut resource = body()?;
            if let Some(object) = resource.as_object_mut() {
                object.shift_remove("id");
            }
            check_body(&resource, resource_type)?;
            ResourceCommand::Create {
                id: id.to_owned(),
                resource,
                at,
            }
        }
        Method::Put => {
            let mut resource = body()?;
            match resource.get("id") {
                None => {
                    if let Some(object) = resource.as_object_mut() {
                        object.insert("id".to_owned(), Value::String(id.to_owned()));
                    }
                }
                Some(Value::String(body_id)) if body_id == id => {}
                Some(other) => {
                    return Err(WriteError::Rule(format!(
                        "the resource's id {other} does not match the id in request.url '{id}'"
                    )));
                }
            }
            check_body(&resource, resource_type)?;
            if entry.if_none_match {
                let existing = state.store.latest(resource_type.as_str(), id).await?;
                if existing.is_some_and(|head| !head.is_delete()) {
                    return Err(WriteError::PreconditionFailed(format!(
                        "{resource_type}/{id} exists, and the entry's ifNoneMatch asks that it does not"
                    )));
                }
            }
            ResourceCommand::Update {
                id: id.to_owned(),
                resource,
                if_match: entry.if_match,
                at,
            }
        }
        Method::Patch => ResourceCommand::Patch {
            patch: body()?,
            if_match: entry.if_match,
            at,
        },
        Method::Delete => ResourceCommand::Delete {
            if_match: entry.if_match,
            at,
        },
        Method::Get | Method::Head => {
            return Err(WriteError::Rule("a read writes nothing".to_owned()));
        }
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
        status: StatusCode::OK,
        resource_type: resource_type.as_str().to_owned(),
        id: Some(id),
        outcome: Some(WriteOutcome::current(head)),
        message: None,
        failure: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_rewritten_wherever_they_are() {
        let mut resource = json!({
            "resourceType": "Observation",
            "subject": {"reference": "urn:uuid:p"},
            "extension": [{"url": "x", "valueReference": {"reference": "urn:uuid:p"}}],
            "contained": [{"resourceType": "Provenance", "target": [{"reference": "Organization?identifier=a|b"}]}],
            "performer": [{"reference": "Practitioner/kept"}, {"reference": "#inner"}],
        });
        let full_urls = HashMap::from([("urn:uuid:p".to_owned(), "Patient/1".to_owned())]);
        let conditional = HashMap::from([(
            "Organization?identifier=a|b".to_owned(),
            "Organization/9".to_owned(),
        )]);
        rewrite_references(&mut resource, &full_urls, &conditional)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(resource["subject"]["reference"], "Patient/1");
        assert_eq!(
            resource["extension"][0]["valueReference"]["reference"],
            "Patient/1"
        );
        assert_eq!(
            resource["contained"][0]["target"][0]["reference"],
            "Organization/9"
        );
        assert_eq!(resource["performer"][0]["reference"], "Practitioner/kept");
        assert_eq!(resource["performer"][1]["reference"], "#inner");

        let mut dangling = json!({"subject": {"reference": "urn:uuid:nobody"}});
        assert!(rewrite_references(&mut dangling, &full_urls, &conditional).is_err());
    }

    #[test]
    fn conditional_references_are_found_and_others_are_not() {
        let resource = json!({"a": {"reference": "Patient?identifier=http://x|1"}, "b": [{"reference": "Patient/1"},
            {"reference": "http://x/fhir/Patient?y=1"}, {"reference": "#c?d"}]});
        assert_eq!(
            conditional_references_in(&resource),
            ["Patient?identifier=http://x|1"]
        );
    }
}
