//! `_history` at instance (`/fhir/<Type>/<id>/_history`), type (`/fhir/<Type>/_history`) and
//! system (`/fhir/_history`) level, newest first, with `_since`, `_at`, `_count`, and
//! `_summary`/`_elements` trimming each version as a search would. Other parameters are
//! ignored, or refused under `Prefer: handling=strict`, as in search.
//!
//! Pages are cut by event position (`_before=<position>` in the `next` link), so while writes
//! go on a page neither repeats nor skips a version: new versions only ever appear before the
//! first page.

use access_policy::Interaction;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use event_store::{EventKind, HistoryQuery, StoredEvent};
use fhir_model::{IssueCode, ResourceType};
use fhir_search::query::{DateValue, Summary, element_names};
use serde_json::{Map, Value, json};
use service_kit::fhir_response::{FhirError, fhir_json};

use super::AppState;
use super::search::prefers_strict;
use crate::access::Caller;
use crate::error::{InstancePath, TypePath};
use crate::search::summary::Trim;

/// Versions per page when `_count` is absent, and the most a page holds.
const DEFAULT_COUNT: i64 = 20;
const MAX_COUNT: i64 = 1000;

pub(crate) async fn instance(
    State(state): State<AppState>,
    caller: Caller,
    InstancePath(resource_type, id): InstancePath,
    RawQuery(query): RawQuery,
) -> Result<Response, FhirError> {
    let access = caller.allow(Interaction::History, resource_type)?;
    if !access.is_unbounded() {
        // A bound token sees the history of what it may see now: the current version decides.
        let latest = match caller.past {
            Some(past) => {
                state
                    .store
                    .latest_at(resource_type.as_str(), id.as_str(), past.position)
                    .await
            }
            None => {
                caller
                    .store(&state)
                    .latest(resource_type.as_str(), id.as_str())
                    .await
            }
        }
        .map_err(FhirError::internal)?;
        let visible = latest.is_some_and(|event| {
            serde_json::from_str::<Value>(&event.resource).is_ok_and(|resource| {
                event.is_delete()
                    || caller.sees(
                        &state,
                        &access,
                        resource_type.as_str(),
                        id.as_str(),
                        &resource,
                    )
            })
        });
        if !visible {
            return Err(FhirError::new(
                StatusCode::NOT_FOUND,
                IssueCode::NotFound,
                format!("{resource_type}/{id} is not known"),
            ));
        }
    }
    let total = caller
        .store(&state)
        .version_count(
            resource_type.as_str(),
            id.as_str(),
            caller.past.map(|past| past.position),
        )
        .await
        .map_err(FhirError::internal)?;
    if total == 0 {
        return Err(FhirError::new(
            StatusCode::NOT_FOUND,
            IssueCode::NotFound,
            format!("{resource_type}/{id} is not known"),
        ));
    }
    let path = format!("{resource_type}/{id}/_history");
    history(
        &state,
        &caller,
        query.as_deref(),
        Scope {
            resource_type: Some(resource_type.as_str()),
            resource_id: Some(id.as_str()),
            path: &path,
            total: Some(total),
        },
    )
    .await
}

pub(crate) async fn by_type(
    State(state): State<AppState>,
    caller: Caller,
    TypePath(resource_type): TypePath,
    RawQuery(query): RawQuery,
) -> Result<Response, FhirError> {
    whole_type_history(&caller, resource_type)?;
    let path = format!("{resource_type}/_history");
    history(
        &state,
        &caller,
        query.as_deref(),
        Scope {
            resource_type: Some(resource_type.as_str()),
            resource_id: None,
            path: &path,
            total: None,
        },
    )
    .await
}

