//! `/sandbox/<name>/fhir/...`: a teaching sandbox's FHIR base (ADR 0014), served by the same
//! routes as the live record's `/fhir/...`.
//!
//! [`route`] wraps a service's router: it takes `/sandbox/<name>` off the path before the
//! routes are matched and leaves a [`SandboxRequested`] in the request, which the service
//! resolves (and refuses, if the sandbox does not exist) once the caller's token is checked.
//! The command and query services share it, so a path means the same sandbox to both.

use axum::extract::Request;
use axum::http::{StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fhir_model::IssueCode;

use crate::fhir_response::FhirError;

/// The name in `/sandbox/<name>/fhir/...`, before it is looked up.
#[derive(Debug, Clone)]
pub struct SandboxRequested(pub String);

/// Takes `/sandbox/<name>` off the path of a request to a sandbox's FHIR base (leaving
/// `/fhir/...`); other requests pass unchanged.
pub async fn route(mut request: Request, next: Next) -> Response {
    let Some((name, rest)) = split(request.uri().path()) else {
        return next.run(request).await;
    };
    let (name, rest) = (name.to_owned(), rest.to_owned());
    if let Err(refused) = set_path(&mut request, &rest) {
        return refused.into_response();
    }
    request.extensions_mut().insert(SandboxRequested(name));
    next.run(request).await
}

/// Replaces the path of `request`'s URI with `path`, keeping its query: how a base's prefix
/// (a sandbox's, the past's) is taken off before the routes are matched.
pub fn set_path(request: &mut Request, path: &str) -> Result<(), FhirError> {
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    let uri = Uri::from_parts(parts).map_err(|_| {
        FhirError::new(
            StatusCode::BAD_REQUEST,
            IssueCode::Invalid,
            "the request path cannot be read",
        )
    })?;
    *request.uri_mut() = uri;
    Ok(())
}

/// `("<name>", "/fhir/rest")` of `/sandbox/<name>/fhir/rest`.
fn split(path: &str) -> Option<(&str, &str)> {
    let after = path.strip_prefix("/sandbox/")?;
    let (name, rest) = after.split_at(after.find('/')?);
    (rest == "/fhir" || rest.starts_with("/fhir/")).then_some((name, rest))
}

/// The sandbox's FHIR base under a live base `.../fhir`.
pub fn sandbox_base(live_base: &str, name: &str) -> String {
    let origin = live_base.strip_suffix("/fhir").unwrap_or(live_base);
    format!("{origin}/sandbox/{name}/fhir")
}

/// The 404 of a sandbox that does not exist.
pub fn unknown_sandbox(name: &str) -> FhirError {
    FhirError::new(
        StatusCode::NOT_FOUND,
        IssueCode::NotFound,
        format!("there is no sandbox named `{name}` (GET /teaching/sandboxes lists them)"),
    )
}

#[cfg(test)]
mod tests {
    use super::{sandbox_base, split};

    #[test]
    fn the_name_and_the_fhir_path_are_split() {
        assert_eq!(
            split("/sandbox/ward-7/fhir/Patient/1"),
            Some(("ward-7", "/fhir/Patient/1"))
        );
        assert_eq!(split("/sandbox/ward-7/fhir"), Some(("ward-7", "/fhir")));
        assert_eq!(split("/sandbox/ward-7/fhirx"), None);
        assert_eq!(split("/sandbox/ward-7"), None);
        assert_eq!(split("/fhir/Patient"), None);
    }

    #[test]
    fn a_sandbox_base_sits_beside_the_live_one() {
        assert_eq!(
            sandbox_base("https://h:8443/fhir", "ward-7"),
            "https://h:8443/sandbox/ward-7/fhir"
        );
    }
}
