//! The ward dashboard in a real browser: headless Chromium, driven over WebDriver
//! (chromedriver), loads the Yew app through the edge, shows a ward's patient, and when a
//! deteriorating set of vital signs is written through the FHIR API, shows the new values and
//! the NEWS2 alert within two seconds, live over the notifier. The page's screenshot is kept in
//! `target/test-artifacts/`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::{Value, json};
use wardline::generate::{Vitals, facility, vital_signs};

use crate::helpers::{TestApp, WebRoot};

/// How long the page may take to show a change written through the API (the issue's bound).
const LIVE_BOUND: Duration = Duration::from_secs(2);

#[tokio::test]
async fn the_ward_dashboard_shows_deterioration_and_the_news2_alert_live() {
    let app = TestApp::spawn_serving(WebRoot::App, &[]).await;
    let (patient, stay) = admit(&app).await;
    let stable = Vitals {
        respiratory_rate: 16.0,
        heart_rate: 72.0,
        saturation: 97.0,
        systolic: 124.0,
        diastolic: 78.0,
        temperature: 36.8,
        on_oxygen: false,
        confused: false,
    };
    record(&app, &patient, &stay, &stable).await;

    let browser = Browser::start().await;
    let page = &browser.client;
    page.goto(&app.url("/#/ward/ward-a")).await.unwrap();
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

    // Fast breathing and pulse, low pressure and saturation, on oxygen, newly confused.
    let deteriorating = Vitals {
        respiratory_rate: 28.0,
        heart_rate: 135.0,
        saturation: 90.0,
        systolic: 88.0,
        diastolic: 50.0,
        temperature: 39.4,
        on_oxygen: true,
        confused: true,
    };
    let written = record(&app, &patient, &stay, &deteriorating).await;
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
    browser.stop().await;
    app.cleanup().await;
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

/// Writes one set of vital signs now, as one transaction; the moment the write was
/// acknowledged.
async fn record(app: &TestApp, patient: &str, stay: &str, vitals: &Vitals) -> Instant {
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
    let response = app.send_fhir(Method::POST, "/fhir", &bundle).await;
    let acknowledged = Instant::now();
    assert!(
        response.status().is_success(),
        "vital signs: {}",
        response.text().await.unwrap()
    );
    acknowledged
}

/// Headless Chromium under chromedriver, both stopped on [`Browser::stop`] (or drop).
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let driver_binary = find_binary("chromedriver");
        let port = test_support::free_port();
        // Its own process group, with the browsers it starts, so that a failing test can end
        // them all.
        let driver = Command::new(&driver_binary)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", driver_binary.display()));
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": find_binary("chromium"),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("cannot open a Chromium session through {url}: {error}"),
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Ends the session; dropping ends the processes.
    async fn stop(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

/// `name` on the PATH or in /usr/bin (Debian's chromium and chromium-driver).
fn find_binary(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed: run the tests with ./deploy/dev test, which installs Debian's chromium and chromium-driver"))
}

async fn wait_for(page: &Client, css: &str, bound: Duration) -> Instant {
    wait_for_all(page, &[css], bound).await
}

/// Polls until every selector matches; the moment they all did.
async fn wait_for_all(page: &Client, selectors: &[&str], bound: Duration) -> Instant {
    let deadline = Instant::now() + bound;
    loop {
        let mut missing = None;
        for css in selectors {
            if page.find(Locator::Css(css)).await.is_err() {
                missing = Some(*css);
                break;
            }
        }
        let Some(css) = missing else {
            return Instant::now();
        };
        if Instant::now() > deadline {
            let shot = save_screenshot(page, "ward-dashboard-timeout.png").await;
            panic!(
                "`{css}` did not appear within {bound:?}; screenshot {}",
                shot.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn attribute(page: &Client, css: &str, name: &str) -> Option<String> {
    page.find(Locator::Css(css))
        .await
        .ok()?
        .attr(name)
        .await
        .ok()?
}

/// Saves the page's screenshot among the test run's artifacts; its path.
async fn save_screenshot(page: &Client, name: &str) -> PathBuf {
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let png = page.screenshot().await.unwrap();
    std::fs::write(&path, png).unwrap();
    path
}

/// `target/test-artifacts` of the workspace (or of `CARGO_TARGET_DIR`).
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("test-artifacts")
}
