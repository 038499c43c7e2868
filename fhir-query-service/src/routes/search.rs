//! Search endpoints: `GET /fhir/<Type>?...`, `POST /fhir/<Type>/_search` (form body), the
//! system-wide `GET|POST /fhir?_type=...`, and later pages (`GET /fhir?_getpages=...`).

use access_policy::Interaction;
use axum::extract::rejection::StringRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use fhir_model::{IssueCode, ResourceType};
use serde_json::Value;
use service_kit::fhir_response::{EVENT_POSITION_HEADER, FhirError, fhir_json};
use uuid::Uuid;

use super::AppState;
use crate::access::Caller;
use crate::error::TypePath;
use crate::search::session::QUERY_CANCELED;
use crate::search::{PageRequest, Request, SearchError, system_types};
use fhir_search::compartment::PatientCompartment;

/// Maps a search failure to its response, in one place.
impl From<SearchError> for FhirError {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::Invalid(message) | SearchError::Strict(message) => {
                FhirError::new(StatusCode::BAD_REQUEST, IssueCode::Invalid, message)
            }
            SearchError::TooCostly(message) => {
                FhirError::new(StatusCode::BAD_REQUEST, IssueCode::TooCostly, message)
            }
            // The statement timeout (or a cancel): the search, not the server, is at fault, but
            // the same search may pass on a quieter server, so 503 rather than 400.
            SearchError::Database(sqlx::Error::Database(error))
                if error.code().as_deref() == Some(QUERY_CANCELED) =>
            {
                FhirError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    IssueCode::Timeout,
                    "the search ran longer than this server's statement timeout and was \
                     stopped: narrow it (fewer criteria, no :contains, a smaller _count)",
                )
            }
            SearchError::UnknownPage(_) | SearchError::StalePage(_) => {
                FhirError::new(StatusCode::GONE, IssueCode::NotFound, error.to_string())
            }
            SearchError::Database(error) => FhirError::internal(error),
            SearchError::Stored(error) => FhirError::internal(error),
        }
    }
}

