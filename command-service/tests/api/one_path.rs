//! One write path: every write case of the REST suites, sent as a REST request to one service
//! and as a one-entry transaction Bundle to another with the same history, must answer the
//! same status and `OperationOutcome` code and store the same events.
//!
//! Each case gets fresh resources of its own (ids `c<n>-...`, put by id, so both services hold
//! the same ids): `one` (identifier `one`), two `twin`s (identifier `twin`), `other`
//! (identifier `other`) and `gone` (deleted).

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const SYSTEM: &str = "http://hospital.test/mrn";

/// One write, written with `@` where the case's id prefix goes.
struct Case {
    name: &'static str,
    method: Method,
    url: &'static str,
    body: Option<Value>,
    if_match: Option<&'static str>,
    if_none_exist: Option<&'static str>,
    /// The status both must answer (so the test says what each case means, not only that the
    /// two agree).
    status: u16,
}

fn case(name: &'static str, method: Method, url: &'static str, status: u16) -> Case {
    Case {
        name,
        method,
        url,
        body: None,
        if_match: None,
        if_none_exist: None,
        status,
    }
}

impl Case {
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    fn if_match(mut self, tag: &'static str) -> Self {
        self.if_match = Some(tag);
        self
    }
    fn if_none_exist(mut self, criteria: &'static str) -> Self {
        self.if_none_exist = Some(criteria);
        self
    }
}

fn patient(id: Option<&str>, mrn: &str, family: &str) -> Value {
    let mut patient = json!({
        "resourceType": "Patient",
        "identifier": [{"system": SYSTEM, "value": mrn}],
        "name": [{"family": family}],
    });
    if let Some(id) = id {
        patient["id"] = json!(id);
    }
    patient
}

fn observation(subject: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
        "subject": {"reference": subject}})
}

fn add_gender() -> Value {
    json!([{"op": "add", "path": "/gender", "value": "female"}])
}

