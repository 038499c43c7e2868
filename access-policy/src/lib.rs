//! Who may do what in Wardline, decided in one place.
//!
//! The identity service issues access tokens; every other service checks them and asks this
//! crate whether the bearer may perform an interaction. Keeping the rules here (not in four
//! copies) is what makes the policy table in the docs true of every route.
//!
//! - `claims`: what an access token says (the contract between issuer and services).
//! - `scope`: SMART App Launch v2 scopes (`patient/Observation.rs?category=vital-signs`), with
//!   v1's `.read` / `.write` read as their v2 equivalents.
//! - `role`: the six roles of a teaching ward and what each may read and write.
//! - `principal`: the checked bearer of a token, as the services see it.
//! - `policy`: the decision: role and scopes together, for one interaction on one type.

pub mod claims;
pub mod policy;
pub mod principal;
pub mod role;
pub mod scope;
pub mod verify;

pub use claims::AccessClaims;
pub use policy::{
    Access, Denied, Interaction, SandboxAccess, authorize, authorize_in_sandbox, authorize_teaching,
};
pub use principal::{Principal, PrincipalError};
pub use role::Role;
pub use scope::{Permissions, Scope, ScopeContext, ScopeError, ScopeSet};
pub use verify::{TokenError, TokenVerifier, VerifierSettings};
