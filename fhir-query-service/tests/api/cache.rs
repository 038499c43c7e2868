//! The Redis cache never serves a version older than one already acknowledged, and reads work
//! without Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use service_kit::resource_cache::{CachedVersion, ResourceCache, resource_key, version_key};

use crate::helpers::TestApp;

fn version_of(response: &reqwest::Response) -> i64 {
    response.headers()["etag"]
        .to_str()
        .unwrap()
        .trim_start_matches("W/\"")
        .trim_end_matches('"')
        .parse()
        .unwrap()
}

#[tokio::test]
async fn no_read_is_older_than_an_acknowledged_write() {
    let app = Arc::new(TestApp::spawn_with(false, 0).await);
    let id = format!("race-{}", uuid::Uuid::new_v4());
    let key = format!("fhir:resource:Patient/{id}");
    app.put(&json!({"resourceType": "Patient", "id": id, "birthDate": "2000-01-01"}))
        .await;
    let acknowledged = Arc::new(AtomicI64::new(1));
    let running = Arc::new(AtomicBool::new(true));
    let reads = Arc::new(AtomicUsize::new(0));

    let mut writers = Vec::new();
    for writer in 0..3 {
        let (app, id, acknowledged, running) = (
            app.clone(),
            id.clone(),
            acknowledged.clone(),
            running.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while running.load(Ordering::Relaxed) {
                n += 1;
                let response = app
                    .client
                    .put(format!("{}/Patient/{id}", app.writes))
                    .header("content-type", "application/fhir+json")
                    .body(
                        json!({"resourceType": "Patient", "id": id,
                        "name": [{"family": format!("W{writer}-{n}")}]})
                        .to_string(),
                    )
                    .send()
                    .await
                    .unwrap();
                if response.status().is_success() {
                    acknowledged.fetch_max(version_of(&response), Ordering::SeqCst);
                }
            }
        }));
    }
    // Entries also expire and are evicted: drop the key now and then, so readers keep
    // refilling it from Postgres while writes go on (the race a version guard must win).
    let evictor = {
        let running = running.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let client = redis::Client::open(test_support::redis_url()).unwrap();
            let mut redis = client.get_multiplexed_async_connection().await.unwrap();
            while running.load(Ordering::Relaxed) {
                let _: () = redis::cmd("DEL")
                    .arg(&key)
                    .query_async(&mut redis)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(7)).await;
            }
        })
    };
    let mut readers = Vec::new();
    for _ in 0..6 {
        let (app, id, acknowledged, running, reads) = (
            app.clone(),
            id.clone(),
            acknowledged.clone(),
            running.clone(),
            reads.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut violations = Vec::new();
            while running.load(Ordering::Relaxed) {
                let floor = acknowledged.load(Ordering::SeqCst);
                let response = app
                    .client
                    .get(format!("{}/Patient/{id}", app.reads))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let version = version_of(&response);
                if version < floor {
                    violations.push((floor, version));
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
            violations
        }));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    running.store(false, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    evictor.await.unwrap();
    let mut violations = Vec::new();
    for reader in readers {
        violations.extend(reader.await.unwrap());
    }
    let writes = acknowledged.load(Ordering::SeqCst);
    let reads = reads.load(Ordering::Relaxed);
    assert!(
        writes > 20 && reads > 200,
        "too little load: {writes} versions, {reads} reads"
    );
    assert!(
        violations.is_empty(),
        "{} of {reads} reads returned a version older than an acknowledged one, e.g. (acknowledged, read) {:?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );
    // After the dust settles the cache holds the newest version (or nothing).
    let response = app
        .client
        .get(format!("{}/Patient/{id}", app.reads))
        .send()
        .await
        .unwrap();
    assert_eq!(version_of(&response), writes);
}

#[tokio::test]
async fn reads_succeed_without_redis() {
    // Nothing listens on port 1: every cache call fails fast and reads go to Postgres.
    let app = TestApp::spawn_full(false, 0, "redis://127.0.0.1:1").await;
    app.put(&json!({"resourceType": "Patient", "id": "nocache", "gender": "other"}))
        .await;
    for _ in 0..3 {
        let response = app
            .client
            .get(format!("{}/Patient/nocache", app.reads))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(version_of(&response), 1);
    }
    app.delete("Patient/nocache").await;
    let gone = app
        .client
        .get(format!("{}/Patient/nocache", app.reads))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 410);
}

#[tokio::test]
async fn a_deleted_resource_is_gone_from_the_cache_too() {
    let app = TestApp::spawn_with(false, 0).await;
    let id = format!("del-{}", uuid::Uuid::new_v4());
    app.put(&json!({"resourceType": "Patient", "id": id})).await;
    let url = format!("{}/Patient/{id}", app.reads);
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);
    app.delete(&format!("Patient/{id}")).await;
    let gone = app.client.get(&url).send().await.unwrap();
    assert_eq!(gone.status(), 410);
    assert_eq!(version_of(&gone), 2);
}

/// A reader that read a version before a newer one committed, and stores it after the newer
/// one's entry has vanished (expired, evicted by Redis), is refused: the newest committed
/// version is kept apart from the entry. The projection's eviction raises it too.
#[tokio::test]
async fn a_stale_read_is_not_cached_after_the_newer_entry_vanished() {
    let cache = ResourceCache::new(Some(&test_support::redis_url()));
    let version = |n: i32| CachedVersion {
        version: n,
        recorded_at: chrono::Utc::now(),
        deleted: false,
        resource: format!(r#"{{"resourceType":"Patient","n":{n}}}"#),
    };
    let cached = |id: String| {
        let cache = cache.clone();
        async move { cache.get("Patient", &id).await.map(|entry| entry.version) }
    };
    let mut redis = redis::Client::open(test_support::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    let written = format!("vanish-{}", uuid::Uuid::new_v4());
    cache.store_read("Patient", &written, &version(1)).await;
    assert_eq!(cached(written.clone()).await, Some(1));
    cache
        .store_committed("Patient", &written, &version(2))
        .await;
    assert_eq!(cached(written.clone()).await, Some(2));
    let _: () = redis::cmd("DEL")
        .arg(resource_key("Patient", &written))
        .query_async(&mut redis)
        .await
        .unwrap();
    cache.store_read("Patient", &written, &version(1)).await;
    assert_eq!(cached(written.clone()).await, None, "version 1 came back");
    cache.store_read("Patient", &written, &version(2)).await;
    assert_eq!(cached(written.clone()).await, Some(2));

    let projected = format!("vanish-{}", uuid::Uuid::new_v4());
    cache.store_read("Patient", &projected, &version(1)).await;
    cache
        .evict_older(&[("Patient".to_owned(), projected.clone(), 3)])
        .await;
    assert_eq!(cached(projected.clone()).await, None);
    cache.store_read("Patient", &projected, &version(2)).await;
    assert_eq!(cached(projected.clone()).await, None, "version 2 came back");
    cache.store_read("Patient", &projected, &version(3)).await;
    assert_eq!(cached(projected.clone()).await, Some(3));

    let _: () = redis::cmd("DEL")
        .arg(resource_key("Patient", &written))
        .arg(version_key("Patient", &written))
        .arg(resource_key("Patient", &projected))
        .arg(version_key("Patient", &projected))
        .query_async(&mut redis)
        .await
        .unwrap();
}
