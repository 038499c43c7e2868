//! One patient's record as the patient page lists it: demographics, and conditions,
//! medications, allergies and observations each reduced to a line (what, detail, status,
//! when), so the view only lays lines out.

use serde_json::Value;

use crate::fhir;

/// The parts of a record the patient page lists, in page order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordPart {
    Conditions,
    Medications,
    Allergies,
    Observations,
}

impl RecordPart {
    pub const ALL: [RecordPart; 4] = [
        RecordPart::Conditions,
        RecordPart::Medications,
        RecordPart::Allergies,
        RecordPart::Observations,
    ];

    pub fn title(self) -> &'static str {
        match self {
            RecordPart::Conditions => "Conditions",
            RecordPart::Medications => "Medications",
            RecordPart::Allergies => "Allergies",
            RecordPart::Observations => "Recent observations",
        }
    }

    /// The value of the section's `data-section` attribute.
    pub fn hook(self) -> &'static str {
        match self {
            RecordPart::Conditions => "conditions",
            RecordPart::Medications => "medications",
            RecordPart::Allergies => "allergies",
            RecordPart::Observations => "observations",
        }
    }

    /// The lines of this part among a search's resources (which may hold others, such as an
    /// OperationOutcome), newest first.
    pub fn lines<'a>(self, resources: impl IntoIterator<Item = &'a Value>) -> Vec<Line> {
        let (resource_type, line): (&str, fn(&Value) -> Line) = match self {
            RecordPart::Conditions => ("Condition", Line::condition),
            RecordPart::Medications => ("MedicationRequest", Line::medication),
            RecordPart::Allergies => ("AllergyIntolerance", Line::allergy),
            RecordPart::Observations => ("Observation", Line::observation),
        };
        let mut lines: Vec<Line> = resources
            .into_iter()
            .filter(|resource| fhir::resource_type(resource) == Some(resource_type))
            .map(line)
            .collect();
        newest_first(&mut lines);
        lines
    }
}

/// Who the patient is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demographics {
    pub name: String,
    pub gender: Option<String>,
    pub birth_date: Option<String>,
    /// The identifiers' values, such as the medical record number.
    pub identifiers: Vec<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
}

impl Demographics {
    pub fn from_patient(patient: &Value) -> Demographics {
        let address = patient["address"].as_array().and_then(|addresses| {
            let address = addresses.first()?;
            if let Some(text) = address["text"].as_str() {
                return Some(text.to_owned());
            }
            let mut parts: Vec<&str> = address["line"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            parts.extend(
                ["city", "state", "postalCode", "country"]
                    .iter()
                    .filter_map(|element| address[*element].as_str()),
            );
            (!parts.is_empty()).then(|| parts.join(", "))
        });
        let phone = patient["telecom"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|contact| contact["system"] == "phone")
            .and_then(|contact| contact["value"].as_str())
            .map(str::to_owned);
        Demographics {
            name: fhir::human_name(patient).unwrap_or_else(|| "(no name)".to_owned()),
            gender: patient["gender"].as_str().map(str::to_owned),
            birth_date: patient["birthDate"].as_str().map(str::to_owned),
            identifiers: patient["identifier"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|identifier| identifier["value"].as_str())
                .map(str::to_owned)
                .collect(),
            address,
            phone,
        }
    }
}

/// One line of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// `Type/id`, the line's key.
    pub key: String,
    /// What it is: the condition, the medication, the substance, the test.
    pub title: String,
    /// The dosage, the reaction, the value.
    pub detail: Option<String>,
    /// The clinical or workflow status.
    pub status: Option<String>,
    /// An observation's interpretation code (`H`, `L`, ...), when it is not normal.
    pub flag: Option<String>,
    /// When it happened or was written, seconds since the Unix epoch.
    pub at: Option<i64>,
}

impl Line {
    pub fn condition(condition: &Value) -> Line {
        Line {
            status: fhir::concept_text(&condition["clinicalStatus"]).map(str::to_owned),
            at: first_time(condition, &["onsetDateTime", "recordedDate"]),
            ..Line::titled(condition, &condition["code"])
        }
    }

    pub fn medication(request: &Value) -> Line {
        let mut line = Line::titled(request, &request["medicationCodeableConcept"]);
        if let Some(display) = request["medicationReference"]["display"].as_str() {
            line.title = display.to_owned();
        }
        Line {
            detail: request["dosageInstruction"][0]["text"]
                .as_str()
                .map(str::to_owned),
            status: request["status"].as_str().map(str::to_owned),
            at: first_time(request, &["authoredOn"]),
            ..line
        }
    }

