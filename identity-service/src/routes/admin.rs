//! The admin API under `/auth/admin`: users, clients and key rotation, for a bearer token of
//! this service whose principal passes `access_policy::policy::authorize_admin` (the admin
//! role). Bodies and answers are JSON; hashes never leave the service.

use access_policy::policy::authorize_admin;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::AppState;
use crate::bearer;
use crate::directory::{ClientEntry, UserEntry};
use crate::error::{Error, OAuthError};

/// The admin's principal, or why not.
async fn admin(state: &AppState, headers: &HeaderMap) -> Result<String, Error> {
    let principal = bearer::principal(state, headers).await?;
    authorize_admin(&principal)?;
    Ok(principal.subject)
}

fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|error| {
        Error::InvalidRequest(format!("the body is not what this endpoint takes: {error}"))
    })
}

/// `GET /auth/admin/users`.
pub async fn list_users(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    admin(&state, &headers).await?;
    Ok(Json(state.store.users().await?).into_response())
}

/// `POST /auth/admin/users`: `{username, password, role, fhirUser?, name?, classes?}`.
pub async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, OAuthError> {
    let by = admin(&state, &headers).await?;
    let entry: UserEntry = body(&bytes)?;
    if entry.password_hash.is_some() {
        return Err(Error::InvalidRequest("send the password, not a hash".to_owned()).into());
    }
    let user = entry.into_user(&state.passwords).await?;
    state.store.insert_user(&user).await?;
    tracing::info!(%by, username = %user.username, role = %user.role, "user created");
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// `DELETE /auth/admin/users/{username}`.
pub async fn delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Result<Response, OAuthError> {
    let by = admin(&state, &headers).await?;
    if !state.store.delete_user(&username).await? {
        return Err(Error::NotFound(format!("user '{username}'")).into());
    }
    tracing::info!(%by, %username, "user deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /auth/admin/clients`.
pub async fn list_clients(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    admin(&state, &headers).await?;
    Ok(Json(state.store.clients().await?).into_response())
}

/// `POST /auth/admin/clients`: `{client_id, name?, kind, redirect_uris?, allowed_scopes,
/// jwks? | jwks_uri?, secret?}`.
pub async fn create_client(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, OAuthError> {
    let by = admin(&state, &headers).await?;
    let entry: ClientEntry = body(&bytes)?;
    if entry.secret_hash.is_some() {
        return Err(Error::InvalidRequest("send the secret, not a hash".to_owned()).into());
    }
    let client = entry.into_client(&state.passwords).await?;
    state.store.insert_client(&client).await?;
    tracing::info!(%by, client_id = %client.client_id, "client registered");
    Ok((StatusCode::CREATED, Json(client)).into_response())
}

/// `DELETE /auth/admin/clients/{client_id}`.
pub async fn delete_client(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Result<Response, OAuthError> {
    let by = admin(&state, &headers).await?;
    if !state.store.delete_client(&client_id).await? {
        return Err(Error::NotFound(format!("client '{client_id}'")).into());
    }
    tracing::info!(%by, %client_id, "client deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /auth/admin/keys/rotate`: a new signing key; the old ones stay published until the
/// tokens they signed have expired.
pub async fn rotate_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let by = admin(&state, &headers).await?;
    let kid = state.keys.rotate()?;
    tracing::info!(%by, %kid, "signing key rotated");
    let published: Vec<_> = state
        .keys
        .jwks()
        .keys
        .into_iter()
        .filter_map(|key| key.common.key_id)
        .collect();
    Ok(Json(json!({"kid": kid, "published": published})).into_response())
}
