//! What the edge adds to responses: security headers on every one (pages, FHIR, errors),
//! content types and caching for the web app, gzip.

use std::io::Read;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{INDEX_HTML, TestApp, WASM_MODULE, assert_security_headers, header};

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for path in [
        "/",
        "/index.html",
        "/wardline_bg.wasm",
        "/health",
        "/fhir/metadata",
        // Errors: a static file that is not there, and the query service's 404.
        "/missing.js",
        "/fhir/Patient/no-such-patient",
    ] {
        let response = app.get(path).await;
        assert_security_headers(&response);
    }
    let write = app
        .request(Method::DELETE, "/fhir/Patient")
        .send()
        .await
        .unwrap();
    assert!(write.status().is_client_error(), "{}", write.status());
    assert_security_headers(&write);
    app.cleanup().await;
}

#[tokio::test]
async fn the_web_app_is_served_with_its_types_and_the_page_is_always_revalidated() {
    let app = TestApp::spawn().await;

    let page = app.get("/").await;
    assert_eq!(page.status(), 200);
    assert!(
        header(&page, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(header(&page, "cache-control"), Some("no-cache"));
    assert_eq!(page.text().await.unwrap(), INDEX_HTML);

    // Browsers compile WebAssembly while it downloads only when it is served as such.
    let wasm = app.get("/wardline_bg.wasm").await;
    assert_eq!(wasm.status(), 200);
    assert_eq!(header(&wasm, "content-type"), Some("application/wasm"));
    assert_eq!(wasm.bytes().await.unwrap().as_ref(), WASM_MODULE);

    // A route of the single-page app is the page; a missing file is a 404, not the page.
    let route = app.get("/wards/ward-a").await;
    assert_eq!(route.status(), 200);
    assert_eq!(route.text().await.unwrap(), INDEX_HTML);
    assert_eq!(app.get("/missing.js").await.status(), 404);
    app.cleanup().await;
}

#[tokio::test]
async fn large_json_is_gzipped_for_clients_that_accept_it() {
    let app = TestApp::spawn().await;

    let plain = app.get("/fhir/metadata").await;
    assert_eq!(plain.status(), 200);
    assert_eq!(header(&plain, "content-encoding"), None);
    let plain_body = plain.bytes().await.unwrap();
    assert!(plain_body.len() > 10_000, "{} bytes", plain_body.len());

    let gzipped = app
        .request(Method::GET, "/fhir/metadata")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.status(), 200);
    assert_eq!(header(&gzipped, "content-encoding"), Some("gzip"));
    assert!(
        header(&gzipped, "content-type")
            .unwrap()
            .starts_with("application/fhir+json")
    );
    let compressed = gzipped.bytes().await.unwrap();
    assert!(compressed.len() * 3 < plain_body.len(), "hardly compressed");
    let mut text = String::new();
    flate2::read::GzDecoder::new(compressed.as_ref())
        .read_to_string(&mut text)
        .unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["resourceType"], "CapabilityStatement");
    app.cleanup().await;
}
