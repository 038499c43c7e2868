//! A parsed search turned into one SQL statement over the `hfj_*` tables.
//!
//! The statement selects `res_pk`s of current, non-deleted resources of the searched types, in
//! the requested order. Each criterion becomes an `EXISTS` over the index table of its
//! parameter's type, correlated on `res_pk`; a chain becomes an `EXISTS` over `hfj_res_link`
//! joined to the target's `hfj_resource` row, and `_has` the same in reverse, nesting as deep
//! as the query does. Equality on tokens, exact strings and uris probes the hash columns the
//! projector wrote (`fhir_search::hash`), which is why hashes are computed here for each type a
//! criterion may apply to. Columns the projector stores as bounded keys (token systems, uris,
//! reference targets and identifiers) are compared with the searched value's key
//! (`normalize::key`). Every value is a bind parameter; only aliases and fixed SQL are
//! formatted into the text.
//!
//! A search of the past ([`View::AsOf`]) is the same statement over other relations: the
//! resources are the versions current at the position (`hfj_res_ver`), each index table is read
//! with its history twin, and every index row is matched to its resource's version as well as
//! to its resource (ADR 0013). The position is formatted into the text as a number; it is an
//! `i64`, never text from the request.

use crate::ParamType;
use crate::hash;
use crate::normalize::key::{key, key_prefix};
use crate::normalize::words;
use crate::query::{
    Criterion, DateValue, NearValue, NumberValue, Prefix, QuantityValue, ReferenceValue,
    SearchQuery, SortKey, Step, StringMatch, StringValue, Test, TokenValue, UriMatch, UriValue,
    Value,
};
use chrono::{Duration, Utc};
use rust_decimal::Decimal;
use sqlx::{Postgres, QueryBuilder};

use crate::compartment::PatientCompartment;
use crate::schema::hfj_res_link::{
    IDENTIFIER_SYSTEM, IDENTIFIER_VALUE, KIND, SRC_TYPE, TARGET_ID, TARGET_TYPE, TARGET_URL,
};
use crate::schema::hfj_res_text::{CONTENT, NARRATIVE};
use crate::schema::hfj_resource::{DELETED, LAST_UPDATED};
use crate::schema::shared::{COMP, GRP, RES_ID, RES_PK, RES_TYPE, RES_VER, SP_NAME};
use crate::schema::{
    hfj_res_link::TABLE as HFJ_RES_LINK, hfj_res_text::TABLE as HFJ_RES_TEXT,
    hfj_resource::TABLE as HFJ_RESOURCE,
};
use crate::schema::{
    hfj_spidx_coords, hfj_spidx_date, hfj_spidx_number, hfj_spidx_quantity, hfj_spidx_string,
    hfj_spidx_token, hfj_spidx_uri,
};

pub mod checkpoint;

/// Which record a statement searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The present: the live tables.
    Live,
    /// The record as it was at an event position: what the live tables held once every event up
    /// to it, and none after it, was projected.
    AsOf(i64),
    /// A teaching sandbox run (ADR 0014): the live record at the fork position, with the
    /// resources the run wrote (partition `partition`) in place of the live ones.
    Sandbox { partition: i64, fork: i64 },
}

impl View {
    /// The relation of resources, with the columns of `hfj_resource` that searches use
    /// (`res_pk`, `res_ver`, `res_type`, `res_id`, `last_updated`, `deleted`).
    pub fn resources(self) -> String {
        match self {
            View::Live => HFJ_RESOURCE.to_owned(),
            View::AsOf(position) => format!("({})", live_versions_at(position)),
            View::Sandbox { partition, fork } => {
                use crate::schema::hfj_res_ver::{PARTITION, POS_FROM, POS_TO, TABLE};
                use crate::schema::hfj_sandbox_resource as own;
                // One relation, not a union of the live part and the sandbox's own: the
                // planner flattens it into the search and reaches it through the index rows
                // it probes, as it does the past; a union it would read whole.
                format!(
                    "(SELECT {RES_PK}, {RES_VER}, {RES_TYPE}, {RES_ID}, {LAST_UPDATED}, {DELETED} FROM {TABLE} v \
                     WHERE ({PARTITION} = {partition} AND {POS_TO} IS NULL) \
                     OR ({PARTITION} = 0 AND {POS_FROM} <= {fork} AND ({POS_TO} IS NULL OR {POS_TO} > {fork}) \
                     AND NOT EXISTS (SELECT 1 FROM {} o WHERE o.{} = {partition} \
                     AND o.{RES_TYPE} = v.{RES_TYPE} AND o.{RES_ID} = v.{RES_ID})))",
                    own::TABLE,
                    own::PARTITION,
                )
            }
        }
    }

