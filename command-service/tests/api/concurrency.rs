//! Concurrent writers of one resource.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_outcome, patient};

/// A task that PUTs Patient/`id` with family name `Writer<n>`, with `If-Match` if given.
fn renaming_writer(
    app: &TestApp,
    id: &str,
    n: usize,
    if_match: Option<&'static str>,
) -> tokio::task::JoinHandle<reqwest::Response> {
    let mut body = patient(&format!("Writer{n}"));
    body["id"] = json!(id);
    let mut request = app
        .client
        .put(format!("{}/Patient/{id}", app.writes))
        .header("content-type", "application/fhir+json")
        .body(body.to_string());
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    tokio::spawn(async move { request.send().await.unwrap() })
}

/// 50 clients send `If-Match` for the same version at once: exactly one wins.
#[tokio::test]
async fn of_fifty_conditional_updates_of_one_version_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Start")).await;
    let attempts = (0..50).map(|n| renaming_writer(&app, &id, n, Some("W/\"1\"")));
    let mut winners = 0;
    let mut conflicts = 0;
    for response in futures::future::join_all(attempts).await {
        let response = response.unwrap();
        match response.status().as_u16() {
            200 => winners += 1,
            412 => {
                assert_outcome(response, 412).await;
                conflicts += 1;
            }
            other => panic!(
                "unexpected status {other}: {}",
                response.text().await.unwrap()
            ),
        }
    }
    assert_eq!((winners, conflicts), (1, 49));
    assert_eq!(app.store.stream("Patient", &id).await.unwrap().len(), 2);
    app.cleanup().await;
}

/// 50 clients each add their own identifier, re-reading and retrying on 412, as a careful
/// client does: every version has exactly one writer and no update is lost.
#[tokio::test]
async fn conditional_updates_that_retry_on_412_lose_nothing() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Start")).await;
    let writers = (0..50).map(|n| {
        let client = app.client.clone();
        let writes = app.writes.clone();
        let reads = app.reads.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let mut lost_races = 0;
            loop {
                let current: Value = client
                    .get(format!("{reads}/Patient/{id}"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let version = current["meta"]["versionId"].as_str().unwrap().to_owned();
                let mut next = current.clone();
                let identifiers = next
                    .as_object_mut()
                    .unwrap()
                    .entry("identifier")
                    .or_insert_with(|| json!([]));
                identifiers
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"system": "urn:writer", "value": format!("w{n}")}));
                let response = client
                    .put(format!("{writes}/Patient/{id}"))
                    .header("content-type", "application/fhir+json")
                    .header("if-match", format!("W/\"{version}\""))
                    .body(next.to_string())
                    .send()
                    .await
                    .unwrap();
                match response.status().as_u16() {
                    200 => return lost_races,
                    412 => lost_races += 1,
                    other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
                }
            }
        })
    });
    let lost_races: i32 = futures::future::join_all(writers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    assert!(lost_races > 0, "the writers really did race");

    let current: Value = app.read_json(&format!("Patient/{id}")).await;
    assert_eq!(current["meta"]["versionId"], "51");
    let values: BTreeSet<&str> = current["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|identifier| identifier["value"].as_str().unwrap())
        .collect();
    assert_eq!(values.len(), 50, "every writer's identifier is there");
    let versions: Vec<i32> = app
        .store
        .stream("Patient", &id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, (1..=51).collect::<Vec<_>>());
    assert_eq!(app.store.verify_stream("Patient", &id).await.unwrap(), None);
    app.cleanup().await;
}

/// Updates without `If-Match` from many clients at once all land, one version each.
#[tokio::test]
async fn unconditional_concurrent_updates_all_land() {
    let app = TestApp::spawn().await;
    let id = app.create_ok(&patient("Start")).await;
    let writers = (0..20).map(|n| renaming_writer(&app, &id, n, None));
    let statuses: Vec<u16> = futures::future::join_all(writers)
        .await
        .into_iter()
        .map(|response| response.unwrap().status().as_u16())
        .collect();
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    assert_eq!(app.store.stream("Patient", &id).await.unwrap().len(), 21);
    app.cleanup().await;
}
