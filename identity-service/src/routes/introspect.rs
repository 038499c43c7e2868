//! `POST /auth/introspect` (RFC 7662): whether a token is active, and what it carries. The
//! caller is a client that authenticates (as at the token endpoint; a public client cannot) or
//! presents a valid bearer token of this service. An access token is active while its
//! signature, validity window and session hold; a refresh token while it is unspent and its
//! session lives. Anything else is `{"active": false}`, whatever the reason.

use access_policy::AccessClaims;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::bearer;
use crate::client_auth;
use crate::error::{Error, OAuthError};
use crate::params::Params;
use crate::routes::no_store;

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    no_store(match answer(&state, &headers, &body).await {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    })
}

async fn answer(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
    let params = Params::parse(body)?;
    if let Some(token) = bearer::bearer_token(headers) {
        bearer::verify(state, token).await?;
    } else if !client_auth::authenticate(state, headers, &params)
        .await?
        .is_confidential()
    {
        return Err(Error::ClientAuthentication(
            "introspection needs an authenticated client or a bearer token".to_owned(),
        )
        .into());
    }
    let token = params.require("token")?;
    Ok(inspect(state, token)
        .await?
        .unwrap_or_else(|| json!({"active": false})))
}

/// What an active token says, or `None`.
async fn inspect(state: &AppState, token: &str) -> Result<Option<Value>, Error> {
    if token.split('.').count() == 3 {
        let Ok(claims) = state
            .keys
            .verify::<AccessClaims>(token, &bearer::validation(state, true))
        else {
            return Ok(None);
        };
        if state.transient.session(&claims.sid).await?.is_none() {
            return Ok(None);
        }
        let mut body =
            serde_json::to_value(&claims).map_err(crate::transient::TransientError::from)?;
        if let Some(object) = body.as_object_mut() {
            object.insert("active".to_owned(), Value::Bool(true));
            object.insert("token_type".to_owned(), json!("Bearer"));
            object.insert("username".to_owned(), json!(claims.sub));
        }
        return Ok(Some(body));
    }
    let Some(grant) = state.transient.refresh(token).await? else {
        return Ok(None);
    };
    let Some(session) = state.transient.session(&grant.sid).await? else {
        return Ok(None);
    };
    Ok(Some(json!({
        "active": true,
        "token_type": "refresh_token",
        "scope": grant.scope,
        "client_id": grant.client_id,
        "username": session.user,
        "sub": session.user,
        "exp": grant.expires,
        "iat": session.created,
        "iss": state.settings.issuer,
        "sid": grant.sid,
    })))
}
