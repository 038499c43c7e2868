//! Reading workflow rows out of one resource.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

/// The workflow rows of one resource version (most resources have few or none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkflowRows {
    pub note: Option<NoteRow>,
    pub order: Option<OrderRow>,
    pub task: Option<TaskRow>,
    pub location: Option<LocationRow>,
    pub census: Vec<CensusRow>,
    pub catalog: Vec<CatalogEntry>,
}

/// `clinical_notes`: a DocumentReference or Composition.
#[derive(Debug, Clone, PartialEq)]
pub struct NoteRow {
    pub patient_id: Option<String>,
    pub encounter_id: Option<String>,
    pub status: Option<String>,
    pub type_system: Option<String>,
    pub type_code: Option<String>,
    pub type_display: Option<String>,
    pub title: Option<String>,
    pub author: Option<String>,
    pub date: Option<DateTime<Utc>>,
}

/// `orders`: a ServiceRequest or MedicationRequest.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    pub patient_id: Option<String>,
    pub encounter_id: Option<String>,
    pub status: Option<String>,
    pub intent: Option<String>,
    pub priority: Option<String>,
    pub requester: Option<String>,
    pub code_system: Option<String>,
    pub code: Option<String>,
    pub code_display: Option<String>,
    pub authored_on: Option<DateTime<Utc>>,
}

/// `tasks`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub patient_id: Option<String>,
    pub status: Option<String>,
    pub intent: Option<String>,
    pub priority: Option<String>,
    pub owner: Option<String>,
    pub focus: Option<String>,
    pub description: Option<String>,
    pub code_display: Option<String>,
    pub due: Option<DateTime<Utc>>,
    pub authored_on: Option<DateTime<Utc>>,
}

/// `locations`: what the census needs to place a bed on its ward.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationRow {
    pub name: Option<String>,
    pub status: Option<String>,
    pub physical_type: Option<String>,
    pub part_of_id: Option<String>,
}

/// `encounter_census`: an in-progress inpatient Encounter at one location.
#[derive(Debug, Clone, PartialEq)]
pub struct CensusRow {
    pub patient_id: Option<String>,
    pub location_id: String,
    pub location_name: Option<String>,
    pub class_code: Option<String>,
    pub period_start: Option<DateTime<Utc>>,
}

/// `clinical_catalog_entry`: one code this resource uses, in one catalogue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CatalogEntry {
    pub catalog: &'static str,
    pub system: String,
    pub code: String,
    pub display: Option<String>,
}

/// Encounter classes (v3 ActCode) that put a patient in a bed.
const INPATIENT_CLASSES: &[&str] = &["IMP", "ACUTE", "NONAC", "inpatient"];

/// The workflow rows of `resource`, of type `resource_type`.
pub fn extract(resource_type: &str, resource: &Value) -> WorkflowRows {
    let mut rows = WorkflowRows::default();
    match resource_type {
        "DocumentReference" => rows.note = Some(document_reference(resource)),
        "Composition" => rows.note = Some(composition(resource)),
        "ServiceRequest" => {
            rows.order = Some(order(resource, resource.get("code")));
            rows.catalog = catalog("service-request", resource.get("code"));
        }
        "MedicationRequest" => {
            let medication = resource.get("medicationCodeableConcept");
            rows.order = Some(order(resource, medication));
            rows.catalog = catalog("medication", medication);
        }
        "MedicationAdministration" | "MedicationStatement" => {
            rows.catalog = catalog("medication", resource.get("medicationCodeableConcept"));
        }
        "Medication" => rows.catalog = catalog("medication", resource.get("code")),
        "Task" => rows.task = Some(task(resource)),
        "Location" => rows.location = Some(location(resource)),
        "Encounter" => rows.census = census(resource),
        "Observation" => {
            rows.catalog = catalog(observation_catalog(resource), resource.get("code"));
        }
        "Condition" => rows.catalog = catalog("condition", resource.get("code")),
        "Procedure" => rows.catalog = catalog("procedure", resource.get("code")),
        "Immunization" => rows.catalog = catalog("immunization", resource.get("vaccineCode")),
        "AllergyIntolerance" => rows.catalog = catalog("allergy", resource.get("code")),
        _ => {}
    }
    rows
}

fn document_reference(resource: &Value) -> NoteRow {
    let (type_system, type_code, type_display) = first_coding(resource.get("type"));
    NoteRow {
        patient_id: reference_id(resource.get("subject"), "Patient"),
        encounter_id: resource
            .pointer("/context/encounter/0")
            .and_then(|encounter| reference_id(Some(encounter), "Encounter")),
        status: text(resource.get("status")),
        type_system,
        type_code,
        type_display,
        title: text(resource.get("description"))
            .or_else(|| text(resource.pointer("/content/0/attachment/title"))),
        author: reference_text(resource.pointer("/author/0")),
        date: instant(resource.get("date")),
    }
}

