//! A path that names no resource this server could hold is decided once for every read route,
//! with the status and code the write side gives the same mistake: an unknown type is 404
//! `not-supported`, an invalid id 400 `value`. (An unknown search parameter is the search
//! module's to decide: a warning by default, 400 under `Prefer: handling=strict`.)

use serde_json::{Value, json};

use crate::helpers::TestApp;

fn code(outcome: &Value) -> &str {
    outcome["issue"][0]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn every_read_route_answers_path_mistakes_the_same_way_as_the_write_side() {
    let app = TestApp::spawn_with(false, 5_000).await;
    let long_id = "x".repeat(65);
    let bad_id = format!("Patient/{long_id}");
    let cases: Vec<(String, u16, &str)> = vec![
        ("Spaceship/1".into(), 404, "not-supported"),
        ("Spaceship/1/_history/1".into(), 404, "not-supported"),
        ("Spaceship/1/_history".into(), 404, "not-supported"),
        ("Spaceship/_history".into(), 404, "not-supported"),
        ("Spaceship?name=x".into(), 404, "not-supported"),
        ("Patient/1/Spaceship".into(), 404, "not-supported"),
        // A segment that is not UTF-8 once decoded is a bad name like any other.
        ("%FF/1".into(), 404, "not-supported"),
        ("%FF/_history".into(), 404, "not-supported"),
        ("Patient/%FF".into(), 400, "value"),
        ("Patient/1/_history/%FF".into(), 404, "not-found"),
        (bad_id.clone(), 400, "value"),
        (format!("{bad_id}/_history/1"), 400, "value"),
        (format!("{bad_id}/_history"), 400, "value"),
        (format!("{bad_id}/Observation"), 400, "value"),
        (format!("{bad_id}/$everything"), 400, "value"),
    ];
    let mut wrong = Vec::new();
    for (path, status, expected) in &cases {
        let response = app.get(path).await;
        let got = response.status().as_u16();
        let outcome: Value = response.json().await.unwrap_or(Value::Null);
        if got != *status || code(&outcome) != *expected {
            wrong.push(format!("GET {path}: {got} {outcome}"));
        }
    }
    // POST _search takes the type from its path too.
    let response = app
        .client
        .post(format!("{}/Spaceship/_search", app.reads))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=x")
        .send()
        .await
        .unwrap();
    if response.status() != 404 {
        wrong.push(format!("POST Spaceship/_search: {}", response.status()));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // The same mistakes on the write side: the same statuses and codes.
    for (path, body, status, expected) in [
        (
            "Spaceship",
            json!({"resourceType": "Spaceship"}),
            404,
            "not-supported",
        ),
        (
            bad_id.as_str(),
            json!({"resourceType": "Patient", "id": long_id}),
            400,
            "value",
        ),
    ] {
        let response = app
            .client
            .put(format!("{}/{path}", app.writes))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "PUT {path}");
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(code(&outcome), expected, "PUT {path}: {outcome}");
    }
}