    /// The relation of an index table's rows: the table, or for the past the table with its
    /// history twin.
    pub fn rows(self, table: &str) -> String {
        match (self, crate::schema::history_of(table)) {
            (View::AsOf(_) | View::Sandbox { .. }, Some(twin)) => {
                format!("(SELECT * FROM {table} UNION ALL SELECT * FROM {twin})")
            }
            _ => table.to_owned(),
        }
    }

    /// The condition that index row `row` describes the version of resource `alias` (after
    /// ` AND `), empty for the present, whose tables hold current versions only.
    pub fn same_version(self, row: &str, alias: &str) -> String {
        match self {
            View::Live => String::new(),
            View::AsOf(_) | View::Sandbox { .. } => {
                format!(" AND {row}.{RES_VER} = {alias}.{RES_VER}")
            }
        }
    }
}

/// The live record's versions current at `position`, as `v`, with the columns of
/// [`View::resources`].
fn live_versions_at(position: i64) -> String {
    use crate::schema::hfj_res_ver::{PARTITION, POS_FROM, POS_TO, TABLE};
    format!(
        "SELECT {RES_PK}, {RES_VER}, {RES_TYPE}, {RES_ID}, {LAST_UPDATED}, {DELETED} FROM {TABLE} v \
         WHERE {PARTITION} = 0 AND {POS_FROM} <= {position} AND ({POS_TO} IS NULL OR {POS_TO} > {position})"
    )
}

/// Builds the statement selecting the matches in order as `(res_pk, res_type, res_id)`, at most
/// `limit` of them, within `compartment` if given.
pub fn select_matches(
    query: &SearchQuery,
    compartment: Option<&PatientCompartment>,
    limit: i64,
    view: View,
) -> QueryBuilder<'static, Postgres> {
    let mut sql = Sql {
        builder: QueryBuilder::new(format!(
            "SELECT r.{RES_PK}, r.{RES_TYPE}, r.{RES_ID} FROM {} r WHERE NOT r.{DELETED}",
            view.resources()
        )),
        aliases: 0,
        view,
    };
    sql.filters(query, compartment);
    sql.builder.push(" ORDER BY ");
    for key in &query.sort {
        sql.sort_key(key);
        sql.builder.push(", ");
    }
    sql.builder.push(format!("r.{RES_PK} LIMIT "));
    sql.builder.push_bind(limit);
    sql.builder
}

/// The bind parameters of a built statement: what the search's budget
/// ([`crate::query::Limits::bind_parameters`]) holds, below Postgres' own 65,535. The text of
/// these statements is fixed SQL, aliases and placeholders only, so each `$n` is one value.
pub fn bind_count(builder: &QueryBuilder<'static, Postgres>) -> usize {
    let sql = builder.sql().as_bytes();
    sql.windows(2)
        .filter(|pair| pair[0] == b'$' && pair[1].is_ascii_digit())
        .count()
}

/// Builds one statement saying which of `queries` the resource `resource_type`/`id` matches:
/// the rows are the indexes (into `queries`, as `int4`) of those it matches. A subscriber asking
/// many searches of one resource pays one round trip, not one per search. `queries` must not
/// be empty. `view` is the record the resource is in (a sandbox's events match in the sandbox).
pub fn select_matching_queries(
    queries: &[&SearchQuery],
    resource_type: &str,
    id: &str,
    view: View,
) -> QueryBuilder<'static, Postgres> {
    let mut sql = Sql {
        builder: QueryBuilder::new(""),
        aliases: 0,
        view,
    };
    let resources = view.resources();
    for (index, query) in queries.iter().enumerate() {
        if index > 0 {
            sql.builder.push(" UNION ALL ");
        }
        sql.builder.push("(SELECT ");
        sql.builder.push(index.to_string());
        sql.builder.push(format!(
            "::int4 AS matched FROM {resources} r WHERE NOT r.{DELETED} AND r.{RES_TYPE} = "
        ));
        sql.builder.push_bind(resource_type.to_owned());
        sql.builder.push(format!(" AND r.{RES_ID} = "));
        sql.builder.push_bind(id.to_owned());
        sql.filters(query, None);
        sql.builder.push(" LIMIT 1)");
    }
    sql.builder
}

/// Counts the matches (for `_total=accurate` beyond the kept result list).
pub fn count_matches(
    query: &SearchQuery,
    compartment: Option<&PatientCompartment>,
    view: View,
) -> QueryBuilder<'static, Postgres> {
    let mut sql = Sql {
        builder: QueryBuilder::new(format!(
            "SELECT count(*) FROM {} r WHERE NOT r.{DELETED}",
            view.resources()
        )),
        aliases: 0,
        view,
    };
    sql.filters(query, compartment);
    sql.builder
}

