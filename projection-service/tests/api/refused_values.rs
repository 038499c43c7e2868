//! Values the database will not index must not stop the projections.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_value_too_large_for_an_index_skips_that_resource_only() {
    let app = TestApp::spawn().await;
    // A btree index entry holds at most about 2.7 kB, after compression: random text is long
    // even compressed.
    let random: String = (0..400)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    let long_system = format!("http://example.org/{random}");
    app.put_ok(&json!({"resourceType": "Patient", "id": "before", "name": [{"family": "Before"}]}))
        .await;
    app.put_ok(&json!({"resourceType": "Patient", "id": "huge",
        "identifier": [{"system": long_system, "value": "1"}], "name": [{"family": "Huge"}]}))
        .await;
    app.put_ok(&json!({"resourceType": "Patient", "id": "after", "name": [{"family": "After"}]}))
        .await;
    app.caught_up().await;

    for id in ["before", "after"] {
        assert_eq!(
            app.param_rows("hfj_spidx_string", "Patient", id, "family")
                .await
                .len(),
            1,
            "{id} is indexed"
        );
    }
    let (version,): (i32,) = sqlx::query_as(
        "SELECT res_ver FROM hfj_resource WHERE res_type = 'Patient' AND res_id = 'huge'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        version, 1,
        "the refused resource's version is still recorded"
    );
    app.status_when(&app.projection, "the refused value is counted", |status| {
        status["indexProblems"].as_u64().unwrap() >= 1
    })
    .await;

    // A later, indexable version of the same resource replaces the gap.
    app.put_ok(&json!({"resourceType": "Patient", "id": "huge", "name": [{"family": "Smaller"}]}))
        .await;
    app.caught_up().await;
    assert_eq!(
        app.param_rows("hfj_spidx_string", "Patient", "huge", "family")
            .await
            .len(),
        1
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_nul_character_is_refused_at_the_door_or_indexed_without_stopping() {
    let app = TestApp::spawn().await;
    let response = app
        .put(&json!({"resourceType": "Patient", "id": "nul", "name": [{"family": "Nul\u{0}Byte"}]}))
        .await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(
        status == 400 || status.is_success(),
        "a NUL character is bad input, not a server error: {status} {body}"
    );
    app.put_ok(&json!({"resourceType": "Patient", "id": "next", "name": [{"family": "Next"}]}))
        .await;
    app.caught_up().await;
    assert_eq!(
        app.param_rows("hfj_spidx_string", "Patient", "next", "family")
            .await
            .len(),
        1
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
