//! The version rule: a resource's rows are those of its newest version, whatever order and
//! however often its events arrive; a delete leaves none.

use chrono::{TimeZone, Utc};
use fhir_search::{ExtractOptions, Registry};
use projection_service::apply;
use projection_service::change::Change;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use test_support::TestDatabase;

use crate::helpers::{TestApp, snapshot};

fn named(id: &str, family: &str) -> serde_json::Value {
    json!({"resourceType": "Patient", "id": id, "name": [{"family": family}], "birthDate": "1970-01-01"})
}

#[tokio::test]
async fn an_updated_resource_has_only_its_latest_rows_and_a_deleted_one_none() {
    let app = TestApp::spawn().await;
    for family in ["First", "Second", "Third", "Fourth"] {
        app.put_ok(&named("changing", family)).await;
    }
    app.put_ok(&named("doomed", "Gone")).await;
    app.put_ok(&json!({
        "resourceType": "MedicationRequest", "id": "doomed-order", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "313782"}]},
        "subject": {"reference": "Patient/doomed"}
    }))
    .await;
    app.delete_ok("MedicationRequest/doomed-order").await;
    app.delete_ok("Patient/doomed").await;
    app.caught_up().await;

    let family: Vec<_> = app
        .param_rows("hfj_spidx_string", "Patient", "changing", "family")
        .await
        .into_iter()
        .map(|row| row["value_exact"].clone())
        .collect();
    assert_eq!(
        family,
        vec![json!("Fourth")],
        "three updates leave only the last name"
    );
    let (version, deleted): (i32, bool) = sqlx::query_as(
        "SELECT res_ver, deleted FROM hfj_resource WHERE res_type = 'Patient' AND res_id = 'changing'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((version, deleted), (4, false));

    for table in projection_service::tables::ROW_TABLES {
        assert!(
            app.rows(table, "Patient", "doomed").await.is_empty(),
            "deleted Patient still has rows in {table}"
        );
        assert!(
            app.rows(table, "MedicationRequest", "doomed-order")
                .await
                .is_empty(),
            "deleted order still has rows in {table}"
        );
    }
    let (deleted,): (bool,) = sqlx::query_as(
        "SELECT deleted FROM hfj_resource WHERE res_type = 'Patient' AND res_id = 'doomed'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        deleted,
        "the deleted resource is remembered, so an older event cannot revive it"
    );
    app.cleanup().await;
}

/// A history of 40 resources with several versions each, some deleted (and one deleted and
/// created again), and a sandbox's versions of ten of them, positions in commit order.
fn history() -> Vec<Change> {
    let mut random = rand::rngs::StdRng::seed_from_u64(7);
    let mut changes = Vec::new();
    let mut position = 0;
    for round in 1..=5 {
        for n in 0..40 {
            let id = format!("p{n}");
            // Resources n < 10 stop at version 2 with a delete at version 3; p0 comes back.
            if n < 10 && round > 3 && !(n == 0 && round == 5) {
                continue;
            }
            let deleted = n < 10 && round == 3;
            position += 1;
            let family = format!("Family{n}v{round}x{}", random.random_range(0..1000));
            changes.push(Change {
                position,
                resource_type: "Patient".to_owned(),
                resource_id: id.clone(),
                version: if n == 0 && round == 5 { 4 } else { round },
                recorded_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
                    + chrono::Duration::seconds(position),
                deleted,
                resource: named(&id, &family),
                partition: 0,
            });
        }
        // A sandbox forked after round 2 rewrites some of them in its own partition.
        if round >= 3 {
            for n in 20..30 {
                let id = format!("p{n}");
                position += 1;
                changes.push(Change {
                    position,
                    resource_type: "Patient".to_owned(),
                    resource_id: id.clone(),
                    version: round,
                    recorded_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
                        + chrono::Duration::seconds(position),
                    deleted: n == 29 && round == 5,
                    resource: named(&id, &format!("Sandbox{n}v{round}")),
                    partition: 7,
                });
            }
        }
    }
    changes
}

async fn apply_in_batches(pool: &sqlx::PgPool, batches: Vec<Vec<Change>>) {
    let options = ExtractOptions::default();
    for batch in batches {
        let prepared = apply::prepare(Registry::r4(), &options, batch);
        apply::write(pool, &prepared).await.unwrap();
    }
}

#[tokio::test]
async fn redelivered_and_shuffled_events_leave_the_same_tables() {
    let history = history();
    let head = history.last().unwrap().position;

    let in_order = TestDatabase::create().await;
    apply_in_batches(
        &in_order.pool,
        history.iter().map(|change| vec![change.clone()]).collect(),
    )
    .await;

    // Every event twice, in random order, in random batch sizes.
    let shuffled = TestDatabase::create().await;
    let mut random = rand::rngs::StdRng::seed_from_u64(11);
    let mut events: Vec<Change> = history.iter().chain(history.iter()).cloned().collect();
    events.shuffle(&mut random);
    let mut batches = Vec::new();
    while !events.is_empty() {
        let size = random.random_range(1..=25).min(events.len());
        batches.push(events.drain(..size).collect());
    }
    apply_in_batches(&shuffled.pool, batches).await;

    let expected = snapshot(&in_order.pool).await;
    assert!(!expected["hfj_spidx_string"].is_empty());
    // The past too: the superseded versions' rows and every version's range, whatever order
    // the versions came in.
    assert!(!expected["hfj_spidx_string_hist"].is_empty());
    assert!(expected["hfj_res_ver"].len() > expected["hfj_resource"].len());
    assert_eq!(snapshot(&shuffled.pool).await, expected);
    for pool in [&in_order.pool, &shuffled.pool] {
        let (position,): (i64,) =
            sqlx::query_as("SELECT position FROM projection_checkpoint WHERE name = 'search'")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(
            position, head,
            "every position counted once the gaps are filled"
        );
    }
    let (live,): (i64,) = sqlx::query_as("SELECT count(*) FROM hfj_resource WHERE NOT deleted")
        .fetch_one(&shuffled.pool)
        .await
        .unwrap();
    assert_eq!(live, 31, "30 never deleted, plus p0 created again");
}
