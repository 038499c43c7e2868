//! Teaching sandboxes through the edge (ADR 0014): managed at `/teaching/sandboxes`, each a
//! full FHIR base at `/sandbox/<name>/fhir` that starts as the live record and keeps its writes
//! to itself, and the live record's to the live record.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_outcome, header, patient, position};

/// A client of the edge with one token.
struct As<'a> {
    app: &'a TestApp,
    token: String,
}

impl As<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let mut request = self.app.request(method, path).bearer_auth(&self.token);
        if let Some(body) = body {
            let media = if path.starts_with("/teaching") {
                "application/json"
            } else {
                "application/fhir+json"
            };
            request = request.header("content-type", media).body(body.to_string());
        }
        request.send().await.unwrap()
    }

    async fn json(&self, method: Method, path: &str, body: Option<&Value>, status: u16) -> Value {
        let response = self.send(method.clone(), path, body).await;
        let got = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(got, status, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A search or read after the write at `position` is indexed.
    async fn read_after(&self, path: &str, position: i64) -> Response {
        self.app
            .request(Method::GET, path)
            .bearer_auth(&self.token)
            .header("x-event-position", position.to_string())
            .send()
            .await
            .unwrap()
    }

    async fn ids_after(&self, path: &str, position: i64) -> Vec<String> {
        let response = self.read_after(path, position).await;
        assert_eq!(response.status(), 200, "GET {path}");
        let bundle: Value = response.json().await.unwrap();
        let mut ids: Vec<String> = bundle["entry"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|entry| entry["resource"]["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

async fn instructor(app: &TestApp) -> As<'_> {
    As {
        app,
        token: app.user_token("instructor", "user/*.cruds", None).await,
    }
}

/// The life of a sandbox: forked from the live record, written on both sides, isolated both
/// ways (reads, searches, history, conditional writes, another sandbox), and reset to exactly
/// where it started.
#[tokio::test]
async fn a_sandbox_starts_as_the_record_and_keeps_its_writes_to_itself() {
    let app = TestApp::spawn().await;
    let teacher = instructor(&app).await;
    let (before, _) = app.create(&patient("Forked")).await;
    let id = before["id"].as_str().unwrap().to_owned();
    let mut identified = patient("Identified");
    identified["identifier"] = json!([{"system": "urn:sandbox-test", "value": "live-1"}]);
    let (_, fork) = app.create(&identified).await;

    let created = teacher
        .json(
            Method::POST,
            "/teaching/sandboxes",
            Some(&json!({"name": "night-shift", "class": "demo", "description": "Bay 3 at 02:00"})),
            201,
        )
        .await;
    assert_eq!(created["start"]["position"], fork);
    assert_eq!(
        created["fhirBase"],
        format!("{}/sandbox/night-shift/fhir", app.edge.base())
    );
    teacher
        .json(
            Method::POST,
            "/teaching/sandboxes",
            Some(&json!({"name": "other-class", "class": "other"})),
            201,
        )
        .await;
    let base = "/sandbox/night-shift/fhir";
    let start_read = teacher
        .read_after(&format!("{base}/Patient/{id}"), fork)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&start_read).unwrap()["name"][0]["family"],
        "Forked"
    );

    // The live record moves on after the fork; the sandbox does not see it.
    let mut live = before.clone();
    live["name"][0]["family"] = json!("LiveAfterFork");
    let response = app
        .send_fhir(Method::PUT, &format!("/fhir/Patient/{id}"), &live)
        .await;
    assert_eq!(response.status(), 200);
    let live_position = position(&response);
    let (newcomer, _) = app.create(&patient("LiveNewcomer")).await;

    // The sandbox writes: its version follows the fork's, If-Match included.
    let mut practised = before.clone();
    practised["name"][0]["family"] = json!("Practised");
    let response = teacher
        .app
        .request(Method::PUT, &format!("{base}/Patient/{id}"))
        .bearer_auth(&teacher.token)
        .header("content-type", "application/fhir+json")
        .header("if-match", "W/\"1\"")
        .body(practised.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "etag"), Some("W/\"2\""));
    let location = header(&response, "location").unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}{base}/Patient/{id}", app.edge.base())),
        "{location}"
    );
    let (sandboxed, written) = {
        let response = teacher
            .send(
                Method::POST,
                &format!("{base}/Patient"),
                Some(&patient("OnlyInSandbox")),
            )
            .await;
        assert_eq!(response.status(), 201);
        let at = position(&response);
        (response.json::<Value>().await.unwrap(), at)
    };
    let sandboxed_id = sandboxed["id"].as_str().unwrap();

    // Reads and searches on each side.
    let live_read: Value = teacher
        .read_after(&format!("/fhir/Patient/{id}"), written)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(live_read["name"][0]["family"], "LiveAfterFork");
    let sandbox_read: Value = teacher
        .read_after(&format!("{base}/Patient/{id}"), written)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sandbox_read["name"][0]["family"], "Practised");
    assert_eq!(sandbox_read["meta"]["versionId"], "2");
    assert_eq!(
        teacher
            .read_after(&format!("/fhir/Patient/{sandboxed_id}"), written)
            .await
            .status(),
        404
    );
    assert_eq!(
        teacher
            .read_after(
                &format!("{base}/Patient/{}", newcomer["id"].as_str().unwrap()),
                written
            )
            .await
            .status(),
        404
    );
    assert!(
        teacher
            .ids_after("/fhir/Patient?family=practised", written)
            .await
            .is_empty()
    );
    assert_eq!(
        teacher
            .ids_after(&format!("{base}/Patient?family=practised"), written)
            .await,
        [id.as_str()]
    );
    assert!(
        teacher
            .ids_after(&format!("{base}/Patient?family=liveafterfork"), written)
            .await
            .is_empty()
    );
    assert!(
        teacher
            .ids_after(&format!("{base}/Patient?family=livenewcomer"), written)
            .await
            .is_empty()
    );
    assert!(
        teacher
            .ids_after(
                "/sandbox/other-class/fhir/Patient?family=practised",
                written
            )
            .await
            .is_empty()
    );
    let other_read: Value = teacher
        .read_after(&format!("/sandbox/other-class/fhir/Patient/{id}"), written)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other_read["name"][0]["family"], "Forked");

    // History in the sandbox: the live version before the fork, then its own.
    let history: Value = teacher
        .read_after(&format!("{base}/Patient/{id}/_history"), written)
        .await
        .json()
        .await
        .unwrap();
    let families: Vec<&str> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["resource"]["name"][0]["family"].as_str().unwrap())
        .collect();
    assert_eq!(families, ["Practised", "Forked"]);
    let full_url = history["entry"][0]["fullUrl"].as_str().unwrap();
    assert!(
        full_url.contains("/sandbox/night-shift/fhir/"),
        "{full_url}"
    );

    // A conditional create in the sandbox matches what the sandbox sees.
    let mut duplicate = patient("ConditionalTwin");
    duplicate["identifier"] = json!([{"system": "urn:sandbox-test", "value": "live-1"}]);
    let response = teacher
        .app
        .request(Method::POST, &format!("{base}/Patient"))
        .bearer_auth(&teacher.token)
        .header("content-type", "application/fhir+json")
        .header("if-none-exist", "identifier=urn:sandbox-test|live-1")
        .body(duplicate.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the fork's patient matches");
    let mut sandbox_only = patient("ConditionalNew");
    sandbox_only["identifier"] = json!([{"system": "urn:sandbox-test", "value": "sandbox-1"}]);
    let response = teacher
        .app
        .request(Method::POST, &format!("{base}/Patient"))
        .bearer_auth(&teacher.token)
        .header("content-type", "application/fhir+json")
        .header("if-none-exist", "identifier=urn:sandbox-test|sandbox-1")
        .body(sandbox_only.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let conditional_at = position(&response);
    let response = app
        .request(Method::POST, "/fhir/Patient")
        .header("content-type", "application/fhir+json")
        .header("if-none-exist", "identifier=urn:sandbox-test|sandbox-1")
        .header("x-event-position", conditional_at.to_string())
        .body(sandbox_only.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        201,
        "the live record has no such patient"
    );

    // A transaction in the sandbox.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:7f1c1a8e-0000-4000-8000-000000000001",
         "resource": patient("InTransaction"),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final",
            "code": {"text": "pulse"},
            "subject": {"reference": "urn:uuid:7f1c1a8e-0000-4000-8000-000000000001"}},
         "request": {"method": "POST", "url": "Observation"}}
    ]});
    let result = teacher.json(Method::POST, base, Some(&bundle), 200).await;
    assert_eq!(result["type"], "transaction-response");
    let after_bundle = app.event_count().await;
    assert!(after_bundle > 0);

    // The events are the sandbox's: tagged, in its partition, hash-chained from the fork.
    let (partition, tag): (i64, Value) = sqlx::query_as(
        "SELECT partition, metadata::jsonb -> 'sandbox' FROM fhir_event \
         WHERE resource_type = 'Patient' AND resource_id = $1 AND version = 2 AND partition <> 0",
    )
    .bind(&id)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(tag["name"], "night-shift");
    assert_eq!(tag["partition"], partition);
    let sandbox_store =
        app.store
            .within(event_store::Record::Sandbox(event_store::SandboxRecord {
                name: "night-shift".to_owned(),
                partition,
                fork,
            }));
    assert_eq!(
        sandbox_store.verify_stream("Patient", &id).await.unwrap(),
        None
    );
    assert_eq!(app.store.verify_stream("Patient", &id).await.unwrap(), None);

    // Reset: back to the start exactly.
    let reset = teacher
        .json(
            Method::POST,
            "/teaching/sandboxes/night-shift/reset",
            None,
            200,
        )
        .await;
    assert_ne!(reset["run"], created["run"]);
    let after_reset = teacher
        .read_after(&format!("{base}/Patient/{id}"), live_position)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        after_reset, start_read,
        "byte-identical to the read at the start"
    );
    assert_eq!(
        teacher
            .read_after(&format!("{base}/Patient/{sandboxed_id}"), live_position)
            .await
            .status(),
        404
    );
    assert!(
        teacher
            .ids_after(&format!("{base}/Patient?family=practised"), live_position)
            .await
            .is_empty()
    );
    assert_eq!(
        teacher
            .ids_after(&format!("{base}/Patient?family=forked"), live_position)
            .await,
        [id.as_str()]
    );

    // Listing and deleting.
    let listed = teacher
        .json(Method::GET, "/teaching/sandboxes", None, 200)
        .await;
    let names: Vec<&str> = listed["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sandbox| sandbox["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["night-shift", "other-class"]);
    let response = teacher
        .send(Method::DELETE, "/teaching/sandboxes/other-class", None)
        .await;
    assert_eq!(response.status(), 204);
    let gone = teacher
        .send(Method::GET, "/sandbox/other-class/fhir/Patient", None)
        .await;
    assert_outcome(gone, 404, "not-found").await;
    app.cleanup().await;
}

