use fhir_search::index::{LinkKind, QuantityRow};
use serde_json::json;

use crate::{index_cleanly, s};

pub fn blood_pressure() -> serde_json::Value {
    json!({
        "resourceType": "Observation",
        "id": "bp1",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs"
        }]}],
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}],
            "text": "Blood pressure"
        },
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "http://localhost:8080/fhir/Encounter/e1"},
        "performer": [{"reference": "https://other.example.org/fhir/Practitioner/dr9"}],
        "effectiveDateTime": "2024-03-01T09:30:00+01:00",
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {"value": 80, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
            }
        ]
    })
}

pub fn glucose() -> serde_json::Value {
    json!({
        "resourceType": "Observation",
        "id": "g1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "subject": {"reference": "Patient/p1"},
        "effectivePeriod": {"start": "2024-03-01", "end": "2024-03-02"},
        "valueQuantity": {"value": 1.5, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}
    })
}

#[test]
fn code_category_status_are_tokens() {
    let index = index_cleanly(&blood_pressure());
    let code: Vec<_> = index
        .tokens
        .iter()
        .filter(|t| t.param == "code")
        .map(|t| (t.system.as_deref(), t.code.as_deref(), t.text.as_deref()))
        .collect();
    assert_eq!(
        code,
        vec![
            (None, None, Some("blood pressure")),
            (
                Some("http://loinc.org"),
                Some("85354-9"),
                Some("blood pressure panel")
            ),
        ]
    );
    assert!(
        index
            .tokens
            .iter()
            .any(|t| t.param == "category" && t.code.as_deref() == Some("vital-signs"))
    );
    assert!(
        index
            .tokens
            .iter()
            .any(|t| t.param == "status" && t.code.as_deref() == Some("final"))
    );
}

#[test]
fn value_quantity_is_canonical() {
    let index = index_cleanly(&glucose());
    let value: Vec<&QuantityRow> = index
        .quantities
        .iter()
        .filter(|q| q.param == "value-quantity")
        .collect();
    assert_eq!(value.len(), 1);
    assert_eq!(value[0].value, "1.5");
    assert_eq!(value[0].canonical_value, s("15"));
    assert_eq!(value[0].canonical_code, s("g.m-3"));
    // combo-value-quantity sees the same value.
    assert!(
        index
            .quantities
            .iter()
            .any(|q| q.param == "combo-value-quantity" && q.value == "1.5")
    );
}

#[test]
fn effective_dates_and_periods() {
    let index = index_cleanly(&blood_pressure());
    let date: Vec<_> = index
        .dates
        .iter()
        .filter(|d| d.param == "date")
        .map(|d| {
            (
                d.low.map(|t| t.to_rfc3339()),
                d.high.map(|t| t.to_rfc3339()),
            )
        })
        .collect();
    assert_eq!(
        date,
        vec![(
            s("2024-03-01T08:30:00+00:00"),
            s("2024-03-01T08:30:01+00:00")
        )]
    );
    let index = index_cleanly(&glucose());
    let date: Vec<_> = index
        .dates
        .iter()
        .filter(|d| d.param == "date")
        .map(|d| {
            (
                d.low.map(|t| t.to_rfc3339()),
                d.high.map(|t| t.to_rfc3339()),
            )
        })
        .collect();
    assert_eq!(
        date,
        vec![(
            s("2024-03-01T00:00:00+00:00"),
            s("2024-03-03T00:00:00+00:00")
        )]
    );
}

#[test]
fn subject_patient_encounter_and_performer_links() {
    let index = index_cleanly(&blood_pressure());
    let links: Vec<_> = index
        .links
        .iter()
        .map(|l| {
            (
                l.param.as_str(),
                l.source_path.as_str(),
                l.kind,
                l.target_type.as_deref(),
                l.target_id.as_deref(),
            )
        })
        .collect();
    for expected in [
        (
            "subject",
            "Observation.subject",
            LinkKind::Local,
            Some("Patient"),
            Some("p1"),
        ),
        (
            "patient",
            "Observation.subject",
            LinkKind::Local,
            Some("Patient"),
            Some("p1"),
        ),
        (
            "encounter",
            "Observation.encounter",
            LinkKind::Local,
            Some("Encounter"),
            Some("e1"),
        ),
        (
            "performer",
            "Observation.performer",
            LinkKind::External,
            Some("Practitioner"),
            Some("dr9"),
        ),
    ] {
        assert!(links.contains(&expected), "{expected:?} not in {links:#?}");
    }
    let performer = index.links.iter().find(|l| l.param == "performer").unwrap();
    assert_eq!(
        performer.target_url,
        s("https://other.example.org/fhir/Practitioner/dr9")
    );
}
