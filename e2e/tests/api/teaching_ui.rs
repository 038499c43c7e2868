//! The teaching views in a real browser (headless Chromium over WebDriver, the Yew app served
//! by the edge): an instructor makes a class sandbox from a scenario on the teaching page and
//! plays it, while a student of the class watches the sandbox's ward deteriorate live; the
//! teaching page's other forms record a scenario from a ward's census and fork the live record
//! at a moment; and the time slider shows the ward and a patient as they stood at an earlier
//! instant, marked as the past, without live updates. Screenshots land in
//! `target/test-artifacts/`.
//!
//! The scenario is imported through the API (its file format is the server's business, tested
//! in `sandboxes.rs`); everything the instructor and the student do after that goes through
//! the pages.

use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use fantoccini::{Client, Locator};
use reqwest::Method;
use serde_json::{Value, json};
use wardline::generate::{Vitals, vital_signs};

use crate::browser::{
    Browser, attribute, click, save_screenshot, sign_in_and_allow, text, type_into, wait_for,
    wait_for_all,
};
use crate::helpers::{TestApp, WebRoot};

/// How long a page may take to show what the test waits for (generous: two browsers and the
/// whole stack share two cores).
const SHOWN: Duration = Duration::from_secs(60);

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

/// The scenario's name, and the sandbox's.
const SCENARIO: &str = "bay-1-night";
const SANDBOX: &str = "bay-1";

/// The scenario's length: fifty minutes, five seconds at 600×.
const DURATION_MS: i64 = 50 * 60_000;

/// The heart rate of the scenario's last set of vital signs: only the replay writes it.
const LAST_PULSE: f64 = 141.0;

