//! The database's two sets of migrations, the event store's and the index schema's, which share
//! the `_sqlx_migrations` table: services apply them in any order, and a database migrated
//! before the split (by one migrator over one folder holding both) starts with the new code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use test_support::TestDatabase;

/// The one folder of migrations before the split, by where each file is now, with the checksum
/// (SHA-384) databases migrated before the split have recorded for it. Applying them as one set
/// is what the old code did; a file whose checksum changed would stop those databases starting.
const BEFORE_THE_SPLIT: &[(&str, &str)] = &[
    (
        "event-store/migrations/20261125000001_event_store.sql",
        "fe51095b57b86be6e2d912f198ce59038acd0d763799b8472a3e24362ad281f8fdacaff5f1bf9c41e6026a63af828d7d",
    ),
    (
        "fhir-search/migrations/20261125000002_search_indexes.sql",
        "5e460fd3282441835abde92b6d0c30b8d89f0b228503091a9079166a15107f93d52c3c6bfac257dd6d5ef5930ddba182",
    ),
    (
        "fhir-search/migrations/20261201000001_search_results.sql",
        "a0b92d8c43bfabe91e7b0a52d9ce8ced985024886c2936ccd55f1e673ced3e6f54452de40aa6832246d5c98d53baca6d",
    ),
    (
        "fhir-search/migrations/20261201000002_covering_probes.sql",
        "5530ac0b7aa4307914249091f45db6108ad277cc3e14d4e84e6767b42a7e0470b67437103c911df4f1d3a3c5c0f9afef",
    ),
    (
        "fhir-search/migrations/20261202000001_search_result_unlogged.sql",
        "705dd96b63c986483d6fc07422e1e5aa1a6f4e0d9182d34a81db2f0602c255e7088cfad1e64d87d4c4a4583f07c4e501",
    ),
    (
        "fhir-search/migrations/20261202000002_search_index_statistics.sql",
        "88afbff57263bc80976cc547cae0ca235d60b8c7e603fcaa85d8a438aaebf6e1832691f6bcfa8f9958f7dad499017133",
    ),
    (
        "fhir-search/migrations/20261205000002_projection_quarantine.sql",
        "83a57394d0eb9290504f0d0ecdd6339887f66ca4ffd7091704871bf4fe7436557fe7d3f74da227aba035cc81ecad438f",
    ),
    (
        "fhir-search/migrations/20261205110001_search_result_generation.sql",
        "9f3996c992614f0ed4ed88ebdf419b1886f64b13fe7e0cfd3037c5de8fa7bf247d8c226013f02bba0e07b68b01be7f1e",
    ),
];

const EVENT_STORE_TABLES: &[&str] = &[
    "fhir_event",
    "fhir_event_queue",
    "fhir_event_position",
    "fhir_outbox_cursor",
];

async fn event_store_set(pool: &PgPool) {
    event_store::store::migrate(pool)
        .await
        .expect("the event store's migrations");
}

async fn index_set(pool: &PgPool) {
    fhir_search::schema::migrate(pool)
        .await
        .expect("the index schema's migrations");
}

/// Applies the migrations as the code before the split did: one migrator, one folder.
async fn old_single_set(pool: &PgPool) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let folder = tempfile::tempdir().unwrap();
    for (file, _) in BEFORE_THE_SPLIT {
        let source = root.join(file);
        std::fs::copy(&source, folder.path().join(source.file_name().unwrap())).unwrap();
    }
    let migrator = Migrator::new(folder.path()).await.unwrap();
    assert_eq!(migrator.iter().count(), BEFORE_THE_SPLIT.len());
    migrator
        .run(pool)
        .await
        .expect("the migrations before the split");
}

