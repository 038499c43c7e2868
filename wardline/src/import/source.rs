//! What `import` reads: the files under the paths it is given, each turned into units of work
//! (transaction Bundles) that can be sent again without duplicating anything.
//!
//! - **A Bundle file** (Synthea writes one transaction Bundle per patient, plus hospital and
//!   practitioner Bundles) becomes one transaction. Each `POST` entry whose `fullUrl` is a
//!   `urn:uuid:` becomes a `PUT` of that UUID as the id (a UUID is a valid FHIR id): the
//!   references to it still resolve through the `fullUrl`, and sending the Bundle again updates
//!   each resource with identical content, which records nothing. `POST` entries with
//!   `ifNoneExist` stay conditional creates, which are idempotent already.
//! - **An NDJSON file** (Bulk Data export: one resource per line, with its id) becomes
//!   transactions of `PUT <Type>/<id>`, [`NDJSON_CHUNK`] lines each.
//!
//! Files are ordered so that what others reference comes first: Synthea's hospital and
//! practitioner Bundles before patients, and NDJSON of organisations, locations and
//! practitioners before patients before everything else.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Resources per transaction for NDJSON input.
pub const NDJSON_CHUNK: usize = 250;

/// One transaction to send, and where it came from.
#[derive(Debug, Clone)]
pub struct Unit {
    pub file: PathBuf,
    /// For NDJSON: the first line of the chunk (1-based); for a Bundle: 0.
    pub line: usize,
    /// For NDJSON: the line of each entry; for a Bundle: empty.
    pub lines: Vec<usize>,
    pub bundle: Value,
    pub resources: usize,
}

/// A file that could not be read, and why.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub file: PathBuf,
    pub reason: String,
}

/// Every importable file under `paths` (files as given, folders searched recursively for
/// `.json` and `.ndjson`), in import order.
pub fn files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in paths {
        collect(path, &mut found)?;
    }
    found.sort_by_key(|path| (rank(path), path.clone()));
    found.dedup();
    Ok(found)
}

fn collect(path: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            let entry = entry?.path();
            if entry.is_dir() {
                collect(&entry, found)?;
            } else if is_importable(&entry) {
                found.push(entry);
            }
        }
        Ok(())
    } else if path.exists() {
        found.push(path.to_path_buf());
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} does not exist", path.display()),
        ))
    }
}

fn is_importable(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == "json" || ext == "ndjson")
}

/// Earlier ranks are imported first: what other files reference.
pub fn rank(path: &Path) -> u8 {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    const FIRST: [&str; 5] = [
        "facility",
        "hospitalinformation",
        "organization",
        "location",
        "practitioner",
    ];
    if FIRST.iter().any(|prefix| name.starts_with(prefix)) {
        0
    } else if name.starts_with("patient") && name.ends_with(".ndjson") {
        1
    } else if name.starts_with("encounter") && name.ends_with(".ndjson") {
        2
    } else {
        3
    }
}

/// Reads `file` into its units of work.
pub fn read(file: &Path) -> Result<Vec<Unit>, Unreadable> {
    let unreadable = |reason: String| Unreadable {
        file: file.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(file).map_err(|error| unreadable(error.to_string()))?;
    if file.extension().is_some_and(|ext| ext == "ndjson") {
        return ndjson(file, &text).map_err(unreadable);
    }
    let value: Value =
        serde_json::from_str(&text).map_err(|error| unreadable(format!("not JSON: {error}")))?;
    match value.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") => {
            let bundle = idempotent(value).map_err(unreadable)?;
            let resources = bundle["entry"].as_array().map_or(0, Vec::len);
            Ok(vec![Unit {
                file: file.to_path_buf(),
                line: 0,
                lines: Vec::new(),
                bundle,
                resources,
            }])
        }
        Some(_) => Ok(vec![Unit {
            file: file.to_path_buf(),
            line: 0,
            lines: Vec::new(),
            bundle: transaction(vec![put_entry(&value).map_err(unreadable)?]),
            resources: 1,
        }]),
        None => Err(unreadable(
            "not a FHIR resource (no resourceType)".to_owned(),
        )),
    }
}

