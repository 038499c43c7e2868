use fhir_search::index::LinkKind;
use serde_json::json;

use crate::{index_cleanly, s};

#[test]
fn contained_and_absolute_references() {
    let request = json!({
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "status": "active",
        "intent": "order",
        "contained": [{"resourceType": "Medication", "id": "med1", "code": {"text": "Aspirin"}}],
        "medicationReference": {"reference": "#med1"},
        "subject": {"reference": "http://localhost:8080/fhir/Patient/p1/_history/3"},
        "requester": {"reference": "https://registry.example.org/Practitioner/77"},
        "encounter": {"identifier": {"system": "urn:visits", "value": "V-1"}}
    });
    let index = index_cleanly(&request);
    let medication = index
        .links
        .iter()
        .find(|l| l.param == "medication")
        .unwrap();
    assert_eq!(medication.kind, LinkKind::Contained);
    assert_eq!(medication.target_type, s("Medication"));
    assert_eq!(medication.target_id, s("med1"));
    assert_eq!(medication.source_path, "MedicationRequest.medication");

    let subject = index.links.iter().find(|l| l.param == "subject").unwrap();
    assert_eq!(subject.kind, LinkKind::Local);
    assert_eq!(
        (
            subject.target_type.as_deref(),
            subject.target_id.as_deref(),
            subject.target_version.as_deref()
        ),
        (Some("Patient"), Some("p1"), Some("3"))
    );

    let requester = index.links.iter().find(|l| l.param == "requester").unwrap();
    assert_eq!(requester.kind, LinkKind::External);
    assert_eq!(requester.target_type, s("Practitioner"));
    assert_eq!(requester.target_id, s("77"));
    assert_eq!(
        requester.target_url,
        s("https://registry.example.org/Practitioner/77")
    );

    let encounter = index.links.iter().find(|l| l.param == "encounter").unwrap();
    assert_eq!(encounter.kind, LinkKind::Logical);
    assert_eq!(encounter.identifier_value, s("V-1"));
    assert_eq!(encounter.target_type, None);
}

#[test]
fn urn_references_stay_external() {
    let condition = json!({
        "resourceType": "Condition",
        "subject": {"reference": "urn:uuid:0f4c8b1e-2c1a-4c1e-9d7e-2b0e4c1f7a11"},
        "code": {"text": "Headache"}
    });
    let index = index_cleanly(&condition);
    let subject = index.links.iter().find(|l| l.param == "subject").unwrap();
    assert_eq!(subject.kind, LinkKind::External);
    assert_eq!(
        subject.target_url,
        s("urn:uuid:0f4c8b1e-2c1a-4c1e-9d7e-2b0e4c1f7a11")
    );
}