fn cases() -> Vec<Case> {
    use Method as M;
    vec![
        // Create.
        case("create", M::POST, "Patient", 201).body(patient(None, "@new", "New")),
        case("create ignores the body's id", M::POST, "Patient", 201).body(patient(
            Some("@mine"),
            "@new",
            "New",
        )),
        case("create of another type's body", M::POST, "Patient", 400)
            .body(observation("Patient/@one")),
        case("create of an invalid resource", M::POST, "Patient", 400)
            .body(json!({"resourceType": "Patient", "gender": 5})),
        case("create of a JSON array", M::POST, "Patient", 400).body(json!([1])),
        case("create of an unknown type", M::POST, "Spaceship", 404)
            .body(json!({"resourceType": "Spaceship"})),
        case(
            "create with a dangling reference",
            M::POST,
            "Observation",
            400,
        )
        .body(observation("Patient/@nobody")),
        case("create with a reference", M::POST, "Observation", 201)
            .body(observation("Patient/@one")),
        case(
            "create with a malformed reference",
            M::POST,
            "Observation",
            400,
        )
        .body(observation("Patient/a/b")),
        // Update.
        case("update", M::PUT, "Patient/@one", 200).body(patient(Some("@one"), "@one", "Changed")),
        case("update without an id", M::PUT, "Patient/@one", 400)
            .body(patient(None, "@one", "Changed")),
        case("update with another id", M::PUT, "Patient/@one", 400).body(patient(
            Some("@other"),
            "@one",
            "Changed",
        )),
        case("update that changes nothing", M::PUT, "Patient/@one", 200).body(patient(
            Some("@one"),
            "@one",
            "One",
        )),
        case("create on update", M::PUT, "Patient/@new", 201).body(patient(
            Some("@new"),
            "@new",
            "New",
        )),
        case("update of a deleted resource", M::PUT, "Patient/@gone", 201).body(patient(
            Some("@gone"),
            "@gone",
            "Back",
        )),
        case(
            "update with the current version",
            M::PUT,
            "Patient/@one",
            200,
        )
        .body(patient(Some("@one"), "@one", "Changed"))
        .if_match("W/\"1\""),
        case("update with a stale version", M::PUT, "Patient/@one", 412)
            .body(patient(Some("@one"), "@one", "Changed"))
            .if_match("W/\"7\""),
        case("update of an unknown type", M::PUT, "Spaceship/@one", 404)
            .body(json!({"resourceType": "Spaceship", "id": "@one"})),
        case(
            "update with a dangling reference",
            M::PUT,
            "Observation/@obs",
            400,
        )
        .body(
            json!({"resourceType": "Observation", "id": "@obs", "status": "final",
                "code": {"text": "x"}, "subject": {"reference": "Patient/@nobody"}}),
        ),
        // Conditional create.
        case("conditional create, no match", M::POST, "Patient", 201)
            .body(patient(None, "@nothing", "New"))
            .if_none_exist("identifier=http://hospital.test/mrn|@nothing"),
        case("conditional create, one match", M::POST, "Patient", 200)
            .body(patient(None, "@one", "Again"))
            .if_none_exist("identifier=http://hospital.test/mrn|@one"),
        case(
            "conditional create, several matches",
            M::POST,
            "Patient",
            412,
        )
        .body(patient(None, "@twin", "Third"))
        .if_none_exist("identifier=http://hospital.test/mrn|@twin"),
        case(
            "conditional create, unknown parameter",
            M::POST,
            "Patient",
            400,
        )
        .body(patient(None, "@x", "X"))
        .if_none_exist("no-such-parameter=1"),
        // Conditional update.
        case(
            "conditional update, no match",
            M::PUT,
            "Patient?identifier=http://hospital.test/mrn|@nothing",
            201,
        )
        .body(patient(None, "@nothing", "New")),
        case(
            "conditional update, no match, a new id",
            M::PUT,
            "Patient?identifier=http://hospital.test/mrn|@nothing",
            201,
        )
        .body(patient(Some("@fresh"), "@nothing", "New")),
        case(
            "conditional update, no match, the id of another resource",
            M::PUT,
            "Patient?identifier=http://hospital.test/mrn|@nothing",
            400,
        )
        .body(patient(Some("@other"), "@nothing", "Overwritten")),
        case(
            "conditional update, one match",
            M::PUT,
            "Patient?identifier=http://hospital.test/mrn|@one",
            200,
        )
        .body(patient(None, "@one", "Changed")),
        case(
            "conditional update, one match, another id",
            M::PUT,
            "Patient?identifier=http://hospital.test/mrn|@one",
            400,
        )
        .body(patient(Some("@other"), "@one", "Changed")),
        case(
            "conditional update, several matches",
            M::PUT,
            "Patient?identifier=http://hospital.test/mrn|@twin",
            412,
        )
        .body(patient(None, "@twin", "Changed")),
        case(
            "conditional update, stale version",
            M::PUT,
            "Patient?identifier=http://hospital.test/mrn|@one",
            412,
        )
        .body(patient(None, "@one", "Changed"))
        .if_match("W/\"3\""),
        // Patch.
        case("patch", M::PATCH, "Patient/@one", 200).body(add_gender()),
        case("patch with a stale version", M::PATCH, "Patient/@one", 412)
            .body(add_gender())
            .if_match("W/\"4\""),
        case(
            "patch that is not a JSON Patch",
            M::PATCH,
            "Patient/@one",
            400,
        )
        .body(json!({"op": "replace"})),
        case("patch whose test fails", M::PATCH, "Patient/@one", 422)
            .body(json!([{"op": "test", "path": "/gender", "value": "unknown"}])),
        case(
            "patch of a missing resource",
            M::PATCH,
            "Patient/@nobody",
            404,
        )
        .body(add_gender()),
        case(
            "patch to a dangling reference",
            M::PATCH,
            "Patient/@one",
            400,
        )
        .body(json!([{"op": "add", "path": "/managingOrganization",
                "value": {"reference": "Organization/@nobody"}}])),
        case(
            "conditional patch, no match",
            M::PATCH,
            "Patient?identifier=http://hospital.test/mrn|@nothing",
            404,
        )
        .body(add_gender()),
        case(
            "conditional patch, one match",
            M::PATCH,
            "Patient?identifier=http://hospital.test/mrn|@one",
            200,
        )
        .body(add_gender()),
        case(
            "conditional patch, several matches",
            M::PATCH,
            "Patient?identifier=http://hospital.test/mrn|@twin",
            412,
        )
        .body(add_gender()),
        // Delete.
        case("delete", M::DELETE, "Patient/@one", 200),
        case(
            "delete of a deleted resource",
            M::DELETE,
            "Patient/@gone",
            200,
        ),
        case(
            "delete of a missing resource",
            M::DELETE,
            "Patient/@nobody",
            404,
        ),
        case(
            "delete with a stale version",
            M::DELETE,
            "Patient/@one",
            412,
        )
        .if_match("W/\"9\""),
        case(
            "delete of an unknown type",
            M::DELETE,
            "Spaceship/@one",
            404,
        ),
        case(
            "conditional delete, no match",
            M::DELETE,
            "Patient?identifier=http://hospital.test/mrn|@nothing",
            200,
        ),
        case(
            "conditional delete, one match",
            M::DELETE,
            "Patient?identifier=http://hospital.test/mrn|@one",
            200,
        ),
        case(
            "conditional delete, several matches",
            M::DELETE,
            "Patient?identifier=http://hospital.test/mrn|@twin",
            412,
        ),
    ]
}

/// What a request did: its status, the first issue's code when it failed, and the events it
/// stored (type, id, version, kind, resource without `meta`; server-assigned ids as `<new>`).
#[derive(Debug, PartialEq)]
struct Observed {
    status: u16,
    code: Option<String>,
    events: Vec<(String, String, i32, String, Value)>,
}

