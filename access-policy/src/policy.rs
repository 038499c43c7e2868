//! The authorisation policy: whether a principal may perform an interaction on a resource type,
//! and within what bounds (one patient's compartment, `?param=value` restrictions).
//!
//! A person's rights are their role's rights intersected with their token's scopes; a backend
//! service's are its `system/` scopes. The role table below is the one the docs print
//! (`docs/access-policy.md`, checked by a test against [`role_table`]).
//!
//! Teaching sandboxes (ADR 0014) are records of their own, where students practise: there a
//! student writes what any clinician may, but only in the sandboxes of their classes (the
//! token's `classes`), and an instructor writes too ([`authorize_in_sandbox`]). Instructors,
//! admins and backend services manage sandboxes ([`authorize_teaching`]).

use fhir_model::ResourceType;
use thiserror::Error;

use crate::principal::Principal;
use crate::role::Role;
use crate::scope::{Permissions, ScopeContext};

/// What a request does to a resource type. A conditional write is its write and a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interaction {
    Read,
    Vread,
    History,
    Search,
    Create,
    Update,
    Patch,
    Delete,
    /// A WebSocket subscription to a type's events.
    Subscribe,
}

impl Interaction {
    /// The SMART permission the interaction needs.
    pub fn permission(self) -> Permissions {
        match self {
            Interaction::Read | Interaction::Vread | Interaction::History => Permissions::READ,
            Interaction::Search | Interaction::Subscribe => Permissions::SEARCH,
            Interaction::Create => Permissions::CREATE,
            Interaction::Update | Interaction::Patch => Permissions::UPDATE,
            Interaction::Delete => Permissions::DELETE,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interaction::Read => "read",
            Interaction::Vread => "vread",
            Interaction::History => "history",
            Interaction::Search => "search",
            Interaction::Create => "create",
            Interaction::Update => "update",
            Interaction::Patch => "patch",
            Interaction::Delete => "delete",
            Interaction::Subscribe => "subscribe",
        }
    }

    fn writes(self) -> bool {
        matches!(
            self,
            Interaction::Create | Interaction::Update | Interaction::Patch | Interaction::Delete
        )
    }
}

/// What an allowed interaction may touch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    /// `Some(id)`: only what lies in this patient's compartment (the token's `patient/` scopes).
    pub patient: Option<String>,
    /// Empty: no restriction. Otherwise a resource must match every `param=value` of at least
    /// one of these (one per scope that allows the interaction).
    pub restrictions: Vec<Vec<(String, String)>>,
}

impl Access {
    /// Everything of the type.
    pub fn is_unbounded(&self) -> bool {
        self.patient.is_none() && self.restrictions.is_empty()
    }
}

/// Why an interaction was refused (a 403).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Denied {
    #[error("students do not write in the live record (their writes belong in teaching sandboxes)")]
    StudentWrite,
    #[error("the {role} role may not {interaction} {resource_type} resources")]
    Role {
        role: Role,
        interaction: &'static str,
        resource_type: ResourceType,
    },
    #[error("the token's scopes do not allow {interaction} on {resource_type}")]
    Scope {
        interaction: &'static str,
        resource_type: ResourceType,
    },
    #[error("the token has patient scopes but no patient in its launch context")]
    NoPatientInContext,
    #[error("this needs the admin role")]
    NotAdmin,
    #[error("students write only in the sandboxes of their classes; {}", match .sandbox_class {
        Some(class) => format!("this sandbox belongs to class `{class}`"),
        None => "this sandbox belongs to no class".to_owned(),
    })]
    OutsideClass { sandbox_class: Option<String> },
    #[error(
        "managing teaching sandboxes needs the instructor or admin role (or a backend service)"
    )]
    NotTeaching,
}

/// A teaching sandbox as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxAccess<'a> {
    /// The class whose students may write in it.
    pub class: Option<&'a str>,
}

/// Decides one interaction on one type of the live record.
pub fn authorize(
    principal: &Principal,
    interaction: Interaction,
    resource_type: ResourceType,
) -> Result<Access, Denied> {
    let permission = interaction.permission();
    if let Some(role) = principal.role {
        if role == Role::Student && interaction.writes() {
            return Err(Denied::StudentWrite);
        }
        if !role_allows(role, permission, resource_type) {
            return Err(Denied::Role {
                role,
                interaction: interaction.as_str(),
                resource_type,
            });
        }
    }
    within_scopes(principal, interaction, resource_type)
}

