//! Referential integrity on write: every relative reference (`Patient/123`) in a resource must
//! name a resource that exists and is not deleted, as HAPI FHIR enforces by default. A
//! dangling reference is refused with 400 and the path of the reference, and nothing is
//! written.
//!
//! Inside a transaction Bundle, a reference may also name a resource the same bundle writes
//! ([`Pending`]), and not one it deletes.
//!
//! Not checked: references to contained resources (`#id`), absolute URLs and `urn:` ids (they
//! point outside this server, or are resolved inside transaction Bundles before this check).
//! Conditional references (`Patient?identifier=...`) are refused here: a transaction Bundle
//! resolves them before.

use std::collections::BTreeSet;

use event_store::EventStore;
use fhir_model::{IssueCode, OutcomeIssue, ResourceId, ResourceType};
use serde_json::Value;

use crate::error::WriteError;

/// One relative reference found in a resource, and where.
struct Found {
    target: (String, String),
    expression: String,
}

/// What a transaction writes besides the resource being checked.
#[derive(Debug, Default)]
pub struct Pending {
    /// Resources the transaction creates or updates: they will exist.
    pub written: BTreeSet<(String, String)>,
    /// Resources it deletes: they will not.
    pub deleted: BTreeSet<(String, String)>,
}

/// Checks the references of several resources with one query to the store; on failure, the
/// index of the first resource with a problem, and its problems.
pub async fn check_all(
    store: &EventStore,
    resources: &[(&str, &Value)],
    pending: &Pending,
) -> Result<(), (usize, WriteError)> {
    let mut found: Vec<Vec<Found>> = Vec::with_capacity(resources.len());
    let mut issues: Vec<Vec<OutcomeIssue>> = Vec::with_capacity(resources.len());
    for (resource_type, resource) in resources {
        let (mut mine, mut problems) = (Vec::new(), Vec::new());
        collect(
            resource,
            (*resource_type).to_owned(),
            &mut mine,
            &mut problems,
        );
        found.push(mine);
        issues.push(problems);
    }
    let targets: BTreeSet<(String, String)> = found
        .iter()
        .flatten()
        .map(|f| f.target.clone())
        .filter(|target| !pending.written.contains(target))
        .collect();
    let live = if targets.is_empty() {
        BTreeSet::new()
    } else {
        store
            .live_resources(&targets)
            .await
            .map_err(|error| (0, error.into()))?
    };
    for (index, (references, problems)) in found.iter().zip(issues.iter_mut()).enumerate() {
        for reference in references {
            let target = &reference.target;
            let exists = pending.written.contains(target)
                || (live.contains(target) && !pending.deleted.contains(target));
            if !exists {
                let (target_type, target_id) = target;
                problems.push(
                    OutcomeIssue::error(
                        IssueCode::NotFound,
                        format!("the reference to {target_type}/{target_id} names no resource on this server (or a deleted one)"),
                    )
                    .at(reference.expression.clone()),
                );
            }
        }
        if !problems.is_empty() {
            return Err((index, WriteError::Invalid(std::mem::take(problems))));
        }
    }
    Ok(())
}

fn collect(value: &Value, path: String, found: &mut Vec<Found>, issues: &mut Vec<OutcomeIssue>) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object {
                let inner_path = format!("{path}.{key}");
                match (key.as_str(), inner) {
                    ("reference", Value::String(text)) => classify(text, inner_path, found, issues),
                    _ => collect(inner, inner_path, found, issues),
                }
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                collect(inner, format!("{path}[{index}]"), found, issues);
            }
        }
        _ => {}
    }
}

fn classify(
    text: &str,
    expression: String,
    found: &mut Vec<Found>,
    issues: &mut Vec<OutcomeIssue>,
) {
    let path = text.split('?').next().unwrap_or_default();
    if text.starts_with('#') || path.contains("://") || text.starts_with("urn:") {
        return;
    }
    if is_conditional(text) {
        issues.push(
            OutcomeIssue::error(
                IssueCode::NotSupported,
                format!("conditional reference '{text}': these are resolved only inside transaction Bundles"),
            )
            .at(expression),
        );
        return;
    }
    let segments: Vec<&str> = text.split('/').collect();
    let target = match segments.as_slice() {
        [type_name, id] => Some((*type_name, *id)),
        [type_name, id, "_history", version] if version.parse::<u32>().is_ok() => {
            Some((*type_name, *id))
        }
        _ => None,
    };
    match target {
        Some((type_name, id))
            if ResourceType::parse(type_name).is_ok() && ResourceId::parse(id).is_ok() =>
        {
            found.push(Found {
                target: (type_name.to_owned(), id.to_owned()),
                expression,
            });
        }
        _ => issues.push(invalid(text, expression)),
    }
}

/// Whether `text` is a conditional reference (`Patient?identifier=http://x|1`): a resource type,
/// then search criteria. Transaction Bundles resolve these; elsewhere they are refused.
pub fn is_conditional(text: &str) -> bool {
    matches!(text.split_once('?'), Some((path, _)) if !path.is_empty() && !path.contains(['/', ':', '#']))
}

fn invalid(text: &str, expression: String) -> OutcomeIssue {
    OutcomeIssue::error(
        IssueCode::Value,
        format!("'{text}' is not a valid reference: expected <Type>/<id>, <Type>/<id>/_history/<version>, #<contained id> or an absolute URL"),
    )
    .at(expression)
}
