//! Searches as a hostile client writes them: values beyond what the server can compute with,
//! searches that would cost too much, page links that outlived their data. Each answers an
//! OperationOutcome with its status, and the connection stays usable.

use std::time::{Duration, Instant};

use serde_json::json;
use test_support::ServiceArgs;

use crate::helpers::{BASE_URL, TestApp, link, match_ids};

#[tokio::test]
async fn decimal_values_beyond_range_are_400_naming_the_parameter() {
    let app = TestApp::spawn_with(false, 1_000).await;
    for (search, parameter) in [
        ("Observation?value-quantity=1e-28", "value-quantity"),
        ("Observation?value-quantity=ge1e-28", "value-quantity"),
        (
            "Observation?value-quantity=1e-28|http://unitsofmeasure.org|mg",
            "value-quantity",
        ),
        (
            "Observation?value-quantity=ap79228162514264337593543950335",
            "value-quantity",
        ),
        (
            "Observation?value-quantity=70000000000000000000000000000||kg",
            "value-quantity",
        ),
        ("RiskAssessment?probability=1e-28", "probability"),
    ] {
        let outcome = app.outcome(search, 400).await;
        let diagnostics = outcome["issue"][0]["diagnostics"].as_str().unwrap();
        assert!(diagnostics.contains(parameter), "{search}: {diagnostics}");
    }
    // The same connection pool still answers.
    app.search("Observation?value-quantity=5.4").await;
}

/// `POST <reads>/<path>` with a form body: status and body.
async fn post_form(app: &TestApp, path: &str, body: String) -> (u16, serde_json::Value) {
    let response = app
        .client
        .post(format!("{}/{path}", app.reads))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, body)
}

fn assert_too_costly(outcome: &serde_json::Value, limit: &str) {
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    assert_eq!(outcome["issue"][0]["code"], "too-costly", "{outcome}");
    let diagnostics = outcome["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(diagnostics.contains(limit), "{diagnostics}");
}

#[tokio::test]
async fn searches_beyond_the_budget_answer_400_too_costly_at_once() {
    let app = TestApp::spawn().await;
    let under_a_second = |started: Instant| {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    };
    // 96 sort keys (11 s before).
    let started = Instant::now();
    let sort = vec!["birthdate"; 96].join(",");
    let outcome = app.outcome(&format!("Patient?_sort={sort}"), 400).await;
    assert_too_costly(&outcome, "_sort keys");
    under_a_second(started);
    // 3,000 :contains criteria in a POST _search (still running after 107 s before).
    let started = Instant::now();
    let criteria: Vec<String> = (0..3_000).map(|n| format!("name:contains=a{n}")).collect();
    let (status, outcome) = post_form(&app, "Patient/_search", criteria.join("&")).await;
    assert_eq!(status, 400);
    assert_too_costly(&outcome, "parameters exceed");
    under_a_second(started);
    // 70,000 OR values (500 before: more bind parameters than Postgres takes).
    let started = Instant::now();
    let values = vec!["x"; 70_000].join(",");
    let (status, outcome) = post_form(&app, "Patient/_search", format!("_id={values}")).await;
    assert_eq!(status, 400);
    assert_too_costly(&outcome, "per parameter");
    under_a_second(started);
    // Distinct includes beyond the limit; the same one 200 times is one include.
    let includes: Vec<String> = [
        "Observation",
        "Condition",
        "Encounter",
        "Procedure",
        "CarePlan",
    ]
    .iter()
    .flat_map(|source| {
        [
            "subject",
            "patient",
            "*",
            "subject:Patient",
            "patient:Patient",
        ]
        .map(|param| format!("_revinclude={source}:{param}"))
    })
    .collect();
    let (status, outcome) = post_form(&app, "Patient/_search", includes.join("&")).await;
    assert_eq!(status, 400);
    assert_too_costly(&outcome, "_include");
    // Chains and _has deeper than their limits.
    let chain = format!("subject:Patient.{}name=x", "link:Patient.".repeat(4));
    assert_too_costly(
        &app.outcome(&format!("Observation?{chain}"), 400).await,
        "chain",
    );
    let has = format!("{}name=x", "_has:Patient:link:".repeat(5));
    assert_too_costly(&app.outcome(&format!("Patient?{has}"), 400).await, "_has");
    // Within the budget, repeats included, the search runs.
    let same = vec!["_revinclude:iterate=Observation:subject"; 200].join("&");
    let (status, bundle) = post_form(&app, "Patient/_search", same).await;
    assert_eq!(status, 200, "{bundle}");
}

#[tokio::test]
async fn a_form_body_over_the_limit_is_413_with_an_operation_outcome() {
    let app = TestApp::spawn_with(false, 1_000).await;
    let body = format!("name={}", "a".repeat(3 * 1024 * 1024));
    let (status, outcome) = post_form(&app, "Patient/_search", body).await;
    assert_eq!(status, 413);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["code"], "too-long");
}

