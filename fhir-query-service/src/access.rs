//! Authorisation of reads: every route asks the policy (`access_policy::authorize`) before it
//! reads, and bounds what it answers to what the caller may see.
//!
//! - A token bound to one patient (`patient/` scopes) searches that patient's compartment only:
//!   the search itself is restricted (as a compartment search is), so `total` and paging count
//!   only what the caller may see. A read of a resource outside the compartment is 404, as if
//!   it did not exist.
//! - A scope with `?param=value` restrictions adds them to the search; a read checks them with
//!   a search for the one id.
//! - Whatever a search brings in besides its matches (`_include`, `_revinclude`,
//!   `$everything`'s references) and every entry of a later page is checked once more against
//!   the same rules, and dropped when the caller may not see it.

use std::net::SocketAddr;

use access_policy::{Access, Interaction, Principal, authorize};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use fhir_model::{IssueCode, ResourceType};
use fhir_search::compartment::{PatientCompartment, in_compartment, patients_of};
use fhir_search::extract::ExtractOptions;
use serde_json::Value;
use service_kit::auth::forbidden;
use service_kit::fhir_response::FhirError;

use crate::past::{Past, PastRequested};
use crate::routes::AppState;
use event_store::sandbox::Sandbox;
use service_kit::sandbox_path::SandboxRequested;

/// A request's caller: its checked token, its headers, the client address (the peer, or
/// behind a trusted proxy the address it forwarded), under whom kept result lists are counted,
/// and the record it reads: the live one, a sandbox (`/sandbox/<name>/fhir/...`) or the past
/// (`/fhir/_asof/...`), looked up once the token is checked.
pub(crate) struct Caller {
    pub principal: Principal,
    pub headers: HeaderMap,
    pub client: String,
    pub past: Option<Past>,
    pub sandbox: Option<Sandbox>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = FhirError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = state.auth.authenticate_request(parts).await?;
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(
                || "direct".to_owned(),
                |ConnectInfo(peer)| {
                    service_kit::forwarded::client_address(
                        *peer,
                        &parts.headers,
                        &state.trusted_proxies,
                    )
                    .to_string()
                },
            );
        let sandbox = match parts.extensions.get::<SandboxRequested>() {
            Some(SandboxRequested(name)) => Some(crate::sandbox::resolve(state, name).await?),
            None => None,
        };
        let past = match parts.extensions.get::<PastRequested>() {
            Some(_) if sandbox.is_some() => {
                return Err(FhirError::new(
                    StatusCode::NOT_FOUND,
                    IssueCode::NotSupported,
                    "the past of a sandbox is not served: /fhir/_asof/ is the live record's past",
                ));
            }
            Some(PastRequested(at)) => Some(crate::past::resolve(state, at).await?),
            None => None,
        };
        Ok(Caller {
            principal,
            headers: parts.headers.clone(),
            client,
            past,
            sandbox,
        })
    }
}

impl Caller {
    /// Which record the request searches: the present, a sandbox, or the past it asked for.
    pub fn view(&self) -> fhir_search::sql::View {
        if let Some(sandbox) = &self.sandbox {
            return fhir_search::sql::View::Sandbox {
                partition: sandbox.partition,
                fork: sandbox.fork_position,
            };
        }
        self.past.map_or(fhir_search::sql::View::Live, Past::view)
    }

    /// Which streams the request reads: the live record's, or a sandbox's.
    pub fn record(&self) -> event_store::Record {
        self.sandbox
            .as_ref()
            .map_or(event_store::Record::Live, Sandbox::record)
    }

    /// The event store as this request reads it.
    pub fn store(&self, state: &AppState) -> event_store::EventStore {
        match &self.sandbox {
            Some(sandbox) => state.store.within(sandbox.record()),
            None => state.store.clone(),
        }
    }

    /// The policy's answer for `interaction` on `resource_type`, or the 403.
    pub fn allow(
        &self,
        interaction: Interaction,
        resource_type: ResourceType,
    ) -> Result<Access, FhirError> {
        authorize(&self.principal, interaction, resource_type).map_err(|denied| forbidden(&denied))
    }

