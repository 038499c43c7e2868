//! Recording a scenario from the live record, or from a teaching sandbox: a cohort of patients
//! over a window of positions.
//!
//! The starting state is what the cohort's resources were when the window opened: everything
//! that referred to one of its patients at that position (read from the index of the past,
//! ADR 0013), the patients themselves, and, three references deep, what those resources refer
//! to (practitioners, locations, organisations, medications), so that the scenario plays into
//! an empty sandbox with every reference resolving. The events are the window's changes to
//! resources in a cohort patient's compartment or in the starting state, with their times from
//! the window's start.
//!
//! From a sandbox, the streams are the sandbox's (the live record up to its fork, then its
//! own) and the changes are the sandbox's own; the resources referring to the cohort are
//! found in the sandbox's present view of the index (the index keeps no past of a sandbox),
//! each then read as it stood at the window's start.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use event_store::{EventKind, EventStore, StoredEvent};
use fhir_search::Registry;
use fhir_search::compartment::patients_of;
use fhir_search::extract::ExtractOptions;
use fhir_search::schema::hfj_res_link;
use fhir_search::sql::View;
use serde_json::Value;

use super::{Change, ChangeKind, Manifest, Scenario};

/// How deep references of the starting state are followed.
const REFERENCE_DEPTH: usize = 3;
/// Events read from the store at a time.
const FEED_PAGE: i64 = 1_000;

/// What to record.
#[derive(Debug, Clone)]
pub struct Recording {
    pub name: String,
    pub version: i32,
    pub title: Option<String>,
    pub description: Option<String>,
    pub patients: Vec<String>,
    /// The window, as positions of the live record: `(from, to]`.
    pub from: i64,
    pub to: i64,
    /// When the window opened.
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// The sandbox recorded from; none for the live record.
    pub sandbox: Option<event_store::sandbox::Sandbox>,
}

/// Why a recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Store(#[from] event_store::StoreError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Records `recording` from the live record.
pub async fn record(
    live: &EventStore,
    extract: &ExtractOptions,
    recording: &Recording,
) -> Result<Scenario, RecordError> {
    let scoped;
    let store = match &recording.sandbox {
        Some(sandbox) => {
            scoped = live.within(sandbox.record());
            &scoped
        }
        None => live,
    };
    let partition = recording
        .sandbox
        .as_ref()
        .map_or(0, |sandbox| sandbox.partition);
    let cohort: HashSet<&str> = recording.patients.iter().map(String::as_str).collect();
    let mut keys: BTreeSet<(String, String)> = referring(store, recording).await?;
    keys.extend(
        recording
            .patients
            .iter()
            .map(|id| ("Patient".to_owned(), id.clone())),
    );
    let mut start = Vec::new();
    let frontier: Vec<(String, String)> = keys.iter().cloned().collect();
    add_with_references(store, recording.from, frontier, &mut keys, &mut start).await?;
    let mut events: Vec<Change> = Vec::new();
    let mut after = recording.from;
    'feed: loop {
        let page = store.read_feed(after, FEED_PAGE).await?;
        if page.is_empty() {
            break;
        }
        for event in &page {
            let Some(position) = event.position else {
                continue;
            };
            if position > recording.to {
                break 'feed;
            }
            after = position;
            if event.partition != partition {
                continue;
            }
            if let Some(mut change) = change_of(event, recording, extract, &cohort, &keys) {
                // Changes keep the record's order (positions); writers committing side by side
                // stamp their times a few milliseconds out of that order, so an offset never
                // comes before the one of the change before it.
                if let Some(last) = events.last() {
                    change.offset_ms = change.offset_ms.max(last.offset_ms);
                }
                events.push(change);
            }
        }
        if page.len() < FEED_PAGE as usize {
            break;
        }
    }
    // What the window's changes refer to and neither the starting state nor the window holds
    // (a bed, a practitioner first met in the window) joins the starting state, as it stood
    // when the window closed: a scenario plays into an empty sandbox.
    let written: BTreeSet<(String, String)> = events
        .iter()
        .map(|change| (change.resource_type.clone(), change.id.clone()))
        .collect();
    let mut referred = Vec::new();
    for change in &events {
        if let Some(resource) = &change.resource {
            local_references(resource, &mut referred);
        }
    }
    let missing: Vec<(String, String)> = referred
        .into_iter()
        .filter(|key| !written.contains(key))
        .filter(|key| keys.insert(key.clone()))
        .collect();
    add_with_references(store, recording.to, missing, &mut keys, &mut start).await?;
    let duration_ms = (recording.window_end - recording.window_start)
        .num_milliseconds()
        .max(events.last().map_or(0, |change| change.offset_ms));
    Ok(Scenario {
        manifest: Manifest {
            name: recording.name.clone(),
            version: recording.version,
            title: recording.title.clone(),
            description: recording.description.clone(),
            patients: recording.patients.clone(),
            duration_ms,
            window_start: recording.window_start,
            source: Some(match &recording.sandbox {
                Some(sandbox) => format!(
                    "the sandbox {}, positions {} to {}",
                    sandbox.name, recording.from, recording.to
                ),
                None => format!(
                    "the live record, positions {} to {}",
                    recording.from, recording.to
                ),
            }),
        },
        start,
        events,
    })
}

