//! The FHIR requests the pages make, as paths relative to the FHIR base (`/fhir` on the
//! page's own origin). Written out in one place so the searches the app depends on can be read
//! (and tested) together, and so every value that comes from a user or a URL is encoded.

use crate::orders::OrderKind;
use crate::record::RecordPart;
use crate::route::encode;

/// Most patients the list shows for one search.
pub const PATIENT_PAGE: usize = 20;

/// Vital-sign Observations loaded per patient: about fourteen sets of seven, enough for the
/// trend lines (new ones arrive live).
pub const VITALS_PER_PATIENT: usize = 100;

/// Observations the patient page lists, newest first.
pub const RECENT_OBSERVATIONS: usize = 50;

/// Ceiling for searches that should return everything (a ward's beds, its stays): far above a
/// ward's size, within the server's 1000.
const ALL: usize = 500;

/// The ward's own Location (for its name).
pub fn ward(ward: &str) -> String {
    format!("Location/{ward}")
}

/// The ward's beds: Locations that are part of it.
pub fn beds(ward: &str) -> String {
    format!("Location?partof=Location/{ward}&_count={ALL}")
}

/// The in-progress Encounters on the ward's beds, with their patients.
pub fn stays(ward: &str) -> String {
    format!(
        "Encounter?status=in-progress&location.partof=Location/{ward}\
         &_include=Encounter:subject&_count={ALL}"
    )
}

/// Patients by id (those admitted after the page loaded).
pub fn patients(ids: &[String]) -> String {
    format!("Patient?_id={}&_count={ALL}", ids.join(","))
}

/// A patient's vital signs, newest first.
pub fn vital_signs(patient: &str) -> String {
    format!(
        "Observation?category=vital-signs&subject=Patient/{patient}&_sort=-date&_count={VITALS_PER_PATIENT}"
    )
}

/// The open orders or tasks of some patients.
pub fn open_orders(kind: OrderKind, patients: &[String]) -> String {
    let references: Vec<String> = patients.iter().map(|id| format!("Patient/{id}")).collect();
    format!(
        "{}?{}={}&status={}&_count={ALL}",
        kind.resource_type(),
        kind.patient_parameter(),
        references.join(","),
        kind.open_statuses().join(","),
    )
}

/// The patient list: by name when one is given, everyone otherwise; by family name.
pub fn patient_search(name: &str) -> String {
    let name = name.trim();
    if name.is_empty() {
        format!("Patient?_count={PATIENT_PAGE}&_sort=family")
    } else {
        format!(
            "Patient?name={}&_count={PATIENT_PAGE}&_sort=family",
            encode(name)
        )
    }
}

/// One patient.
pub fn patient(id: &str) -> String {
    format!("Patient/{id}")
}

/// One part of a patient's record, for the patient page.
pub fn record(part: RecordPart, patient: &str) -> String {
    match part {
        RecordPart::Conditions => format!("Condition?subject=Patient/{patient}&_count={ALL}"),
        RecordPart::Medications => {
            format!("MedicationRequest?subject=Patient/{patient}&_sort=-authoredon&_count={ALL}")
        }
        RecordPart::Allergies => {
            format!("AllergyIntolerance?patient=Patient/{patient}&_count={ALL}")
        }
        RecordPart::Observations => format!(
            "Observation?subject=Patient/{patient}&_sort=-date&_count={RECENT_OBSERVATIONS}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ward_searches() {
        assert_eq!(beds("ward-a"), "Location?partof=Location/ward-a&_count=500");
        assert_eq!(
            stays("ward-b"),
            "Encounter?status=in-progress&location.partof=Location/ward-b&_include=Encounter:subject&_count=500"
        );
        assert_eq!(
            vital_signs("p1"),
            "Observation?category=vital-signs&subject=Patient/p1&_sort=-date&_count=100"
        );
    }

    #[test]
    fn open_orders_of_several_patients_in_one_search() {
        let patients = ["p1".to_owned(), "p2".to_owned()];
        assert_eq!(
            open_orders(OrderKind::ServiceRequest, &patients),
            "ServiceRequest?subject=Patient/p1,Patient/p2&status=active&_count=500"
        );
        assert_eq!(
            open_orders(OrderKind::Task, &patients),
            "Task?patient=Patient/p1,Patient/p2&status=requested,received,accepted,ready,in-progress&_count=500"
        );
    }

    #[test]
    fn the_patient_search_encodes_the_name() {
        assert_eq!(
            patient_search(" van der Berg "),
            "Patient?name=van%20der%20Berg&_count=20&_sort=family"
        );
        assert_eq!(
            patient_search("a&_id=x"),
            "Patient?name=a%26_id%3Dx&_count=20&_sort=family"
        );
        assert_eq!(patient_search(""), "Patient?_count=20&_sort=family");
    }

    #[test]
    fn the_record_searches_name_the_patient() {
        for part in RecordPart::ALL {
            assert!(record(part, "p7").contains("=Patient/p7&"), "{part:?}");
        }
        assert_eq!(
            record(RecordPart::Observations, "p7"),
            "Observation?subject=Patient/p7&_sort=-date&_count=50"
        );
    }
}
