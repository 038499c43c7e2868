//! Headers a client can forge: `Host` never reaches a link in a response, and `X-Forwarded-For`
//! is believed only from a trusted proxy.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, patient};

const EVIL: &str = "evil.example";

/// Everything a client sees of a response: status line, headers and body, as text.
async fn seen(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let mut text = format!("{:?}\n", response.headers());
    text.push_str(&response.text().await.unwrap());
    (status, text)
}

#[tokio::test]
async fn a_forged_host_never_appears_in_a_response() {
    let app = TestApp::spawn().await;
    app.start_projection().await;

    let created = app
        .write_request(Method::POST, "Patient", Some(&patient("Host")))
        .header("host", EVIL)
        .send()
        .await
        .unwrap();
    let position = created.headers()["x-event-position"].clone();
    let (status, create_text) = seen(created).await;
    assert_eq!(status, 201, "{create_text}");
    assert!(
        create_text.contains("http://localhost:8080/fhir/Patient/"),
        "the default base in Location: {create_text}"
    );
    let id: String = create_text
        .split("/fhir/Patient/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();

    let transaction = app
        .write_request(
            Method::POST,
            "",
            Some(
                &json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"fullUrl": "urn:uuid:one", "resource": patient("Bundled"),
                     "request": {"method": "POST", "url": "Patient"}}
                ]}),
            ),
        )
        .header("host", EVIL)
        .send()
        .await
        .unwrap();
    let transaction_position = transaction.headers()["x-event-position"].clone();
    let read = app
        .client
        .get(format!("{}/Patient/{id}", app.reads))
        .header("host", EVIL)
        .send()
        .await
        .unwrap();
    let search = app
        .client
        .get(format!("{}/Patient?_count=1", app.reads))
        .header("host", format!("{EVIL}:443"))
        .header("x-event-position", transaction_position)
        .send()
        .await
        .unwrap();
    let history = app
        .client
        .get(format!("{}/Patient/{id}/_history", app.reads))
        .header("host", EVIL)
        .header("x-event-position", position)
        .send()
        .await
        .unwrap();
    for (what, response) in [
        ("transaction", transaction),
        ("read", read),
        ("search", search),
        ("history", history),
    ] {
        let (status, text) = seen(response).await;
        assert_eq!(status / 100, 2, "{what}: {text}");
        assert!(!text.contains(EVIL), "{what} shows the forged host: {text}");
    }
    assert!(!create_text.contains(EVIL), "{create_text}");

    // A search whose results and paging links are built: the default base, not the Host.
    let search: Value = app
        .client
        .get(format!("{}/Patient?_count=1", app.reads))
        .header("host", EVIL)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        search["entry"][0]["fullUrl"]
            .as_str()
            .unwrap()
            .starts_with("http://localhost:8080/fhir/Patient/"),
        "{search}"
    );
    assert!(
        search["link"]
            .as_array()
            .unwrap()
            .iter()
            .any(|link| link["relation"] == "next"),
        "{search}"
    );

    // An allowed host still names the server as the client reached it.
    let local = app
        .write_request(Method::POST, "Patient", Some(&patient("Local")))
        .header("host", "localhost:9999")
        .send()
        .await
        .unwrap();
    assert!(
        local.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("http://localhost:9999/fhir/Patient/")
    );
    app.cleanup().await;
}

/// The `forwardedFor` the latest event of `Patient/<id>` records.
async fn recorded_client(app: &TestApp, id: &str) -> Value {
    let event = app.store.latest("Patient", id).await.unwrap().unwrap();
    let metadata: Value = serde_json::from_str(&event.metadata).unwrap();
    assert!(
        metadata["sourceAddress"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{metadata}"
    );
    metadata["forwardedFor"].clone()
}

async fn create_forwarded(app: &TestApp, forwarded_for: &str) -> String {
    let response = app
        .write_request(Method::POST, "Patient", Some(&patient("Forwarded")))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn forwarded_for_is_recorded_only_from_a_trusted_proxy() {
    // Loopback is a trusted proxy by default: the right-most untrusted address is the client,
    // not the one the client prepended.
    let behind_proxy = TestApp::spawn().await;
    let id = create_forwarded(&behind_proxy, "6.6.6.6, 198.51.100.4").await;
    assert_eq!(recorded_client(&behind_proxy, &id).await, "198.51.100.4");
    behind_proxy.cleanup().await;

    // When this peer is not a trusted proxy, its claim is not recorded at all.
    let direct = TestApp::spawn_with_args(&["--trusted-proxies", "10.0.0.0/8"]).await;
    let id = create_forwarded(&direct, "6.6.6.6").await;
    assert_eq!(recorded_client(&direct, &id).await, Value::Null);
    direct.cleanup().await;
}
