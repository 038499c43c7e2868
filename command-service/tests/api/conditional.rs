//! Conditional create, update, patch and delete: matched by search over the projected indexes,
//! so these tests run the projection service beside the command service.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const SYSTEM: &str = "http://hospital.test/mrn";

fn patient_with(mrn: &str, family: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": SYSTEM, "value": mrn}],
        "name": [{"family": family}],
    })
}

/// The services with a projection, and a wait for it long enough for a loaded machine (the
/// bound itself is tested with a projection that never comes).
async fn with_projection() -> TestApp {
    let app = TestApp::spawn_with_args(&["--conditional-wait-ms", "60000"]).await;
    app.start_projection().await;
    app
}

async fn conditional_create(app: &TestApp, resource: &Value, criteria: &str) -> (u16, Value) {
    let response = app
        .write_request(Method::POST, "Patient", Some(resource))
        .header("if-none-exist", criteria)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn patient_count(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(DISTINCT resource_id) FROM fhir_event WHERE resource_type = 'Patient'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn conditional_create_creates_once_then_returns_the_match_and_refuses_several() {
    let app = with_projection().await;
    let criteria = format!("identifier={SYSTEM}|mrn-1");

    let (status, created) =
        conditional_create(&app, &patient_with("mrn-1", "First"), &criteria).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    // The same criteria again, at once: the match sees the write just acknowledged.
    let events = app.event_count().await;
    let (status, found) = conditional_create(
        &app,
        &patient_with("mrn-1", "Second"),
        &format!("Patient?{criteria}"),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["id"], id.as_str());
    assert_eq!(
        found["name"][0]["family"], "First",
        "the stored resource is returned"
    );
    assert_eq!(app.event_count().await, events, "nothing is written");

    // A second resource with the same identifier makes the criteria ambiguous.
    app.create_ok(&patient_with("mrn-1", "Duplicate")).await;
    let (status, outcome) =
        conditional_create(&app, &patient_with("mrn-1", "Third"), &criteria).await;
    assert_eq!(status, 412, "{outcome}");
    assert_eq!(outcome["issue"][0]["code"], "multiple-matches");
    assert_eq!(patient_count(&app).await, 2);
    app.cleanup().await;
}

#[tokio::test]
async fn a_conditional_create_finds_a_resource_written_a_moment_before() {
    let app = with_projection().await;
    for n in 0..20 {
        let mrn = format!("fresh-{n}");
        let id = app.create_ok(&patient_with(&mrn, "Plain")).await;
        let (status, found) = conditional_create(
            &app,
            &patient_with(&mrn, "Again"),
            &format!("identifier={mrn}"),
        )
        .await;
        assert_eq!(status, 200, "round {n}: {found}");
        assert_eq!(found["id"], id.as_str(), "round {n}");
    }
    assert_eq!(patient_count(&app).await, 20);
    app.cleanup().await;
}

#[tokio::test]
async fn concurrent_conditional_creates_of_one_identifier_create_one_resource() {
    let app = with_projection().await;
    // Two command services on one database: the lock is Postgres's, not one process's.
    let (other, _stop) = app.spawn_another_command_service().await;
    let criteria = format!("identifier={SYSTEM}|same");
    let requests = (0..12).map(|n| {
        let base = if n % 2 == 0 {
            app.writes.clone()
        } else {
            other.clone()
        };
        let request = app
            .client
            .post(format!("{base}/Patient"))
            .header("content-type", "application/fhir+json")
            .header("if-none-exist", criteria.clone())
            .body(patient_with("same", &format!("Racer{n}")).to_string());
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body["id"].as_str().unwrap_or_default().to_owned())
        }
    });
    let results = futures::future::join_all(requests).await;
    let created: Vec<_> = results
        .iter()
        .filter(|(status, _)| *status == 201)
        .collect();
    assert_eq!(created.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|(status, id)| *status == 201 || (*status == 200 && *id == created[0].1)),
        "{results:?}"
    );
    assert_eq!(patient_count(&app).await, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn conditional_update_creates_updates_and_refuses_per_the_specification() {
    let app = with_projection().await;
    let put = |criteria: String, body: Value| {
        let request = app.write_request(Method::PUT, &format!("Patient?{criteria}"), Some(&body));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };

    // No match, no id: created under a new id.
    let (status, created) = put(
        format!("identifier={SYSTEM}|u-1"),
        patient_with("u-1", "New"),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    // One match: updated, whether or not the body names the id.
    let (status, updated) = put(
        format!("identifier={SYSTEM}|u-1"),
        patient_with("u-1", "Changed"),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(updated["meta"]["versionId"], "2");
    let mut named = patient_with("u-1", "Named");
    named["id"] = json!(id);
    let (status, updated) = put(format!("identifier={SYSTEM}|u-1"), named).await;
    assert_eq!(
        (status, updated["meta"]["versionId"].clone()),
        (200, json!("3"))
    );

    // One match, but the body's id is another resource's.
    let mut other = patient_with("u-1", "Other");
    other["id"] = json!("someone-else");
    let (status, outcome) = put(format!("identifier={SYSTEM}|u-1"), other).await;
    assert_eq!(status, 400, "{outcome}");
    assert!(outcome.to_string().contains("someone-else"), "{outcome}");

    // No match, with an id: update as create under that id ...
    let mut chosen = patient_with("u-2", "Chosen");
    chosen["id"] = json!("chosen-id");
    let (status, created) = put(format!("identifier={SYSTEM}|u-2"), chosen).await;
    assert_eq!((status, created["id"].clone()), (201, json!("chosen-id")));
    // ... unless that id is a live resource the criteria do not match.
    let mut taken = patient_with("u-3", "Taken");
    taken["id"] = json!(id);
    let (status, outcome) = put(format!("identifier={SYSTEM}|u-3"), taken).await;
    assert_eq!(status, 400, "{outcome}");

    // Several matches: 412, and nothing changes.
    let events = app.event_count().await;
    let (status, outcome) = put(
        "name=Changed,Named,Chosen".to_owned(),
        patient_with("u-9", "X"),
    )
    .await;
    assert_eq!(status, 412, "{outcome}");
    assert_eq!(app.event_count().await, events);

    // If-Match applies to the matched resource.
    let response = app
        .write_request(
            Method::PUT,
            &format!("Patient?identifier={SYSTEM}|u-1"),
            Some(&patient_with("u-1", "Stale")),
        )
        .header("if-match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 412);
    app.cleanup().await;
}

#[tokio::test]
async fn conditional_delete_and_patch_act_on_one_match_only() {
    let app = with_projection().await;
    let a = app.create_ok(&patient_with("d-1", "Alpha")).await;
    app.create_ok(&patient_with("d-2", "Beta")).await;
    app.create_ok(&patient_with("d-3", "Beta")).await;

    // Patch: one match is patched; none is 404; several is 412.
    let patch = json!([{"op": "replace", "path": "/name/0/family", "value": "Patched"}]);
    let send_patch = |criteria: &str| {
        app.client
            .patch(format!("{}/Patient?{criteria}", app.writes))
            .header("content-type", "application/json-patch+json")
            .body(patch.to_string())
            .send()
    };
    let response = send_patch("identifier=d-1").await.unwrap();
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(
        (patched["id"].as_str(), &patched["name"][0]["family"]),
        (Some(a.as_str()), &json!("Patched"))
    );
    assert_eq!(send_patch("identifier=nobody").await.unwrap().status(), 404);
    assert_eq!(send_patch("name=Beta").await.unwrap().status(), 412);

    // Delete: several is 412 and deletes nothing; none is 200 saying so; one is deleted.
    let events = app.event_count().await;
    let response = app.delete("Patient?name=Beta").await;
    assert_eq!(response.status(), 412);
    let response = app.delete("Patient?identifier=nobody").await;
    assert_eq!(response.status(), 200);
    let outcome: Value = response.json().await.unwrap();
    assert!(
        outcome.to_string().contains("nothing was deleted"),
        "{outcome}"
    );
    assert_eq!(app.event_count().await, events);

    let response = app
        .delete(&format!("Patient?identifier={SYSTEM}|d-1"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.read(&format!("Patient/{a}")).await.status(), 410);
    // Deleted resources no longer match.
    let response = app
        .delete(&format!("Patient?identifier={SYSTEM}|d-1"))
        .await;
    let outcome: Value = response.json().await.unwrap();
    assert!(
        outcome.to_string().contains("nothing was deleted"),
        "{outcome}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn without_the_projections_a_conditional_write_is_503_and_writes_nothing() {
    let app = TestApp::spawn_with_args(&["--conditional-wait-ms", "300"]).await;
    app.create_ok(&patient_with("x-1", "Unindexed")).await;
    let events = app.event_count().await;
    let (status, outcome) =
        conditional_create(&app, &patient_with("x-1", "Again"), "identifier=x-1").await;
    assert_eq!(status, 503, "{outcome}");
    assert_eq!(outcome["issue"][0]["code"], "transient");
    assert_eq!(app.event_count().await, events);
    app.cleanup().await;
}

#[tokio::test]
async fn a_match_that_outlasts_its_statement_timeout_is_503_and_writes_nothing() {
    let app = TestApp::spawn_with_args(&[
        "--conditional-wait-ms",
        "60000",
        "--conditional-statement-timeout-ms",
        "300",
    ])
    .await;
    app.start_projection().await;
    let criteria = format!("identifier={SYSTEM}|slow-1");
    let (status, _) = conditional_create(&app, &patient_with("slow-1", "First"), &criteria).await;
    assert_eq!(status, 201);
    // Matched once more: the projection has indexed the patient and stands idle.
    let (status, _) = conditional_create(&app, &patient_with("slow-1", "First"), &criteria).await;
    assert_eq!(status, 200);

    // The token index held by another transaction: the match waits on it past its bound.
    let mut blocker = app.store.pool().begin().await.unwrap();
    sqlx::query("LOCK TABLE hfj_spidx_token IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let events = app.event_count().await;
    let (status, outcome) =
        conditional_create(&app, &patient_with("slow-1", "Second"), &criteria).await;
    assert_eq!(status, 503, "{outcome}");
    assert_eq!(outcome["issue"][0]["code"], "timeout", "{outcome}");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("slow-1"),
        "{outcome}"
    );
    assert_eq!(app.event_count().await, events);
    blocker.rollback().await.unwrap();

    let (status, found) =
        conditional_create(&app, &patient_with("slow-1", "Second"), &criteria).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["name"][0]["family"], "First");
    assert_eq!(patient_count(&app).await, 1);
    app.cleanup().await;
}
