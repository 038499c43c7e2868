//! `POST /fhir` with transaction and batch Bundles.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, patient};
use crate::relay::read_all;

const SYSTEM: &str = "http://hospital.test/mrn";

fn bundle(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

fn post_entry(full_url: &str, resource: Value) -> Value {
    let url = resource["resourceType"].as_str().unwrap().to_owned();
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": url}})
}

async fn send(app: &TestApp, bundle: &Value) -> (u16, Value, Option<i64>) {
    let response = app
        .write_request(Method::POST, "", Some(bundle))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let position = response
        .headers()
        .get("x-event-position")
        .map(|value| value.to_str().unwrap().parse().unwrap());
    (status, response.json().await.unwrap(), position)
}

async fn stored(app: &TestApp, reference: &str) -> Value {
    let (resource_type, id) = reference.split_once('/').unwrap();
    let head = app.store.latest(resource_type, id).await.unwrap().unwrap();
    serde_json::from_str(&head.resource).unwrap()
}

fn location(entry: &Value) -> String {
    let location = entry["response"]["location"].as_str().unwrap();
    let parts: Vec<&str> = location.split('/').collect();
    format!("{}/{}", parts[0], parts[1])
}

#[tokio::test]
async fn a_transaction_resolves_its_references_commits_once_and_answers_in_order() {
    let app = TestApp::spawn().await;
    let existing = app.create_ok(&patient("Existing")).await;
    let entries = vec![
        json!({"fullUrl": "urn:uuid:obs", "resource": {
            "resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
            "subject": {"reference": "urn:uuid:pat"},
            "encounter": {"reference": "urn:uuid:enc"},
            "extension": [{"url": "http://x.test/e", "valueReference": {"reference": "urn:uuid:pat"}}],
            "contained": [{"resourceType": "Provenance", "id": "p", "recorded": "2020-01-01T00:00:00Z",
                "agent": [{"who": {"reference": "urn:uuid:pat"}}], "target": [{"reference": "urn:uuid:enc"}]}]
        }, "request": {"method": "POST", "url": "Observation"}}),
        post_entry("urn:uuid:pat", patient("Bundled")),
        json!({"fullUrl": "urn:uuid:enc", "resource": {"resourceType": "Encounter", "id": "enc-1", "status": "finished",
            "class": {"code": "IMP"}, "subject": {"reference": "urn:uuid:pat"}},
            "request": {"method": "PUT", "url": "Encounter/enc-1"}}),
        json!({"request": {"method": "GET", "url": format!("Patient/{existing}")}}),
        // A read that finds nothing answers 404 in its entry and fails nothing.
        json!({"request": {"method": "GET", "url": "Patient/nobody"}}),
    ];
    let (status, response, position) = send(&app, &bundle("transaction", entries)).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["type"], "transaction-response");
    let answers = response["entry"].as_array().unwrap();
    let statuses: Vec<&str> = answers
        .iter()
        .map(|entry| entry["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "201 Created",
            "201 Created",
            "201 Created",
            "200 OK",
            "404 Not Found"
        ]
    );
    assert_eq!(
        answers[4]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert!(position.is_some());
    for entry in &answers[..3] {
        assert_eq!(entry["response"]["etag"], "W/\"1\"");
        assert!(entry["response"]["lastModified"].is_string());
    }

    let observation = stored(&app, &location(&answers[0])).await;
    let patient_ref = location(&answers[1]);
    assert!(patient_ref.starts_with("Patient/"), "{patient_ref}");
    assert_eq!(location(&answers[2]), "Encounter/enc-1");
    assert_eq!(observation["subject"]["reference"], patient_ref.as_str());
    assert_eq!(observation["encounter"]["reference"], "Encounter/enc-1");
    assert_eq!(
        observation["extension"][0]["valueReference"]["reference"],
        patient_ref.as_str()
    );
    assert_eq!(
        observation["contained"][0]["agent"][0]["who"]["reference"],
        patient_ref.as_str()
    );
    assert_eq!(
        observation["contained"][0]["target"][0]["reference"],
        "Encounter/enc-1"
    );
    assert_eq!(
        stored(&app, "Encounter/enc-1").await["subject"]["reference"],
        patient_ref.as_str()
    );

    // One database transaction id for the three events.
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT transaction_id) FROM fhir_event WHERE resource_type <> 'Patient' OR resource_id <> $1",
    )
    .bind(&existing)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(transactions, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn a_300_entry_transaction_with_an_invalid_200th_entry_writes_and_publishes_nothing() {
    let app = TestApp::spawn().await;
    app.create_ok(&patient("Before")).await;
    let mut entries: Vec<Value> = (0..300)
        .map(|n| post_entry(&format!("urn:uuid:{n}"), patient(&format!("P{n}"))))
        .collect();
    entries[199]["resource"]["birthDate"] = json!("yesterday");
    let events = app.event_count().await;
    let (status, outcome, position) = send(&app, &bundle("transaction", entries)).await;
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert!(
        outcome.to_string().contains("Bundle.entry[199]"),
        "{outcome}"
    );
    assert!(position.is_none());
    assert_eq!(app.event_count().await, events, "nothing is written");

    // The next write is the next message on the stream: nothing was published in between.
    app.create_ok(&patient("After")).await;
    let messages = read_all(&app.nats_url, &app.stream, 2).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].3["resource"]["name"][0]["family"], "After");
    app.cleanup().await;
}

