//! One request id follows a request through the edge: the client's `X-Request-Id` or one the
//! edge makes, passed to the service (which records it with the event it writes), returned,
//! and written to the edge's access log.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, header, patient};

/// The metadata recorded with the first event of `Patient/<id>`.
async fn event_metadata(app: &TestApp, id: &str) -> Value {
    let events = app.store.stream("Patient", id).await.unwrap();
    serde_json::from_str(&events[0].metadata).unwrap()
}

/// The access log's entry for the request with this id.
fn log_entry(app: &TestApp, request_id: &str) -> Value {
    app.edge
        .access_log()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|entry| entry["request_id"] == request_id)
        .unwrap_or_else(|| panic!("no access log entry for {request_id}"))
}

#[tokio::test]
async fn a_client_request_id_reaches_the_event_and_comes_back_and_is_logged() {
    let app = TestApp::spawn().await;
    let request_id = format!("e2e-{}", uuid::Uuid::new_v4());
    let response = app
        .request(Method::POST, "/fhir/Patient")
        .header("content-type", "application/fhir+json")
        .header("x-request-id", &request_id)
        .body(patient("Traced").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    // Once: the service's own copy is replaced by the edge's, not added to.
    let returned: Vec<_> = response.headers().get_all("x-request-id").iter().collect();
    assert_eq!(returned, [request_id.as_str()]);
    let created: Value = response.json().await.unwrap();

    let metadata = event_metadata(&app, created["id"].as_str().unwrap()).await;
    assert_eq!(metadata["requestId"], request_id.as_str());
    // The edge says who the client was.
    assert_eq!(metadata["forwardedFor"], "127.0.0.1");

    let entry = log_entry(&app, &request_id);
    assert_eq!(entry["method"], "POST");
    assert_eq!(entry["uri"], "/fhir/Patient");
    assert_eq!(entry["status"], 201);
    assert_eq!(entry["upstream_status"], "201");
    assert!(
        entry["upstream"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{entry}"
    );
    assert!(entry["request_time"].is_number(), "{entry}");
    app.cleanup().await;
}

#[tokio::test]
async fn without_one_the_edge_makes_the_request_id_the_service_records() {
    let app = TestApp::spawn().await;
    let response = app
        .send_fhir(Method::POST, "/fhir/Patient", &patient("Untraced"))
        .await;
    assert_eq!(response.status(), 201);
    let request_id = header(&response, "x-request-id").unwrap().to_owned();
    assert!(
        request_id.len() == 32 && request_id.chars().all(|c| c.is_ascii_hexdigit()),
        "{request_id}"
    );
    let created: Value = response.json().await.unwrap();
    let metadata = event_metadata(&app, created["id"].as_str().unwrap()).await;
    assert_eq!(metadata["requestId"], request_id.as_str());
    log_entry(&app, &request_id);

    // An id no log should copy (spaces, quotes) is replaced the same way.
    let response = app
        .request(Method::GET, "/fhir/metadata")
        .header("x-request-id", "two words \"quoted\"")
        .send()
        .await
        .unwrap();
    let replaced = header(&response, "x-request-id").unwrap();
    assert_eq!(replaced.len(), 32, "{replaced}");
    app.cleanup().await;
}
