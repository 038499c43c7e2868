//! What a client reads before anything else: the SMART configuration (SMART App Launch 2.2,
//! `/.well-known/smart-configuration`), the OpenID Connect discovery document, and the JWKS
//! with which every token this service signs can be checked.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::keys::SIGNING_ALGORITHM;

/// `GET /.well-known/smart-configuration`.
pub async fn smart_configuration(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "issuer": state.settings.issuer,
        "jwks_uri": state.endpoint("/jwks"),
        "authorization_endpoint": state.endpoint("/authorize"),
        "token_endpoint": state.endpoint("/token"),
        "introspection_endpoint": state.endpoint("/introspect"),
        "revocation_endpoint": state.endpoint("/revoke"),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes_supported": [
            "openid", "fhirUser", "profile", "launch", "launch/patient", "offline_access",
            "online_access", "patient/*.cruds", "patient/*.rs", "user/*.cruds", "user/*.rs",
            "system/*.cruds", "system/*.rs",
        ],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": [
            "private_key_jwt", "client_secret_basic", "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "capabilities": [
            "launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
            "client-confidential-asymmetric", "context-ehr-patient", "context-standalone-patient",
            "sso-openid-connect", "permission-offline", "permission-online", "permission-patient",
            "permission-user", "permission-v1", "permission-v2", "authorize-post",
        ],
        "code_challenge_methods_supported": ["S256"],
    }))
}

/// `GET /.well-known/openid-configuration`.
pub async fn openid_configuration(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "issuer": state.settings.issuer,
        "jwks_uri": state.endpoint("/jwks"),
        "authorization_endpoint": state.endpoint("/authorize"),
        "token_endpoint": state.endpoint("/token"),
        "introspection_endpoint": state.endpoint("/introspect"),
        "revocation_endpoint": state.endpoint("/revoke"),
        "end_session_endpoint": state.endpoint("/logout"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [format!("{SIGNING_ALGORITHM:?}")],
        "token_endpoint_auth_methods_supported": [
            "private_key_jwt", "client_secret_basic", "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": ["openid", "fhirUser", "profile", "offline_access"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser", "name"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

/// `GET /.well-known/jwks.json` (and `/auth/jwks`): the published keys. Cached briefly, so a
/// rotated key reaches verifiers within minutes (they fetch again on an unknown `kid` anyway).
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.keys.jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
