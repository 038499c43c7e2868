//! `GET /fhir/<Type>/<id>` (read, through the Redis read cache) and
//! `GET /fhir/<Type>/<id>/_history/<vid>` (vread), from the event store: the stored text of the
//! version is the body, byte for byte. `HEAD` answers the
//! same headers without the body (axum derives it from `GET`), and `If-None-Match` /
//! `If-Modified-Since` give `304 Not Modified` when the client's copy is current.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use event_store::{EventStore, StoredEvent};
use service_kit::resource_cache::CachedVersion;

use super::AppState;
use crate::error::{InstancePath, VersionPath};
use fhir_model::{IssueCode, ResourceId, ResourceType};
use service_kit::fhir_response::{FhirError, etag, fhir_json, http_date, parse_version_tag};

/// Read: from the Redis cache when it holds the resource, else from the event store (and the
/// cache is given what was read, unless it meanwhile holds a newer version).
pub(crate) async fn read(
    State(state): State<AppState>,
    InstancePath(resource_type, id): InstancePath,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    if let Some(cached) = state.cache.get(resource_type.as_str(), id.as_str()).await {
        return respond(Some(cached), &resource_type, &id, None, &headers);
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
    respond(latest, &resource_type, &id, None, &headers)
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
    State(store): State<EventStore>,
    VersionPath(resource_type, id, version_text): VersionPath,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
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
    let event = store
        .version(resource_type.as_str(), id.as_str(), version)
        .await
        .map_err(FhirError::internal)?
        .map(version_of);
    respond(event, &resource_type, &id, Some(version), &headers)
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
