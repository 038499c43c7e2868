//! The patient picker searches the FHIR server with a token the service issues itself.

use std::sync::{Arc, Mutex};

use axum::extract::RawQuery;
use axum::http::HeaderMap;
use serde_json::json;

use crate::flow::redirect_query;
use crate::helpers::{TestApp, claims, fake_server, json};

#[tokio::test]
async fn the_picker_searches_patients_by_name_and_the_choice_is_in_the_token() {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let recorded = seen.clone();
    let fhir = fake_server(axum::Router::new().route(
        "/fhir/Patient",
        axum::routing::get(move |headers: HeaderMap, RawQuery(query): RawQuery| {
            let recorded = recorded.clone();
            async move {
                let authorization = headers["authorization"].to_str().unwrap().to_owned();
                recorded
                    .lock()
                    .unwrap()
                    .push((query.unwrap_or_default(), authorization));
                axum::Json(
                    json!({"resourceType": "Bundle", "type": "searchset", "entry": [
                        {"resource": {"resourceType": "Patient", "id": "p-smith-1",
                         "birthDate": "1970-02-03",
                         "name": [{"use": "official", "family": "Smith", "given": ["Ann"]}]}},
                        {"resource": {"resourceType": "Patient", "id": "p-smith-2",
                         "name": [{"text": "Bob <Smith>"}]}}
                    ]}),
                )
            }
        }),
    ))
    .await;
    let base = format!("{fhir}/fhir");
    let app = TestApp::spawn_with(&[("--internal-fhir-base", &base)]).await;
    let flow = app.start("openid launch/patient patient/*.rs", &[]).await;
    app.sign_in_to_consent(&flow, "physician").await;
    let page = flow
        .browser
        .get(app.url(&format!("/auth/consent?request={}&q=smi", flow.request)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Ann Smith") && page.contains("1970-02-03"),
        "{page}"
    );
    assert!(page.contains("value=\"p-smith-1\""));
    assert!(page.contains("Bob &lt;Smith&gt;"), "names are escaped");

    let (query, authorization) = seen.lock().unwrap()[0].clone();
    assert!(query.contains("name=smi"), "{query}");
    let token = authorization.strip_prefix("Bearer ").unwrap();
    let own = claims(token);
    assert_eq!(own.scope, "system/Patient.rs");
    assert_eq!(own.client_id, "identity-service");
    assert_eq!(own.iss, app.identity.issuer());
    assert_eq!(app.introspect(token).await["active"], true);

    let csrf = flow.csrf.clone();
    let allowed = app
        .consent(
            &flow,
            &csrf,
            &[("decision", "allow"), ("patient", "p-smith-1")],
        )
        .await;
    let code = redirect_query(&allowed)["code"].clone();
    let tokens = json(app.exchange(&code, &flow.verifier).await, 200).await;
    assert_eq!(tokens["patient"], "p-smith-1");
}
