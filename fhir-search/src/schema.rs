//! The index schema: the tables the projection service fills from the event stream and the
//! query and command services search, the migrations that create them (`fhir-search/migrations/`),
//! and the names Rust code uses for their tables and columns.
//!
//! **Why this crate owns it.** The schema is the contract between the one writer (the
//! projection service) and the readers (the query service's searches, includes and kept result
//! lists, the command service's conditional matches, every service's wait for the checkpoint).
//! This crate already holds both halves of that contract: the values stored ([`crate::index`],
//! [`crate::hash`], [`crate::normalize`]) and the search statements over them (`sql`). Every
//! service that touches the tables depends on it; putting the schema in the projection service
//! would make the readers depend on a service.
//!
//! **What it covers.** The `hfj_*` search indexes, the clinical workflow tables, the
//! projection's bookkeeping (checkpoint, applied positions, quarantine) and `search_result`,
//! the query service's kept result lists. `search_result` stays with the indexes because the
//! migration that created it also changed `projection_advance_checkpoint`, and an applied
//! migration cannot be split; its rows are `hfj_resource` keys, only meaningful for one
//! generation of that table, so it belongs with it anyway. The workflow views are not here:
//! the projection service creates them (at start and after a rebuild's swap), since a view is
//! bound to the tables it was created on.
//!
//! **Who migrates.** `migrate` (feature `sql`) is run at start-up by the projection service,
//! which writes the tables, and also by the query and command services, which read them and must
//! start (answering searches with nothing found, or waiting for the checkpoint) when they come
//! up before the projection service. The event store's tables are migrated separately
//! (`event_store::store::migrate`) by whoever uses the event store. Both sets record their
//! versions in the one `_sqlx_migrations` table, so each ignores versions it does not hold;
//! databases migrated before the split hold all of them, with the same checksums, since the
//! files moved unchanged.
//!
//! **Names.** One module per table, named as the table, holds `TABLE` and a constant per column
//! that code names; statements are written with them, so renaming a column is a migration plus
//! a change here. Columns several tables share by design (every index and workflow row's
//! `res_pk`, every index row's `sp_name`, `comp` and `grp`) are in [`shared`], for statements
//! that choose their table at run time. A unit test checks every name against the tables the
//! migrations create.

/// Columns that several tables have under one name, for statements that pick their table at
/// run time (a criterion's index table, every table a resource has rows in). Each table module
/// re-exports the ones its table has.
pub mod shared {
    /// The resource a row belongs to: `hfj_resource`'s key, carried by every index and
    /// workflow row.
    pub const RES_PK: &str = "res_pk";
    /// The resource's type (an index row repeats it, so a search of one type reads only its
    /// rows). `hfj_res_link` names it `src_type`.
    pub const RES_TYPE: &str = "res_type";
    /// The resource's id, in the tables that keep it.
    pub const RES_ID: &str = "res_id";
    /// The version of its resource an index row describes.
    pub const RES_VER: &str = "res_ver";
    /// The search parameter's code (a composite's rows carry the composite's).
    pub const SP_NAME: &str = "sp_name";
    /// Which component of a composite parameter a row is (NULL for plain rows).
    pub const COMP: &str = "comp";
    /// Which element of the resource a composite's rows come from (NULL for plain rows).
    pub const GRP: &str = "grp";
}

/// The checkpoint row of the search and workflow projections (`projection_checkpoint.name`),
/// which the migration creates at position 0.
pub const SEARCH_CHECKPOINT: &str = "search";

/// `projection_advance_checkpoint(name)`: moves a checkpoint over the contiguous run of applied
/// positions and returns it.
pub const ADVANCE_CHECKPOINT: &str = "projection_advance_checkpoint";

/// The notification channel `projection_advance_checkpoint` sends on when a checkpoint moves
/// (payload `<name>:<position>`).
pub const CHECKPOINT_CHANNEL: &str = "projection_checkpoint";

