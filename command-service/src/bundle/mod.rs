//! `POST /fhir` with a `transaction` or `batch` Bundle.
//!
//! Each entry is read into the same [`Entry`] a REST request becomes, and runs through the same
//! planner and commit loop (`crate::transaction`). A transaction is all or nothing: one bad entry
//! fails the whole Bundle with that entry's status and an `OperationOutcome` naming it, and
//! nothing is written or published. A batch runs each entry on its own, as a transaction of
//! one, and answers each with its own status or `OperationOutcome`. Both answer with a `transaction-response` or
//! `batch-response` Bundle whose entries follow the request's order, each with `status`,
//! `location`, `etag` and `lastModified` (and the resource under
//! `Prefer: return=representation`).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use fhir_model::{OperationOutcome, OutcomeIssue};
use serde_json::{Map, Value, json};
use service_kit::fhir_response::{EVENT_POSITION_HEADER, FhirError, fhir_json};

use service_kit::auth::Caller;

use crate::entry::{self, Entry};
use crate::error::{EntryError, WriteError};
use crate::plan::Scope;
use crate::request::{
    ReturnPreference, commit_context, now, read_json, require_resource_media_type,
    return_preference,
};
use crate::sandbox::Scoped;
use crate::transaction::{self, EntryResult};

/// The most entries one Bundle may hold.
const MAX_ENTRIES: usize = 10_000;

pub(crate) async fn post(
    Scoped(state): Scoped,
    Caller(principal): Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, FhirError> {
    require_resource_media_type(&headers)?;
    let bundle = read_json(body, &headers, state.settings.max_body_bytes).await?;
    let kind = bundle_kind(&bundle)?;
    let raw_entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if raw_entries.len() > MAX_ENTRIES {
        return Err(WriteError::Rule(format!(
            "the Bundle has {} entries; the limit is {MAX_ENTRIES}",
            raw_entries.len()
        ))
        .into());
    }
    let base = state.fhir_base(&headers);
    let representation = return_preference(&headers) == ReturnPreference::Representation
        && headers.contains_key("prefer");
    match kind {
        Kind::Transaction => {
            let mut entries = Vec::with_capacity(raw_entries.len());
            for (index, raw) in raw_entries.iter().enumerate() {
                entries.push(entry::read(index, raw).map_err(|error| fail(Some(index), error))?);
            }
            check_full_urls(&entries)?;
            let mut context = commit_context(
                &principal,
                &headers,
                Some(peer),
                &state.settings.proxies,
                now(),
            );
            context.metadata.sandbox = state.sandbox_tag();
            let results = transaction::run(&state, &principal, &context, entries, Scope::Bundle)
                .await
                .map_err(|EntryError { index, error }| fail(index, error))?;
            let items: Vec<Value> = results
                .iter()
                .map(|result| response_entry(&base, result, representation))
                .collect();
            Ok(respond("transaction-response", items, &results))
        }
        Kind::Batch => {
            let mut items = Vec::with_capacity(raw_entries.len());
            let mut all = Vec::new();
            for (index, raw) in raw_entries.iter().enumerate() {
                let outcome = match entry::read(index, raw) {
                    Ok(entry) => {
                        let mut context = commit_context(
                            &principal,
                            &headers,
                            Some(peer),
                            &state.settings.proxies,
                            now(),
                        );
                        context.metadata.sandbox = state.sandbox_tag();
                        transaction::run_one(&state, &principal, &context, entry, Scope::Bundle)
                            .await
                            .map_err(|failure| failure.error)
                    }
                    Err(error) => Err(error),
                };
                match outcome {
                    Ok(result) => {
                        items.push(response_entry(&base, &result, representation));
                        all.push(result);
                    }
                    Err(error) => items.push(failed_entry(error)),
                }
            }
            Ok(respond("batch-response", items, &all))
        }
    }
}

enum Kind {
    Transaction,
    Batch,
}

fn bundle_kind(bundle: &Value) -> Result<Kind, WriteError> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(WriteError::Rule(
            "POST /fhir takes a Bundle of type transaction or batch".to_owned(),
        ));
    }
    match bundle.get("type").and_then(Value::as_str) {
        Some("transaction") => Ok(Kind::Transaction),
        Some("batch") => Ok(Kind::Batch),
        other => Err(WriteError::Rule(format!(
            "a Bundle posted to /fhir must be of type transaction or batch, not {other:?}"
        ))),
    }
}

