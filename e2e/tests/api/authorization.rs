//! Who may do what, end to end through the edge: every role against every interaction on a
//! sample of resource types, each cell's status written out here (not computed from the
//! policy, so that a change to the policy shows up as a failing cell); and a token bound to one
//! patient tried against another patient's record by every route that could show it.
//!
//! Tokens come from the identity service the way a client gets them: the authorization-code
//! flow with PKCE for people, `client_credentials` with a signed assertion for the seed data.

use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::TestApp;

const ROLES: [&str; 6] = [
    "student",
    "nurse",
    "physician",
    "pharmacist",
    "instructor",
    "admin",
];

/// The sample of types, and who writes each (the policy table in `docs/access-policy.md`).
const WRITERS: [(&str, &[&str]); 5] = [
    ("Observation", &["nurse", "physician", "admin"]),
    ("Condition", &["physician", "admin"]),
    ("MedicationRequest", &["physician", "pharmacist", "admin"]),
    ("MedicationDispense", &["pharmacist", "admin"]),
    ("Patient", &["admin"]),
];

fn resource(resource_type: &str, patient: &str) -> Value {
    let subject = json!({"reference": format!("Patient/{patient}")});
    match resource_type {
        "Observation" => json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": subject, "valueQuantity": {"value": 72, "unit": "/min"}}),
        "Condition" => json!({"resourceType": "Condition",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
            "subject": subject}),
        "MedicationRequest" => json!({"resourceType": "MedicationRequest", "status": "active",
            "intent": "order", "medicationCodeableConcept": {"text": "paracetamol"},
            "subject": subject}),
        "MedicationDispense" => json!({"resourceType": "MedicationDispense",
            "status": "completed", "medicationCodeableConcept": {"text": "paracetamol"},
            "subject": subject}),
        "Patient" => json!({"resourceType": "Patient", "name": [{"family": "Matrix"}]}),
        other => panic!("no sample {other}"),
    }
}

