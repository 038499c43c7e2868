//! Values the database will not index must not stop the projections: extraction bounds what the
//! tables hold (long keys, out-of-range numbers), and an event the database still refuses is
//! quarantined, reported in `/status`, and passed over.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// How soon the projection must be caught up again after a hostile event.
const LAG_BOUND: Duration = Duration::from_secs(5);

/// About 3 kB of random text: too long for a btree index entry even compressed.
fn long_system() -> String {
    let random: String = (0..92)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    format!("http://example.org/{random}")
}

async fn quarantined(app: &TestApp) -> Value {
    app.status(&app.projection).await
}

#[tokio::test]
async fn a_3_kb_identifier_system_is_indexed_and_found() {
    let app = TestApp::spawn().await;
    let system = long_system();
    assert!(system.len() > 2_900);
    app.put_ok(&json!({"resourceType": "Patient", "id": "before", "name": [{"family": "Before"}]}))
        .await;
    app.put_ok(&json!({"resourceType": "Patient", "id": "huge",
        "identifier": [{"system": system, "value": "1"}], "name": [{"family": "Huge"}]}))
        .await;
    app.put_ok(&json!({"resourceType": "Patient", "id": "after", "name": [{"family": "After"}]}))
        .await;
    app.caught_up_within(LAG_BOUND).await;

    for (family, id) in [("before", "before"), ("huge", "huge"), ("after", "after")] {
        assert_eq!(app.search("Patient", &[("family", family)]).await, vec![id]);
    }
    assert_eq!(
        app.search("Patient", &[("identifier", &format!("{system}|1"))])
            .await,
        vec!["huge"],
        "found by the hash of the whole system and value"
    );
    assert_eq!(
        app.search("Patient", &[("identifier", &format!("{system}|"))])
            .await,
        vec!["huge"],
        "found by the system alone, through its bounded key"
    );
    let other = format!("{}x|1", &system[..system.len() - 1]);
    assert!(
        app.search("Patient", &[("identifier", &other)])
            .await
            .is_empty(),
        "a system differing in its last character is another system"
    );
    let status = quarantined(&app).await;
    assert_eq!(status["quarantinedEvents"], 0, "{status}");
    app.cleanup().await;
}

#[tokio::test]
async fn long_uris_and_references_are_indexed_and_found() {
    let app = TestApp::spawn().await;
    let url = long_system();
    app.put_ok(&json!({"resourceType": "ValueSet", "id": "long", "status": "active", "url": url}))
        .await;
    app.put_ok(
        &json!({"resourceType": "Observation", "id": "external", "status": "final",
        "code": {"text": "x"}, "subject": {"reference": url,
            "identifier": {"system": url, "value": "v"}}}),
    )
    .await;
    app.caught_up_within(LAG_BOUND).await;

    assert_eq!(app.search("ValueSet", &[("url", &url)]).await, vec!["long"]);
    assert_eq!(
        app.search("ValueSet", &[("url:below", &url[..250])]).await,
        vec!["long"]
    );
    assert_eq!(
        app.search("ValueSet", &[("url:below", "http://example.org/")])
            .await,
        vec!["long"]
    );
    assert_eq!(
        app.search("ValueSet", &[("url:above", &format!("{url}/child"))])
            .await,
        vec!["long"]
    );
    assert_eq!(
        app.search("Observation", &[("subject", &url)]).await,
        vec!["external"]
    );
    assert_eq!(
        app.search(
            "Observation",
            &[("subject:identifier", &format!("{url}|v"))]
        )
        .await,
        vec!["external"]
    );
    assert_eq!(quarantined(&app).await["quarantinedEvents"], 0);
    app.cleanup().await;
}

