//! Resuming: a client that comes back with the last position it saw gets every matching event
//! written while it was away, then the live ones, none lost and none twice, in order.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, ids, observation, patient};

#[tokio::test]
async fn a_client_that_resumes_misses_nothing_and_gets_nothing_twice() {
    // A long grace, so the resume below surely comes within it.
    let app = TestApp::spawn(&[("--resume-grace-ms", "3000")]).await;
    app.put(&patient("hana", "Hill")).await;
    let written = app.put(&patient("ivo", "Imre")).await;
    app.settled(written).await;

    let mut first = app.connect().await;
    first.subscribe(json!({"patient": "hana"})).await;
    app.put(&observation("seen", "hana", "vital-signs", "8867-4", 70.0))
        .await;
    let last_seen = first.next_event().await["position"].as_i64().unwrap();
    first.close().await;

    // While away: hers, someone else's, an update and a delete of hers.
    let mut missed = Vec::new();
    for n in 0..30 {
        app.put(&observation(
            &format!("away-{n}"),
            "hana",
            "vital-signs",
            "8867-4",
            70.0 + f64::from(n),
        ))
        .await;
        missed.push(format!("Observation/away-{n}"));
        app.put(&observation(
            &format!("ivo-{n}"),
            "ivo",
            "vital-signs",
            "8867-4",
            60.0,
        ))
        .await;
    }
    app.put(&observation(
        "away-0",
        "hana",
        "vital-signs",
        "8867-4",
        99.0,
    ))
    .await;
    missed.push("Observation/away-0".to_owned());
    let response = app
        .client
        .delete(format!("{}/Observation/away-1", app.writes))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    missed.push("Observation/away-1".to_owned());

    // Writes keep coming while the client reconnects and replays.
    let writer = {
        let writes = app.writes.clone();
        let client = app.client.clone();
        tokio::spawn(async move {
            for n in 0..20 {
                let resource = observation(
                    &format!("during-{n}"),
                    "hana",
                    "vital-signs",
                    "8867-4",
                    80.0,
                );
                let response = client
                    .put(format!("{writes}/Observation/during-{n}"))
                    .header("content-type", "application/fhir+json")
                    .body(resource.to_string())
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut again = app.connect().await;
    again.subscribe(json!({"patient": "hana"})).await;
    // Live events come in between; they must wait for the replay.
    tokio::time::sleep(Duration::from_millis(300)).await;
    again
        .send(json!({"type": "resume", "after": last_seen}))
        .await;

    let mut received = Vec::new();
    let mut caught_up = None;
    while received
        .iter()
        .filter(|event: &&serde_json::Value| {
            event["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("during-"))
        })
        .count()
        < 20
    {
        let message = again.next().await;
        match message["type"].as_str() {
            Some("event") => received.push(message),
            Some("caught-up") => {
                assert!(caught_up.is_none(), "one caught-up");
                caught_up = Some(received.len());
            }
            Some("heartbeat") => {}
            _ => panic!("unexpected {message}"),
        }
    }
    writer.await.unwrap();
    let caught_up = caught_up.expect("a caught-up message");
    assert!(
        caught_up >= missed.len(),
        "the missed events come before caught-up"
    );
    let positions: Vec<i64> = received
        .iter()
        .map(|event| event["position"].as_i64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "in order, none twice: {positions:?}"
    );
    assert!(positions[0] > last_seen);
    let got = ids(&received);
    assert_eq!(
        got[..missed.len()],
        missed[..],
        "the missed ones first, in write order"
    );
    let during: Vec<String> = (0..20).map(|n| format!("Observation/during-{n}")).collect();
    assert_eq!(got[missed.len()..], during[..]);
    again.assert_quiet(Duration::from_millis(1500)).await;
    app.cleanup().await;
}

#[tokio::test]
async fn resuming_from_the_start_replays_the_history_then_goes_live() {
    let app = TestApp::spawn(&[]).await;
    app.put(&patient("jo", "Jones")).await;
    for n in 0..5 {
        app.put(&observation(
            &format!("old-{n}"),
            "jo",
            "vital-signs",
            "8867-4",
            70.0,
        ))
        .await;
    }
    let mut client = app.connect().await;
    client
        .subscribe(json!({"resourceType": "Observation"}))
        .await;
    client.send(json!({"type": "resume", "after": 0})).await;
    let replayed = client.events_until("Observation", "old-4").await;
    assert_eq!(
        ids(&replayed),
        (0..5)
            .map(|n| format!("Observation/old-{n}"))
            .collect::<Vec<_>>()
    );
    let caught_up = client.next().await;
    assert_eq!(caught_up["type"], "caught-up");
    assert!(caught_up["position"].as_i64() >= replayed[4]["position"].as_i64());
    app.put(&observation("new", "jo", "vital-signs", "8867-4", 70.0))
        .await;
    assert_eq!(client.next_event().await["id"], "new");
    app.cleanup().await;
}
