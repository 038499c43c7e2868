//! The outbox relay: committed events reach JetStream in position order, once each, in the
//! envelope the schema describes.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{TestApp, patient};

/// Reads every message of `stream` in order: (subject, Nats-Msg-Id, Fhir-Position, payload).
pub async fn read_all(
    nats_url: &str,
    stream: &str,
    expected: usize,
) -> Vec<(String, String, i64, Value)> {
    let client = event_store::relay::connect_nats(nats_url).await.unwrap();
    let context = jetstream::new(client);
    let stream = test_support::eventually("the stream to exist", Duration::from_secs(20), || {
        let context = context.clone();
        async move { context.get_stream(stream).await.ok() }
    })
    .await;
    let mut stream = stream;
    test_support::eventually("all events in JetStream", Duration::from_secs(60), || {
        let mut stream = stream.clone();
        async move {
            let count = stream.info().await.ok()?.state.messages;
            (count >= expected as u64).then_some(())
        }
    })
    .await;
    let total = stream.info().await.unwrap().state.messages as usize;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer
        .fetch()
        .max_messages(total)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .unwrap();
    let mut out = Vec::new();
    while out.len() < total {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let headers = message.headers.clone().unwrap();
        out.push((
            message.subject.to_string(),
            headers.get("Nats-Msg-Id").unwrap().to_string(),
            headers
                .get("Fhir-Position")
                .unwrap()
                .as_str()
                .parse()
                .unwrap(),
            serde_json::from_slice(&message.payload).unwrap(),
        ));
    }
    out
}

#[tokio::test]
async fn every_write_is_published_in_position_order_in_the_documented_envelope() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Smith")).await;
    let mut changed = patient("Jones");
    changed["id"] = json!(id);
    assert_eq!(app.update(&changed, None).await.status(), 200);
    let patch = json!([{"op": "add", "path": "/active", "value": true}]);
    let patched = app
        .client
        .patch(format!("{}/Patient/{id}", app.writes))
        .header("content-type", "application/json-patch+json")
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let observation = app
        .create_ok(&json!({"resourceType": "Observation", "status": "final", "code": {"text": "HR"}, "subject": {"reference": format!("Patient/{id}")}}))
        .await;
    assert_eq!(app.delete(&format!("Patient/{id}")).await.status(), 200);

    let messages = read_all(&app.nats_url, &app.stream, 5).await;
    assert_eq!(messages.len(), 5);
    let schema: Value = serde_json::from_str(include_str!(
        "../../../schemas/events/fhir-event.schema.json"
    ))
    .unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let expected = [
        ("Patient", id.as_str(), 1, "ResourceCreated"),
        ("Patient", id.as_str(), 2, "ResourceUpdated"),
        ("Patient", id.as_str(), 3, "ResourceUpdated"),
        ("Observation", observation.as_str(), 1, "ResourceCreated"),
        ("Patient", id.as_str(), 4, "ResourceDeleted"),
    ];
    for (n, ((subject, message_id, position, envelope), (kind_type, kind_id, version, kind))) in
        messages.iter().zip(expected).enumerate()
    {
        let errors: Vec<String> = validator
            .iter_errors(envelope)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "message {n} breaks the schema: {errors:?}\n{envelope}"
        );
        assert_eq!(*position, n as i64 + 1);
        assert_eq!(envelope["position"], json!(n + 1));
        assert_eq!(subject, &format!("{}.{kind_type}", app.subject_prefix));
        assert_eq!(message_id, &format!("{kind_type}/{kind_id}/{version}"));
        assert_eq!(envelope["kind"], kind);
        assert_eq!(envelope["version"], json!(version));
    }
    assert_eq!(
        messages[2].3["patch"], patch,
        "a PATCH event carries its patch"
    );
    assert_eq!(
        messages[1].3["prevHash"], messages[0].3["hash"],
        "the hash chain is in the envelope"
    );
    app.cleanup().await;
}

async fn create_many(app: &TestApp, base: &str, count: usize) {
    for n in 0..count {
        let response = app
            .client
            .post(format!("{base}/Patient"))
            .header("content-type", "application/fhir+json")
            .body(patient(&format!("P{n}")).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
}

/// Three instances, three relays: one publishes at a time (whichever holds the lock), and after
/// two instances stop, the one left goes on publishing (taking the lock if it did not hold it).
/// JetStream gets every event once, in position order.
#[tokio::test]
async fn several_instances_publish_each_event_once_in_order() {
    let app = TestApp::spawn().await;
    let (second, stop_second) = app.spawn_another_command_service().await;
    let (third, stop_third) = app.spawn_another_command_service().await;
    tokio::join!(
        create_many(&app, &second, 100),
        create_many(&app, &third, 100),
        create_many(&app, &app.writes, 50),
    );
    read_all(&app.nats_url, &app.stream, 250).await;
    let _ = stop_second.send(());
    let _ = stop_third.send(());
    create_many(&app, &app.writes, 50).await;

    let messages = read_all(&app.nats_url, &app.stream, 300).await;
    let positions: Vec<i64> = messages
        .iter()
        .map(|(_, _, position, _)| *position)
        .collect();
    assert_eq!(positions, (1..=300).collect::<Vec<i64>>());
    let ids: std::collections::BTreeSet<&str> =
        messages.iter().map(|(_, id, _, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 300);
    app.cleanup().await;
}

#[tokio::test]
async fn an_event_too_large_for_nats_travels_by_reference_and_the_feed_flows_on() {
    let app = TestApp::spawn_with_args(&["--max-body-bytes", "4194304"]).await;
    // 1.5 MB of base64: over NATS' 1 MiB max_payload, under the resource maximum.
    let data = "QUJD".repeat(400_000);
    let binary = app
        .create_ok(
            &json!({"resourceType": "Binary", "contentType": "application/pdf", "data": data}),
        )
        .await;
    let after = app.create_ok(&patient("After")).await;

    let messages = read_all(&app.nats_url, &app.stream, 2).await;
    assert_eq!(messages.len(), 2);
    let (_, message_id, position, envelope) = &messages[0];
    assert_eq!(message_id, &format!("Binary/{binary}/1"));
    assert_eq!(envelope["byReference"], json!(true));
    assert!(envelope.get("resource").is_none(), "{envelope}");
    let schema: Value = serde_json::from_str(include_str!(
        "../../../schemas/events/fhir-event.schema.json"
    ))
    .unwrap();
    assert!(jsonschema::is_valid(&schema, envelope), "{envelope}");

    // What a consumer does with it: the whole event, from the store.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(event_store::relay::BY_REFERENCE_HEADER, "true");
    headers.insert(
        event_store::relay::POSITION_HEADER,
        position.to_string().as_str(),
    );
    let event = event_store::relay::referenced_event(&app.store, Some(&headers))
        .await
        .expect("a by-reference message names an event")
        .unwrap();
    let resource: Value = serde_json::from_str(&event.resource).unwrap();
    assert_eq!(resource["data"], json!(data));

    // The write after it was published as usual, inline.
    let (_, message_id, _, envelope) = &messages[1];
    assert_eq!(message_id, &format!("Patient/{after}/1"));
    assert_eq!(envelope["resource"]["id"], json!(after));
    assert!(envelope.get("byReference").is_none());
    assert!(
        event_store::relay::referenced_event(&app.store, None)
            .await
            .is_none()
    );
    app.cleanup().await;
}