struct Sql {
    builder: QueryBuilder<'static, Postgres>,
    aliases: usize,
    view: View,
}

/// The index table of a parameter type.
fn table(kind: ParamType) -> &'static str {
    match kind {
        ParamType::String => hfj_spidx_string::TABLE,
        ParamType::Token => hfj_spidx_token::TABLE,
        ParamType::Reference => HFJ_RES_LINK,
        ParamType::Date => hfj_spidx_date::TABLE,
        ParamType::Number => hfj_spidx_number::TABLE,
        ParamType::Quantity => hfj_spidx_quantity::TABLE,
        ParamType::Uri => hfj_spidx_uri::TABLE,
        ParamType::Special => hfj_spidx_coords::TABLE,
        // A composite's rows are in its components' tables; `:missing` looks at the first.
        ParamType::Composite => hfj_spidx_token::TABLE,
    }
}

/// Characters that `LIKE` treats specially, escaped (Postgres' default escape is `\`).
fn like_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Sql {
    /// The `AND ...` conditions of a search on the resource `r`.
    fn filters(&mut self, query: &SearchQuery, compartment: Option<&PatientCompartment>) {
        if !query.types.is_empty() {
            self.builder.push(format!(" AND r.{RES_TYPE} = ANY("));
            self.builder.push_bind(query.types.clone());
            self.builder.push(")");
        }
        if let Some(compartment) = compartment {
            self.compartment(compartment);
        }
        for criterion in &query.criteria {
            self.builder.push(" AND ");
            self.criterion(criterion, "r", &criterion.steps);
        }
    }

    /// In the patient's compartment: linked to the patient by one of the compartment's
    /// parameters of its type (or the patient itself, when asked).
    fn compartment(&mut self, compartment: &PatientCompartment) {
        let (types, params): (Vec<String>, Vec<String>) = compartment.links.iter().cloned().unzip();
        self.builder.push(format!(
            " AND (EXISTS (SELECT 1 FROM {} pc \
             JOIN unnest(",
            self.view.rows(HFJ_RES_LINK)
        ));
        self.builder.push_bind(types);
        self.builder.push("::text[], ");
        self.builder.push_bind(params);
        self.builder.push(format!(
            "::text[]) AS k(src_type, sp_name) ON pc.{SRC_TYPE} = k.src_type AND pc.{SP_NAME} = k.sp_name \
             WHERE pc.{RES_PK} = r.{RES_PK}{} AND pc.{KIND} = 'local' AND pc.{TARGET_TYPE} = 'Patient' AND pc.{TARGET_ID} = ",
            self.view.same_version("pc", "r")
        ));
        self.builder.push_bind(compartment.patient_id.clone());
        self.builder.push(")");
        if compartment.include_patient {
            self.builder
                .push(format!(" OR (r.{RES_TYPE} = 'Patient' AND r.{RES_ID} = "));
            self.builder.push_bind(compartment.patient_id.clone());
            self.builder.push(")");
        }
        self.builder.push(")");
    }

    /// Binds a decimal exactly, as text cast to `numeric`.
    fn decimal(&mut self, value: Decimal) {
        self.builder.push_bind(value.to_string());
        self.builder.push("::numeric");
    }

    fn alias(&mut self, stem: &str) -> String {
        self.aliases += 1;
        format!("{stem}{}", self.aliases)
    }

    /// `criterion` on the resource `alias`, after walking `steps`.
    fn criterion(&mut self, criterion: &Criterion, alias: &str, steps: &[Step]) {
        match steps.split_first() {
            Some((
                Step::Forward {
                    param,
                    target_types,
                },
                rest,
            )) => {
                let link = self.alias("l");
                let target = self.alias("t");
                self.builder.push(format!(
                    "EXISTS (SELECT 1 FROM {} {link} JOIN {} {target} \
                     ON {target}.{RES_TYPE} = {link}.{TARGET_TYPE} AND {target}.{RES_ID} = {link}.{TARGET_ID} \
                     AND NOT {target}.{DELETED} WHERE {link}.{RES_PK} = {alias}.{RES_PK}{} AND {link}.{SP_NAME} = ",
                    self.view.rows(HFJ_RES_LINK),
                    self.view.resources(),
                    self.view.same_version(&link, alias)
                ));
                self.builder.push_bind(param.clone());
                self.builder
                    .push(format!(" AND {link}.{TARGET_TYPE} = ANY("));
                self.builder.push_bind(target_types.clone());
                self.builder.push(") AND ");
                self.criterion(criterion, &target, rest);
                self.builder.push(")");
            }
            Some((Step::Reverse { source_type, param }, rest)) => {
                let link = self.alias("l");
                let source = self.alias("s");
                self.builder.push(format!(
                    "EXISTS (SELECT 1 FROM {} {link} JOIN {} {source} \
                     ON {source}.{RES_PK} = {link}.{RES_PK}{} AND NOT {source}.{DELETED} \
                     WHERE {link}.{TARGET_TYPE} = {alias}.{RES_TYPE} AND {link}.{TARGET_ID} = {alias}.{RES_ID} \
                     AND {link}.{SRC_TYPE} = ",
                    self.view.rows(HFJ_RES_LINK),
                    self.view.resources(),
                    self.view.same_version(&source, &link)
                ));
                self.builder.push_bind(source_type.clone());
                self.builder.push(format!(" AND {link}.{SP_NAME} = "));
                self.builder.push_bind(param.clone());
                self.builder.push(" AND ");
                self.criterion(criterion, &source, rest);
                self.builder.push(")");
            }
            None => self.test(criterion, alias),
        }
    }

    /// The parameter's test on the resource `alias`.
    fn test(&mut self, criterion: &Criterion, alias: &str) {
        match &criterion.test {
            Test::Missing(missing) => {
                if *missing {
                    self.builder.push("NOT ");
                }
                let row = self.alias("i");
                self.builder.push(format!(
                    "EXISTS (SELECT 1 FROM {} {row} WHERE {row}.{RES_PK} = {alias}.{RES_PK}{} AND {row}.{SP_NAME} = ",
                    self.view.rows(table(criterion.kind)),
                    self.view.same_version(&row, alias)
                ));
                self.builder.push_bind(criterion.code.clone());
                self.builder.push(")");
            }
            Test::Any(values) => self.any_value(criterion, alias, values),
            Test::None(values) => {
                self.builder.push("NOT ");
                self.any_value(criterion, alias, values);
            }
        }
    }

    /// True when some value of the parameter matches one of `values`.
    fn any_value(&mut self, criterion: &Criterion, alias: &str, values: &[Value]) {
        if criterion.code == "_id" {
            // The id is on the resource row itself.
            let ids: Vec<String> = values
                .iter()
                .filter_map(|value| match value {
                    Value::Token(TokenValue::Code(code)) => Some(code.clone()),
                    Value::Token(TokenValue::SystemCode { code, .. }) => Some(code.clone()),
                    _ => None,
                })
                .collect();
            self.builder.push(format!("{alias}.{RES_ID} = ANY("));
            self.builder.push_bind(ids);
            self.builder.push(")");
            return;
        }
        self.builder.push("(");
        for (n, value) in values.iter().enumerate() {
            if n > 0 {
                self.builder.push(" OR ");
            }
            match value {
                Value::Composite(parts) => self.composite(criterion, alias, parts),
                Value::Text(words) => {
                    let row = self.alias("x");
                    let column = if criterion.code == "_text" {
                        NARRATIVE
                    } else {
                        CONTENT
                    };
                    // Every word, folded as the projector folded the text it stored.
                    let query = words::words(words)
                        .iter()
                        .map(|word| format!("'{word}'"))
                        .collect::<Vec<_>>()
                        .join(" & ");
                    self.builder.push(format!(
                        "EXISTS (SELECT 1 FROM {} {row} WHERE {row}.{RES_PK} = {alias}.{RES_PK}{} \
                         AND {row}.{column} @@ ",
                        self.view.rows(HFJ_RES_TEXT),
                        self.view.same_version(&row, alias)
                    ));
                    self.builder.push_bind(query);
                    self.builder.push("::tsquery)");
                }
                value => {
                    let row = self.alias("i");
                    self.builder.push(format!(
                        "EXISTS (SELECT 1 FROM {} {row} WHERE {row}.{RES_PK} = {alias}.{RES_PK}{}",
                        self.view.rows(table(criterion.kind)),
                        self.view.same_version(&row, alias)
                    ));
                    // A hash names the type and the parameter (as HAPI's do), so a probe needs
                    // neither: without them it is answered from the hash index alone.
                    if !is_hash_probe(value) {
                        self.builder.push(format!(" AND {row}.{SP_NAME} = "));
                        self.builder.push_bind(criterion.code.clone());
                        self.row_types(&criterion.types, criterion.kind, &row);
                    }
                    // Coordinates have no composite columns; every other table does.
                    if criterion.kind != ParamType::Special {
                        self.builder.push(format!(" AND {row}.{COMP} IS NULL"));
                    }
                    self.builder.push(" AND ");
                    self.value(&criterion.types, &criterion.code, &row, value);
                    self.builder.push(")");
                }
            }
        }
        self.builder.push(")");
    }

    /// Restricts index row `row` to the types the criterion applies to. It is implied by the
    /// join to the resource, but stated it lets every index that starts with the type (all of
    /// the `(res_type, sp_name, ...)` ones, and `(src_type, sp_name, target_id)` for
    /// references) be searched by its whole key instead of scanned. Hash probes leave it out,
    /// and the parameter's name too: their hashes already name both, and with the type the
    /// planner was seen to combine the narrow hash index with a scan of the whole
    /// `(res_type, sp_name)` range; with the name, it read every matching row from the heap.
    fn row_types(&mut self, types: &[String], kind: ParamType, row: &str) {
        if types.is_empty() {
            return;
        }
        let column = if kind == ParamType::Reference {
            SRC_TYPE
        } else {
            RES_TYPE
        };
        self.builder.push(format!(" AND {row}.{column} = ANY("));
        self.builder.push_bind(types.to_vec());
        self.builder.push(")");
    }

    /// A composite value: one row per component, all from the same element (`grp`).
    fn composite(&mut self, criterion: &Criterion, alias: &str, parts: &[Value]) {
        let rows: Vec<String> = parts.iter().map(|_| self.alias("c")).collect();
        self.builder.push("EXISTS (SELECT 1 FROM ");
        for (n, (part, row)) in parts.iter().zip(&rows).enumerate() {
            if n > 0 {
                self.builder.push(", ");
            }
            self.builder
                .push(format!("{} {row}", self.view.rows(table(value_kind(part)))));
        }
        let first = &rows[0];
        self.builder.push(format!(
            " WHERE {first}.{RES_PK} = {alias}.{RES_PK}{} AND {first}.{SP_NAME} = ",
            self.view.same_version(first, alias)
        ));
        self.builder.push_bind(criterion.code.clone());
        if !is_hash_probe(&parts[0]) {
            self.row_types(&criterion.types, value_kind(&parts[0]), first);
        }
        for (n, (part, row)) in parts.iter().zip(&rows).enumerate() {
            self.builder.push(format!(" AND {row}.{COMP} = {n}"));
            if n > 0 {
                self.builder.push(format!(
                    " AND {row}.{RES_PK} = {first}.{RES_PK}{} AND {row}.{SP_NAME} = {first}.{SP_NAME} AND {row}.{GRP} = {first}.{GRP}",
                    self.view.same_version(row, first)
                ));
            }
            self.builder.push(" AND ");
            self.value(&criterion.types, &criterion.code, row, part);
        }
        self.builder.push(")");
    }

    /// The condition on one index row `row` for one value.
    fn value(&mut self, types: &[String], code: &str, row: &str, value: &Value) {
        match value {
            Value::String(string) => self.string(types, code, row, string),
            Value::Token(token) => self.token(types, code, row, token),
            Value::Reference(reference) => self.reference(row, reference),
            Value::Date(date) => self.date(row, date),
            Value::Number(number) => {
                self.number(&format!("{row}.{}", hfj_spidx_number::VALUE), number)
            }
            Value::Quantity(quantity) => self.quantity(row, quantity),
            Value::Uri(uri) => self.uri(types, code, row, uri),
            Value::Near(near) => self.near(row, near),
            // Handled by the caller; a nested one cannot occur in R4.
            Value::Composite(_) | Value::Text(_) => {
                self.builder.push("false");
            }
        }
    }

    fn string(&mut self, types: &[String], code: &str, row: &str, value: &StringValue) {
        use crate::schema::hfj_spidx_string::{HASH_EXACT, VALUE_EXACT, VALUE_NORMALIZED};
        match value.mode {
            StringMatch::Prefix => {
                self.builder.push(format!("{row}.{VALUE_NORMALIZED} LIKE "));
                self.builder
                    .push_bind(format!("{}%", like_escape(&value.normalized)));
            }
            StringMatch::Contains => {
                self.builder.push(format!("{row}.{VALUE_NORMALIZED} LIKE "));
                self.builder
                    .push_bind(format!("%{}%", like_escape(&value.normalized)));
            }
            StringMatch::Exact => {
                let hashes: Vec<i64> = types
                    .iter()
                    .map(|t| hash::string_exact(t, code, &value.exact))
                    .collect();
                self.builder.push(format!("{row}.{HASH_EXACT} = ANY("));
                self.builder.push_bind(hashes);
                self.builder.push(format!(") AND {row}.{VALUE_EXACT} = "));
                self.builder.push_bind(value.exact.clone());
            }
        }
    }

    fn token(&mut self, types: &[String], code: &str, row: &str, value: &TokenValue) {
        use crate::schema::hfj_spidx_token::{
            CODE, HASH_SYS_VALUE, HASH_VALUE, SYSTEM, TEXT, TYPE_CODE, TYPE_SYSTEM,
        };
        match value {
            TokenValue::Code(value) => {
                let hashes: Vec<i64> = types
                    .iter()
                    .map(|t| hash::token_code(t, code, value))
                    .collect();
                self.builder.push(format!("{row}.{HASH_VALUE} = ANY("));
                self.builder.push_bind(hashes);
                self.builder.push(")");
            }
            TokenValue::SystemCode {
                system,
                code: value,
            } => {
                let hashes: Vec<i64> = types
                    .iter()
                    .map(|t| hash::token_system_code(t, code, system, value))
                    .collect();
                self.builder.push(format!("{row}.{HASH_SYS_VALUE} = ANY("));
                self.builder.push_bind(hashes);
                self.builder.push(")");
            }
            TokenValue::System(system) => {
                self.builder.push(format!("{row}.{SYSTEM} = "));
                self.builder.push_bind(key(system).into_owned());
            }
            TokenValue::Text(text) => {
                self.builder.push(format!("{row}.{TEXT} LIKE "));
                self.builder.push_bind(format!("{}%", like_escape(text)));
            }
            TokenValue::OfType {
                type_system,
                type_code,
                value,
            } => {
                self.builder.push(format!("{row}.{TYPE_SYSTEM} = "));
                self.builder.push_bind(type_system.clone());
                self.builder.push(format!(" AND {row}.{TYPE_CODE} = "));
                self.builder.push_bind(type_code.clone());
                self.builder.push(format!(" AND {row}.{CODE} = "));
                self.builder.push_bind(value.clone());
            }
        }
    }

    fn reference(&mut self, row: &str, value: &ReferenceValue) {
        match value {
            ReferenceValue::Local { resource_type, id } => {
                self.builder.push(format!("{row}.{TARGET_ID} = "));
                self.builder.push_bind(key(id).into_owned());
                self.builder.push(format!(" AND {row}.{KIND} = 'local'"));
                if let Some(resource_type) = resource_type {
                    self.builder.push(format!(" AND {row}.{TARGET_TYPE} = "));
                    self.builder.push_bind(resource_type.clone());
                }
            }
            ReferenceValue::Url(url) => {
                self.builder.push(format!("{row}.{TARGET_URL} = "));
                self.builder.push_bind(key(url).into_owned());
            }
            ReferenceValue::Identifier { system, value } => {
                self.builder.push(format!("{row}.{IDENTIFIER_VALUE} = "));
                self.builder.push_bind(key(value).into_owned());
                if let Some(system) = system {
                    self.builder
                        .push(format!(" AND {row}.{IDENTIFIER_SYSTEM} = "));
                    self.builder.push_bind(key(system).into_owned());
                }
            }
        }
    }

    /// search.html's date prefixes over the target range `[low, high)` and the value's range.
    fn date(&mut self, row: &str, value: &DateValue) {
        use crate::schema::hfj_spidx_date::{HIGH, LOW};
        let (low, high) = (value.low, value.high);
        let contained = |sql: &mut Self| {
            sql.builder.push(format!("({row}.{LOW} >= "));
            sql.builder.push_bind(low);
            sql.builder.push(format!(" AND {row}.{HIGH} <= "));
            sql.builder.push_bind(high);
            sql.builder.push(")");
        };
        match value.prefix {
            Prefix::Eq => contained(self),
            Prefix::Ne => {
                self.builder.push("NOT ");
                contained(self);
            }
            Prefix::Gt => {
                self.builder.push(format!("{row}.{HIGH} > "));
                self.builder.push_bind(high);
            }
            Prefix::Lt => {
                self.builder.push(format!("{row}.{LOW} < "));
                self.builder.push_bind(low);
            }
            Prefix::Ge => {
                self.builder.push(format!("({row}.{HIGH} > "));
                self.builder.push_bind(high);
                self.builder.push(" OR ");
                contained(self);
                self.builder.push(")");
            }
            Prefix::Le => {
                self.builder.push(format!("({row}.{LOW} < "));
                self.builder.push_bind(low);
                self.builder.push(" OR ");
                contained(self);
                self.builder.push(")");
            }
            Prefix::Sa => {
                self.builder.push(format!("{row}.{LOW} >= "));
                self.builder.push_bind(high);
            }
            Prefix::Eb => {
                self.builder.push(format!("{row}.{HIGH} <= "));
                self.builder.push_bind(low);
            }
            Prefix::Ap => {
                // Approximately: the ranges overlap once the value's is widened by a tenth of
                // its distance from now (at least a day), as HAPI does.
                let distance = (Utc::now() - low).abs() / 10;
                let margin = distance.max(Duration::days(1));
                self.builder.push(format!("({row}.{LOW} < "));
                self.builder.push_bind(high + margin);
                self.builder.push(format!(" AND {row}.{HIGH} > "));
                self.builder.push_bind(low - margin);
                self.builder.push(")");
            }
        }
    }

    /// Number prefixes on the point value in `column`: `eq` and `ne` use the range the
    /// value's precision implies; the others compare with the value, as HAPI does.
    fn number(&mut self, column: &str, value: &NumberValue) {
        let range = |sql: &mut Self| {
            sql.builder.push(format!("({column} >= "));
            sql.decimal(value.low);
            sql.builder.push(format!(" AND {column} < "));
            sql.decimal(value.high);
            sql.builder.push(")");
        };
        let compare = |sql: &mut Self, operator: &str, bound: Decimal| {
            sql.builder.push(format!("{column} {operator} "));
            sql.decimal(bound);
        };
        match value.prefix {
            Prefix::Eq => range(self),
            Prefix::Ne => {
                self.builder.push("NOT ");
                range(self);
            }
            Prefix::Gt | Prefix::Sa => compare(self, ">", value.value),
            Prefix::Lt | Prefix::Eb => compare(self, "<", value.value),
            Prefix::Ge => compare(self, ">=", value.value),
            Prefix::Le => compare(self, "<=", value.value),
            Prefix::Ap => {
                self.builder.push(format!("({column} >= "));
                self.decimal(value.approx_low);
                self.builder.push(format!(" AND {column} <= "));
                self.decimal(value.approx_high);
                self.builder.push(")");
            }
        }
    }

    /// Quantities: in canonical UCUM units when the searched unit converts (so `mg` finds
    /// `g`), otherwise by system and code as written.
    fn quantity(&mut self, row: &str, value: &QuantityValue) {
        use crate::schema::hfj_spidx_quantity::{
            CANONICAL_CODE, CANONICAL_VALUE, CODE, SYSTEM, UNIT, VALUE,
        };
        if let Some((canonical, code)) = &value.canonical {
            self.builder.push(format!("{row}.{CANONICAL_CODE} = "));
            self.builder.push_bind(code.clone());
            self.builder.push(" AND ");
            self.number(&format!("{row}.{CANONICAL_VALUE}"), canonical);
            return;
        }
        if let Some(system) = &value.system {
            self.builder.push(format!("{row}.{SYSTEM} = "));
            self.builder.push_bind(system.clone());
            self.builder.push(" AND ");
        }
        if let Some(code) = &value.code {
            if value.system.is_some() {
                self.builder.push(format!("{row}.{CODE} = "));
                self.builder.push_bind(code.clone());
            } else {
                self.builder.push(format!("({row}.{CODE} = "));
                self.builder.push_bind(code.clone());
                self.builder.push(format!(" OR {row}.{UNIT} = "));
                self.builder.push_bind(code.clone());
                self.builder.push(")");
            }
            self.builder.push(" AND ");
        }
        self.number(&format!("{row}.{VALUE}"), &value.number);
    }

    fn uri(&mut self, types: &[String], code: &str, row: &str, value: &UriValue) {
        use crate::schema::hfj_spidx_uri::{HASH_URI, URI};
        match value.mode {
            UriMatch::Exact => {
                let hashes: Vec<i64> = types
                    .iter()
                    .map(|t| hash::uri(t, code, &value.uri))
                    .collect();
                self.builder.push(format!("{row}.{HASH_URI} = ANY("));
                self.builder.push_bind(hashes);
                self.builder.push(format!(") AND {row}.{URI} = "));
                self.builder.push_bind(key(&value.uri).into_owned());
            }
            UriMatch::Below => {
                self.builder.push(format!("{row}.{URI} LIKE "));
                self.builder
                    .push_bind(format!("{}%", like_escape(&key_prefix(&value.uri))));
            }
            UriMatch::Above => {
                self.builder.push(format!("{row}.{URI} = ANY("));
                self.builder.push_bind(
                    value
                        .ancestors()
                        .iter()
                        .map(|uri| key(uri).into_owned())
                        .collect::<Vec<_>>(),
                );
                self.builder.push(")");
            }
        }
    }

    /// Within `kilometres` of a point: a bounding box the index can use, then the haversine
    /// distance.
    fn near(&mut self, row: &str, value: &NearValue) {
        use crate::schema::hfj_spidx_coords::{LATITUDE, LONGITUDE};
        const EARTH_KM: f64 = 6371.0;
        let degrees = (value.kilometres / EARTH_KM).to_degrees();
        let cos = value.latitude.to_radians().cos().max(1e-6);
        self.builder.push(format!("{row}.{LATITUDE} BETWEEN "));
        self.builder.push_bind(value.latitude - degrees);
        self.builder.push(" AND ");
        self.builder.push_bind(value.latitude + degrees);
        self.builder
            .push(format!(" AND {row}.{LONGITUDE} BETWEEN "));
        self.builder.push_bind(value.longitude - degrees / cos);
        self.builder.push(" AND ");
        self.builder.push_bind(value.longitude + degrees / cos);
        self.builder.push(format!(
            " AND 2 * {EARTH_KM} * asin(sqrt(power(sin(radians({row}.{LATITUDE} - "
        ));
        self.builder.push_bind(value.latitude);
        self.builder.push(format!(
            ") / 2), 2) + cos(radians({row}.{LATITUDE})) * cos(radians("
        ));
        self.builder.push_bind(value.latitude);
        self.builder
            .push(format!(")) * power(sin(radians({row}.{LONGITUDE} - "));
        self.builder.push_bind(value.longitude);
        self.builder.push(") / 2), 2))) <= ");
        self.builder.push_bind(value.kilometres);
    }

    /// One `_sort` key: the smallest value ascending, the largest descending (a date's start
    /// or end), resources without a value last.
    fn sort_key(&mut self, key: &SortKey) {
        let direction = if key.descending { "DESC" } else { "ASC" };
        let aggregate = if key.descending { "max" } else { "min" };
        match key.code.as_str() {
            "_id" => {
                self.builder.push(format!("r.{RES_ID} {direction}"));
                return;
            }
            "_lastUpdated" => {
                self.builder.push(format!("r.{LAST_UPDATED} {direction}"));
                return;
            }
            _ => {}
        }
        let column = match key.kind {
            ParamType::String => hfj_spidx_string::VALUE_NORMALIZED,
            ParamType::Token => hfj_spidx_token::CODE,
            ParamType::Reference => TARGET_ID,
            ParamType::Date if key.descending => hfj_spidx_date::HIGH,
            ParamType::Date => hfj_spidx_date::LOW,
            ParamType::Number => hfj_spidx_number::VALUE,
            ParamType::Quantity => hfj_spidx_quantity::VALUE,
            ParamType::Uri => hfj_spidx_uri::URI,
            ParamType::Composite | ParamType::Special => RES_PK,
        };
        let row = self.alias("o");
        self.builder.push(format!(
            "(SELECT {aggregate}({row}.{column}) FROM {} {row} WHERE {row}.{RES_PK} = r.{RES_PK}{} AND {row}.{COMP} IS NULL AND {row}.{SP_NAME} = ",
            self.view.rows(table(key.kind)),
            self.view.same_version(&row, "r")
        ));
        self.builder.push_bind(key.code.clone());
        self.builder.push(format!(") {direction} NULLS LAST"));
    }
}

