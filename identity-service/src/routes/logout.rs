//! `GET` and `POST /auth/logout`: signs the browser out and ends every session started from it
//! (their tokens stop working everywhere), the web app's included: its refresh cookie's session
//! is ended too (it may outlive the browser's sign-in) and the cookie removed. With a
//! `client_id` and a `post_logout_redirect_uri` registered for it, the browser goes back there;
//! otherwise it sees a page saying it is signed out.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;

use crate::AppState;
use crate::error::PageError;
use crate::pages;
use crate::params::Params;
use crate::routes::authorize::redirect_with;
use crate::routes::cookies;

pub async fn logout(
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
    if let Some(browser) = cookies::get(&headers, cookies::SIGN_IN) {
        let sessions = state.transient.sign_out_browser(browser).await?;
        for sid in &sessions {
            state.transient.end_session(sid).await?;
        }
        tracing::info!(sessions = sessions.len(), "browser signed out");
    }
    if let Some(refresh) = cookies::get(&headers, cookies::REFRESH)
        && let Some(grant) = state.transient.refresh(refresh).await?
    {
        state.transient.forget_refresh(refresh).await?;
        state.transient.end_session(&grant.sid).await?;
        tracing::info!(client = %grant.client_id, "the web app's session ended");
    }
    let mut back = None;
    if let (Some(client_id), Some(target)) = (
        params.get("client_id"),
        params.get("post_logout_redirect_uri"),
    ) && let Some(client) = state.store.client(client_id).await?
        && client.redirect_uris.iter().any(|uri| uri == target)
    {
        back = Some(redirect_with(target, &[], params.get("state")));
    }
    let mut response = back.unwrap_or_else(|| {
        pages::message(
            StatusCode::OK,
            "Signed out",
            "You are signed out of Wardline, and the applications you allowed from this browser no longer have access.",
        )
    });
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, cookies::clear(&state, cookies::SIGN_IN));
    headers.append(header::SET_COOKIE, cookies::clear_refresh());
    Ok(response)
}
