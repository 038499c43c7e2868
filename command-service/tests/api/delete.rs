//! `DELETE /fhir/<Type>/<id>`.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_outcome, patient};

#[tokio::test]
async fn delete_is_a_new_version_after_which_reads_are_gone() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Smith")).await;
    let response = app.delete(&format!("Patient/{id}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    assert!(response.headers().contains_key("x-event-position"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");

    let gone = app.read(&format!("Patient/{id}")).await;
    assert_eq!(gone.headers()["etag"], "W/\"2\"");
    assert_outcome(gone, 410).await;
    assert_outcome(app.read(&format!("Patient/{id}/_history/2")).await, 410).await;
    assert_eq!(
        app.read(&format!("Patient/{id}/_history/1")).await.status(),
        200,
        "history is kept"
    );

    let again = app.delete(&format!("Patient/{id}")).await;
    assert_eq!(again.status(), 200, "deleting again succeeds");
    assert_eq!(app.event_count().await, 2, "and records nothing");

    let deleted = app.store.version("Patient", &id, 2).await.unwrap().unwrap();
    assert_eq!(deleted.kind, "ResourceDeleted");
    let previous: Value = serde_json::from_str(&deleted.resource).unwrap();
    assert_eq!(
        previous["name"][0]["family"], "Smith",
        "the delete event carries what was deleted"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn update_after_delete_brings_the_resource_back() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Smith")).await;
    app.delete(&format!("Patient/{id}")).await;
    let mut back = patient("Smith");
    back["id"] = json!(id);
    let response = app.update(&back, None).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "W/\"3\"");
    assert_eq!(app.read(&format!("Patient/{id}")).await.status(), 200);
    app.cleanup().await;
}

#[tokio::test]
async fn deleting_what_never_existed_is_404() {
    let app = TestApp::spawn().await;
    let response = app.delete("Patient/nobody").await;
    assert_outcome(response, 404).await;
    assert_eq!(app.event_count().await, 0);
    app.cleanup().await;
}
