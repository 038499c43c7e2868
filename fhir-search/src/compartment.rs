//! The Patient compartment (from the official CompartmentDefinition in `schemas/fhir/`): which
//! reference parameters of which types put a resource in a patient's compartment. Compartment
//! search (`/fhir/Patient/<id>/Observation?...`) and `Patient/<id>/$everything` use it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

const DEFINITION: &str = include_str!("../../schemas/fhir/compartmentdefinition-patient.json");

#[derive(Deserialize)]
struct Definition {
    resource: Vec<Member>,
}

#[derive(Deserialize)]
struct Member {
    code: String,
    #[serde(default)]
    param: Vec<String>,
}

/// Resource type -> the parameters that link it to the patient (types without any are not in
/// the compartment).
pub fn patient_compartment() -> &'static BTreeMap<String, Vec<String>> {
    static COMPARTMENT: OnceLock<BTreeMap<String, Vec<String>>> = OnceLock::new();
    COMPARTMENT.get_or_init(|| {
        let definition: Definition = serde_json::from_str(DEFINITION).unwrap_or(Definition {
            resource: Vec::new(),
        });
        definition
            .resource
            .into_iter()
            .filter(|member| !member.param.is_empty())
            .map(|member| (member.code, member.param))
            .collect()
    })
}

/// A patient's compartment as a filter on a search.
#[derive(Debug, Clone)]
pub struct PatientCompartment {
    pub patient_id: String,
    /// `(resource type, parameter)` pairs that link a resource to the patient.
    pub links: Vec<(String, String)>,
    /// Whether the Patient resource itself belongs to the result (for `$everything`).
    pub include_patient: bool,
}

impl PatientCompartment {
    /// The compartment restricted to `types`.
    pub fn for_types(patient_id: &str, types: &[String], include_patient: bool) -> Self {
        let compartment = patient_compartment();
        let links = types
            .iter()
            .filter_map(|t| compartment.get(t).map(|params| (t, params)))
            .flat_map(|(t, params)| params.iter().map(move |p| (t.clone(), p.clone())))
            .collect();
        Self {
            patient_id: patient_id.to_owned(),
            links,
            include_patient,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_read() {
        let compartment = patient_compartment();
        assert_eq!(compartment["Observation"], vec!["subject", "performer"]);
        assert!(compartment.len() > 50);
        assert!(!compartment.contains_key("Practitioner"));
    }
}
