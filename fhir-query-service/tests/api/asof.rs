//! The record at a past moment (`/fhir/_asof/<position or instant>/...`): what each read
//! interaction answers there, what it refuses, and how. The search oracle over many positions
//! is `past.rs`.

use serde_json::{Value, json};

use crate::helpers::{TestApp, link, match_ids};

fn patient(id: &str, family: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "name": [{"family": family}], "gender": "female"})
}

fn observation(id: &str, patient: &str, value: f64) -> Value {
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    })
}

/// One patient's story: created, renamed, observed, the observation corrected and then
/// deleted; each read interaction at each step answers what it answered then.
#[tokio::test]
async fn every_read_interaction_answers_as_it_did_at_that_position() {
    let app = TestApp::spawn().await;
    app.put(&patient("asof-p", "Before")).await;
    let created = app.position();
    app.put(&patient("asof-p", "After")).await;
    let renamed = app.position();
    app.put(&observation("asof-o", "asof-p", 72.0)).await;
    let observed = app.position();
    app.put(&observation("asof-o", "asof-p", 140.0)).await;
    let corrected = app.position();
    app.delete("Observation/asof-o").await;
    let deleted = app.position();

    // read and vread
    let read: Value = app
        .get(&format!("_asof/{created}/Patient/asof-p"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["name"][0]["family"], "Before");
    assert_eq!(read["meta"]["versionId"], "1");
    let later = app
        .get(&format!("_asof/{created}/Patient/asof-p/_history/2"))
        .await;
    assert_eq!(later.status(), 404, "version 2 did not exist yet");
    let earlier = app
        .get(&format!("_asof/{renamed}/Patient/asof-p/_history/1"))
        .await;
    assert_eq!(earlier.status(), 200);
    app.outcome(&format!("_asof/{created}/Observation/asof-o"), 404)
        .await;
    app.outcome(&format!("_asof/{deleted}/Observation/asof-o"), 410)
        .await;

    // searches of every step
    for (at, family, found) in [(&created, "before", true), (&renamed, "before", false)] {
        let ids = app
            .ids(&format!("_asof/{at}/Patient?family={family}"))
            .await;
        assert_eq!(ids.is_empty(), !found, "family={family} at {at}");
    }
    let quantity = |at: &str, test: &str| format!("_asof/{at}/Observation?value-quantity={test}");
    assert_eq!(app.ids(&quantity(&observed, "lt100")).await, ["asof-o"]);
    assert!(app.ids(&quantity(&observed, "gt100")).await.is_empty());
    assert_eq!(app.ids(&quantity(&corrected, "gt100")).await, ["asof-o"]);
    assert!(app.ids(&quantity(&corrected, "lt100")).await.is_empty());
    assert!(app.ids(&quantity(&deleted, "gt100")).await.is_empty());
    // a chain and _has see the versions of then on both sides
    let chain = format!("_asof/{observed}/Observation?subject:Patient.family=after");
    assert_eq!(app.ids(&chain).await, ["asof-o"]);
    let has = format!("_asof/{corrected}/Patient?_has:Observation:subject:value-quantity=gt100");
    assert_eq!(app.ids(&has).await, ["asof-p"]);
    let has_before =
        format!("_asof/{observed}/Patient?_has:Observation:subject:value-quantity=gt100");
    assert!(app.ids(&has_before).await.is_empty());
    // includes, the compartment and $everything
    let included = app
        .search(&format!(
            "_asof/{observed}/Observation?_include=Observation:subject"
        ))
        .await;
    let names: Vec<&Value> = included["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["search"]["mode"] == "include")
        .map(|entry| &entry["resource"]["name"][0]["family"])
        .collect();
    assert_eq!(names, [&json!("After")]);
    let everything = app
        .search(&format!("_asof/{corrected}/Patient/asof-p/$everything"))
        .await;
    let values: Vec<&Value> = everything["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| {
            entry["resource"]["valueQuantity"]["value"]
                .as_f64()
                .map(|_| &entry["resource"]["valueQuantity"]["value"])
        })
        .collect();
    assert_eq!(values, [&json!(140.0)]);
    assert!(
        app.ids(&format!("_asof/{deleted}/Patient/asof-p/Observation"))
            .await
            .is_empty()
    );
    // history ends at the position
    let history: Value = app
        .get(&format!("_asof/{observed}/_history"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["entry"].as_array().unwrap().len(), 3, "{history}");
    let instance: Value = app
        .get(&format!("_asof/{created}/Patient/asof-p/_history"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(instance["total"], 1);
    // The present is untouched.
    let now = app.ids("Patient?family=after").await;
    assert_eq!(now, ["asof-p"]);
}

/// A past named by an instant is the record once everything recorded before the end of that
/// instant was applied; links name the position it resolved to.
#[tokio::test]
async fn an_instant_names_the_record_as_it_stood_then_and_links_name_its_position() {
    let app = TestApp::spawn().await;
    app.put(&patient("asof-i", "First")).await;
    let first = app.position();
    app.put(&patient("asof-i", "Second")).await;
    let updated = |version: u32| {
        let app = &app;
        async move {
            let body: Value = app
                .get(&format!("Patient/asof-i/_history/{version}"))
                .await
                .json()
                .await
                .unwrap();
            body["meta"]["lastUpdated"].as_str().unwrap().to_owned()
        }
    };
    // Writes are recorded to the millisecond: the instant of the first version names the
    // record after it, and before the second unless both fell in the same millisecond.
    let between = updated(1).await;
    let expected = if updated(2).await == between {
        "Second"
    } else {
        "First"
    };
    let read: Value = app
        .get(&format!("_asof/{between}/Patient/asof-i"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["name"][0]["family"], expected);
    if expected == "Second" {
        return;
    }
    let bundle = app
        .search(&format!("_asof/{between}/Patient?_id=asof-i"))
        .await;
    let self_link = link(&bundle, "self").unwrap();
    assert!(
        self_link.contains(&format!("/fhir/_asof/{first}/Patient?")),
        "{self_link}"
    );
    let full_url = bundle["entry"][0]["fullUrl"].as_str().unwrap();
    assert!(
        full_url.ends_with(&format!("/fhir/_asof/{first}/Patient/asof-i")),
        "{full_url}"
    );
    // An instant long before anything was written: an empty record.
    let empty = app.search("_asof/2001-01-01T00:00:00Z/Patient").await;
    assert_eq!(empty["total"], 0);
}

/// Pages of a past search are cut from that past, and a past's result list is not served at
/// the live base.
#[tokio::test]
async fn a_past_search_pages_through_that_past() {
    let app = TestApp::spawn().await;
    for n in 0..5 {
        app.put(&patient(&format!("asof-page-{n}"), "Paged")).await;
    }
    let five = app.position();
    for n in 5..8 {
        app.put(&patient(&format!("asof-page-{n}"), "Paged")).await;
    }
    let first = app
        .search(&format!("_asof/{five}/Patient?family=paged&_count=2"))
        .await;
    assert_eq!(first["total"], 5);
    let mut seen = match_ids(&first);
    let mut next = link(&first, "next");
    while let Some(url) = next {
        assert!(url.contains(&format!("/_asof/{five}?")), "{url}");
        let page: Value = app
            .client
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(match_ids(&page));
        next = link(&page, "next");
    }
    seen.sort();
    let expected: Vec<String> = (0..5).map(|n| format!("asof-page-{n}")).collect();
    assert_eq!(seen, expected);
    // The same list id at the live base is unknown there.
    let url = link(&first, "next").unwrap();
    let live = url.replace(&format!("/_asof/{five}"), "");
    let response = app.client.get(&live).send().await.unwrap();
    assert_eq!(response.status(), 410);
}

/// What a past base refuses: writes (405), a past that does not exist yet or is not a past
/// (404, 400), and requests without a token (401, before the past is even looked up). Its
/// CapabilityStatement claims reads only.
#[tokio::test]
async fn a_past_base_is_read_only_and_refuses_what_names_no_past() {
    let app = TestApp::spawn().await;
    app.put(&patient("asof-r", "Read")).await;
    let at = app.position();

    for (method, path) in [
        (reqwest::Method::POST, format!("_asof/{at}/Patient")),
        (reqwest::Method::PUT, format!("_asof/{at}/Patient/asof-r")),
        (
            reqwest::Method::DELETE,
            format!("_asof/{at}/Patient/asof-r"),
        ),
        (reqwest::Method::PATCH, format!("_asof/{at}/Patient/asof-r")),
        (reqwest::Method::POST, format!("_asof/{at}")),
    ] {
        let body = if path.ends_with(&format!("_asof/{at}")) {
            json!({"resourceType": "Bundle", "type": "transaction"}).to_string()
        } else {
            patient("asof-r", "Changed").to_string()
        };
        let response = app
            .client
            .request(method.clone(), format!("{}/{path}", app.reads))
            .header("content-type", "application/fhir+json")
            .body(body)
            .send()
            .await
            .unwrap();
        // A transaction posted to a past base is a system search by POST with a JSON body:
        // refused as a search body (415), never applied.
        let expected = if path.ends_with(&format!("_asof/{at}")) {
            415
        } else {
            405
        };
        assert_eq!(response.status(), expected, "{method} {path}");
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }

    let beyond = app
        .outcome(&format!("_asof/{}/Patient", i64::MAX), 404)
        .await;
    assert!(beyond.to_string().contains("beyond the newest"), "{beyond}");
    app.outcome("_asof/2999-01-01T00:00:00Z/Patient", 404).await;
    let garbage = app.outcome("_asof/yesterday/Patient", 400).await;
    assert!(garbage.to_string().contains("names no past"), "{garbage}");
    app.outcome("_asof/-3/Patient", 400).await;

    let anonymous = reqwest::Client::new()
        .get(format!("{}/_asof/yesterday/Patient", app.reads))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let statement: Value = app
        .get(&format!("_asof/{at}/metadata"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        statement["implementation"]["description"]
            .as_str()
            .unwrap()
            .contains("read-only")
    );
    let patient_entry = statement["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|resource| resource["type"] == "Patient")
        .unwrap();
    let codes: Vec<&str> = patient_entry["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|interaction| interaction["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "read",
            "vread",
            "history-instance",
            "history-type",
            "search-type"
        ]
    );
    assert!(patient_entry.get("conditionalCreate").is_none());
    assert!(statement.get("patchFormat").is_none());
}
