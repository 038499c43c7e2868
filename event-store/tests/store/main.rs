//! The event store against a real Postgres: ordering, atomicity, concurrency, the hash chain.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod feed;
mod streams;

use chrono::Utc;
use event_store::{Actor, CommitContext, EventKind, EventMetadata, EventStore, NewEvent};
use test_support::TestDatabase;
use uuid::Uuid;

/// A store on a database of its own.
pub async fn fresh_store() -> (TestDatabase, EventStore) {
    let database = TestDatabase::create().await;
    let store = EventStore::new(database.pool.clone());
    (database, store)
}

pub fn context() -> CommitContext {
    CommitContext {
        metadata: EventMetadata {
            actor: Actor {
                user: "tester".into(),
                role: None,
                client: None,
                fhir_user: None,
                client_id: None,
                scopes: None,
            },
            request_id: "test".into(),
            transaction_id: Uuid::now_v7(),
            recorded_at: Utc::now(),
            source_address: None,
            forwarded_for: None,
            reason: None,
            sandbox: None,
        },
    }
}

pub fn created(resource_type: &str, id: &str) -> NewEvent {
    NewEvent {
        resource_type: resource_type.into(),
        resource_id: id.into(),
        version: 1,
        kind: EventKind::ResourceCreated,
        resource: format!(
            r#"{{"resourceType":"{resource_type}","id":"{id}","meta":{{"versionId":"1"}}}}"#
        ),
        patch: None,
        prev_hash: None,
    }
}
