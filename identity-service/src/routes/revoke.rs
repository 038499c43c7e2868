//! `POST /auth/revoke` (RFC 7009): revoking an access token or a refresh token ends its whole
//! session, so every token of the grant stops working, here and at the resource servers (which
//! hear of it on `session:revoked`). The client must be the one the token was issued to; an
//! unknown, expired or someone else's token is answered 200 all the same, as the RFC says, so
//! the answer tells nothing about tokens.

use access_policy::AccessClaims;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::bearer;
use crate::client_auth;
use crate::error::{Error, OAuthError};
use crate::params::Params;
use crate::routes::no_store;

pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    no_store(match answer(&state, &headers, &body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => error.into_response(),
    })
}

async fn answer(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
    let params = Params::parse(body)?;
    let client = client_auth::authenticate(state, headers, &params).await?;
    let token = params.require("token")?;
    let (sid, owner) = if token.split('.').count() == 3 {
        match state
            .keys
            .verify::<AccessClaims>(token, &bearer::validation(state, false))
        {
            Ok(claims) => (claims.sid, claims.client_id),
            Err(_) => return Ok(()),
        }
    } else {
        match state.transient.refresh(token).await? {
            Some(grant) => {
                if grant.client_id == client.client.client_id {
                    state.transient.forget_refresh(token).await?;
                }
                (grant.sid, grant.client_id)
            }
            None => return Ok(()),
        }
    };
    if owner != client.client.client_id {
        tracing::info!(client = %client.client.client_id, "revocation of another client's token ignored");
        return Ok(());
    }
    state
        .transient
        .end_session(&sid)
        .await
        .map_err(Error::from)?;
    Ok(())
}