    pub fn allergy(allergy: &Value) -> Line {
        let reactions: Vec<&str> = allergy["reaction"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|reaction| reaction["manifestation"].as_array().into_iter().flatten())
            .filter_map(fhir::concept_text)
            .collect();
        let criticality = allergy["criticality"]
            .as_str()
            .map(|criticality| format!("criticality {criticality}"));
        let detail: Vec<String> = criticality
            .into_iter()
            .chain((!reactions.is_empty()).then(|| reactions.join(", ")))
            .collect();
        Line {
            detail: (!detail.is_empty()).then(|| detail.join("; ")),
            status: fhir::concept_text(&allergy["clinicalStatus"]).map(str::to_owned),
            at: first_time(allergy, &["onsetDateTime", "recordedDate"]),
            ..Line::titled(allergy, &allergy["code"])
        }
    }

    pub fn observation(observation: &Value) -> Line {
        let flag = observation["interpretation"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|concept| concept["coding"].as_array().into_iter().flatten())
            .filter_map(|coding| coding["code"].as_str())
            .find(|code| *code != "N")
            .map(str::to_owned);
        Line {
            detail: observation_value(observation),
            status: observation["status"].as_str().map(str::to_owned),
            flag,
            at: crate::vitals::effective_time(observation),
            ..Line::titled(observation, &observation["code"])
        }
    }

    fn titled(resource: &Value, concept: &Value) -> Line {
        Line {
            key: fhir::key(resource).unwrap_or_default(),
            title: fhir::concept_text(concept)
                .unwrap_or("(uncoded)")
                .to_owned(),
            detail: None,
            status: None,
            flag: None,
            at: None,
        }
    }
}

fn first_time(resource: &Value, elements: &[&str]) -> Option<i64> {
    elements
        .iter()
        .find_map(|element| resource[*element].as_str().and_then(fhir::parse_time))
}

/// Newest first; lines without a time last.
pub fn newest_first(lines: &mut [Line]) {
    lines.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.key.cmp(&b.key)));
}

