//! `PUT /fhir/<Type>/<id>`.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_outcome, patient};

#[tokio::test]
async fn update_records_the_next_version_and_vread_keeps_the_old_one() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Smith")).await;
    let mut changed = patient("Jones");
    changed["id"] = json!(id);
    let response = app.update(&changed, Some("W/\"1\"")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    assert_eq!(
        response.headers()["location"].to_str().unwrap(),
        format!("{}/Patient/{id}/_history/2", app.writes)
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["meta"]["versionId"], "2");

    let current: Value = app.read_json(&format!("Patient/{id}")).await;
    assert_eq!(current["name"][0]["family"], "Jones");
    let first: Value = app.read_json(&format!("Patient/{id}/_history/1")).await;
    assert_eq!(first["name"][0]["family"], "Smith");
    assert_eq!(first["meta"]["versionId"], "1");
    assert_eq!(
        app.read(&format!("Patient/{id}/_history/3")).await.status(),
        404
    );
    assert_eq!(
        app.store.verify_stream("Patient", &id).await.unwrap(),
        None,
        "the chain links v2 to v1"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn update_with_a_new_id_creates_the_resource() {
    let app = TestApp::spawn().await;
    let mut resource = patient("Chosen");
    resource["id"] = json!("my-own-id");
    let response = app.update(&resource, None).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    assert_eq!(app.read("Patient/my-own-id").await.status(), 200);
    app.cleanup().await;
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Smith")).await;
    let mut changed = patient("Jones");
    changed["id"] = json!(id);
    let events = app.event_count().await;
    assert_outcome(app.update(&changed, Some("W/\"7\"")).await, 412).await;
    assert_outcome(app.update(&changed, Some("garbage")).await, 400).await;
    assert_eq!(app.event_count().await, events);
    app.cleanup().await;
}

#[tokio::test]
async fn an_update_that_changes_nothing_records_nothing() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Same")).await;
    let mut same = patient("Same");
    same["id"] = json!(id);
    let response = app.update(&same, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    assert_eq!(app.event_count().await, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn the_body_id_must_match_the_url() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Smith")).await;
    let mut resource = patient("Jones");
    resource["id"] = json!("someone-else");
    let response = app
        .client
        .put(format!("{}/Patient/{id}", app.writes))
        .header("content-type", "application/fhir+json")
        .body(resource.to_string())
        .send()
        .await
        .unwrap();
    assert_outcome(response, 400).await;

    let without_id = patient("Jones");
    let response = app
        .client
        .put(format!("{}/Patient/{id}", app.writes))
        .header("content-type", "application/fhir+json")
        .body(without_id.to_string())
        .send()
        .await
        .unwrap();
    assert_outcome(response, 400).await;
    assert_eq!(app.event_count().await, 1);
    app.cleanup().await;
}
