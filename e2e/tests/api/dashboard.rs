//! The ward dashboard in a real browser: headless Chromium, driven over WebDriver
//! (chromedriver), loads the Yew app through the edge, is sent to the identity service's
//! sign-in page, where a demo nurse types her name and password and allows the app, and comes
//! back signed in, showing who is; it shows a ward's patient, and when a deteriorating set of
//! vital signs is written through the FHIR API, shows the new values and the NEWS2 alert within
//! two seconds, live over the notifier. A reload resumes the session from the refresh cookie
//! without the sign-in page; signing out ends it. The page's screenshot is kept in
//! `target/test-artifacts/`.

use std::time::{Duration, Instant};

use chrono::Utc;
use fantoccini::Locator;
use reqwest::Method;
use serde_json::{Value, json};
use wardline::generate::{Vitals, facility, vital_signs};

use crate::browser::{
    Browser, attribute, click, save_screenshot, sign_in_and_allow, text, wait_for, wait_for_all,
};
use crate::helpers::{TestApp, WebRoot};

/// How long the page may take to show a change written through the API (the issue's bound).
const LIVE_BOUND: Duration = Duration::from_secs(2);

const STABLE: Vitals = Vitals {
    respiratory_rate: 16.0,
    heart_rate: 72.0,
    saturation: 97.0,
    systolic: 124.0,
    diastolic: 78.0,
    temperature: 36.8,
    on_oxygen: false,
    confused: false,
};

/// Fast breathing and pulse, low pressure and saturation, on oxygen, newly confused.
const DETERIORATING: Vitals = Vitals {
    respiratory_rate: 28.0,
    heart_rate: 135.0,
    saturation: 90.0,
    systolic: 88.0,
    diastolic: 50.0,
    temperature: 39.4,
    on_oxygen: true,
    confused: true,
};

