//! Writes in teaching sandboxes: `/sandbox/<name>/fhir/...` takes every write the live base
//! takes (ADR 0014).
//!
//! `service_kit::sandbox_path` takes the prefix off the path; the [`Scoped`] extractor looks
//! the sandbox up and gives the handler the service's state scoped to it: the event store
//! reads and writes the sandbox's streams (so versions, `If-Match`, references and the hash
//! chain continue from the fork), conditional writes match the sandbox's view of the index,
//! the policy decides as it does in sandboxes, and the read cache (the live record's) is left
//! alone. Everything downstream of the handlers is the live write path, unchanged.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use event_store::SandboxTag;
use event_store::sandbox::{self, Sandbox};
use service_kit::fhir_response::FhirError;
use service_kit::resource_cache::ResourceCache;
use service_kit::sandbox_path::{SandboxRequested, unknown_sandbox};

use crate::AppState;

/// The service's state for this request: the live record's, or a sandbox's.
pub(crate) struct Scoped(pub AppState);

impl FromRequestParts<AppState> for Scoped {
    type Rejection = FhirError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(SandboxRequested(name)) = parts.extensions.get::<SandboxRequested>() else {
            return Ok(Scoped(state.clone()));
        };
        // The caller is authenticated first: an unknown name tells nothing to a request
        // without a token. The handler's `Caller` counts the request against the rate limits;
        // counting it here too would charge a sandbox write twice.
        state.auth.authenticate(&parts.headers).await?;
        let found = if sandbox::valid_name(name) {
            sandbox::find(state.store.pool(), name)
                .await
                .map_err(FhirError::internal)?
        } else {
            None
        };
        let sandbox = found.ok_or_else(|| unknown_sandbox(name))?;
        Ok(Scoped(state.within(sandbox)))
    }
}

impl AppState {
    /// This state scoped to `sandbox`.
    pub(crate) fn within(&self, sandbox: Sandbox) -> AppState {
        AppState {
            store: self.store.within(sandbox.record()),
            matcher: self.matcher.within(fhir_search::sql::View::Sandbox {
                partition: sandbox.partition,
                fork: sandbox.fork_position,
            }),
            cache: ResourceCache::new(None),
            sandbox: Some(Arc::new(sandbox)),
            ..self.clone()
        }
    }

    /// What a sandbox's events carry in their metadata.
    pub(crate) fn sandbox_tag(&self) -> Option<SandboxTag> {
        self.sandbox.as_ref().map(|sandbox| SandboxTag {
            name: sandbox.name.clone(),
            partition: sandbox.partition,
        })
    }

    /// The FHIR base a client of this request sees: the live one, or the sandbox's.
    pub(crate) fn fhir_base(&self, headers: &axum::http::HeaderMap) -> String {
        let base = crate::response::base_url(&self.settings.public_url, headers);
        match &self.sandbox {
            Some(sandbox) => service_kit::sandbox_path::sandbox_base(&base, &sandbox.name),
            None => base,
        }
    }
}
