//! `PATCH /fhir/<Type>/<id>` with JSON Patch.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_outcome, patient};

async fn send_patch(
    app: &TestApp,
    id: &str,
    patch: &Value,
    content_type: &str,
) -> reqwest::Response {
    app.client
        .patch(format!("{}/Patient/{id}", app.writes))
        .header("content-type", content_type)
        .body(patch.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_json_patch_records_the_result_and_the_patch() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Smith")).await;
    let patch = json!([
        {"op": "replace", "path": "/name/0/family", "value": "Jones"},
        {"op": "add", "path": "/active", "value": true}
    ]);
    let response = send_patch(&app, &id, &patch, "application/json-patch+json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["name"][0]["family"], "Jones");
    assert_eq!(body["active"], true);
    assert_eq!(body["meta"]["versionId"], "2");

    let event = app.store.version("Patient", &id, 2).await.unwrap().unwrap();
    assert_eq!(event.kind, "ResourceUpdated");
    assert_eq!(
        serde_json::from_str::<Value>(event.patch.as_deref().unwrap()).unwrap(),
        patch
    );
    app.cleanup().await;
}

#[tokio::test]
async fn patches_that_cannot_apply_change_nothing() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Smith")).await;
    let cases = [
        (json!({"op": "replace"}), "application/json-patch+json", 400),
        (
            json!([{"op": "remove", "path": "/telecom/3"}]),
            "application/json-patch+json",
            422,
        ),
        (
            json!([{"op": "test", "path": "/gender", "value": "male"}]),
            "application/json-patch+json",
            422,
        ),
        (
            json!([{"op": "replace", "path": "/id", "value": "other"}]),
            "application/json-patch+json",
            422,
        ),
        (
            json!([{"op": "replace", "path": "/gender", "value": 7}]),
            "application/json-patch+json",
            422,
        ),
        (
            json!([{"op": "replace", "path": "/gender", "value": "male"}]),
            "application/fhir+json",
            415,
        ),
    ];
    for (patch, content_type, status) in cases {
        let body = assert_outcome(send_patch(&app, &id, &patch, content_type).await, status).await;
        assert!(
            body["issue"][0]["diagnostics"].is_string(),
            "{patch}: {body}"
        );
    }
    let stale = app
        .client
        .patch(format!("{}/Patient/{id}", app.writes))
        .header("content-type", "application/json-patch+json")
        .header("if-match", "W/\"9\"")
        .body(json!([{"op": "replace", "path": "/gender", "value": "male"}]).to_string())
        .send()
        .await
        .unwrap();
    assert_outcome(stale, 412).await;
    assert_outcome(
        send_patch(&app, "nobody", &json!([]), "application/json-patch+json").await,
        404,
    )
    .await;
    assert_eq!(app.event_count().await, 1);
    app.cleanup().await;
}
