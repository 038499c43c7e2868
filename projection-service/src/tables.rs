//! Writing index and workflow rows: one multi-row statement per table per batch.
//!
//! Rows are sent as one array per column and spread out again with `unnest`, so a batch of a
//! few hundred resources costs a few dozen statements, not thousands. Every table is keyed by
//! `res_pk`, and every index row also names its version (`res_ver`). Replacing a resource's
//! rows moves its index rows to the tables' history twins and deletes its workflow rows, then
//! inserts the new version's; a version already superseded when it arrives is written straight
//! to the twins (ADR 0013). The twins are created `LIKE` their tables, so rows move as `*`.
//!
//! Text that goes into a btree-indexed column and is compared whole (token systems, uris,
//! reference targets and identifiers, tags, the workflow tables' ids and codes) is stored as
//! its bounded key ([`fhir_search::normalize::key`]), which the query service computes from
//! search values too: a btree entry holds at most about 2.7 kB, and one resource with a longer
//! value would otherwise have its rows refused. Hash columns are computed over whole values.
//!
//! Tables and columns are named through [`fhir_search::schema`], which owns the schema; each
//! statement is formatted once.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use fhir_search::hash;
use fhir_search::index::{CompositePart, ResourceIndex};
use fhir_search::normalize::key::key;
use fhir_search::schema::{self, shared::RES_PK};
use sqlx::PgConnection;

use crate::apply::TextWords;
use crate::workflow::WorkflowRows;

/// Every table holding per-resource rows, i.e. all the projection tables but `hfj_resource`.
pub const ROW_TABLES: &[&str] = &[
    schema::hfj_spidx_string::TABLE,
    schema::hfj_spidx_token::TABLE,
    schema::hfj_spidx_date::TABLE,
    schema::hfj_spidx_number::TABLE,
    schema::hfj_spidx_quantity::TABLE,
    schema::hfj_spidx_uri::TABLE,
    schema::hfj_spidx_coords::TABLE,
    schema::hfj_res_link::TABLE,
    schema::hfj_res_tag::TABLE,
    schema::hfj_res_text::TABLE,
    schema::clinical_notes::TABLE,
    schema::orders::TABLE,
    schema::tasks::TABLE,
    schema::clinical_catalog_entry::TABLE,
    schema::locations::TABLE,
    schema::encounter_census::TABLE,
];

/// Everything a rebuild copies and swaps: the row tables and their history twins,
/// `hfj_resource` and `hfj_res_ver`, the checkpoint and the quarantine (a rebuild quarantines
/// afresh what still cannot be indexed).
pub fn all_tables() -> impl Iterator<Item = &'static str> {
    ROW_TABLES
        .iter()
        .copied()
        .chain(schema::HISTORY.iter().map(|(_, twin)| *twin))
        .chain([
            schema::hfj_resource::TABLE,
            schema::hfj_res_ver::TABLE,
            schema::hfj_sandbox_resource::TABLE,
            schema::hfj_history_horizon::TABLE,
            schema::projection_checkpoint::TABLE,
            schema::projection_applied::TABLE,
            schema::projection_quarantine::TABLE,
        ])
}

/// One resource version whose rows are to be written.
pub struct Target<'a> {
    pub res_pk: i64,
    pub version: i32,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub last_updated: DateTime<Utc>,
    pub index: &'a ResourceIndex,
    pub workflow: &'a WorkflowRows,
    pub words: &'a TextWords,
}

/// Where a version's rows go: the live tables, which hold each resource's current version, or
/// the history twins, which hold the versions since replaced (the workflow tables have no past).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    Current,
    Superseded,
}

/// An insert statement formatted for a versioned table and for its history twin.
struct Insert {
    current: String,
    superseded: String,
}

impl Insert {
    fn new(table: &str, twin: &str, statement: impl Fn(&str) -> String) -> Self {
        Self {
            current: statement(table),
            superseded: statement(twin),
        }
    }

    fn get(&self, rows: Rows) -> &str {
        match rows {
            Rows::Current => &self.current,
            Rows::Superseded => &self.superseded,
        }
    }
}