/// Every table of both sets is there with the columns code names, both sets are recorded as
/// applied, and the functions the services call answer.
async fn assert_complete(pool: &PgPool) {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema()",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let columns: BTreeSet<(String, String)> = columns.into_iter().collect();
    let tables: BTreeSet<&str> = columns.iter().map(|(table, _)| table.as_str()).collect();
    for table in EVENT_STORE_TABLES {
        assert!(tables.contains(table), "no table {table}");
    }
    for (table, named) in fhir_search::schema::TABLES {
        for column in *named {
            assert!(
                columns.contains(&((*table).to_owned(), (*column).to_owned())),
                "no column {table}.{column}"
            );
        }
    }

    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await
            .unwrap();
    let expected: BTreeSet<i64> = event_store::store::migrator()
        .iter()
        .chain(fhir_search::schema::migrator().iter())
        .map(|migration| migration.version)
        .collect();
    assert_eq!(
        applied
            .iter()
            .map(|(version, _)| *version)
            .collect::<BTreeSet<_>>(),
        expected
    );
    assert!(applied.iter().all(|(_, success)| *success));

    let (checkpoint,): (i64,) = sqlx::query_as("SELECT projection_advance_checkpoint($1)")
        .bind(fhir_search::schema::SEARCH_CHECKPOINT)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(checkpoint, 0);
    sqlx::query("SELECT * FROM fhir_sequence_events(NULL)")
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_event_store_first_then_the_index_schema() {
    let database = TestDatabase::empty().await;
    event_store_set(&database.pool).await;
    index_set(&database.pool).await;
    assert_complete(&database.pool).await;
    // Every service applies them again at each start.
    index_set(&database.pool).await;
    event_store_set(&database.pool).await;
    assert_complete(&database.pool).await;
}

#[tokio::test]
async fn the_index_schema_first_then_the_event_store() {
    let database = TestDatabase::empty().await;
    index_set(&database.pool).await;
    event_store_set(&database.pool).await;
    assert_complete(&database.pool).await;
    event_store_set(&database.pool).await;
    index_set(&database.pool).await;
    assert_complete(&database.pool).await;
}

#[tokio::test]
async fn a_database_migrated_before_the_split_starts() {
    let database = TestDatabase::empty().await;
    old_single_set(&database.pool).await;
    event_store_set(&database.pool).await;
    index_set(&database.pool).await;
    assert_complete(&database.pool).await;

    let database = TestDatabase::empty().await;
    old_single_set(&database.pool).await;
    index_set(&database.pool).await;
    event_store_set(&database.pool).await;
    assert_complete(&database.pool).await;
}

#[test]
fn every_migration_applied_before_the_split_is_in_one_set_unchanged() {
    let store = event_store::store::migrator();
    let index = fhir_search::schema::migrator();
    for (file, recorded) in BEFORE_THE_SPLIT {
        let name = Path::new(file).file_name().unwrap().to_string_lossy();
        let version: i64 = name.split('_').next().unwrap().parse().unwrap();
        let found: Vec<_> = store
            .iter()
            .chain(index.iter())
            .filter(|migration| migration.version == version)
            .collect();
        assert_eq!(found.len(), 1, "{name} must be in exactly one set");
        let checksum: String = found[0]
            .checksum
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(&checksum, recorded, "{name} changed since it was applied");
    }
    // And no version is in both sets, so neither applies or checks what the other owns.
    let store_versions: BTreeSet<i64> = store.iter().map(|migration| migration.version).collect();
    assert!(
        index
            .iter()
            .all(|migration| !store_versions.contains(&migration.version))
    );
}

#[test]
fn the_identity_services_set_shares_no_version_with_the_others() {
    // The identity service's migrations record their versions in the same table too.
    let others: BTreeSet<i64> = event_store::store::migrator()
        .iter()
        .chain(fhir_search::schema::migrator().iter())
        .map(|migration| migration.version)
        .collect();
    for migration in identity_service::store::migrator().iter() {
        assert!(
            !others.contains(&migration.version),
            "identity migration {} has the version of another set's",
            migration.version
        );
    }
}