    /// Whether the caller may see `resource` of `resource_type` under `access` (the bounds of a
    /// read of that type): in the bound patient's compartment, when there is one.
    pub fn sees(
        &self,
        state: &AppState,
        access: &Access,
        resource_type: &str,
        id: &str,
        resource: &Value,
    ) -> bool {
        match &access.patient {
            Some(patient) if in_compartment(resource_type) => patients_of(
                state.searcher.registry(),
                &extract_options(state),
                resource_type,
                id,
                resource,
            )
            .contains(patient),
            _ => true,
        }
    }

    /// Drops from a search or history Bundle every resource the caller may not read: of a type
    /// it may not read, outside its patient's compartment, or under restricted scopes (those are
    /// honoured by the search itself for its matches, and cannot be for what it brings in).
    /// `searched_within_bounds`: the matches come from a search this caller's bounds already
    /// restricted (so a match trimmed by `_elements` need not show its patient again); a later
    /// page or a history is checked entry by entry.
    pub fn filter_bundle(
        &self,
        state: &AppState,
        bundle: &mut Value,
        searched_within_bounds: bool,
    ) {
        let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) else {
            return;
        };
        entries.retain(|entry| {
            let Some(resource) = entry.get("resource") else {
                return true;
            };
            let Some(type_name) = resource.get("resourceType").and_then(Value::as_str) else {
                return false;
            };
            if entry.pointer("/search/mode").and_then(Value::as_str) == Some("outcome") {
                return true;
            }
            let Ok(resource_type) = ResourceType::parse(type_name) else {
                return false;
            };
            let Ok(access) = authorize(&self.principal, Interaction::Read, resource_type) else {
                return false;
            };
            let matched = entry.pointer("/search/mode").and_then(Value::as_str) == Some("match");
            if matched && searched_within_bounds {
                return true;
            }
            if !access.restrictions.is_empty() && !matched {
                return false;
            }
            let id = resource
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            self.sees(state, &access, type_name, id, resource)
        });
    }

    /// The bounds of a search of `types` for this caller: the compartment to search within
    /// (when the token is bound to a patient) and the restrictions to add to the parameters.
    pub fn bound_search(
        &self,
        types: &[String],
        params: &mut Vec<(String, String)>,
    ) -> Result<Option<PatientCompartment>, FhirError> {
        let mut patient: Option<String> = None;
        for type_name in types {
            let resource_type = ResourceType::parse(type_name).map_err(|_| {
                FhirError::new(
                    StatusCode::NOT_FOUND,
                    IssueCode::NotSupported,
                    format!("'{type_name}' is not a FHIR R4 resource type"),
                )
            })?;
            let access = self.allow(Interaction::Search, resource_type)?;
            add_restrictions(&access, types.len(), params)?;
            if let Some(bound) = access.patient.filter(|_| in_compartment(type_name)) {
                patient = Some(bound);
            }
        }
        Ok(patient.map(|patient| PatientCompartment::for_types(&patient, types, true)))
    }
}

/// Adds a scope's `?param=value` restrictions to a search's parameters: one alternative's
/// parameters as they are; several alternatives on one parameter as one `param=a,b` (FHIR's
/// OR); anything else cannot be one search, and is refused rather than widened.
fn add_restrictions(
    access: &Access,
    type_count: usize,
    params: &mut Vec<(String, String)>,
) -> Result<(), FhirError> {
    let refuse = |why: &str| {
        Err(FhirError::new(
            StatusCode::FORBIDDEN,
            IssueCode::Forbidden,
            format!("the token's scopes restrict this search in a way it cannot express: {why}"),
        ))
    };
    match access.restrictions.as_slice() {
        [] => Ok(()),
        _ if type_count > 1 => refuse("restricted scopes apply to one resource type at a time"),
        [only] => {
            params.extend(only.iter().cloned());
            Ok(())
        }
        alternatives => {
            let name = &alternatives[0][0].0;
            if alternatives
                .iter()
                .all(|alternative| alternative.len() == 1 && &alternative[0].0 == name)
            {
                let values: Vec<&str> = alternatives
                    .iter()
                    .map(|alternative| alternative[0].1.as_str())
                    .collect();
                params.push((name.clone(), values.join(",")));
                Ok(())
            } else {
                refuse("several restricted scopes on different parameters")
            }
        }
    }
}

fn extract_options(state: &AppState) -> ExtractOptions {
    ExtractOptions {
        base_url: Some(state.searcher.reference_base().to_owned()),
    }
}
