//! `GET /fhir/<Type>/<id>` (read, through the Redis read cache) and
//! `GET /fhir/<Type>/<id>/_history/<vid>` (vread), from the event store: the stored text of the
//! version is the body, byte for byte. `HEAD` answers the
//! same headers without the body (axum derives it from `GET`), and `If-None-Match` /
//! `If-Modified-Since` give `304 Not Modified` when the client's copy is current.

use access_policy::{Access, Interaction};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use event_store::StoredEvent;
use serde_json::Value;
use service_kit::resource_cache::CachedVersion;

use super::AppState;
use crate::access::Caller;
use crate::error::{InstancePath, VersionPath};
use crate::search::Request;
use fhir_model::{IssueCode, ResourceId, ResourceType};
use service_kit::fhir_response::{FhirError, etag, fhir_json, http_date, parse_version_tag};

/// Read: from the Redis cache when it holds the resource, else from the event store (and the
/// cache is given what was read, unless it meanwhile holds a newer version).
pub(crate) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    InstancePath(resource_type, id): InstancePath,
) -> Result<Response, FhirError> {
    let access = caller.allow(Interaction::Read, resource_type)?;
    let headers = &caller.headers;
    if let Some(past) = caller.past {
        // The past is read from the event store: the cache holds the present only.
        let then = state
            .store
            .latest_at(resource_type.as_str(), id.as_str(), past.position)
            .await
            .map_err(FhirError::internal)?
            .map(version_of);
        let then = visible(&state, &caller, &access, resource_type, &id, then).await?;
        return respond(then, &resource_type, &id, None, headers);
    }
    if caller.sandbox.is_some() {
        // A sandbox is read from its streams: the cache holds the live record only.
        let latest = caller
            .store(&state)
            .latest(resource_type.as_str(), id.as_str())
            .await
            .map_err(FhirError::internal)?
            .map(version_of);
        let latest = visible(&state, &caller, &access, resource_type, &id, latest).await?;
        return respond(latest, &resource_type, &id, None, headers);
    }
    if let Some(cached) = state.cache.get(resource_type.as_str(), id.as_str()).await {
        let cached = visible(&state, &caller, &access, resource_type, &id, Some(cached)).await?;
        return respond(cached, &resource_type, &id, None, headers);
    }
    let latest = state
        .store
        .latest(resource_type.as_str(), id.as_str())
        .await
        .map_err(FhirError::internal)?
        .map(version_of);
    if let Some(latest) = &latest {
        state
            .cache
            .store_read(resource_type.as_str(), id.as_str(), latest)
            .await;
    }
    let latest = visible(&state, &caller, &access, resource_type, &id, latest).await?;
    respond(latest, &resource_type, &id, None, headers)
}

/// The version read, if the caller may see it; else nothing, so that the answer is the 404 of
/// a resource that does not exist (a bound token learns nothing of other patients' records).
async fn visible(
    state: &AppState,
    caller: &Caller,
    access: &Access,
    resource_type: ResourceType,
    id: &ResourceId,
    version: Option<CachedVersion>,
) -> Result<Option<CachedVersion>, FhirError> {
    let Some(version) = version else {
        return Ok(None);
    };
    if access.is_unbounded() || version.deleted {
        return Ok(Some(version));
    }
    let resource: Value = serde_json::from_str(&version.resource).map_err(FhirError::internal)?;
    if !caller.sees(
        state,
        access,
        resource_type.as_str(),
        id.as_str(),
        &resource,
    ) {
        return Ok(None);
    }
    if !access.restrictions.is_empty()
        && !matches_restrictions(state, caller, resource_type, id).await?
    {
        return Ok(None);
    }
    Ok(Some(version))
}

