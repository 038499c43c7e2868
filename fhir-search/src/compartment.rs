//! The Patient compartment (from the official CompartmentDefinition in `schemas/fhir/`): which
//! reference parameters of which types put a resource in a patient's compartment. Compartment
//! search (`/fhir/Patient/<id>/Observation?...`) and `Patient/<id>/$everything` use it, and so
//! do the notifier (which patients an event concerns) and authorisation (whether a resource is
//! in the compartment of the patient a token is bound to), through [`patients_of`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use crate::Registry;
use crate::extract::{ExtractOptions, index_resource};
use crate::index::LinkKind;

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

/// The patients whose compartment holds `resource` (of type `resource_type`, id `id`): the
/// Patient itself, or the patients its compartment references point to, read with the same
/// index rules as compartment search. Empty for types outside the compartment.
pub fn patients_of(
    registry: &Registry,
    options: &ExtractOptions,
    resource_type: &str,
    id: &str,
    resource: &Value,
) -> BTreeSet<String> {
    if resource_type == "Patient" {
        return BTreeSet::from([id.to_owned()]);
    }
    let Some(params) = patient_compartment().get(resource_type) else {
        return BTreeSet::new();
    };
    index_resource(registry, options, resource)
        .links
        .into_iter()
        .filter(|link| {
            link.kind == LinkKind::Local
                && link.target_type.as_deref() == Some("Patient")
                && params.contains(&link.param)
        })
        .filter_map(|link| link.target_id)
        .collect()
}

/// Whether resources of `resource_type` can belong to a patient's compartment at all.
pub fn in_compartment(resource_type: &str) -> bool {
    resource_type == "Patient" || patient_compartment().contains_key(resource_type)
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
