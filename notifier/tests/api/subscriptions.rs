//! Subscription filtering: each kind of filter gets the events it selects and only those, an
//! event matching several subscriptions comes once, and unsubscribing stops it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, ids, observation, patient, stay, ward};

const QUIET: Duration = Duration::from_millis(1500);

fn schema() -> jsonschema::Validator {
    let mut schema: Value = serde_json::from_str(include_str!(
        "../../../schemas/notifier/ws-protocol.schema.json"
    ))
    .unwrap();
    schema["$ref"] = json!("#/$defs/ServerMessage");
    jsonschema::validator_for(&schema).unwrap()
}

#[tokio::test]
async fn patient_and_type_subscriptions_get_their_events_once_each() {
    let app = TestApp::spawn(&[]).await;
    app.put(&patient("alice", "Ames")).await;
    let written = app.put(&patient("bob", "Brown")).await;
    app.settled(written).await;

    let mut alice = app.connect().await;
    let alice_id = alice.subscribe(json!({"patient": "alice"})).await;
    assert_eq!(alice_id, "patient:alice");
    let mut everything = app.connect().await;
    everything
        .subscribe(json!({"resourceType": "Observation"}))
        .await;
    let both_id = everything.subscribe(json!({"patient": "alice"})).await;

    app.put(&observation("o-bob", "bob", "vital-signs", "8867-4", 80.0))
        .await;
    let written = app
        .put(&observation(
            "o-alice",
            "alice",
            "vital-signs",
            "8867-4",
            90.0,
        ))
        .await;
    app.put(&patient("alice", "Ames-Smith")).await;

    let event = alice.next_event().await;
    assert!(schema().is_valid(&event), "{event}");
    assert_eq!(event["position"], written);
    assert_eq!(event["kind"], "ResourceCreated");
    assert_eq!(event["resourceType"], "Observation");
    assert_eq!(event["id"], "o-alice");
    assert_eq!(event["version"], 1);
    assert_eq!(event["resource"]["valueQuantity"]["value"], 90.0);
    assert_eq!(event["subscriptions"], json!(["patient:alice"]));
    let update = alice.next_event().await;
    assert_eq!(
        (update["resourceType"].as_str(), update["kind"].as_str()),
        (Some("Patient"), Some("ResourceUpdated"))
    );
    assert_eq!(update["version"], 2);
    alice.assert_quiet(QUIET).await;

    let seen = everything.events_until("Patient", "alice").await;
    assert_eq!(
        ids(&seen),
        ["Observation/o-bob", "Observation/o-alice", "Patient/alice"]
    );
    let mut matched: Vec<String> =
        serde_json::from_value(seen[1]["subscriptions"].clone()).unwrap();
    matched.sort();
    assert_eq!(matched, [both_id.as_str(), "resourceType:Observation"]);
    assert!(
        seen.windows(2)
            .all(|pair| pair[0]["position"].as_i64() < pair[1]["position"].as_i64())
    );
    everything.assert_quiet(QUIET).await;
    app.cleanup().await;
}

