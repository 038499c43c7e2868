//! Search by every parameter type and the result controls, against data written through the
//! command service and indexed by the projection service.

use serde_json::{Value, json};

use crate::helpers::{TestApp, entries_with_mode, link, match_ids};

fn patient(id: &str, family: &str, given: &str, gender: &str, birth: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "gender": gender, "birthDate": birth,
        "name": [{"family": family, "given": [given]}],
        "identifier": [{"system": "http://hospital.test/mrn", "value": format!("MRN-{id}"),
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}}]})
}

fn observation(
    id: &str,
    patient: &str,
    code: &str,
    display: &str,
    value: Value,
    when: &str,
) -> Value {
    let mut resource = json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": when});
    resource["valueQuantity"] = value;
    resource
}

fn mg(value: f64, unit: &str) -> Value {
    json!({"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit})
}

async fn clinic() -> TestApp {
    let app = TestApp::spawn().await;
    app.put_all(&[
        json!({"resourceType": "Practitioner", "id": "dr", "name": [{"family": "House"}]}),
        {
            let mut p = patient("zoe", "Zoë", "Anna", "female", "1970-03-15");
            p["generalPractitioner"] = json!([{"reference": "Practitioner/dr"}]);
            p["text"] = json!({"status": "generated",
                "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Known <b>diabetic</b> since 2001</div>"});
            p
        },
        patient("bob", "Smith", "Bob", "male", "1985"),
        patient("ann", "Smithson", "Ann", "female", "1990-07-01"),
        observation(
            "hr1",
            "zoe",
            "8867-4",
            "Heart rate",
            mg(72.0, "/min"),
            "2024-05-01T10:00:00Z",
        ),
        observation(
            "hr2",
            "zoe",
            "8867-4",
            "Heart rate",
            mg(110.0, "/min"),
            "2024-05-02T10:00:00+02:00",
        ),
        observation(
            "w1",
            "bob",
            "29463-7",
            "Body weight",
            mg(80000.0, "g"),
            "2023-01-10",
        ),
        observation("dose", "ann", "3141-9", "Dose", mg(250.0, "mg"), "2022-06"),
    ])
    .await;
    app
}

#[tokio::test]
async fn strings_fold_case_and_accents_and_match_prefixes() {
    let app = clinic().await;
    assert_eq!(app.set("Patient?family=zoe").await, vec!["zoe"]);
    assert_eq!(app.set("Patient?family=SMITH").await, vec!["ann", "bob"]);
    assert_eq!(app.set("Patient?family:exact=Smith").await, vec!["bob"]);
    assert!(app.ids("Patient?family:exact=smith").await.is_empty());
    assert_eq!(app.set("Patient?name:contains=ithso").await, vec!["ann"]);
    assert_eq!(app.set("Patient?name=anna").await, vec!["zoe"]);
    // OR with commas, AND with repetition.
    assert_eq!(
        app.set("Patient?family=zoe,smithson").await,
        vec!["ann", "zoe"]
    );
    assert_eq!(app.set("Patient?family=smith&given=ann").await, vec!["ann"]);
}

#[tokio::test]
async fn tokens_with_and_without_system_and_modifiers() {
    let app = clinic().await;
    assert_eq!(app.set("Observation?code=8867-4").await, vec!["hr1", "hr2"]);
    assert_eq!(
        app.set("Observation?code=http://loinc.org|8867-4").await,
        vec!["hr1", "hr2"]
    );
    assert!(
        app.ids("Observation?code=http://other.org|8867-4")
            .await
            .is_empty()
    );
    assert!(app.ids("Observation?code=|8867-4").await.is_empty());
    assert_eq!(app.set("Observation?code=http://loinc.org|").await.len(), 4);
    assert_eq!(
        app.set("Observation?code:not=8867-4").await,
        vec!["dose", "w1"]
    );
    assert_eq!(app.set("Observation?code:text=body").await, vec!["w1"]);
    assert_eq!(app.set("Patient?gender=female").await, vec!["ann", "zoe"]);
    // `code` elements carry the system of the value set they are bound to.
    assert_eq!(
        app.set("Patient?gender=http://hl7.org/fhir/administrative-gender|female")
            .await,
        vec!["ann", "zoe"]
    );
    assert!(app.ids("Patient?gender=|female").await.is_empty());
    assert_eq!(
        app.set("Observation?status=http://hl7.org/fhir/observation-status|final")
            .await
            .len(),
        app.set("Observation?status=final").await.len()
    );
    assert_eq!(
        app.set("Patient?identifier=http://hospital.test/mrn|MRN-bob")
            .await,
        vec!["bob"]
    );
    assert_eq!(
        app.ids(
            "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|MRN-ann"
        )
        .await,
        vec!["ann"]
    );
    assert_eq!(app.set("Patient?_id=bob,ann").await, vec!["ann", "bob"]);
}

#[tokio::test]
async fn dates_compare_ranges_at_their_precision() {
    let app = clinic().await;
    assert_eq!(app.set("Patient?birthdate=1970").await, vec!["zoe"]);
    assert_eq!(app.set("Patient?birthdate=1970-03").await, vec!["zoe"]);
    // `1985` covers the whole year: not within March 1985, but overlapping it.
    assert!(app.ids("Patient?birthdate=1985-03").await.is_empty());
    assert_eq!(
        app.set("Patient?birthdate=ge1985").await,
        vec!["ann", "bob"]
    );
    assert_eq!(app.set("Patient?birthdate=lt1985").await, vec!["zoe"]);
    assert_eq!(
        app.set("Patient?birthdate=sa1980").await,
        vec!["ann", "bob"]
    );
    assert_eq!(app.set("Patient?birthdate=eb1971").await, vec!["zoe"]);
    assert_eq!(
        app.set("Patient?birthdate=ne1970").await,
        vec!["ann", "bob"]
    );
    // Time zones: 2024-05-02T10:00+02:00 is 08:00Z.
    assert_eq!(app.set("Observation?date=2024-05-02").await, vec!["hr2"]);
    assert_eq!(
        app.set("Observation?date=gt2024-05-02T08:30:00Z&code=8867-4")
            .await,
        Vec::<String>::new()
    );
    assert_eq!(
        app.set("Observation?date=ge2024-05-01&date=lt2024-05-03")
            .await,
        vec!["hr1", "hr2"]
    );
    assert_eq!(app.set("Observation?date=2022").await, vec!["dose"]);
}

#[tokio::test]
async fn quantities_compare_in_canonical_units() {
    let app = clinic().await;
    assert_eq!(
        app.set("Observation?value-quantity=gt100||/min").await,
        vec!["hr2"]
    );
    assert_eq!(
        app.set("Observation?value-quantity=72|http://unitsofmeasure.org|/min")
            .await,
        vec!["hr1"]
    );
    // 80 kg is stored as 80000 g; 250 mg as 0.25 g.
    assert_eq!(
        app.set("Observation?value-quantity=80|http://unitsofmeasure.org|kg")
            .await,
        vec!["w1"]
    );
    assert_eq!(
        app.set("Observation?value-quantity=0.25|http://unitsofmeasure.org|g")
            .await,
        vec!["dose"]
    );
    assert_eq!(
        app.set("Observation?value-quantity=lt1|http://unitsofmeasure.org|g")
            .await,
        vec!["dose"]
    );
    assert_eq!(
        app.set("Observation?value-quantity=ap72").await,
        vec!["hr1"]
    );
}

#[tokio::test]
async fn references_chains_and_reverse_chains() {
    let app = clinic().await;
    assert_eq!(
        app.set("Observation?subject=Patient/zoe").await,
        vec!["hr1", "hr2"]
    );
    assert_eq!(app.set("Observation?subject=zoe").await, vec!["hr1", "hr2"]);
    assert_eq!(app.set("Observation?subject:Patient=bob").await, vec!["w1"]);
    assert_eq!(
        app.set("Observation?patient=http://fhir.test/fhir/Patient/ann")
            .await,
        vec!["dose"]
    );
    assert_eq!(
        app.set("Observation?subject:Patient.name=smith").await,
        vec!["dose", "w1"]
    );
    assert_eq!(
        app.set("Observation?subject.general-practitioner.name=house")
            .await,
        vec!["hr1", "hr2"]
    );
    assert_eq!(
        app.set("Patient?_has:Observation:patient:code=8867-4")
            .await,
        vec!["zoe"]
    );
    assert_eq!(
        app.ids(
            "Practitioner?_has:Patient:general-practitioner:_has:Observation:patient:code=8867-4"
        )
        .await,
        vec!["dr"]
    );
    assert_eq!(
        app.set("Patient?general-practitioner:missing=true").await,
        vec!["ann", "bob"]
    );
    assert_eq!(
        app.set("Patient?general-practitioner:missing=false").await,
        vec!["zoe"]
    );
}

#[tokio::test]
async fn includes_sorting_and_summary() {
    let app = clinic().await;
    let bundle = app
        .search("Observation?code=8867-4&_include=Observation:subject&_include:iterate=Patient:general-practitioner")
        .await;
    assert_eq!(match_ids(&bundle), vec!["hr1", "hr2"]);
    let mut included = entries_with_mode(&bundle, "include");
    included.sort();
    assert_eq!(included, vec!["dr", "zoe"]);
    let bundle = app
        .search("Patient?_id=zoe&_revinclude=Observation:subject")
        .await;
    let mut included = entries_with_mode(&bundle, "include");
    included.sort();
    assert_eq!(included, vec!["hr1", "hr2"]);

    assert_eq!(
        app.ids("Patient?_sort=birthdate").await,
        vec!["zoe", "bob", "ann"]
    );
    assert_eq!(
        app.ids("Patient?_sort=-birthdate").await,
        vec!["ann", "bob", "zoe"]
    );
    assert_eq!(
        app.ids("Observation?_sort=-date&code=8867-4").await,
        vec!["hr2", "hr1"]
    );
    assert_eq!(
        app.ids("Patient?_sort=gender,-family").await,
        vec!["zoe", "ann", "bob"]
    );

    let count = app.search("Patient?_summary=count").await;
    assert_eq!(count["total"], 3);
    assert!(count.get("entry").is_none());
    let summary = app.search("Patient?_id=zoe&_elements=birthDate").await;
    let resource = &summary["entry"][0]["resource"];
    assert_eq!(resource["birthDate"], "1970-03-15");
    assert!(resource.get("name").is_none());
    assert_eq!(resource["meta"]["tag"][0]["code"], "SUBSETTED");
    let none = app.search("Patient?_total=none").await;
    assert!(none.get("total").is_none());
}

#[tokio::test]
async fn pages_neither_skip_nor_repeat_while_writes_go_on() {
    let app = clinic().await;
    let first = app.search("Observation?_count=3&_sort=date").await;
    assert_eq!(first["total"], 4);
    let mut seen = match_ids(&first);
    assert_eq!(seen, vec!["dose", "w1", "hr1"]);
    // A write between pages that would sort first must not shift the second page.
    app.put(&observation(
        "early",
        "bob",
        "8867-4",
        "Heart rate",
        mg(60.0, "/min"),
        "2000-01-01",
    ))
    .await;
    // The link is absolute, on the base the request came to.
    let next = link(&first, "next").expect("a next link");
    let second = app.client.get(&next).send().await.unwrap();
    assert_eq!(second.status(), 200, "{next}");
    let second: Value = second.json().await.unwrap();
    seen.extend(match_ids(&second));
    assert_eq!(seen, vec!["dose", "w1", "hr1", "hr2"]);
    assert!(link(&second, "next").is_none());
    assert!(link(&second, "previous").is_some());
}

#[tokio::test]
async fn unknown_parameters_are_strict_or_lenient_and_bad_values_are_400() {
    let app = clinic().await;
    let lenient = app.search("Patient?nonsense=1&gender=male").await;
    assert_eq!(match_ids(&lenient), vec!["bob"]);
    let outcome = lenient["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["search"]["mode"] == "outcome")
        .expect("an outcome entry");
    assert!(
        outcome["resource"]["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("nonsense")
    );

    let strict = app
        .client
        .get(format!("{}/Patient?nonsense=1", app.reads))
        .header("prefer", "handling=strict")
        .send()
        .await
        .unwrap();
    assert_eq!(strict.status(), 400);
    let body: Value = strict.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("nonsense")
    );

    for bad in [
        "Patient?birthdate=yesterday",
        "Observation?value-quantity=lots",
        "Patient?_count=-1",
        "Patient?gender:missing=perhaps",
        "Observation?subject=Nonsense/1",
    ] {
        app.outcome(bad, 400).await;
    }
    assert_eq!(app.get("Nonsense?x=1").await.status(), 404);
}

#[tokio::test]
async fn post_search_and_system_search() {
    let app = clinic().await;
    let response = app
        .client
        .post(format!("{}/Patient/_search", app.reads))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-event-position", app.position())
        .body("family=smith&_sort=family")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bundle: Value = response.json().await.unwrap();
    assert_eq!(match_ids(&bundle), vec!["bob", "ann"]);
    assert_eq!(
        app.set("?_type=Patient,Practitioner&_id=dr,zoe").await,
        vec!["dr", "zoe"]
    );
}

#[tokio::test]
async fn a_search_with_a_position_waits_for_the_projection_or_answers_503() {
    // No projection service: the checkpoint never moves.
    let app = TestApp::spawn_with(false, 300).await;
    app.put(&patient("p", "Late", "L", "other", "2000")).await;
    for search in [
        "Patient?family=late",
        "Patient/p/Observation",
        "Patient/p/$everything",
        "?_type=Patient",
    ] {
        app.outcome(search, 503).await;
    }
    // Without the header the search answers at once, from what is indexed.
    let response = app
        .client
        .get(format!("{}/Patient?family=late", app.reads))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn text_and_content_find_words() {
    let app = clinic().await;
    assert_eq!(app.set("Patient?_text=DIABETIC").await, vec!["zoe"]);
    assert_eq!(app.set("Patient?_text=diabetic since").await, vec!["zoe"]);
    assert!(
        app.set("Patient?_text=diabetic,nowhere&_text=absent")
            .await
            .is_empty()
    );
    // _content is every string but the narrative: the family name with its accent folded.
    assert_eq!(app.set("Patient?_content=zoe").await, vec!["zoe"]);
    assert!(app.set("Patient?_content=diabetic").await.is_empty());
    assert_eq!(
        app.set("Observation?_content=heart").await,
        vec!["hr1", "hr2"]
    );
}

#[tokio::test]
async fn compartment_search_and_everything() {
    let app = clinic().await;
    app.put(
        &json!({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/zoe"},
        "code": {"text": "Diabetes"}}),
    )
    .await;
    assert_eq!(app.set("Patient/zoe/Observation").await, vec!["hr1", "hr2"]);
    assert_eq!(
        app.set("Patient/zoe/Observation?date=2024-05-02").await,
        vec!["hr2"]
    );
    assert_eq!(app.set("Patient/bob/Observation").await, vec!["w1"]);
    assert_eq!(app.set("Patient/zoe/Condition").await, vec!["c1"]);
    assert_eq!(app.get("Patient/zoe/Nonsense").await.status(), 404);
    assert_eq!(app.get("Practitioner/dr/Patient").await.status(), 404);

    let everything = app.search("Patient/zoe/$everything").await;
    assert_eq!(
        {
            let mut ids = match_ids(&everything);
            ids.sort();
            ids
        },
        vec!["c1", "hr1", "hr2", "zoe"]
    );
    // What they refer to comes along: the general practitioner.
    assert_eq!(entries_with_mode(&everything, "include"), vec!["dr"]);
    let only = app
        .search("Patient/zoe/$everything?_type=Observation&_count=1")
        .await;
    assert_eq!(match_ids(&only).len(), 1);
    assert_eq!(only["total"], 2);
    let next = link(&only, "next").expect("a next page");
    let second: Value = app
        .client
        .get(&next)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(match_ids(&second).len(), 1);
    assert_ne!(match_ids(&second), match_ids(&only));
    assert_eq!(
        app.get("Patient/zoe/$everything?nonsense=1").await.status(),
        400
    );
}
