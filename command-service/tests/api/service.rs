//! The service around the API: health, readiness, request ids, unknown routes.

use serde_json::Value;

use crate::helpers::{TestApp, assert_outcome};

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    for port in [app.command_port, app.query_port] {
        let health = app
            .client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let ready = app
            .client
            .get(format!("http://127.0.0.1:{port}/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
        let body: Value = ready.json().await.unwrap();
        assert_eq!(body["checks"]["postgres"]["status"], "pass", "{body}");
    }
    let ready: Value = app
        .client
        .get(format!("http://127.0.0.1:{}/ready", app.command_port))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ready["checks"]["nats-outbox-relay"]["required"], false,
        "{ready}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn unknown_routes_and_reads_of_unknown_things_are_outcomes() {
    let app = TestApp::spawn().await;
    assert_outcome(
        app.client
            .get(format!("http://127.0.0.1:{}/nowhere", app.command_port))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_outcome(app.read("Patient/does-not-exist").await, 404).await;
    assert_outcome(app.read("Spaceship/1").await, 404).await;
    assert_outcome(app.read("Patient/bad_id!").await, 400).await;
    assert_outcome(app.read("Patient/x/_history/abc").await, 404).await;
    let write_on_read_port = app
        .client
        .post(format!("{}/Patient", app.reads))
        .header("content-type", "application/fhir+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_outcome(write_on_read_port, 405).await;
    app.cleanup().await;
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&crate::helpers::patient("Head")).await;
    let head = app
        .client
        .head(format!("{}/Patient/{id}", app.reads))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["etag"], "W/\"1\"");
    assert!(head.text().await.unwrap().is_empty());
    app.cleanup().await;
}