/// Fills the index with `rows` Patients named `name-<n>`, so that a search over them takes a
/// while.
async fn many_names(app: &TestApp, rows: i64) {
    sqlx::query(
        "INSERT INTO hfj_resource (res_pk, res_type, res_id, res_ver, last_updated, deleted, position) \
         SELECT n, 'Patient', 'p' || n, 1, now(), false, 0 FROM generate_series(1000001, 1000000 + $1) n",
    )
    .bind(rows)
    .execute(&app.database)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO hfj_spidx_string (res_pk, res_ver, res_type, sp_name, value_normalized, value_exact, hash_exact) \
         SELECT n, 1, 'Patient', 'name', 'name-' || n, 'name-' || n, n FROM generate_series(1000001, 1000000 + $1) n",
    )
    .bind(rows)
    .execute(&app.database)
    .await
    .unwrap();
    sqlx::query("ANALYZE").execute(&app.database).await.unwrap();
}

/// A search that costs seconds over `many_names` (about 6 s for 200,000 rows) and stays
/// within the budget: 83 distinct `:contains` criteria that every name matches (each case
/// spelling of each piece of `name-`), so no criterion narrows what the next one tests.
fn slow_search() -> String {
    let pieces = [
        "n", "a", "m", "e", "-", "na", "am", "me", "e-", "nam", "ame", "me-", "name", "ame-",
        "name-",
    ];
    let mut criteria = Vec::new();
    for piece in pieces {
        let letters = piece.chars().filter(char::is_ascii_alphabetic).count();
        for mask in 0..1u32 << letters {
            let mut bit = 0;
            let spelled: String = piece
                .chars()
                .map(|c| {
                    if !c.is_ascii_alphabetic() {
                        return c;
                    }
                    bit += 1;
                    if mask & (1 << (bit - 1)) == 0 {
                        c
                    } else {
                        c.to_ascii_uppercase()
                    }
                })
                .collect();
            criteria.push(format!("name:contains={spelled}"));
        }
    }
    assert_eq!(criteria.len(), 83);
    format!("Patient?{}", criteria.join("&"))
}

