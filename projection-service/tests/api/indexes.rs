//! The rows each index type holds, for the edge cases search depends on.

use serde_json::{Value, json};

use crate::helpers::{BASE_URL, TestApp};

/// `[low, high)` of the date rows of a parameter, as UTC text (`-infinity`/`infinity` for open ends).
async fn date_ranges(
    app: &TestApp,
    resource_type: &str,
    id: &str,
    param: &str,
) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT CASE WHEN isfinite(low) THEN to_char(low AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') ELSE low::text END, \
                CASE WHEN isfinite(high) THEN to_char(high AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') ELSE high::text END \
         FROM hfj_spidx_date d JOIN hfj_resource r USING (res_pk) \
         WHERE r.res_type = $1 AND r.res_id = $2 AND d.sp_name = $3 AND d.comp IS NULL ORDER BY 1, 2",
    )
    .bind(resource_type)
    .bind(id)
    .bind(param)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

fn pair(low: &str, high: &str) -> (String, String) {
    (low.to_owned(), high.to_owned())
}

#[tokio::test]
async fn dates_cover_their_precision_in_utc_and_periods_may_be_open() {
    let app = TestApp::spawn().await;
    app.put_ok(&json!({"resourceType": "Patient", "id": "year-born", "birthDate": "1980"}))
        .await;
    app.put_ok(&json!({"resourceType": "Patient", "id": "month-born", "birthDate": "1980-02"}))
        .await;
    app.put_ok(&json!({"resourceType": "Patient", "id": "day-born", "birthDate": "1980-02-29"}))
        .await;
    app.put_ok(&json!({
        "resourceType": "Observation", "id": "zoned", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
        "effectiveDateTime": "2020-03-15T10:00:00+02:00"
    }))
    .await;
    app.put_ok(&json!({
        "resourceType": "Observation", "id": "millis", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
        "effectivePeriod": {"start": "2020-03-15T10:00:00.250Z"}
    }))
    .await;
    app.put_ok(&json!({
        "resourceType": "Encounter", "id": "open-start", "status": "finished",
        "class": {"code": "AMB"}, "period": {"end": "2021-06-30"}
    }))
    .await;
    app.caught_up().await;

    assert_eq!(
        date_ranges(&app, "Patient", "year-born", "birthdate").await,
        vec![pair("1980-01-01T00:00:00.000Z", "1981-01-01T00:00:00.000Z")]
    );
    assert_eq!(
        date_ranges(&app, "Patient", "month-born", "birthdate").await,
        vec![pair("1980-02-01T00:00:00.000Z", "1980-03-01T00:00:00.000Z")]
    );
    assert_eq!(
        date_ranges(&app, "Patient", "day-born", "birthdate").await,
        vec![pair("1980-02-29T00:00:00.000Z", "1980-03-01T00:00:00.000Z")]
    );
    assert_eq!(
        date_ranges(&app, "Observation", "zoned", "date").await,
        vec![pair("2020-03-15T08:00:00.000Z", "2020-03-15T08:00:01.000Z")],
        "a dateTime with a zone is the second it names, in UTC"
    );
    assert_eq!(
        date_ranges(&app, "Observation", "millis", "date").await,
        vec![pair("2020-03-15T10:00:00.250Z", "infinity")],
        "a Period without end is open above"
    );
    assert_eq!(
        date_ranges(&app, "Encounter", "open-start", "date").await,
        vec![pair("-infinity", "2021-07-01T00:00:00.000Z")],
        "a Period without start is open below; its end covers the whole day"
    );
    app.cleanup().await;
}

/// `(value, comparator, code, canonical value, canonical code)` of the quantity rows, numbers as text.
async fn quantities(app: &TestApp, id: &str) -> Vec<Value> {
    let rows: Vec<(Value,)> = sqlx::query_as(
        "SELECT json_build_object('value', q.value::float8, 'comparator', q.comparator, 'code', q.code, \
                'canonical', q.canonical_value::float8, 'canonicalCode', q.canonical_code)::jsonb \
         FROM hfj_spidx_quantity q JOIN hfj_resource r USING (res_pk) \
         WHERE r.res_type = 'Observation' AND r.res_id = $1 AND q.sp_name = 'value-quantity'",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter().map(|(row,)| row).collect()
}

fn observation(id: &str, code: &str, value: Value) -> Value {
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "valueQuantity": value
    })
}

