//! FHIR R4 resource handling shared by every service.
//!
//! Everything here is pure: no I/O, no async. It holds the vocabulary the services speak
//! (which resource types exist, what a valid id is), the structural check every incoming
//! resource goes through (the official R4 JSON Schema, embedded from `schemas/fhir/`), the
//! element model of every resource and data type (from the StructureDefinitions), JSON Patch
//! applied within a size budget, and the `OperationOutcome` that every error becomes on the
//! wire.

mod elements;
mod meta;
mod outcome;
mod patch;
mod resource_id;
mod resource_type;
mod validation;

pub use elements::{
    Child, ElementDefinition, ElementModel, ElementModelError, MaxCardinality, TypeDefinition,
    TypeKind,
};
pub use meta::{format_instant, stamp_meta, strip_server_meta};
pub use outcome::{IssueCode, IssueSeverity, OperationOutcome, OutcomeIssue};
pub use patch::{PatchError, PatchLimits, apply_patch};
pub use resource_id::{InvalidResourceId, ResourceId};
pub use resource_type::{ResourceType, UnknownResourceType};
pub use validation::{ResourceValidator, check_resource};

/// The FHIR version this code implements, as `CapabilityStatement.fhirVersion` spells it.
pub const FHIR_VERSION: &str = "4.0.1";
