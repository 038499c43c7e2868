//! The patient picker's search: `Patient?name=<text>` against the FHIR server, from inside
//! (the query service, not the edge), with an access token this service issues to itself
//! (`system/Patient.rs`, in a session of its own, re-issued shortly before it expires).
//!
//! The FHIR base comes from the settings (`--internal-fhir-base`) and is read at each search,
//! so that a process embedding the service can start the FHIR server after it and point the
//! picker there ([`Picker::set_base`]): the FHIR server needs the identity service's address
//! to check tokens, so one of the two has to learn the other's late.

use std::sync::{Mutex, RwLock};
use std::time::Duration;

use access_policy::{AccessClaims, ScopeSet};
use serde_json::Value;

use crate::AppState;
use crate::error::Error;
use crate::ids::random_token;
use crate::pages::PatientChoice;
use crate::transient::{Session, now};

/// The client id of the service's own token.
pub const PICKER_CLIENT: &str = "identity-service";
const PICKER_SCOPE: &str = "system/Patient.rs";
/// Most patients one search shows.
const RESULTS: usize = 20;

/// Searches patients by name.
pub struct Picker {
    http: reqwest::Client,
    base: RwLock<String>,
    /// The service's token and when it expires.
    token: Mutex<Option<(String, i64)>>,
}

impl Picker {
    pub fn new(http: reqwest::Client, base: &str) -> Picker {
        Picker {
            http,
            base: RwLock::new(base.trim_end_matches('/').to_owned()),
            token: Mutex::new(None),
        }
    }

    /// Searches the FHIR server at `base` from now on.
    pub fn set_base(&self, base: &str) {
        *self
            .base
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            base.trim_end_matches('/').to_owned();
    }

    fn base(&self) -> String {
        self.base
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Patients whose name matches `text` (FHIR `name` search: starts with, any part).
    pub async fn search(&self, state: &AppState, text: &str) -> Result<Vec<PatientChoice>, Error> {
        let token = self.token(state).await?;
        let found = self.fetch(&token, text).await;
        if found.is_err() {
            // The token may be what failed (its session revoked, a restarted FHIR server with
            // other keys): the next search gets a new one.
            *self
                .token
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
        found
    }

    async fn fetch(&self, token: &str, text: &str) -> Result<Vec<PatientChoice>, Error> {
        let failed =
            |error: reqwest::Error| Error::Upstream(format!("the patient search failed: {error}"));
        let response = self
            .http
            .get(format!("{}/Patient", self.base()))
            .query(&[("name", text), ("_count", &RESULTS.to_string())])
            .header("accept", "application/fhir+json")
            .bearer_auth(token)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(failed)?;
        let bundle: Value = response.json().await.map_err(failed)?;
        Ok(choices(&bundle))
    }

    async fn token(&self, state: &AppState) -> Result<String, Error> {
        if let Some((token, expires)) = self
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            && *expires > now() + 60
        {
            return Ok(token.clone());
        }
        let issued = now();
        let ttl = i64::try_from(state.access_token_ttl().as_secs()).unwrap_or(900);
        let session = Session {
            user: PICKER_CLIENT.to_owned(),
            role: None,
            client: PICKER_CLIENT.to_owned(),
            scopes: PICKER_SCOPE.to_owned(),
            patient: None,
            encounter: None,
            fhir_user: None,
            name: None,
            classes: Vec::new(),
            need_patient_banner: false,
            aud: state.default_audience().to_owned(),
            created: issued,
            expires: issued + ttl,
        };
        let sid = state
            .transient
            .start_session(&session, state.access_token_ttl())
            .await?;
        let scope = ScopeSet::parse(PICKER_SCOPE).unwrap_or_default();
        let token = state.keys.sign(&AccessClaims {
            iss: state.settings.issuer.clone(),
            sub: PICKER_CLIENT.to_owned(),
            aud: session.aud.clone(),
            exp: session.expires,
            iat: issued,
            nbf: issued,
            jti: random_token(),
            client_id: PICKER_CLIENT.to_owned(),
            scope: scope.to_string(),
            sid,
            role: None,
            fhir_user: None,
            patient: None,
            name: None,
            classes: Vec::new(),
        })?;
        *self
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((token.clone(), session.expires));
        Ok(token)
    }
}

/// The patients of a search Bundle: id, a readable name, birth date.
fn choices(bundle: &Value) -> Vec<PatientChoice> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let patient = &entry["resource"];
            let id = patient["id"].as_str()?.to_owned();
            Some(PatientChoice {
                name: display_name(patient).unwrap_or_else(|| format!("Patient/{id}")),
                birth_date: patient["birthDate"].as_str().unwrap_or("").to_owned(),
                id,
            })
        })
        .take(RESULTS)
        .collect()
}

/// The first (official, if any) name: its text, or given names and family.
fn display_name(patient: &Value) -> Option<String> {
    let names = patient["name"].as_array()?;
    let name = names
        .iter()
        .find(|name| name["use"] == "official")
        .or_else(|| names.first())?;
    if let Some(text) = name["text"].as_str() {
        return Some(text.to_owned());
    }
    let mut parts: Vec<&str> = name["given"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if let Some(family) = name["family"].as_str() {
        parts.push(family);
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn choices_from_a_search_bundle() {
        let bundle = json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1", "birthDate": "1970-02-03",
             "name": [{"use": "nickname", "given": ["Annie"]},
                      {"use": "official", "family": "Smith", "given": ["Ann", "B"]}]}},
            {"resource": {"resourceType": "Patient", "id": "p2"}},
        ]});
        let found = choices(&bundle);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].name, "Ann B Smith");
        assert_eq!(found[0].birth_date, "1970-02-03");
        assert_eq!(found[1].name, "Patient/p2");
    }
}