fn composition(resource: &Value) -> NoteRow {
    let (type_system, type_code, type_display) = first_coding(resource.get("type"));
    NoteRow {
        patient_id: reference_id(resource.get("subject"), "Patient"),
        encounter_id: reference_id(resource.get("encounter"), "Encounter"),
        status: text(resource.get("status")),
        type_system,
        type_code,
        type_display,
        title: text(resource.get("title")),
        author: reference_text(resource.pointer("/author/0")),
        date: instant(resource.get("date")),
    }
}

fn order(resource: &Value, code: Option<&Value>) -> OrderRow {
    let (code_system, code, code_display) = first_coding(code);
    OrderRow {
        patient_id: reference_id(resource.get("subject"), "Patient"),
        encounter_id: reference_id(resource.get("encounter"), "Encounter"),
        status: text(resource.get("status")),
        intent: text(resource.get("intent")),
        priority: text(resource.get("priority")),
        requester: reference_text(resource.get("requester")),
        code_system,
        code,
        code_display,
        authored_on: instant(resource.get("authoredOn")),
    }
}

fn task(resource: &Value) -> TaskRow {
    TaskRow {
        patient_id: reference_id(resource.get("for"), "Patient"),
        status: text(resource.get("status")),
        intent: text(resource.get("intent")),
        priority: text(resource.get("priority")),
        owner: reference_text(resource.get("owner")),
        focus: reference_text(resource.get("focus")),
        description: text(resource.get("description")),
        code_display: first_coding(resource.get("code"))
            .2
            .or_else(|| text(resource.pointer("/code/text"))),
        due: instant(resource.pointer("/restriction/period/end")),
        authored_on: instant(resource.get("authoredOn")),
    }
}

fn location(resource: &Value) -> LocationRow {
    LocationRow {
        name: text(resource.get("name")),
        status: text(resource.get("status")),
        physical_type: first_coding(resource.get("physicalType")).1,
        part_of_id: reference_id(resource.get("partOf"), "Location"),
    }
}

fn census(encounter: &Value) -> Vec<CensusRow> {
    let class_code = text(encounter.pointer("/class/code"));
    let in_bed = text(encounter.get("status")).as_deref() == Some("in-progress")
        && class_code
            .as_deref()
            .is_some_and(|class| INPATIENT_CLASSES.contains(&class));
    if !in_bed {
        return Vec::new();
    }
    let patient_id = reference_id(encounter.get("subject"), "Patient");
    let period_start = instant(encounter.pointer("/period/start"));
    let mut rows: Vec<CensusRow> = array(encounter.get("location"))
        .filter(|place| {
            !matches!(
                place.get("status").and_then(Value::as_str),
                Some("completed")
            )
        })
        .filter_map(|place| {
            let reference = place.get("location")?;
            Some(CensusRow {
                patient_id: patient_id.clone(),
                location_id: reference_id(Some(reference), "Location")?,
                location_name: text(reference.get("display")),
                class_code: class_code.clone(),
                period_start,
            })
        })
        .collect();
    rows.dedup_by(|a, b| a.location_id == b.location_id);
    rows
}

/// Laboratory results and vital signs get catalogues of their own; other observation codes
/// share one.
fn observation_catalog(observation: &Value) -> &'static str {
    let categories: Vec<&str> = array(observation.get("category"))
        .flat_map(|category| array(category.get("coding")))
        .filter_map(|coding| coding.get("code").and_then(Value::as_str))
        .collect();
    if categories.contains(&"laboratory") {
        "lab-test"
    } else if categories.contains(&"vital-signs") {
        "vital-sign"
    } else {
        "observation"
    }
}

fn catalog(name: &'static str, concept: Option<&Value>) -> Vec<CatalogEntry> {
    let mut entries: Vec<CatalogEntry> = array(concept.and_then(|concept| concept.get("coding")))
        .filter_map(|coding| {
            Some(CatalogEntry {
                catalog: name,
                system: text(coding.get("system"))?,
                code: text(coding.get("code"))?,
                display: text(coding.get("display")),
            })
        })
        .collect();
    entries.sort();
    entries.dedup_by(|a, b| a.system == b.system && a.code == b.code);
    entries
}

fn array(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter())
        .into_iter()
        .flatten()
}

fn text(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_owned)
}

/// System, code and display of a CodeableConcept's first coding.
fn first_coding(concept: Option<&Value>) -> (Option<String>, Option<String>, Option<String>) {
    let coding = concept.and_then(|concept| concept.pointer("/coding/0"));
    (
        text(coding.and_then(|coding| coding.get("system"))),
        text(coding.and_then(|coding| coding.get("code"))),
        text(coding.and_then(|coding| coding.get("display")))
            .or_else(|| text(concept.and_then(|concept| concept.get("text")))),
    )
}

