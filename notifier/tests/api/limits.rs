//! The notifier's defences and its shared state: a client that does not read is dropped while
//! another carries on, bad messages get errors without harm, the per-address cap holds across
//! instances, silence brings heartbeats, and Redis shows who is connected where.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, WsClient, observation, patient};

#[tokio::test]
async fn a_client_that_does_not_read_is_dropped_and_the_others_carry_on() {
    let app = TestApp::spawn(&[("--queue", "64")]).await;
    let written = app.put(&patient("kai", "Kerr")).await;
    app.settled(written).await;
    let mut reader = app.connect().await;
    reader.subscribe(json!({"patient": "kai"})).await;
    let mut sleeper = app.connect().await;
    sleeper.subscribe(json!({"patient": "kai"})).await;

    let last = "big-399";
    let reading = tokio::spawn(async move { reader.events_until("Observation", last).await.len() });

    // Large events, so the sleeper's socket buffers fill and its queue with them.
    let padding = "x".repeat(60_000);
    // More than the queue, and more than loopback's socket buffers hold (a few MB), arriving
    // in transactions smaller than the queue, so a client that reads keeps up.
    let total = 400;
    for batch in 0..(total / 25) {
        let resources: Vec<Value> = (0..25)
            .map(|n| {
                let mut resource = observation(
                    &format!("big-{}", batch * 25 + n),
                    "kai",
                    "vital-signs",
                    "8867-4",
                    70.0,
                );
                resource["note"] = json!([{"text": padding}]);
                resource
            })
            .collect();
        app.put_all(&resources).await;
    }
    assert_eq!(
        reading.await.unwrap(),
        total,
        "the reading client gets every event"
    );

    let mut events = 0;
    let closed = loop {
        match sleeper.next_within(Duration::from_secs(20)).await {
            Some(Ok(message)) if message["type"] == "event" => events += 1,
            Some(Ok(_)) => {}
            Some(Err(close)) => break close,
            None => panic!("the slow client was neither served nor closed"),
        }
    };
    assert_eq!(
        closed,
        (1008, "slow consumer".to_owned()),
        "after {events} events"
    );
    assert!(events < total);

    let status: Value = app
        .client
        .get(app.status_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(status["evicted"].as_u64() >= Some(1), "{status}");
    app.cleanup().await;
}

#[tokio::test]
async fn bad_messages_get_errors_and_the_connection_stays() {
    let app = TestApp::spawn(&[]).await;
    let mut client = app.connect().await;
    for (bad, says) in [
        ("{not json", "not valid JSON"),
        (r#"{"type":"dance"}"#, "unknown message type"),
        (r#"{"type":"subscribe"}"#, "exactly one of"),
        (
            r#"{"type":"subscribe","resourceType":"Spaceship"}"#,
            "not a FHIR R4 resource type",
        ),
        (
            r#"{"type":"subscribe","criteria":"Observation?flavour=sweet"}"#,
            "flavour",
        ),
        (r#"{"type":"resume","after":"yesterday"}"#, "after"),
        (
            r#"{"type":"unsubscribe","id":"patient:nobody"}"#,
            "no subscription",
        ),
    ] {
        client.send_text(bad).await;
        let answer = client.next().await;
        assert_eq!(answer["type"], "error", "{bad}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{bad}: {answer}"
        );
    }
    client.send_binary(&[0, 159, 146, 150]).await;
    assert_eq!(client.next().await["type"], "error");
    client
        .send_text(&format!(
            r#"{{"type":"ping","pad":"{}"}}"#,
            "y".repeat(20_000)
        ))
        .await;
    assert_eq!(client.next().await["type"], "error");
    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.next().await, json!({"type": "pong"}));
    app.cleanup().await;
}

#[tokio::test]
async fn silence_brings_heartbeats() {
    let app = TestApp::spawn(&[("--heartbeat-ms", "300")]).await;
    let position = app.put(&patient("lena", "Lund")).await;
    let mut client = app.connect().await;
    // Heartbeats carry the newest position the notifier has seen; the first may come before
    // the write reached it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let message = client.next().await;
        assert_eq!(message["type"], "heartbeat", "{message}");
        if message["position"].as_i64() >= Some(position) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no heartbeat reached {position}"
        );
    }
    app.cleanup().await;
}

async fn connected(app: &TestApp) -> HashMap<String, Value> {
    let client = redis::Client::open(test_support::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let records: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{}:connected", app.redis_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    records
        .into_iter()
        .map(|(field, record)| (field, serde_json::from_str(&record).unwrap()))
        .collect()
}

#[tokio::test]
async fn two_instances_share_the_cap_and_both_serve_every_event() {
    let app = TestApp::spawn(&[("--max-connections-per-address", "2")]).await;
    let second = app
        .spawn_notifier(&[("--max-connections-per-address", "2")])
        .await;
    let written = app.put(&patient("mo", "Moss")).await;
    app.settled(written).await;

    let mut on_first = app.connect().await;
    on_first.subscribe(json!({"patient": "mo"})).await;
    let mut on_second = WsClient::connect(&second).await;
    on_second
        .subscribe(json!({"resourceType": "Observation"}))
        .await;

    let records = connected(&app).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let instances: std::collections::BTreeSet<&str> = records
        .values()
        .map(|r| r["instance"].as_str().unwrap())
        .collect();
    assert_eq!(instances.len(), 2, "one connection on each instance");
    let mut subscriptions: Vec<&Value> = records.values().map(|r| &r["subscriptions"]).collect();
    subscriptions.sort_by_key(|s| s.to_string());
    assert_eq!(
        subscriptions,
        [&json!(["patient:mo"]), &json!(["resourceType:Observation"])]
    );

    // The third connection from this address is refused, on either instance.
    let mut third = WsClient::connect(&second).await;
    assert_eq!(
        third.next_within(Duration::from_secs(10)).await,
        Some(Err((1008, "too many connections".to_owned())))
    );
    let mut fourth = app.connect().await;
    assert_eq!(
        fourth.next_within(Duration::from_secs(10)).await,
        Some(Err((1008, "too many connections".to_owned())))
    );

    app.put(&observation("m1", "mo", "vital-signs", "8867-4", 70.0))
        .await;
    assert_eq!(on_first.next_event().await["id"], "m1");
    assert_eq!(on_second.next_event().await["id"], "m1");

    // A closed connection gives its place back.
    on_second.close().await;
    test_support::eventually("the record goes", Duration::from_secs(10), || async {
        (connected(&app).await.len() == 1).then_some(())
    })
    .await;
    let mut again = WsClient::connect(&second).await;
    again.subscribe(json!({"patient": "mo"})).await;
    app.cleanup().await;
}