/// Whether `value` is matched by a hash column (token codes, exact strings, exact uris).
fn is_hash_probe(value: &Value) -> bool {
    matches!(
        value,
        Value::Token(TokenValue::Code(_) | TokenValue::SystemCode { .. })
            | Value::String(StringValue {
                mode: StringMatch::Exact,
                ..
            })
            | Value::Uri(UriValue {
                mode: UriMatch::Exact,
                ..
            })
    )
}

/// The index table a composite component's value lives in.
fn value_kind(value: &Value) -> ParamType {
    match value {
        Value::String(_) => ParamType::String,
        Value::Token(_) => ParamType::Token,
        Value::Reference(_) => ParamType::Reference,
        Value::Date(_) => ParamType::Date,
        Value::Number(_) => ParamType::Number,
        Value::Quantity(_) => ParamType::Quantity,
        Value::Uri(_) => ParamType::Uri,
        Value::Near(_) => ParamType::Special,
        Value::Composite(_) | Value::Text(_) => ParamType::Token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;

    #[test]
    fn bind_count_counts_every_value() {
        let params: Vec<(String, String)> = vec![
            ("_id".into(), "a,b,c".into()),
            ("name".into(), "x,y".into()),
        ];
        let query = crate::query::parse(
            Registry::r4(),
            vec!["Patient".into()],
            &params,
            "http://x/fhir",
        )
        .unwrap();
        let one = bind_count(&select_matches(&query, None, 10, View::Live));
        // Types, the ids (one array), two name values each with their name and types, limit.
        assert_eq!(one, 1 + 1 + 2 * 3 + 1);
    }
}
