//! Which service answers what. Each service answers the other's interactions with 405 (the
//! command service refuses reads, the query service writes), so a success through the edge
//! shows which one the edge reached.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, header, patient, position};

#[tokio::test]
async fn a_create_goes_to_the_command_service_and_its_read_to_the_query_service() {
    let app = TestApp::spawn().await;

    let response = app
        .send_fhir(Method::POST, "/fhir/Patient", &patient("Routed"))
        .await;
    assert_eq!(response.status(), 201);
    // The command service builds the Location from the Host the edge passed on.
    let location = header(&response, "location").unwrap().to_owned();
    let prefix = format!("{}/fhir/Patient/", app.edge.base());
    assert!(location.starts_with(&prefix), "{location}");
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(location.contains(id), "{location}");

    let read = app.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(read.status(), 200);
    assert_eq!(header(&read, "etag"), Some("W/\"1\""));
    let body: Value = read.json().await.unwrap();
    assert_eq!(body["id"], id);
    assert_eq!(body["name"][0]["family"], "Routed");

    let head = app
        .request(Method::HEAD, &format!("/fhir/Patient/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "etag"), Some("W/\"1\""));
    app.cleanup().await;
}

#[tokio::test]
async fn searches_by_get_and_by_post_go_to_the_query_service_with_their_parameters() {
    let app = TestApp::spawn().await;
    let (created, position) = app.create(&patient("Searched")).await;
    let id = created["id"].as_str().unwrap();
    app.create(&patient("Other")).await;

    // The query string arrives unchanged: the search finds the one patient, and the Bundle's
    // self link (built from the forwarded Host) names the edge and the parameters.
    let response = app
        .request(Method::GET, &format!("/fhir/Patient?_id={id}&_count=5"))
        .header("x-event-position", position.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bundle: Value = response.json().await.unwrap();
    assert_eq!(match_ids(&bundle), [id]);
    let self_link = bundle["link"][0]["url"].as_str().unwrap();
    assert!(
        self_link.starts_with(&format!("{}/fhir/Patient?", app.edge.base())),
        "{self_link}"
    );
    assert!(self_link.contains(&format!("_id={id}")), "{self_link}");

    // POST /fhir/Patient/_search is a read: the command service would answer 405.
    let response = app
        .request(Method::POST, "/fhir/Patient/_search")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-event-position", position.to_string())
        .body("family=searched")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bundle: Value = response.json().await.unwrap();
    assert_eq!(bundle["type"], "searchset");
    assert_eq!(match_ids(&bundle), [id]);
    app.cleanup().await;
}

#[tokio::test]
async fn updates_patches_and_deletes_go_to_the_command_service() {
    let app = TestApp::spawn().await;
    let (mut resource, _) = app.create(&patient("Before")).await;
    let id = resource["id"].as_str().unwrap().to_owned();
    let path = format!("/fhir/Patient/{id}");

    resource["name"][0]["family"] = json!("After");
    let response = app.send_fhir(Method::PUT, &path, &resource).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "etag"), Some("W/\"2\""));

    let response = app
        .request(Method::PATCH, &path)
        .header("content-type", "application/json-patch+json")
        .body(r#"[{"op":"replace","path":"/gender","value":"other"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "etag"), Some("W/\"3\""));

    let read: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(read["name"][0]["family"], "After");
    assert_eq!(read["gender"], "other");

    let response = app.request(Method::DELETE, &path).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(app.get(&path).await.status(), 410);
    app.cleanup().await;
}

#[tokio::test]
async fn a_transaction_bundle_posted_to_the_base_goes_to_the_command_service() {
    let app = TestApp::spawn().await;
    // The query service would take a POST to the base for a search and answer a searchset.
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "fullUrl": "urn:uuid:0b5bd7f8-4a38-4c39-9c3c-0d3b1c6f4e11",
            "resource": patient("Bundled"),
            "request": {"method": "POST", "url": "Patient"}
        }]
    });
    let response = app.send_fhir(Method::POST, "/fhir", &bundle).await;
    assert_eq!(response.status(), 200);
    let position = position(&response);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["type"], "transaction-response", "{answer}");
    assert_eq!(answer["entry"][0]["response"]["status"], "201 Created");
    assert!(position > 0);
    assert_eq!(app.event_count().await, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn the_capability_statement_comes_from_the_query_service() {
    let app = TestApp::spawn().await;
    let response = app.get("/fhir/metadata").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["resourceType"], "CapabilityStatement");
    app.cleanup().await;
}

#[tokio::test]
async fn the_edge_answers_its_own_health_check() {
    let app = TestApp::spawn().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "pass");
    assert_eq!(body["service"], "edge");
    app.cleanup().await;
}

fn match_ids(bundle: &Value) -> Vec<&str> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|entry| entry["search"]["mode"] == "match")
                .filter_map(|entry| entry["resource"]["id"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// The record at a past position through the edge: reads and searches by GET and by POST reach
/// the query service, which answers what was true then; every write there is the query
/// service's 405, not the command service's (which would take `_asof` for a resource type).
#[tokio::test]
async fn the_past_is_read_through_the_edge_and_refuses_writes() {
    let app = TestApp::spawn().await;
    let (created, first) = app.create(&patient("Before")).await;
    let id = created["id"].as_str().unwrap();
    let mut changed = created.clone();
    changed["name"][0]["family"] = json!("After");
    let response = app
        .send_fhir(Method::PUT, &format!("/fhir/Patient/{id}"), &changed)
        .await;
    assert_eq!(response.status(), 200);
    let second = position(&response);
    app.wait_for_projections(second).await;

    let read = app.get(&format!("/fhir/_asof/{first}/Patient/{id}")).await;
    assert_eq!(read.status(), 200);
    assert_eq!(header(&read, "etag"), Some("W/\"1\""));
    let body: Value = read.json().await.unwrap();
    assert_eq!(body["name"][0]["family"], "Before");

    let search = app
        .get(&format!("/fhir/_asof/{first}/Patient?family=before"))
        .await;
    assert_eq!(search.status(), 200);
    let bundle: Value = search.json().await.unwrap();
    assert_eq!(match_ids(&bundle), [id]);
    let full_url = bundle["entry"][0]["fullUrl"].as_str().unwrap();
    assert_eq!(
        full_url,
        format!("{}/fhir/_asof/{first}/Patient/{id}", app.edge.base())
    );

    let posted = app
        .request(
            Method::POST,
            &format!("/fhir/_asof/{first}/Patient/_search"),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("family=after")
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let bundle: Value = posted.json().await.unwrap();
    assert!(match_ids(&bundle).is_empty(), "{bundle}");

    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let path = if method == Method::POST {
            format!("/fhir/_asof/{first}/Patient")
        } else {
            format!("/fhir/_asof/{first}/Patient/{id}")
        };
        let response = app.send_fhir(method.clone(), &path, &changed).await;
        let outcome = crate::helpers::assert_outcome(response, 405, "not-supported").await;
        let text = outcome.to_string();
        assert!(text.contains("read-only"), "{method}: {text}");
    }
    // Nothing was written by the refused writes.
    let now = app.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(header(&now, "etag"), Some("W/\"2\""));
    app.cleanup().await;
}
