//! What one client may cost the others: subscriptions are budgeted per connection and, for
//! searches, per address, every search on an event is evaluated in one statement, and a resume
//! from far back is streamed without holding up anyone's live events.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::helpers::{TestApp, WsClient, observation, patient};

/// The longest a live event may take from its write's answer to a client, with a hostile
/// client at work beside it.
const FAST: Duration = Duration::from_millis(100);

/// Writes `count` Observations of `patient` one at a time (ids starting `label`) and gives how
/// long each took from the write's answer to its event reaching `client`.
async fn delivery_times(
    app: &TestApp,
    client: &mut WsClient,
    patient: &str,
    label: &str,
    count: usize,
) -> Vec<Duration> {
    let mut times = Vec::new();
    for n in 0..count {
        let id = format!("{patient}-{label}-{n}");
        app.put(&observation(&id, patient, "vital-signs", "8867-4", 70.0))
            .await;
        let written = Instant::now();
        let event = client.next_event().await;
        times.push(written.elapsed());
        assert_eq!(event["id"], id.as_str());
    }
    times
}

/// The search subscriptions Redis counts for 127.0.0.1.
async fn searches_counted(app: &TestApp) -> i64 {
    let client = redis::Client::open(test_support::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let count: Option<i64> = redis::cmd("HGET")
        .arg(format!("{}:criteria", app.redis_prefix))
        .arg("127.0.0.1")
        .query_async(&mut redis)
        .await
        .unwrap();
    count.unwrap_or(0)
}

/// Writes one Observation and waits for it: the first event of a type with searches waits for
/// the projections to have indexed everything written before.
async fn warm_up(app: &TestApp, client: &mut WsClient, patient: &str) {
    let id = format!("{patient}-warm");
    app.put(&observation(&id, patient, "vital-signs", "8867-4", 70.0))
        .await;
    assert_eq!(client.next_event().await["id"], id.as_str());
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

#[tokio::test]
async fn searches_past_the_budget_are_refused_and_others_stay_fast() {
    let app = TestApp::spawn(&[
        ("--max-subscriptions-per-connection", "50"),
        ("--max-criteria-per-address", "100"),
    ])
    .await;
    app.put(&patient("pia", "Park")).await;
    let written = app.put(&patient("rex", "Reed")).await;
    app.settled(written).await;

    // How long another client's events take with one search on Observation: every event of
    // the type then waits for the projections, as it will below.
    let mut other = app.connect().await;
    other.subscribe(json!({"patient": "pia"})).await;
    let mut watcher = app.connect().await;
    watcher
        .subscribe(json!({"criteria": "Observation?subject=Patient/nobody"}))
        .await;
    warm_up(&app, &mut other, "pia").await;
    let quiet = delivery_times(&app, &mut other, "pia", "quiet", 5).await;
    watcher.close().await;

    // 2,000 distinct searches on Observation, 50 per connection from one address.
    let mut hostile = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for connection in 0..40 {
        let mut client = app.connect().await;
        for n in 0..50 {
            let criteria = format!(
                "Observation?subject=Patient/rex&value-quantity=gt{}",
                connection * 50 + n
            );
            client
                .send(json!({"type": "subscribe", "criteria": criteria}))
                .await;
        }
        for _ in 0..50 {
            let answer = client.next().await;
            match answer["type"].as_str() {
                Some("subscribed") => accepted += 1,
                Some("error") => {
                    assert_eq!(answer["code"], "subscription-budget", "{answer}");
                    refused += 1;
                }
                _ => panic!("unexpected {answer}"),
            }
        }
        hostile.push(client);
    }
    assert_eq!((accepted, refused), (100, 1900));

    // One connection's own limit, whatever the address has left.
    let mut greedy = app.connect().await;
    for n in 0..50 {
        greedy.subscribe(json!({"patient": format!("p{n}")})).await;
    }
    greedy
        .send(json!({"type": "subscribe", "ward": "w1"}))
        .await;
    let answer = greedy.next().await;
    assert_eq!(answer["code"], "subscription-budget", "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("at most 50"),
        "{answer}"
    );
    // Giving one back makes room.
    greedy
        .send(json!({"type": "unsubscribe", "patient": "p0"}))
        .await;
    assert_eq!(greedy.next().await["type"], "unsubscribed");
    greedy.subscribe(json!({"ward": "w1"})).await;

    // Every Observation is now evaluated against the 100 searches; another client's events
    // still come at once (before the budget and the single statement: 2.9 s).
    let times = delivery_times(&app, &mut other, "pia", "busy", 10).await;
    println!("delivery with one search on the type: {quiet:?}; with 100: {times:?}");
    assert!(
        median(&times) < median(&quiet) + FAST,
        "{quiet:?} {times:?}"
    );

    // The searches still match: the hostile subscriptions hear of rex's Observation.
    app.put(&observation("rex-1", "rex", "vital-signs", "8867-4", 75.5))
        .await;
    let event = hostile[0].next_event().await;
    assert_eq!(event["id"], "rex-1");
    let matched = event["subscriptions"].as_array().unwrap();
    // gt0 .. gt49 on the first connection: 75.5 is above all of them.
    assert_eq!(matched.len(), 50, "{event}");
    let event = hostile[1].next_event().await;
    let matched: Vec<&str> = event["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    // gt50 .. gt99 on the second: 75.5 is above gt50 .. gt75.
    assert_eq!(matched.len(), 26, "{matched:?}");

    // A connection that goes gives its searches back to its address.
    for client in hostile.drain(..) {
        client.close().await;
    }
    test_support::eventually(
        "the address's searches are given back",
        Duration::from_secs(20),
        || async { (searches_counted(&app).await == 0).then_some(()) },
    )
    .await;
    let mut later = app.connect().await;
    for n in 0..50 {
        later
            .subscribe(json!({"criteria": format!("Observation?value-quantity=gt{n}")}))
            .await;
    }
    assert_eq!(searches_counted(&app).await, 50);
    app.cleanup().await;
}

#[tokio::test]
async fn a_resume_from_far_back_is_streamed_while_others_stay_fast() {
    let app = TestApp::spawn(&[("--resume-grace-ms", "3000")]).await;
    app.put(&patient("sam", "Shaw")).await;
    app.put(&patient("tia", "Tate")).await;
    let total = 3000;
    let mut last = 0;
    for batch in 0..(total / 250) {
        let resources: Vec<Value> = (0..250)
            .map(|n| {
                let n = batch * 250 + n;
                observation(
                    &format!("old-{n}"),
                    "sam",
                    "vital-signs",
                    "8867-4",
                    f64::from(u32::try_from(n % 200).unwrap()),
                )
            })
            .collect();
        last = app.put_all(&resources).await;
    }
    app.settled(last).await;

    let mut other = app.connect().await;
    other.subscribe(json!({"patient": "tia"})).await;

    let mut resuming = app.connect().await;
    resuming.subscribe(json!({"patient": "sam"})).await;
    resuming
        .subscribe(json!({"criteria": "Observation?value-quantity=gt100"}))
        .await;
    warm_up(&app, &mut other, "tia").await;
    let quiet = delivery_times(&app, &mut other, "tia", "quiet", 5).await;

    let started = Instant::now();
    resuming.send(json!({"type": "resume", "after": 0})).await;

    // While it replays: live events for the other client, and for the resuming one.
    let times = delivery_times(&app, &mut other, "tia", "busy", 10).await;
    let written = app
        .put(&observation(
            "sam-live",
            "sam",
            "vital-signs",
            "8867-4",
            120.0,
        ))
        .await;

    let mut positions = Vec::new();
    let mut caught_up = None;
    let mut live_seen = false;
    while caught_up.is_none() || !live_seen {
        let message = resuming.next().await;
        match message["type"].as_str() {
            Some("event") => {
                positions.push(message["position"].as_i64().unwrap());
                live_seen |= message["id"] == "sam-live";
            }
            Some("caught-up") => {
                assert!(caught_up.is_none(), "one caught-up");
                caught_up = Some(positions.len());
            }
            Some("heartbeat") => {}
            _ => panic!("unexpected {message}"),
        }
    }
    println!(
        "replayed {} events in {:?}; the other client's deliveries meanwhile: {times:?}",
        positions.len(),
        started.elapsed()
    );
    println!("the other client's deliveries before the resume: {quiet:?}");
    assert!(
        median(&times) < median(&quiet) + FAST,
        "{quiet:?} {times:?}"
    );
    assert!(
        times.iter().all(|time| *time < Duration::from_secs(1)),
        "no live event waits for the replay: {times:?}"
    );
    // The Patient, the 3,000 Observations and the live one (replayed, if it was written
    // before the replay reached the end): none lost, none twice, in order.
    assert!(
        caught_up >= Some(total + 1),
        "caught-up after the replay: {caught_up:?}"
    );
    assert_eq!(positions.len(), total + 2);
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(positions.last(), Some(&written));
    resuming.assert_quiet(Duration::from_millis(1000)).await;
    app.cleanup().await;
}
