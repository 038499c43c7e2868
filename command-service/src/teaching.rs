//! `/teaching/sandboxes`: creating, listing, resetting and deleting teaching sandboxes
//! (ADR 0014).
//!
//! - `GET /teaching/sandboxes`: every sandbox (any signed-in caller: names, classes and starts
//!   are not clinical data).
//! - `POST /teaching/sandboxes` with `{"name", "class"?, "description"?, "start"?}`: a new
//!   sandbox forked from the live record at `start` (`{"position": n}` or
//!   `{"instant": "2026-12-01T02:00:00Z"}`; the present when absent). 201.
//! - `GET /teaching/sandboxes/<name>`, `DELETE /teaching/sandboxes/<name>` (204), and
//!   `POST /teaching/sandboxes/<name>/reset`: back to its start, whatever it wrote.
//!
//! Creating, resetting and deleting need the policy's `authorize_teaching` (instructors,
//! admins, backend services). Each costs one row: nothing of the record is copied. The index
//! rows of a run that ended are dropped by the projection service afterwards.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use event_store::sandbox::{self, NewSandbox, Sandbox, SandboxError};
use fhir_model::IssueCode;
use fhir_search::query::DateValue;
use serde::Deserialize;
use serde_json::{Value, json};
use service_kit::auth::{Caller, forbidden};
use service_kit::fhir_response::FhirError;

use crate::AppState;

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/teaching/sandboxes", get(list).post(create))
        .route("/teaching/sandboxes/{name}", get(one).delete(delete))
        .route("/teaching/sandboxes/{name}/reset", post(reset))
        .with_state(state)
}

/// A new sandbox, as posted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSandboxRequest {
    name: String,
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    start: Option<Start>,
}

/// Where a sandbox starts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Start {
    #[serde(default)]
    position: Option<i64>,
    #[serde(default)]
    instant: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Caller(_): Caller,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let sandboxes = sandbox::list(state.store.pool())
        .await
        .map_err(FhirError::internal)?;
    let items: Vec<Value> = sandboxes
        .iter()
        .map(|sandbox| describe(&state, &headers, sandbox))
        .collect();
    Ok(Json(json!({ "sandboxes": items })).into_response())
}

async fn one(
    State(state): State<AppState>,
    Caller(_): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let sandbox = find(&state, &name).await?;
    Ok(Json(describe(&state, &headers, &sandbox)).into_response())
}

