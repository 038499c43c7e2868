//! Read and vread: conditional requests, HEAD, format negotiation and `_pretty`.

use serde_json::{Value, json};

use crate::helpers::TestApp;

async fn app_with_patient() -> TestApp {
    let app = TestApp::spawn_with(false, 0).await;
    app.put(&json!({"resourceType": "Patient", "id": "r", "gender": "male"}))
        .await;
    app.put(&json!({"resourceType": "Patient", "id": "r", "gender": "female"}))
        .await;
    app
}

#[tokio::test]
async fn conditional_reads_answer_304_when_current() {
    let app = app_with_patient().await;
    let url = format!("{}/Patient/r", app.reads);
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let modified = response.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(etag, "W/\"2\"");

    let same = app
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 304);
    assert_eq!(same.headers()["etag"], etag.as_str());
    assert!(same.text().await.unwrap().is_empty());
    let older = app
        .client
        .get(&url)
        .header("if-none-match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(older.status(), 200);

    let since = app
        .client
        .get(&url)
        .header("if-modified-since", &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(since.status(), 304);
    let before = app
        .client
        .get(&url)
        .header("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(before.status(), 200);
}

#[tokio::test]
async fn head_gives_the_headers_without_a_body() {
    let app = app_with_patient().await;
    let response = app
        .client
        .head(format!("{}/Patient/r", app.reads))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    assert!(response.text().await.unwrap().is_empty());
    let missing = app
        .client
        .head(format!("{}/Patient/none", app.reads))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn only_json_is_served_and_pretty_indents() {
    let app = app_with_patient().await;
    for format in ["json", "application/fhir+json", "application/json"] {
        let response = app
            .client
            .get(format!("{}/Patient/r?_format={format}", app.reads))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{format}");
    }
    for format in ["xml", "application/fhir+xml", "ttl"] {
        let response = app
            .client
            .get(format!("{}/Patient/r?_format={format}", app.reads))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 406, "{format}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["resourceType"], "OperationOutcome");
    }
    let xml = app
        .client
        .get(format!("{}/Patient/r", app.reads))
        .header("accept", "application/fhir+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(xml.status(), 406);
    let any = app
        .client
        .get(format!("{}/Patient/r", app.reads))
        .header("accept", "application/fhir+xml;q=1, */*;q=0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(any.status(), 200);

    let compact = app
        .client
        .get(format!("{}/Patient/r", app.reads))
        .send()
        .await
        .unwrap();
    let compact = compact.text().await.unwrap();
    assert!(!compact.contains('\n'));
    let pretty = app
        .client
        .get(format!("{}/Patient/r?_pretty=true", app.reads))
        .send()
        .await
        .unwrap();
    let pretty = pretty.text().await.unwrap();
    assert!(
        pretty.contains("\n  \"resourceType\": \"Patient\""),
        "{pretty}"
    );
    let same: Value = serde_json::from_str(&pretty).unwrap();
    assert_eq!(same, serde_json::from_str::<Value>(&compact).unwrap());
}
