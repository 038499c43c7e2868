//! The 42 Synthea patients through the whole pipeline: written one resource at a time through
//! the command service, projected, and compared with values computed from the files.

use std::collections::{BTreeMap, BTreeSet};

use fhir_search::index::ResourceIndex;
use fhir_search::{ExtractOptions, ParamType, Registry};
use futures::StreamExt;
use serde_json::Value;

use crate::helpers::{BASE_URL, TestApp};

/// One comparable row: `(id, parameter, values...)`.
type Row = (String, String, Vec<String>);

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

fn instant(value: Option<chrono::DateTime<chrono::Utc>>, open: &str) -> String {
    value.map_or_else(
        || open.to_owned(),
        |at| at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    )
}

/// The plain (non-composite) rows of `kind` in an extraction result.
fn expected_rows(id: &str, index: &ResourceIndex, kind: ParamType) -> Vec<Row> {
    let row = |param: &str, values: Vec<String>| (id.to_owned(), param.to_owned(), values);
    match kind {
        ParamType::String => index
            .strings
            .iter()
            .filter(|r| r.composite.is_none())
            .map(|r| row(&r.param, vec![r.normalized.clone(), r.exact.clone()]))
            .collect(),
        ParamType::Token => index
            .tokens
            .iter()
            .filter(|r| r.composite.is_none())
            .map(|r| row(&r.param, vec![text(&r.system), text(&r.code)]))
            .collect(),
        ParamType::Date => index
            .dates
            .iter()
            .filter(|r| r.composite.is_none())
            .map(|r| {
                row(
                    &r.param,
                    vec![instant(r.low, "-infinity"), instant(r.high, "infinity")],
                )
            })
            .collect(),
        ParamType::Number => index
            .numbers
            .iter()
            .filter(|r| r.composite.is_none())
            .map(|r| row(&r.param, vec![r.value.clone()]))
            .collect(),
        ParamType::Quantity => index
            .quantities
            .iter()
            .filter(|r| r.composite.is_none())
            .map(|r| row(&r.param, vec![r.value.clone(), text(&r.code)]))
            .collect(),
        ParamType::Uri => index
            .uris
            .iter()
            .filter(|r| r.composite.is_none())
            .map(|r| row(&r.param, vec![r.uri.clone()]))
            .collect(),
        ParamType::Reference => index
            .links
            .iter()
            .filter(|r| r.composite.is_none())
            .map(|r| {
                row(
                    &r.param,
                    vec![
                        text(&r.target_type),
                        text(&r.target_id),
                        text(&r.target_url),
                    ],
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The same rows as stored, for one resource type and parameter.
async fn stored_rows(
    app: &TestApp,
    resource_type: &str,
    param: &str,
    kind: ParamType,
) -> BTreeSet<Row> {
    let utc = |column: &str| {
        format!(
            "CASE WHEN isfinite({column}) THEN to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') ELSE {column}::text END"
        )
    };
    let (table, values) = match kind {
        ParamType::String => ("hfj_spidx_string", "ARRAY[t.value_normalized, t.value_exact]".to_owned()),
        ParamType::Token => ("hfj_spidx_token", "ARRAY[coalesce(t.system, ''), coalesce(t.code, '')]".to_owned()),
        ParamType::Date => ("hfj_spidx_date", format!("ARRAY[{}, {}]", utc("t.low"), utc("t.high"))),
        ParamType::Number => ("hfj_spidx_number", "ARRAY[t.value::text]".to_owned()),
        ParamType::Quantity => ("hfj_spidx_quantity", "ARRAY[t.value::text, coalesce(t.code, '')]".to_owned()),
        ParamType::Uri => ("hfj_spidx_uri", "ARRAY[t.uri]".to_owned()),
        ParamType::Reference => ("hfj_res_link", "ARRAY[coalesce(t.target_type, ''), coalesce(t.target_id, ''), coalesce(t.target_url, '')]".to_owned()),
        _ => unreachable!("only indexed types are compared"),
    };
    let rows: Vec<(String, String, Vec<String>)> = sqlx::query_as(&format!(
        "SELECT r.res_id, t.sp_name, {values} FROM {table} t JOIN hfj_resource r USING (res_pk) \
         WHERE r.res_type = $1 AND t.sp_name = $2 AND t.comp IS NULL"
    ))
    .bind(resource_type)
    .bind(param)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter().collect()
}

const COMPARED: [ParamType; 7] = [
    ParamType::String,
    ParamType::Token,
    ParamType::Date,
    ParamType::Number,
    ParamType::Quantity,
    ParamType::Uri,
    ParamType::Reference,
];

#[tokio::test]
async fn the_synthea_patients_are_indexed_as_their_files_say() {
    let dir = test_support::synthea::data_dir();
    let levels = test_support::synthea::load_levels(&dir);
    let app = TestApp::spawn().await;
    for level in &levels {
        futures::stream::iter(level)
            .for_each_concurrent(16, |resource| app.put_ok(resource))
            .await;
    }
    app.caught_up().await;

    let files: Vec<&Value> = levels.iter().flatten().collect();
    let expected_counts = test_support::synthea::count_by_type(&dir);
    let stored_counts: BTreeMap<String, usize> = sqlx::query_as::<_, (String, i64)>(
        "SELECT res_type, count(*) FROM hfj_resource WHERE NOT deleted GROUP BY res_type",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(resource_type, count)| (resource_type, count as usize))
    .collect();
    assert_eq!(stored_counts, expected_counts);

    // For every resource type, the first parameter of each index type that has values in the
    // files: the stored rows equal an evaluation of the files.
    let registry = Registry::r4();
    let options = ExtractOptions {
        base_url: Some(BASE_URL.to_owned()),
    };
    let mut by_type: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for resource in &files {
        by_type
            .entry(resource["resourceType"].as_str().unwrap())
            .or_default()
            .push(resource);
    }
    let mut compared = Vec::new();
    let mut kinds = BTreeSet::new();
    for (resource_type, resources) in &by_type {
        let indexes: Vec<(String, ResourceIndex)> = resources
            .iter()
            .map(|resource| {
                let index = fhir_search::index_resource(registry, &options, resource);
                assert!(
                    index.problems.is_empty(),
                    "{resource_type}: {:?}",
                    index.problems
                );
                (resource["id"].as_str().unwrap().to_owned(), index)
            })
            .collect();
        for kind in COMPARED {
            let mut expected: BTreeMap<String, BTreeSet<Row>> = BTreeMap::new();
            for (id, index) in &indexes {
                for row in expected_rows(id, index, kind) {
                    expected.entry(row.1.clone()).or_default().insert(row);
                }
            }
            let Some((param, rows)) = expected.into_iter().next() else {
                continue;
            };
            assert_eq!(
                stored_rows(&app, resource_type, &param, kind).await,
                rows,
                "{resource_type}.{param} ({kind:?})"
            );
            compared.push(format!("{resource_type}.{param}"));
            kinds.insert(format!("{kind:?}"));
        }
    }
    eprintln!(
        "compared {} parameters: {}",
        compared.len(),
        compared.join(", ")
    );
    assert!(compared.len() >= by_type.len() * 2, "{compared:?}");
    for kind in ["String", "Token", "Date", "Quantity", "Reference"] {
        assert!(
            kinds.contains(kind),
            "no {kind} parameter compared: {compared:?}"
        );
    }

    // And a few computed without the extractor at all, straight from the JSON.
    let mut codes = BTreeSet::new();
    let mut quantities = BTreeSet::new();
    for observation in by_type["Observation"].iter() {
        let id = observation["id"].as_str().unwrap().to_owned();
        for coding in observation["code"]["coding"].as_array().unwrap() {
            let value = vec![
                coding["system"].as_str().unwrap().to_owned(),
                coding["code"].as_str().unwrap().to_owned(),
            ];
            codes.insert((id.clone(), "code".to_owned(), value));
        }
        if let Some(value) = observation.get("valueQuantity") {
            let number = value["value"].to_string();
            quantities.insert((
                id.clone(),
                "value-quantity".to_owned(),
                vec![number, value["code"].as_str().unwrap_or("").to_owned()],
            ));
        }
    }
    // (Rows without a code carry only CodeableConcept.text, for `:text`.)
    let stored_codes: BTreeSet<Row> = stored_rows(&app, "Observation", "code", ParamType::Token)
        .await
        .into_iter()
        .filter(|row| !row.2[1].is_empty())
        .collect();
    assert_eq!(stored_codes, codes);
    assert_eq!(
        stored_rows(&app, "Observation", "value-quantity", ParamType::Quantity).await,
        quantities
    );
    let families: BTreeSet<Row> = by_type["Patient"]
        .iter()
        .flat_map(|patient| {
            let id = patient["id"].as_str().unwrap().to_owned();
            patient["name"].as_array().unwrap().iter().map(move |name| {
                let family = name["family"].as_str().unwrap();
                (
                    id.clone(),
                    "family".to_owned(),
                    vec![family.to_lowercase(), family.to_owned()],
                )
            })
        })
        .collect();
    assert_eq!(
        stored_rows(&app, "Patient", "family", ParamType::String).await,
        families
    );
    app.cleanup().await;
}
