//! Every resource of the Synthea sample bundles indexes without a problem, and the rows agree
//! with values read straight from the JSON.
//!
//! The bundles are the sample the repository carries (`test_support::synthea::data_dir`);
//! without them the test fails.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::index;

fn bundles(dir: &Path) -> Vec<(String, Value)> {
    test_support::synthea::bundle_files(dir)
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).unwrap())
        })
        .collect()
}

#[test]
fn synthea_bundles_index_without_problems() {
    let dir = test_support::synthea::data_dir();
    let bundles = bundles(&dir);
    assert!(!bundles.is_empty(), "no bundles in {}", dir.display());
    let started = Instant::now();
    let registry = fhir_search::Registry::r4();
    println!(
        "registry: {} definitions parsed and compiled in {:.3} s (or earlier, by another test)",
        registry.all().len(),
        started.elapsed().as_secs_f64()
    );

    let mut resources = 0usize;
    let mut elapsed = Duration::ZERO;
    let mut problems: Vec<String> = Vec::new();
    let mut rows: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    let mut checked_quantities = 0usize;
    let mut checked_subjects = 0usize;

    for (file, bundle) in &bundles {
        for entry in bundle["entry"].as_array().unwrap() {
            let resource = &entry["resource"];
            let started = Instant::now();
            let index = index(resource);
            elapsed += started.elapsed();
            resources += 1;
            let resource_type = resource["resourceType"].as_str().unwrap();
            *by_type.entry(resource_type.to_owned()).or_default() += 1;
            for problem in &index.problems {
                problems.push(format!(
                    "{file} {resource_type}/{}: {problem}",
                    resource["id"]
                ));
            }
            for (table, count) in [
                ("string", index.strings.len()),
                ("token", index.tokens.len()),
                ("date", index.dates.len()),
                ("number", index.numbers.len()),
                ("quantity", index.quantities.len()),
                ("uri", index.uris.len()),
                ("link", index.links.len()),
                ("coords", index.coords.len()),
                ("tag", index.tags.len()),
            ] {
                *rows.entry(table).or_default() += count;
            }

            // Cross-checks against the JSON itself.
            if resource_type == "Observation"
                && let Some(value) = resource["valueQuantity"]["value"].as_number()
            {
                let found = index
                    .quantities
                    .iter()
                    .any(|q| q.param == "value-quantity" && q.value == value.to_string());
                assert!(found, "{file}: value-quantity {value} not indexed");
                checked_quantities += 1;
            }
            if let Some(subject) = resource["subject"]["reference"].as_str()
                && fhir_search::Registry::r4()
                    .get(resource_type, "subject")
                    .is_some()
            {
                let found = index
                    .links
                    .iter()
                    .any(|l| l.param == "subject" && l.target_url.as_deref() == Some(subject));
                assert!(
                    found,
                    "{file}: {resource_type}.subject {subject} not linked"
                );
                checked_subjects += 1;
            }
            if resource_type == "Patient" {
                let family = resource["name"][0]["family"].as_str().unwrap();
                assert!(
                    index
                        .strings
                        .iter()
                        .any(|s| s.param == "family" && s.exact == family),
                    "{file}: family {family} not indexed"
                );
            }
        }
    }

    println!(
        "{} bundles, {resources} resources: {by_type:?}",
        bundles.len()
    );
    println!("rows per table: {rows:?}");
    println!(
        "checked {checked_quantities} value-quantity and {checked_subjects} subject rows against the JSON"
    );
    println!(
        "indexing took {:.3} s: {:.0} resources/s ({} build)",
        elapsed.as_secs_f64(),
        resources as f64 / elapsed.as_secs_f64(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    assert!(
        problems.is_empty(),
        "{} problems, the first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(30)]
    );
    assert!(checked_quantities > 0 && checked_subjects > 0);
}
