//! The service's own access tokens, presented back to it: the admin API and EHR launches take
//! a bearer token, introspection and revocation are shown one. The checks are the resource
//! servers' (signature with a published key, issuer, audience, validity window, live session),
//! made with the keys in hand instead of a fetched JWKS.

use access_policy::verify::access_token_validation;
use access_policy::{AccessClaims, Principal};
use axum::http::HeaderMap;
use jsonwebtoken::Validation;
pub use service_kit::auth::bearer_token;

use crate::AppState;
use crate::error::Error;

/// How an access token of this service is checked (as the resource servers check it);
/// `check_expiry` false for revocation (revoking an expired token is harmless and ends its
/// session all the same).
pub fn validation(state: &AppState, check_expiry: bool) -> Validation {
    let mut validation = access_token_validation(&state.settings.issuer, &state.settings.audiences);
    validation.validate_nbf = check_expiry;
    validation.validate_exp = check_expiry;
    validation
}

/// The claims of a valid access token of this service, whose session is alive.
pub async fn verify(state: &AppState, token: &str) -> Result<AccessClaims, Error> {
    let claims: AccessClaims = state
        .keys
        .verify(token, &validation(state, true))
        .map_err(|error| Error::InvalidToken(format!("the access token is not valid: {error}")))?;
    if state.transient.session(&claims.sid).await?.is_none() {
        return Err(Error::InvalidToken(
            "the access token's session has ended".to_owned(),
        ));
    }
    Ok(claims)
}

/// The principal of the request's bearer token.
pub async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, Error> {
    let token = bearer_token(headers)
        .ok_or_else(|| Error::InvalidToken("a bearer token is required".to_owned()))?;
    let claims = verify(state, token).await?;
    Principal::from_claims(claims)
        .map_err(|error| Error::InvalidToken(format!("the token's claims are invalid: {error}")))
}
