//! `GET /auth/consent` shows what the application asks for (and the patient picker);
//! `POST /auth/consent` is the user's answer. Allowing starts the session and sends the browser
//! back to the application with a code; denying sends it back with `error=access_denied`.
//!
//! Both need the browser that signed in for this request (its sign-in cookie), and the POST
//! the anti-forgery token of the page.

use std::time::Duration;

use access_policy::ScopeSet;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use fhir_model::ResourceId;

use crate::AppState;
use crate::error::{Error, PageError};
use crate::ids::is_token;
use crate::pages::{ConsentPage, PatientChoice};
use crate::params::Params;
use crate::routes::authorize::{redirect_error, redirect_with};
use crate::routes::cookies;
use crate::scopes;
use crate::store::User;
use crate::transient::{CODE_TTL, CodeGrant, PendingRequest, Session, now};

/// `GET /auth/consent?request=<id>[&q=<name>]`.
pub async fn page(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let params = Params::parse(uri.query().unwrap_or_default().as_bytes())?;
    let (request_id, pending, user) = signed_in_request(&state, &params, &headers).await?;
    let search = params.get("q").map(str::trim).filter(|q| !q.is_empty());
    let mut results = Vec::new();
    let mut problem = None;
    if let Some(text) = search
        && needs_patient(&pending)
    {
        match state.picker.search(&state, text).await {
            Ok(found) => results = found,
            Err(error) => {
                tracing::warn!(%error, "patient search failed");
                problem = Some(
                    "The patient search is not available right now; enter the patient's id instead."
                        .to_owned(),
                );
            }
        }
    }
    render(
        &state,
        &request_id,
        &pending,
        &user,
        search,
        &results,
        problem.as_deref(),
        StatusCode::OK,
    )
    .await
}

/// `POST /auth/consent`: `decision=allow|deny`, and the chosen `patient` (or `patient_id`).
pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = Params::parse(&body)?;
    let (request_id, pending, user) = signed_in_request(&state, &params, &headers).await?;
    if !cookies::csrf_matches(&headers, params.get("csrf"), &pending.csrf) {
        return Err(Error::Forgery.into());
    }
    let allow = match params.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => {
            return Err(Error::InvalidRequest("decision must be allow or deny".to_owned()).into());
        }
    };
    let chosen = params
        .get("patient_id")
        .or_else(|| params.get("patient"))
        .map(str::trim)
        .filter(|id| !id.is_empty());
    let patient = if allow && needs_patient(&pending) {
        match chosen.map(ResourceId::parse) {
            Some(Ok(id)) => Some(id.as_str().to_owned()),
            Some(Err(_)) | None => {
                let problem = if chosen.is_some() {
                    "That is not a valid patient id."
                } else {
                    "Choose a patient first."
                };
                return render(
                    &state,
                    &request_id,
                    &pending,
                    &user,
                    None,
                    &[],
                    Some(problem),
                    StatusCode::BAD_REQUEST,
                )
                .await;
            }
        }
    } else {
        None
    };
    // The request is answered once: a second submission finds nothing.
    let pending = state
        .transient
        .take_request(&request_id)
        .await?
        .ok_or(Error::RequestExpired)?;
    if !allow {
        tracing::info!(user = %user.username, client = %pending.client_id, "consent denied");
        return Ok(redirect_error(
            &pending.redirect_uri,
            &Error::AccessDenied,
            pending.state.as_deref(),
        ));
    }
    if let Some(launch) = &pending.launch
        && launch.user != user.username
    {
        return Err(Error::InvalidRequest(
            "this launch was made by another user; launch again from the record".to_owned(),
        )
        .into());
    }
    let code = start(&state, &pending, &user, patient).await?;
    Ok(redirect_with(
        &pending.redirect_uri,
        &[("code", &code)],
        pending.state.as_deref(),
    ))
}