/// Retires the current rows of the resources `res_pks`, whose newer versions are about to be
/// written: index rows move to the history twins (they describe a version that was true until
/// now), workflow rows are deleted.
pub async fn retire_rows(conn: &mut PgConnection, res_pks: &[i64]) -> Result<(), sqlx::Error> {
    if res_pks.is_empty() {
        return Ok(());
    }
    for table in ROW_TABLES {
        if let Some(twin) = schema::history_of(table) {
            sqlx::query(&format!(
                "INSERT INTO {twin} SELECT * FROM {table} WHERE {RES_PK} = ANY($1)"
            ))
            .bind(res_pks)
            .execute(&mut *conn)
            .await?;
        }
        let sql = format!("DELETE FROM {table} WHERE {RES_PK} = ANY($1)");
        sqlx::query(&sql).bind(res_pks).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts the rows of `targets`, into the live tables or the history twins.
pub async fn insert_rows(
    conn: &mut PgConnection,
    targets: &[Target<'_>],
    rows: Rows,
) -> Result<(), sqlx::Error> {
    insert_strings(conn, targets, rows).await?;
    insert_tokens(conn, targets, rows).await?;
    insert_dates(conn, targets, rows).await?;
    insert_numbers(conn, targets, rows).await?;
    insert_quantities(conn, targets, rows).await?;
    insert_uris(conn, targets, rows).await?;
    insert_coords(conn, targets, rows).await?;
    insert_links(conn, targets, rows).await?;
    insert_tags(conn, targets, rows).await?;
    insert_text(conn, targets, rows).await?;
    if rows == Rows::Current {
        insert_workflow(conn, targets).await?;
    }
    Ok(())
}

/// The columns every search-index row starts with.
#[derive(Default)]
struct Keys {
    res_pk: Vec<i64>,
    res_ver: Vec<i32>,
    res_type: Vec<String>,
    sp_name: Vec<String>,
    comp: Vec<Option<i16>>,
    grp: Vec<Option<i32>>,
}

impl Keys {
    fn push(&mut self, target: &Target<'_>, param: &str, composite: Option<CompositePart>) {
        self.res_pk.push(target.res_pk);
        self.res_ver.push(target.version);
        self.res_type.push(target.resource_type.to_owned());
        self.sp_name.push(param.to_owned());
        self.comp.push(composite.map(|part| part.component));
        self.grp.push(composite.map(|part| part.group));
    }

    fn is_empty(&self) -> bool {
        self.res_pk.is_empty()
    }
}

static INSERT_STRINGS: LazyLock<Insert> = LazyLock::new(|| {
    use schema::hfj_spidx_string::*;
    Insert::new(TABLE, schema::hfj_spidx_string_hist::TABLE, |table| {
        format!(
            "INSERT INTO {table} ({RES_VER}, {RES_PK}, {RES_TYPE}, {SP_NAME}, {COMP}, {GRP}, {VALUE_NORMALIZED}, {VALUE_EXACT}, {HASH_EXACT}) \
         SELECT * FROM unnest($9::int[], $1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::int[], $6::text[], $7::text[], $8::bigint[])"
        )
    })
});

async fn insert_strings(
    conn: &mut PgConnection,
    targets: &[Target<'_>],
    rows: Rows,
) -> Result<(), sqlx::Error> {
    let mut keys = Keys::default();
    let (mut normalized, mut exact, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    for target in targets {
        for row in &target.index.strings {
            keys.push(target, &row.param, row.composite);
            normalized.push(row.normalized.clone());
            exact.push(row.exact.clone());
            hashes.push(hash::string_exact(
                target.resource_type,
                &row.param,
                &row.exact,
            ));
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_STRINGS.get(rows))
        .bind(keys.res_pk)
        .bind(keys.res_type)
        .bind(keys.sp_name)
        .bind(keys.comp)
        .bind(keys.grp)
        .bind(normalized)
        .bind(exact)
        .bind(hashes)
        .bind(keys.res_ver)
        .execute(conn)
        .await?;
    Ok(())
}

static INSERT_TOKENS: LazyLock<Insert> = LazyLock::new(|| {
    use schema::hfj_spidx_token::*;
    Insert::new(TABLE, schema::hfj_spidx_token_hist::TABLE, |table| {
        format!(
            "INSERT INTO {table} ({RES_VER}, {RES_PK}, {RES_TYPE}, {SP_NAME}, {COMP}, {GRP}, {SYSTEM}, {CODE}, {TEXT}, {TYPE_SYSTEM}, {TYPE_CODE}, {HASH_SYS_VALUE}, {HASH_VALUE}) \
         SELECT * FROM unnest($13::int[], $1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[])"
        )
    })
});

async fn insert_tokens(
    conn: &mut PgConnection,
    targets: &[Target<'_>],
    rows: Rows,
) -> Result<(), sqlx::Error> {
    let mut keys = Keys::default();
    let (mut system, mut code, mut text) = (Vec::new(), Vec::new(), Vec::new());
    let (mut type_system, mut type_code) = (Vec::new(), Vec::new());
    let (mut hash_sys_value, mut hash_value) = (Vec::new(), Vec::new());
    for target in targets {
        for row in &target.index.tokens {
            keys.push(target, &row.param, row.composite);
            let code_text = row.code.as_deref().unwrap_or("");
            hash_sys_value.push(hash::token_system_code(
                target.resource_type,
                &row.param,
                row.system.as_deref().unwrap_or(""),
                code_text,
            ));
            hash_value.push(hash::token_code(
                target.resource_type,
                &row.param,
                code_text,
            ));
            system.push(bounded(row.system.as_deref()));
            code.push(row.code.clone());
            text.push(row.text.clone());
            type_system.push(row.type_system.clone());
            type_code.push(row.type_code.clone());
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_TOKENS.get(rows))
        .bind(keys.res_pk)
        .bind(keys.res_type)
        .bind(keys.sp_name)
        .bind(keys.comp)
        .bind(keys.grp)
        .bind(system)
        .bind(code)
        .bind(text)
        .bind(type_system)
        .bind(type_code)
        .bind(hash_sys_value)
        .bind(hash_value)
        .bind(keys.res_ver)
        .execute(conn)
        .await?;
    Ok(())
}

static INSERT_DATES: LazyLock<Insert> = LazyLock::new(|| {
    use schema::hfj_spidx_date::*;
    Insert::new(TABLE, schema::hfj_spidx_date_hist::TABLE, |table| {
        format!(
            "INSERT INTO {table} ({RES_VER}, {RES_PK}, {RES_TYPE}, {SP_NAME}, {COMP}, {GRP}, {LOW}, {HIGH}) \
         SELECT res_ver, res_pk, res_type, sp_name, comp, grp, coalesce(low, '-infinity'), coalesce(high, 'infinity') \
         FROM unnest($8::int[], $1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::int[], $6::timestamptz[], $7::timestamptz[]) \
              AS u(res_ver, res_pk, res_type, sp_name, comp, grp, low, high)"
        )
    })
});

async fn insert_dates(
    conn: &mut PgConnection,
    targets: &[Target<'_>],
    rows: Rows,
) -> Result<(), sqlx::Error> {
    let mut keys = Keys::default();
    let (mut low, mut high) = (Vec::new(), Vec::new());
    for target in targets {
        for row in &target.index.dates {
            keys.push(target, &row.param, row.composite);
            low.push(row.low);
            high.push(row.high);
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    // An open end is stored as an infinite instant, so range comparisons need no NULL cases.
    sqlx::query(INSERT_DATES.get(rows))
        .bind(keys.res_pk)
        .bind(keys.res_type)
        .bind(keys.sp_name)
        .bind(keys.comp)
        .bind(keys.grp)
        .bind(low)
        .bind(high)
        .bind(keys.res_ver)
        .execute(conn)
        .await?;
    Ok(())
}

static INSERT_NUMBERS: LazyLock<Insert> = LazyLock::new(|| {
    use schema::hfj_spidx_number::*;
    Insert::new(TABLE, schema::hfj_spidx_number_hist::TABLE, |table| {
        format!(
            "INSERT INTO {table} ({RES_VER}, {RES_PK}, {RES_TYPE}, {SP_NAME}, {COMP}, {GRP}, {VALUE}) \
         SELECT res_ver, res_pk, res_type, sp_name, comp, grp, value::numeric \
         FROM unnest($7::int[], $1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::int[], $6::text[]) \
              AS u(res_ver, res_pk, res_type, sp_name, comp, grp, value)"
        )
    })
});

async fn insert_numbers(
    conn: &mut PgConnection,
    targets: &[Target<'_>],
    rows: Rows,
) -> Result<(), sqlx::Error> {
    let mut keys = Keys::default();
    let mut value = Vec::new();
    for target in targets {
        for row in &target.index.numbers {
            keys.push(target, &row.param, row.composite);
            value.push(row.value.clone());
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_NUMBERS.get(rows))
        .bind(keys.res_pk)
        .bind(keys.res_type)
        .bind(keys.sp_name)
        .bind(keys.comp)
        .bind(keys.grp)
        .bind(value)
        .bind(keys.res_ver)
        .execute(conn)
        .await?;
    Ok(())
}

static INSERT_QUANTITIES: LazyLock<Insert> = LazyLock::new(|| {
    use schema::hfj_spidx_quantity::*;
    Insert::new(TABLE, schema::hfj_spidx_quantity_hist::TABLE, |table| {
        format!(
            "INSERT INTO {table} ({RES_VER}, {RES_PK}, {RES_TYPE}, {SP_NAME}, {COMP}, {GRP}, {VALUE}, {COMPARATOR}, {SYSTEM}, {CODE}, {UNIT}, {CANONICAL_VALUE}, {CANONICAL_CODE}) \
         SELECT res_ver, res_pk, res_type, sp_name, comp, grp, value::numeric, comparator, system, code, unit, canonical_value::numeric, canonical_code \
         FROM unnest($13::int[], $1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[]) \
              AS u(res_ver, res_pk, res_type, sp_name, comp, grp, value, comparator, system, code, unit, canonical_value, canonical_code)"
        )
    })
});

async fn insert_quantities(
    conn: &mut PgConnection,
    targets: &[Target<'_>],
    rows: Rows,
) -> Result<(), sqlx::Error> {
    let mut keys = Keys::default();
    let (mut value, mut comparator, mut system, mut code, mut unit) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut canonical_value, mut canonical_code) = (Vec::new(), Vec::new());
    for target in targets {
        for row in &target.index.quantities {
            keys.push(target, &row.param, row.composite);
            value.push(row.value.clone());
            comparator.push(row.comparator.clone());
            system.push(row.system.clone());
            code.push(row.code.clone());
            unit.push(row.unit.clone());
            canonical_value.push(row.canonical_value.clone());
            canonical_code.push(row.canonical_code.clone());
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_QUANTITIES.get(rows))
        .bind(keys.res_pk)
        .bind(keys.res_type)
        .bind(keys.sp_name)
        .bind(keys.comp)
        .bind(keys.grp)
        .bind(value)
        .bind(comparator)
        .bind(system)
        .bind(code)
        .bind(unit)
        .bind(canonical_value)
        .bind(canonical_code)
        .bind(keys.res_ver)
        .execute(conn)
        .await?;
    Ok(())
}

static INSERT_URIS: LazyLock<Insert> = LazyLock::new(|| {
    use schema::hfj_spidx_uri::*;
    Insert::new(TABLE, schema::hfj_spidx_uri_hist::TABLE, |table| {
        format!(
            "INSERT INTO {table} ({RES_VER}, {RES_PK}, {RES_TYPE}, {SP_NAME}, {COMP}, {GRP}, {URI}, {HASH_URI}) \
         SELECT * FROM unnest($8::int[], $1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::int[], $6::text[], $7::bigint[])"
        )
    })
});

async fn insert_uris(
    conn: &mut PgConnection,
    targets: &[Target<'_>],
    rows: Rows,
) -> Result<(), sqlx::Error> {
    let mut keys = Keys::default();
    let (mut uri, mut hashes) = (Vec::new(), Vec::new());
    for target in targets {
        for row in &target.index.uris {
            keys.push(target, &row.param, row.composite);
            hashes.push(hash::uri(target.resource_type, &row.param, &row.uri));
            uri.push(key(&row.uri).into_owned());
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_URIS.get(rows))
        .bind(keys.res_pk)
        .bind(keys.res_type)
        .bind(keys.sp_name)
        .bind(keys.comp)
        .bind(keys.grp)
        .bind(uri)
        .bind(hashes)
        .bind(keys.res_ver)
        .execute(conn)
        .await?;
    Ok(())
}

static INSERT_COORDS: LazyLock<Insert> = LazyLock::new(|| {
    use schema::hfj_spidx_coords::*;
    Insert::new(TABLE, schema::hfj_spidx_coords_hist::TABLE, |table| {
        format!(
            "INSERT INTO {table} ({RES_VER}, {RES_PK}, {RES_TYPE}, {SP_NAME}, {LATITUDE}, {LONGITUDE}) \
         SELECT * FROM unnest($6::int[], $1::bigint[], $2::text[], $3::text[], $4::float8[], $5::float8[])"
        )
    })
});

async fn insert_coords(
    conn: &mut PgConnection,
    targets: &[Target<'_>],
    rows: Rows,
) -> Result<(), sqlx::Error> {
    let mut res_ver = Vec::new();
    let (mut res_pk, mut res_type, mut sp_name) = (Vec::new(), Vec::new(), Vec::new());
    let (mut latitude, mut longitude) = (Vec::new(), Vec::new());
    for target in targets {
        for row in &target.index.coords {
            res_pk.push(target.res_pk);
            res_ver.push(target.version);
            res_type.push(target.resource_type.to_owned());
            sp_name.push(row.param.clone());
            latitude.push(row.latitude);
            longitude.push(row.longitude);
        }
    }
    if res_pk.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_COORDS.get(rows))
        .bind(res_pk)
        .bind(res_type)
        .bind(sp_name)
        .bind(latitude)
        .bind(longitude)
        .bind(res_ver)
        .execute(conn)
        .await?;
    Ok(())
}

static INSERT_LINKS: LazyLock<Insert> = LazyLock::new(|| {
    use schema::hfj_res_link::*;
    Insert::new(TABLE, schema::hfj_res_link_hist::TABLE, |table| {
        format!(
            "INSERT INTO {table} ({RES_VER}, {RES_PK}, {SRC_TYPE}, {SP_NAME}, {COMP}, {GRP}, {SRC_PATH}, {KIND}, {TARGET_TYPE}, {TARGET_ID}, {TARGET_VERSION}, {TARGET_URL}, {IDENTIFIER_SYSTEM}, {IDENTIFIER_VALUE}) \
         SELECT * FROM unnest($14::int[], $1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])"
        )
    })
});

async fn insert_links(
    conn: &mut PgConnection,
    targets: &[Target<'_>],
    rows: Rows,
) -> Result<(), sqlx::Error> {
    let mut keys = Keys::default();
    let (mut src_path, mut kind) = (Vec::new(), Vec::new());
    let (mut target_type, mut target_id, mut target_version, mut target_url) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut identifier_system, mut identifier_value) = (Vec::new(), Vec::new());
    for target in targets {
        for row in &target.index.links {
            keys.push(target, &row.param, row.composite);
            src_path.push(row.source_path.clone());
            kind.push(row.kind.as_str().to_owned());
            target_type.push(bounded(row.target_type.as_deref()));
            target_id.push(bounded(row.target_id.as_deref()));
            target_version.push(row.target_version.clone());
            target_url.push(bounded(row.target_url.as_deref()));
            identifier_system.push(bounded(row.identifier_system.as_deref()));
            identifier_value.push(bounded(row.identifier_value.as_deref()));
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_LINKS.get(rows))
        .bind(keys.res_pk)
        .bind(keys.res_type)
        .bind(keys.sp_name)
        .bind(keys.comp)
        .bind(keys.grp)
        .bind(src_path)
        .bind(kind)
        .bind(target_type)
        .bind(target_id)
        .bind(target_version)
        .bind(target_url)
        .bind(identifier_system)
        .bind(identifier_value)
        .bind(keys.res_ver)
        .execute(conn)
        .await?;
    Ok(())
}

static INSERT_TAGS: LazyLock<Insert> = LazyLock::new(|| {
    use schema::hfj_res_tag::*;
    Insert::new(TABLE, schema::hfj_res_tag_hist::TABLE, |table| {
        format!(
            "INSERT INTO {table} ({RES_VER}, {RES_PK}, {RES_TYPE}, {KIND}, {SYSTEM}, {CODE}, {DISPLAY}) \
         SELECT * FROM unnest($7::int[], $1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])"
        )
    })
});

async fn insert_tags(
    conn: &mut PgConnection,
    targets: &[Target<'_>],
    rows: Rows,
) -> Result<(), sqlx::Error> {
    let mut res_ver = Vec::new();
    let (mut res_pk, mut res_type, mut kind) = (Vec::new(), Vec::new(), Vec::new());
    let (mut system, mut code, mut display) = (Vec::new(), Vec::new(), Vec::new());
    for target in targets {
        for row in &target.index.tags {
            res_pk.push(target.res_pk);
            res_ver.push(target.version);
            res_type.push(target.resource_type.to_owned());
            kind.push(row.kind.as_str().to_owned());
            system.push(bounded(row.system.as_deref()));
            code.push(bounded(row.code.as_deref()));
            display.push(row.display.clone());
        }
    }
    if res_pk.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_TAGS.get(rows))
        .bind(res_pk)
        .bind(res_type)
        .bind(kind)
        .bind(system)
        .bind(code)
        .bind(display)
        .bind(res_ver)
        .execute(conn)
        .await?;
    Ok(())
}

static INSERT_TEXT: LazyLock<Insert> = LazyLock::new(|| {
    use schema::hfj_res_text::*;
    Insert::new(TABLE, schema::hfj_res_text_hist::TABLE, |table| {
        format!(
            "INSERT INTO {table} ({RES_VER}, {RES_PK}, {RES_TYPE}, {NARRATIVE}, {CONTENT}) \
         SELECT res_ver, res_pk, res_type, array_to_tsvector(string_to_array(narrative, ' ')), \
                array_to_tsvector(string_to_array(content, ' ')) \
         FROM unnest($5::int[], $1::bigint[], $2::text[], $3::text[], $4::text[]) AS u(res_ver, res_pk, res_type, narrative, content)"
        )
    })
});

async fn insert_text(
    conn: &mut PgConnection,
    targets: &[Target<'_>],
    rows: Rows,
) -> Result<(), sqlx::Error> {
    let mut res_ver = Vec::new();
    let (mut res_pk, mut res_type) = (Vec::new(), Vec::new());
    let (mut narrative, mut content) = (Vec::new(), Vec::new());
    for target in targets {
        res_pk.push(target.res_pk);
        res_ver.push(target.version);
        res_type.push(target.resource_type.to_owned());
        narrative.push(target.words.narrative.clone());
        content.push(target.words.content.clone());
    }
    if res_pk.is_empty() {
        return Ok(());
    }
    // The words were folded and split in `apply::prepare`, so the database
    // only assembles them: parsing every string of every resource with to_tsvector was the
    // most expensive statement of a batch.
    sqlx::query(INSERT_TEXT.get(rows))
        .bind(res_pk)
        .bind(res_type)
        .bind(narrative)
        .bind(content)
        .bind(res_ver)
        .execute(conn)
        .await?;
    Ok(())
}

static INSERT_NOTE: LazyLock<String> = LazyLock::new(|| {
    use schema::clinical_notes::*;
    format!(
        "INSERT INTO {TABLE} ({RES_PK}, {RES_TYPE}, {RES_ID}, {PATIENT_ID}, {ENCOUNTER_ID}, {STATUS}, {TYPE_SYSTEM}, {TYPE_CODE}, {TYPE_DISPLAY}, {TITLE}, {AUTHOR}, {DATE}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    )
});

static INSERT_ORDER: LazyLock<String> = LazyLock::new(|| {
    use schema::orders::*;
    format!(
        "INSERT INTO {TABLE} ({RES_PK}, {RES_TYPE}, {RES_ID}, {PATIENT_ID}, {ENCOUNTER_ID}, {STATUS}, {INTENT}, {PRIORITY}, {REQUESTER}, {CODE_SYSTEM}, {CODE}, {CODE_DISPLAY}, {AUTHORED_ON}, {LAST_UPDATED}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    )
});

static INSERT_TASK: LazyLock<String> = LazyLock::new(|| {
    use schema::tasks::*;
    format!(
        "INSERT INTO {TABLE} ({RES_PK}, {RES_ID}, {PATIENT_ID}, {STATUS}, {INTENT}, {PRIORITY}, {OWNER}, {FOCUS}, {DESCRIPTION}, {CODE_DISPLAY}, {DUE}, {AUTHORED_ON}, {LAST_UPDATED}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )
});

static INSERT_LOCATION: LazyLock<String> = LazyLock::new(|| {
    use schema::locations::*;
    format!(
        "INSERT INTO {TABLE} ({RES_PK}, {RES_ID}, {NAME}, {STATUS}, {PHYSICAL_TYPE}, {PART_OF_ID}) \
         VALUES ($1, $2, $3, $4, $5, $6)"
    )
});

static INSERT_CENSUS: LazyLock<String> = LazyLock::new(|| {
    use schema::encounter_census::*;
    format!(
        "INSERT INTO {TABLE} ({RES_PK}, {ENCOUNTER_ID}, {PATIENT_ID}, {LOCATION_ID}, {LOCATION_NAME}, {CLASS_CODE}, {PERIOD_START}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )
});

async fn insert_workflow(
    conn: &mut PgConnection,
    targets: &[Target<'_>],
) -> Result<(), sqlx::Error> {
    for target in targets {
        let rows = target.workflow;
        if let Some(note) = &rows.note {
            sqlx::query(&INSERT_NOTE)
                .bind(target.res_pk)
                .bind(target.resource_type)
                .bind(target.resource_id)
                .bind(bounded(note.patient_id.as_deref()))
                .bind(&note.encounter_id)
                .bind(&note.status)
                .bind(&note.type_system)
                .bind(&note.type_code)
                .bind(&note.type_display)
                .bind(&note.title)
                .bind(&note.author)
                .bind(note.date)
                .execute(&mut *conn)
                .await?;
        }
        if let Some(order) = &rows.order {
            sqlx::query(&INSERT_ORDER)
                .bind(target.res_pk)
                .bind(target.resource_type)
                .bind(target.resource_id)
                .bind(bounded(order.patient_id.as_deref()))
                .bind(&order.encounter_id)
                .bind(bounded(order.status.as_deref()))
                .bind(&order.intent)
                .bind(bounded(order.priority.as_deref()))
                .bind(&order.requester)
                .bind(&order.code_system)
                .bind(&order.code)
                .bind(&order.code_display)
                .bind(order.authored_on)
                .bind(target.last_updated)
                .execute(&mut *conn)
                .await?;
        }
        if let Some(task) = &rows.task {
            sqlx::query(&INSERT_TASK)
                .bind(target.res_pk)
                .bind(target.resource_id)
                .bind(bounded(task.patient_id.as_deref()))
                .bind(bounded(task.status.as_deref()))
                .bind(&task.intent)
                .bind(&task.priority)
                .bind(bounded(task.owner.as_deref()))
                .bind(&task.focus)
                .bind(&task.description)
                .bind(&task.code_display)
                .bind(task.due)
                .bind(task.authored_on)
                .bind(target.last_updated)
                .execute(&mut *conn)
                .await?;
        }
        if let Some(location) = &rows.location {
            sqlx::query(&INSERT_LOCATION)
                .bind(target.res_pk)
                .bind(target.resource_id)
                .bind(&location.name)
                .bind(&location.status)
                .bind(&location.physical_type)
                .bind(&location.part_of_id)
                .execute(&mut *conn)
                .await?;
        }
        for place in &rows.census {
            sqlx::query(&INSERT_CENSUS)
                .bind(target.res_pk)
                .bind(target.resource_id)
                .bind(&place.patient_id)
                .bind(key(&place.location_id).into_owned())
                .bind(&place.location_name)
                .bind(&place.class_code)
                .bind(place.period_start)
                .execute(&mut *conn)
                .await?;
        }
    }
    insert_catalog(conn, targets).await
}

static INSERT_CATALOG: LazyLock<String> = LazyLock::new(|| {
    use schema::clinical_catalog_entry::*;
    format!(
        "INSERT INTO {TABLE} ({RES_PK}, {CATALOG}, {SYSTEM}, {CODE}, {DISPLAY}) \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])"
    )
});

async fn insert_catalog(
    conn: &mut PgConnection,
    targets: &[Target<'_>],
) -> Result<(), sqlx::Error> {
    let (mut res_pk, mut catalog, mut system) = (Vec::new(), Vec::new(), Vec::new());
    let (mut code, mut display) = (Vec::new(), Vec::new());
    for target in targets {
        for entry in &target.workflow.catalog {
            res_pk.push(target.res_pk);
            catalog.push(entry.catalog.to_owned());
            system.push(key(&entry.system).into_owned());
            code.push(key(&entry.code).into_owned());
            display.push(entry.display.clone());
        }
    }
    if res_pk.is_empty() {
        return Ok(());
    }
    sqlx::query(&INSERT_CATALOG)
        .bind(res_pk)
        .bind(catalog)
        .bind(system)
        .bind(code)
        .bind(display)
        .execute(conn)
        .await?;
    Ok(())
}

/// The bounded key of an optional value, as stored in a btree-indexed column.
fn bounded(value: Option<&str>) -> Option<String> {
    value.map(|text| key(text).into_owned())
}
