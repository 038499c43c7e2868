//! The shared Synthea sample patients (transaction Bundles), as resources ready to `PUT`.
//!
//! Until the server accepts transaction Bundles, tests and benchmarks load the bundles one
//! resource at a time. Each entry's `urn:uuid:` fullUrl becomes its id (a UUID is a valid FHIR
//! id), and every `urn:uuid:` reference is rewritten to `<Type>/<uuid>`, which is what a
//! transaction would do with server-assigned ids. Resources come in dependency levels: every
//! reference of a level-n resource points at a lower level, so each level can be written
//! concurrently once the previous one has been.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The folder of sample bundles: `FHIR_TEST_DATA_DIR`, else the sample the repository carries
/// (`testdata/synthea-r4.tar.xz`, which `./deploy/dev test` and `./deploy/dev env` unpack into
/// `target/testdata`). Panics when it is missing: a test without its data must fail, never pass
/// by skipping.
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("FHIR_TEST_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/testdata/synthea-r4")
        });
    assert!(
        dir.is_dir(),
        "the Synthea sample is missing at {}: `./deploy/dev test` unpacks testdata/synthea-r4.tar.xz there, or set FHIR_TEST_DATA_DIR to a folder of the bundles",
        dir.display()
    );
    dir
}

/// The bundle files in `dir`, sorted by name.
pub fn bundle_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

/// Every resource of every bundle in `dir`, ids assigned and references rewritten, grouped in
/// dependency levels. A resource in several bundles (shared practitioners and organisations)
/// appears once.
pub fn load_levels(dir: &Path) -> Vec<Vec<Value>> {
    let mut resources: Vec<Value> = Vec::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for file in bundle_files(dir) {
        let bundle: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        for entry in bundle["entry"].as_array().unwrap() {
            let full_url = entry["fullUrl"].as_str().unwrap();
            let resource = entry["resource"].clone();
            let resource_type = resource["resourceType"].as_str().unwrap().to_owned();
            types.insert(full_url.to_owned(), resource_type);
            if seen.insert(full_url.to_owned()) {
                resources.push(entry.clone());
            }
        }
    }
    let mut prepared = Vec::with_capacity(resources.len());
    let mut dependencies: HashMap<String, Vec<String>> = HashMap::new();
    for entry in resources {
        let full_url = entry["fullUrl"].as_str().unwrap().to_owned();
        let mut resource = entry["resource"].clone();
        resource["id"] = Value::String(full_url.trim_start_matches("urn:uuid:").to_owned());
        let mut targets = Vec::new();
        rewrite(&mut resource, &types, &mut targets);
        targets.retain(|target| target != &full_url);
        dependencies.insert(full_url.clone(), targets);
        prepared.push((full_url, resource));
    }
    let mut level_of: HashMap<String, usize> = HashMap::new();
    for (full_url, _) in &prepared {
        level(full_url, &dependencies, &mut level_of, 0);
    }
    let depth = level_of.values().copied().max().unwrap_or(0);
    let mut levels = vec![Vec::new(); depth + 1];
    for (full_url, resource) in prepared {
        levels[level_of[&full_url]].push(resource);
    }
    levels
}

/// The `copy`-th copy of `levels` (as [`load_levels`] gives them) under distinct ids: every id
/// and every reference to a loaded resource gains the prefix `c<copy>-`, so ten copies are ten
/// times the data with the same shape (benchmarks of larger sets).
pub fn copy_levels(levels: &[Vec<Value>], copy: usize) -> Vec<Vec<Value>> {
    let prefix = format!("c{copy}-");
    let ids: std::collections::HashSet<String> = levels
        .iter()
        .flatten()
        .filter_map(|resource| {
            Some(format!(
                "{}/{}",
                resource["resourceType"].as_str()?,
                resource["id"].as_str()?
            ))
        })
        .collect();
    levels
        .iter()
        .map(|level| {
            level
                .iter()
                .map(|resource| {
                    let mut copied = resource.clone();
                    if let Some(id) = resource["id"].as_str() {
                        copied["id"] = Value::String(format!("{prefix}{id}"));
                    }
                    prefix_references(&mut copied, &ids, &prefix);
                    copied
                })
                .collect()
        })
        .collect()
}

fn prefix_references(value: &mut Value, ids: &std::collections::HashSet<String>, prefix: &str) {
    match value {
        Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                if name == "reference"
                    && let Value::String(text) = member
                    && ids.contains(text.as_str())
                    && let Some((resource_type, id)) = text.split_once('/')
                {
                    *text = format!("{resource_type}/{prefix}{id}");
                } else {
                    prefix_references(member, ids, prefix);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                prefix_references(item, ids, prefix);
            }
        }
        _ => {}
    }
}

/// How many resources the bundles in `dir` hold per type, counting shared ones once.
pub fn count_by_type(dir: &Path) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for resource in load_levels(dir).into_iter().flatten() {
        *counts
            .entry(resource["resourceType"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    counts
}

fn level(
    full_url: &str,
    dependencies: &HashMap<String, Vec<String>>,
    level_of: &mut HashMap<String, usize>,
    depth: usize,
) -> usize {
    if let Some(&known) = level_of.get(full_url) {
        return known;
    }
    assert!(depth < 64, "reference cycle through {full_url}");
    let mine = dependencies
        .get(full_url)
        .map(|targets| {
            targets
                .iter()
                .map(|target| level(target, dependencies, level_of, depth + 1) + 1)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    level_of.insert(full_url.to_owned(), mine);
    mine
}

/// Rewrites every `urn:uuid:` reference in `value` and collects the full URLs referenced.
fn rewrite(value: &mut Value, types: &HashMap<String, String>, targets: &mut Vec<String>) {
    match value {
        Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                if name == "reference"
                    && let Value::String(text) = member
                    && let Some(resource_type) = types.get(text.as_str())
                {
                    targets.push(text.clone());
                    *text = format!("{resource_type}/{}", text.trim_start_matches("urn:uuid:"));
                } else {
                    rewrite(member, types, targets);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                rewrite(item, types, targets);
            }
        }
        _ => {}
    }
}