/// The pending request named by `request`, and its signed-in user, provided this browser is
/// the one that signed in for it.
async fn signed_in_request(
    state: &AppState,
    params: &Params,
    headers: &HeaderMap,
) -> Result<(String, PendingRequest, User), Error> {
    let request_id = params.require("request")?;
    if !is_token(request_id) {
        return Err(Error::RequestExpired);
    }
    let pending = state
        .transient
        .request(request_id)
        .await?
        .ok_or(Error::RequestExpired)?;
    let browser = cookies::get(headers, cookies::SIGN_IN);
    let (Some(username), Some(expected)) = (&pending.user, &pending.browser) else {
        return Err(Error::Forgery);
    };
    if !browser.is_some_and(|browser| cookies::same(browser, expected)) {
        return Err(Error::Forgery);
    }
    let user = state
        .store
        .user(username)
        .await?
        .ok_or(Error::RequestExpired)?;
    Ok((request_id.to_owned(), pending, user))
}

/// Whether the user must choose a patient: `launch/patient` asked, none in context.
fn needs_patient(pending: &PendingRequest) -> bool {
    pending.launch.is_none()
        && ScopeSet::parse(&pending.scope).is_ok_and(|scope| scope.has("launch/patient"))
}

#[allow(clippy::too_many_arguments)]
async fn render(
    state: &AppState,
    request_id: &str,
    pending: &PendingRequest,
    user: &User,
    search: Option<&str>,
    results: &[PatientChoice],
    problem: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let client_name = state
        .store
        .client(&pending.client_id)
        .await?
        .map(|client| client.name)
        .unwrap_or_else(|| pending.client_id.clone());
    let scope = ScopeSet::parse(&pending.scope).unwrap_or_default();
    let words = scope
        .resources
        .iter()
        .map(ToString::to_string)
        .chain(scope.others.iter().cloned())
        .map(|scope| scopes::describe(&scope))
        .collect();
    Ok(ConsentPage {
        request: request_id,
        csrf: &pending.csrf,
        client_name: &client_name,
        user: user.display_name.as_deref().unwrap_or(&user.username),
        scopes: words,
        pick_patient: needs_patient(pending),
        patient_in_context: pending
            .launch
            .as_ref()
            .map(|launch| launch.patient.as_str()),
        search,
        results,
        problem,
    }
    .render(status))
}

/// Starts the session of an allowed request and issues its code.
async fn start(
    state: &AppState,
    pending: &PendingRequest,
    user: &User,
    patient: Option<String>,
) -> Result<String, Error> {
    let scope =
        ScopeSet::parse(&pending.scope).map_err(|error| Error::InvalidScope(error.to_string()))?;
    let tokens = &state.settings.tokens;
    let lifetime = if scope.has("offline_access") {
        tokens.offline_refresh_token_ttl_secs
    } else if scope.has("online_access") {
        tokens.refresh_token_ttl_secs
    } else {
        tokens.access_token_ttl_secs
    };
    let created = now();
    let expires = created.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX));
    let (patient, encounter) = match &pending.launch {
        Some(launch) => (Some(launch.patient.clone()), launch.encounter.clone()),
        None => (patient, None),
    };
    let session = Session {
        user: user.username.clone(),
        role: Some(user.role),
        client: pending.client_id.clone(),
        scopes: pending.scope.clone(),
        patient,
        encounter,
        fhir_user: user.fhir_user.clone(),
        name: user.display_name.clone(),
        classes: user.classes.clone(),
        need_patient_banner: pending.launch.is_none(),
        aud: pending.aud.clone(),
        created,
        expires,
    };
    // Until the code is exchanged, the session lives only as long as the code (and a little).
    let sid = state
        .transient
        .start_session(&session, CODE_TTL + Duration::from_secs(30))
        .await?;
    let mut auth_time = created;
    if let Some(browser) = &pending.browser {
        state
            .transient
            .note_browser_session(browser, &sid, Duration::from_secs(lifetime))
            .await?;
        if let Some(sign_in) = state.transient.browser(browser).await? {
            auth_time = sign_in.auth_time;
        }
    }
    let code = state
        .transient
        .issue_code(&CodeGrant {
            sid,
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            nonce: pending.nonce.clone(),
            auth_time,
            expires,
        })
        .await?;
    tracing::info!(user = %user.username, client = %pending.client_id, scope = %pending.scope, "consent given");
    Ok(code)
}