async fn fixtures(app: &TestApp, prefix: &str) {
    for (id, mrn, family) in [
        ("one", "one", "One"),
        ("twin-a", "twin", "Twin"),
        ("twin-b", "twin", "Twin"),
        ("other", "other", "Other"),
        ("gone", "gone", "Gone"),
    ] {
        let id = format!("{prefix}{id}");
        let response = app
            .update(&patient(Some(&id), &format!("{prefix}{mrn}"), family), None)
            .await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
    let gone = app.delete(&format!("Patient/{prefix}gone")).await;
    assert_eq!(gone.status(), 200);
}

async fn last_event(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(event_id), 0) FROM fhir_event")
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

async fn events_after(
    app: &TestApp,
    after: i64,
    prefix: &str,
) -> Vec<(String, String, i32, String, Value)> {
    let rows: Vec<(String, String, i32, String, String)> = sqlx::query_as(
        "SELECT resource_type, resource_id, version, kind, resource::text FROM fhir_event \
         WHERE event_id > $1 ORDER BY event_id",
    )
    .bind(after)
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(resource_type, id, version, kind, resource)| {
            let mut resource: Value = serde_json::from_str(&resource).unwrap();
            let id = if id.starts_with(prefix) {
                id
            } else {
                "<new>".to_owned()
            };
            if let Some(object) = resource.as_object_mut() {
                object.remove("meta");
                object.insert("id".to_owned(), json!(id));
            }
            (resource_type, id, version, kind, resource)
        })
        .collect()
}

fn filled(text: &str, prefix: &str) -> String {
    text.replace('@', prefix)
}

fn filled_json(value: &Value, prefix: &str) -> Value {
    serde_json::from_str(&filled(&value.to_string(), prefix)).unwrap()
}

async fn as_rest(app: &TestApp, case: &Case, prefix: &str) -> (u16, Value) {
    let mut request = app.client.request(
        case.method.clone(),
        format!("{}/{}", app.writes, filled(case.url, prefix)),
    );
    if let Some(body) = &case.body {
        let media_type = if case.method == Method::PATCH {
            "application/json-patch+json"
        } else {
            "application/fhir+json"
        };
        request = request
            .header("content-type", media_type)
            .body(filled_json(body, prefix).to_string());
    }
    if let Some(tag) = case.if_match {
        request = request.header("if-match", tag);
    }
    if let Some(criteria) = case.if_none_exist {
        request = request.header("if-none-exist", filled(criteria, prefix));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn as_bundle(app: &TestApp, case: &Case, prefix: &str) -> (u16, Value) {
    let mut request = json!({"method": case.method.as_str(), "url": filled(case.url, prefix)});
    if let Some(tag) = case.if_match {
        request["ifMatch"] = json!(tag);
    }
    if let Some(criteria) = case.if_none_exist {
        request["ifNoneExist"] = json!(filled(criteria, prefix));
    }
    let mut entry = json!({"request": request});
    if let Some(body) = &case.body {
        let body = filled_json(body, prefix);
        entry["resource"] = if case.method == Method::PATCH {
            let data = base64::engine::general_purpose::STANDARD.encode(body.to_string());
            json!({"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data})
        } else {
            body
        };
    }
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [entry]});
    let response = app
        .write_request(Method::POST, "", Some(&bundle))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    if status != 200 {
        return (status, body);
    }
    // The transaction went through: the entry's own status and outcome are the answer.
    let answer = &body["entry"][0]["response"];
    let entry_status = answer["status"].as_str().unwrap()[..3].parse().unwrap();
    (entry_status, answer["outcome"].clone())
}

/// The first issue's code of a failure's `OperationOutcome`.
fn failure_code(status: u16, body: &Value) -> Option<String> {
    (status >= 400).then(|| {
        assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
        body["issue"][0]["code"].as_str().unwrap().to_owned()
    })
}

#[tokio::test]
async fn rest_requests_and_one_entry_transactions_obey_the_same_rules() {
    let rest = TestApp::spawn_with_args(&["--conditional-wait-ms", "60000"]).await;
    let bundled = TestApp::spawn_with_args(&["--conditional-wait-ms", "60000"]).await;
    rest.start_projection().await;
    bundled.start_projection().await;
    let mut disagreements = Vec::new();
    for (n, case) in cases().iter().enumerate() {
        let prefix = format!("c{n}-");
        fixtures(&rest, &prefix).await;
        fixtures(&bundled, &prefix).await;
        let (rest_before, bundled_before) = (last_event(&rest).await, last_event(&bundled).await);

        let (status, rest_body) = as_rest(&rest, case, &prefix).await;
        let by_rest = Observed {
            status,
            code: failure_code(status, &rest_body),
            events: events_after(&rest, rest_before, &prefix).await,
        };
        let (status, body) = as_bundle(&bundled, case, &prefix).await;
        let by_bundle = Observed {
            status,
            code: failure_code(status, &body),
            events: events_after(&bundled, bundled_before, &prefix).await,
        };

        if by_rest.status != case.status {
            disagreements.push(format!(
                "{}: over REST {} where {} was expected: {rest_body}",
                case.name, by_rest.status, case.status
            ));
        }
        if by_rest.status >= 400 {
            assert!(
                by_rest.events.is_empty(),
                "{}: a failure wrote {:?}",
                case.name,
                by_rest.events
            );
        }
        if by_rest != by_bundle {
            disagreements.push(format!(
                "{}:\n  REST   {by_rest:?}\n  Bundle {by_bundle:?}",
                case.name
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    rest.cleanup().await;
    bundled.cleanup().await;
}
