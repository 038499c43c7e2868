//! `wardline simulate` on a demo ward: it admits into free beds, writes vital signs (some
//! patients deteriorating), orders and tasks, through the FHIR API; the same seed gives the
//! same scenario.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use test_support::TestDatabase;
use wardline::simulate::{Report, Settings};

use crate::servers::{command_service_on, projection_on, query_service};

/// A fresh server (command, projection and query services) holding the demo hospital, and
/// a simulation of `ward` on it.
async fn simulate(seed: u64) -> (Report, TestDatabase) {
    let database = TestDatabase::create().await;
    let (stream, subject_prefix) = test_support::unique_stream();
    let api = command_service_on(&database, &stream, &subject_prefix).await;
    projection_on(&api, &database, &stream, &subject_prefix).await;
    let read_url = query_service(&api, &database).await;
    let write_url = api.url.clone();

    // The demo hospital, indexed.
    let response = api
        .client()
        .post(&write_url)
        .header("content-type", "application/fhir+json")
        .body(wardline::generate::facility().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let client = api.client();
    test_support::eventually("the beds indexed", Duration::from_secs(30), || {
        let request = client.get(format!(
            "{read_url}/Location?partof=Location/ward-c&_summary=count"
        ));
        async move {
            let bundle: serde_json::Value = request.send().await.ok()?.json().await.ok()?;
            (bundle["total"] == 8).then_some(())
        }
    })
    .await;

    let settings = Settings {
        ward: "ward-c".into(),
        speed: 1_000_000.0,
        hours: 8.0,
        seed,
        write_url,
        read_url,
        auth: api.auth(),
    };
    let report = wardline::simulate::run(&settings, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    (report, database)
}

#[tokio::test]
async fn a_simulated_ward_admits_observes_deteriorates_and_repeats_for_a_seed() {
    let (report, database) = simulate(3).await;
    assert_eq!(report.steps, 32, "{report:?}");
    assert!(report.admissions >= 2, "{report:?}");
    assert!(report.observation_sets >= report.admissions, "{report:?}");

    // Every admission is on a bed of the ward, and vital signs were written for them.
    let beds: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT resource::jsonb #>> '{location,0,location,reference}' FROM fhir_event \
         WHERE resource_type = 'Encounter'",
    )
    .fetch_all(&database.pool)
    .await
    .unwrap();
    assert!(!beds.is_empty());
    assert!(
        beds.iter()
            .all(|bed| bed.starts_with("Location/ward-c-bed-")),
        "{beds:?}"
    );
    let rates: Vec<f64> = sqlx::query_scalar(
        "SELECT (resource::jsonb #>> '{valueQuantity,value}')::float8 FROM fhir_event \
         WHERE resource_type = 'Observation' AND resource::jsonb #>> '{code,coding,0,code}' = '9279-1'",
    )
    .fetch_all(&database.pool)
    .await
    .unwrap();
    assert_eq!(rates.len(), report.observation_sets);
    // Someone deteriorated: a respiratory rate NEWS2 scores 3 (25/min or more).
    assert!(rates.iter().any(|rate| *rate >= 25.0), "{rates:?}");

    // The same seed, the same scenario (the patients' ids are the server's, the start now).
    let (again, _) = simulate(3).await;
    let comparable = |report: &Report| Report {
        patients: Vec::new(),
        started: None,
        ..report.clone()
    };
    assert_eq!(comparable(&again), comparable(&report));
    assert_eq!(again.patients.len(), report.patients.len());
}

/// `wardline simulate --record` keeps what it wrote as a scenario: the patients it admitted,
/// from its start to its end.
#[tokio::test]
async fn a_simulation_records_itself_as_a_scenario() {
    let database = TestDatabase::create().await;
    let (stream, subject_prefix) = test_support::unique_stream();
    let api = command_service_on(&database, &stream, &subject_prefix).await;
    projection_on(&api, &database, &stream, &subject_prefix).await;
    let read_url = query_service(&api, &database).await;
    let response = api
        .client()
        .post(&api.url)
        .header("content-type", "application/fhir+json")
        .body(wardline::generate::facility().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let client = api.client();
    test_support::eventually("the beds indexed", Duration::from_secs(30), || {
        let request = client.get(format!(
            "{read_url}/Location?partof=Location/ward-b&_summary=count"
        ));
        async move {
            let bundle: serde_json::Value = request.send().await.ok()?.json().await.ok()?;
            (bundle["total"].as_u64()? > 0).then_some(())
        }
    })
    .await;
    let server = api.server_url();
    let run = crate::run::wardline(
        &[
            "simulate",
            "--ward",
            "ward-b",
            "--speed",
            "1000000",
            "--hours",
            "3",
            "--seed",
            "5",
            "--fhir-url",
            &api.url,
            "--read-url",
            &read_url,
            "--record",
            "ward-b-night",
        ],
        &[
            ("WARDLINE_SERVER_URL", &server),
            ("WARDLINE_TOKEN", &api.token),
        ],
    )
    .await;
    let out = run.ok();
    assert!(out.contains("recorded scenario ward-b-night v1"), "{out}");
    let file = api
        .client()
        .get(format!("{server}/teaching/scenarios/ward-b-night"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<serde_json::Value> = file
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let patients = lines[0]["cohort"]["patients"].as_array().unwrap().len();
    assert!(patients >= 1, "{}", lines[0]);
    let observations = lines
        .iter()
        .filter(|line| line["type"] == "event" && line["resource"]["resourceType"] == "Observation")
        .count();
    assert!(
        observations > 0,
        "the vital signs it wrote are the scenario's events"
    );
    // The beds they lay in come with the scenario, so it plays into an empty sandbox.
    assert!(
        lines
            .iter()
            .any(|line| line["type"] == "start" && line["resource"]["resourceType"] == "Location"),
        "{file}"
    );
}

/// `wardline demo --record` keeps what the generator loaded as a scenario of its patients.
#[tokio::test]
async fn the_generator_records_what_it_loads_as_a_scenario() {
    let database = TestDatabase::create().await;
    let (stream, subject_prefix) = test_support::unique_stream();
    let api = command_service_on(&database, &stream, &subject_prefix).await;
    projection_on(&api, &database, &stream, &subject_prefix).await;
    let server = api.server_url();
    let run = crate::run::wardline(
        &[
            "demo",
            "--patients",
            "2",
            "--seed",
            "4",
            "--quiet",
            "--fhir-url",
            &api.url,
            "--record",
            "generated",
        ],
        &[
            ("WARDLINE_SERVER_URL", &server),
            ("WARDLINE_TOKEN", &api.token),
        ],
    )
    .await;
    let out = run.ok();
    assert!(out.contains("recorded scenario generated v1"), "{out}");
    let file = api
        .client()
        .get(format!("{server}/teaching/scenarios/generated"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_str(file.lines().next().unwrap()).unwrap();
    assert_eq!(manifest["cohort"]["patients"].as_array().unwrap().len(), 2);
    let events = file.lines().count() - 1;
    assert!(events > 20, "the patients' stories: {events} lines");
}
