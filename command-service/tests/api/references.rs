//! Referential integrity on write.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_outcome, patient};

fn observation(reference: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "heart rate"},
        "subject": {"reference": reference},
        "valueQuantity": {"value": 72, "unit": "/min"}
    })
}

#[tokio::test]
async fn references_must_name_live_resources() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Target")).await;

    for good in [
        format!("Patient/{id}"),
        format!("Patient/{id}/_history/1"),
        "http://elsewhere.example/fhir/Patient/1".to_owned(),
        "urn:uuid:0e4b6d53-8c2b-4d8c-9c1e-6c8f6a1d2c3b".to_owned(),
    ] {
        let response = app.create(&observation(&good)).await;
        assert_eq!(
            response.status(),
            201,
            "{good}: {}",
            response.text().await.unwrap()
        );
    }
    let contained = json!({
        "resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "contained": [{"resourceType": "Patient", "id": "p1"}],
        "subject": {"reference": "#p1"}
    });
    assert_eq!(app.create(&contained).await.status(), 201);
    let events = app.event_count().await;

    for (bad, mentions) in [
        ("Patient/nobody", "Patient/nobody"),
        ("Spaceship/1", "not a valid reference"),
        ("Patient/", "not a valid reference"),
        ("Patient/a/b", "not a valid reference"),
        ("Patient?identifier=urn:x|1", "transaction Bundles"),
    ] {
        let outcome = assert_outcome(app.create(&observation(bad)).await, 400).await;
        let text = outcome.to_string();
        assert!(text.contains(mentions), "{bad}: {text}");
        assert!(
            text.contains("Observation.subject.reference"),
            "{bad}: the path is named: {text}"
        );
    }

    // A deleted target is no longer a valid one, on create or on update.
    app.delete(&format!("Patient/{id}")).await;
    let events = events + 1;
    assert_outcome(
        app.create(&observation(&format!("Patient/{id}"))).await,
        400,
    )
    .await;
    assert_eq!(app.event_count().await, events, "nothing was written");
    app.cleanup().await;
}

#[tokio::test]
async fn a_patch_cannot_introduce_a_dangling_reference() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Target")).await;
    let observation_id = app.create_ok(&observation(&format!("Patient/{id}"))).await;
    let response = app
        .client
        .patch(format!("{}/Observation/{observation_id}", app.writes))
        .header("content-type", "application/json-patch+json")
        .body(
            json!([{"op": "replace", "path": "/subject/reference", "value": "Patient/ghost"}])
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_outcome(response, 400).await;
    assert_eq!(app.event_count().await, 2);
    app.cleanup().await;
}
