//! A handler that panics answers 500 with an OperationOutcome that reveals nothing, the panic is
//! logged with the request id, and the service keeps serving.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use serde_json::Value;

/// Log lines, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

async fn panics() -> &'static str {
    let secret = "connection string postgres://u:hunter2@db";
    panic!("handler bug near {secret}");
}

// The runtime's one thread runs the server and the test, so the subscriber set here sees the
// server's log lines.
#[tokio::test(flavor = "current_thread")]
async fn a_panicking_handler_answers_500_with_an_outcome_and_is_logged_with_its_request_id() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let router =
        Router::new().route("/boom", get(panics)).route(
            "/peer",
            get(
                |ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>| async move {
                    peer.ip().to_string()
                },
            ),
        );
    let port = super::spawn(router, 10_000).await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!("http://127.0.0.1:{port}/boom"))
        .header("x-request-id", "req-panic-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["x-request-id"], "req-panic-1");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+json")
    );
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(body["issue"][0]["code"], "exception");
    assert!(
        !text.contains("hunter2") && !text.contains("handler bug"),
        "internals leaked: {text}"
    );

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|line| line.contains("handler bug"))
        .unwrap_or_else(|| panic!("the panic was not logged: {log}"));
    assert!(line.contains("req-panic-1"), "no request id: {line}");
    assert!(line.contains("ERROR"), "{line}");

    // The service still serves, and handlers still see the peer's address.
    let peer = client
        .get(format!("http://127.0.0.1:{port}/peer"))
        .send()
        .await
        .unwrap();
    assert_eq!(peer.status(), 200);
    assert_eq!(peer.text().await.unwrap(), "127.0.0.1");
}
