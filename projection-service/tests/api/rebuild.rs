//! Rebuilding: the replayed tables equal the live ones, the live ones serve meanwhile, and
//! writes made during a rebuild are not lost by the swap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// A small ward: locations, patients admitted to beds, vital signs, an order, a task and notes.
pub async fn write_ward(app: &TestApp, prefix: &str, patients: usize) {
    app.put_ok(
        &json!({"resourceType": "Location", "id": format!("{prefix}-ward"), "name": "Ward 7",
        "physicalType": {"coding": [{"code": "wa"}]}}),
    )
    .await;
    for n in 0..patients {
        let patient = format!("{prefix}-p{n}");
        let bed = format!("{prefix}-bed{n}");
        app.put_ok(
            &json!({"resourceType": "Location", "id": bed, "name": format!("Bed {n}"),
            "physicalType": {"coding": [{"code": "bd"}]},
            "partOf": {"reference": format!("Location/{prefix}-ward")}}),
        )
        .await;
        app.put_ok(&json!({"resourceType": "Patient", "id": patient,
            "name": [{"family": format!("Ward{n}"), "given": ["Test"]}], "gender": "male"}))
            .await;
        app.put_ok(&json!({"resourceType": "Encounter", "id": format!("{prefix}-e{n}"), "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": format!("Patient/{patient}")},
            "period": {"start": "2024-05-01T08:00:00Z"},
            "location": [{"location": {"reference": format!("Location/{bed}")}, "status": "active"}]})).await;
        for (k, rate) in [72, 88, 110].iter().enumerate() {
            app.put_ok(&json!({"resourceType": "Observation", "id": format!("{prefix}-hr{n}-{k}"), "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
                "subject": {"reference": format!("Patient/{patient}")},
                "effectiveDateTime": format!("2024-05-01T0{k}:00:00Z"),
                "valueQuantity": {"value": rate, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})).await;
        }
        app.put_ok(&json!({"resourceType": "ServiceRequest", "id": format!("{prefix}-sr{n}"), "status": "active",
            "intent": "order", "priority": "stat",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
            "subject": {"reference": format!("Patient/{patient}")}, "authoredOn": "2024-05-01T09:00:00Z"})).await;
        app.put_ok(
            &json!({"resourceType": "Task", "id": format!("{prefix}-t{n}"), "status": "requested",
            "intent": "order", "for": {"reference": format!("Patient/{patient}")},
            "focus": {"reference": format!("ServiceRequest/{prefix}-sr{n}")},
            "restriction": {"period": {"end": "2024-05-01T10:00:00Z"}}}),
        )
        .await;
        app.put_ok(&json!({"resourceType": "DocumentReference", "id": format!("{prefix}-note{n}"), "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": "34117-2", "display": "History and physical note"}]},
            "subject": {"reference": format!("Patient/{patient}")}, "date": "2024-05-01T09:30:00Z",
            "content": [{"attachment": {"contentType": "text/plain", "data": "Tm90ZQ=="}}]})).await;
    }
    // Some history: a discharge, an update, a deletion.
    app.put_ok(
        &json!({"resourceType": "Encounter", "id": format!("{prefix}-e0"), "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": format!("Patient/{prefix}-p0")},
        "period": {"start": "2024-05-01T08:00:00Z", "end": "2024-05-02T08:00:00Z"}}),
    )
    .await;
    app.delete_ok(&format!("Observation/{prefix}-hr1-0")).await;
}

async fn rebuild(app: &TestApp) -> Value {
    let response = app
        .client
        .post(format!("{}/admin/rebuild", app.projection))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn rebuilt_tables_equal_the_live_ones_and_the_live_ones_serve_meanwhile() {
    let app = TestApp::spawn().await;
    write_ward(&app, "w", 6).await;
    app.caught_up().await;
    let live = app.snapshot().await;
    assert!(!live["encounter_census"].is_empty() && !live["orders"].is_empty());
    let (census,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM ward_census WHERE ward_id = 'w-ward'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        census, 5,
        "six admitted, one discharged, each placed on the ward through its bed"
    );

    // Readers keep reading the live tables while the rebuild runs.
    let reading = Arc::new(AtomicBool::new(true));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn({
        let (pool, reading, reads) = (app.pool.clone(), reading.clone(), reads.clone());
        async move {
            while reading.load(Ordering::Relaxed) {
                let (count,): (i64,) =
                    sqlx::query_as("SELECT count(*) FROM hfj_spidx_token WHERE sp_name = 'code'")
                        .fetch_one(&pool)
                        .await
                        .expect("the live tables keep answering during a rebuild");
                assert!(count > 0);
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let report = rebuild(&app).await;
    reading.store(false, Ordering::Relaxed);
    reader.await.unwrap();
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert!(report["events"].as_u64().unwrap() > 50, "{report}");

    assert_eq!(
        app.snapshot().await,
        live,
        "the rebuilt tables equal the live ones"
    );
    let (census,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM ward_census WHERE ward_id = 'w-ward'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(census, 5, "the views work on the swapped-in tables");
    let statistics = "SELECT c.relname::text FROM pg_statistic_ext s \
         JOIN pg_class c ON c.oid = s.stxrelid \
         WHERE s.stxnamespace = 'public'::regnamespace ORDER BY 1";
    let (after,): (Vec<String>,) = sqlx::query_as(&format!("SELECT array({statistics})"))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        after.len() >= 8 && after.iter().any(|table| table == "hfj_spidx_date"),
        "the planner's statistics on the index tables moved with them: {after:?}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn writes_during_a_rebuild_are_in_the_tables_after_the_swap() {
    let app = TestApp::spawn().await;
    write_ward(&app, "a", 4).await;
    app.caught_up().await;
    let during = tokio::spawn({
        let client = app.client.clone();
        let writes = app.writes.clone();
        async move {
            for n in 0..60 {
                let response = client
                    .put(format!("{writes}/Patient/during{n}"))
                    .header("content-type", "application/fhir+json")
                    .body(
                        json!({"resourceType": "Patient", "id": format!("during{n}"),
                        "name": [{"family": format!("During{n}")}]})
                        .to_string(),
                    )
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
            }
        }
    });
    rebuild(&app).await;
    during.await.unwrap();
    app.caught_up().await;
    let after = app.snapshot().await;
    let (during_rows,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM hfj_resource WHERE res_type = 'Patient' AND res_id LIKE 'during%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        during_rows, 60,
        "every write made during the rebuild is projected"
    );
    // A second rebuild, with nothing written meanwhile, reproduces the tables exactly.
    rebuild(&app).await;
    assert_eq!(app.snapshot().await, after);
    app.cleanup().await;
}
