//! Clinical workflow read models: the rows a ward board, an order list or a catalogue screen
//! reads directly, without FHIR search.
//!
//! These are per resource type by nature (an order has a requester, a task an owner), so unlike
//! the search indexes they are written out here field by field. Extraction is pure; the
//! projector stores the rows with the resource's search-index rows, in the same transaction,
//! and replaces them whenever a newer version arrives.

mod extract;

pub use extract::{
    CatalogEntry, CensusRow, LocationRow, NoteRow, OrderRow, TaskRow, WorkflowRows, extract,
};

/// The resource types that have workflow rows: other types skip the workflow tables entirely.
pub const WORKFLOW_TYPES: &[&str] = &[
    "AllergyIntolerance",
    "Composition",
    "Condition",
    "DocumentReference",
    "Encounter",
    "Immunization",
    "Location",
    "Medication",
    "MedicationAdministration",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
    "ServiceRequest",
    "Task",
];

/// Views over the workflow tables. They are created by the projection service at start-up and
/// recreated after a rebuild swaps the tables under them (a view is bound to the tables it was
/// created on, not to their names).
pub const VIEWS: [&str; 2] = [
    r"
CREATE OR REPLACE VIEW clinical_catalogs AS
SELECT catalog, system, code,
       min(display) AS display,
       count(DISTINCT res_pk) AS count
FROM clinical_catalog_entry
GROUP BY catalog, system, code",
    r"
CREATE OR REPLACE VIEW ward_census AS
SELECT DISTINCT ON (ward_id, encounter_id)
       ward_id, ward_name, location_id, location_name, encounter_id, patient_id, class_code, period_start
FROM (
    SELECT CASE WHEN l1.physical_type = 'wa' THEN l1.res_id
                WHEN l2.physical_type = 'wa' THEN l2.res_id
                WHEN l3.physical_type = 'wa' THEN l3.res_id
                ELSE c.location_id END AS ward_id,
           CASE WHEN l1.physical_type = 'wa' THEN l1.name
                WHEN l2.physical_type = 'wa' THEN l2.name
                WHEN l3.physical_type = 'wa' THEN l3.name
                ELSE coalesce(l1.name, c.location_name) END AS ward_name,
           c.location_id, coalesce(l1.name, c.location_name) AS location_name,
           c.encounter_id, c.patient_id, c.class_code, c.period_start,
           -- Prefer the most specific location (a bed over its ward) for the row shown.
           CASE WHEN l1.physical_type = 'wa' THEN 1 ELSE 0 END AS generality
    FROM encounter_census c
    LEFT JOIN locations l1 ON l1.res_id = c.location_id
    LEFT JOIN locations l2 ON l2.res_id = l1.part_of_id
    LEFT JOIN locations l3 ON l3.res_id = l2.part_of_id
) placed
ORDER BY ward_id, encounter_id, generality",
];

/// Installs [`VIEWS`].
pub async fn install_views(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    for view in VIEWS {
        sqlx::query(view).execute(&mut *conn).await?;
    }
    Ok(())
}
