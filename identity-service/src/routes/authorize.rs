//! `GET` and `POST /auth/authorize`: the start of the authorization-code flow (RFC 6749 4.1,
//! PKCE per RFC 7636, SMART App Launch 2.2).
//!
//! The client and its `redirect_uri` are checked first, and a mistake there is shown to the
//! user, never redirected: otherwise anyone could bounce a browser through this server to any
//! address. Once the redirect is known to be the client's own, every other mistake goes back
//! to it as `error=...` with the `state`. A request that passes is kept in Redis and the user
//! signs in (or, already signed in in this browser, goes straight to consent).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::AppState;
use crate::directory::demo_users;
use crate::error::{Error, PageError};
use crate::ids::random_token;
use crate::pages::SignInPage;
use crate::params::Params;
use crate::routes::cookies;
use crate::scopes;
use crate::settings::Mode;
use crate::store::Client;
use crate::transient::{PendingRequest, REQUEST_TTL};
use access_policy::ScopeSet;

pub async fn authorize(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = if method == Method::POST {
        Params::parse(&body)?
    } else {
        Params::parse(uri.query().unwrap_or_default().as_bytes())?
    };
    let client_id = params.require("client_id")?;
    let client = state
        .store
        .client(client_id)
        .await?
        .ok_or_else(|| Error::UnknownClient(client_id.to_owned()))?;
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) => uri.to_owned(),
        None => match client.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(Error::InvalidRequest(
                    "the parameter 'redirect_uri' is required".to_owned(),
                )
                .into());
            }
        },
    };
    if !client.redirect_uris.contains(&redirect_uri) {
        return Err(Error::UnregisteredRedirect(client.client_id.clone()).into());
    }
    let client_state = params.get("state").map(str::to_owned);
    let csrf = random_token();
    let pending = match check(&state, &client, &params, &redirect_uri, &csrf).await {
        Ok(pending) => pending,
        Err(error) if error.status().is_server_error() => return Err(error.into()),
        Err(error) => {
            return Ok(redirect_error(
                &redirect_uri,
                &error,
                client_state.as_deref(),
            ));
        }
    };
    let mut pending = pending;
    let request_id = state.transient.put_request(&pending).await?;
    let csrf_cookie = cookies::set(&state, cookies::CSRF, &csrf, REQUEST_TTL);

    // Signed in already in this browser: straight to consent.
    if let Some(browser) = cookies::get(&headers, cookies::SIGN_IN)
        && let Some(sign_in) = state.transient.browser(browser).await?
        && state.store.has_user(&sign_in.user).await?
    {
        pending.user = Some(sign_in.user);
        pending.browser = Some(browser.to_owned());
        state
            .transient
            .update_request(&request_id, &pending)
            .await?;
        let mut response =
            Redirect::to(&format!("/auth/consent?request={request_id}")).into_response();
        response
            .headers_mut()
            .insert(header::SET_COOKIE, csrf_cookie);
        return Ok(response);
    }
    let demo = if state.settings.mode == Mode::Development {
        demo_users()
    } else {
        Vec::new()
    };
    let mut response = SignInPage {
        request: &request_id,
        csrf: &csrf,
        client_name: &client.name,
        username: "",
        problem: None,
        demo_users: &demo,
    }
    .render(StatusCode::OK);
    response
        .headers_mut()
        .insert(header::SET_COOKIE, csrf_cookie);
    Ok(response)
}

/// The checks made once the redirect is trusted; the request to keep if they pass.
async fn check(
    state: &AppState,
    client: &Client,
    params: &Params,
    redirect_uri: &str,
    csrf: &str,
) -> Result<PendingRequest, Error> {
    let response_type = params.require("response_type")?;
    if response_type != "code" {
        return Err(Error::UnsupportedResponseType(response_type.to_owned()));
    }
    let code_challenge = params.get("code_challenge").ok_or_else(|| {
        Error::InvalidRequest("PKCE is required: send code_challenge (S256)".to_owned())
    })?;
    match params.get("code_challenge_method") {
        Some("S256") => {}
        Some(other) => {
            return Err(Error::InvalidRequest(format!(
                "code_challenge_method '{other}' is not supported; use S256"
            )));
        }
        None => {
            return Err(Error::InvalidRequest(
                "code_challenge_method is required and must be S256".to_owned(),
            ));
        }
    }
    // base64url of a SHA-256: 43 characters.
    if code_challenge.len() != 43
        || !code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::InvalidRequest(
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)"
                .to_owned(),
        ));
    }
    let aud = params.require("aud")?;
    let aud = state
        .settings
        .audiences
        .iter()
        .find(|known| known.trim_end_matches('/') == aud.trim_end_matches('/'))
        .ok_or_else(|| {
            Error::InvalidRequest(format!(
                "aud '{aud}' is not a FHIR server this issuer serves"
            ))
        })?
        .clone();
    let requested = ScopeSet::parse(params.require("scope")?)
        .map_err(|error| Error::InvalidScope(error.to_string()))?;
    let allowed = ScopeSet::parse(&client.allowed_scopes)
        .map_err(|error| Error::InvalidScope(error.to_string()))?;
    let granted = scopes::for_user(&requested, &allowed);
    if granted.resources.is_empty() && granted.others.is_empty() {
        return Err(Error::InvalidScope(
            "none of the requested scopes may be granted to this client".to_owned(),
        ));
    }
    let launch = match params.get("launch") {
        Some(id) if granted.has("launch") => {
            Some(state.transient.launch(id).await?.ok_or_else(|| {
                Error::InvalidRequest("the launch is unknown or expired".to_owned())
            })?)
        }
        _ => None,
    };
    Ok(PendingRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scope: granted.to_string(),
        state: params.get("state").map(str::to_owned),
        aud,
        code_challenge: code_challenge.to_owned(),
        nonce: params.get("nonce").map(str::to_owned),
        launch,
        csrf: csrf.to_owned(),
        user: None,
        browser: None,
    })
}

/// A redirect to the client carrying `extra` parameters (and its `state`).
pub fn redirect_with(redirect_uri: &str, extra: &[(&str, &str)], state: Option<&str>) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in extra {
        query.append_pair(name, value);
    }
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    let query = query.finish();
    if query.is_empty() {
        return Redirect::to(redirect_uri).into_response();
    }
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{redirect_uri}{separator}{query}")).into_response()
}

/// The redirect that tells the client its request failed (RFC 6749 4.1.2.1).
pub fn redirect_error(redirect_uri: &str, error: &Error, state: Option<&str>) -> Response {
    tracing::info!(error = %error, code = error.code(), "authorization request refused");
    redirect_with(
        redirect_uri,
        &[
            ("error", error.code()),
            ("error_description", &error.description()),
        ],
        state,
    )
}