/// Who may do what: instructors manage sandboxes, students write only in their class's, and
/// what names no sandbox, or no valid one, is refused with an OperationOutcome.
#[tokio::test]
async fn students_write_in_their_classes_sandboxes_only_and_bad_requests_are_refused() {
    let app = TestApp::spawn().await;
    let teacher = instructor(&app).await;
    let student = As {
        app: &app,
        token: app.user_token("student", "user/*.cruds", None).await,
    };
    let nurse = As {
        app: &app,
        token: app.user_token("nurse", "user/*.cruds", None).await,
    };
    for (name, class) in [("demo-ward", "demo"), ("elsewhere", "another-class")] {
        teacher
            .json(
                Method::POST,
                "/teaching/sandboxes",
                Some(&json!({"name": name, "class": class})),
                201,
            )
            .await;
    }
    let observation =
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "pulse"}});

    let response = student
        .send(
            Method::POST,
            "/sandbox/demo-ward/fhir/Observation",
            Some(&observation),
        )
        .await;
    assert_eq!(response.status(), 201, "in their class's sandbox");
    let outside = student
        .send(
            Method::POST,
            "/sandbox/elsewhere/fhir/Observation",
            Some(&observation),
        )
        .await;
    let outcome = assert_outcome(outside, 403, "forbidden").await;
    assert!(outcome.to_string().contains("another-class"), "{outcome}");
    let live = student
        .send(Method::POST, "/fhir/Observation", Some(&observation))
        .await;
    assert_outcome(live, 403, "forbidden").await;
    let manage = student
        .send(
            Method::POST,
            "/teaching/sandboxes",
            Some(&json!({"name": "mine"})),
        )
        .await;
    assert_outcome(manage, 403, "forbidden").await;
    let reset = nurse
        .send(Method::POST, "/teaching/sandboxes/demo-ward/reset", None)
        .await;
    assert_outcome(reset, 403, "forbidden").await;
    // A nurse writes in any sandbox what a nurse writes in the live record.
    let response = nurse
        .send(
            Method::POST,
            "/sandbox/elsewhere/fhir/Observation",
            Some(&observation),
        )
        .await;
    assert_eq!(response.status(), 201);

    // Unknown sandboxes, on both services and the API.
    for (method, path) in [
        (Method::GET, "/sandbox/nowhere/fhir/Patient"),
        (Method::POST, "/sandbox/nowhere/fhir/Observation"),
        (Method::GET, "/sandbox/Not_A_Name/fhir/Patient"),
        (Method::GET, "/teaching/sandboxes/nowhere"),
        (Method::POST, "/teaching/sandboxes/nowhere/reset"),
        (Method::DELETE, "/teaching/sandboxes/nowhere"),
    ] {
        let body = (method == Method::POST).then_some(&observation);
        let response = teacher.send(method.clone(), path, body).await;
        assert_outcome(response, 404, "not-found").await;
    }
    // Without a token nothing is told, not even whether a sandbox exists.
    let anonymous = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .get(app.url("/sandbox/nowhere/fhir/Patient"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // Bad bodies and names.
    for body in [
        json!({"name": "Upper-Case"}),
        json!({"name": "-dash-first"}),
        json!({"name": ""}),
        json!({"class": "demo"}),
        json!({"name": "extra", "colour": "blue"}),
        json!({"name": "both", "start": {"position": 1, "instant": "2026-01-01T00:00:00Z"}}),
        json!({"name": "future", "start": {"instant": "2999-01-01T00:00:00Z"}}),
        json!({"name": "beyond", "start": {"position": i64::MAX}}),
        json!({"name": "not-an-instant", "start": {"instant": "yesterday"}}),
        json!(["not", "an", "object"]),
    ] {
        let response = teacher
            .send(Method::POST, "/teaching/sandboxes", Some(&body))
            .await;
        assert_eq!(response.status(), 400, "{body}");
        assert_outcome(response, 400, "invalid").await;
    }
    let malformed = teacher
        .app
        .request(Method::POST, "/teaching/sandboxes")
        .bearer_auth(&teacher.token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_outcome(malformed, 400, "invalid").await;
    let duplicate = teacher
        .send(
            Method::POST,
            "/teaching/sandboxes",
            Some(&json!({"name": "demo-ward"})),
        )
        .await;
    assert_outcome(duplicate, 409, "duplicate").await;
    app.cleanup().await;
}

/// A WebSocket client of the edge, subscribed to `subscriptions`, with live events flowing.
async fn feed(
    app: &TestApp,
    path: &str,
    token: &str,
    subscriptions: &[Value],
    after: i64,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let url = format!(
        "ws://127.0.0.1:{}{path}?access_token={token}",
        app.edge.port
    );
    let (mut socket, response) = tokio_tungstenite::connect_async(&url).await.unwrap();
    assert_eq!(response.status(), 101, "{path}");
    for subscription in subscriptions {
        socket
            .send(Message::text(subscription.to_string()))
            .await
            .unwrap();
        let reply = socket.next().await.unwrap().unwrap();
        let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
        assert_eq!(reply["type"], "subscribed", "{reply}");
    }
    socket
        .send(Message::text(
            json!({"type": "resume", "after": after}).to_string(),
        ))
        .await
        .unwrap();
    socket
}

/// The ids of the `event` messages a feed receives until it has seen `until` (a resource id),
/// skipping heartbeats and the end of the resume.
async fn events_until(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    until: &str,
) -> Vec<String> {
    use futures::StreamExt;
    let mut seen = Vec::new();
    while !seen.iter().any(|id| id == until) {
        let message = tokio::time::timeout(std::time::Duration::from_secs(20), socket.next())
            .await
            .unwrap_or_else(|_| panic!("no event {until} (saw {seen:?})"))
            .unwrap()
            .unwrap();
        let message: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        if message["type"] == "event" {
            seen.push(message["id"].as_str().unwrap().to_owned());
        }
    }
    seen
}

/// Each sandbox streams its own events on `/sandbox/<name>/ws`, the live record its own on
/// `/ws`: a write reaches the feeds of its record and no other, live and on resume.
#[tokio::test]
async fn each_sandbox_has_its_own_feed() {
    let app = TestApp::spawn().await;
    let teacher = instructor(&app).await;
    for name in ["feed-a", "feed-b"] {
        teacher
            .json(
                Method::POST,
                "/teaching/sandboxes",
                Some(&json!({"name": name, "class": "demo"})),
                201,
            )
            .await;
    }
    let head = app.store.head_position().await.unwrap();
    let types = [json!({"type": "subscribe", "resourceType": "Observation"})];
    let mut live = feed(&app, "/ws", &teacher.token, &types, head).await;
    let mut a = feed(&app, "/sandbox/feed-a/ws", &teacher.token, &types, head).await;
    let mut b = feed(&app, "/sandbox/feed-b/ws", &teacher.token, &types, head).await;
    let observation = |text: &str| json!({"resourceType": "Observation", "status": "final", "code": {"text": text}});
    let write = |path: &'static str, text: &'static str| {
        let teacher = &teacher;
        let app = &app;
        let body = observation(text);
        async move {
            // Instructors write in sandboxes; the live record is written by a backend.
            let response = if path.starts_with("/fhir") {
                app.send_fhir(Method::POST, path, &body).await
            } else {
                teacher.send(Method::POST, path, Some(&body)).await
            };
            assert_eq!(response.status(), 201, "{path}");
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let in_a = write("/sandbox/feed-a/fhir/Observation", "a").await;
    let in_live = write("/fhir/Observation", "live").await;
    let in_b = write("/sandbox/feed-b/fhir/Observation", "b").await;
    // Each feed, read until a marker written last, saw only its own record's writes.
    let marker_a = write("/sandbox/feed-a/fhir/Observation", "end").await;
    let marker_b = write("/sandbox/feed-b/fhir/Observation", "end").await;
    let marker_live = write("/fhir/Observation", "end").await;
    assert_eq!(
        events_until(&mut a, &marker_a).await,
        [in_a.clone(), marker_a]
    );
    assert_eq!(
        events_until(&mut b, &marker_b).await,
        [in_b.clone(), marker_b]
    );
    assert_eq!(
        events_until(&mut live, &marker_live).await,
        [in_live.clone(), marker_live]
    );
    // A client resuming from before the writes is replayed its own record's only.
    let mut late = feed(&app, "/sandbox/feed-a/ws", &teacher.token, &types, head).await;
    let replayed = events_until(&mut late, &in_a).await;
    assert_eq!(replayed, [in_a]);
    // An unknown sandbox has no feed.
    let url = format!(
        "ws://127.0.0.1:{}/sandbox/no-such/ws?access_token={}",
        app.edge.port, teacher.token
    );
    let refused = tokio_tungstenite::connect_async(&url).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 404)
        }
        other => panic!("a feed of an unknown sandbox: {other:?}"),
    }
    app.cleanup().await;
}

/// A scenario file: one patient, thirty observations ten seconds apart over five minutes, one
/// of them corrected and one deleted.
fn scenario_file(name: &str) -> String {
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T02:00:00Z").unwrap();
    let mut lines = vec![
        json!({"type": "manifest", "format": "wardline-scenario/1", "name": name, "version": 1,
               "title": "Bay 3 at night", "durationMs": 300_000,
               "windowStart": "2026-01-01T02:00:00Z", "cohort": {"patients": ["sc-p1"]}}),
        json!({"type": "start", "resource": {"resourceType": "Patient", "id": "sc-p1",
               "name": [{"family": "Tanaka"}], "birthDate": "1950-03-04"}}),
    ];
    let observation = |n: i64, value: f64| {
        json!({"resourceType": "Observation", "id": format!("sc-o-{n}"), "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
               "subject": {"reference": "Patient/sc-p1"},
               "effectiveDateTime": (start + chrono::Duration::seconds(n * 10)).to_rfc3339(),
               "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})
    };
    let mut events: Vec<(i64, Value)> = (0..30)
        .map(|n| {
            (
                n * 10_000,
                json!({"type": "event", "offsetMs": n * 10_000, "kind": "create",
                       "resource": observation(n, 70.0 + n as f64)}),
            )
        })
        .collect();
    events.push((
        155_000,
        json!({"type": "event", "offsetMs": 155_000, "kind": "update", "resource": observation(5, 140.0)}),
    ));
    events.push((
        200_000,
        json!({"type": "event", "offsetMs": 200_000, "kind": "delete",
               "resourceType": "Observation", "id": "sc-o-6"}),
    ));
    events.sort_by_key(|(offset, _)| *offset);
    lines.extend(events.into_iter().map(|(_, line)| line));
    lines.iter().map(|line| format!("{line}\n")).collect()
}

impl As<'_> {
    async fn send_text(&self, method: Method, path: &str, body: String) -> Response {
        self.app
            .request(method, path)
            .bearer_auth(&self.token)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

/// Scenario files are checked whole: a bad line is named and nothing is imported; a good
/// file comes back out as it went in.
#[tokio::test]
async fn a_scenario_file_is_imported_whole_or_not_at_all_and_exported_as_it_came() {
    let app = TestApp::spawn().await;
    let teacher = instructor(&app).await;
    let file = scenario_file("night-obs");
    let mut broken: Vec<&str> = file.lines().collect();
    broken[4] = "{\"type\": \"event\", \"offsetMs\": 20000, \"kind\": \"create\"";
    let refused = teacher
        .send_text(Method::POST, "/teaching/scenarios", broken.join("\n"))
        .await;
    let outcome = assert_outcome(refused, 400, "invalid").await;
    assert!(outcome.to_string().contains("line 5"), "{outcome}");
    let listed = teacher
        .json(Method::GET, "/teaching/scenarios", None, 200)
        .await;
    assert_eq!(listed["scenarios"], json!([]), "nothing was imported");

    let imported = teacher
        .send_text(Method::POST, "/teaching/scenarios", file.clone())
        .await;
    assert_eq!(imported.status(), 201);
    let manifest: Value = imported.json().await.unwrap();
    assert_eq!(manifest["counts"], json!({"start": 1, "events": 32}));
    let again = teacher
        .send_text(Method::POST, "/teaching/scenarios", file.clone())
        .await;
    assert_outcome(again, 409, "duplicate").await;
    let exported = teacher
        .send(Method::GET, "/teaching/scenarios/night-obs", None)
        .await;
    assert_eq!(exported.status(), 200);
    assert_eq!(
        header(&exported, "content-type"),
        Some("application/x-ndjson")
    );
    let text = exported.text().await.unwrap();
    let lines = |text: &str| -> Vec<Value> {
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    assert_eq!(lines(&text), lines(&file));
    let unknown = teacher
        .send(Method::GET, "/teaching/scenarios/no-such", None)
        .await;
    assert_outcome(unknown, 404, "not-found").await;
    let student = As {
        app: &app,
        token: app.user_token("student", "user/*.cruds", None).await,
    };
    let forbidden = student
        .send_text(
            Method::POST,
            "/teaching/scenarios",
            scenario_file("by-student"),
        )
        .await;
    assert_outcome(forbidden, 403, "forbidden").await;
    app.cleanup().await;
}

/// A scenario played into a sandbox at 60x: its changes arrive on the sandbox's feed in order,
/// each once, when the scenario clock reaches them; the clock keeps to wall time x speed;
/// pause stops it; seeking back and forth leaves what playing to that point leaves.
#[tokio::test]
async fn a_scenario_plays_into_a_sandbox_in_order_at_its_speed() {
    use futures::StreamExt;
    let app = TestApp::spawn().await;
    let teacher = instructor(&app).await;
    let imported = teacher
        .send_text(
            Method::POST,
            "/teaching/scenarios",
            scenario_file("night-play"),
        )
        .await;
    assert_eq!(imported.status(), 201);
    let sandbox = teacher
        .json(
            Method::POST,
            "/teaching/sandboxes",
            Some(
                &json!({"name": "night-lab", "class": "demo", "start": {"scenario": "night-play"}}),
            ),
            201,
        )
        .await;
    assert_eq!(sandbox["start"]["position"], 0);
    assert_eq!(sandbox["scenario"]["name"], "night-play");
    let patient: Value = teacher
        .send(Method::GET, "/sandbox/night-lab/fhir/Patient/sc-p1", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patient["name"][0]["family"], "Tanaka");
    assert_eq!(patient["birthDate"], "1950-03-04", "dates are not shifted");

    let head = app.store.head_position().await.unwrap();
    let types = [json!({"type": "subscribe", "resourceType": "Observation"})];
    let mut socket = feed(&app, "/sandbox/night-lab/ws", &teacher.token, &types, head).await;
    let started = std::time::Instant::now();
    let status = teacher
        .json(
            Method::POST,
            "/teaching/sandboxes/night-lab/play",
            Some(&json!({"speed": 60})),
            200,
        )
        .await;
    assert_eq!(status["total"], 32);

    // The clock keeps to wall time x speed (checked while the changes flow).
    let mut received: Vec<(String, String, std::time::Duration)> = Vec::new();
    let mut clock_checked = false;
    while received.len() < 32 {
        let message = tokio::time::timeout(std::time::Duration::from_secs(20), socket.next())
            .await
            .expect("the play stalled")
            .unwrap()
            .unwrap();
        let message: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        if message["type"] != "event" {
            continue;
        }
        received.push((
            message["id"].as_str().unwrap().to_owned(),
            message["kind"].as_str().unwrap().to_owned(),
            started.elapsed(),
        ));
        if received.len() == 15 && !clock_checked {
            let wall = started.elapsed().as_secs_f64();
            let status = teacher
                .json(Method::GET, "/teaching/sandboxes/night-lab/play", None, 200)
                .await;
            let wall = (wall + started.elapsed().as_secs_f64()) / 2.0;
            let clock = status["clockMs"].as_f64().unwrap();
            let expected = wall * 60_000.0;
            assert!(
                (clock - expected).abs() / expected < 0.02,
                "scenario clock {clock} ms at wall {wall:.3} s x 60 = {expected:.0} ms"
            );
            clock_checked = true;
        }
    }
    let order: Vec<&str> = received.iter().map(|(id, _, _)| id.as_str()).collect();
    let mut expected: Vec<String> = (0..30).map(|n| format!("sc-o-{n}")).collect();
    expected.insert(16, "sc-o-5".to_owned()); // the correction at 155 s, after sc-o-15
    expected.insert(22, "sc-o-6".to_owned()); // the delete at 200 s, after sc-o-20 in the file
    assert_eq!(
        order, expected,
        "in the recorded order, none twice, none missing"
    );
    assert_eq!(received[22].1, "ResourceDeleted");
    // Each change came when the clock reached it (4.83 s for the last at 290 s).
    let (_, _, last) = received.last().unwrap();
    let due = 290.0 / 60.0;
    assert!(
        (last.as_secs_f64() - due).abs() < due * 0.02 + 0.25,
        "the last change came after {last:?}, due after {due:.2} s"
    );
    let finished = teacher
        .json(Method::GET, "/teaching/sandboxes/night-lab/play", None, 200)
        .await;
    assert_eq!(finished["finished"], true);
    assert_eq!(finished["applied"], 32);

    // Seek back: the state at 100 s, exactly as playing there left it.
    let at = |offset: i64| {
        let teacher = &teacher;
        async move {
            teacher
                .json(
                    Method::POST,
                    "/teaching/sandboxes/night-lab/play",
                    Some(&json!({"speed": 1})),
                    200,
                )
                .await;
            teacher
                .json(
                    Method::POST,
                    "/teaching/sandboxes/night-lab/pause",
                    None,
                    200,
                )
                .await;
            teacher
                .json(
                    Method::POST,
                    "/teaching/sandboxes/night-lab/seek",
                    Some(&json!({"offsetMs": offset})),
                    200,
                )
                .await
        }
    };
    let status = at(100_000).await;
    let position = app.store.head_position().await.unwrap();
    assert_eq!(status["playing"], false);
    let ids = teacher
        .ids_after("/sandbox/night-lab/fhir/Observation?_count=100", position)
        .await;
    let mut expected: Vec<String> = (0..=10).map(|n| format!("sc-o-{n}")).collect();
    expected.sort();
    assert_eq!(ids, expected);
    // Paused, nothing moves.
    let before = teacher
        .json(Method::GET, "/teaching/sandboxes/night-lab/play", None, 200)
        .await;
    let again = teacher
        .json(Method::GET, "/teaching/sandboxes/night-lab/play", None, 200)
        .await;
    assert_eq!(before["clockMs"], again["clockMs"]);
    assert_eq!(before["applied"], again["applied"]);
    // Seek forward to 250 s: sc-o-5 corrected, sc-o-6 deleted, through sc-o-25.
    teacher
        .json(
            Method::POST,
            "/teaching/sandboxes/night-lab/seek",
            Some(&json!({"offsetMs": 250_000})),
            200,
        )
        .await;
    let position = app.store.head_position().await.unwrap();
    let ids = teacher
        .ids_after("/sandbox/night-lab/fhir/Observation?_count=100", position)
        .await;
    let mut expected: Vec<String> = (0..=25)
        .filter(|n| *n != 6)
        .map(|n| format!("sc-o-{n}"))
        .collect();
    expected.sort();
    assert_eq!(ids, expected);
    let corrected = teacher
        .ids_after(
            "/sandbox/night-lab/fhir/Observation?value-quantity=140",
            position,
        )
        .await;
    assert_eq!(corrected, ["sc-o-5"]);
    // The live record saw none of it.
    assert_eq!(
        teacher
            .read_after("/fhir/Observation/sc-o-1", position)
            .await
            .status(),
        404
    );
    app.cleanup().await;
}

/// A scenario recorded from the live record holds the cohort's state when the window opened
/// (with what it refers to) and the window's changes to the cohort only; played into a sandbox,
/// it leaves the cohort as the live record stood when the window closed.
#[tokio::test]
async fn a_recorded_scenario_replays_the_cohorts_window() {
    let app = TestApp::spawn().await;
    let teacher = instructor(&app).await;
    let (nurse, _) = app
        .create(&json!({"resourceType": "Practitioner", "name": [{"family": "Night"}]}))
        .await;
    let nurse_ref = format!("Practitioner/{}", nurse["id"].as_str().unwrap());
    let (cohort, _) = app.create(&patient("Cohort")).await;
    let (other, _) = app.create(&patient("Other")).await;
    let subject = |patient: &Value| format!("Patient/{}", patient["id"].as_str().unwrap());
    let observation = |patient: &Value, value: f64| {
        json!({"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
               "subject": {"reference": subject(patient)},
               "performer": [{"reference": nurse_ref}],
               "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})
    };
    let (before, from) = app.create(&observation(&cohort, 80.0)).await;
    let before_id = before["id"].as_str().unwrap().to_owned();
    // The window: a new observation (by a practitioner first met in the window), a
    // correction, an observation of someone else, a delete.
    let (day_nurse, _) = app
        .create(&json!({"resourceType": "Practitioner", "name": [{"family": "Day"}]}))
        .await;
    let mut by_day = observation(&cohort, 95.0);
    by_day["performer"] =
        json!([{"reference": format!("Practitioner/{}", day_nurse["id"].as_str().unwrap())}]);
    let (added, _) = app.create(&by_day).await;
    let mut corrected = before.clone();
    corrected["valueQuantity"]["value"] = json!(82.0);
    let response = app
        .send_fhir(
            Method::PUT,
            &format!("/fhir/Observation/{before_id}"),
            &corrected,
        )
        .await;
    assert_eq!(response.status(), 200);
    app.create(&observation(&other, 60.0)).await;
    let response = app
        .request(
            Method::DELETE,
            &format!("/fhir/Observation/{}", added["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let (_, to) = app.create(&observation(&cohort, 101.0)).await;

    let recorded = teacher
        .json(
            Method::POST,
            "/teaching/scenarios/record",
            Some(&json!({"name": "recorded-night", "title": "Recorded",
                         "patients": [cohort["id"]],
                         "from": {"position": from}, "to": {"position": to}})),
            201,
        )
        .await;
    assert_eq!(recorded["version"], 1);
    // The cohort's patient, its observation and the practitioners they and the window's
    // changes refer to; four changes of the cohort in the window (the other patient's is not
    // one of them).
    assert_eq!(recorded["counts"], json!({"start": 4, "events": 4}));
    let file = teacher
        .send(Method::GET, "/teaching/scenarios/recorded-night", None)
        .await
        .text()
        .await
        .unwrap();
    let starts: Vec<String> = file
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["type"] == "start")
        .map(|line| {
            line["resource"]["resourceType"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut starts_sorted = starts.clone();
    starts_sorted.sort();
    assert_eq!(
        starts_sorted,
        ["Observation", "Patient", "Practitioner", "Practitioner"]
    );
    let again = teacher
        .json(
            Method::POST,
            "/teaching/scenarios/record",
            Some(
                &json!({"name": "recorded-night", "patients": [cohort["id"]],
                         "from": {"position": from}}),
            ),
            201,
        )
        .await;
    assert_eq!(
        again["version"], 2,
        "a second recording is the next version"
    );
    // From the very start (position 0, before any event): the window opens at the first event.
    let whole = teacher
        .json(
            Method::POST,
            "/teaching/scenarios/record",
            Some(
                &json!({"name": "recorded-whole", "patients": [cohort["id"]],
                         "from": {"position": 0}, "to": {"position": to}}),
            ),
            201,
        )
        .await;
    assert!(whole["durationMs"].as_i64().unwrap() > 0, "{whole}");
    // Nothing existed at 0: the starting state is what the window's changes refer to and
    // no change of the cohort writes (the two practitioners).
    assert_eq!(whole["counts"]["start"], 2);

    teacher
        .json(
            Method::POST,
            "/teaching/sandboxes",
            Some(
                &json!({"name": "replayed", "start": {"scenario": "recorded-night", "version": 1}}),
            ),
            201,
        )
        .await;
    teacher
        .json(
            Method::POST,
            "/teaching/sandboxes/replayed/play",
            Some(&json!({"speed": 3600})),
            200,
        )
        .await;
    let status = test_support::eventually(
        "the play to finish",
        std::time::Duration::from_secs(30),
        || async {
            let status = teacher
                .json(Method::GET, "/teaching/sandboxes/replayed/play", None, 200)
                .await;
            (status["finished"] == true).then_some(status)
        },
    )
    .await;
    assert_eq!(status["applied"], 4);
    assert_eq!(status["error"], Value::Null);
    let values = |bundle: Value| -> Vec<(String, f64)> {
        let mut values: Vec<(String, f64)> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                (
                    entry["resource"]["id"].as_str().unwrap().to_owned(),
                    entry["resource"]["valueQuantity"]["value"]
                        .as_f64()
                        .unwrap(),
                )
            })
            .collect();
        values.sort_by(|a, b| a.0.cmp(&b.0));
        values
    };
    let head = app.store.head_position().await.unwrap();
    let query = format!("Observation?subject={}", subject(&cohort));
    let then: Value = teacher
        .read_after(&format!("/fhir/_asof/{to}/{query}"), head)
        .await
        .json()
        .await
        .unwrap();
    let replayed: Value = teacher
        .read_after(&format!("/sandbox/replayed/fhir/{query}"), head)
        .await
        .json()
        .await
        .unwrap();
    let expected = values(then);
    assert_eq!(expected.len(), 2);
    assert_eq!(values(replayed), expected);
    app.cleanup().await;
}

/// A scenario recorded from a sandbox holds what was written there, not what the live record
/// did meanwhile.
#[tokio::test]
async fn a_scenario_is_recorded_from_a_sandbox() {
    let app = TestApp::spawn().await;
    let teacher = instructor(&app).await;
    let (cohort, fork) = app.create(&patient("Practised")).await;
    let subject = format!("Patient/{}", cohort["id"].as_str().unwrap());
    let created = teacher
        .json(
            Method::POST,
            "/teaching/sandboxes",
            Some(&json!({"name": "practice", "class": "demo"})),
            201,
        )
        .await;
    assert_eq!(created["start"]["position"], fork);
    let pulse = |value: f64| {
        json!({"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
               "subject": {"reference": subject},
               "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})
    };
    let response = teacher
        .send(
            Method::POST,
            "/sandbox/practice/fhir/Observation",
            Some(&pulse(118.0)),
        )
        .await;
    assert_eq!(response.status(), 201);
    let mut written: Value = response.json().await.unwrap();
    written["valueQuantity"]["value"] = json!(124.0);
    let id = written["id"].as_str().unwrap().to_owned();
    let response = teacher
        .send(
            Method::PUT,
            &format!("/sandbox/practice/fhir/Observation/{id}"),
            Some(&written),
        )
        .await;
    assert_eq!(response.status(), 200);
    // Meanwhile, in the live record.
    app.create(&pulse(70.0)).await;

    let recorded = teacher
        .json(
            Method::POST,
            "/teaching/scenarios/record",
            Some(&json!({"name": "from-practice", "sandbox": "practice",
                         "patients": [cohort["id"]], "from": {"position": fork}})),
            201,
        )
        .await;
    assert_eq!(recorded["counts"], json!({"start": 1, "events": 2}));
    assert!(
        recorded["source"]
            .as_str()
            .unwrap()
            .starts_with("the sandbox practice"),
        "{recorded}"
    );
    let file = teacher
        .send(Method::GET, "/teaching/scenarios/from-practice", None)
        .await
        .text()
        .await
        .unwrap();
    let values: Vec<f64> = file
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["type"] == "event")
        .map(|line| line["resource"]["valueQuantity"]["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [118.0, 124.0]);
    let unknown = teacher
        .send(
            Method::POST,
            "/teaching/scenarios/record",
            Some(&json!({"name": "nowhere", "sandbox": "no-such",
                         "patients": [cohort["id"]], "from": {"position": fork}})),
        )
        .await;
    assert_outcome(unknown, 404, "not-found").await;
    app.cleanup().await;
}

/// Changes written side by side are stamped a few milliseconds out of the record's order; a
/// recording keeps the record's order with offsets that never go back, so it plays.
#[tokio::test]
async fn a_recording_of_concurrent_writes_plays() {
    use futures::StreamExt;
    let app = TestApp::spawn().await;
    let teacher = instructor(&app).await;
    let (cohort, from) = app.create(&patient("Busy")).await;
    let subject = format!("Patient/{}", cohort["id"].as_str().unwrap());
    let positions: Vec<i64> = futures::stream::iter(0..60)
        .map(|n| {
            let app = &app;
            let body = json!({"resourceType": "Observation", "status": "final",
                "code": {"text": format!("check {n}")}, "subject": {"reference": subject}});
            async move { app.create(&body).await.1 }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let to = positions.into_iter().max().unwrap();
    let recorded = teacher
        .json(
            Method::POST,
            "/teaching/scenarios/record",
            Some(&json!({"name": "busy", "patients": [cohort["id"]],
                         "from": {"position": from}, "to": {"position": to}})),
            201,
        )
        .await;
    assert_eq!(recorded["counts"]["events"], 60);
    teacher
        .json(
            Method::POST,
            "/teaching/sandboxes",
            Some(&json!({"name": "busy-lab", "start": {"scenario": "busy"}})),
            201,
        )
        .await;
    app.cleanup().await;
}