/// A Bundle's entries as a transaction that can be sent again (see the module docs).
fn idempotent(mut bundle: Value) -> Result<Value, String> {
    let kind = bundle
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let entries = bundle
        .get_mut("entry")
        .and_then(Value::as_array_mut)
        .ok_or("the Bundle has no entries")?;
    for entry in entries.iter_mut() {
        let resource_type = entry["resource"]["resourceType"]
            .as_str()
            .map(str::to_owned);
        let full_url = entry["fullUrl"].as_str().map(str::to_owned);
        let method = entry["request"]["method"].as_str().map(str::to_owned);
        let conditional = entry["request"].get("ifNoneExist").is_some();
        let uuid = full_url
            .as_deref()
            .and_then(|url| url.strip_prefix("urn:uuid:"))
            .filter(|id| fhir_model::ResourceId::parse(id).is_ok());
        match (method.as_deref(), resource_type, uuid) {
            (Some("POST"), Some(resource_type), Some(id)) if !conditional => {
                entry["resource"]["id"] = json!(id);
                entry["request"] = json!({"method": "PUT", "url": format!("{resource_type}/{id}")});
            }
            // A collection (or a Bundle without requests): every resource is put by its id.
            (None, Some(_), _) if kind != "transaction" && kind != "batch" => {
                let put = put_entry(&entry["resource"])?;
                entry["request"] = put["request"].clone();
            }
            _ => {}
        }
    }
    bundle["type"] = json!("transaction");
    Ok(bundle)
}

fn ndjson(file: &Path, text: &str) -> Result<Vec<Unit>, String> {
    let mut units = Vec::new();
    let mut entries = Vec::new();
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let resource: Value = serde_json::from_str(line)
            .map_err(|error| format!("line {}: not JSON: {error}", n + 1))?;
        entries.push(put_entry(&resource).map_err(|error| format!("line {}: {error}", n + 1))?);
        lines.push(n + 1);
        if entries.len() == NDJSON_CHUNK {
            units.push(chunk(
                file,
                std::mem::take(&mut lines),
                std::mem::take(&mut entries),
            ));
        }
    }
    if !entries.is_empty() {
        units.push(chunk(file, lines, entries));
    }
    Ok(units)
}

fn chunk(file: &Path, lines: Vec<usize>, entries: Vec<Value>) -> Unit {
    Unit {
        file: file.to_path_buf(),
        line: lines.first().copied().unwrap_or(0),
        lines,
        resources: entries.len(),
        bundle: transaction(entries),
    }
}

fn transaction(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// `PUT <Type>/<id>` of a resource that has its id.
fn put_entry(resource: &Value) -> Result<Value, String> {
    let resource_type = resource["resourceType"]
        .as_str()
        .ok_or("a resource without resourceType")?;
    let id = resource["id"]
        .as_str()
        .ok_or_else(|| format!("a {resource_type} without an id cannot be imported repeatably"))?;
    Ok(json!({
        "resource": resource,
        "request": {"method": "PUT", "url": format!("{resource_type}/{id}")},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_of_uuids_become_puts_and_conditional_creates_stay() {
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:0b7f2f7e-0000-4000-8000-000000000001",
             "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": "urn:uuid:0b7f2f7e-0000-4000-8000-000000000002",
             "resource": {"resourceType": "Organization"},
             "request": {"method": "POST", "url": "Organization", "ifNoneExist": "identifier=x|1"}},
        ]});
        let out = idempotent(bundle).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(out["entry"][0]["request"]["method"], "PUT");
        assert_eq!(
            out["entry"][0]["request"]["url"],
            "Patient/0b7f2f7e-0000-4000-8000-000000000001"
        );
        assert_eq!(
            out["entry"][0]["resource"]["id"],
            "0b7f2f7e-0000-4000-8000-000000000001"
        );
        assert_eq!(out["entry"][1]["request"]["method"], "POST");
    }

    #[test]
    fn ndjson_is_chunked_into_puts() {
        let lines: Vec<String> = (0..(NDJSON_CHUNK + 3))
            .map(|n| json!({"resourceType": "Patient", "id": format!("p{n}")}).to_string())
            .collect();
        let units = ndjson(Path::new("Patient.ndjson"), &lines.join("\n"))
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(units.len(), 2);
        assert_eq!(units[1].resources, 3);
        assert_eq!(units[1].line, NDJSON_CHUNK + 1);
        assert_eq!(units[0].bundle["entry"][0]["request"]["url"], "Patient/p0");
        assert!(ndjson(Path::new("x.ndjson"), "{\"resourceType\": \"Patient\"}").is_err());
    }

    #[test]
    fn referenced_files_come_first() {
        let mut paths = [
            PathBuf::from("Observation.ndjson"),
            PathBuf::from("Patient.ndjson"),
            PathBuf::from("Alice_1.json"),
            PathBuf::from("hospitalInformation1.json"),
        ];
        paths.sort_by_key(|path| (rank(path), path.clone()));
        assert_eq!(paths[0], PathBuf::from("hospitalInformation1.json"));
        assert_eq!(paths[1], PathBuf::from("Patient.ndjson"));
    }
}