#[tokio::test]
async fn a_failing_entry_fails_the_bundle_with_its_status() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Versioned")).await;
    let valid = post_entry("urn:uuid:ok", patient("Valid"));
    let cases = [
        (
            "stale ifMatch",
            json!({"resource": {"resourceType": "Patient", "id": id}, "request": {"method": "PUT",
                "url": format!("Patient/{id}"), "ifMatch": "W/\"7\""}}),
            412,
        ),
        (
            "reference to no entry",
            post_entry(
                "urn:uuid:x",
                json!({"resourceType": "Observation", "status": "final",
                "code": {"text": "x"}, "subject": {"reference": "urn:uuid:nobody"}}),
            ),
            400,
        ),
        (
            "reference to no resource",
            post_entry(
                "urn:uuid:x",
                json!({"resourceType": "Observation", "status": "final",
                "code": {"text": "x"}, "subject": {"reference": "Patient/nobody"}}),
            ),
            400,
        ),
        (
            "delete of an unknown resource",
            json!({"request": {"method": "DELETE", "url": "Patient/nobody"}}),
            404,
        ),
        (
            "unknown type",
            json!({"request": {"method": "DELETE", "url": "Nonsense/1"}}),
            404,
        ),
        (
            "existing resource with ifNoneMatch",
            json!({"resource": {"resourceType": "Patient", "id": id}, "request": {"method": "PUT",
                "url": format!("Patient/{id}"), "ifNoneMatch": "*"}}),
            412,
        ),
        (
            "one resource written twice",
            json!({"resource": {"resourceType": "Patient", "id": "ok"}, "request": {"method": "PUT", "url": "Patient/ok"}}),
            400,
        ),
    ];
    let events = app.event_count().await;
    for (name, bad, expected) in cases {
        let mut entries = vec![valid.clone(), bad];
        if name == "one resource written twice" {
            entries[0] = entries[1].clone();
            entries[0]["fullUrl"] = json!("urn:uuid:first");
        }
        let (status, outcome, _) = send(&app, &bundle("transaction", entries)).await;
        assert_eq!(status, expected, "{name}: {outcome}");
        assert!(
            outcome.to_string().contains("Bundle.entry[1]"),
            "{name}: {outcome}"
        );
        assert_eq!(
            app.event_count().await,
            events,
            "{name}: nothing is written"
        );
    }
    for (name, bad) in [
        ("not a Bundle", patient("X")),
        (
            "a collection",
            json!({"resourceType": "Bundle", "type": "collection"}),
        ),
        (
            "an entry without a request",
            bundle("transaction", vec![json!({"resource": patient("X")})]),
        ),
        (
            "a repeated fullUrl",
            bundle("transaction", vec![valid.clone(), valid.clone()]),
        ),
    ] {
        let (status, outcome, _) = send(&app, &bad).await;
        assert_eq!(status, 400, "{name}: {outcome}");
        assert_eq!(
            app.event_count().await,
            events,
            "{name}: nothing is written"
        );
    }
    app.cleanup().await;
}

#[tokio::test]
async fn conditional_entries_and_references_resolve_by_search() {
    let app = TestApp::spawn().await;
    app.start_projection().await;
    let mut known = patient("Known");
    known["identifier"] = json!([{"system": SYSTEM, "value": "known"}]);
    let known_id = app.create_ok(&known).await;
    let doomed = app.create_ok(&patient("Doomed")).await;
    let mut fresh = patient("Fresh");
    fresh["identifier"] = json!([{"system": SYSTEM, "value": "fresh"}]);
    let entries = vec![
        json!({"fullUrl": "urn:uuid:known", "resource": known.clone(), "request": {"method": "POST",
            "url": "Patient", "ifNoneExist": format!("identifier={SYSTEM}|known")}}),
        post_entry(
            "urn:uuid:obs",
            json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "x"}, "subject": {"reference": format!("Patient?identifier={SYSTEM}|known")},
            "focus": [{"reference": "urn:uuid:known"}]}),
        ),
        json!({"resource": fresh, "request": {"method": "PUT", "url": format!("Patient?identifier={SYSTEM}|fresh")}}),
        json!({"request": {"method": "DELETE", "url": format!("Patient/{doomed}")}}),
        json!({"request": {"method": "DELETE", "url": "Patient?identifier=nobody"}}),
    ];
    let (status, response, _) = send(&app, &bundle("transaction", entries)).await;
    assert_eq!(status, 200, "{response}");
    let answers = response["entry"].as_array().unwrap();
    let statuses: Vec<&str> = answers
        .iter()
        .map(|entry| entry["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["200 OK", "201 Created", "201 Created", "200 OK", "200 OK"]
    );
    assert_eq!(location(&answers[0]), format!("Patient/{known_id}"));
    let observation = stored(&app, &location(&answers[1])).await;
    assert_eq!(
        observation["subject"]["reference"],
        format!("Patient/{known_id}")
    );
    assert_eq!(
        observation["focus"][0]["reference"],
        format!("Patient/{known_id}")
    );
    assert!(
        answers[4]["response"]["outcome"]
            .to_string()
            .contains("nothing was deleted")
    );
    let head = app.store.latest("Patient", &doomed).await.unwrap().unwrap();
    assert!(head.is_delete());

    // A conditional reference with two matches fails the bundle, and nothing is written.
    let mut twin = patient("Twin");
    twin["identifier"] = json!([{"system": SYSTEM, "value": "known"}]);
    app.create_ok(&twin).await;
    let events = app.event_count().await;
    let ambiguous = vec![
        post_entry("urn:uuid:a", patient("Innocent")),
        post_entry(
            "urn:uuid:b",
            json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "x"}, "subject": {"reference": format!("Patient?identifier={SYSTEM}|known")}}),
        ),
    ];
    let (status, outcome, _) = send(&app, &bundle("transaction", ambiguous)).await;
    assert_eq!(status, 412, "{outcome}");
    assert!(outcome.to_string().contains("Bundle.entry[1]"), "{outcome}");
    assert_eq!(app.event_count().await, events);

    // None: 404.
    let unmatched = vec![post_entry(
        "urn:uuid:b",
        json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "x"}, "subject": {"reference": "Patient?identifier=nobody"}}),
    )];
    let (status, outcome, _) = send(&app, &bundle("transaction", unmatched)).await;
    assert_eq!(status, 404, "{outcome}");
    assert_eq!(app.event_count().await, events);
    app.cleanup().await;
}