/// An Observation's value in words: `13.5 g/dL`, `Acute confusion`, `124/78 mm[Hg]` for a
/// panel whose components share a unit.
pub fn observation_value(observation: &Value) -> Option<String> {
    if let Some(value) = value_text(observation) {
        return Some(value);
    }
    let components: Vec<&Value> = observation["component"].as_array()?.iter().collect();
    let units: Vec<Option<&str>> = components
        .iter()
        .map(|component| quantity_unit(&component["valueQuantity"]))
        .collect();
    let shared_unit = units
        .first()
        .copied()
        .flatten()
        .filter(|unit| units.iter().all(|other| *other == Some(unit)) && components.len() > 1);
    if let Some(unit) = shared_unit {
        let numbers: Option<Vec<String>> = components
            .iter()
            .map(|component| number(&component["valueQuantity"]["value"]))
            .collect();
        return numbers.map(|numbers| format!("{} {unit}", numbers.join("/")));
    }
    let values: Vec<String> = components.iter().filter_map(|c| value_text(c)).collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// The `value[x]` of an Observation or one of its components.
fn value_text(element: &Value) -> Option<String> {
    let quantity = &element["valueQuantity"];
    if let Some(value) = number(&quantity["value"]) {
        return Some(match quantity_unit(quantity) {
            Some(unit) => format!("{value} {unit}"),
            None => value,
        });
    }
    if let Some(text) = fhir::concept_text(&element["valueCodeableConcept"]) {
        return Some(text.to_owned());
    }
    if let Some(text) = element["valueString"].as_str() {
        return Some(text.to_owned());
    }
    element["valueBoolean"]
        .as_bool()
        .map(|value| if value { "yes" } else { "no" }.to_owned())
}

/// A JSON number as written (`1.50` stays `1.50` when serde_json keeps it so).
fn number(value: &Value) -> Option<String> {
    value.is_number().then(|| value.to_string())
}

fn quantity_unit(quantity: &Value) -> Option<&str> {
    quantity["unit"]
        .as_str()
        .or_else(|| quantity["code"].as_str())
        .filter(|unit| !unit.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn demographics_read_name_identifiers_address_and_phone() {
        let patient = json!({"resourceType": "Patient", "id": "p",
            "identifier": [{"system": "http://wardline.example/mrn", "value": "MRN-7-00001"}],
            "name": [{"use": "official", "family": "Okafor", "given": ["Emeka"]}],
            "telecom": [{"system": "email", "value": "e@x"}, {"system": "phone", "value": "555-0101"}],
            "gender": "male", "birthDate": "1950-04-02",
            "address": [{"line": ["12 Main Street"], "city": "Madison", "state": "WI", "country": "US"}]});
        let demographics = Demographics::from_patient(&patient);
        assert_eq!(demographics.name, "Emeka Okafor");
        assert_eq!(demographics.identifiers, ["MRN-7-00001"]);
        assert_eq!(
            demographics.address.as_deref(),
            Some("12 Main Street, Madison, WI, US")
        );
        assert_eq!(demographics.phone.as_deref(), Some("555-0101"));
        assert_eq!(demographics.gender.as_deref(), Some("male"));
    }

    #[test]
    fn quantities_keep_their_written_precision_and_unit() {
        let observation = json!({"resourceType": "Observation", "id": "o",
            "code": {"text": "Hemoglobin"}, "valueQuantity": {"value": 13.5, "unit": "g/dL"},
            "interpretation": [{"coding": [{"code": "N"}]}]});
        let line = Line::observation(&observation);
        assert_eq!(line.title, "Hemoglobin");
        assert_eq!(line.detail.as_deref(), Some("13.5 g/dL"));
        assert_eq!(line.flag, None);
    }

    #[test]
    fn a_blood_pressure_panel_reads_as_systolic_over_diastolic() {
        let panel = json!({"resourceType": "Observation", "id": "bp", "code": {"text": "Blood pressure"},
        "component": [
            {"code": {"text": "Systolic"}, "valueQuantity": {"value": 124, "unit": "mm[Hg]"}},
            {"code": {"text": "Diastolic"}, "valueQuantity": {"value": 78, "unit": "mm[Hg]"}},
        ]});
        assert_eq!(observation_value(&panel).as_deref(), Some("124/78 mm[Hg]"));
        let mixed = json!({"component": [
            {"valueQuantity": {"value": 1, "unit": "a"}},
            {"valueCodeableConcept": {"text": "high"}},
        ]});
        assert_eq!(observation_value(&mixed).as_deref(), Some("1 a, high"));
    }

    #[test]
    fn coded_values_and_abnormal_flags_are_shown() {
        let observation = json!({"resourceType": "Observation", "id": "c",
            "code": {"text": "Level of responsiveness"},
            "valueCodeableConcept": {"coding": [{"display": "Acute confusion"}]},
            "interpretation": [{"coding": [{"code": "H"}]}],
            "effectiveDateTime": "2026-06-01T12:00:00Z"});
        let line = Line::observation(&observation);
        assert_eq!(line.detail.as_deref(), Some("Acute confusion"));
        assert_eq!(line.flag.as_deref(), Some("H"));
        assert_eq!(line.at, fhir::parse_time("2026-06-01T12:00:00Z"));
    }

    #[test]
    fn medications_allergies_and_conditions_read_their_parts() {
        let medication = Line::medication(&json!({"resourceType": "MedicationRequest", "id": "m",
            "status": "active", "medicationCodeableConcept": {"text": "lisinopril 10 MG Oral Tablet"},
            "dosageInstruction": [{"text": "one tablet by mouth once daily"}],
            "authoredOn": "2025-01-02T00:00:00Z"}));
        assert_eq!(medication.title, "lisinopril 10 MG Oral Tablet");
        assert_eq!(
            medication.detail.as_deref(),
            Some("one tablet by mouth once daily")
        );
        assert_eq!(medication.status.as_deref(), Some("active"));

        let allergy = Line::allergy(&json!({"resourceType": "AllergyIntolerance", "id": "a",
            "code": {"text": "Penicillin"}, "criticality": "high",
            "clinicalStatus": {"coding": [{"code": "active", "display": "Active"}]},
            "reaction": [{"manifestation": [{"text": "Hives"}, {"text": "Wheeze"}]}]}));
        assert_eq!(allergy.title, "Penicillin");
        assert_eq!(
            allergy.detail.as_deref(),
            Some("criticality high; Hives, Wheeze")
        );
        assert_eq!(allergy.status.as_deref(), Some("Active"));

        let condition = Line::condition(&json!({"resourceType": "Condition", "id": "c",
            "code": {"coding": [{"display": "Asthma"}]}, "recordedDate": "2020-01-01"}));
        assert_eq!(condition.title, "Asthma");
        assert_eq!(condition.key, "Condition/c");
        assert_eq!(condition.at, fhir::parse_time("2020-01-01"));
    }

    #[test]
    fn a_part_lists_only_its_own_resources_newest_first() {
        let found = [
            json!({"resourceType": "Observation", "id": "old", "code": {"text": "Pulse"},
                "effectiveDateTime": "2026-06-01T08:00:00Z"}),
            json!({"resourceType": "OperationOutcome", "issue": []}),
            json!({"resourceType": "Observation", "id": "new", "code": {"text": "Pulse"},
                "effectiveDateTime": "2026-06-01T12:00:00Z"}),
        ];
        let lines = RecordPart::Observations.lines(&found);
        let keys: Vec<&str> = lines.iter().map(|line| line.key.as_str()).collect();
        assert_eq!(keys, ["Observation/new", "Observation/old"]);
        assert!(RecordPart::Conditions.lines(&found).is_empty());
    }

    #[test]
    fn lines_sort_newest_first_with_undated_last() {
        let line = |key: &str, at: Option<i64>| Line {
            key: key.into(),
            title: key.into(),
            detail: None,
            status: None,
            flag: None,
            at,
        };
        let mut lines = vec![line("a", Some(1)), line("b", None), line("c", Some(3))];
        newest_first(&mut lines);
        let keys: Vec<&str> = lines.iter().map(|line| line.key.as_str()).collect();
        assert_eq!(keys, ["c", "a", "b"]);
    }
}