/// `method path` with `token` (and a FHIR body); the status.
async fn status(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> u16 {
    let mut request = app.request(method, path).bearer_auth(token);
    if let Some(body) = body {
        let content_type = if body.is_array() {
            "application/json-patch+json"
        } else {
            "application/fhir+json"
        };
        request = request
            .header("content-type", content_type)
            .body(body.to_string());
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn every_role_against_every_interaction() {
    let app = TestApp::spawn().await;
    let admin = app.system_token().await;
    let (patient, _) = app
        .create_as(
            &admin,
            &json!({"resourceType": "Patient", "name": [{"family": "Grid"}]}),
        )
        .await;
    let patient = patient["id"].as_str().unwrap().to_owned();

    for role in ROLES {
        let token = app
            .user_token(role, "openid fhirUser user/*.cruds", None)
            .await;
        for (resource_type, writers) in WRITERS {
            let writes = writers.contains(&role);
            let write = |ok: u16| if writes { ok } else { 403 };
            let cell = |interaction: &str| format!("{role} × {interaction} {resource_type}");
            // What each role works on: one resource per cell, made by the admin client.
            let (existing, _) = app
                .create_as(&admin, &resource(resource_type, &patient))
                .await;
            let id = existing["id"].as_str().unwrap();
            let path = format!("/fhir/{resource_type}/{id}");

            let created = status(
                &app,
                &token,
                Method::POST,
                &format!("/fhir/{resource_type}"),
                Some(&resource(resource_type, &patient)),
            )
            .await;
            assert_eq!(created, write(201), "{}", cell("create"));
            assert_eq!(
                status(&app, &token, Method::GET, &path, None).await,
                200,
                "{}",
                cell("read")
            );
            assert_eq!(
                status(
                    &app,
                    &token,
                    Method::GET,
                    &format!("{path}/_history/1"),
                    None
                )
                .await,
                200,
                "{}",
                cell("vread")
            );
            assert_eq!(
                status(&app, &token, Method::GET, &format!("{path}/_history"), None).await,
                200,
                "{}",
                cell("history")
            );
            assert_eq!(
                status(
                    &app,
                    &token,
                    Method::GET,
                    &format!("/fhir/{resource_type}?_id={id}"),
                    None
                )
                .await,
                200,
                "{}",
                cell("search")
            );
            let mut updated = existing.clone();
            updated["meta"] =
                json!({"tag": [{"system": "http://wardline.example/test", "code": "grid"}]});
            assert_eq!(
                status(&app, &token, Method::PUT, &path, Some(&updated)).await,
                write(200),
                "{}",
                cell("update")
            );
            let patch = json!([{"op": "add", "path": "/language", "value": "en"}]);
            assert_eq!(
                status(&app, &token, Method::PATCH, &path, Some(&patch)).await,
                write(200),
                "{}",
                cell("patch")
            );
            let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": resource(resource_type, &patient),
                 "request": {"method": "POST", "url": resource_type}}]});
            assert_eq!(
                status(&app, &token, Method::POST, "/fhir", Some(&bundle)).await,
                write(200),
                "{}",
                cell("transaction")
            );
            assert_eq!(
                status(&app, &token, Method::DELETE, &path, None).await,
                write(200),
                "{}",
                cell("delete")
            );
        }
        // Audit records: instructors and admins only.
        let audit = status(&app, &token, Method::GET, "/fhir/AuditEvent", None).await;
        let readers = ["instructor", "admin"];
        assert_eq!(
            audit,
            if readers.contains(&role) { 200 } else { 403 },
            "{role} × search AuditEvent"
        );
        // Every role may follow a ward live.
        let reply = subscribe(
            &app,
            &token,
            json!({"type": "subscribe", "resourceType": "Observation"}),
        )
        .await;
        assert_eq!(reply["type"], "subscribed", "{role} × subscribe: {reply}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn without_a_token_nothing_clinical_answers_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let events = app.event_count().await;
    // A client without the harness's backend token.
    let anonymous = reqwest::Client::new();
    for (method, path, body) in [
        (Method::GET, "/fhir/Patient", None),
        (Method::GET, "/fhir/Patient/x", None),
        (
            Method::POST,
            "/fhir/Patient",
            Some(json!({"resourceType": "Patient"})),
        ),
        (
            Method::POST,
            "/fhir",
            Some(json!({"resourceType": "Bundle", "type": "transaction", "entry": []})),
        ),
    ] {
        let mut request = anonymous.request(method.clone(), app.url(path));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/fhir+json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
        let challenge = crate::helpers::header(&response, "www-authenticate")
            .unwrap_or_default()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer"),
            "{method} {path}: {challenge}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["resourceType"], "OperationOutcome");
        assert_eq!(body["issue"][0]["code"], "login");
    }
    // The CapabilityStatement stays public (clients read it to find how to sign in).
    let metadata = anonymous
        .get(app.url("/fhir/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
    let statement: Value = metadata.json().await.unwrap();
    assert_eq!(
        statement["rest"][0]["security"]["service"][0]["coding"][0]["code"],
        "SMART-on-FHIR"
    );
    // A WebSocket without a token is refused before the upgrade.
    let url = format!("ws://127.0.0.1:{}/ws", app.edge.port);
    let refused = tokio_tungstenite::connect_async(&url).await;
    assert!(refused.is_err(), "a WebSocket opened without a token");
    assert_eq!(app.event_count().await, events);
    app.cleanup().await;
}

/// A WebSocket opened with `token` (as browsers do, in the query), `message` sent; the reply.
async fn subscribe(app: &TestApp, token: &str, message: Value) -> Value {
    let url = format!("ws://127.0.0.1:{}/ws?access_token={token}", app.edge.port);
    let request = url.into_client_request().unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
    let reply = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
        .await
        .expect("no reply")
        .unwrap()
        .unwrap();
    serde_json::from_str(reply.to_text().unwrap()).unwrap()
}

/// Entries of a search Bundle, as `Type/id`.
fn listed(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|entry| {
            format!(
                "{}/{}",
                entry["resource"]["resourceType"]
                    .as_str()
                    .unwrap_or_default(),
                entry["resource"]["id"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_patient_bound_token_sees_one_patient_by_every_route() {
    let app = TestApp::spawn().await;
    let admin = app.system_token().await;
    let mut ids = Vec::new();
    let mut observations = Vec::new();
    for family in ["Mine", "Theirs"] {
        let (patient, _) = app
            .create_as(
                &admin,
                &json!({"resourceType": "Patient", "name": [{"family": family}]}),
            )
            .await;
        let id = patient["id"].as_str().unwrap().to_owned();
        let (observation, position) = app.create_as(&admin, &resource("Observation", &id)).await;
        observations.push(observation["id"].as_str().unwrap().to_owned());
        ids.push(id);
        app.wait_for_projections(position).await;
    }
    let (mine, theirs) = (&ids[0], &ids[1]);
    let (my_obs, their_obs) = (&observations[0], &observations[1]);
    let token = app
        .user_token(
            "physician",
            "openid fhirUser launch/patient patient/*.rs",
            Some(mine),
        )
        .await;
    let get = |path: String| {
        let app = &app;
        let token = token.clone();
        async move {
            let response = app
                .request(Method::GET, &path)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or_default();
            (status, body)
        }
    };

    assert_eq!(get(format!("/fhir/Observation/{my_obs}")).await.0, 200);
    assert_eq!(
        get(format!("/fhir/Observation/{their_obs}")).await.0,
        404,
        "read"
    );
    assert_eq!(
        get(format!("/fhir/Observation/{their_obs}/_history/1"))
            .await
            .0,
        404,
        "vread"
    );
    assert_eq!(
        get(format!("/fhir/Observation/{their_obs}/_history"))
            .await
            .0,
        404,
        "history"
    );
    assert_eq!(
        get(format!("/fhir/Patient/{theirs}")).await.0,
        404,
        "read patient"
    );
    assert_eq!(
        get("/fhir/Observation/_history".to_owned()).await.0,
        403,
        "type history"
    );

    let (status, bundle) = get("/fhir/Observation?_total=accurate".to_owned()).await;
    assert_eq!(status, 200);
    assert_eq!(
        listed(&bundle),
        vec![format!("Observation/{my_obs}")],
        "search"
    );
    assert_eq!(
        bundle["total"], 1,
        "total counts only what the token may see"
    );

    let (_, bundle) = get("/fhir/Observation?_include=Observation:subject".to_owned()).await;
    assert!(
        !listed(&bundle).contains(&format!("Patient/{theirs}")),
        "_include: {bundle}"
    );
    let (_, bundle) = get("/fhir/Patient?_revinclude=Observation:subject".to_owned()).await;
    let seen = listed(&bundle);
    assert!(
        !seen
            .iter()
            .any(|entry| entry.ends_with(theirs) || entry.ends_with(their_obs)),
        "_revinclude: {seen:?}"
    );
    let (_, bundle) = get("/fhir/Observation?subject.name=Theirs".to_owned()).await;
    assert!(listed(&bundle).is_empty(), "chain: {bundle}");
    let (_, bundle) = get("/fhir/Patient?_has:Observation:subject:code=8867-4".to_owned()).await;
    assert_eq!(listed(&bundle), vec![format!("Patient/{mine}")], "_has");
    assert_eq!(
        get(format!("/fhir/Patient/{theirs}/$everything")).await.0,
        403,
        "$everything"
    );
    let (status, bundle) = get(format!("/fhir/Patient/{mine}/$everything")).await;
    assert_eq!(status, 200);
    assert!(
        !listed(&bundle)
            .iter()
            .any(|entry| entry.ends_with(theirs) || entry.ends_with(their_obs)),
        "{bundle}"
    );
    assert_eq!(
        get(format!("/fhir/Patient/{theirs}/Observation")).await.0,
        403,
        "compartment"
    );
    let (_, bundle) = get("/fhir?_type=Observation,Patient".to_owned()).await;
    let seen = listed(&bundle);
    assert!(
        !seen
            .iter()
            .any(|entry| entry.ends_with(theirs) || entry.ends_with(their_obs)),
        "system search: {seen:?}"
    );

    // Bundles cannot reach further than single requests.
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Observation/{their_obs}")}}]});
    let response = app
        .request(Method::POST, "/fhir")
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert!(
        !body.to_string().contains("8867-4"),
        "a batch read showed their data: {body}"
    );

    // Live: another patient's feed, or a whole type, is refused.
    for topic in [
        json!({"type": "subscribe", "patient": theirs}),
        json!({"type": "subscribe", "resourceType": "Observation"}),
    ] {
        let reply = subscribe(&app, &token, topic.clone()).await;
        assert_eq!(reply["type"], "error", "{topic}: {reply}");
    }
    let reply = subscribe(&app, &token, json!({"type": "subscribe", "patient": mine})).await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    app.cleanup().await;
}
