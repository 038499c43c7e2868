//! Authorisation of writes. Every entry, a REST request's or a Bundle's, is put to the policy
//! (`access_policy::authorize`) before anything is matched or written, so a Bundle can never
//! do what the same requests sent one by one could not; and one refused entry fails a
//! transaction whole.
//!
//! A token bound to one patient (`patient/` scopes) may only write inside that patient's
//! compartment: the resource it sends, and the resource it replaces or deletes, must both be
//! in it. Conditional writes and reads inside Bundles search beyond the compartment, so such a
//! token may not make them (it reads through the query service, which bounds its searches).

use access_policy::{Interaction, Principal, SandboxAccess, authorize, authorize_in_sandbox};
use event_store::EventStore;
use fhir_search::Registry;
use fhir_search::compartment::{in_compartment, patients_of};
use fhir_search::extract::ExtractOptions;
use serde_json::Value;

use crate::entry::{Entry, Method, Target};
use crate::error::WriteError;

/// What the policy needs besides the caller: how to read a resource's compartment.
pub struct WriteGuard<'a> {
    pub principal: &'a Principal,
    /// The teaching sandbox written in, whose rules the policy applies; none for the live
    /// record.
    pub sandbox: Option<&'a event_store::sandbox::Sandbox>,
    pub registry: &'static Registry,
    pub extract: ExtractOptions,
}

impl WriteGuard<'_> {
    /// Checks one entry against the policy; the entry's body must already be checked
    /// (`plan::check`). Reads the resource an update, patch or delete replaces when the token is
    /// bound to a patient.
    pub async fn authorize(&self, store: &EventStore, entry: &Entry) -> Result<(), WriteError> {
        let resource_type = entry.target.resource_type();
        let mut patient = None;
        for interaction in interactions(entry) {
            let access = match self.sandbox {
                Some(sandbox) => authorize_in_sandbox(
                    self.principal,
                    interaction,
                    resource_type,
                    SandboxAccess {
                        class: sandbox.class.as_deref(),
                    },
                ),
                None => authorize(self.principal, interaction, resource_type),
            }
            .map_err(WriteError::Forbidden)?;
            if !access.restrictions.is_empty() && is_write(interaction) {
                return Err(WriteError::NotPermitted(format!(
                    "the token's scopes allow {} on {resource_type} only for resources matching \
                     search restrictions, and writes under restricted scopes are not accepted",
                    interaction.as_str()
                )));
            }
            patient = patient.or(access.patient);
        }
        let Some(patient) = patient else {
            return Ok(());
        };
        let outside = || {
            WriteError::NotPermitted(format!(
                "the token is bound to Patient/{patient}: {} is outside that patient's compartment",
                entry.describe()
            ))
        };
        if !in_compartment(resource_type.as_str()) {
            // Types no patient owns (Practitioner, Medication): the scopes decided.
            return Ok(());
        }
        let conditional = entry.if_none_exist.is_some()
            || matches!(entry.target, Target::Criteria(..))
            || matches!(entry.method, Method::Get | Method::Head);
        if conditional {
            return Err(WriteError::NotPermitted(format!(
                "the token is bound to Patient/{patient}: conditional writes and reads inside \
                 Bundles search beyond that patient's compartment; use the resource's id"
            )));
        }
        if let Some(body) = entry
            .body
            .as_ref()
            .filter(|_| entry.method != Method::Patch)
        {
            let id = body.get("id").and_then(Value::as_str).unwrap_or_default();
            if !self.holds(&patient, resource_type.as_str(), id, body) {
                return Err(outside());
            }
        }
        if let Target::Instance(resource_type, id) = &entry.target {
            let current = store
                .latest(resource_type.as_str(), id.as_str())
                .await
                .map_err(WriteError::from)?;
            if let Some(current) = current.filter(|event| !event.is_delete()) {
                let resource: Value = serde_json::from_str(&current.resource).unwrap_or_default();
                if !self.holds(&patient, resource_type.as_str(), id.as_str(), &resource) {
                    return Err(outside());
                }
            }
        }
        Ok(())
    }

    fn holds(&self, patient: &str, resource_type: &str, id: &str, resource: &Value) -> bool {
        patients_of(self.registry, &self.extract, resource_type, id, resource).contains(patient)
    }
}

/// The interactions an entry performs: a conditional write is its write and a search.
fn interactions(entry: &Entry) -> Vec<Interaction> {
    let searches = entry.if_none_exist.is_some() || matches!(entry.target, Target::Criteria(..));
    let main = match (entry.method, &entry.target) {
        (Method::Post, _) => Interaction::Create,
        (Method::Put, _) => Interaction::Update,
        (Method::Patch, _) => Interaction::Patch,
        (Method::Delete, _) => Interaction::Delete,
        (Method::Get | Method::Head, Target::Instance(..)) => Interaction::Read,
        (Method::Get | Method::Head, Target::Version(..)) => Interaction::Vread,
        (Method::Get | Method::Head, _) => Interaction::Search,
    };
    let mut all = vec![main];
    if searches && main != Interaction::Search {
        all.push(Interaction::Search);
    }
    all
}

fn is_write(interaction: Interaction) -> bool {
    matches!(
        interaction,
        Interaction::Create | Interaction::Update | Interaction::Patch | Interaction::Delete
    )
}
