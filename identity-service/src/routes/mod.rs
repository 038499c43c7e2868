//! The endpoints, one file each. Behind the edge they are reached at the same paths: `/auth/...`
//! and `/.well-known/...` (and the SMART configuration under the FHIR base,
//! `/fhir/.well-known/smart-configuration`, where SMART clients look for it).

mod admin;
mod authorize;
mod consent;
mod cookies;
mod discovery;
mod introspect;
mod launch;
mod login;
mod logout;
mod revoke;
mod token;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};

use crate::AppState;
use crate::error::{Error, OAuthError};
use crate::pages::STYLE_SHEET;

/// Every endpoint.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/.well-known/smart-configuration",
            get(discovery::smart_configuration),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/auth/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route("/auth/jwks", get(discovery::jwks))
        .route(
            "/auth/authorize",
            get(authorize::authorize).post(authorize::authorize),
        )
        .route("/auth/login", post(login::login))
        .route("/auth/consent", get(consent::page).post(consent::decide))
        .route("/auth/launch", post(launch::launch))
        .route("/auth/logout", get(logout::logout).post(logout::logout))
        .route("/auth/token", post(token::token))
        .route("/auth/introspect", post(introspect::introspect))
        .route("/auth/revoke", post(revoke::revoke))
        .route(
            "/auth/admin/users",
            get(admin::list_users).post(admin::create_user),
        )
        .route("/auth/admin/users/{username}", delete(admin::delete_user))
        .route(
            "/auth/admin/clients",
            get(admin::list_clients).post(admin::create_client),
        )
        .route(
            "/auth/admin/clients/{client_id}",
            delete(admin::delete_client),
        )
        .route("/auth/admin/keys/rotate", post(admin::rotate_keys))
        .route("/auth/assets/style.css", get(style_sheet))
        .fallback(fallback)
        .with_state(state)
}

/// The pages' style sheet.
async fn style_sheet() -> Response {
    let mut response = STYLE_SHEET.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// The SMART configuration under any base (`/fhir/.well-known/smart-configuration`, a
/// sandbox's base, ...): SMART clients look for it below the FHIR base they were given.
/// Anything else is 404.
async fn fallback(state: axum::extract::State<AppState>, uri: axum::http::Uri) -> Response {
    if uri.path().ends_with("/.well-known/smart-configuration") {
        return discovery::smart_configuration(state).await.into_response();
    }
    OAuthError(Error::NotFound(format!("'{}'", uri.path()))).into_response()
}

/// `Cache-Control: no-store` and `Pragma: no-cache`: responses carrying tokens, and their
/// errors (RFC 6749 5.1).
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
