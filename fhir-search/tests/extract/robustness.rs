use serde_json::json;

use crate::index;

#[test]
fn odd_json_never_panics() {
    let odd = [
        json!({}),
        json!({"resourceType": 7}),
        json!([1, 2]),
        json!({"resourceType": "Patient", "name": "not a list", "birthDate": 1970,
               "telecom": [null, 1, "x"], "gender": {"code": "f"}, "identifier": [{"type": 3}],
               "meta": {"tag": "x", "profile": [1]}, "text": {"div": 5}}),
        json!({"resourceType": "Observation", "valueQuantity": {"value": "NaN", "code": "mg"},
               "effectivePeriod": {"start": "2020-02-30"}, "subject": {"reference": ""},
               "component": [{"code": "x", "valueQuantity": {"value": 1e300, "code": "kg"}}]}),
        json!({"resourceType": "Observation", "valueQuantity": {"value": 123456789012345678901234567890.5, "system": "http://unitsofmeasure.org", "code": "Ym3"}}),
        json!({"resourceType": "NotARealType", "id": "x", "meta": {"lastUpdated": "2020"}}),
        json!({"resourceType": "Location", "position": {"latitude": "north", "longitude": 1000}}),
    ];
    for resource in &odd {
        let _ = index(resource);
    }
    let no_type = index(&json!({"id": "1"}));
    assert_eq!(no_type.problems.len(), 1);

    let bad_date = index(&json!({"resourceType": "Patient", "birthDate": "1970-13-01"}));
    assert!(bad_date.dates.iter().all(|d| d.param != "birthdate"));
    assert!(
        bad_date
            .problems
            .iter()
            .any(|p| p.starts_with("birthdate: ")),
        "{:?}",
        bad_date.problems
    );
}

#[test]
fn identical_rows_are_kept_once() {
    let patient = json!({
        "resourceType": "Patient",
        "name": [{"family": "Smith"}, {"family": "Smith"}],
        "identifier": [{"system": "urn:a", "value": "1"}, {"system": "urn:a", "value": "1"}]
    });
    let index = index(&patient);
    assert_eq!(
        index.strings.iter().filter(|s| s.param == "family").count(),
        1
    );
    assert_eq!(
        index
            .tokens
            .iter()
            .filter(|t| t.param == "identifier")
            .count(),
        1
    );
}