/// The reference text (`Practitioner/7`), or the display where there is no reference.
fn reference_text(reference: Option<&Value>) -> Option<String> {
    let reference = reference?;
    text(reference.get("reference")).or_else(|| text(reference.get("display")))
}

/// The id of a `<Type>/<id>` reference (also absolute or versioned) to a resource of `of_type`.
fn reference_id(reference: Option<&Value>, of_type: &str) -> Option<String> {
    let text = reference?.get("reference")?.as_str()?;
    let path = text.split("/_history/").next()?;
    let mut segments = path.rsplit('/');
    let id = segments.next()?;
    let resource_type = segments.next()?;
    (resource_type == of_type && !id.is_empty()).then(|| id.to_owned())
}

/// The first instant of a FHIR date, dateTime or instant (`2020` is 2020-01-01T00:00Z); dates
/// without a zone are taken as UTC, as the search indexes take them.
fn instant(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let text = value?.as_str()?;
    if let Ok(moment) = DateTime::parse_from_rfc3339(text) {
        return Some(moment.with_timezone(&Utc));
    }
    let padded = match text.len() {
        4 => format!("{text}-01-01"),
        7 => format!("{text}-01"),
        _ => text.to_owned(),
    };
    NaiveDate::parse_from_str(&padded, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|moment| moment.and_utc())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_medication_request_is_an_order_and_a_catalogue_entry() {
        let request = json!({
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "priority": "urgent",
            "medicationCodeableConcept": {"coding": [
                {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "313782", "display": "Acetaminophen 325 MG"}
            ]},
            "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": "Encounter/e1"},
            "requester": {"reference": "Practitioner/dr"},
            "authoredOn": "2024-05-01T10:00:00+02:00"
        });
        let rows = extract("MedicationRequest", &request);
        let order = rows.order.expect("an order row");
        assert_eq!(order.patient_id.as_deref(), Some("p1"));
        assert_eq!(order.encounter_id.as_deref(), Some("e1"));
        assert_eq!(order.priority.as_deref(), Some("urgent"));
        assert_eq!(order.requester.as_deref(), Some("Practitioner/dr"));
        assert_eq!(order.code.as_deref(), Some("313782"));
        assert_eq!(
            order.authored_on.map(|at| at.to_rfc3339()),
            Some("2024-05-01T08:00:00+00:00".to_owned())
        );
        assert_eq!(rows.catalog.len(), 1);
        assert_eq!(rows.catalog[0].catalog, "medication");
    }

    #[test]
    fn only_in_progress_inpatient_encounters_are_in_the_census() {
        let mut encounter = json!({
            "resourceType": "Encounter", "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2024-05-01"},
            "location": [
                {"location": {"reference": "Location/bed-3", "display": "Bed 3"}, "status": "active"},
                {"location": {"reference": "Location/old-bed"}, "status": "completed"}
            ]
        });
        let census = extract("Encounter", &encounter).census;
        assert_eq!(census.len(), 1);
        assert_eq!(census[0].location_id, "bed-3");
        assert_eq!(census[0].patient_id.as_deref(), Some("p1"));

        encounter["status"] = json!("finished");
        assert!(extract("Encounter", &encounter).census.is_empty());
        encounter["status"] = json!("in-progress");
        encounter["class"]["code"] = json!("AMB");
        assert!(extract("Encounter", &encounter).census.is_empty());
    }

    #[test]
    fn observations_go_to_the_catalogue_of_their_category() {
        let lab = json!({"category": [{"coding": [{"code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}, {"system": "http://loinc.org", "code": "2345-7"}]}});
        let rows = extract("Observation", &lab);
        assert_eq!(rows.catalog.len(), 1, "duplicate codings count once");
        assert_eq!(rows.catalog[0].catalog, "lab-test");
        let vital = json!({"category": [{"coding": [{"code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}});
        assert_eq!(
            extract("Observation", &vital).catalog[0].catalog,
            "vital-sign"
        );
    }

    #[test]
    fn references_to_other_types_are_not_taken_for_patients() {
        assert_eq!(
            reference_id(Some(&json!({"reference": "Group/g1"})), "Patient"),
            None
        );
        assert_eq!(
            reference_id(
                Some(&json!({"reference": "http://x/fhir/Patient/p9/_history/2"})),
                "Patient"
            ),
            Some("p9".to_owned())
        );
        assert_eq!(
            reference_id(Some(&json!({"reference": "urn:uuid:123"})), "Patient"),
            None
        );
    }

    #[test]
    fn partial_dates_start_at_their_first_instant() {
        assert_eq!(
            instant(Some(&json!("2020-03"))).map(|at| at.to_rfc3339()),
            Some("2020-03-01T00:00:00+00:00".to_owned())
        );
        assert_eq!(instant(Some(&json!("not a date"))), None);
    }
}
