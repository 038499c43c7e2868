//! `wardline import` of the shared Synthea sample against a real command service: every
//! bundle goes in, counts per type equal the files', every reference resolves, and an import
//! interrupted half-way and run again ends with exactly the same resources, none twice. (The
//! sample's bundles carry differing copies of shared practitioners, so those get a version per
//! copy; a further run records nothing.)

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use test_support::TestDatabase;
use wardline::import::{Settings, run};

use crate::servers::{command_service, command_service_on, projection_on};

/// The current version of every resource in the store.
async fn current_resources(database: &TestDatabase) -> Vec<Value> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT ON (resource_type, resource_id) resource::text FROM fhir_event \
         ORDER BY resource_type, resource_id, version DESC",
    )
    .fetch_all(&database.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(text,)| serde_json::from_str(&text).unwrap())
        .collect()
}

fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(members) => {
            for (name, member) in members {
                match (name.as_str(), member) {
                    ("reference", Value::String(text)) => out.push(text.clone()),
                    _ => references(member, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, out)),
        _ => {}
    }
}

#[tokio::test]
async fn synthea_imports_completely_and_again_after_an_interruption() {
    let synthea = test_support::synthea::data_dir();
    let expected = test_support::synthea::count_by_type(&synthea);
    let total: usize = expected.values().sum();
    let database = TestDatabase::create().await;
    let api = command_service(&database).await;
    let settings = Settings {
        fhir_url: api.url.clone(),
        paths: vec![synthea.clone()],
        concurrency: 4,
        progress: false,
        auth: api.auth(),
    };

    // Interrupted once a few thousand events are in.
    let stop = Arc::new(AtomicBool::new(false));
    let trigger = stop.clone();
    let pool = database.pool.clone();
    tokio::spawn(async move {
        loop {
            let (events,): (i64,) = sqlx::query_as("SELECT count(*) FROM fhir_event")
                .fetch_one(&pool)
                .await
                .unwrap();
            if events > 2_000 {
                trigger.store(true, Ordering::Relaxed);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let first = run(&settings, stop).await.unwrap();
    assert!(first.interrupted, "{}", first.report());
    assert!(first.failures.is_empty(), "{}", first.report());
    assert!(first.resources() < total, "{}", first.report());

    // Run again: everything, nothing twice.
    let second = run(&settings, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert!(second.failures.is_empty(), "{}", second.report());
    assert!(!second.interrupted);
    assert_eq!(second.files, 42);
    let sent: BTreeMap<String, usize> = second
        .by_type
        .iter()
        .map(|(t, c)| (t.clone(), c.created + c.existing))
        .collect();
    // Shared practitioners and organisations are sent once per bundle that holds them.
    for (resource_type, count) in &expected {
        assert!(
            sent.get(resource_type).copied().unwrap_or(0) >= *count,
            "{resource_type}"
        );
    }
    let created_first: usize = first.by_type.values().map(|c| c.created).sum();
    let created_second: usize = second.by_type.values().map(|c| c.created).sum();
    assert_eq!(created_first + created_second, total);

    let resources = current_resources(&database).await;
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    for resource in &resources {
        *stored
            .entry(resource["resourceType"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(stored, expected, "counts per type equal the files'");
    assert_eq!(resources.len(), total, "no resource was created twice");
    let (events,): (i64,) = sqlx::query_as("SELECT count(*) FROM fhir_event")
        .fetch_one(&database.pool)
        .await
        .unwrap();

    let ids: HashSet<String> = resources
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            )
        })
        .collect();
    let mut dangling = Vec::new();
    for resource in &resources {
        let mut found = Vec::new();
        references(resource, &mut found);
        dangling.extend(
            found
                .into_iter()
                .filter(|r| !r.starts_with('#') && !r.contains("://") && !ids.contains(r)),
        );
    }
    assert!(dangling.is_empty(), "references to nothing: {dangling:?}");

    // A third run creates nothing; the only versions it may add are of the practitioners
    // whose copies differ between bundles (the last copy written wins).
    let third = run(&settings, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(third.by_type.values().map(|c| c.created).sum::<usize>(), 0);
    let added: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT e.resource_type FROM fhir_event_position p JOIN fhir_event e USING (event_id) \
         WHERE p.position > $1",
    )
    .bind(events)
    .fetch_all(&database.pool)
    .await
    .unwrap();
    assert!(
        added.iter().all(|(t,)| t == "Practitioner"),
        "a repeated import changed {added:?}"
    );
    assert_eq!(current_resources(&database).await.len(), total);
}

#[tokio::test]
async fn unreadable_files_and_refused_resources_are_reported() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.json"), "{ not json").unwrap();
    std::fs::write(
        dir.path().join("Patient.ndjson"),
        "{\"resourceType\":\"Patient\",\"id\":\"ok\"}\n{\"resourceType\":\"Patient\",\"id\":\"bad\",\"birthDate\":\"yesterday\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Observation.ndjson"),
        "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\",\"code\":{\"text\":\"x\"}}\n",
    )
    .unwrap();
    let api = command_service(&database).await;
    let settings = Settings {
        fhir_url: api.url.clone(),
        paths: vec![dir.path().to_path_buf()],
        concurrency: 2,
        progress: false,
        auth: api.auth(),
    };
    let summary = run(&settings, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(summary.files, 3);
    assert_eq!(summary.failures.len(), 2, "{}", summary.report());
    let report = summary.report();
    assert!(
        report.contains("broken.json") && report.contains("not JSON"),
        "{report}"
    );
    assert!(
        report.contains("Patient.ndjson:2 (400)") && report.contains("birthDate"),
        "{report}"
    );
    assert_eq!(summary.by_type["Observation"].created, 1);
    assert_eq!(
        summary.by_type["Patient"].created, 1,
        "the good line of the chunk went in"
    );
}

#[tokio::test]
async fn generated_patients_import_and_fill_the_wards() {
    let database = TestDatabase::create().await;
    let (stream, subject_prefix) = test_support::unique_stream();
    let api = command_service_on(&database, &stream, &subject_prefix).await;
    projection_on(&api, &database, &stream, &subject_prefix).await;
    let fhir_url = api.url.clone();

    let dir = tempfile::tempdir().unwrap();
    let anchor = chrono::Utc::now();
    wardline::write_generated(dir.path(), 34, 5, anchor).unwrap();
    let settings = Settings {
        fhir_url,
        paths: vec![dir.path().to_path_buf()],
        concurrency: 4,
        progress: false,
        auth: api.auth(),
    };
    let summary = run(&settings, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert!(summary.failures.is_empty(), "{}", summary.report());
    assert_eq!(summary.by_type["Patient"].created, 34);
    let head = summary.last_position.unwrap();

    // Indexed, the 30 beds of the demo wards are taken, one patient each.
    test_support::eventually("the import indexed", Duration::from_secs(60), || {
        let pool = database.pool.clone();
        async move {
            let position: Option<i64> = sqlx::query_scalar(
                "SELECT position FROM projection_checkpoint WHERE name = 'search'",
            )
            .fetch_optional(&pool)
            .await
            .ok()
            .flatten();
            (position.unwrap_or(0) >= head).then_some(())
        }
    })
    .await;
    let census: Vec<(String, i64)> = sqlx::query_as(
        "SELECT ward_id, count(DISTINCT patient_id) FROM ward_census GROUP BY ward_id ORDER BY ward_id",
    )
    .fetch_all(&database.pool)
    .await
    .unwrap();
    assert_eq!(
        census,
        vec![
            ("ward-a".to_owned(), 12),
            ("ward-b".to_owned(), 10),
            ("ward-c".to_owned(), 8)
        ]
    );
    let (tasks, notes): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM clinical_notes)",
    )
    .fetch_one(&database.pool)
    .await
    .unwrap();
    assert_eq!((tasks, notes), (30, 30));

    // Loading the same patients again changes nothing.
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM fhir_event")
        .fetch_one(&database.pool)
        .await
        .unwrap();
    let again = run(&settings, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(again.by_type.values().map(|c| c.created).sum::<usize>(), 0);
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM fhir_event")
        .fetch_one(&database.pool)
        .await
        .unwrap();
    assert_eq!(after, events);
}