#[tokio::test]
async fn criteria_are_matched_with_search_semantics() {
    let app = TestApp::spawn(&[]).await;
    app.put(&patient("carol", "Cole")).await;
    let written = app.put(&patient("dan", "Dunn")).await;
    app.settled(written).await;
    let mut client = app.connect().await;
    let id = client
        .subscribe(json!({"criteria": "Observation?category=vital-signs&subject=Patient/carol&value-quantity=gt100"}))
        .await;

    app.put(&observation("low", "carol", "vital-signs", "8867-4", 80.0))
        .await;
    app.put(&observation("lab", "carol", "laboratory", "2345-7", 140.0))
        .await;
    app.put(&observation("other", "dan", "vital-signs", "8867-4", 140.0))
        .await;
    app.put(&observation(
        "high",
        "carol",
        "vital-signs",
        "8867-4",
        140.0,
    ))
    .await;
    let event = client.next_event().await;
    assert_eq!(event["id"], "high");
    assert_eq!(event["subscriptions"], json!([id]));
    client.assert_quiet(QUIET).await;

    // An update that makes it match, then a delete of a matching one.
    app.put(&observation("low", "carol", "vital-signs", "8867-4", 120.0))
        .await;
    let event = client.next_event().await;
    assert_eq!(
        (event["id"].as_str(), event["version"].as_i64()),
        (Some("low"), Some(2))
    );
    let response = app
        .client
        .delete(format!("{}/Observation/high", app.writes))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let event = client.next_event().await;
    assert_eq!(
        (event["id"].as_str(), event["kind"].as_str()),
        (Some("high"), Some("ResourceDeleted"))
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_ward_gets_its_patients_from_admission_to_discharge() {
    let app = TestApp::spawn(&[]).await;
    app.put_all(&ward("w1")).await;
    app.put_all(&ward("w2")).await;
    app.put(&patient("erin", "Eames")).await;
    app.put(&patient("finn", "Ford")).await;
    let written = app
        .put(&stay("stay-finn", "finn", "w2-bed-1", "in-progress"))
        .await;
    app.settled(written).await;

    let mut client = app.connect().await;
    client.subscribe(json!({"ward": "w1"})).await;
    app.put(&observation(
        "before",
        "erin",
        "vital-signs",
        "8867-4",
        70.0,
    ))
    .await;
    app.put(&stay("stay-erin", "erin", "w1-bed-1", "in-progress"))
        .await;
    let admission = client.next_event().await;
    assert_eq!(
        ids(std::slice::from_ref(&admission)),
        ["Encounter/stay-erin"]
    );
    assert_eq!(admission["subscriptions"], json!(["ward:w1"]));

    app.put(&observation(
        "finn-1",
        "finn",
        "vital-signs",
        "8867-4",
        70.0,
    ))
    .await;
    app.put(&observation(
        "erin-1",
        "erin",
        "vital-signs",
        "9279-1",
        28.0,
    ))
    .await;
    assert_eq!(ids(&[client.next_event().await]), ["Observation/erin-1"]);

    app.put(&stay("stay-erin", "erin", "w1-bed-1", "finished"))
        .await;
    let discharge = client.next_event().await;
    assert_eq!(
        (discharge["id"].as_str(), discharge["version"].as_i64()),
        (Some("stay-erin"), Some(2))
    );
    app.put(&observation(
        "erin-after",
        "erin",
        "vital-signs",
        "8867-4",
        70.0,
    ))
    .await;
    app.put(
        &json!({"resourceType": "Location", "id": "w1-bed-2", "name": "Bed 2", "status": "active",
                    "partOf": {"reference": "Location/w1"}}),
    )
    .await;
    assert_eq!(ids(&[client.next_event().await]), ["Location/w1-bed-2"]);
    client.assert_quiet(QUIET).await;
    app.cleanup().await;
}

#[tokio::test]
async fn unsubscribing_stops_the_events() {
    let app = TestApp::spawn(&[]).await;
    let written = app.put(&patient("gus", "Gray")).await;
    app.settled(written).await;
    let mut client = app.connect().await;
    let id = client.subscribe(json!({"patient": "gus"})).await;
    assert_eq!(
        client.subscribe(json!({"patient": "gus"})).await,
        id,
        "same filter, same id"
    );
    app.put(&observation("g1", "gus", "vital-signs", "8867-4", 70.0))
        .await;
    assert_eq!(client.next_event().await["id"], "g1");

    client.send(json!({"type": "unsubscribe", "id": id})).await;
    assert_eq!(
        client.next().await,
        json!({"type": "unsubscribed", "id": "patient:gus"})
    );
    app.put(&observation("g2", "gus", "vital-signs", "8867-4", 71.0))
        .await;
    client.assert_quiet(QUIET).await;
    client
        .send(json!({"type": "unsubscribe", "patient": "gus"}))
        .await;
    assert_eq!(client.next().await["type"], "error");
    app.cleanup().await;
}
