//! Reading a write request: media type, body (with its size limit), JSON, `If-Match`,
//! `Prefer`, and the metadata every event records (who, which request, from where).

use std::net::SocketAddr;

use access_policy::Principal;
use axum::body::Body;
use axum::http::{HeaderMap, header};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use event_store::{Actor, CommitContext, EventMetadata};
use serde_json::Value;
use service_kit::config::ProxySettings;
use service_kit::fhir_response::parse_version_tag;
use service_kit::forwarded::client_address;
use service_kit::http::REQUEST_ID_HEADER;
use uuid::Uuid;

use crate::error::WriteError;

/// The media types a FHIR resource body may be sent as.
const RESOURCE_MEDIA_TYPES: [&str; 3] = [
    "application/fhir+json",
    "application/json",
    "application/json+fhir",
];
/// The media type of a JSON Patch document.
pub const JSON_PATCH: &str = "application/json-patch+json";

fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Accepts FHIR JSON (and plain JSON) bodies; anything else is 415.
pub fn require_resource_media_type(headers: &HeaderMap) -> Result<(), WriteError> {
    match media_type(headers) {
        Some(found) if RESOURCE_MEDIA_TYPES.contains(&found.as_str()) => Ok(()),
        found => Err(WriteError::UnsupportedMediaType {
            found,
            expected: "application/fhir+json",
        }),
    }
}

/// Accepts JSON Patch; FHIRPath Patch (a `Parameters` body) is not implemented: 415.
pub fn require_patch_media_type(headers: &HeaderMap) -> Result<(), WriteError> {
    match media_type(headers) {
        Some(found) if found == JSON_PATCH => Ok(()),
        found => Err(WriteError::UnsupportedMediaType {
            found,
            expected: JSON_PATCH,
        }),
    }
}

/// Reads the body, refusing more than `limit` bytes (413) before reading it all.
pub async fn read_json(body: Body, headers: &HeaderMap, limit: usize) -> Result<Value, WriteError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(WriteError::TooLarge { limit });
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| WriteError::TooLarge { limit })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(WriteError::MalformedJson(
            "the request has no body".to_owned(),
        ));
    }
    serde_json::from_slice(&bytes).map_err(|error| WriteError::MalformedJson(error.to_string()))
}

/// `If-Match: W/"n"`: the version the client believes is current.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u32>, WriteError> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(parse_version_tag)
            .map(Some)
            .ok_or_else(|| WriteError::BadHeader {
                name: "If-Match",
                problem: "must name a version, as W/\"<versionId>\"".to_owned(),
            }),
    }
}

/// What the client asked to get back (`Prefer: return=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnPreference {
    Minimal,
    Representation,
    OperationOutcome,
}

pub fn return_preference(headers: &HeaderMap) -> ReturnPreference {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split([',', ';']))
        .filter_map(|token| token.trim().strip_prefix("return="))
        .find_map(|value| match value.trim_matches('"') {
            "minimal" => Some(ReturnPreference::Minimal),
            "representation" => Some(ReturnPreference::Representation),
            "OperationOutcome" => Some(ReturnPreference::OperationOutcome),
            _ => None,
        })
        .unwrap_or(ReturnPreference::Representation)
}

/// The time a write is recorded at, to the millisecond (so `meta.lastUpdated`, the event's
/// `recorded_at` and `Last-Modified` all agree exactly).
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(TimeDelta::milliseconds(1))
        .unwrap_or(now)
}

const MAX_HEADER_TEXT: usize = 256;

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(|value| value.chars().take(MAX_HEADER_TEXT).collect())
}