/// A scenario of one patient in ward A's bed 1: stable when the window opens, then a set of
/// vital signs every ten minutes, each worse than the last, ending with a pulse of
/// [`LAST_PULSE`] and an emergency NEWS2.
fn scenario_file() -> String {
    let opened: DateTime<Utc> = "2026-01-01T02:00:00Z".parse().unwrap();
    let start = |resource: Value| json!({"type": "start", "resource": resource});
    let mut lines = vec![
        json!({"type": "manifest", "format": "wardline-scenario/1", "name": SCENARIO,
               "version": 1, "title": "Bed 1 at night", "durationMs": DURATION_MS,
               "windowStart": "2026-01-01T02:00:00Z", "cohort": {"patients": ["sc-p1"]}}),
        start(
            json!({"resourceType": "Location", "id": "ward-a", "status": "active",
                     "name": "Ward A (Acute Medicine)", "mode": "instance",
                     "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": "wa"}]}}),
        ),
        start(
            json!({"resourceType": "Location", "id": "ward-a-bed-1", "status": "active",
                     "name": "Ward A (Acute Medicine), bed 1", "mode": "instance",
                     "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": "bd"}]},
                     "partOf": {"reference": "Location/ward-a"}}),
        ),
        start(
            json!({"resourceType": "Patient", "id": "sc-p1", "gender": "female",
                     "name": [{"family": "Tanaka", "given": ["Aiko"]}], "birthDate": "1950-03-04"}),
        ),
        start(
            json!({"resourceType": "Encounter", "id": "sc-e1", "status": "in-progress",
                     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                     "subject": {"reference": "Patient/sc-p1"},
                     "period": {"start": "2026-01-01T00:00:00Z"},
                     "location": [{"location": {"reference": "Location/ward-a-bed-1"}, "status": "active"}]}),
        ),
    ];
    let set = |n: usize, vitals: &Vitals, at: DateTime<Utc>| -> Vec<Value> {
        vital_signs(vitals, "Patient/sc-p1", "Encounter/sc-e1", at)
            .into_iter()
            .enumerate()
            .map(|(i, mut observation)| {
                observation["id"] = json!(format!("sc-v{n}-{i}"));
                observation
            })
            .collect()
    };
    let before = opened - chrono::Duration::minutes(10);
    lines.extend(set(0, &STABLE, before).into_iter().map(start));
    // Worse every ten minutes, from stable towards deteriorating.
    for step in 1..=4_i64 {
        let towards = |from: f64, to: f64| from + (to - from) * step as f64 / 4.0;
        let vitals = Vitals {
            respiratory_rate: towards(16.0, 28.0).round(),
            heart_rate: if step == 4 {
                LAST_PULSE
            } else {
                towards(72.0, 135.0).round()
            },
            saturation: towards(97.0, 90.0).round(),
            systolic: towards(124.0, 88.0).round(),
            diastolic: towards(78.0, 50.0).round(),
            temperature: (towards(36.8, 39.4) * 10.0).round() / 10.0,
            on_oxygen: step >= 3,
            confused: step == 4,
        };
        let offset_ms = step * 10 * 60_000;
        let at = opened + chrono::Duration::milliseconds(offset_ms);
        lines.extend(set(step as usize, &vitals, at).into_iter().map(
            |observation| json!({"type": "event", "offsetMs": offset_ms, "kind": "create", "resource": observation}),
        ));
    }
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// A browser with the demo user of `role` signed in, on `fragment` of the app.
async fn signed_in(app: &TestApp, role: &str, fragment: &str) -> Browser {
    let browser = Browser::start().await;
    let page = &browser.client;
    page.goto(&format!("{}/{fragment}", app.origin()))
        .await
        .unwrap();
    sign_in_and_allow(page, role).await;
    wait_for(
        page,
        &format!(r#"#signed-in-user[data-user="{role}"]"#),
        SHOWN,
    )
    .await;
    browser
}

/// The instructor makes a class sandbox from a scenario on the teaching page and plays it at
/// 600×; a student of the class, watching the sandbox's ward, sees the scenario's
/// deterioration arrive (a pulse only the replay writes, and the NEWS2 alert); a reset takes
/// the student's ward back to the scenario's start.
#[tokio::test]
async fn an_instructor_plays_a_scenario_into_a_class_sandbox_a_student_watches() {
    let app = TestApp::spawn_serving(WebRoot::App, &[]).await;
    let instructor_token = app.user_token("instructor", "user/*.cruds", None).await;
    let imported = app
        .request(Method::POST, "/teaching/scenarios")
        .bearer_auth(&instructor_token)
        .header("content-type", "application/x-ndjson")
        .body(scenario_file())
        .send()
        .await
        .unwrap();
    assert_eq!(
        imported.status(),
        201,
        "import: {}",
        imported.text().await.unwrap()
    );

    // The instructor's teaching page lists the scenario; the form makes the class's sandbox.
    let teacher = signed_in(&app, "instructor", "#/teaching").await;
    let page = &teacher.client;
    assert_eq!(text(page, "#teaching-link").await, "Teaching");
    let scenario = format!(r#".scenario[data-scenario="{SCENARIO}"][data-version="1"]"#);
    wait_for(page, &scenario, SHOWN).await;
    type_into(page, "#sandbox-name", SANDBOX).await;
    type_into(page, "#sandbox-class", "demo").await;
    type_into(page, "#sandbox-description", "Bed 1 at night").await;
    click(
        page,
        &format!(r#"#sandbox-start option[value="scenario:{SCENARIO}:1"]"#),
    )
    .await;
    click(page, "#create-sandbox").await;
    let card = format!(r#".sandbox[data-sandbox="{SANDBOX}"]"#);
    wait_for(page, &format!("{card} .play"), SHOWN).await;
    let described = text(page, &card).await;
    assert!(
        described.contains("class demo") && described.contains(&format!("scenario {SCENARIO} v1")),
        "{described}"
    );
    assert_eq!(
        text(page, &format!("{card} .play-clock")).await,
        "00:00 / 50:00"
    );

    // A student of the class finds the sandbox among their classes' and opens its ward.
    let student = signed_in(&app, "student", "#/teaching").await;
    let watch = &student.client;
    assert_eq!(text(watch, "#teaching-link").await, "Sandboxes");
    wait_for(watch, &format!("{card} a.open-ward"), SHOWN).await;
    for control in [".play", ".reset", ".delete"] {
        assert!(
            watch
                .find(Locator::Css(&format!("{card} {control}")))
                .await
                .is_err(),
            "a student has no {control}"
        );
    }
    assert!(watch.find(Locator::Css("#new-sandbox")).await.is_err());
    click(watch, &format!("{card} a.open-ward")).await;
    let banner = format!(r#"#sandbox-banner[data-sandbox="{SANDBOX}"]"#);
    let bed = r#"article[data-bed="ward-a-bed-1"][data-patient="sc-p1"]"#;
    wait_for_all(
        watch,
        &[
            &banner,
            r#"#connection[data-state="live"]"#,
            &format!(r#"{bed} [data-vital="pulse"][data-value="72"]"#),
        ],
        SHOWN,
    )
    .await;
    assert!(
        watch
            .current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with(&format!("#/sandbox/{SANDBOX}/ward/ward-a")),
        "the sandbox's ward has its own address"
    );
    assert!(text(watch, &banner).await.contains("class demo"));
    assert!(
        watch
            .find(Locator::Css(&format!("{bed} .news2-alert")))
            .await
            .is_err(),
        "stable at the scenario's start"
    );

    // The instructor plays it at 600×: the clock runs on the page and reaches the end.
    click(page, &format!(r#"{card} .play-speed option[value="600"]"#)).await;
    click(page, &format!("{card} button.play")).await;
    let pressed = Instant::now();
    wait_for(page, &format!(r#"{card}[data-playing="true"]"#), SHOWN).await;

    // The student's ward shows the replay's last set as it comes (at 40:00 of the scenario,
    // four seconds in): the pulse and the alert.
    let last_pulse = format!(r#"{bed} [data-vital="pulse"][data-value="{LAST_PULSE}"]"#);
    let shown = wait_for_all(watch, &[&last_pulse, &format!("{bed} .news2-alert")], SHOWN).await;
    eprintln!(
        "play pressed to the student's ward showing the last pulse: {:?} (due after 4 s)",
        shown.duration_since(pressed)
    );
    let score: i64 = attribute(watch, &format!("{bed} .news2-total"), "data-score")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(score >= 7, "an emergency NEWS2 at the end, got {score}");
    save_screenshot(watch, "teaching-student-sandbox-ward.png").await;
    let clock = text(page, &format!("{card} .play-clock")).await;
    assert!(
        clock.ends_with("/ 50:00") && !clock.starts_with("00:0"),
        "the instructor's clock moved with the play: {clock}"
    );

    // The instructor's clock reaches the end: finished once the last change is applied, the
    // clock runs on to the scenario's length.
    wait_for(
        page,
        &format!(r#"{card}[data-finished="true"][data-playing="false"]"#),
        SHOWN,
    )
    .await;
    eprintln!("play pressed to the end shown: {:?}", pressed.elapsed());
    assert_eq!(
        text(page, &format!("{card} .play-clock")).await,
        "50:00 / 50:00"
    );
    assert_eq!(
        text(page, &format!("{card} .play-applied")).await,
        "28 / 28 changes"
    );
    assert_eq!(text(page, &format!("{card} .play-state")).await, "finished");
    save_screenshot(page, "teaching-instructor-played.png").await;

    // A reset takes the sandbox back to its start, and the student's ward with it.
    click(page, &format!("{card} button.reset")).await;
    wait_for(page, "#teaching-notice", SHOWN).await;
    wait_for(
        watch,
        &format!(r#"{bed} [data-vital="pulse"][data-value="72"]"#),
        SHOWN,
    )
    .await;
    assert!(
        watch.find(Locator::Css(&last_pulse)).await.is_err(),
        "the replay is gone after the reset"
    );

    student.stop().await;
    teacher.stop().await;
    app.cleanup().await;
}

/// The time slider on the ward and on the patient page: at an instant between two sets of
/// vital signs, the later set is absent, the page says it shows the past (with the instant)
/// and is not live; "Back to now" returns to the live record.
#[tokio::test]
async fn the_time_slider_shows_the_ward_and_the_patient_as_they_were() {
    let app = TestApp::spawn_serving(WebRoot::App, &[]).await;
    let (patient, stay) = admit(&app).await;
    let (earlier, written) = record(&app, &patient, &stay, &STABLE).await;
    // Past the second the first set was written in, and before the second set.
    let between = written.trunc_subsecs(0) + chrono::Duration::seconds(1);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (later, _) = record(&app, &patient, &stay, &DETERIORATING).await;

    let browser = signed_in(&app, "nurse", "#/ward/ward-a").await;
    let page = &browser.client;
    let bed = format!(r#"article[data-bed="ward-a-bed-1"][data-patient="{patient}"]"#);
    let pulse = |value: &str| format!(r#"{bed} [data-vital="pulse"][data-value="{value}"]"#);
    wait_for_all(
        page,
        &[
            &pulse("135"),
            r#"#connection[data-state="live"]"#,
            "#time-slider",
        ],
        SHOWN,
    )
    .await;
    assert!(page.find(Locator::Css("#past-banner")).await.is_err());

    // The instant, typed to the second into the time bar (in the browser's own time zone).
    show_instant(page, between).await;
    let instant = between.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let banner = format!(r#"#past-banner[data-at="{instant}"]"#);
    wait_for_all(page, &[&banner, &pulse("72")], SHOWN).await;
    // (The label is drawn in capitals: what WebDriver reads.)
    let said = text(page, &banner).await.to_lowercase();
    assert!(
        said.contains("the past") && said.contains("read-only") && said.contains("no live updates"),
        "{said}"
    );
    assert!(
        page.current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with(&format!("#/ward/ward-a?at={instant}")),
        "the past has an address"
    );
    assert!(page.find(Locator::Css(&pulse("135"))).await.is_err());
    assert!(
        page.find(Locator::Css(&format!("{bed} .news2-alert")))
            .await
            .is_err(),
        "no alert yet then"
    );
    assert!(
        page.find(Locator::Css("#connection")).await.is_err(),
        "the past is not live"
    );
    save_screenshot(page, "time-slider-ward-past.png").await;

    // The patient's record at the same instant: the earlier set, not the later.
    click(page, &format!("{bed} a.patient-name")).await;
    let record_page = format!(r#".patient-page[data-patient="{patient}"]"#);
    let observation = |id: &str| format!(r#"{record_page} li[data-resource="Observation/{id}"]"#);
    wait_for_all(
        page,
        &[
            &format!("{record_page} {banner}"),
            &observation(&earlier[0]),
        ],
        SHOWN,
    )
    .await;
    for id in &later {
        assert!(
            page.find(Locator::Css(&observation(id))).await.is_err(),
            "Observation/{id} was written after {instant}"
        );
    }
    save_screenshot(page, "time-slider-patient-past.png").await;

    // Back to now: the later set is there again.
    click(page, "#back-to-now").await;
    wait_for(page, &observation(&later[0]), SHOWN).await;
    assert!(page.find(Locator::Css("#past-banner")).await.is_err());

    // The slider itself: a minute back from now is the past too.
    page.goto(&format!("{}/#/ward/ward-a", app.origin()))
        .await
        .unwrap();
    wait_for(page, &pulse("135"), SHOWN).await;
    let slider = page.find(Locator::Css("#time-slider")).await.unwrap();
    let moved = Utc::now();
    slider
        .send_keys(&fantoccini::key::Key::Left.to_string())
        .await
        .unwrap();
    wait_for(page, "#past-banner", SHOWN).await;
    let at: DateTime<Utc> = attribute(page, "#past-banner", "data-at")
        .await
        .unwrap()
        .parse()
        .unwrap();
    let back = moved - at;
    assert!(
        (55..=70).contains(&back.num_seconds()),
        "a step of the slider is a minute: {at} is {back} before the key"
    );
    browser.stop().await;
    app.cleanup().await;
}

/// The two other forms of the teaching page: a scenario recorded from a patient picked from
/// ward A's census, and a sandbox of the live record at a moment between two sets of vital
/// signs, whose ward shows the earlier set and not the later.
#[tokio::test]
async fn an_instructor_records_a_scenario_from_the_ward_and_forks_the_record_at_a_moment() {
    let app = TestApp::spawn_serving(WebRoot::App, &[]).await;
    let (patient, stay) = admit(&app).await;
    let (_, written) = record(&app, &patient, &stay, &STABLE).await;
    let between = written.trunc_subsecs(0) + chrono::Duration::seconds(1);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    record(&app, &patient, &stay, &DETERIORATING).await;

    let teacher = signed_in(&app, "instructor", "#/teaching").await;
    let page = &teacher.client;
    // A patient of ward A's census, over the form's default window (the last hour to now).
    click(
        page,
        &format!(r#"#record-scenario input.census-patient[value="{patient}"]"#),
    )
    .await;
    type_into(page, "#scenario-name", "earlier-night").await;
    type_into(page, "#scenario-title", "Ann at night").await;
    click(page, "#record").await;
    let recorded = r#".scenario[data-scenario="earlier-night"][data-version="1"]"#;
    wait_for_all(page, &[recorded, "#teaching-notice"], SHOWN).await;
    assert!(text(page, recorded).await.contains("Ann at night"));
    assert_eq!(
        text(page, &format!("{recorded} td:nth-child(3)")).await,
        "1",
        "one patient in the cohort"
    );

    // A sandbox of the live record as it stood between the two sets.
    type_into(page, "#sandbox-name", "then").await;
    type_into(page, "#sandbox-class", "demo").await;
    click(page, r#"#sandbox-start option[value="instant"]"#).await;
    set_moment(page, "#sandbox-instant", between).await;
    click(page, "#create-sandbox").await;
    let card = r#".sandbox[data-sandbox="then"]"#;
    wait_for(page, &format!("{card} a.open-ward"), SHOWN).await;
    assert!(
        text(page, card)
            .await
            .contains("Starts as the live record at position"),
        "{}",
        text(page, card).await
    );
    assert!(
        page.find(Locator::Css(&format!("{card} .player")))
            .await
            .is_err(),
        "no scenario, no play controls"
    );
    click(page, &format!("{card} a.open-ward")).await;
    let bed = format!(r#"article[data-bed="ward-a-bed-1"][data-patient="{patient}"]"#);
    let pulse = |value: &str| format!(r#"{bed} [data-vital="pulse"][data-value="{value}"]"#);
    wait_for_all(
        page,
        &[r#"#sandbox-banner[data-sandbox="then"]"#, &pulse("72")],
        SHOWN,
    )
    .await;
    assert!(
        page.find(Locator::Css(&pulse("135"))).await.is_err(),
        "written after the sandbox's start"
    );
    save_screenshot(page, "teaching-sandbox-of-the-past.png").await;
    teacher.stop().await;
    app.cleanup().await;
}

/// Types `at` into the time bar's date-time field and presses Show.
async fn show_instant(page: &Client, at: DateTime<Utc>) {
    set_moment(page, "#past-instant", at).await;
    click(page, "#past-show").await;
}

/// Puts `at` into the date-time field `css`, as the browser's time zone shows it.
async fn set_moment(page: &Client, css: &str, at: DateTime<Utc>) {
    wait_for(page, css, SHOWN).await;
    let local = page
        .execute(
            "const d = new Date(arguments[0]);
             const p = (n) => String(n).padStart(2, '0');
             return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T` +
                    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;",
            vec![json!(at.timestamp_millis())],
        )
        .await
        .unwrap();
    // A date-time field takes typing segment by segment in the locale's order; setting its
    // value is what picking the moment in its calendar does.
    page.execute(
        "document.querySelector(arguments[0]).value = arguments[1];",
        vec![json!(css), local],
    )
    .await
    .unwrap();
}

/// Ward A's beds, a patient, and their in-progress stay on bed 1: the patient's id and the
/// stay's.
async fn admit(app: &TestApp) -> (String, String) {
    let response = app
        .send_fhir(Method::POST, "/fhir", &wardline::generate::facility())
        .await;
    assert!(
        response.status().is_success(),
        "facility: {}",
        response.text().await.unwrap()
    );
    let (patient, _) = app.create(&crate::helpers::patient("Earlier")).await;
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

/// Writes one set of vital signs now, as one transaction: the Observations' ids, and when the
/// write was acknowledged.
async fn record(
    app: &TestApp,
    patient: &str,
    stay: &str,
    vitals: &Vitals,
) -> (Vec<String>, DateTime<Utc>) {
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
    let acknowledged = Utc::now();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert!(status.is_success(), "vital signs: {answer}");
    let ids = answer["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            // `Observation/<id>/_history/1`, relative or absolute.
            let location = entry["response"]["location"].as_str().unwrap();
            let (_, rest) = location.rsplit_once("Observation/").unwrap();
            rest.split('/').next().unwrap().to_owned()
        })
        .collect();
    (ids, acknowledged)
}