pub(crate) async fn type_get(
    State(state): State<AppState>,
    TypePath(resource_type): TypePath,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, FhirError> {
    let params = decode(query.as_deref().unwrap_or_default());
    type_search(state, resource_type, &caller, params).await
}

pub(crate) async fn type_post(
    State(state): State<AppState>,
    TypePath(resource_type): TypePath,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Result<String, StringRejection>,
) -> Result<Response, FhirError> {
    let mut params = decode(query.as_deref().unwrap_or_default());
    params.extend(form_body(&caller.headers, body)?);
    type_search(state, resource_type, &caller, params).await
}

pub(crate) async fn system_get(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, FhirError> {
    let params = decode(query.as_deref().unwrap_or_default());
    system_search(state, &caller, params).await
}

pub(crate) async fn system_post(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Result<String, StringRejection>,
) -> Result<Response, FhirError> {
    let mut params = decode(query.as_deref().unwrap_or_default());
    params.extend(form_body(&caller.headers, body)?);
    system_search(state, &caller, params).await
}

/// `GET /fhir/Patient/<id>/<Type>?...` (compartment search),
/// `GET /fhir/Patient/<id>/$everything`, and any resource's `$diff` and `$timeline`
/// (`versions`).
pub(crate) async fn compartment_get(
    State(state): State<AppState>,
    Path((compartment_type, id, target)): Path<(String, String, String)>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, FhirError> {
    if target == "$diff" || target == "$timeline" {
        let resource_type = crate::error::resource_type(&compartment_type)?;
        let id = crate::error::resource_id(&id)?;
        if target == "$diff" {
            let params = decode(query.as_deref().unwrap_or_default());
            return super::versions::diff(&state, &caller, resource_type, &id, &params).await;
        }
        return super::versions::timeline(&state, &caller, resource_type, &id).await;
    }
    if compartment_type != "Patient" {
        return Err(FhirError::new(
            StatusCode::NOT_FOUND,
            IssueCode::NotSupported,
            format!("/{compartment_type}/{id}/{target}: only the Patient compartment is served"),
        ));
    }
    let id = crate::error::resource_id(&id)?;
    let mut params = decode(query.as_deref().unwrap_or_default());
    if target == "$everything" {
        return everything(state, id.as_str(), &caller, params).await;
    }
    let resource_type = crate::error::resource_type(&target)?;
    let types = vec![resource_type.as_str().to_owned()];
    if let Some(bound) = caller.bound_search(&types, &mut params)?
        && bound.patient_id != id.as_str()
    {
        return Err(outside_patient(&bound.patient_id));
    }
    let compartment = PatientCompartment::for_types(id.as_str(), &types, true);
    if compartment.links.is_empty() && resource_type.as_str() != "Patient" {
        return Err(FhirError::new(
            StatusCode::BAD_REQUEST,
            IssueCode::Invalid,
            format!("{resource_type} is not in the Patient compartment"),
        ));
    }
    let path = format!("Patient/{id}/{resource_type}");
    let mut request = request(&state, &caller, path, params);
    request.compartment = Some(compartment);
    let query = state.searcher.parse(types, &request)?;
    wait_for_writes(&state, &caller.headers).await?;
    let mut bundle = state.searcher.search(&query, &request).await?;
    caller.filter_bundle(&state, &mut bundle, true);
    Ok(respond(&bundle))
}

/// A patient-bound token asked about another patient.
fn outside_patient(patient: &str) -> FhirError {
    FhirError::new(
        StatusCode::FORBIDDEN,
        IssueCode::Forbidden,
        format!(
            "the token is bound to Patient/{patient} and may not read another patient's record"
        ),
    )
}

/// `Patient/<id>/$everything`: the patient, everything in its compartment (of the `_type`s
/// asked for, changed since `_since`), and what those resources refer to, paged by `_count`.
async fn everything(
    state: AppState,
    id: &str,
    caller: &Caller,
    params: Vec<(String, String)>,
) -> Result<Response, FhirError> {
    let mut types: Vec<String> = Vec::new();
    let mut query_params = vec![("_include".to_owned(), "*".to_owned())];
    for (name, value) in &params {
        match name.as_str() {
            "_type" => types.extend(system_types(&[(name.clone(), value.clone())])?),
            "_since" => query_params.push(("_lastUpdated".to_owned(), format!("ge{value}"))),
            "_count" => query_params.push((name.clone(), value.clone())),
            "_format" | "_pretty" => {}
            other => {
                return Err(FhirError::new(
                    StatusCode::BAD_REQUEST,
                    IssueCode::Invalid,
                    format!("`{other}` is not a parameter of $everything (_since, _type, _count)"),
                ));
            }
        }
    }
    if types.is_empty() {
        types = fhir_search::compartment::patient_compartment()
            .keys()
            .cloned()
            .chain(["Patient".to_owned()])
            .collect();
    }
    // What the caller may not search is left out, not refused: $everything is what they may see.
    let mut bound: Option<String> = None;
    types.retain(|name| {
        ResourceType::parse(name)
            .ok()
            .and_then(|resource_type| caller.allow(Interaction::Search, resource_type).ok())
            .is_some_and(|access| {
                bound = bound.take().or(access.patient);
                access.restrictions.is_empty()
            })
    });
    if let Some(bound) = bound.filter(|bound| bound.as_str() != id) {
        return Err(outside_patient(&bound));
    }
    if types.is_empty() {
        return Err(FhirError::new(
            StatusCode::FORBIDDEN,
            IssueCode::Forbidden,
            "the token's scopes allow no resource type of the patient's record",
        ));
    }
    let include_patient = types.iter().any(|t| t == "Patient");
    let compartment = PatientCompartment::for_types(id, &types, include_patient);
    let mut request = request(
        &state,
        caller,
        format!("Patient/{id}/$everything"),
        query_params,
    );
    request.compartment = Some(compartment);
    let query = state.searcher.parse(types, &request)?;
    wait_for_writes(&state, &caller.headers).await?;
    let mut bundle = state.searcher.search(&query, &request).await?;
    caller.filter_bundle(&state, &mut bundle, true);
    Ok(respond(&bundle))
}

async fn type_search(
    state: AppState,
    resource_type: ResourceType,
    caller: &Caller,
    mut params: Vec<(String, String)>,
) -> Result<Response, FhirError> {
    let types = vec![resource_type.as_str().to_owned()];
    let compartment = caller.bound_search(&types, &mut params)?;
    let mut request = request(&state, caller, resource_type.as_str().to_owned(), params);
    request.compartment = compartment;
    let query = state.searcher.parse(types, &request)?;
    wait_for_writes(&state, &caller.headers).await?;
    let mut bundle = state.searcher.search(&query, &request).await?;
    caller.filter_bundle(&state, &mut bundle, true);
    Ok(respond(&bundle))
}

async fn system_search(
    state: AppState,
    caller: &Caller,
    mut params: Vec<(String, String)>,
) -> Result<Response, FhirError> {
    let base = state.fhir_base(caller);
    if let Some(page) = page_request(&params)? {
        let mut bundle = state
            .searcher
            .page(&page, &base, caller.view(), caller.record())
            .await?;
        caller.filter_bundle(&state, &mut bundle, false);
        return Ok(respond(&bundle));
    }
    let mut types = system_types(&params)?;
    if !params.iter().any(|(name, _)| name == "_type") {
        // Searching "everything" means everything the caller may search.
        types.retain(|name| {
            ResourceType::parse(name)
                .ok()
                .and_then(|resource_type| caller.allow(Interaction::Search, resource_type).ok())
                .is_some_and(|access| access.restrictions.is_empty())
        });
    }
    let compartment = caller.bound_search(&types, &mut params)?;
    let mut request = request(&state, caller, String::new(), params);
    request.compartment = compartment;
    let query = state.searcher.parse(types, &request)?;
    wait_for_writes(&state, &caller.headers).await?;
    let mut bundle = state.searcher.search(&query, &request).await?;
    caller.filter_bundle(&state, &mut bundle, true);
    Ok(respond(&bundle))
}

fn page_request(params: &[(String, String)]) -> Result<Option<PageRequest>, FhirError> {
    let get = |wanted: &str| {
        params
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.as_str())
    };
    let Some(id) = get("_getpages") else {
        return Ok(None);
    };
    let invalid = |what: &str| {
        FhirError::new(
            StatusCode::BAD_REQUEST,
            IssueCode::Invalid,
            format!("{what} is not valid in a page link"),
        )
    };
    let id = Uuid::parse_str(id).map_err(|_| invalid("_getpages"))?;
    let offset = match get("_getpagesoffset") {
        Some(offset) => offset.parse().map_err(|_| invalid("_getpagesoffset"))?,
        None => 0,
    };
    let count = match get("_count") {
        Some(count) => Some(count.parse().map_err(|_| invalid("_count"))?),
        None => None,
    };
    Ok(Some(PageRequest { id, offset, count }))
}

fn request(
    state: &AppState,
    caller: &Caller,
    path: String,
    params: Vec<(String, String)>,
) -> Request {
    Request {
        base: state.fhir_base(caller),
        path,
        params,
        strict: prefers_strict(&caller.headers),
        compartment: None,
        client: caller.client.clone(),
        view: caller.view(),
        record: caller.record(),
    }
}

/// `Prefer: handling=strict` (lenient is the default, as in HAPI).
pub(super) fn prefers_strict(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split([',', ';']))
        .any(|part| part.trim().eq_ignore_ascii_case("handling=strict"))
}

/// Waits for the projections to reach the position the client presents, if any.
async fn wait_for_writes(state: &AppState, headers: &HeaderMap) -> Result<(), FhirError> {
    let Some(value) = headers.get(EVENT_POSITION_HEADER) else {
        return Ok(());
    };
    let position: i64 = value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| {
            FhirError::new(
                StatusCode::BAD_REQUEST,
                IssueCode::Invalid,
                format!("{EVENT_POSITION_HEADER} must be a position as a write returned it"),
            )
        })?;
    super::wait_for_index(state, position).await
}

fn decode(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// The parameters of a `_search` form body. A body over axum's limit (2 MiB) or not UTF-8 is
/// refused here as an OperationOutcome, not with axum's plain-text rejection.
fn form_body(
    headers: &HeaderMap,
    body: Result<String, StringRejection>,
) -> Result<Vec<(String, String)>, FhirError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            IssueCode::TooLong
        } else {
            IssueCode::Invalid
        };
        FhirError::new(
            status,
            code,
            format!(
                "the _search form body cannot be read: {}",
                rejection.body_text()
            ),
        )
    })?;
    let content_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !body.is_empty() && !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(FhirError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueCode::NotSupported,
            "_search takes its parameters as application/x-www-form-urlencoded",
        ));
    }
    Ok(decode(&body))
}

/// The Bundle (`_pretty` is applied by the format middleware).
fn respond(bundle: &Value) -> Response {
    fhir_json(StatusCode::OK, bundle.to_string())
}