/// Statements of this test's database still running a search.
async fn running_searches(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%hfj_spidx_string%'",
    )
    .fetch_one(&app.database)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_search_past_the_statement_timeout_is_503_and_stops_running() {
    let app = TestApp::spawn_with_query_args(&[("--search-statement-timeout-ms", "300")]).await;
    many_names(&app, 200_000).await;
    let started = Instant::now();
    let outcome = app.outcome(&slow_search(), 503).await;
    assert_eq!(outcome["issue"][0]["code"], "timeout", "{outcome}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The statement ended with the timeout (parallel workers may take a moment to exit).
    test_support::eventually(
        "the timed-out search to stop",
        Duration::from_millis(500),
        || async { (running_searches(&app).await == 0).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_search_whose_client_leaves_is_cancelled() {
    let app = TestApp::spawn_with_query_args(&[("--search-statement-timeout-ms", "120000")]).await;
    many_names(&app, 200_000).await;
    let impatient = test_support::bearer_client(&app.token, Duration::from_millis(500));
    let left = impatient
        .get(format!("{}/{}", app.reads, slow_search()))
        .send()
        .await;
    assert!(
        left.is_err_and(|error| error.is_timeout()),
        "the search answered in 500 ms"
    );
    // Without the cancel it runs on for the 120 s timeout.
    test_support::eventually(
        "the abandoned search to stop",
        Duration::from_secs(5),
        || async { (running_searches(&app).await == 0).then_some(()) },
    )
    .await;
}

/// Three patients, and the `next` link of a search that pages through them one at a time,
/// asked as the client at `address`.
async fn paged(app: &TestApp, address: &str) -> String {
    let response = app
        .client
        .get(format!("{}/Patient?_count=1&_sort=_id", app.reads))
        .header("x-event-position", app.position())
        .header("x-forwarded-for", address)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bundle: serde_json::Value = response.json().await.unwrap();
    link(&bundle, "next").expect("a next link")
}

async fn three_patients(app: &TestApp) {
    app.put_all(
        &["a", "b", "c"].map(|id| json!({"resourceType": "Patient", "id": id, "gender": "other"})),
    )
    .await;
}

async fn page_status(app: &TestApp, url: &str) -> (u16, serde_json::Value) {
    let response = app.client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_page_link_from_before_a_projection_rebuild_is_410() {
    let app = TestApp::spawn().await;
    three_patients(&app).await;
    let next = paged(&app, "203.0.113.1").await;
    let (status, page) = page_status(&app, &next).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(match_ids(&page), ["b"]);
    let settings = service_kit::config::load_from(
        ServiceArgs::new("projection-service", &app.database_url, 5)
            .arg("--fhir-base-url", BASE_URL)
            .into_args(),
    )
    .unwrap();
    projection_service::run_rebuild(&settings).await.unwrap();
    let (status, outcome) = page_status(&app, &next).await;
    assert_eq!(status, 410, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("rebuilt"),
        "{outcome}"
    );
    // A search after the rebuild pages as before.
    let next = paged(&app, "203.0.113.1").await;
    let (status, page) = page_status(&app, &next).await;
    assert_eq!((status, match_ids(&page)), (200, vec!["b".to_owned()]));
}

#[tokio::test]
async fn expired_result_lists_are_deleted_on_schedule() {
    let app = TestApp::spawn_with_query_args(&[
        ("--search-result-ttl-secs", "1"),
        ("--search-result-cleanup-interval-secs", "1"),
    ])
    .await;
    three_patients(&app).await;
    let next = paged(&app, "203.0.113.2").await;
    let kept = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM search_result")
            .fetch_one(&app.database)
            .await
            .unwrap()
    };
    assert_eq!(kept().await, 1);
    test_support::eventually(
        "the expired list to be deleted",
        Duration::from_secs(5),
        || async { (kept().await == 0).then_some(()) },
    )
    .await;
    assert_eq!(page_status(&app, &next).await.0, 410);
}

#[tokio::test]
async fn each_client_keeps_a_bounded_number_of_result_lists() {
    let app = TestApp::spawn_with_query_args(&[("--search-results-per-client", "2")]).await;
    three_patients(&app).await;
    let other = paged(&app, "198.51.100.9").await;
    let first = paged(&app, "203.0.113.3").await;
    let second = paged(&app, "203.0.113.3").await;
    let third = paged(&app, "203.0.113.3").await;
    // The client's oldest list made way for its newest; other clients' lists are untouched.
    assert_eq!(page_status(&app, &first).await.0, 410);
    for kept in [&second, &third, &other] {
        assert_eq!(page_status(&app, kept).await.0, 200, "{kept}");
    }
    let lists: i64 =
        sqlx::query_scalar("SELECT count(*) FROM search_result WHERE client = '203.0.113.3'")
            .fetch_one(&app.database)
            .await
            .unwrap();
    assert_eq!(lists, 2);
}
