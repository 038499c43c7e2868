//! Real FHIR clients against the query service: the Python package `fhirclient` signs in with a
//! SMART standalone launch (the sign-in and consent pages with the patient picker), and the npm
//! package `fhir-kit-client` with a bearer token; both read, search, page and read history.
//!
//! `./deploy/dev test` installs both and points the test at them (`FHIR_TEST_PYTHON`, a Python
//! with fhirclient; `FHIR_TEST_CLIENTS_DIR`, where `npm ci` installed fhir-kit-client); run
//! elsewhere without them, the test says so and passes.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::TestApp;

fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// A patient with 23 Observations (three pages of ten) and two versions.
async fn patient_with_observations() -> TestApp {
    let app = TestApp::spawn().await;
    app.put(
        &json!({"resourceType": "Patient", "id": "cl", "birthDate": "1961-07-04",
        "name": [{"family": "Clientson", "given": ["Ada"]}]}),
    )
    .await;
    app.put(
        &json!({"resourceType": "Patient", "id": "cl", "birthDate": "1961-07-04",
        "name": [{"family": "Clientson", "given": ["Ada", "B"]}]}),
    )
    .await;
    for n in 0..23 {
        app.put(&json!({"resourceType": "Observation", "id": format!("cl-{n}"), "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/cl"},
            "effectiveDateTime": format!("2024-01-{:02}T08:00:00Z", n + 1),
            "valueQuantity": {"value": 60 + n, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}))
            .await;
    }
    // Wait until the projections have every write: the clients do not send the position.
    let bundle = app
        .search("Observation?subject=Patient/cl&_summary=count")
        .await;
    assert_eq!(bundle["total"], 23);
    app
}

/// Runs a client script off the test's runtime (which also serves the services it calls).
async fn run(program: &str, args: &[&str]) -> Value {
    let (program, args): (String, Vec<String>) = (
        program.to_owned(),
        args.iter().map(|a| (*a).to_owned()).collect(),
    );
    let output = tokio::task::spawn_blocking({
        let (program, args) = (program.clone(), args.clone());
        move || Command::new(&program).args(&args).output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}

fn expected_observations() -> Vec<String> {
    (0..23).map(|n| format!("cl-{n}")).collect()
}

#[tokio::test]
async fn fhirclient_reads_searches_and_pages() {
    let python = std::env::var("FHIR_TEST_PYTHON").expect(
        "FHIR_TEST_PYTHON names a Python with fhirclient installed (./deploy/dev test sets it)",
    );
    let app = patient_with_observations().await;
    let (base, identity) = app.spawn_smart_base().await;
    let redirect = "http://localhost/fhirclient-callback";
    identity
        .store()
        .insert_client(&identity_service::store::Client {
            client_id: "fhirclient-check".to_owned(),
            name: "fhirclient check".to_owned(),
            kind: identity_service::store::ClientKind::Public,
            redirect_uris: vec![redirect.to_owned()],
            allowed_scopes: "launch/patient openid fhirUser patient/*.rs".to_owned(),
            jwks: None,
            jwks_uri: None,
            secret_hash: None,
        })
        .await
        .unwrap();
    let script = scripts().join("fhirclient_check.py");
    let seen = run(
        &python,
        &[
            script.to_str().unwrap(),
            &base,
            "cl",
            "fhirclient-check",
            redirect,
            "nurse",
            "nurse-wardline",
        ],
    )
    .await;
    assert_eq!(seen["patientInContext"], "cl", "the patient picked: {seen}");
    let scopes: Vec<String> = serde_json::from_value(seen["consentScopes"].clone()).unwrap();
    assert!(
        !scopes.is_empty(),
        "the consent page lists what the app asks for"
    );
    assert_eq!(seen["family"], "Clientson");
    assert_eq!(seen["birthDate"], "1961-07-04");
    let observations: Vec<String> = serde_json::from_value(seen["observations"].clone()).unwrap();
    assert_eq!(
        observations,
        expected_observations(),
        "in date order, across three pages"
    );
    assert_eq!(seen["historyEntries"], 2);
}

#[tokio::test]
async fn fhir_kit_client_reads_searches_and_pages() {
    let clients = std::env::var("FHIR_TEST_CLIENTS_DIR").expect(
        "FHIR_TEST_CLIENTS_DIR names the folder with fhir-kit-client installed (./deploy/dev test sets it)",
    );
    let app = patient_with_observations().await;
    let script = PathBuf::from(&clients).join("fhir_kit_client_check.js");
    let seen = run(
        "node",
        &[script.to_str().unwrap(), &app.reads, "cl", &app.token],
    )
    .await;
    assert_eq!(seen["fhirVersion"], "4.0.1");
    assert_eq!(seen["family"], "Clientson");
    let mut expected = expected_observations();
    expected.reverse();
    let observations: Vec<String> = serde_json::from_value(seen["observations"].clone()).unwrap();
    assert_eq!(observations, expected, "newest first, across three pages");
    assert_eq!(seen["historyEntries"], 2);
}
