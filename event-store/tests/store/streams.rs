//! Streams: optimistic concurrency, atomic multi-stream commits, the hash chain.

use event_store::{EventKind, EventStore, NewEvent, StoreError};
use test_support::TestDatabase;

use crate::{context, created, fresh_store};

fn next_version(previous: &event_store::StoredEvent, family: &str) -> NewEvent {
    let version = u32::try_from(previous.version).unwrap() + 1;
    NewEvent {
        resource_type: previous.resource_type.clone(),
        resource_id: previous.resource_id.clone(),
        version,
        kind: EventKind::ResourceUpdated,
        resource: format!(
            r#"{{"resourceType":"Patient","id":"{}","meta":{{"versionId":"{version}"}},"name":[{{"family":"{family}"}}]}}"#,
            previous.resource_id
        ),
        patch: None,
        prev_hash: Some(previous.hash.clone()),
    }
}

#[tokio::test]
async fn many_streams_commit_together_or_not_at_all() {
    let (_database, store) = fresh_store().await;
    store
        .append(&context(), &[created("Patient", "taken")])
        .await
        .unwrap();

    let batch: Vec<NewEvent> = (0..299)
        .map(|n| created("Observation", &format!("o{n}")))
        .chain(std::iter::once(created("Patient", "taken")))
        .collect();
    let error = store.append(&context(), &batch).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
    assert_eq!(
        store.count().await.unwrap(),
        1,
        "none of the 300 events was written"
    );

    let batch: Vec<NewEvent> = (0..300)
        .map(|n| created("Observation", &format!("o{n}")))
        .collect();
    let committed = store.append(&context(), &batch).await.unwrap();
    assert_eq!(committed.len(), 300);
    let positions: Vec<i64> = committed.iter().map(|event| event.position).collect();
    assert_eq!(
        positions,
        (2..=301).collect::<Vec<i64>>(),
        "one transaction, consecutive positions"
    );
    let transactions: std::collections::BTreeSet<_> = store
        .read_feed(1, 1000)
        .await
        .unwrap()
        .iter()
        .map(|event| event.transaction_id)
        .collect();
    assert_eq!(
        transactions.len(),
        1,
        "all 300 events share the transaction id"
    );
}

#[tokio::test]
async fn two_writers_of_the_same_version_cannot_both_commit() {
    let (_database, store) = fresh_store().await;
    store
        .append(&context(), &[created("Patient", "p")])
        .await
        .unwrap();
    let head = store.latest("Patient", "p").await.unwrap().unwrap();

    let attempts = (0..10).map(|n| {
        let store = store.clone();
        let event = next_version(&head, &format!("writer{n}"));
        tokio::spawn(async move { store.append(&context(), &[event]).await })
    });
    let results = futures::future::join_all(attempts).await;
    let winners = results
        .iter()
        .filter(|result| matches!(result, Ok(Ok(_))))
        .count();
    let conflicts = results
        .iter()
        .filter(|result| matches!(result, Ok(Err(StoreError::Conflict { .. }))))
        .count();
    assert_eq!((winners, conflicts), (1, 9));
    assert_eq!(store.stream("Patient", "p").await.unwrap().len(), 2);
}

/// Patient/p with versions 1 (Smith), 2 (Jones) and 3 (Brown).
async fn patient_with_three_versions() -> (TestDatabase, EventStore) {
    let (database, store) = fresh_store().await;
    store
        .append(&context(), &[created("Patient", "p")])
        .await
        .unwrap();
    for family in ["Jones", "Brown"] {
        let head = store.latest("Patient", "p").await.unwrap().unwrap();
        store
            .append(&context(), &[next_version(&head, family)])
            .await
            .unwrap();
    }
    (database, store)
}

#[tokio::test]
async fn the_hash_chain_exposes_an_edited_version() {
    let (database, store) = patient_with_three_versions().await;
    assert_eq!(
        store.verify_stream("Patient", "p").await.unwrap(),
        None,
        "an untouched chain verifies"
    );

    sqlx::query(
        "UPDATE fhir_event SET resource = replace(resource::text, 'Jones', 'Forged')::json \
         WHERE resource_id = 'p' AND version = 2",
    )
    .execute(&database.pool)
    .await
    .unwrap();
    assert_eq!(store.verify_stream("Patient", "p").await.unwrap(), Some(2));
}

#[tokio::test]
async fn the_hash_chain_exposes_a_removed_version() {
    let (database, store) = patient_with_three_versions().await;
    sqlx::query("DELETE FROM fhir_event WHERE resource_id = 'p' AND version = 2")
        .execute(&database.pool)
        .await
        .unwrap();
    assert_eq!(store.verify_stream("Patient", "p").await.unwrap(), Some(3));
}
