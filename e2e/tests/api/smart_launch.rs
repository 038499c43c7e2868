//! SMART App Launch in a real browser, through the edge: a registered public app (its redirect
//! URI a small server of the test's own, which records what it receives) is launched
//!
//! - standalone: Chromium opens `/auth/authorize` with `launch/patient`, a demo nurse signs in,
//!   the consent page lists what the app asks for, she finds a patient with the picker (which
//!   searches the query service) and allows; the app's token names that patient, and reads of
//!   another patient are 404;
//! - from the EHR: the EHR (here the test, with the nurse's token) makes a launch for a patient
//!   with `POST /auth/launch`, Chromium goes through `/auth/authorize` with `launch=<id>`, and
//!   the app's token carries that patient.
//!
//! The test plays the app's back end: it checks the `state` and exchanges the code with its
//! PKCE verifier.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::Html;
use fantoccini::Client;
use reqwest::{Method, Url};
use serde_json::{Value, json};
use test_support::identity::{TokenResponse, pkce_challenge, random_token};

use crate::browser::{Browser, click, sign_in, type_into, wait_for};
use crate::helpers::{TestApp, patient};

/// What the test app may be granted.
const APP_SCOPES: &str = "launch launch/patient openid fhirUser patient/*.rs";

#[tokio::test]
async fn a_standalone_launch_picks_the_patient_and_the_token_sees_only_that_patient() {
    let app = TestApp::spawn().await;
    let (chosen, _) = app.create(&patient("Quintessa")).await;
    let (other, position) = app.create(&patient("Oberholzer")).await;
    let (chosen, other) = (id_of(&chosen), id_of(&other));
    // The picker searches the indexes.
    app.wait_for_projections(position).await;
    let smart_app = SmartApp::register(&app).await;

    let browser = Browser::start().await;
    let page = &browser.client;
    let launch = smart_app.authorize(&app, "launch/patient openid fhirUser patient/*.rs", None);
    page.goto(&launch.url).await.unwrap();
    sign_in(page, "nurse").await;

    let consent = page.source().await.unwrap();
    assert!(
        consent.contains("<strong>Test SMART app</strong> asks to:"),
        "{consent}"
    );
    for scope in [
        "Work with one patient, whom you choose now",
        "Read and search all records of the selected patient",
        "Confirm to the app who you are",
        "Tell the app which practitioner record is yours",
    ] {
        assert!(consent.contains(scope), "the consent page lists '{scope}'");
    }

    // The picker: a search by name, then the patient found.
    type_into(page, "#q", "Quintessa").await;
    click(page, r#"form[method="get"] button[type="submit"]"#).await;
    let choice = format!(r#"input[name="patient"][value="{chosen}"]"#);
    wait_for(page, &choice, Duration::from_secs(30)).await;
    assert!(
        !page.source().await.unwrap().contains(&other),
        "the search finds only the patient named"
    );
    click(page, &choice).await;
    click(page, r#"button[name="decision"][value="allow"]"#).await;

    let tokens = smart_app.receive_and_exchange(&app, page, &launch).await;
    assert_eq!(tokens.patient.as_deref(), Some(chosen.as_str()));
    assert_eq!(tokens.need_patient_banner, Some(true));
    let granted: Vec<&str> = tokens.scope.split(' ').collect();
    for scope in ["launch/patient", "openid", "fhirUser", "patient/*.rs"] {
        assert!(granted.contains(&scope), "{scope} in {granted:?}");
    }
    assert!(tokens.id_token.is_some(), "openid gives an ID token");

    let read = |id: String| {
        app.client
            .request(Method::GET, app.url(&format!("/fhir/Patient/{id}")))
            .bearer_auth(&tokens.access_token)
            .send()
    };
    assert_eq!(read(chosen.clone()).await.unwrap().status(), 200);
    assert_eq!(
        read(other.clone()).await.unwrap().status(),
        404,
        "another patient does not exist for this token"
    );
    browser.stop().await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_ehr_launch_binds_the_patient_the_ehr_has_open() {
    let app = TestApp::spawn().await;
    let (open, _) = app.create(&patient("Launched")).await;
    let (other, _) = app.create(&patient("Elsewhere")).await;
    let (open, other) = (id_of(&open), id_of(&other));
    let smart_app = SmartApp::register(&app).await;

    // The EHR, with the signed-in nurse's token, says which patient is open.
    let nurse = app
        .user_token("nurse", "openid fhirUser user/*.cruds", None)
        .await;
    let response = app
        .client
        .request(Method::POST, app.url("/auth/launch"))
        .bearer_auth(&nurse)
        .json(&json!({"patient": open}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let launch_id = response.json::<Value>().await.unwrap()["launch"]
        .as_str()
        .unwrap()
        .to_owned();

    let browser = Browser::start().await;
    let page = &browser.client;
    let launch = smart_app.authorize(
        &app,
        "launch openid fhirUser patient/*.rs",
        Some(&launch_id),
    );
    page.goto(&launch.url).await.unwrap();
    sign_in(page, "nurse").await;
    let consent = page.source().await.unwrap();
    assert!(
        consent.contains(&format!("Patient in context: <code>Patient/{open}</code>")),
        "{consent}"
    );
    assert!(consent.contains("Open with the patient the record has open"));
    assert!(
        !consent.contains("Choose a patient"),
        "no picker: the EHR chose"
    );
    click(page, r#"button[name="decision"][value="allow"]"#).await;

    let tokens = smart_app.receive_and_exchange(&app, page, &launch).await;
    assert_eq!(tokens.patient.as_deref(), Some(open.as_str()));
    assert_eq!(
        tokens.need_patient_banner,
        Some(false),
        "the EHR shows the patient"
    );
    let read = |id: String| {
        app.client
            .request(Method::GET, app.url(&format!("/fhir/Patient/{id}")))
            .bearer_auth(&tokens.access_token)
            .send()
    };
    assert_eq!(read(open.clone()).await.unwrap().status(), 200);
    assert_eq!(read(other.clone()).await.unwrap().status(), 404);
    browser.stop().await;
    app.cleanup().await;
}

/// The queries the app's redirect URI received, in order.
type Received = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// A public SMART app registered at the identity service, whose redirect URI is served by the
/// test: each request's query is recorded.
struct SmartApp {
    client_id: String,
    redirect_uri: String,
    received: Received,
}

/// An authorization request the app sent the browser to make.
struct Launch {
    url: String,
    state: String,
    verifier: String,
}

impl SmartApp {
    async fn register(app: &TestApp) -> SmartApp {
        let received = Arc::new(Mutex::new(Vec::new()));
        let router = axum::Router::new()
            .route("/callback", axum::routing::get(record))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let redirect_uri = format!("http://{}/callback", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let client_id = app.identity.public_client(&redirect_uri, APP_SCOPES).await;
        SmartApp {
            client_id,
            redirect_uri,
            received,
        }
    }

    /// The authorization request for `scope` (with an EHR's `launch`), for the FHIR base the
    /// edge serves.
    fn authorize(&self, app: &TestApp, scope: &str, launch: Option<&str>) -> Launch {
        let state = random_token();
        let verifier = random_token();
        let fhir_base = format!("{}/fhir", app.origin());
        let challenge = pkce_challenge(&verifier);
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("scope", scope),
            ("state", state.as_str()),
            ("aud", fhir_base.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        if let Some(launch) = launch {
            params.push(("launch", launch));
        }
        let url = Url::parse_with_params(&format!("{}/auth/authorize", app.origin()), &params)
            .unwrap()
            .to_string();
        Launch {
            url,
            state,
            verifier,
        }
    }

    /// Waits for the browser to arrive at the redirect URI, checks the `state`, and exchanges
    /// the code with the verifier: the token response.
    async fn receive_and_exchange(
        &self,
        app: &TestApp,
        page: &Client,
        launch: &Launch,
    ) -> TokenResponse {
        wait_for(page, "#received", Duration::from_secs(30)).await;
        let query = {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(query) = self.received.lock().unwrap().first().cloned() {
                    break query;
                }
                assert!(Instant::now() < deadline, "the app received nothing");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        assert_eq!(query.get("state"), Some(&launch.state), "{query:?}");
        let code = query
            .get("code")
            .unwrap_or_else(|| panic!("no code: {query:?}"));
        let response = reqwest::Client::new()
            .post(app.url("/auth/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("client_id", self.client_id.as_str()),
                ("code_verifier", launch.verifier.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "the token endpoint answered {body}");
        serde_json::from_str(&body).unwrap()
    }
}

/// The test app's redirect URI: remembers the query, shows a page.
async fn record(
    State(received): State<Received>,
    Query(query): Query<HashMap<String, String>>,
) -> Html<&'static str> {
    received.lock().unwrap().push(query);
    Html(
        "<!doctype html><title>Test SMART app</title>\
         <p id=\"received\">The app has the answer.</p>",
    )
}

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_owned()
}
