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
//! - `GET /teaching/scenarios`: every scenario version's manifest; `GET /teaching/scenarios/<name>`
//!   (`?version=n`, else the newest): its portable file (NDJSON); `POST /teaching/scenarios`
//!   with a file: imported, checked whole first (the first problem is a 400 naming its line, and
//!   nothing is kept); `POST /teaching/scenarios/record` with `{"name", "patients", "from",
//!   "to"?, "title"?, "description"?}`: recorded from the live record (`from`/`to` as `start`
//!   is), as the name's next version.
//! - A sandbox may start as a scenario (`"start": {"scenario": "<name>", "version"?: n}`): it
//!   forks from nothing and its scenario's starting state is written in. Then
//!   `POST /teaching/sandboxes/<name>/play` (`{"speed"?: 1..3600}`: starts from the scenario's
//!   start, or resumes, or changes the speed), `/pause`, `/seek` (`{"offsetMs"}`), `/stop`, and
//!   `GET .../play` (the scenario clock) control its play (`scenario::player`).
//!
//! Everything but reading needs the policy's `authorize_teaching` (instructors, admins, backend
//! services). Creating and resetting a sandbox cost one row, nothing of the record is copied
//! (a scenario's sandbox also gets its starting state written); the index rows of a run that
//! ended are dropped by the projection service afterwards.

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
use crate::scenario::player::{self, Control, PlayError};
use crate::scenario::{self, Scenario};

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/teaching/sandboxes", get(list).post(create))
        .route("/teaching/sandboxes/{name}", get(one).delete(delete))
        .route("/teaching/sandboxes/{name}/reset", post(reset))
        .route(
            "/teaching/sandboxes/{name}/play",
            get(play_status).post(play),
        )
        .route("/teaching/sandboxes/{name}/pause", post(pause))
        .route("/teaching/sandboxes/{name}/seek", post(seek))
        .route("/teaching/sandboxes/{name}/stop", post(stop))
        .route(
            "/teaching/scenarios",
            get(list_scenarios).post(import_scenario),
        )
        .route("/teaching/scenarios/record", post(record_scenario))
        .route("/teaching/scenarios/{name}", get(export_scenario))
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
    /// A scenario's starting state instead of the live record.
    #[serde(default)]
    scenario: Option<String>,
    #[serde(default)]
    version: Option<i32>,
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
    let scenario = match request.start.as_ref() {
        Some(Start {
            scenario: Some(name),
            position: None,
            instant: None,
            version,
        }) => Some(load_scenario(&state, name, *version).await?),
        Some(Start {
            scenario: Some(_), ..
        }) => {
            return Err(invalid(
                "start names a scenario, or a position or an instant of the live record".to_owned(),
            ));
        }
        Some(Start {
            scenario: None,
            version: Some(_),
            ..
        }) => return Err(invalid("start.version goes with start.scenario".to_owned())),
        _ => None,
    };
    let fork_position = match &scenario {
        // A scenario's sandbox starts from nothing but the scenario.
        Some(_) => 0,
        None => start_position(&state, request.start.as_ref()).await?,
    };
    let new = NewSandbox {
        name: request.name,
        class: request.class,
        description: request.description,
        fork_position,
        created_by: principal.subject.clone(),
        scenario: scenario
            .as_ref()
            .map(|scenario| (scenario.manifest.name.clone(), scenario.manifest.version)),
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
    if let Some(scenario) = &scenario {
        let shift = player::shift_to_now(scenario);
        if let Err(error) =
            player::write_start(&state, &sandbox, scenario, shift, &principal.subject).await
        {
            // Nothing half-made stays behind.
            let _ = sandbox::delete(state.store.pool(), &sandbox.name).await;
            return Err(play_error(error));
        }
    }
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
    state.players.forget(&name).await;
    let (sandbox, ended) = sandbox::reset(state.store.pool(), &name)
        .await
        .map_err(FhirError::internal)?
        .ok_or_else(|| service_kit::sandbox_path::unknown_sandbox(&name))?;
    if let Some(scenario_name) = &sandbox.scenario_name {
        let scenario = load_scenario(&state, scenario_name, sandbox.scenario_version).await?;
        let shift = player::shift_to_now(&scenario);
        player::write_start(&state, &sandbox, &scenario, shift, &principal.subject)
            .await
            .map_err(play_error)?;
    }
    tracing::info!(sandbox = %sandbox.name, ended, by = %principal.subject, "sandbox reset");
    Ok(Json(describe(&state, &headers, &sandbox)).into_response())
}