/// Decides one interaction on one type inside a teaching sandbox. Reads are decided as in the
/// live record. Writes: a student's only in a sandbox of one of their classes, and then of
/// every type a clinician writes; an instructor's of the same types; the other roles' as in
/// the live record. The token's scopes bound all of them, as everywhere.
pub fn authorize_in_sandbox(
    principal: &Principal,
    interaction: Interaction,
    resource_type: ResourceType,
    sandbox: SandboxAccess<'_>,
) -> Result<Access, Denied> {
    if !interaction.writes() {
        return authorize(principal, interaction, resource_type);
    }
    if let Some(role) = principal.role {
        if role == Role::Student
            && !sandbox
                .class
                .is_some_and(|class| principal.classes.iter().any(|own| own == class))
        {
            return Err(Denied::OutsideClass {
                sandbox_class: sandbox.class.map(str::to_owned),
            });
        }
        let allowed = match role {
            Role::Student | Role::Instructor => clinical_writes(resource_type),
            role => role_allows(role, interaction.permission(), resource_type),
        };
        if !allowed {
            return Err(Denied::Role {
                role,
                interaction: interaction.as_str(),
                resource_type,
            });
        }
    }
    within_scopes(principal, interaction, resource_type)
}

/// Creating, resetting and deleting teaching sandboxes, and playing scenarios into them.
pub fn authorize_teaching(principal: &Principal) -> Result<(), Denied> {
    match principal.role {
        Some(Role::Instructor | Role::Admin) | None => Ok(()),
        Some(_) => Err(Denied::NotTeaching),
    }
}

/// What students and instructors write in a sandbox: every type some clinical role writes.
fn clinical_writes(resource_type: ResourceType) -> bool {
    let name = resource_type.as_str();
    NURSING.contains(&name)
        || MEDICAL.contains(&name)
        || PHARMACY.contains(&name)
        || SANDBOX_ONLY.contains(&name)
}

/// What a sandbox's scenario needs besides: its patients and where they lie.
const SANDBOX_ONLY: &[&str] = &["Patient", "Location"];

/// The scope half of a decision: the token's scopes for `interaction` on `resource_type`.
fn within_scopes(
    principal: &Principal,
    interaction: Interaction,
    resource_type: ResourceType,
) -> Result<Access, Denied> {
    let permission = interaction.permission();
    // A backend service acts through system/ scopes only; a person through user/ and patient/.
    let usable = |context: ScopeContext| match context {
        ScopeContext::System => principal.is_service(),
        ScopeContext::User | ScopeContext::Patient => !principal.is_service(),
    };
    let scopes: Vec<_> = principal
        .scopes
        .allowing(resource_type, permission)
        .filter(|scope| usable(scope.context))
        .collect();
    let denied = || Denied::Scope {
        interaction: interaction.as_str(),
        resource_type,
    };
    if scopes.is_empty() {
        return Err(denied());
    }
    // Scopes for everything the user may see beat scopes for one patient.
    let wide: Vec<_> = scopes
        .iter()
        .filter(|scope| scope.context != ScopeContext::Patient)
        .collect();
    let (chosen, patient) = if wide.is_empty() {
        let patient = principal
            .patient
            .clone()
            .ok_or(Denied::NoPatientInContext)?;
        (scopes.iter().collect::<Vec<_>>(), Some(patient))
    } else {
        (wide, None)
    };
    let restrictions = if chosen.iter().any(|scope| scope.restrictions.is_empty()) {
        Vec::new()
    } else {
        chosen
            .iter()
            .map(|scope| scope.restrictions.clone())
            .collect()
    };
    Ok(Access {
        patient,
        restrictions,
    })
}

/// Operating the system (projection rebuilds, metrics, the identity admin API).
pub fn authorize_admin(principal: &Principal) -> Result<(), Denied> {
    if principal.role == Some(Role::Admin) {
        Ok(())
    } else {
        Err(Denied::NotAdmin)
    }
}

/// Resource types whose records only instructors and admins read: what the audit trail says
/// about who did what.
const AUDIT_TYPES: &[&str] = &["AuditEvent"];

/// What nurses write: observations, tasks, medication administrations, and the ward's
/// encounters, flags and messages.
const NURSING: &[&str] = &[
    "Communication",
    "Encounter",
    "Flag",
    "MedicationAdministration",
    "Observation",
    "Task",
];

/// What physicians write besides the nurses' types: problems, orders, notes, prescriptions.
const MEDICAL: &[&str] = &[
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "ClinicalImpression",
    "Composition",
    "Condition",
    "DeviceRequest",
    "DiagnosticReport",
    "DocumentReference",
    "Goal",
    "Immunization",
    "MedicationRequest",
    "NutritionOrder",
    "Procedure",
    "RiskAssessment",
    "ServiceRequest",
];

/// What pharmacists write: verification of orders and dispensing.
const PHARMACY: &[&str] = &[
    "Medication",
    "MedicationDispense",
    "MedicationRequest",
    "Task",
];