/// Appends `resource` to the event store directly, as an event written before validation
/// bounded it (or forged) would be.
async fn append_unvalidated(app: &TestApp, resource: &str) {
    let value: Value = serde_json::from_str(resource).unwrap();
    let metadata: event_store::EventMetadata = serde_json::from_value(json!({
        "actor": {"user": "tester"},
        "requestId": "unvalidated",
        "transactionId": uuid::Uuid::now_v7(),
        "recordedAt": chrono::Utc::now(),
    }))
    .unwrap();
    event_store::EventStore::new(app.pool.clone())
        .append(
            &event_store::CommitContext { metadata },
            &[event_store::NewEvent {
                resource_type: value["resourceType"].as_str().unwrap().to_owned(),
                resource_id: value["id"].as_str().unwrap().to_owned(),
                version: 1,
                kind: event_store::EventKind::ResourceCreated,
                resource: resource.to_owned(),
                patch: None,
                prev_hash: None,
            }],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_number_beyond_what_numeric_holds_is_indexed_clamped() {
    let app = TestApp::spawn().await;
    let hostile = r#"{"resourceType": "Observation", "id": "huge", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "valueQuantity": {"value": 1e999999999, "system": "http://unitsofmeasure.org", "code": "/min"}}"#;
    // Validation may refuse it; an event stored before it did (or a forged one) must still not
    // stop the projection.
    let response = app.put(&serde_json::from_str(hostile).unwrap()).await;
    if !response.status().is_success() {
        assert_eq!(response.status(), 400);
        append_unvalidated(&app, hostile).await;
    }
    app.put_ok(
        &json!({"resourceType": "Observation", "id": "after", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "valueQuantity": {"value": 72, "system": "http://unitsofmeasure.org", "code": "/min"}}),
    )
    .await;
    app.caught_up_within(LAG_BOUND).await;

    assert_eq!(
        app.search("Observation", &[("value-quantity", "gt1000")])
            .await,
        vec!["huge"]
    );
    assert_eq!(
        app.search("Observation", &[("value-quantity", "72")]).await,
        vec!["after"]
    );
    assert_eq!(quarantined(&app).await["quarantinedEvents"], 0);
    app.cleanup().await;
}

#[tokio::test]
async fn an_event_the_database_refuses_is_quarantined_and_the_rest_flows() {
    let app = TestApp::spawn().await;
    // Whatever extraction lets through that the database still refuses: a constraint stands in
    // for it here, so the test does not depend on which value that is.
    sqlx::query(
        "ALTER TABLE hfj_spidx_string ADD CONSTRAINT refuses_poison \
         CHECK (value_normalized <> 'poison') NOT VALID",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let patient = |family: &str| json!({"resourceType": "Patient", "id": "bad", "name": [{"family": family}]});
    app.put_ok(&patient("Kept")).await;
    app.caught_up().await;
    app.put_ok(&patient("Poison")).await;
    app.put_ok(&json!({"resourceType": "Patient", "id": "after", "name": [{"family": "After"}]}))
        .await;
    app.caught_up_within(LAG_BOUND).await;

    let status = app
        .status_when(&app.projection, "the quarantine is reported", |status| {
            status["quarantinedEvents"] == 1
        })
        .await;
    let entry = &status["latestQuarantined"][0];
    assert_eq!(entry["resourceType"], "Patient", "{status}");
    assert_eq!(entry["resourceId"], "bad");
    assert_eq!(entry["version"], 2);
    assert!(entry["position"].as_i64().unwrap() > 0);
    let reason = entry["reason"].as_str().unwrap();
    assert!(
        reason.contains("refuses_poison") && reason.contains("23514"),
        "{reason}"
    );
    assert_eq!(
        app.search("Patient", &[("family", "after")]).await,
        vec!["after"]
    );
    assert!(
        app.search("Patient", &[("family", "kept")])
            .await
            .is_empty(),
        "the quarantined version leaves no index rows of the older one"
    );
    assert_eq!(
        app.search("Patient", &[("_id", "bad")]).await,
        vec!["bad"],
        "the resource itself is still known"
    );

    // A rebuild quarantines afresh what still cannot be indexed (the copies keep the
    // constraint).
    let report: Value = app
        .client
        .post(format!("{}/admin/rebuild", app.projection))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["quarantined"], 1, "{report}");
    let status = app.status(&app.projection).await;
    assert_eq!(status["quarantinedEvents"], 1, "{status}");
    assert_eq!(status["latestQuarantined"][0]["resourceId"], "bad");

    // A later version that can be indexed is.
    app.put_ok(&patient("Healthy")).await;
    app.caught_up_within(LAG_BOUND).await;
    assert_eq!(
        app.search("Patient", &[("family", "healthy")]).await,
        vec!["bad"]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_lost_connection_is_retried_not_quarantined() {
    let app = TestApp::spawn().await;
    app.put_ok(&json!({"resourceType": "Patient", "id": "first", "name": [{"family": "First"}]}))
        .await;
    app.caught_up().await;
    // Hold the string table so the projector's write waits, then end its connection.
    let mut blocker = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE hfj_spidx_string IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    app.put_ok(&json!({"resourceType": "Patient", "id": "second", "name": [{"family": "Second"}]}))
        .await;
    let writer: i32 = test_support::eventually(
        "the projector waits for the lock",
        Duration::from_secs(30),
        || async {
            sqlx::query_as::<_, (i32,)>(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO hfj_spidx_string%'",
            )
            .fetch_optional(&app.pool)
            .await
            .unwrap()
            .map(|(pid,)| pid)
        },
    )
    .await;
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(writer)
        .execute(&app.pool)
        .await
        .unwrap();
    blocker.commit().await.unwrap();
    app.caught_up().await;

    assert_eq!(
        app.search("Patient", &[("family", "second")]).await,
        vec!["second"]
    );
    assert_eq!(quarantined(&app).await["quarantinedEvents"], 0);
    app.cleanup().await;
}

#[tokio::test]
async fn a_nul_character_is_refused_at_the_door_or_quarantined() {
    let app = TestApp::spawn().await;
    let response = app
        .put(
            &json!({"resourceType": "Patient", "id": "nul", "name": [{"family": "Nul\u{0}Byte"}],
            "identifier": [{"system": "http://example.org/nul", "value": "a\u{0}b"}]}),
        )
        .await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(
        status == 400 || status.is_success(),
        "a NUL character is bad input, not a server error: {status} {body}"
    );
    app.put_ok(&json!({"resourceType": "Patient", "id": "next", "name": [{"family": "Next"}]}))
        .await;
    app.caught_up_within(LAG_BOUND).await;
    assert_eq!(
        app.search("Patient", &[("family", "next")]).await,
        vec!["next"]
    );
    if status.is_success() {
        // A text column cannot hold a NUL character, and the identifier's value is stored as
        // written: the event is quarantined, with the database's reason.
        let status = app
            .status_when(&app.projection, "the event is quarantined", |status| {
                status["quarantinedEvents"] == 1
            })
            .await;
        let entry = &status["latestQuarantined"][0];
        assert_eq!(entry["resourceId"], "nul", "{status}");
        assert!(
            entry["reason"].as_str().unwrap().contains("22021"),
            "{status}"
        );
        assert_eq!(app.search("Patient", &[("_id", "nul")]).await, vec!["nul"]);
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_message_that_is_not_an_event_is_quarantined() {
    let app = TestApp::spawn().await;
    app.put_ok(&json!({"resourceType": "Patient", "id": "first", "name": [{"family": "First"}]}))
        .await;
    app.caught_up().await;
    // A forged message. Its position is one already applied: the relay reads the stream's last
    // position when it resumes, and one far ahead would hold it back.
    let client = event_store::relay::connect_nats(&test_support::nats_url())
        .await
        .unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(event_store::relay::POSITION_HEADER, "1");
    async_nats::jetstream::new(client)
        .publish_with_headers(
            format!("{}.Patient", app.subject_prefix),
            headers,
            "not an event".into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    app.put_ok(&json!({"resourceType": "Patient", "id": "after", "name": [{"family": "After"}]}))
        .await;
    app.caught_up_within(LAG_BOUND).await;

    let status = app
        .status_when(&app.projection, "the message is quarantined", |status| {
            status["quarantinedEvents"] == 1
        })
        .await;
    let entry = &status["latestQuarantined"][0];
    assert_eq!(entry["position"], 1, "{status}");
    assert!(entry["resourceType"].is_null());
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .contains("not a FHIR event envelope")
    );
    assert_eq!(
        app.search("Patient", &[("family", "after")]).await,
        vec!["after"]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_resource_too_large_for_a_nats_message_is_indexed_and_the_writes_after_it_too() {
    let app = TestApp::spawn().await;
    // A 1.5 MB attachment: its event travels on NATS by reference and is read from the store.
    let data = "QUJD".repeat(400_000);
    app.put_ok(
        &json!({"resourceType": "DocumentReference", "id": "scan", "status": "current",
        "content": [{"attachment": {"contentType": "application/pdf", "data": data}}]}),
    )
    .await;
    app.put_ok(&json!({"resourceType": "Patient", "id": "after", "name": [{"family": "After"}]}))
        .await;
    app.caught_up_within(LAG_BOUND).await;
    assert_eq!(
        app.search("DocumentReference", &[("status", "current")])
            .await,
        vec!["scan"]
    );
    assert_eq!(
        app.search("Patient", &[("family", "after")]).await,
        vec!["after"]
    );
    let status = quarantined(&app).await;
    assert_eq!(status["quarantinedEvents"], 0, "{status}");
    app.cleanup().await;
}
