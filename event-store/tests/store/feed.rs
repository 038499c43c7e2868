//! The global feed: positions in commit order, dense, and never overtaken.

use std::collections::BTreeSet;
use std::time::Duration;

use event_store::store::insert;
use sqlx::{Connection, PgConnection};

use crate::{context, created, fresh_store};

/// A transaction that started writing first but commits last must not be skipped by a reader
/// that polled in between. With a plain bigserial it would be: its lower number becomes
/// visible after the reader has moved past it.
#[tokio::test]
async fn a_reader_never_misses_an_event_that_commits_late() {
    let (database, store) = fresh_store().await;

    let mut early = PgConnection::connect(&database.url).await.unwrap();
    let mut early_tx = early.begin().await.unwrap();
    let early_events = insert(&mut early_tx, &context(), &[created("Patient", "early")])
        .await
        .unwrap();

    let late = store
        .append(&context(), &[created("Patient", "late")])
        .await
        .unwrap();
    assert!(
        late[0].event_id > early_events[0].event_id,
        "the late writer inserted second"
    );

    // The reader polls while the early transaction is still open: it sees only what committed.
    let first_poll = store.read_feed(0, 100).await.unwrap();
    assert_eq!(first_poll.len(), 1);
    assert_eq!(first_poll[0].resource_id, "late");
    let cursor = first_poll[0].position.unwrap();

    // More passes while the early transaction stays open: the sequencer's horizon must not
    // move past it.
    for n in 0..3 {
        store
            .append(&context(), &[created("Patient", &format!("later{n}"))])
            .await
            .unwrap();
    }
    let cursor = store
        .read_feed(cursor, 100)
        .await
        .unwrap()
        .last()
        .unwrap()
        .position
        .unwrap();

    early_tx.commit().await.unwrap();
    let positions = store.sequence(&early_events).await.unwrap();
    assert!(
        positions[0].position > cursor,
        "the late commit gets a later position"
    );

    let second_poll = store.read_feed(cursor, 100).await.unwrap();
    assert_eq!(
        second_poll.len(),
        1,
        "the reader, continuing from its cursor, gets the event"
    );
    assert_eq!(second_poll[0].resource_id, "early");
}

/// Many writers at once: every event gets exactly one position, positions are 1..=n with no
/// gap, and a reader that follows the feed while they write sees each event once, in order.
#[tokio::test]
async fn concurrent_writers_get_dense_positions_and_a_follower_sees_each_event_once() {
    let (_database, store) = fresh_store().await;
    const WRITERS: usize = 16;
    const EACH: usize = 25;

    let follower = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut cursor = 0;
            while seen.len() < WRITERS * EACH {
                let batch = store.read_feed(cursor, 50).await.unwrap();
                if batch.is_empty() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                for event in batch {
                    let position = event.position.unwrap();
                    assert!(position > cursor);
                    cursor = position;
                    seen.push(position);
                }
            }
            seen
        })
    };
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for n in 0..EACH {
                store
                    .append(
                        &context(),
                        &[created("Observation", &format!("w{writer}-{n}"))],
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let seen = tokio::time::timeout(Duration::from_secs(30), follower)
        .await
        .unwrap()
        .unwrap();
    let expected: Vec<i64> = (1..=(WRITERS * EACH) as i64).collect();
    assert_eq!(
        seen, expected,
        "the follower saw every position once, in order, with no gap"
    );
    assert_eq!(
        store.head_position().await.unwrap(),
        (WRITERS * EACH) as i64
    );
}

/// A writer that committed but stopped before sequencing leaves its events numberless; the
/// relay's sweep numbers them.
#[tokio::test]
async fn events_left_unsequenced_are_numbered_by_the_sweep() {
    let (database, store) = fresh_store().await;
    let mut connection = PgConnection::connect(&database.url).await.unwrap();
    insert(&mut connection, &context(), &[created("Patient", "orphan")])
        .await
        .unwrap();
    assert!(store.read_feed(0, 10).await.unwrap().is_empty());
    store.sequence_pending().await.unwrap();
    let feed = store.read_feed(0, 10).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].position, Some(1));
    let unique: BTreeSet<_> = feed.iter().map(|event| event.position).collect();
    assert_eq!(unique.len(), 1);
}