async fn delete(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> Result<Response, FhirError> {
    access_policy::authorize_teaching(&principal).map_err(|denied| forbidden(&denied))?;
    state.players.forget(&name).await;
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
            ..
        }) => Ok(head),
        Some(Start {
            position: Some(position),
            instant: None,
            ..
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
            ..
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
        "scenario": sandbox.scenario_name.as_ref().map(|name| json!({
            "name": name,
            "version": sandbox.scenario_version,
        })),
        "play": state.players.status(&sandbox.name),
    })
}

/// How a play is asked for.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PlayRequest {
    #[serde(default)]
    speed: Option<f64>,
    #[serde(default)]
    offset_ms: Option<i64>,
}

/// A teaching request's JSON body (an absent body is an empty object).
fn body_of<T: serde::de::DeserializeOwned + Default>(body: &str) -> Result<T, FhirError> {
    if body.trim().is_empty() {
        return Ok(T::default());
    }
    let value: Value = serde_json::from_str(body)
        .map_err(|error| invalid(format!("the body is not JSON: {error}")))?;
    if !value.is_object() {
        return Err(invalid("the body is a JSON object".to_owned()));
    }
    serde_json::from_value(value).map_err(|error| invalid(error.to_string()))
}

async fn play(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    body: String,
) -> Result<Response, FhirError> {
    access_policy::authorize_teaching(&principal).map_err(|denied| forbidden(&denied))?;
    let sandbox = find(&state, &name).await?;
    let request: PlayRequest = body_of(&body)?;
    let current = state.players.status(&name);
    let playing = current.as_ref().is_some_and(|status| {
        status.state == player::PlayState::Playing || status.state == player::PlayState::Paused
    });
    // Without a speed, a play resumes at the speed it had; a new one starts at 1x.
    let speed = request
        .speed
        .or_else(|| current.filter(|_| playing).map(|status| status.speed))
        .unwrap_or(1.0);
    if !(1.0..=player::MAX_SPEED).contains(&speed) {
        return Err(play_error(PlayError::Speed));
    }
    if !(playing && state.players.control(&name, Control::Play { speed }).await) {
        let scenario_name = sandbox
            .scenario_name
            .clone()
            .ok_or_else(|| play_error(PlayError::NoScenario(name.clone())))?;
        let scenario = load_scenario(&state, &scenario_name, sandbox.scenario_version).await?;
        state.players.start(
            &state,
            sandbox,
            std::sync::Arc::new(scenario),
            speed,
            &principal.subject,
        );
    }
    play_status_now(&state, &name)
}