#[tokio::test]
async fn concurrent_transactions_on_one_resource_serialise() {
    let app = TestApp::spawn().await;
    let shared = app.create_ok(&patient("Shared")).await;
    // Each transaction updates the shared patient at version 1 and adds an observation of it:
    // exactly one may win, and the losers leave no observation behind.
    let requests = (0..8).map(|n| {
        let entries = vec![
            json!({"resource": {"resourceType": "Patient", "id": shared, "name": [{"family": format!("Writer{n}")}]},
                "request": {"method": "PUT", "url": format!("Patient/{shared}"), "ifMatch": "W/\"1\""}}),
            post_entry("urn:uuid:o", json!({"resourceType": "Observation", "status": "final",
                "code": {"text": format!("by {n}")}, "subject": {"reference": format!("Patient/{shared}")}})),
        ];
        let request = app.write_request(Method::POST, "", Some(&bundle("transaction", entries)));
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(requests).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 412),
        "{statuses:?}"
    );
    let observations: i64 =
        sqlx::query_scalar("SELECT count(*) FROM fhir_event WHERE resource_type = 'Observation'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(observations, 1);
    let head = app.store.latest("Patient", &shared).await.unwrap().unwrap();
    assert_eq!(head.version, 2);

    // Without ifMatch, every transaction lands, one version after another.
    let requests = (0..8).map(|n| {
        let entries = vec![json!({"resource": {"resourceType": "Patient", "id": shared,
            "name": [{"family": format!("Again{n}")}]}, "request": {"method": "PUT", "url": format!("Patient/{shared}")}})];
        let request = app.write_request(Method::POST, "", Some(&bundle("transaction", entries)));
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let head = app.store.latest("Patient", &shared).await.unwrap().unwrap();
    assert_eq!(head.version, 10);
    app.cleanup().await;
}

#[tokio::test]
async fn a_batch_answers_each_entry_on_its_own() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Patched")).await;
    let patch = json!([{"op": "replace", "path": "/name/0/family", "value": "Repatched"}]);
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
    let entries = vec![
        post_entry("urn:uuid:a", patient("Fine")),
        post_entry(
            "urn:uuid:b",
            json!({"resourceType": "Patient", "birthDate": "yesterday"}),
        ),
        json!({"request": {"method": "DELETE", "url": "Patient/nobody"}}),
        json!({"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data},
            "request": {"method": "PATCH", "url": format!("Patient/{id}")}}),
        json!({"request": {"method": "GET", "url": format!("Patient/{id}")}}),
    ];
    let response = app
        .write_request(Method::POST, "", Some(&bundle("batch", entries)))
        .header("prefer", "return=representation")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response: Value = response.json().await.unwrap();
    assert_eq!(response["type"], "batch-response");
    let answers = response["entry"].as_array().unwrap();
    let statuses: Vec<&str> = answers
        .iter()
        .map(|entry| entry["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "201 Created",
            "400 Bad Request",
            "404 Not Found",
            "200 OK",
            "200 OK"
        ]
    );
    assert_eq!(
        answers[1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert!(
        answers[1]["response"]["outcome"]
            .to_string()
            .contains("birthDate")
    );
    assert_eq!(answers[0]["resource"]["name"][0]["family"], "Fine");
    assert_eq!(answers[3]["resource"]["name"][0]["family"], "Repatched");
    assert_eq!(answers[4]["resource"]["meta"]["versionId"], "2");
    app.cleanup().await;
}
