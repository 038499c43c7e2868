//! The size of a resource is bounded on every write path, and a JSON Patch cannot build a
//! resource past that bound: refused with 413 before memory grows, nothing written.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_outcome, patient};

/// A Patient whose JSON is a little over `bytes` long.
fn large_patient(bytes: usize) -> Value {
    let mut resource = patient("Large");
    resource["name"][0]["text"] = json!("x".repeat(bytes));
    resource
}

/// The number of versions `GET <Type>/<id>/_history` lists.
async fn history_length(app: &TestApp, reference: &str) -> usize {
    let history = app.read_json(&format!("{reference}/_history")).await;
    history["entry"].as_array().map_or(0, Vec::len)
}

fn patch_request(app: &TestApp, id: &str, patch: &Value) -> reqwest::RequestBuilder {
    app.client
        .patch(format!("{}/Patient/{id}", app.writes))
        .header("content-type", "application/json-patch+json")
        .body(patch.to_string())
}

#[tokio::test]
async fn a_resource_over_the_maximum_is_413_on_every_write_path() {
    let app = TestApp::spawn_with_args(&["--max-resource-bytes", "20000"]).await;
    let id = app.create_ok(&patient("Small")).await;
    let events_before = app.event_count().await;

    let created = app.create(&large_patient(30_000)).await;
    let mut updated = large_patient(30_000);
    updated["id"] = json!(id);
    let updated = app.update(&updated, None).await;
    let patched = patch_request(
        &app,
        &id,
        &json!([{"op": "add", "path": "/name/0/text", "value": "x".repeat(30_000)}]),
    )
    .send()
    .await
    .unwrap();
    let transaction = app
        .write_request(
            Method::POST,
            "",
            Some(
                &json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"fullUrl": "urn:uuid:small", "resource": patient("Fine"),
                     "request": {"method": "POST", "url": "Patient"}},
                    {"fullUrl": "urn:uuid:large", "resource": large_patient(30_000),
                     "request": {"method": "POST", "url": "Patient"}}
                ]}),
            ),
        )
        .send()
        .await
        .unwrap();
    for (path, response) in [
        ("create", created),
        ("update", updated),
        ("patch", patched),
        ("transaction", transaction),
    ] {
        let outcome = assert_outcome(response, 413).await;
        let code = outcome["issue"][0]["code"].as_str().unwrap();
        assert!(
            matches!(code, "too-long" | "too-costly"),
            "{path}: {outcome}"
        );
        assert!(outcome.to_string().contains("20000"), "{path}: {outcome}");
    }
    assert_eq!(app.event_count().await, events_before, "nothing written");
    assert_eq!(history_length(&app, &format!("Patient/{id}")).await, 1);

    // Just under the limit is still accepted.
    app.create_ok(&large_patient(19_000)).await;
    app.cleanup().await;
}

/// The peak resident memory of this process (the test and the services it runs), in bytes.
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .unwrap();
    let kilobytes: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kilobytes * 1024
}

#[tokio::test]
async fn a_json_patch_bomb_is_refused_before_memory_grows() {
    let app = TestApp::spawn_with_args(&["--max-resource-bytes", "1048576"]).await;
    let id = app.create_ok(&patient("Bomb")).await;
    let events_before = app.event_count().await;
    // Each operation copies `name` into itself, doubling it: twenty make a 60 MB resource
    // from a patch of 1.2 KB.
    let bomb: Vec<Value> = (0..20)
        .map(|_| json!({"op": "copy", "from": "/name", "path": "/name/-"}))
        .collect();
    let bomb = Value::Array(bomb);
    assert!(bomb.to_string().len() < 1500);

    let before = peak_memory();
    let response = patch_request(&app, &id, &bomb).send().await.unwrap();
    let outcome = assert_outcome(response, 413).await;
    let grown = peak_memory().saturating_sub(before);

    assert_eq!(outcome["issue"][0]["code"], "too-costly", "{outcome}");
    // Refused at the operation that would pass 1 MiB (about the 14th), not after applying all.
    let diagnostics = outcome["issue"][0]["diagnostics"].as_str().unwrap();
    let operation: usize = diagnostics
        .split("operation '/")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .and_then(|index| index.parse().ok())
        .unwrap_or_else(|| panic!("no operation named: {diagnostics}"));
    assert!(operation < 19, "{diagnostics}");
    assert!(
        grown < 64 * 1024 * 1024,
        "peak memory grew by {grown} bytes"
    );
    assert_eq!(app.event_count().await, events_before);
    assert_eq!(history_length(&app, &format!("Patient/{id}")).await, 1);

    // The number of operations is bounded as well (the default, 1,000).
    let many: Vec<Value> = (0..1001)
        .map(|_| json!({"op": "test", "path": "/gender", "value": "female"}))
        .collect();
    let response = patch_request(&app, &id, &Value::Array(many))
        .send()
        .await
        .unwrap();
    let outcome = assert_outcome(response, 413).await;
    assert!(outcome.to_string().contains("1000"), "{outcome}");
    assert_eq!(app.event_count().await, events_before);

    // A patch within both limits still applies.
    let response = patch_request(
        &app,
        &id,
        &json!([{"op": "copy", "from": "/name/0", "path": "/name/-"}]),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    app.cleanup().await;
}
