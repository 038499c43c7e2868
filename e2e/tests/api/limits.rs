//! What the edge refuses or cannot do itself: bodies over the limit, too many requests from one
//! address, services that do not answer. For /fhir each is a FHIR OperationOutcome.

use reqwest::{Client, Method};

use crate::edge::{Edge, Upstreams};
use crate::helpers::{TestApp, assert_outcome, assert_security_headers, patient};

#[tokio::test]
async fn a_body_over_the_limit_is_refused_by_the_edge_and_writes_nothing() {
    let app = TestApp::spawn().await;
    // A valid Patient padded past the default 16 MiB with a long text.
    let mut resource = patient("Huge");
    resource["text"] = serde_json::json!({
        "status": "generated",
        "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>", "x".repeat(17 << 20)),
    });
    let response = app
        .send_fhir(Method::POST, "/fhir/Patient", &resource)
        .await;
    assert_security_headers(&response);
    let outcome = assert_outcome(response, 413, "too-long").await;
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("edge"),
        "{outcome}"
    );
    assert_eq!(app.event_count().await, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn fhir_requests_to_a_service_that_does_not_answer_get_an_operation_outcome() {
    let web_root = tempfile::tempdir().unwrap();
    let edge = Edge::start(&Upstreams::nowhere(), web_root.path(), &[]);
    let response = Client::new()
        .get(format!("{}/fhir/Patient/1", edge.base()))
        .send()
        .await
        .unwrap();
    assert_security_headers(&response);
    assert_outcome(response, 502, "transient").await;
}

#[tokio::test]
async fn one_address_is_throttled_past_its_rate_and_burst() {
    let web_root = tempfile::tempdir().unwrap();
    let upstreams = Upstreams::nowhere();
    let client = Client::new();

    // One request a second and two more at once: the first three reach the (absent) service.
    let limited = Edge::start(
        &upstreams,
        web_root.path(),
        &[
            "--rate-limit",
            "1",
            "--rate-limit-burst",
            "2",
            "--rate-limit-exempt",
            "",
        ],
    );
    let url = format!("{}/fhir/metadata", limited.base());
    let seen = statuses(&client, &url, 10).await;
    assert_eq!(seen[..3], [502, 502, 502], "{seen:?}");
    assert!(seen[3..].iter().all(|status| *status == 429), "{seen:?}");
    let throttled = client.get(&url).send().await.unwrap();
    assert_security_headers(&throttled);
    assert_outcome(throttled, 429, "throttled").await;

    // By default this machine is exempt: tests, benchmarks and imports run from here.
    let exempt = Edge::start(
        &upstreams,
        web_root.path(),
        &["--rate-limit", "1", "--rate-limit-burst", "1"],
    );
    let url = format!("{}/fhir/metadata", exempt.base());
    let seen = statuses(&client, &url, 10).await;
    assert!(seen.iter().all(|status| *status == 502), "{seen:?}");
}

/// The statuses of `count` GETs of `url`, one after the other.
async fn statuses(client: &Client, url: &str, count: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(count);
    for _ in 0..count {
        statuses.push(client.get(url).send().await.unwrap().status().as_u16());
    }
    statuses
}