pub(crate) async fn system(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, FhirError> {
    for resource_type in fhir_model::ResourceType::all() {
        whole_type_history(&caller, resource_type)?;
    }
    history(
        &state,
        &caller,
        query.as_deref(),
        Scope {
            resource_type: None,
            resource_id: None,
            path: "_history",
            total: None,
        },
    )
    .await
}

/// The history of a whole type shows every resource of it: only to a caller who may read
/// them all, without a patient or search restriction.
fn whole_type_history(caller: &Caller, resource_type: ResourceType) -> Result<(), FhirError> {
    let access = caller.allow(Interaction::History, resource_type)?;
    if access.is_unbounded() {
        Ok(())
    } else {
        Err(FhirError::new(
            StatusCode::FORBIDDEN,
            IssueCode::Forbidden,
            format!(
                "the history of every {resource_type} needs access to every {resource_type}; \
                 this token is bound to a patient or restricted: ask for one resource's history"
            ),
        ))
    }
}

/// Which history, and how to name it in links.
struct Scope<'a> {
    resource_type: Option<&'a str>,
    resource_id: Option<&'a str>,
    path: &'a str,
    /// Known for an instance (its version count); not counted for type and system history.
    total: Option<i64>,
}

fn invalid(message: String) -> FhirError {
    FhirError::new(StatusCode::BAD_REQUEST, IssueCode::Invalid, message)
}

/// The parameters of a history request.
struct Parameters {
    count: i64,
    since: Option<DateTime<Utc>>,
    since_text: Option<String>,
    at: Option<(DateTime<Utc>, DateTime<Utc>)>,
    at_text: Option<String>,
    before: Option<i64>,
    summary: Option<Summary>,
    elements: Vec<String>,
    /// `_summary` and `_elements` as sent, for the page links.
    presentation: Vec<(String, String)>,
}

fn parameters(query: Option<&str>, strict: bool) -> Result<Parameters, FhirError> {
    let mut parameters = Parameters {
        count: DEFAULT_COUNT,
        since: None,
        since_text: None,
        at: None,
        at_text: None,
        before: None,
        summary: None,
        elements: Vec::new(),
        presentation: Vec::new(),
    };
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "_count" => {
                parameters.count = value
                    .parse::<i64>()
                    .ok()
                    .filter(|count| *count >= 0)
                    .ok_or_else(|| {
                        invalid(format!("_count must be a whole number, not `{value}`"))
                    })?
                    .min(MAX_COUNT);
            }
            "_since" => {
                let date = DateValue::parse(&value)
                    .map_err(|error| invalid(format!("_since: {error}")))?;
                parameters.since = Some(date.low);
                parameters.since_text = Some(value.into_owned());
            }
            "_at" => {
                let date =
                    DateValue::parse(&value).map_err(|error| invalid(format!("_at: {error}")))?;
                parameters.at = Some((date.low, date.high));
                parameters.at_text = Some(value.into_owned());
            }
            "_before" => {
                parameters.before = Some(value.parse().map_err(|_| {
                    invalid(format!(
                        "_before must be a position from a page link, not `{value}`"
                    ))
                })?);
            }
            "_summary" => {
                parameters.summary = Some(Summary::parse(&value).ok_or_else(|| {
                    invalid(format!(
                        "_summary must be true, text, data, count or false, not `{value}`"
                    ))
                })?);
                parameters
                    .presentation
                    .push(("_summary".into(), value.into_owned()));
            }
            "_elements" => {
                parameters.elements.extend(element_names(&value));
                parameters
                    .presentation
                    .push(("_elements".into(), value.into_owned()));
            }
            // Applied by the format middleware.
            "_format" | "_pretty" => {}
            other if strict => {
                return Err(invalid(format!(
                    "`{other}` is not a parameter of _history (_count, _since, _at, _summary, _elements); \
                     Prefer: handling=strict refuses it"
                )));
            }
            _ => {}
        }
    }
    Ok(parameters)
}

