//! `POST /fhir/<Type>`.

use serde_json::{Value, json};

use crate::helpers::{TestApp, patient};

#[tokio::test]
async fn create_assigns_id_and_version_and_is_readable_at_once() {
    let app = TestApp::spawn().await;
    let mut sent = patient("Smith");
    sent["id"] = json!("client-chosen");
    let response = app.create(&sent).await;
    assert_eq!(response.status(), 201);
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap();

    let id = body["id"].as_str().unwrap();
    assert_ne!(
        id, "client-chosen",
        "the server assigns the id of a created resource"
    );
    assert_eq!(body["meta"]["versionId"], "1");
    let last_updated = body["meta"]["lastUpdated"].as_str().unwrap();
    assert!(
        last_updated.ends_with('Z') && last_updated.len() == 24,
        "{last_updated}"
    );
    assert_eq!(body["name"][0]["family"], "Smith");

    let location = headers["location"].to_str().unwrap();
    assert_eq!(location, format!("{}/Patient/{id}/_history/1", app.writes));
    assert_eq!(headers["etag"], "W/\"1\"");
    assert!(headers["last-modified"].to_str().unwrap().ends_with("GMT"));
    let position: i64 = headers["x-event-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(position >= 1);
    assert!(headers.contains_key("x-request-id"));

    let read = app.read(&format!("Patient/{id}")).await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["etag"], "W/\"1\"");
    assert_eq!(read.headers()["last-modified"], headers["last-modified"]);
    let stored: Value = read.json().await.unwrap();
    assert_eq!(
        stored, body,
        "the read returns exactly what the create returned"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn decimals_and_element_order_survive_the_round_trip() {
    let app = TestApp::spawn().await;
    let text = r#"{"resourceType":"Observation","status":"final","code":{"text":"glucose"},"valueQuantity":{"value":5.50,"unit":"mmol/L"}}"#;
    let response = app
        .client
        .post(format!("{}/Observation", app.writes))
        .header("content-type", "application/fhir+json")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body = response.text().await.unwrap();
    assert!(
        body.contains(r#""value":5.50"#),
        "FHIR decimals keep their precision: {body}"
    );
    assert!(
        body.starts_with(r#"{"resourceType":"Observation","id":"#),
        "{body}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn prefer_return_chooses_the_body() {
    let app = TestApp::spawn().await;
    let minimal = app
        .client
        .post(format!("{}/Patient", app.writes))
        .header("content-type", "application/fhir+json")
        .header("prefer", "return=minimal")
        .body(patient("Minimal").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(minimal.status(), 201);
    assert!(minimal.headers().contains_key("location"));
    assert!(minimal.text().await.unwrap().is_empty());

    let outcome = app
        .client
        .post(format!("{}/Patient", app.writes))
        .header("content-type", "application/fhir+json")
        .header("prefer", "return=OperationOutcome")
        .body(patient("Outcome").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(outcome.status(), 201);
    let body: Value = outcome.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(body["issue"][0]["severity"], "information");
    app.cleanup().await;
}

#[tokio::test]
async fn every_event_records_who_wrote_it_and_from_which_request() {
    let app = TestApp::spawn().await;
    // The backend client of the test's own client.
    let by_backend = app.create_ok(&patient("Anon")).await;
    // A nurse, signed in through the web app's client; the headers that claim another identity
    // are ignored.
    let nurse = app
        .identity
        .user_token("nurse", "openid fhirUser user/*.cruds", None)
        .await;
    let observation = json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "pulse"}, "subject": {"reference": format!("Patient/{by_backend}")}});
    let response = reqwest::Client::new()
        .post(format!("{}/Observation", app.writes))
        .bearer_auth(&nurse.access_token)
        .header("content-type", "application/fhir+json")
        .header("x-demo-user", "dr.impostor")
        .header("x-demo-role", "admin")
        .header("x-request-id", "req-12345")
        .header("x-change-reason", "admission")
        .header("user-agent", "test-client/1.0")
        .body(observation.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], "req-12345");
    let named: Value = response.json().await.unwrap();

    let event = app
        .store
        .latest("Patient", &by_backend)
        .await
        .unwrap()
        .unwrap();
    let metadata: Value = serde_json::from_str(&event.metadata).unwrap();
    let actor = &metadata["actor"];
    assert_eq!(
        actor["user"], actor["clientId"],
        "a backend acts as itself: {actor}"
    );
    assert_eq!(actor["role"], Value::Null, "{actor}");
    assert_eq!(actor["scopes"], "system/*.cruds", "{actor}");
    assert!(
        metadata["requestId"].as_str().unwrap().len() >= 32,
        "a request id is generated: {metadata}"
    );
    assert!(
        metadata["sourceAddress"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );

    let event = app
        .store
        .latest("Observation", named["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let metadata: Value = serde_json::from_str(&event.metadata).unwrap();
    assert_eq!(
        metadata["actor"],
        json!({"user": "nurse", "role": "nurse", "client": "test-client/1.0",
            "fhirUser": "Practitioner/demo-nurse", "clientId": "wardline-web",
            "scopes": nurse.scope})
    );
    assert_eq!(metadata["requestId"], "req-12345");
    assert_eq!(metadata["reason"], "admission");
    assert_eq!(
        metadata["transactionId"],
        json!(event.transaction_id.to_string())
    );
    assert_eq!(event.kind, "ResourceCreated");
    assert_eq!(event.prev_hash, None);
    assert_eq!(event.hash.len(), 32);
    app.cleanup().await;
}