async fn pause(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> Result<Response, FhirError> {
    control(&state, &principal, &name, Control::Pause).await
}

async fn stop(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> Result<Response, FhirError> {
    control(&state, &principal, &name, Control::Stop).await
}

async fn seek(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    body: String,
) -> Result<Response, FhirError> {
    access_policy::authorize_teaching(&principal).map_err(|denied| forbidden(&denied))?;
    let request: PlayRequest = body_of(&body)?;
    let offset_ms = request
        .offset_ms
        .filter(|offset| *offset >= 0)
        .ok_or_else(|| invalid("seek takes {\"offsetMs\": n}, n ≥ 0".to_owned()))?;
    control(&state, &principal, &name, Control::Seek { offset_ms }).await
}

async fn control(
    state: &AppState,
    principal: &access_policy::Principal,
    name: &str,
    control: Control,
) -> Result<Response, FhirError> {
    access_policy::authorize_teaching(principal).map_err(|denied| forbidden(&denied))?;
    if !state.players.control(name, control).await {
        return Err(play_error(PlayError::NotPlaying(name.to_owned())));
    }
    play_status_now(state, name)
}

async fn play_status(
    State(state): State<AppState>,
    Caller(_): Caller,
    Path(name): Path<String>,
) -> Result<Response, FhirError> {
    find(&state, &name).await?;
    play_status_now(&state, &name)
}

fn play_status_now(state: &AppState, name: &str) -> Result<Response, FhirError> {
    let status = state
        .players
        .status(name)
        .ok_or_else(|| play_error(PlayError::NotPlaying(name.to_owned())))?;
    Ok(Json(status).into_response())
}

fn play_error(error: PlayError) -> FhirError {
    match error {
        PlayError::NotPlaying(_) => FhirError::new(
            StatusCode::NOT_FOUND,
            IssueCode::NotFound,
            error.to_string(),
        ),
        PlayError::NoScenario(_) => {
            FhirError::new(StatusCode::CONFLICT, IssueCode::Conflict, error.to_string())
        }
        PlayError::Speed | PlayError::Scenario(_) => invalid(error.to_string()),
        PlayError::Write(_) => FhirError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            IssueCode::Processing,
            error.to_string(),
        ),
        PlayError::Database(error) => FhirError::internal(error),
    }
}

/// A stored scenario, read back.
async fn load_scenario(
    state: &AppState,
    name: &str,
    version: Option<i32>,
) -> Result<Scenario, FhirError> {
    let (_, body) = scenario::store::file(state.store.pool(), name, version)
        .await
        .map_err(FhirError::internal)?
        .ok_or_else(|| unknown_scenario(name, version))?;
    Scenario::parse(&body).map_err(|error| FhirError::internal(format!("stored scenario: {error}")))
}

fn unknown_scenario(name: &str, version: Option<i32>) -> FhirError {
    let what = match version {
        Some(version) => format!("version {version} of the scenario `{name}`"),
        None => format!("scenario `{name}`"),
    };
    FhirError::new(
        StatusCode::NOT_FOUND,
        IssueCode::NotFound,
        format!("there is no {what} (GET /teaching/scenarios lists them)"),
    )
}

async fn list_scenarios(
    State(state): State<AppState>,
    Caller(_): Caller,
) -> Result<Response, FhirError> {
    let scenarios = scenario::store::list(state.store.pool())
        .await
        .map_err(FhirError::internal)?;
    Ok(Json(json!({ "scenarios": scenarios })).into_response())
}

#[derive(Debug, Deserialize)]
struct VersionQuery {
    version: Option<i32>,
}

async fn export_scenario(
    State(state): State<AppState>,
    Caller(_): Caller,
    Path(name): Path<String>,
    axum::extract::Query(query): axum::extract::Query<VersionQuery>,
) -> Result<Response, FhirError> {
    let (version, body) = scenario::store::file(state.store.pool(), &name, query.version)
        .await
        .map_err(FhirError::internal)?
        .ok_or_else(|| unknown_scenario(&name, query.version))?;
    let disposition = format!("attachment; filename=\"{name}-v{version}.ndjson\"");
    let mut response = ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response();
    if let Ok(value) = disposition.parse() {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

async fn import_scenario(
    State(state): State<AppState>,
    Caller(principal): Caller,
    body: String,
) -> Result<Response, FhirError> {
    access_policy::authorize_teaching(&principal).map_err(|denied| forbidden(&denied))?;
    let scenario = Scenario::parse(&body).map_err(|error| {
        invalid(format!(
            "the scenario file is refused, nothing was imported: {error}"
        ))
    })?;
    keep_scenario(&state, &principal, &scenario, &body).await
}

/// A recording, as posted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordRequest {
    name: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    patients: Vec<String>,
    from: Start,
    #[serde(default)]
    to: Option<Start>,
    /// A sandbox to record from instead of the live record.
    #[serde(default)]
    sandbox: Option<String>,
}

async fn record_scenario(
    State(state): State<AppState>,
    Caller(principal): Caller,
    body: String,
) -> Result<Response, FhirError> {
    access_policy::authorize_teaching(&principal).map_err(|denied| forbidden(&denied))?;
    let value: Value = serde_json::from_str(&body)
        .map_err(|error| invalid(format!("the body is not JSON: {error}")))?;
    if !value.is_object() {
        return Err(invalid("the body is a JSON object".to_owned()));
    }
    let request: RecordRequest =
        serde_json::from_value(value).map_err(|error| invalid(error.to_string()))?;
    if !sandbox::valid_name(&request.name) {
        return Err(invalid(format!(
            "`{}` is not a scenario name: 1 to 63 lower-case letters, digits and `-`",
            request.name
        )));
    }
    if request.patients.is_empty() {
        return Err(invalid(
            "a scenario's cohort names at least one patient".to_owned(),
        ));
    }
    let sandbox = match &request.sandbox {
        Some(name) => Some(find(&state, name).await?),
        None => None,
    };
    let from = start_position(&state, Some(&request.from)).await?;
    let to = start_position(&state, request.to.as_ref()).await?;
    if to < from {
        return Err(invalid(format!(
            "the window ends (position {to}) before it starts (position {from})"
        )));
    }
    // A position's instant is its event's; position 0 (before anything) is the first event's.
    let instant_of = |position: i64| {
        let store = state.store.clone();
        async move {
            let event = match store.event_at(position).await? {
                Some(event) => Some(event),
                None => store.read_feed(position, 1).await?.pop(),
            };
            Ok::<_, event_store::StoreError>(
                event.map_or_else(chrono::Utc::now, |event| event.recorded_at),
            )
        }
    };
    let window_start = match &request.from.instant {
        Some(instant) => parse_instant(instant)?,
        None => instant_of(from).await.map_err(FhirError::internal)?,
    };
    let window_end = match request.to.as_ref().and_then(|to| to.instant.as_ref()) {
        Some(instant) => parse_instant(instant)?,
        None => instant_of(to).await.map_err(FhirError::internal)?,
    };
    // The starting state is read from the index of the past: it must have reached the window.
    state.matcher.wait_for_index(to).await.map_err(|not_yet| {
        FhirError::new(StatusCode::SERVICE_UNAVAILABLE, IssueCode::Timeout, not_yet)
    })?;
    let source = match &sandbox {
        Some(sandbox) => state.store.within(sandbox.record()),
        None => state.store.clone(),
    };
    for patient in &request.patients {
        let known = source
            .latest_at("Patient", patient, to)
            .await
            .map_err(FhirError::internal)?
            .is_some_and(|event| !event.is_delete());
        if !known {
            return Err(invalid(format!(
                "Patient/{patient} is not in the record by the window's end (position {to})"
            )));
        }
    }
    let version = scenario::store::newest_version(state.store.pool(), &request.name)
        .await
        .map_err(FhirError::internal)?
        .unwrap_or(0)
        + 1;
    let recording = scenario::record::Recording {
        name: request.name,
        version,
        title: request.title,
        description: request.description,
        patients: request.patients,
        from,
        to,
        window_start,
        window_end: window_end.max(window_start),
        sandbox,
    };
    let extract = fhir_search::extract::ExtractOptions {
        base_url: Some(state.settings.reference_base_url.clone()),
    };
    let scenario = scenario::record::record(&state.store, &extract, &recording)
        .await
        .map_err(FhirError::internal)?;
    let body = scenario.render();
    keep_scenario(&state, &principal, &scenario, &body).await
}

fn parse_instant(text: &str) -> Result<chrono::DateTime<Utc>, FhirError> {
    DateValue::parse(text)
        .map(|span| span.low)
        .map_err(|_| invalid(format!("`{text}` is not an instant as in _lastUpdated")))
}

async fn keep_scenario(
    state: &AppState,
    principal: &access_policy::Principal,
    scenario: &Scenario,
    body: &str,
) -> Result<Response, FhirError> {
    let kept = scenario::store::insert(state.store.pool(), scenario, body, &principal.subject)
        .await
        .map_err(FhirError::internal)?;
    if !kept {
        return Err(FhirError::new(
            StatusCode::CONFLICT,
            IssueCode::Duplicate,
            format!(
                "version {} of the scenario `{}` exists already: give the file another version",
                scenario.manifest.version, scenario.manifest.name
            ),
        ));
    }
    let mut manifest = scenario.manifest.to_json();
    manifest["counts"] = json!({"start": scenario.start.len(), "events": scenario.events.len()});
    Ok((StatusCode::CREATED, Json(manifest)).into_response())
}

fn invalid(message: String) -> FhirError {
    FhirError::new(StatusCode::BAD_REQUEST, IssueCode::Invalid, message)
}
