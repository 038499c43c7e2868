//! What the token endpoint hands out: the access token (its payload is exactly
//! `access_policy::AccessClaims`), the OpenID Connect ID token, and the response around them
//! (RFC 6749 5.1 with SMART's additions: `patient`, `encounter`, `need_patient_banner`).

use access_policy::{AccessClaims, ScopeSet};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::Error;
use crate::ids::random_token;
use crate::transient::{Session, now};

/// The token endpoint's answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The scopes the access token carries, space-separated.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The patient in context (SMART `launch/patient`, or an EHR launch's patient).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter: Option<String>,
    /// Whether the app should show which patient it is working on (the EHR does, in an EHR
    /// launch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub need_patient_banner: Option<bool>,
}

/// An OpenID Connect ID token's claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    /// The client the token is for.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// SMART's `fhirUser`: the absolute URL of the user's FHIR resource.
    #[serde(rename = "fhirUser", default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What the ID token needs beyond the session: the sign-in it attests.
pub struct SignInFacts {
    pub auth_time: i64,
    pub nonce: Option<String>,
}

/// Tokens for `session` (id `sid`), with `scope` (the session's, or fewer on a refresh).
pub fn issue(
    state: &AppState,
    sid: &str,
    session: &Session,
    scope: &ScopeSet,
    refresh_token: Option<String>,
    sign_in: Option<&SignInFacts>,
) -> Result<TokenResponse, Error> {
    let issued = now();
    let ttl = i64::try_from(state.access_token_ttl().as_secs()).unwrap_or(i64::MAX);
    let expires = issued.saturating_add(ttl).min(session.expires);
    let scope_text = scope.to_string();
    let claims = AccessClaims {
        iss: state.settings.issuer.clone(),
        sub: session.user.clone(),
        aud: session.aud.clone(),
        exp: expires,
        iat: issued,
        nbf: issued,
        jti: random_token(),
        client_id: session.client.clone(),
        scope: scope_text.clone(),
        sid: sid.to_owned(),
        role: session.role.map(|role| role.as_str().to_owned()),
        fhir_user: session.fhir_user.clone(),
        patient: session.patient.clone(),
        name: session.name.clone(),
        classes: session.classes.clone(),
    };
    let access_token = state.keys.sign(&claims)?;
    let id_token = match sign_in {
        Some(facts) if scope.has("openid") => Some(
            state.keys.sign(&IdClaims {
                iss: state.settings.issuer.clone(),
                sub: session.user.clone(),
                aud: session.client.clone(),
                exp: expires,
                iat: issued,
                auth_time: Some(facts.auth_time),
                nonce: facts.nonce.clone(),
                fhir_user: session
                    .fhir_user
                    .as_ref()
                    .filter(|_| scope.has("fhirUser"))
                    .map(|reference| format!("{}/{reference}", session.aud.trim_end_matches('/'))),
                name: session.name.clone().filter(|_| scope.has("profile")),
            })?,
        ),
        _ => None,
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: expires - issued,
        scope: scope_text,
        refresh_token,
        id_token,
        patient: session.patient.clone(),
        encounter: session.encounter.clone(),
        need_patient_banner: session
            .patient
            .is_some()
            .then_some(session.need_patient_banner),
    })
}

/// Whether a grant of `scope` comes with a refresh token.
pub fn wants_refresh(scope: &ScopeSet) -> bool {
    scope.has("offline_access") || scope.has("online_access")
}
