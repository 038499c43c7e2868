//! The notifier's defences and its shared state: a client that does not read is dropped while
//! another carries on, bad messages get errors without harm (even one whose handling panics),
//! an oversized message is closed with 1009, the per-address cap holds across instances and
//! counts the forwarded address only from a trusted proxy, every connection gives its seat
//! back however it ends, silence brings heartbeats, and Redis shows who is connected where.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use notifier::presence::Presence;
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

/// Open connections Redis counts for `address` under `prefix`.
async fn counted(prefix: &str, address: &str) -> i64 {
    let client = redis::Client::open(test_support::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let count: Option<i64> = redis::cmd("HGET")
        .arg(format!("{prefix}:addresses"))
        .arg(address)
        .query_async(&mut redis)
        .await
        .unwrap();
    count.unwrap_or(0)
}

async fn until_uncounted(prefix: &str, address: &str) {
    test_support::eventually(
        "every seat is given back",
        Duration::from_secs(20),
        || async { (counted(prefix, address).await == 0).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_message_that_panics_costs_neither_the_connection_nor_its_seat() {
    let app = TestApp::spawn(&[("--max-connections-per-address", "64")]).await;
    // `1e-28` overflowed the search parser's decimal arithmetic, which panicked and took the
    // connection, and its seat, with it; 64 of them locked the address out.
    let hostile = json!({"type": "subscribe", "criteria": "Observation?value-quantity=1e-28"});
    for n in 0..100 {
        let mut client = app.connect().await;
        client.send(hostile.clone()).await;
        let answer = client.next().await;
        assert_eq!(answer["type"], "error", "{answer}");
        client.send(json!({"type": "ping"})).await;
        assert_eq!(
            client.next().await,
            json!({"type": "pong"}),
            "connection {n}"
        );
        if n % 2 == 0 {
            client.close().await;
        } else {
            client.abandon();
        }
    }
    until_uncounted(&app.redis_prefix, "127.0.0.1").await;
    let mut fresh = Vec::new();
    for n in 0..64 {
        let mut client = app.connect().await;
        client.send(json!({"type": "ping"})).await;
        assert_eq!(client.next().await, json!({"type": "pong"}), "fresh {n}");
        fresh.push(client);
    }
    let mut one_more = app.connect().await;
    assert_eq!(
        one_more.next_within(Duration::from_secs(10)).await,
        Some(Err((1008, "too many connections".to_owned())))
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_seat_is_given_back_when_its_task_panics_or_is_aborted() {
    let (stream, _) = test_support::unique_stream();
    let prefix = format!("ws-test-seat-{stream}");
    let presence = Arc::new(Presence::new(&test_support::redis_url(), &prefix, 2, 10));
    let address: IpAddr = "192.0.2.10".parse().unwrap();

    let mut seat = presence.admit(address, 1).await.unwrap();
    presence.claim_criteria(&mut seat).await.unwrap();
    let panicking = tokio::spawn(async move {
        let _held = seat;
        tokio::task::yield_now().await;
        panic!("a connection's task fails");
    });
    assert!(panicking.await.unwrap_err().is_panic());

    let seat = presence.admit(address, 2).await.unwrap();
    let (started, running) = tokio::sync::oneshot::channel();
    let hanging = tokio::spawn(async move {
        let _held = seat;
        let _ = started.send(());
        std::future::pending::<()>().await;
    });
    running.await.unwrap();
    hanging.abort();
    assert!(hanging.await.unwrap_err().is_cancelled());

    until_uncounted(&prefix, "192.0.2.10").await;
    let first = presence.admit(address, 3).await.unwrap();
    let second = presence.admit(address, 4).await.unwrap();
    assert!(presence.admit(address, 5).await.is_err(), "the cap holds");
    let client = redis::Client::open(test_support::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let criteria: Option<i64> = redis::cmd("HGET")
        .arg(format!("{prefix}:criteria"))
        .arg("192.0.2.10")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(criteria, None, "the search subscription was given back too");
    first.leave().await;
    second.leave().await;
    assert_eq!(counted(&prefix, "192.0.2.10").await, 0);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    for key in keys {
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut redis)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_oversized_message_is_closed_with_1009() {
    let app = TestApp::spawn(&[]).await;
    let mut client = app.connect().await;
    client
        .send_text(&format!(
            r#"{{"type":"ping","pad":"{}"}}"#,
            "z".repeat(40 * 1024)
        ))
        .await;
    match client.next_within(Duration::from_secs(10)).await {
        Some(Err((1009, reason))) => assert!(reason.contains("too big"), "{reason}"),
        other => panic!("expected a 1009 close, got {other:?}"),
    }
    // Its seat is back.
    until_uncounted(&app.redis_prefix, "127.0.0.1").await;
    app.cleanup().await;
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_a_trusted_proxy() {
    // Trusting only an edge elsewhere, a local client is not a proxy and cannot choose the
    // address it is counted under: both count as 127.0.0.1.
    let app = TestApp::spawn(&[
        ("--max-connections-per-address", "1"),
        ("--trusted-proxies", "192.0.2.254"),
    ])
    .await;
    let mut first = WsClient::connect_with(&app.ws, &[("x-real-ip", "203.0.113.7")]).await;
    first.send(json!({"type": "ping"})).await;
    assert_eq!(first.next().await, json!({"type": "pong"}));
    let mut spoofed = WsClient::connect_with(
        &app.ws,
        &[
            ("x-real-ip", "203.0.113.8"),
            ("x-forwarded-for", "203.0.113.9"),
        ],
    )
    .await;
    assert_eq!(
        spoofed.next_within(Duration::from_secs(10)).await,
        Some(Err((1008, "too many connections".to_owned())))
    );
    let addresses: Vec<Value> = connected(&app)
        .await
        .into_values()
        .map(|record| record["address"].clone())
        .collect();
    assert_eq!(addresses, [json!("127.0.0.1")]);

    // Behind the edge (a trusted proxy: loopback, by default), each client is counted under
    // the address the edge appended to `X-Forwarded-For`.
    let edge = app
        .spawn_notifier(&[("--max-connections-per-address", "1")])
        .await;
    let mut behind = Vec::new();
    for forwarded in ["198.51.100.1", "198.51.100.2"] {
        let mut client = WsClient::connect_with(&edge, &[("x-forwarded-for", forwarded)]).await;
        client.send(json!({"type": "ping"})).await;
        assert_eq!(client.next().await, json!({"type": "pong"}), "{forwarded}");
        behind.push(client);
    }
    let mut through_xff =
        WsClient::connect_with(&edge, &[("x-forwarded-for", "192.0.2.1, 198.51.100.3")]).await;
    through_xff.send(json!({"type": "ping"})).await;
    assert_eq!(through_xff.next().await, json!({"type": "pong"}));
    let mut addresses: Vec<String> = connected(&app)
        .await
        .into_values()
        .map(|record| record["address"].as_str().unwrap().to_owned())
        .collect();
    addresses.sort();
    assert_eq!(
        addresses,
        ["127.0.0.1", "198.51.100.1", "198.51.100.2", "198.51.100.3"]
    );
    app.cleanup().await;
}
