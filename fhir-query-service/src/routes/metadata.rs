//! `GET /fhir/metadata`: the CapabilityStatement, generated from what the code serves.
//!
//! Resource types come from the R4 model, search parameters from the registry the projector
//! indexes with (only those it can index, plus `_text` and `_content`), `_include` and
//! `_revinclude` values from the reference parameters, and interactions from the routes of the
//! query and command services. Nothing is listed by hand per type, so the statement cannot
//! promise what the code does not do; a test runs a live search with every listed parameter.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use fhir_model::ResourceType;
use fhir_search::registry::Indexing;
use fhir_search::{ParamType, Registry, SearchParam};
use serde_json::{Value, json};
use service_kit::fhir_response::fhir_json;

use super::AppState;
use crate::past::PastRequested;
use crate::search::reference_params;

/// Interactions on every resource type: reads here, writes in the command service.
const TYPE_INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

pub(crate) async fn capability_statement(
    State(state): State<AppState>,
    headers: HeaderMap,
    past: Option<Extension<PastRequested>>,
) -> Response {
    let base = state.base_url(&headers);
    // The identity service as configured, or where the edge routes it: beside the FHIR base.
    let auth = match &state.auth_public_url {
        Some(auth) => auth.trim_end_matches('/').to_owned(),
        None => format!("{}/auth", base.strip_suffix("/fhir").unwrap_or(&base)),
    };
    let mut statement = statement(state.searcher.registry(), &base, &auth);
    if let Some(Extension(PastRequested(at))) = past {
        read_only(
            &mut statement,
            &format!("{base}/{}/{at}", crate::past::SEGMENT),
            &at,
        );
    }
    fhir_json(StatusCode::OK, statement.to_string())
}

/// Interactions a past base serves: reads only.
const READ_INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "history-instance",
    "history-type",
    "search-type",
    "history-system",
    "search-system",
];

/// The statement of the past base at `base` (`.../fhir/_asof/<at>`): the same searches,
/// reads only, no write capability claimed.
fn read_only(statement: &mut Value, base: &str, at: &str) {
    statement["implementation"] = json!({
        "description": format!(
            "Wardline: the record as it was at {at}, read-only (writes are 405). Synthetic data only."
        ),
        "url": base
    });
    if let Some(object) = statement.as_object_mut() {
        object.remove("patchFormat");
    }
    let keep_reads = |interactions: &mut Value| {
        if let Some(list) = interactions.as_array_mut() {
            list.retain(|interaction| {
                interaction["code"]
                    .as_str()
                    .is_some_and(|code| READ_INTERACTIONS.contains(&code))
            });
        }
    };
    let rest = &mut statement["rest"][0];
    keep_reads(&mut rest["interaction"]);
    if let Some(resources) = rest["resource"].as_array_mut() {
        for resource in resources {
            keep_reads(&mut resource["interaction"]);
            if let Some(object) = resource.as_object_mut() {
                for write in [
                    "versioning",
                    "updateCreate",
                    "conditionalCreate",
                    "conditionalUpdate",
                    "conditionalDelete",
                ] {
                    object.remove(write);
                }
            }
        }
    }
}

/// Whether the server can search with `param`.
pub fn is_searchable(param: &SearchParam) -> bool {
    match &param.indexing {
        Indexing::Indexed => param.kind != ParamType::Special || param.code == "near",
        Indexing::NoExpression => matches!(param.code.as_str(), "_text" | "_content"),
        Indexing::Unparsable(_) | Indexing::UnresolvedComponent(_) => false,
    }
}

/// The statement for a server at `base`, whose tokens come from the identity service at `auth`.
pub fn statement(registry: &Registry, base: &str, auth: &str) -> Value {
    let resources: Vec<Value> = ResourceType::all()
        .map(|resource_type| resource(registry, resource_type.as_str()))
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": fhir_model::format_instant(chrono::Utc::now()),
        "publisher": "Wardline",
        "kind": "instance",
        "software": {"name": "Wardline", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {
            "description": "Wardline, a teaching EHR on synthetic data only: never real patients",
            "url": base
        },
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "security": security(auth),
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}, {"code": "search-system"}],
            "searchParam": system_params(registry),
        }]
    })
}

/// How clients get tokens: SMART on FHIR, with the endpoints of the identity service at `auth`
/// (also published at `<base>/.well-known/smart-configuration`).
fn security(auth: &str) -> Value {
    let uri = |url: &str, path: &str| json!({"url": url, "valueUri": format!("{auth}/{path}")});
    json!({
        "cors": true,
        "service": [{
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR"
            }],
            "text": "OAuth 2.0 with SMART App Launch 2.2: every interaction but this statement needs a bearer token"
        }],
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [
                uri("authorize", "authorize"),
                uri("token", "token"),
                uri("revoke", "revoke"),
                uri("introspect", "introspect")
            ]
        }]
    })
}

fn resource(registry: &Registry, resource_type: &str) -> Value {
    let mut params: Vec<&SearchParam> = registry
        .params_for(resource_type)
        .filter(|param| is_searchable(param))
        .collect();
    params.sort_by(|a, b| a.code.cmp(&b.code));
    params.dedup_by(|a, b| a.code == b.code);
    let search_params: Vec<Value> = params
        .iter()
        .map(|param| {
            json!({"name": param.code, "definition": param.url, "type": param.kind.as_str()})
        })
        .collect();
    let mut includes: Vec<String> = reference_params(registry, resource_type)
        .into_iter()
        .map(|code| format!("{resource_type}:{code}"))
        .collect();
    includes.push("*".to_owned());
    let revincludes = revincludes(registry, resource_type);
    json!({
        "type": resource_type,
        "profile": format!("http://hl7.org/fhir/StructureDefinition/{resource_type}"),
        "interaction": TYPE_INTERACTIONS.iter().map(|code| json!({"code": code})).collect::<Vec<_>>(),
        "versioning": "versioned-update",
        "readHistory": true,
        "updateCreate": true,
        "conditionalCreate": true,
        "conditionalUpdate": true,
        "conditionalDelete": "single",
        "conditionalRead": "full-support",
        "searchInclude": includes,
        "searchRevInclude": revincludes,
        "searchParam": search_params,
    })
}

/// `Source:param` for every reference parameter of any type that may point at `target`.
fn revincludes(registry: &Registry, target: &str) -> Vec<String> {
    let mut out: Vec<String> = ResourceType::all()
        .flat_map(|source| {
            let source = source.as_str();
            registry
                .params_for(source)
                .filter(|param| {
                    param.kind == ParamType::Reference
                        && !param.target.is_empty()
                        && param.allows_target(target)
                })
                .map(move |param| format!("{source}:{}", param.code))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Parameters every type has (those defined on `Resource`), for system-level search.
fn system_params(registry: &Registry) -> Vec<Value> {
    let mut params: Vec<&SearchParam> = registry
        .all()
        .iter()
        .filter(|param| param.base.iter().any(|base| base == "Resource") && is_searchable(param))
        .collect();
    params.sort_by(|a, b| a.code.cmp(&b.code));
    params
        .iter()
        .map(|param| json!({"name": param.code, "definition": param.url, "type": param.kind.as_str()}))
        .collect()
}
