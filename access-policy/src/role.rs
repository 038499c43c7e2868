//! The roles of a teaching ward. A role bounds what a user may do whatever scopes an app asks
//! for: a token's rights are its role's rights intersected with its scopes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Student,
    Nurse,
    Physician,
    Pharmacist,
    Instructor,
    Admin,
}

/// Not one of the six roles.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("'{0}' is not a role (student, nurse, physician, pharmacist, instructor, admin)")]
pub struct UnknownRole(pub String);

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Student,
        Role::Nurse,
        Role::Physician,
        Role::Pharmacist,
        Role::Instructor,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Nurse => "nurse",
            Role::Physician => "physician",
            Role::Pharmacist => "pharmacist",
            Role::Instructor => "instructor",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| UnknownRole(text.to_owned()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