/// The metadata of this request's events. The actor is the caller of the checked access token
/// (what a request says about itself in other headers is not believed). The source is the
/// connection's peer; behind a trusted proxy, the client's address (as `forwarded_for`) is the
/// one `service_kit::forwarded::client_address` finds, never what an untrusted peer claims.
pub fn commit_context(
    principal: &Principal,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    proxies: &ProxySettings,
    at: DateTime<Utc>,
) -> CommitContext {
    let forwarded_for = peer
        .map(|peer| {
            (
                peer,
                client_address(peer, headers, &proxies.trusted_proxies),
            )
        })
        // Only what a trusted proxy forwarded: from anyone else the client is the peer itself.
        .filter(|(peer, _)| {
            headers.contains_key("x-forwarded-for")
                && proxies
                    .trusted_proxies
                    .iter()
                    .any(|net| net.contains(&peer.ip()))
        })
        .map(|(_, client)| client.to_string());
    CommitContext {
        metadata: EventMetadata {
            actor: Actor {
                user: principal.subject.clone(),
                role: principal.role.map(|role| role.as_str().to_owned()),
                client: header_text(headers, "user-agent"),
                fhir_user: principal.fhir_user.clone(),
                client_id: Some(principal.client_id.clone()),
                scopes: Some(principal.scopes.to_string()),
            },
            request_id: header_text(headers, REQUEST_ID_HEADER.as_str()).unwrap_or_default(),
            transaction_id: Uuid::now_v7(),
            recorded_at: at,
            source_address: peer.map(|address| address.to_string()),
            forwarded_for,
            reason: header_text(headers, "x-change-reason"),
            sandbox: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn prefer_return() {
        assert_eq!(
            return_preference(&headers(&[])),
            ReturnPreference::Representation
        );
        assert_eq!(
            return_preference(&headers(&[("prefer", "return=minimal")])),
            ReturnPreference::Minimal
        );
        assert_eq!(
            return_preference(&headers(&[(
                "prefer",
                "handling=strict, return=OperationOutcome"
            )])),
            ReturnPreference::OperationOutcome
        );
    }

    #[test]
    fn media_types() {
        assert!(
            require_resource_media_type(&headers(&[(
                "content-type",
                "application/fhir+json; charset=utf-8"
            )]))
            .is_ok()
        );
        assert!(
            require_resource_media_type(&headers(&[("content-type", "application/json")])).is_ok()
        );
        assert!(
            require_resource_media_type(&headers(&[("content-type", "application/xml")])).is_err()
        );
        assert!(require_resource_media_type(&headers(&[])).is_err());
        assert!(
            require_patch_media_type(&headers(&[("content-type", "application/json-patch+json")]))
                .is_ok()
        );
        assert!(
            require_patch_media_type(&headers(&[("content-type", "application/fhir+json")]))
                .is_err()
        );
    }

    fn loopback() -> ProxySettings {
        ProxySettings {
            trusted_proxies: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let claims = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.4")]);
        let from = |peer: &str| {
            commit_context(
                &Principal::unchecked(),
                &claims,
                Some(peer.parse().unwrap()),
                &loopback(),
                now(),
            )
            .metadata
        };
        let direct = from("203.0.113.9:5000");
        assert_eq!(direct.source_address.as_deref(), Some("203.0.113.9:5000"));
        assert_eq!(direct.forwarded_for, None, "an untrusted peer's claim");
        let proxied = from("127.0.0.1:5000");
        assert_eq!(proxied.source_address.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(proxied.forwarded_for.as_deref(), Some("198.51.100.4"));
    }

    #[test]
    fn the_actor_is_the_token_never_the_headers() {
        let nurse = Principal {
            subject: "nurse".to_owned(),
            role: Some(access_policy::Role::Nurse),
            fhir_user: Some("Practitioner/demo-nurse".to_owned()),
            client_id: "wardline-web".to_owned(),
            scopes: access_policy::ScopeSet::parse("user/*.cruds openid").unwrap(),
            ..Principal::unchecked()
        };
        let context = commit_context(
            &nurse,
            &headers(&[("x-demo-user", "dr.who"), ("x-demo-role", "admin")]),
            None,
            &loopback(),
            now(),
        );
        let actor = context.metadata.actor;
        assert_eq!(actor.user, "nurse");
        assert_eq!(actor.role.as_deref(), Some("nurse"));
        assert_eq!(actor.fhir_user.as_deref(), Some("Practitioner/demo-nurse"));
        assert_eq!(actor.client_id.as_deref(), Some("wardline-web"));
        assert_eq!(actor.scopes.as_deref(), Some("user/*.cruds openid"));
    }
}