/// Whether the current version of `id` matches the token's search restrictions: a search for
/// that one id with them.
async fn matches_restrictions(
    state: &AppState,
    caller: &Caller,
    resource_type: ResourceType,
    id: &ResourceId,
) -> Result<bool, FhirError> {
    let types = vec![resource_type.as_str().to_owned()];
    let mut params = vec![
        ("_id".to_owned(), id.as_str().to_owned()),
        ("_summary".to_owned(), "count".to_owned()),
    ];
    let compartment = caller.bound_search(&types, &mut params)?;
    let request = Request {
        base: state.fhir_base(caller),
        path: resource_type.as_str().to_owned(),
        params,
        strict: false,
        compartment,
        client: caller.client.clone(),
        view: caller.view(),
        record: caller.record(),
    };
    let query = state.searcher.parse(types, &request)?;
    let bundle = state.searcher.search(&query, &request).await?;
    Ok(bundle.get("total").and_then(Value::as_u64).unwrap_or(0) > 0)
}

fn version_of(event: StoredEvent) -> CachedVersion {
    CachedVersion {
        version: event.version,
        recorded_at: event.recorded_at,
        deleted: event.is_delete(),
        resource: event.resource,
    }
}

pub(crate) async fn vread(
    State(state): State<AppState>,
    caller: Caller,
    VersionPath(resource_type, id, version_text): VersionPath,
) -> Result<Response, FhirError> {
    let access = caller.allow(Interaction::Vread, resource_type)?;
    let version: i32 = version_text
        .parse()
        .ok()
        .filter(|version| *version > 0)
        .ok_or_else(|| {
            FhirError::new(
                StatusCode::NOT_FOUND,
                IssueCode::NotFound,
                format!("'{version_text}' is not a version of {resource_type}/{id}"),
            )
        })?;
    let event = caller
        .store(&state)
        .version(resource_type.as_str(), id.as_str(), version)
        .await
        .map_err(FhirError::internal)?
        .filter(|event| {
            // A version written after the past asked for did not exist then.
            caller
                .past
                .is_none_or(|past| event.position.is_some_and(|at| at <= past.position))
        })
        .map(version_of);
    let event = visible(&state, &caller, &access, resource_type, &id, event).await?;
    respond(event, &resource_type, &id, Some(version), &caller.headers)
}

fn respond(
    event: Option<CachedVersion>,
    resource_type: &ResourceType,
    id: &ResourceId,
    version: Option<i32>,
    request: &HeaderMap,
) -> Result<Response, FhirError> {
    let what = match version {
        Some(version) => format!("{resource_type}/{id}/_history/{version}"),
        None => format!("{resource_type}/{id}"),
    };
    let Some(event) = event else {
        return Err(FhirError::new(
            StatusCode::NOT_FOUND,
            IssueCode::NotFound,
            format!("{what} is not known"),
        ));
    };
    if event.deleted {
        let mut response = FhirError::new(
            StatusCode::GONE,
            IssueCode::Deleted,
            format!("{what} was deleted (version {})", event.version),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::ETAG, etag(event.version));
        response
            .headers_mut()
            .insert(header::LAST_MODIFIED, http_date(event.recorded_at));
        return Ok(response);
    }
    if not_modified(request, event.version, event.recorded_at) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response
            .headers_mut()
            .insert(header::ETAG, etag(event.version));
        response
            .headers_mut()
            .insert(header::LAST_MODIFIED, http_date(event.recorded_at));
        return Ok(response);
    }
    let mut response = fhir_json(StatusCode::OK, event.resource);
    response
        .headers_mut()
        .insert(header::ETAG, etag(event.version));
    response
        .headers_mut()
        .insert(header::LAST_MODIFIED, http_date(event.recorded_at));
    Ok(response)
}

/// Whether the client's copy is current: `If-None-Match` names this version (or `*`), or,
/// without `If-None-Match`, `If-Modified-Since` is not before the version's time (HTTP dates
/// have whole seconds).
fn not_modified(
    request: &HeaderMap,
    version: i32,
    recorded_at: chrono::DateTime<chrono::Utc>,
) -> bool {
    if let Some(tags) = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
    {
        return tags.split(',').any(|tag| {
            tag.trim() == "*"
                || parse_version_tag(tag)
                    .is_some_and(|tagged| i64::from(tagged) == i64::from(version))
        });
    }
    request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| chrono::DateTime::parse_from_rfc2822(value).ok())
        .is_some_and(|since| recorded_at.timestamp() <= since.timestamp())
}