/// Declares the table modules and [`TABLES`]: each module holds `TABLE` (its name, which is the
/// module's), the [`shared`] columns it has (in brackets), its own columns, and `COLUMNS`, all
/// of them.
macro_rules! tables {
    ($(
        $(#[$doc:meta])*
        $table:ident {
            $([$($shared:ident),+])?
            $($(#[$column_doc:meta])* $column:ident = $name:literal,)*
        }
    )*) => {
        $(
            $(#[$doc])*
            pub mod $table {
                /// The table's name.
                pub const TABLE: &str = stringify!($table);
                $(pub use super::shared::{$($shared),+};)?
                $($(#[$column_doc])* pub const $column: &str = $name;)*
                /// Every column named here.
                pub const COLUMNS: &[&str] = &[$($($shared,)+)? $($column),*];
            }
        )*

        /// Every table of the schema, with the columns named for it.
        pub const TABLES: &[(&str, &[&str])] = &[$(($table::TABLE, $table::COLUMNS)),*];
    };
}

tables! {
    /// One row per resource ever seen, deleted ones included, with the version and position
    /// its rows come from.
    hfj_resource {
        [RES_PK, RES_VER, RES_TYPE, RES_ID]
        LAST_UPDATED = "last_updated",
        DELETED = "deleted",
        POSITION = "position",
    }

    /// Every version of every resource, with the positions over which it was current
    /// (`[pos_from, pos_to)`, `pos_to` NULL while it is).
    hfj_res_ver {
        [RES_PK, RES_VER, RES_TYPE, RES_ID]
        POS_FROM = "pos_from",
        POS_TO = "pos_to",
        LAST_UPDATED = "last_updated",
        DELETED = "deleted",
        /// 0 for the live record, else a sandbox run's.
        PARTITION = "partition",
    }

    /// The resources each sandbox run has written, under keys of their own (negative), with the
    /// newest version projected.
    hfj_sandbox_resource {
        [RES_PK, RES_VER, RES_TYPE, RES_ID]
        PARTITION = "partition",
        DELETED = "deleted",
    }

    /// The position from which every version's index rows are kept (later than 0 only in a
    /// database indexed before the history was, until a rebuild).
    hfj_history_horizon {
        POSITION = "position",
    }

    /// String values: folded for the default prefix match and `:contains`, exact beside.
    hfj_spidx_string {
        [RES_PK, RES_VER, RES_TYPE, SP_NAME, COMP, GRP]
        VALUE_NORMALIZED = "value_normalized",
        VALUE_EXACT = "value_exact",
        /// Hash of (type, parameter, exact value), for `:exact`.
        HASH_EXACT = "hash_exact",
    }

    /// Tokens: codes, identifiers, booleans and the like.
    hfj_spidx_token {
        [RES_PK, RES_VER, RES_TYPE, SP_NAME, COMP, GRP]
        SYSTEM = "system",
        CODE = "code",
        TEXT = "text",
        TYPE_SYSTEM = "type_system",
        TYPE_CODE = "type_code",
        /// Hash of (type, parameter, system or empty, code): `system|code` and `|code`.
        HASH_SYS_VALUE = "hash_sys_value",
        /// Hash of (type, parameter, code): a code without a system.
        HASH_VALUE = "hash_value",
    }

    /// Dates as the instants `[low, high)` they cover, open ends infinite.
    hfj_spidx_date {
        [RES_PK, RES_VER, RES_TYPE, SP_NAME, COMP, GRP]
        LOW = "low",
        HIGH = "high",
    }

    /// Numbers, as `numeric`.
    hfj_spidx_number {
        [RES_PK, RES_VER, RES_TYPE, SP_NAME, COMP, GRP]
        VALUE = "value",
    }

    /// Quantities as written, and in canonical UCUM units where the unit converts.
    hfj_spidx_quantity {
        [RES_PK, RES_VER, RES_TYPE, SP_NAME, COMP, GRP]
        VALUE = "value",
        COMPARATOR = "comparator",
        SYSTEM = "system",
        CODE = "code",
        UNIT = "unit",
        CANONICAL_VALUE = "canonical_value",
        CANONICAL_CODE = "canonical_code",
    }

    /// Uris, urls and canonicals (bounded keys), with a hash for exact matches.
    hfj_spidx_uri {
        [RES_PK, RES_VER, RES_TYPE, SP_NAME, COMP, GRP]
        URI = "uri",
        /// Hash of (type, parameter, uri).
        HASH_URI = "hash_uri",
    }

    /// Positions, for `near`; no composite columns.
    hfj_spidx_coords {
        [RES_PK, RES_VER, RES_TYPE, SP_NAME]
        LATITUDE = "latitude",
        LONGITUDE = "longitude",
    }

    /// References, the target kept by type and id (it may be projected after its referrer).
    hfj_res_link {
        [RES_PK, RES_VER, SP_NAME, COMP, GRP]
        /// The referring resource's type (`res_type` elsewhere).
        SRC_TYPE = "src_type",
        SRC_PATH = "src_path",
        /// `local`, `contained`, `external` or `logical`.
        KIND = "kind",
        TARGET_TYPE = "target_type",
        TARGET_ID = "target_id",
        TARGET_VERSION = "target_version",
        TARGET_URL = "target_url",
        IDENTIFIER_SYSTEM = "identifier_system",
        IDENTIFIER_VALUE = "identifier_value",
    }

    /// `meta.tag`, `meta.profile` and `meta.security`.
    hfj_res_tag {
        [RES_PK, RES_VER, RES_TYPE]
        /// `tag`, `profile` or `security`.
        KIND = "kind",
        SYSTEM = "system",
        CODE = "code",
        DISPLAY = "display",
    }

    /// Words for `_text` (the narrative) and `_content` (every string), as tsvectors.
    hfj_res_text {
        [RES_PK, RES_VER, RES_TYPE]
        NARRATIVE = "narrative",
        CONTENT = "content",
    }

    /// DocumentReferences and Compositions.
    clinical_notes {
        [RES_PK, RES_TYPE, RES_ID]
        PATIENT_ID = "patient_id",
        ENCOUNTER_ID = "encounter_id",
        STATUS = "status",
        TYPE_SYSTEM = "type_system",
        TYPE_CODE = "type_code",
        TYPE_DISPLAY = "type_display",
        TITLE = "title",
        AUTHOR = "author",
        DATE = "date",
    }

    /// ServiceRequests and MedicationRequests.
    orders {
        [RES_PK, RES_TYPE, RES_ID]
        PATIENT_ID = "patient_id",
        ENCOUNTER_ID = "encounter_id",
        STATUS = "status",
        INTENT = "intent",
        PRIORITY = "priority",
        REQUESTER = "requester",
        CODE_SYSTEM = "code_system",
        CODE = "code",
        CODE_DISPLAY = "code_display",
        AUTHORED_ON = "authored_on",
        LAST_UPDATED = "last_updated",
    }

    /// Tasks, for work lists by owner and by patient.
    tasks {
        [RES_PK, RES_ID]
        PATIENT_ID = "patient_id",
        STATUS = "status",
        INTENT = "intent",
        PRIORITY = "priority",
        OWNER = "owner",
        FOCUS = "focus",
        DESCRIPTION = "description",
        CODE_DISPLAY = "code_display",
        DUE = "due",
        AUTHORED_ON = "authored_on",
        LAST_UPDATED = "last_updated",
    }

    /// Codes seen in the data, one row per (resource, code).
    clinical_catalog_entry {
        [RES_PK]
        CATALOG = "catalog",
        SYSTEM = "system",
        CODE = "code",
        DISPLAY = "display",
    }

    /// Locations, to place a bed on its ward.
    locations {
        [RES_PK, RES_ID]
        NAME = "name",
        STATUS = "status",
        PHYSICAL_TYPE = "physical_type",
        PART_OF_ID = "part_of_id",
    }

    /// In-progress inpatient Encounters, one row per location.
    encounter_census {
        [RES_PK]
        ENCOUNTER_ID = "encounter_id",
        PATIENT_ID = "patient_id",
        LOCATION_ID = "location_id",
        LOCATION_NAME = "location_name",
        CLASS_CODE = "class_code",
        PERIOD_START = "period_start",
    }

    /// How far each projection has come: every event up to `position` is in its tables.
    projection_checkpoint {
        NAME = "name",
        POSITION = "position",
        UPDATED_AT = "updated_at",
    }

    /// Positions applied beyond the checkpoint, until it advances over them.
    projection_applied {
        POSITION = "position",
    }

    /// Events the projection could not index.
    projection_quarantine {
        POSITION = "position",
        RESOURCE_TYPE = "resource_type",
        RESOURCE_ID = "resource_id",
        VERSION = "version",
        REASON = "reason",
        QUARANTINED_AT = "quarantined_at",
    }

    /// The query service's kept result lists (ordered `hfj_resource` keys, for paging).
    search_result {
        ID = "id",
        CREATED_AT = "created_at",
        PATH = "path",
        PARAMS = "params",
        RES_PKS = "res_pks",
        TOTAL = "total",
        /// The OID of the `hfj_resource` the keys belong to (a rebuild's swap replaces it).
        GENERATION = "generation",
        CLIENT = "client",
        /// The position of a search of the past; NULL for one of the present.
        ASOF = "asof",
        /// The sandbox run a search was made in; NULL for the live record.
        PARTITION = "partition",
    }
}

/// Declares the history twin of each versioned index table: a module named as the twin, with
/// the table's columns and its own `TABLE`, and [`HISTORY`], the pairs.
macro_rules! history_twins {
    ($($table:ident => $twin:ident,)*) => {
        $(
            #[doc = concat!("The rows of `", stringify!($table), "` for versions no longer current.")]
            pub mod $twin {
                pub use super::$table::*;
                /// The twin's name.
                pub const TABLE: &str = stringify!($twin);
            }
        )*

        /// Each versioned index table with its history twin, which has the same columns.
        pub const HISTORY: &[(&str, &str)] = &[$(($table::TABLE, $twin::TABLE)),*];

        /// The twins, with their columns, for the schema check.
        #[cfg(test)]
        const TWINS: &[(&str, &[&str])] = &[$(($twin::TABLE, $twin::COLUMNS)),*];
    };
}

history_twins! {
    hfj_spidx_string => hfj_spidx_string_hist,
    hfj_spidx_token => hfj_spidx_token_hist,
    hfj_spidx_date => hfj_spidx_date_hist,
    hfj_spidx_number => hfj_spidx_number_hist,
    hfj_spidx_quantity => hfj_spidx_quantity_hist,
    hfj_spidx_uri => hfj_spidx_uri_hist,
    hfj_spidx_coords => hfj_spidx_coords_hist,
    hfj_res_link => hfj_res_link_hist,
    hfj_res_tag => hfj_res_tag_hist,
    hfj_res_text => hfj_res_text_hist,
}

/// The history twin of a versioned index table.
pub fn history_of(table: &str) -> Option<&'static str> {
    HISTORY
        .iter()
        .find(|(live, _)| *live == table)
        .map(|(_, twin)| *twin)
}

/// The index schema's migrations (`fhir-search/migrations/`). Versions of other sets in the
/// same database (the event store's) are ignored; a changed file of this set is refused.
#[cfg(feature = "sql")]
pub fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// Applies [`migrator`]'s pending migrations (concurrent runs, of this set or another, are
/// serialised by sqlx's migration lock).
#[cfg(feature = "sql")]
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    migrator().run(pool).await
}

#[cfg(test)]
mod tests;
