//! Each kind of bad input: the right status, an OperationOutcome that says what is wrong, and
//! nothing written.

use serde_json::json;

use crate::helpers::{TestApp, assert_outcome, patient};

struct Case {
    name: &'static str,
    method: reqwest::Method,
    path: String,
    content_type: Option<&'static str>,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    status: u16,
    /// Text the diagnostics or an expression must contain.
    mentions: &'static str,
}

fn case(
    name: &'static str,
    method: reqwest::Method,
    path: &str,
    body: impl Into<Vec<u8>>,
    status: u16,
    mentions: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        content_type: Some("application/fhir+json"),
        headers: Vec::new(),
        body: body.into(),
        status,
        mentions,
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_an_outcome_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let existing = app.create_ok(&patient("Existing")).await;
    let events_before = app.event_count().await;
    let valid = patient("Valid").to_string();
    use reqwest::Method as M;

    let mut cases = vec![
        case("malformed JSON", M::POST, "Patient", "{\"resourceType\": \"Patient\",", 400, "JSON"),
        case("empty body", M::POST, "Patient", "", 400, "no body"),
        case("not an object", M::POST, "Patient", "[1, 2, 3]", 400, "JSON object"),
        case("no resourceType", M::POST, "Patient", r#"{"name": []}"#, 400, "resourceType"),
        case("type differs from URL", M::POST, "Patient", r#"{"resourceType": "Observation"}"#, 400, "Observation"),
        case("unknown type in URL", M::POST, "Spaceship", valid.clone(), 404, "Spaceship"),
        case(
            "wrong type of a value",
            M::POST,
            "Patient",
            json!({"resourceType": "Patient", "active": "yes"}).to_string(),
            400,
            "Patient.active",
        ),
        case(
            "invalid date",
            M::POST,
            "Patient",
            json!({"resourceType": "Patient", "birthDate": "3 Feb 1970"}).to_string(),
            400,
            "Patient.birthDate",
        ),
        case(
            "unknown element",
            M::POST,
            "Patient",
            json!({"resourceType": "Patient", "shoeSize": 42}).to_string(),
            400,
            "shoeSize",
        ),
        case(
            "invalid code",
            M::POST,
            "Patient",
            json!({"resourceType": "Patient", "gender": "f e m a l e"}).to_string(),
            400,
            "Patient.gender",
        ),
        case(
            "invalid reference type",
            M::POST,
            "Observation",
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": 12}}).to_string(),
            400,
            "Observation.subject.reference",
        ),
        case(
            "non-objects where a complex type is expected",
            M::POST,
            "Patient",
            r#"{"resourceType": "Patient", "name": [5, "x", [1, [2]], true]}"#,
            400,
            "Patient.name[2]",
        ),
        case(
            "a decimal the indexes cannot hold",
            M::POST,
            "Observation",
            r#"{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": 1e999999999}}"#,
            400,
            "Observation.valueQuantity.value",
        ),
        case("invalid id in URL", M::PUT, "Patient/not_valid!", valid.clone(), 400, "not a valid FHIR id"),
        case("deep nesting", M::POST, "Patient", format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)), 400, "JSON"),
        case("body over the limit", M::POST, "Patient", vec![b' '; 2 * 1024 * 1024], 413, "limit"),
        case("searchset bundle", M::POST, "", json!({"resourceType": "Bundle", "type": "searchset"}).to_string(), 400, "transaction or batch"),
        case("conditional update on an unknown parameter", M::PUT, "Patient?colour=blue", valid.clone(), 400, "colour"),
        case("conditional delete without criteria", M::DELETE, "Patient?_count=5", "", 400, "criteria"),
        case("conditional delete on an invalid date", M::DELETE, "Patient?birthdate=soon", "", 400, "birthdate"),
        case("read on the write port", M::GET, &format!("Patient/{existing}"), "", 405, "query service"),
    ];
    let mut wrong_media = case(
        "wrong content type",
        M::POST,
        "Patient",
        valid.clone(),
        415,
        "application/fhir+json",
    );
    wrong_media.content_type = Some("application/xml");
    cases.push(wrong_media);
    let mut no_media = case(
        "no content type",
        M::POST,
        "Patient",
        valid.clone(),
        415,
        "application/fhir+json",
    );
    no_media.content_type = None;
    cases.push(no_media);
    let mut conditional_patch = case(
        "conditional patch on a chain to nowhere",
        M::PATCH,
        "Patient?organization.nothing=1",
        "[]",
        400,
        "nothing",
    );
    conditional_patch.content_type = Some("application/json-patch+json");
    cases.push(conditional_patch);
    for (criteria, mentions) in [
        ("identifier=x|y&nonsense=1", "nonsense"),
        ("  ", "If-None-Exist"),
        ("_sort=name", "criteria"),
    ] {
        let mut conditional_create = case(
            "conditional create with unusable criteria",
            M::POST,
            "Patient",
            valid.clone(),
            400,
            mentions,
        );
        conditional_create.headers.push(("if-none-exist", criteria));
        cases.push(conditional_create);
    }
    let mut bad_if_match = case(
        "malformed If-Match",
        M::PUT,
        &format!("Patient/{existing}"),
        valid.clone(),
        400,
        "If-Match",
    );
    bad_if_match.headers.push(("if-match", "yesterday"));
    cases.push(bad_if_match);

    for case in cases {
        let url = if case.path.is_empty() {
            app.writes.clone()
        } else {
            format!("{}/{}", app.writes, case.path)
        };
        let mut request = app
            .client
            .request(case.method.clone(), url)
            .body(case.body.clone());
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        for (name, value) in &case.headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), case.status, "{}", case.name);
        let outcome = assert_outcome(response, case.status).await;
        let text = outcome.to_string();
        assert!(
            text.contains(case.mentions),
            "{}: the outcome should mention {:?}: {text}",
            case.name,
            case.mentions
        );
        assert_eq!(
            app.event_count().await,
            events_before,
            "{}: nothing may be written",
            case.name
        );
    }

    // The service is still healthy and still writes after all of that.
    app.create_ok(&patient("After")).await;
    app.cleanup().await;
}

#[tokio::test]
async fn every_problem_in_a_resource_is_reported_with_its_path() {
    let app = TestApp::spawn().await;
    let response = app
        .create(&json!({
            "resourceType": "Patient",
            "active": "yes",
            "birthDate": "yesterday",
            "name": [{"family": ["not", "a", "string"]}]
        }))
        .await;
    let outcome = assert_outcome(response, 400).await;
    let expressions: Vec<&str> = outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|issue| issue["expression"].as_array().into_iter().flatten())
        .filter_map(|expression| expression.as_str())
        .collect();
    for path in [
        "Patient.active",
        "Patient.birthDate",
        "Patient.name[0].family",
    ] {
        assert!(
            expressions.contains(&path),
            "{path} missing from {expressions:?}"
        );
    }
    app.cleanup().await;
}