/// Two entries with one `fullUrl` would make references to it ambiguous.
fn check_full_urls(entries: &[Entry]) -> Result<(), FhirError> {
    let mut seen = std::collections::HashMap::new();
    for entry in entries {
        if let Some(full_url) = &entry.full_url
            && let Some(first) = seen.insert(full_url.as_str(), entry.index)
        {
            return Err(fail(
                Some(entry.index),
                WriteError::Rule(format!(
                    "fullUrl {full_url:?} is also the fullUrl of entry {first}"
                )),
            ));
        }
    }
    Ok(())
}

/// A failed transaction: the entry's error, its diagnostics and expressions naming the entry.
fn fail(index: Option<usize>, error: WriteError) -> FhirError {
    let mut failure = FhirError::from(error);
    if let Some(index) = index {
        for issue in &mut failure.outcome.issues {
            let diagnostics = issue.diagnostics.take().unwrap_or_default();
            issue.diagnostics = Some(format!("Bundle.entry[{index}]: {diagnostics}"));
            issue.expression.insert(0, format!("Bundle.entry[{index}]"));
        }
    }
    failure
}

fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    )
}

fn response_entry(base: &str, result: &EntryResult, representation: bool) -> Value {
    let mut response = Map::new();
    response.insert("status".into(), json!(status_line(result.status)));
    let mut entry = Map::new();
    if let (Some(id), Some(outcome)) = (&result.id, &result.outcome) {
        let path = format!("{}/{id}", result.resource_type);
        entry.insert("fullUrl".into(), json!(format!("{base}/{path}")));
        if !outcome.deleted {
            response.insert(
                "location".into(),
                json!(format!("{path}/_history/{}", outcome.version)),
            );
        }
        response.insert("etag".into(), json!(format!("W/\"{}\"", outcome.version)));
        response.insert(
            "lastModified".into(),
            json!(fhir_model::format_instant(outcome.last_updated)),
        );
        if representation
            && !outcome.deleted
            && let Ok(resource) = serde_json::from_str::<Value>(&outcome.resource_json)
        {
            entry.insert("resource".into(), resource);
        }
    }
    if let Some(failure) = &result.failure {
        response.insert("outcome".into(), failure.outcome.to_json());
    }
    if let Some(message) = &result.message {
        response.insert(
            "outcome".into(),
            OperationOutcome::single(OutcomeIssue::information(message.clone())).to_json(),
        );
    }
    entry.insert("response".into(), Value::Object(response));
    Value::Object(entry)
}

/// A batch entry that failed: its status and `OperationOutcome`.
fn failed_entry(error: WriteError) -> Value {
    let failure = FhirError::from(error);
    json!({"response": {
        "status": status_line(failure.status),
        "outcome": failure.outcome.to_json(),
    }})
}

/// The response Bundle, with the highest position written in `X-Event-Position` so that the
/// client can read its writes in search.
fn respond(kind: &str, entries: Vec<Value>, results: &[EntryResult]) -> Response {
    let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": entries});
    let mut response = fhir_json(StatusCode::OK, bundle.to_string());
    if let Some(position) = results
        .iter()
        .filter_map(|result| result.outcome.as_ref()?.position)
        .max()
    {
        response
            .headers_mut()
            .insert(EVENT_POSITION_HEADER, HeaderValue::from(position));
    }
    response
}