async fn create(
    State(state): State<AppState>,
    Caller(principal): Caller,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, FhirError> {
    access_policy::authorize_teaching(&principal).map_err(|denied| forbidden(&denied))?;
    let expected = "the body must be a JSON object like {\"name\": \"ward-7\", \"class\": \"demo\", \
                    \"start\": {\"position\": 1200}}";
    let Json(body) =
        body.map_err(|rejection| invalid(format!("{expected}: {}", rejection.body_text())))?;
    // Only an object: serde would also read a struct from an array of its fields.
    if !body.is_object() {
        return Err(invalid(expected.to_owned()));
    }
    let request: NewSandboxRequest =
        serde_json::from_value(body).map_err(|error| invalid(format!("{expected}: {error}")))?;
    if let Some(class) = &request.class
        && (class.is_empty() || class.chars().count() > 64)
    {
        return Err(invalid("a class name has 1 to 64 characters".to_owned()));
    }
    let fork_position = start_position(&state, request.start.as_ref()).await?;
    let new = NewSandbox {
        name: request.name,
        class: request.class,
        description: request.description,
        fork_position,
        created_by: principal.subject.clone(),
    };
    let sandbox = sandbox::create(state.store.pool(), &new)
        .await
        .map_err(|error| match error {
            SandboxError::Exists(_) => FhirError::new(
                StatusCode::CONFLICT,
                IssueCode::Duplicate,
                error.to_string(),
            ),
            SandboxError::InvalidName(_) => invalid(error.to_string()),
            SandboxError::Database(error) => FhirError::internal(error),
        })?;
    tracing::info!(sandbox = %sandbox.name, fork = sandbox.fork_position, by = %principal.subject, "sandbox created");
    let mut response = (
        StatusCode::CREATED,
        Json(describe(&state, &headers, &sandbox)),
    )
        .into_response();
    if let Ok(location) = format!("/teaching/sandboxes/{}", sandbox.name).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn reset(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    access_policy::authorize_teaching(&principal).map_err(|denied| forbidden(&denied))?;
    let (sandbox, ended) = sandbox::reset(state.store.pool(), &name)
        .await
        .map_err(FhirError::internal)?
        .ok_or_else(|| service_kit::sandbox_path::unknown_sandbox(&name))?;
    tracing::info!(sandbox = %sandbox.name, ended, by = %principal.subject, "sandbox reset");
    Ok(Json(describe(&state, &headers, &sandbox)).into_response())
}

async fn delete(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> Result<Response, FhirError> {
    access_policy::authorize_teaching(&principal).map_err(|denied| forbidden(&denied))?;
    let deleted = sandbox::delete(state.store.pool(), &name)
        .await
        .map_err(FhirError::internal)?
        .ok_or_else(|| service_kit::sandbox_path::unknown_sandbox(&name))?;
    tracing::info!(sandbox = %deleted.name, by = %principal.subject, "sandbox deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn find(state: &AppState, name: &str) -> Result<Sandbox, FhirError> {
    if !sandbox::valid_name(name) {
        return Err(service_kit::sandbox_path::unknown_sandbox(name));
    }
    sandbox::find(state.store.pool(), name)
        .await
        .map_err(FhirError::internal)?
        .ok_or_else(|| service_kit::sandbox_path::unknown_sandbox(name))
}

/// The live record's position a new sandbox starts from.
async fn start_position(state: &AppState, start: Option<&Start>) -> Result<i64, FhirError> {
    let head = state
        .store
        .head_position()
        .await
        .map_err(FhirError::internal)?;
    match start {
        None
        | Some(Start {
            position: None,
            instant: None,
        }) => Ok(head),
        Some(Start {
            position: Some(position),
            instant: None,
        }) => {
            if *position < 0 || *position > head {
                return Err(invalid(format!(
                    "start.position must be between 0 and the newest position ({head})"
                )));
            }
            Ok(*position)
        }
        Some(Start {
            position: None,
            instant: Some(instant),
        }) => {
            let span = DateValue::parse(instant).map_err(|_| {
                invalid(format!(
                    "start.instant `{instant}` is not an instant as in _lastUpdated"
                ))
            })?;
            if span.high > Utc::now() {
                return Err(invalid(format!(
                    "start.instant `{instant}` is in the future"
                )));
            }
            state
                .store
                .position_at(span.high)
                .await
                .map_err(FhirError::internal)
        }
        Some(_) => Err(invalid(
            "start names a position or an instant, not both".to_owned(),
        )),
    }
}

/// A sandbox as the API shows it: its FHIR base beside the live one.
fn describe(state: &AppState, headers: &HeaderMap, sandbox: &Sandbox) -> Value {
    let live = crate::response::base_url(&state.settings.public_url, headers);
    json!({
        "name": sandbox.name,
        "class": sandbox.class,
        "description": sandbox.description,
        "start": {"position": sandbox.fork_position},
        "fhirBase": service_kit::sandbox_path::sandbox_base(&live, &sandbox.name),
        "run": sandbox.partition,
        "createdBy": sandbox.created_by,
        "createdAt": fhir_model::format_instant(sandbox.created_at),
        "resetAt": sandbox.reset_at.map(fhir_model::format_instant),
    })
}

fn invalid(message: String) -> FhirError {
    FhirError::new(StatusCode::BAD_REQUEST, IssueCode::Invalid, message)
}