/// Adds to `start` the resources `frontier` names as they stood at `position`, and what they
/// refer to, `REFERENCE_DEPTH` references deep; `keys` holds what is in already.
async fn add_with_references(
    store: &EventStore,
    position: i64,
    mut frontier: Vec<(String, String)>,
    keys: &mut BTreeSet<(String, String)>,
    start: &mut Vec<Value>,
) -> Result<(), RecordError> {
    for _ in 0..=REFERENCE_DEPTH {
        let mut found = Vec::new();
        for (resource_type, id) in frontier {
            let Some(event) = store.latest_at(&resource_type, &id, position).await? else {
                continue;
            };
            if event.is_delete() {
                continue;
            }
            let Ok(resource) = serde_json::from_str::<Value>(&event.resource) else {
                continue;
            };
            local_references(&resource, &mut found);
            start.push(resource);
        }
        frontier = found
            .into_iter()
            .filter(|key| keys.insert(key.clone()))
            .collect();
        if frontier.is_empty() {
            break;
        }
    }
    Ok(())
}

/// The window's change `event`, if it is the cohort's.
fn change_of(
    event: &StoredEvent,
    recording: &Recording,
    extract: &ExtractOptions,
    cohort: &HashSet<&str>,
    known: &BTreeSet<(String, String)>,
) -> Option<Change> {
    let resource: Value = serde_json::from_str(&event.resource).ok()?;
    let theirs = known.contains(&(event.resource_type.clone(), event.resource_id.clone()))
        || patients_of(
            Registry::r4(),
            extract,
            &event.resource_type,
            &event.resource_id,
            &resource,
        )
        .iter()
        .any(|patient| cohort.contains(patient.as_str()));
    if !theirs {
        return None;
    }
    let kind = match event.event_kind()? {
        EventKind::ResourceCreated => ChangeKind::Create,
        EventKind::ResourceUpdated => ChangeKind::Update,
        EventKind::ResourceDeleted => ChangeKind::Delete,
    };
    Some(Change {
        offset_ms: (event.recorded_at - recording.window_start)
            .num_milliseconds()
            .max(0),
        kind,
        resource_type: event.resource_type.clone(),
        id: event.resource_id.clone(),
        resource: (kind != ChangeKind::Delete).then_some(resource),
    })
}

/// Every resource that referred to one of the cohort's patients at the window's start.
async fn referring(
    store: &EventStore,
    recording: &Recording,
) -> Result<BTreeSet<(String, String)>, RecordError> {
    use hfj_res_link::{KIND, RES_PK, RES_VER, TARGET_ID, TARGET_TYPE};
    let view = match &recording.sandbox {
        Some(sandbox) => View::Sandbox {
            partition: sandbox.partition,
            fork: sandbox.fork_position,
        },
        None => View::AsOf(recording.from),
    };
    let sql = format!(
        "SELECT DISTINCT r.res_type, r.res_id FROM {resources} r JOIN {links} l \
         ON l.{RES_PK} = r.res_pk AND l.{RES_VER} = r.res_ver \
         WHERE NOT r.deleted AND l.{KIND} = 'local' AND l.{TARGET_TYPE} = 'Patient' \
         AND l.{TARGET_ID} = ANY($1)",
        resources = view.resources(),
        links = view.rows(hfj_res_link::TABLE),
    );
    let rows: Vec<(String, String)> = sqlx::query_as(&sql)
        .bind(&recording.patients)
        .fetch_all(store.pool())
        .await?;
    Ok(rows.into_iter().collect())
}

/// The `Type/id` references of a resource (relative, local ones).
fn local_references(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get("reference")
                && let Some((resource_type, id)) = reference.split_once('/')
                && !id.contains('/')
                && fhir_model::ResourceType::parse(resource_type).is_ok()
            {
                out.push((resource_type.to_owned(), id.to_owned()));
            }
            object.values().for_each(|item| local_references(item, out));
        }
        Value::Array(items) => items.iter().for_each(|item| local_references(item, out)),
        _ => {}
    }
}
