//! `_history` at instance, type and system level: order, entries, paging, `_since` and `_at`.

use serde_json::{Value, json};

use crate::helpers::{TestApp, link};

async fn history(app: &TestApp, path_and_query: &str) -> Value {
    let response = app.get(path_and_query).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{path_and_query}: {body}");
    assert_eq!(body["type"], "history");
    body
}

fn versions(bundle: &Value) -> Vec<(String, String)> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["request"]["method"].as_str().unwrap().to_owned(),
                entry["response"]["etag"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn instance_history_lists_every_version_newest_first() {
    let app = TestApp::spawn_with(false, 0).await;
    for family in ["A", "B", "C"] {
        app.put(&json!({"resourceType": "Patient", "id": "h", "name": [{"family": family}]}))
            .await;
    }
    app.delete("Patient/h").await;
    let bundle = history(&app, "Patient/h/_history").await;
    assert_eq!(bundle["total"], 4);
    assert_eq!(
        versions(&bundle),
        vec![
            ("DELETE".into(), "W/\"4\"".into()),
            ("PUT".into(), "W/\"3\"".into()),
            ("PUT".into(), "W/\"2\"".into()),
            // A first version is a creation, whichever verb made it.
            ("POST".into(), "W/\"1\"".into()),
        ]
    );
    let entries = bundle["entry"].as_array().unwrap();
    assert!(
        entries[0].get("resource").is_none(),
        "a delete has no resource"
    );
    assert_eq!(entries[1]["resource"]["name"][0]["family"], "C");
    assert!(
        entries[3]["fullUrl"]
            .as_str()
            .unwrap()
            .ends_with("/fhir/Patient/h")
    );

    // Two per page: the pages together are the whole history, each version once.
    let first = history(&app, "Patient/h/_history?_count=2").await;
    let next = link(&first, "next").expect("a next link");
    let second: Value = app
        .client
        .get(&next)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut all = versions(&first);
    all.extend(versions(&second));
    assert_eq!(all, versions(&bundle));
    assert!(link(&second, "next").is_none());
}

#[tokio::test]
async fn type_and_system_history_and_since() {
    let app = TestApp::spawn_with(false, 0).await;
    app.put(&json!({"resourceType": "Patient", "id": "p1"}))
        .await;
    app.put(&json!({"resourceType": "Practitioner", "id": "d1"}))
        .await;
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    app.put(&json!({"resourceType": "Patient", "id": "p2"}))
        .await;

    let patients = history(&app, "Patient/_history").await;
    let ids: Vec<&str> = patients["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["p2", "p1"]);
    let all = history(&app, "_history").await;
    assert_eq!(all["entry"].as_array().unwrap().len(), 3);
    let since = between.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let recent = history(
        &app,
        &format!("_history?_since={}", since.replace('+', "%2B")),
    )
    .await;
    assert_eq!(recent["entry"].as_array().unwrap().len(), 1);
    assert_eq!(recent["entry"][0]["resource"]["id"], "p2");
}

#[tokio::test]
async fn at_gives_the_versions_current_then() {
    let app = TestApp::spawn_with(false, 0).await;
    app.put(&json!({"resourceType": "Patient", "id": "t", "gender": "male"}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let middle = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    app.put(&json!({"resourceType": "Patient", "id": "t", "gender": "female"}))
        .await;
    let at = middle.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let bundle = history(&app, &format!("Patient/t/_history?_at={at}")).await;
    assert_eq!(
        versions(&bundle),
        vec![("POST".to_owned(), "W/\"1\"".to_owned())]
    );
}

#[tokio::test]
async fn history_errors() {
    let app = TestApp::spawn_with(false, 0).await;
    assert_eq!(app.get("Patient/nobody/_history").await.status(), 404);
    app.put(&json!({"resourceType": "Patient", "id": "e"}))
        .await;
    for bad in [
        "Patient/e/_history?_since=yesterday",
        "Patient/e/_history?_count=x",
        "Patient/e/_history?_summary=maybe",
    ] {
        app.outcome(bad, 400).await;
    }
    // Unknown parameters are ignored, as in search, unless the client asks for strictness.
    assert_eq!(app.get("_history?name=x").await.status(), 200);
    let response = app
        .client
        .get(format!("{}/_history?name=x", app.reads))
        .header("prefer", "handling=strict")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body.to_string().contains("`name`"), "{body}");
    assert_eq!(app.get("Nonsense/_history").await.status(), 404);
}

#[tokio::test]
async fn summary_and_elements_trim_each_version_and_count_counts() {
    let app = TestApp::spawn_with(false, 0).await;
    let mut patient = json!({"resourceType": "Patient", "id": "trim", "gender": "female",
        "birthDate": "1970-01-01", "name": [{"family": "Trim"}]});
    app.put(&patient).await;
    patient["gender"] = json!("other");
    app.put(&patient).await;

    let bundle = history(&app, "Patient/trim/_history?_elements=gender&_count=1").await;
    let resource = &bundle["entry"][0]["resource"];
    assert_eq!(resource["gender"], "other");
    assert!(
        resource.get("name").is_none() && resource.get("birthDate").is_none(),
        "{resource}"
    );
    assert_eq!(resource["meta"]["tag"][0]["code"], "SUBSETTED");
    let next = link(&bundle, "next").unwrap();
    assert!(next.contains("_elements=gender"), "{next}");
    let page_two = app
        .client
        .get(next)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(page_two["entry"][0]["resource"]["gender"], "female");
    assert!(page_two["entry"][0]["resource"].get("name").is_none());

    let summary = history(&app, "Patient/trim/_history?_summary=true").await;
    let resource = &summary["entry"][0]["resource"];
    assert!(resource.get("name").is_some() && resource.get("gender").is_some());

    for (path, total) in [
        ("Patient/trim/_history?_summary=count", 2),
        ("Patient/_history?_summary=count", 2),
        ("_history?_summary=count", 2),
        ("Observation/_history?_summary=count", 0),
    ] {
        let bundle = history(&app, path).await;
        assert_eq!(bundle["total"], total, "{path}");
        assert!(bundle.get("entry").is_none(), "{path}");
    }
}
