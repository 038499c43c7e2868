//! What a grant gets, and how scopes read to the person consenting.
//!
//! A grant is the requested scopes narrowed to what the client may be granted (a requested
//! scope stays when one of the client's allowed scopes covers it, `ScopeSet::covers`). People
//! act through `user/` and `patient/` scopes, backend services through `system/` scopes only;
//! what a role may do is decided later, on every request, by `access_policy::authorize`.

use access_policy::{Permissions, Scope, ScopeContext, ScopeSet};

/// The scopes of a sign-in grant: each requested scope the client may have, `system/` ones
/// excepted.
pub fn for_user(requested: &ScopeSet, allowed: &ScopeSet) -> ScopeSet {
    narrow(requested, allowed, |scope| {
        scope.context != ScopeContext::System
    })
}

/// The scopes of a client-credentials grant: each requested `system/` scope the client may
/// have, or all its `system/` scopes when it asked for none. `Err` names the first scope it may
/// not have: a backend asking for more than it may is refused, not quietly narrowed.
pub fn for_service(requested: Option<&ScopeSet>, allowed: &ScopeSet) -> Result<ScopeSet, String> {
    let Some(requested) = requested else {
        return Ok(ScopeSet {
            resources: allowed
                .resources
                .iter()
                .filter(|scope| scope.context == ScopeContext::System)
                .cloned()
                .collect(),
            others: Vec::new(),
        });
    };
    if let Some(other) = requested.others.first() {
        return Err(format!(
            "'{other}' is not a backend service scope (only system/ scopes are)"
        ));
    }
    for scope in &requested.resources {
        if scope.context != ScopeContext::System {
            return Err(format!(
                "'{scope}' is not a backend service scope (only system/ scopes are)"
            ));
        }
        if !allowed.resources.iter().any(|own| own.covers(scope)) {
            return Err(format!("this client may not be granted '{scope}'"));
        }
    }
    Ok(requested.clone())
}

fn narrow(requested: &ScopeSet, allowed: &ScopeSet, usable: impl Fn(&Scope) -> bool) -> ScopeSet {
    ScopeSet {
        resources: requested
            .resources
            .iter()
            .filter(|scope| usable(scope) && allowed.resources.iter().any(|own| own.covers(scope)))
            .cloned()
            .collect(),
        others: requested
            .others
            .iter()
            .filter(|other| allowed.has(other))
            .cloned()
            .collect(),
    }
}

/// A scope in words, for the consent page.
pub fn describe(scope: &str) -> String {
    match Scope::parse(scope) {
        Ok(Some(resource)) => describe_resource(&resource),
        _ => match scope {
            "openid" => "Confirm to the app who you are".to_owned(),
            "fhirUser" => "Tell the app which practitioner record is yours".to_owned(),
            "profile" => "Share your name with the app".to_owned(),
            "launch" => "Open with the patient the record has open".to_owned(),
            "launch/patient" => "Work with one patient, whom you choose now".to_owned(),
            "launch/encounter" => "Work within one encounter".to_owned(),
            "online_access" => "Stay connected while you are signed in (up to 8 hours)".to_owned(),
            "offline_access" => {
                "Stay connected after you close the app (up to 30 days, until you sign out)"
                    .to_owned()
            }
            other => format!("'{other}'"),
        },
    }
}

fn describe_resource(scope: &Scope) -> String {
    let verbs: Vec<&str> = [
        (Permissions::CREATE, "create"),
        (Permissions::READ, "read"),
        (Permissions::UPDATE, "update"),
        (Permissions::DELETE, "delete"),
        (Permissions::SEARCH, "search"),
    ]
    .into_iter()
    .filter(|(bit, _)| scope.permissions.contains(*bit))
    .map(|(_, verb)| verb)
    .collect();
    let verbs = match verbs.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    };
    let mut verbs = verbs;
    if let Some(first) = verbs.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let what = match scope.resource_type {
        Some(resource_type) => format!("{} records", resource_type.as_str()),
        None => "all records".to_owned(),
    };
    let whose = match scope.context {
        ScopeContext::Patient => " of the selected patient",
        ScopeContext::User => " you have access to",
        ScopeContext::System => "",
    };
    let only = if scope.restrictions.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = scope
            .restrictions
            .iter()
            .map(|(name, value)| format!("{name} {value}"))
            .collect();
        format!(" (only {})", list.join(", "))
    };
    format!("{verbs} {what}{whose}{only}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn set(text: &str) -> ScopeSet {
        ScopeSet::parse(text).unwrap()
    }

    #[test]
    fn a_user_grant_keeps_what_the_client_may_have() {
        let allowed = set("openid fhirUser launch/patient user/*.cruds patient/*.cruds");
        let granted = for_user(
            &set("openid profile patient/Observation.rs user/Patient.r system/*.r launch/patient"),
            &allowed,
        );
        assert_eq!(
            granted.to_string(),
            "patient/Observation.rs user/Patient.r openid launch/patient"
        );
    }

    #[test]
    fn a_service_grant_is_system_scopes_within_the_client() {
        let allowed = set("system/Patient.rs system/Observation.cruds");
        assert_eq!(
            for_service(Some(&set("system/Observation.r")), &allowed)
                .unwrap()
                .to_string(),
            "system/Observation.r"
        );
        assert_eq!(
            for_service(None, &allowed).unwrap().to_string(),
            "system/Patient.rs system/Observation.cruds"
        );
        assert!(for_service(Some(&set("system/Patient.cruds")), &allowed).is_err());
        assert!(for_service(Some(&set("user/Patient.r")), &allowed).is_err());
        assert!(for_service(Some(&set("openid")), &allowed).is_err());
    }

    #[test]
    fn scopes_in_words() {
        assert_eq!(
            describe("patient/Observation.rs?category=vital-signs"),
            "Read and search Observation records of the selected patient (only category vital-signs)"
        );
        assert_eq!(
            describe("user/*.cruds"),
            "Create, read, update, delete and search all records you have access to"
        );
        assert!(describe("offline_access").contains("30 days"));
    }
}
