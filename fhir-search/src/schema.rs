//! The index schema: the tables the projection service fills from the event stream and the
//! query and command services search, and the migrations that create them
//! (`fhir-search/migrations/`).
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