fn role_allows(role: Role, permission: Permissions, resource_type: ResourceType) -> bool {
    let name = resource_type.as_str();
    let reads = Permissions::READ.union(Permissions::SEARCH);
    if reads.contains(permission) {
        return !AUDIT_TYPES.contains(&name) || matches!(role, Role::Instructor | Role::Admin);
    }
    match role {
        Role::Student | Role::Instructor => false,
        Role::Nurse => NURSING.contains(&name),
        Role::Physician => NURSING.contains(&name) || MEDICAL.contains(&name),
        Role::Pharmacist => PHARMACY.contains(&name),
        Role::Admin => true,
    }
}

/// The role table as the docs print it: for each role, what it reads and what it writes.
pub fn role_table() -> Vec<(Role, String, String)> {
    let list = |types: &[&[&str]]| {
        let mut names: Vec<&str> = types.iter().flat_map(|list| list.iter().copied()).collect();
        names.sort_unstable();
        names.dedup();
        names.join(", ")
    };
    let all_but_audit = format!("every type except {}", AUDIT_TYPES.join(", "));
    Role::ALL
        .into_iter()
        .map(|role| {
            let reads = match role {
                Role::Instructor | Role::Admin => "every type".to_owned(),
                _ => all_but_audit.clone(),
            };
            let writes = match role {
                Role::Student | Role::Instructor => "nothing in the live record".to_owned(),
                Role::Nurse => list(&[NURSING]),
                Role::Physician => list(&[NURSING, MEDICAL]),
                Role::Pharmacist => list(&[PHARMACY]),
                Role::Admin => "every type".to_owned(),
            };
            (role, reads, writes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::scope::ScopeSet;

    fn person(role: Role, scopes: &str, patient: Option<&str>) -> Principal {
        Principal {
            role: Some(role),
            scopes: ScopeSet::parse(scopes).unwrap(),
            patient: patient.map(str::to_owned),
            ..Principal::unchecked()
        }
    }

    fn service(scopes: &str) -> Principal {
        Principal {
            scopes: ScopeSet::parse(scopes).unwrap(),
            ..Principal::unchecked()
        }
    }

    fn of(name: &str) -> ResourceType {
        ResourceType::parse(name).unwrap()
    }

    #[test]
    fn role_bounds_scopes() {
        let nurse = person(Role::Nurse, "user/*.cruds", None);
        assert!(authorize(&nurse, Interaction::Create, of("Observation")).is_ok());
        assert!(matches!(
            authorize(&nurse, Interaction::Create, of("MedicationRequest")),
            Err(Denied::Role { .. })
        ));
        let physician = person(Role::Physician, "user/*.cruds", None);
        assert!(authorize(&physician, Interaction::Create, of("MedicationRequest")).is_ok());
        assert!(matches!(
            authorize(&physician, Interaction::Create, of("MedicationDispense")),
            Err(Denied::Role { .. })
        ));
        let student = person(Role::Student, "user/*.cruds", None);
        assert!(authorize(&student, Interaction::Read, of("Patient")).is_ok());
        assert_eq!(
            authorize(&student, Interaction::Update, of("Observation")),
            Err(Denied::StudentWrite)
        );
        assert!(matches!(
            authorize(&student, Interaction::Search, of("AuditEvent")),
            Err(Denied::Role { .. })
        ));
        let instructor = person(Role::Instructor, "user/*.rs", None);
        assert!(authorize(&instructor, Interaction::Search, of("AuditEvent")).is_ok());
    }

    #[test]
    fn scopes_bound_roles() {
        let admin = person(Role::Admin, "user/Patient.rs", None);
        assert!(authorize(&admin, Interaction::Read, of("Patient")).is_ok());
        assert!(matches!(
            authorize(&admin, Interaction::Update, of("Patient")),
            Err(Denied::Scope { .. })
        ));
        assert!(matches!(
            authorize(&admin, Interaction::Read, of("Observation")),
            Err(Denied::Scope { .. })
        ));
    }

    #[test]
    fn patient_scopes_bound_to_the_patient_in_context() {
        let app = person(
            Role::Physician,
            "patient/Observation.rs?category=vital-signs patient/Patient.r",
            Some("p1"),
        );
        let access = authorize(&app, Interaction::Search, of("Observation")).unwrap();
        assert_eq!(access.patient.as_deref(), Some("p1"));
        assert_eq!(
            access.restrictions,
            vec![vec![("category".to_owned(), "vital-signs".to_owned())]]
        );
        assert!(authorize(&app, Interaction::Search, of("Patient")).is_err());
        let without_patient = person(Role::Physician, "patient/*.rs", None);
        assert_eq!(
            authorize(&without_patient, Interaction::Read, of("Observation")),
            Err(Denied::NoPatientInContext)
        );
        // A user scope for the type widens past the patient.
        let both = person(Role::Nurse, "patient/*.rs user/Observation.rs", Some("p1"));
        assert!(
            authorize(&both, Interaction::Search, of("Observation"))
                .unwrap()
                .is_unbounded()
        );
    }

    #[test]
    fn services_act_through_system_scopes_only() {
        let backend = service("system/Observation.rs user/*.cruds");
        assert!(authorize(&backend, Interaction::Read, of("Observation")).is_ok());
        assert!(authorize(&backend, Interaction::Create, of("Observation")).is_err());
        let person_with_system = person(Role::Admin, "system/*.cruds", None);
        assert!(authorize(&person_with_system, Interaction::Read, of("Patient")).is_err());
    }

    #[test]
    fn students_write_only_in_their_classes_sandboxes() {
        let mut student = person(Role::Student, "user/*.cruds", None);
        student.classes = vec!["ward-7".to_owned()];
        let theirs = SandboxAccess {
            class: Some("ward-7"),
        };
        let others = SandboxAccess {
            class: Some("ward-8"),
        };
        let classless = SandboxAccess { class: None };
        for resource_type in ["Observation", "MedicationRequest", "Patient", "Task"] {
            assert!(
                authorize_in_sandbox(&student, Interaction::Update, of(resource_type), theirs)
                    .is_ok(),
                "{resource_type}"
            );
        }
        assert_eq!(
            authorize_in_sandbox(&student, Interaction::Create, of("Observation"), others),
            Err(Denied::OutsideClass {
                sandbox_class: Some("ward-8".to_owned())
            })
        );
        assert!(
            authorize_in_sandbox(&student, Interaction::Create, of("Observation"), classless)
                .is_err()
        );
        // The audit trail is no one's to write, and reads are the live record's rules.
        assert!(
            authorize_in_sandbox(&student, Interaction::Create, of("AuditEvent"), theirs).is_err()
        );
        assert!(
            authorize_in_sandbox(&student, Interaction::Read, of("Observation"), others).is_ok()
        );
        // The live record stays closed to them.
        assert_eq!(
            authorize(&student, Interaction::Create, of("Observation")),
            Err(Denied::StudentWrite)
        );
        // Scopes still bound them.
        let mut reader = person(Role::Student, "user/*.rs", None);
        reader.classes = vec!["ward-7".to_owned()];
        assert!(
            authorize_in_sandbox(&reader, Interaction::Create, of("Observation"), theirs).is_err()
        );
    }

    #[test]
    fn instructors_and_clinicians_write_in_any_sandbox_within_their_rights() {
        let sandbox = SandboxAccess {
            class: Some("ward-7"),
        };
        let instructor = person(Role::Instructor, "user/*.cruds", None);
        assert!(
            authorize_in_sandbox(&instructor, Interaction::Create, of("Condition"), sandbox)
                .is_ok()
        );
        let nurse = person(Role::Nurse, "user/*.cruds", None);
        assert!(
            authorize_in_sandbox(&nurse, Interaction::Create, of("Observation"), sandbox).is_ok()
        );
        assert!(
            authorize_in_sandbox(
                &nurse,
                Interaction::Create,
                of("MedicationRequest"),
                sandbox
            )
            .is_err()
        );
        assert!(
            authorize_in_sandbox(
                &service("system/*.cruds"),
                Interaction::Delete,
                of("Patient"),
                sandbox
            )
            .is_ok()
        );
    }

    #[test]
    fn teaching_is_managed_by_instructors_admins_and_services() {
        assert!(authorize_teaching(&person(Role::Instructor, "", None)).is_ok());
        assert!(authorize_teaching(&person(Role::Admin, "", None)).is_ok());
        assert!(authorize_teaching(&service("system/*.rs")).is_ok());
        for role in [
            Role::Student,
            Role::Nurse,
            Role::Physician,
            Role::Pharmacist,
        ] {
            assert_eq!(
                authorize_teaching(&person(role, "user/*.cruds", None)),
                Err(Denied::NotTeaching)
            );
        }
    }

    #[test]
    fn admin_operations() {
        assert!(authorize_admin(&person(Role::Admin, "", None)).is_ok());
        assert!(authorize_admin(&person(Role::Instructor, "user/*.cruds", None)).is_err());
        assert!(authorize_admin(&service("system/*.cruds")).is_err());
    }
}

#[cfg(test)]
mod docs {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The docs print the role table; this keeps them true.
    #[test]
    fn the_documented_role_table_is_the_policy() {
        let docs = include_str!("../../docs/access-policy.md");
        for (role, reads, writes) in role_table() {
            let row = format!("| {role} | {reads} | {writes} |");
            assert!(
                docs.contains(&row),
                "docs/access-policy.md lacks the row\n{row}"
            );
        }
    }
}
