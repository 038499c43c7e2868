//! Content negotiation for every read: this server speaks FHIR JSON only, so `_format` and
//! `Accept` asking for anything else (XML, Turtle, HTML) get 406 with an OperationOutcome, and
//! `_pretty=true` indents the JSON. One middleware, so no handler repeats it.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fhir_model::IssueCode;
use service_kit::fhir_response::{FHIR_JSON, FhirError};

/// Largest body re-indented for `_pretty` (a page of a thousand resources fits).
const PRETTY_LIMIT: usize = 64 * 1024 * 1024;

/// Whether a media type or `_format` value means FHIR JSON (or anything, for `Accept`).
fn is_json(value: &str, wildcard_ok: bool) -> bool {
    // An unencoded `+` in a query string arrives as a space (`_format=application/fhir+json`).
    let media = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .replace(' ', "+")
        .to_ascii_lowercase();
    matches!(
        media.as_str(),
        "json" | "application/json" | "application/fhir+json" | "application/json+fhir"
    ) || (wildcard_ok && matches!(media.as_str(), "*/*" | "application/*" | ""))
}

pub(crate) async fn negotiate(request: Request, next: Next) -> Response {
    let query = request.uri().query().unwrap_or_default().to_owned();
    let mut pretty = false;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "_format" if !is_json(&value, false) => {
                return not_acceptable(format!(
                    "_format={value} is not served: this server answers in FHIR JSON (_format=json)"
                ));
            }
            "_pretty" => pretty = value == "true",
            _ => {}
        }
    }
    let explicit_format = query.contains("_format=");
    if !explicit_format
        && let Some(accept) = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
        && !accept.split(',').any(|range| is_json(range, true))
    {
        return not_acceptable(format!(
            "Accept: {accept} is not served: this server answers in FHIR JSON (application/fhir+json)"
        ));
    }
    let response = next.run(request).await;
    if pretty {
        indent(response).await
    } else {
        response
    }
}

fn not_acceptable(message: String) -> Response {
    FhirError::new(StatusCode::NOT_ACCEPTABLE, IssueCode::NotSupported, message).into_response()
}

/// Re-serialises a FHIR JSON body with indentation (element order is kept).
async fn indent(response: Response) -> Response {
    let is_fhir_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == FHIR_JSON.as_bytes());
    if !is_fhir_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, PRETTY_LIMIT).await else {
        return FhirError::internal("response body could not be read for _pretty").into_response();
    };
    let pretty = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|value| serde_json::to_vec_pretty(&value).ok());
    let body = pretty.unwrap_or_else(|| bytes.to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        assert!(is_json("application/fhir+json; fhirVersion=4.0", false));
        assert!(is_json("json", false));
        assert!(!is_json("xml", false));
        assert!(!is_json("application/fhir+xml", true));
        assert!(is_json("*/*;q=0.8", true));
        assert!(!is_json("*/*", false));
    }
}
