//! NATS goes away in the middle of 1,000 writes and comes back: the writes all succeed, and
//! JetStream ends with exactly those events, in position order.

use std::collections::BTreeSet;
use std::time::Duration;

use test_support::NatsServer;

use crate::helpers::{TestApp, patient};
use crate::relay::read_all;

#[tokio::test]
async fn writes_survive_a_nats_outage_and_every_event_arrives_once_in_order() {
    let mut nats = NatsServer::start();
    let app = TestApp::spawn_with_nats(&nats.url()).await;

    for n in 0..200 {
        app.create_ok(&patient(&format!("Before{n}"))).await;
    }
    nats.stop();
    for n in 0..600 {
        app.create_ok(&patient(&format!("During{n}"))).await;
    }
    // Some time with NATS down, so the relay really fails and backs off.
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.start_again();
    for n in 0..200 {
        app.create_ok(&patient(&format!("After{n}"))).await;
    }

    let messages = read_all(&nats.url(), &app.stream, 1000).await;
    assert_eq!(
        messages.len(),
        1000,
        "exactly the 1,000 events: none lost, none doubled"
    );
    let positions: Vec<i64> = messages
        .iter()
        .map(|(_, _, position, _)| *position)
        .collect();
    assert_eq!(
        positions,
        (1..=1000).collect::<Vec<i64>>(),
        "in position order"
    );
    let ids: BTreeSet<&str> = messages.iter().map(|(_, id, _, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 1000);
    assert_eq!(app.event_count().await, 1000);
}