#[tokio::test]
async fn quantities_keep_comparators_and_convert_to_canonical_ucum_units() {
    let app = TestApp::spawn().await;
    let ucum = "http://unitsofmeasure.org";
    app.put_ok(&observation(
        "mg",
        "2345-7",
        json!({"value": 1500, "unit": "mg", "system": ucum, "code": "mg"}),
    ))
    .await;
    app.put_ok(&observation(
        "g",
        "2345-7",
        json!({"value": 1.5, "unit": "g", "system": ucum, "code": "g"}),
    ))
    .await;
    app.put_ok(&observation(
        "fahrenheit",
        "8310-5",
        json!({"value": 98.6, "unit": "degF", "system": ucum, "code": "[degF]"}),
    ))
    .await;
    app.put_ok(&observation(
        "celsius",
        "8310-5",
        json!({"value": 37, "unit": "C", "system": ucum, "code": "Cel"}),
    ))
    .await;
    app.put_ok(&observation(
        "below",
        "2345-7",
        json!({"value": 5, "comparator": "<", "unit": "mg/dL", "system": ucum, "code": "mg/dL"}),
    ))
    .await;
    app.put_ok(&observation("local-unit", "2345-7", json!({"value": 3, "unit": "scoops", "system": "http://example.org/units", "code": "scoop"}))).await;
    app.caught_up().await;

    let mg = quantities(&app, "mg").await;
    let g = quantities(&app, "g").await;
    assert_eq!(mg.len(), 1, "{mg:?}");
    assert_eq!(mg[0]["value"].as_f64(), Some(1500.0));
    assert_eq!(mg[0]["canonicalCode"], g[0]["canonicalCode"]);
    assert_eq!(
        mg[0]["canonical"], g[0]["canonical"],
        "1500 mg and 1.5 g are the same mass"
    );

    let fahrenheit = quantities(&app, "fahrenheit").await;
    let celsius = quantities(&app, "celsius").await;
    assert_eq!(fahrenheit[0]["canonicalCode"], json!("K"));
    assert_eq!(celsius[0]["canonicalCode"], json!("K"));
    let kelvin = |rows: &[Value]| rows[0]["canonical"].as_f64().unwrap();
    assert!(
        (kelvin(&fahrenheit) - 310.15).abs() < 1e-9,
        "{fahrenheit:?}"
    );
    assert!((kelvin(&celsius) - 310.15).abs() < 1e-9, "{celsius:?}");

    let below = quantities(&app, "below").await;
    assert_eq!(below[0]["comparator"], json!("<"));
    assert_eq!(below[0]["code"], json!("mg/dL"));
    assert!(
        below[0]["canonical"].is_number(),
        "mg/dL converts: {below:?}"
    );

    let local = quantities(&app, "local-unit").await;
    assert_eq!(local[0]["value"].as_f64(), Some(3.0));
    assert_eq!(
        local[0]["canonical"],
        Value::Null,
        "a non-UCUM unit has no canonical value"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn tokens_strings_uris_and_tags() {
    let app = TestApp::spawn().await;
    app.put_ok(&json!({
        "resourceType": "Patient", "id": "nunez",
        "meta": {
            "tag": [{"system": "http://example.org/tags", "code": "teaching", "display": "Teaching case"}],
            "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"],
            "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]
        },
        "identifier": [
            {"system": "http://hospital.example/mrn", "value": "MRN-1",
             "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}},
            {"value": "NO-SYSTEM-2"}
        ],
        "name": [{"family": "Ñúñez", "given": ["José", "María"]}],
        "gender": "female",
        "telecom": [{"system": "email", "value": "jose@example.org"}]
    }))
    .await;
    app.caught_up().await;

    let strings = app
        .param_rows("hfj_spidx_string", "Patient", "nunez", "family")
        .await;
    assert_eq!(strings.len(), 1, "{strings:?}");
    assert_eq!(
        strings[0]["value_normalized"],
        json!("nunez"),
        "accents and case folded"
    );
    assert_eq!(
        strings[0]["value_exact"],
        json!("Ñúñez"),
        "the exact value kept"
    );
    let given: Vec<Value> = app
        .param_rows("hfj_spidx_string", "Patient", "nunez", "given")
        .await
        .into_iter()
        .map(|row| row["value_normalized"].clone())
        .collect();
    assert_eq!(given, vec![json!("jose"), json!("maria")]);

    let identifiers = app
        .param_rows("hfj_spidx_token", "Patient", "nunez", "identifier")
        .await;
    let pairs: Vec<(Value, Value)> = identifiers
        .iter()
        .map(|row| (row["system"].clone(), row["code"].clone()))
        .collect();
    assert!(
        pairs.contains(&(json!("http://hospital.example/mrn"), json!("MRN-1"))),
        "{identifiers:?}"
    );
    assert!(
        pairs.contains(&(Value::Null, json!("NO-SYSTEM-2"))),
        "{identifiers:?}"
    );
    let typed = identifiers
        .iter()
        .find(|row| row["code"] == "MRN-1")
        .unwrap();
    assert_eq!(
        typed["type_code"],
        json!("MR"),
        "identifier type kept for :of-type"
    );

    let gender = app
        .param_rows("hfj_spidx_token", "Patient", "nunez", "gender")
        .await;
    assert_eq!(gender.len(), 1);
    assert_eq!(gender[0]["code"], json!("female"));
    assert_ne!(gender[0]["hash_sys_value"], gender[0]["hash_value"]);

    let email = app
        .param_rows("hfj_spidx_token", "Patient", "nunez", "email")
        .await;
    assert_eq!(email.len(), 1, "{email:?}");
    assert_eq!(email[0]["code"], json!("jose@example.org"));

    let tags = app.rows("hfj_res_tag", "Patient", "nunez").await;
    let kinds: Vec<(Value, Value)> = tags
        .iter()
        .map(|row| (row["kind"].clone(), row["code"].clone()))
        .collect();
    assert!(
        kinds.contains(&(json!("tag"), json!("teaching"))),
        "{tags:?}"
    );
    assert!(kinds.contains(&(json!("security"), json!("R"))), "{tags:?}");
    assert!(kinds.contains(&(
        json!("profile"),
        json!("http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient")
    )));
    let profile = app
        .param_rows("hfj_spidx_uri", "Patient", "nunez", "_profile")
        .await;
    assert_eq!(profile.len(), 1, "_profile is a uri parameter: {profile:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn references_relative_absolute_external_and_contained() {
    let app = TestApp::spawn().await;
    app.put_ok(&json!({"resourceType": "Patient", "id": "p1"}))
        .await;
    app.put_ok(&json!({"resourceType": "Practitioner", "id": "dr1"}))
        .await;
    app.put_ok(&json!({
        "resourceType": "Observation", "id": "o1", "status": "final",
        "contained": [{"resourceType": "Practitioner", "id": "tech", "name": [{"family": "Tech"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/p1"},
        "performer": [
            {"reference": format!("{BASE_URL}/Practitioner/dr1")},
            {"reference": "http://elsewhere.example/fhir/Organization/o9"},
            {"reference": "#tech"},
            {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "12345"}}
        ]
    }))
    .await;
    app.caught_up().await;

    let subject = app
        .param_rows("hfj_res_link", "Observation", "o1", "subject")
        .await;
    assert_eq!(subject.len(), 1, "{subject:?}");
    assert_eq!(subject[0]["kind"], json!("local"));
    assert_eq!(subject[0]["target_type"], json!("Patient"));
    assert_eq!(subject[0]["target_id"], json!("p1"));
    assert_eq!(subject[0]["src_path"], json!("Observation.subject"));
    let patient = app
        .param_rows("hfj_res_link", "Observation", "o1", "patient")
        .await;
    assert_eq!(
        patient.len(),
        1,
        "subject.where(resolve() is Patient): {patient:?}"
    );

    let performers = app
        .param_rows("hfj_res_link", "Observation", "o1", "performer")
        .await;
    let find = |kind: &str| {
        performers
            .iter()
            .find(|row| row["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} performer in {performers:?}"))
    };
    let absolute = find("local");
    assert_eq!(
        absolute["target_type"],
        json!("Practitioner"),
        "an absolute URL on this server is local"
    );
    assert_eq!(absolute["target_id"], json!("dr1"));
    let external = find("external");
    assert_eq!(
        external["target_url"],
        json!("http://elsewhere.example/fhir/Organization/o9")
    );
    let contained = find("contained");
    assert_eq!(contained["target_type"], json!("Practitioner"));
    let logical = find("logical");
    assert_eq!(logical["identifier_value"], json!("12345"));
    app.cleanup().await;
}

#[tokio::test]
async fn composites_pair_values_from_the_same_component() {
    let app = TestApp::spawn().await;
    let ucum = "http://unitsofmeasure.org";
    app.put_ok(&json!({
        "resourceType": "Observation", "id": "bp", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
             "valueQuantity": {"value": 120, "unit": "mmHg", "system": ucum, "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
             "valueQuantity": {"value": 80, "unit": "mmHg", "system": ucum, "code": "mm[Hg]"}}
        ]
    }))
    .await;
    app.caught_up().await;

    let tokens = app
        .param_rows(
            "hfj_spidx_token",
            "Observation",
            "bp",
            "component-code-value-quantity",
        )
        .await;
    let quantities = app
        .param_rows(
            "hfj_spidx_quantity",
            "Observation",
            "bp",
            "component-code-value-quantity",
        )
        .await;
    let group_of = |code: &str| {
        tokens
            .iter()
            .find(|row| row["code"] == code)
            .unwrap_or_else(|| panic!("{code} in {tokens:?}"))["grp"]
            .clone()
    };
    let value_in = |group: &Value| {
        quantities
            .iter()
            .find(|row| &row["grp"] == group)
            .unwrap_or_else(|| panic!("group {group} in {quantities:?}"))["value"]
            .as_f64()
            .unwrap()
    };
    assert_ne!(group_of("8480-6"), group_of("8462-4"));
    assert_eq!(
        value_in(&group_of("8480-6")),
        120.0,
        "systolic pairs with 120"
    );
    assert_eq!(
        value_in(&group_of("8462-4")),
        80.0,
        "diastolic pairs with 80"
    );
    assert!(tokens.iter().all(|row| row["comp"] == json!(0)));
    assert!(quantities.iter().all(|row| row["comp"] == json!(1)));
    app.cleanup().await;
}