async fn history(
    state: &AppState,
    caller: &Caller,
    query: Option<&str>,
    scope: Scope<'_>,
) -> Result<Response, FhirError> {
    let headers = &caller.headers;
    let parameters = parameters(query, prefers_strict(headers))?;
    let history_query = HistoryQuery {
        resource_type: scope.resource_type,
        resource_id: scope.resource_id,
        since: parameters.since,
        at: parameters.at,
        // In the past, only what was written by then (the cursor is a position too).
        before_position: match (parameters.before, caller.past) {
            (Some(before), Some(past)) => Some(before.min(past.position + 1)),
            (None, Some(past)) => Some(past.position + 1),
            (before, None) => before,
        },
        // One more than a page, to know whether there is a next one.
        limit: parameters.count + 1,
    };
    if parameters.summary == Some(Summary::Count) {
        let total = caller
            .store(state)
            .history_count(&history_query)
            .await
            .map_err(FhirError::internal)?;
        let bundle = json!({"resourceType": "Bundle", "type": "history", "total": total});
        return Ok(fhir_json(StatusCode::OK, bundle.to_string()));
    }
    let events = caller
        .store(state)
        .history(&history_query)
        .await
        .map_err(FhirError::internal)?;
    let base = state.fhir_base(caller);
    let page_size = usize::try_from(parameters.count).unwrap_or(0);
    let more = events.len() > page_size;
    let page = &events[..events.len().min(page_size)];
    let link = |before: Option<i64>| {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        serializer.append_pair("_count", &parameters.count.to_string());
        if let Some(since) = &parameters.since_text {
            serializer.append_pair("_since", since);
        }
        if let Some(at) = &parameters.at_text {
            serializer.append_pair("_at", at);
        }
        for (name, value) in &parameters.presentation {
            serializer.append_pair(name, value);
        }
        if let Some(before) = before {
            serializer.append_pair("_before", &before.to_string());
        }
        format!("{base}/{}?{}", scope.path, serializer.finish())
    };
    let mut links = vec![json!({"relation": "self", "url": link(parameters.before)})];
    if more && let Some(last) = page.last().and_then(|event| event.position) {
        links.push(json!({"relation": "next", "url": link(Some(last))}));
    }
    let trim = Trim::from_request(parameters.summary, &parameters.elements);
    let entries: Vec<Value> = page
        .iter()
        .map(|event| entry(&base, event, trim.as_ref()))
        .collect();
    let mut bundle = Map::new();
    bundle.insert("resourceType".into(), json!("Bundle"));
    bundle.insert("type".into(), json!("history"));
    if let Some(total) = scope.total {
        bundle.insert("total".into(), json!(total));
    }
    bundle.insert("link".into(), Value::Array(links));
    bundle.insert("entry".into(), Value::Array(entries));
    let mut bundle = Value::Object(bundle);
    caller.filter_bundle(state, &mut bundle, false);
    let body = bundle.to_string();
    Ok(fhir_json(StatusCode::OK, body))
}

/// One version as a history entry: the resource (none for a delete), the request that made it
/// and the response it got.
fn entry(base: &str, event: &StoredEvent, trim: Option<&Trim>) -> Value {
    let path = format!("{}/{}", event.resource_type, event.resource_id);
    let (method, url, status) = match event.event_kind() {
        Some(EventKind::ResourceCreated) => ("POST", event.resource_type.clone(), "201 Created"),
        Some(EventKind::ResourceDeleted) => ("DELETE", path.clone(), "204 No Content"),
        _ => ("PUT", path.clone(), "200 OK"),
    };
    let mut entry = Map::new();
    entry.insert("fullUrl".into(), json!(format!("{base}/{path}")));
    if !event.is_delete()
        && let Ok(mut resource) = serde_json::from_str::<Value>(&event.resource)
    {
        if let Some(trim) = trim {
            trim.apply(&mut resource);
        }
        entry.insert("resource".into(), resource);
    }
    entry.insert("request".into(), json!({"method": method, "url": url}));
    entry.insert(
        "response".into(),
        json!({
            "status": status,
            "etag": format!("W/\"{}\"", event.version),
            "lastModified": fhir_model::format_instant(event.recorded_at),
        }),
    );
    Value::Object(entry)
}