#[tokio::test]
async fn the_ward_dashboard_shows_deterioration_and_the_news2_alert_live() {
    let app = TestApp::spawn_serving(WebRoot::App, &[]).await;
    let (patient, stay) = admit(&app).await;
    record(&app, None, &patient, &stay, &STABLE).await;

    let browser = Browser::start().await;
    let page = &browser.client;
    let ward_page = format!("{}/#/ward/ward-a", app.origin());
    page.goto(&ward_page).await.unwrap();
    // Nobody is signed in: the app sends the browser to the sign-in page.
    sign_in_and_allow(page, "nurse").await;
    let nurse = r#"#signed-in-user[data-user="nurse"][data-role="nurse"]"#;
    wait_for(page, nurse, Duration::from_secs(60)).await;
    let shown = text(page, "#signed-in-user").await;
    assert!(
        shown.contains("Demo Nurse") && shown.contains("nurse"),
        "the top bar names the user and the role: {shown}"
    );
    assert_eq!(
        page.current_url().await.unwrap().as_str(),
        ward_page,
        "back on the page the sign-in started from, the code gone from the address"
    );
    assert_no_token_in_storage(page).await;

    let bed = format!(r#"article[data-bed="ward-a-bed-1"][data-patient="{patient}"]"#);
    wait_for(
        page,
        r#"#connection[data-state="live"]"#,
        Duration::from_secs(60),
    )
    .await;
    wait_for(
        page,
        &format!(r#"{bed} [data-vital="respiratory-rate"][data-value="16"]"#),
        Duration::from_secs(60),
    )
    .await;
    let score = attribute(page, &format!("{bed} .news2-total"), "data-score").await;
    assert_eq!(score.as_deref(), Some("0"), "stable vital signs score 0");
    assert!(
        page.find(Locator::Css(&format!("{bed} .news2-alert")))
            .await
            .is_err(),
        "no alert while stable"
    );

    let written = record(&app, None, &patient, &stay, &DETERIORATING).await;
    let alert = format!("{bed} .news2-alert");
    let rate = format!(r#"{bed} [data-vital="respiratory-rate"][data-value="28"]"#);
    let pulse = format!(r#"{bed} [data-vital="pulse"][data-value="135"]"#);
    let shown = wait_for_all(
        page,
        &[&alert, &rate, &pulse],
        LIVE_BOUND + Duration::from_secs(30),
    )
    .await;
    let screenshot = save_screenshot(page, "ward-dashboard-news2-alert.png").await;
    let took = shown.duration_since(written);
    eprintln!("write acknowledged to alert shown: {took:?}");
    assert!(
        took <= LIVE_BOUND,
        "the page showed the alert {took:?} after the write; screenshot {}",
        screenshot.display()
    );

    let score: i64 = attribute(page, &format!("{bed} .news2-total"), "data-score")
        .await
        .unwrap()
        .parse()
        .unwrap();
    // news2::score of these observations: 3 + 3 + 2 + 3 + 3 + 3 + 2.
    assert_eq!(score, 19);
    let total = page
        .find(Locator::Css(&format!("{bed} .news2-total")))
        .await
        .unwrap();
    assert!(
        total
            .attr("class")
            .await
            .unwrap()
            .unwrap_or_default()
            .contains("risk-high")
    );

    // The refresh token is a cookie scripts cannot read (it is sent to /auth only, so the
    // browser shows it there).
    page.goto(&format!("{}/auth/assets/style.css", app.origin()))
        .await
        .unwrap();
    let cookies = page.get_all_cookies().await.unwrap();
    let refresh = cookies
        .iter()
        .find(|cookie| cookie.name() == "wl_refresh")
        .unwrap_or_else(|| panic!("no refresh cookie among {cookies:?}"));
    assert_eq!(refresh.http_only(), Some(true));
    assert_eq!(refresh.secure(), Some(true));
    assert_eq!(
        refresh.same_site().map(|same_site| same_site.to_string()),
        Some("Strict".to_owned())
    );
    assert_eq!(refresh.path(), Some("/auth"));

    // Coming back (a reload) resumes the session with the cookie: no sign-in page again.
    let sign_in_pages = sign_in_pages_served(&app);
    page.goto(&ward_page).await.unwrap();
    wait_for(page, nurse, Duration::from_secs(30)).await;
    wait_for(
        page,
        r#"#connection[data-state="live"]"#,
        Duration::from_secs(30),
    )
    .await;
    wait_for(page, &alert, Duration::from_secs(30)).await;
    assert_eq!(
        sign_in_pages_served(&app),
        sign_in_pages,
        "the reload did not go through /auth/authorize"
    );
    assert_no_token_in_storage(page).await;

    // Signing out ends the session at the server and removes the cookie: a reload is sent to
    // the sign-in page.
    click(page, "#sign-out").await;
    wait_for(page, "#signed-out", Duration::from_secs(30)).await;
    assert!(
        page.find(Locator::Css("#signed-in-user")).await.is_err(),
        "nobody is shown as signed in"
    );
    assert!(
        page.find(Locator::Css(".ward-page")).await.is_err(),
        "the ward is gone"
    );
    page.refresh().await.unwrap();
    wait_for(page, "#username", Duration::from_secs(30)).await;
    assert_eq!(sign_in_pages_served(&app), sign_in_pages + 1);
    browser.stop().await;
    app.cleanup().await;
}

/// Neither the access token nor any other JWT is in the page's storage.
async fn assert_no_token_in_storage(page: &fantoccini::Client) {
    let storage = page
        .execute(
            "return JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)]);",
            vec![],
        )
        .await
        .unwrap();
    let storage = storage.as_str().unwrap_or_default().to_owned();
    assert!(!storage.contains("eyJ"), "a token in storage: {storage}");
}

/// How many sign-in pages (`GET /auth/authorize`) the edge has served.
fn sign_in_pages_served(app: &TestApp) -> usize {
    count_log(app, r#""method":"GET","uri":"/auth/authorize?"#)
}

#[tokio::test]
async fn the_dashboard_refreshes_its_token_and_stays_live_past_its_expiry() {
    // Access tokens of ten seconds: the app refreshes them five seconds before they expire, and
    // the notifier closes a socket when the token it opened with expires.
    let ttl = Duration::from_secs(10);
    let app = TestApp::spawn_configured(
        WebRoot::App,
        &[],
        &[("--access-token-ttl-secs", &ttl.as_secs().to_string())],
    )
    .await;
    let (patient, stay) = admit(&app).await;
    record(&app, None, &patient, &stay, &STABLE).await;

    let browser = Browser::start().await;
    let page = &browser.client;
    page.goto(&format!("{}/#/ward/ward-a", app.origin()))
        .await
        .unwrap();
    sign_in_and_allow(page, "physician").await;
    let bed = format!(r#"article[data-bed="ward-a-bed-1"][data-patient="{patient}"]"#);
    wait_for(
        page,
        &format!(r#"{bed} [data-vital="respiratory-rate"][data-value="16"]"#),
        Duration::from_secs(60),
    )
    .await;
    let signed_in_at = Instant::now();
    let token_requests = |app: &TestApp| count_log(app, r#""method":"POST","uri":"/auth/token""#);
    let sockets = |app: &TestApp| count_log(app, r#""method":"GET","uri":"/ws?access_token="#);
    let (exchanged, first_sockets) = (token_requests(&app), sockets(&app));

    // Past the first token's expiry, and the second's.
    tokio::time::sleep(ttl * 2 + Duration::from_secs(2)).await;
    wait_for(
        page,
        r#"#connection[data-state="live"]"#,
        Duration::from_secs(10),
    )
    .await;
    assert!(
        page.find(Locator::Css(r#"#signed-in-user[data-user="physician"]"#))
            .await
            .is_ok(),
        "still signed in"
    );
    let refreshes = token_requests(&app) - exchanged;
    let elapsed = signed_in_at.elapsed().as_secs();
    assert!(
        refreshes >= 3,
        "{refreshes} refreshes in {elapsed} s of ten-second tokens"
    );
    assert!(
        sockets(&app) > first_sockets,
        "the socket reopened with a new token"
    );

    // A write now (with a backend token of its own: the app's has expired too) still shows
    // live.
    let writer = app.system_token().await;
    let written = record(&app, Some(&writer), &patient, &stay, &DETERIORATING).await;
    let shown = wait_for(
        page,
        &format!("{bed} .news2-alert"),
        Duration::from_secs(10),
    )
    .await;
    eprintln!(
        "after refreshes, write acknowledged to alert shown: {:?}",
        shown.duration_since(written)
    );
    browser.stop().await;
    app.cleanup().await;
}

/// How many lines of the edge's access log contain `pattern`.
fn count_log(app: &TestApp, pattern: &str) -> usize {
    app.edge
        .access_log()
        .lines()
        .filter(|line| line.contains(pattern))
        .count()
}

/// The demo hospital's wards and beds, a patient, and their in-progress stay on bed 1: the
/// patient's id and the stay's.
async fn admit(app: &TestApp) -> (String, String) {
    let response = app.send_fhir(Method::POST, "/fhir", &facility()).await;
    assert!(
        response.status().is_success(),
        "facility: {}",
        response.text().await.unwrap()
    );
    let (patient, _) = app.create(&crate::helpers::patient("Deteriorating")).await;
    let patient = patient["id"].as_str().unwrap().to_owned();
    let stay = json!({
        "resourceType": "Encounter", "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": format!("Patient/{patient}")},
        "period": {"start": Utc::now().to_rfc3339()},
        "location": [{"location": {"reference": "Location/ward-a-bed-1"}, "status": "active"}]
    });
    let (stay, _) = app.create(&stay).await;
    (patient, stay["id"].as_str().unwrap().to_owned())
}

/// Writes one set of vital signs now, as one transaction (with `token`, or the app's backend
/// token); the moment the write was acknowledged.
async fn record(
    app: &TestApp,
    token: Option<&str>,
    patient: &str,
    stay: &str,
    vitals: &Vitals,
) -> Instant {
    let observations = vital_signs(
        vitals,
        &format!("Patient/{patient}"),
        &format!("Encounter/{stay}"),
        Utc::now(),
    );
    let entries: Vec<Value> = observations
        .into_iter()
        .map(|observation| json!({"resource": observation, "request": {"method": "POST", "url": "Observation"}}))
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let mut request = app
        .request(Method::POST, "/fhir")
        .header("content-type", "application/fhir+json")
        .body(bundle.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let acknowledged = Instant::now();
    assert!(
        response.status().is_success(),
        "vital signs: {}",
        response.text().await.unwrap()
    );
    acknowledged
}
