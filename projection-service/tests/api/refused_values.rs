//! Values the database will not index must not stop the projections: an event the database
//! refuses is quarantined, reported in `/status`, and passed over.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// How soon the projection must be caught up again after a hostile event.
const LAG_BOUND: Duration = Duration::from_secs(5);

async fn quarantined(app: &TestApp) -> Value {
    app.status(&app.projection).await
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
async fn a_nul_character_is_refused_at_the_door_or_indexed_without_stopping() {
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
        let (count,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM hfj_resource WHERE res_type = 'Patient' AND res_id = 'nul'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(
            count, 1,
            "the resource is projected (its rows may be refused, not its version)"
        );
    }
    app.cleanup().await;
}
