//! A request entry: what one write (or read) asks for, whichever way it came. A method, a
//! target (a type, an instance, a version, or search criteria), the resource or patch, and the
//! entry's own conditions (`ifNoneExist`, `ifMatch`, `ifNoneMatch`, or the headers of the same
//! names). The REST routes build one from an HTTP request; [`read`] builds one from each entry
//! of a batch or transaction Bundle. What an entry means is decided later, in one place
//! (`plan.rs`), so both kinds of request obey the same rules.
//!
//! Reading a Bundle entry refuses only what cannot be understood at all (no method, a URL that
//! names nothing), naming the entry, before anything is matched or written.

use base64::Engine;
use fhir_model::{ResourceId, ResourceType};
use serde_json::Value;
use service_kit::fhir_response::parse_version_tag;

use crate::error::WriteError;

/// What an entry asks the server to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    // In the order a transaction processes them.
    Delete,
    Post,
    Put,
    Patch,
    Get,
    Head,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Delete => "DELETE",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Get => "GET",
            Method::Head => "HEAD",
        }
    }

    /// A transaction processes deletes, then creates, then updates and patches, then reads.
    pub fn processing_rank(self) -> u8 {
        match self {
            Method::Delete => 0,
            Method::Post => 1,
            Method::Put | Method::Patch => 2,
            Method::Get | Method::Head => 3,
        }
    }
}

/// What `request.url` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Type(ResourceType),
    Instance(ResourceType, ResourceId),
    Version(ResourceType, ResourceId, u32),
    /// `Type?criteria`: a conditional write, or a search.
    Criteria(ResourceType, String),
}

impl Target {
    pub fn resource_type(&self) -> ResourceType {
        match self {
            Target::Type(t)
            | Target::Instance(t, _)
            | Target::Version(t, _, _)
            | Target::Criteria(t, _) => *t,
        }
    }
}

/// One entry, read.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its position in the Bundle, for messages and the response's order (0 for a REST request).
    pub index: usize,
    pub full_url: Option<String>,
    pub method: Method,
    pub target: Target,
    /// The resource (POST, PUT), or the JSON Patch document (PATCH).
    pub body: Option<Value>,
    pub if_none_exist: Option<String>,
    pub if_match: Option<u32>,
    pub if_none_match: bool,
}

impl Entry {
    /// A REST request's entry: `method` on `target`, with no body or conditions yet.
    pub fn request(method: Method, target: Target) -> Entry {
        Entry {
            index: 0,
            full_url: None,
            method,
            target,
            body: None,
            if_none_exist: None,
            if_match: None,
            if_none_match: false,
        }
    }

    /// `POST Patient`, for messages.
    pub fn describe(&self) -> String {
        let target = match &self.target {
            Target::Type(t) => t.to_string(),
            Target::Instance(t, id) => format!("{t}/{id}"),
            Target::Version(t, id, v) => format!("{t}/{id}/_history/{v}"),
            Target::Criteria(t, criteria) => format!("{t}?{criteria}"),
        };
        format!("{} {target}", self.method.as_str())
    }
}

/// Reads entry `index` of a Bundle.
pub fn read(index: usize, entry: &Value) -> Result<Entry, WriteError> {
    let rule = |message: String| WriteError::Rule(message);
    let request = entry
        .get("request")
        .and_then(Value::as_object)
        .ok_or_else(|| rule("the entry has no request (method and url)".to_owned()))?;
    let text = |name: &str| request.get(name).and_then(Value::as_str);
    let method = match text("method") {
        Some("DELETE") => Method::Delete,
        Some("POST") => Method::Post,
        Some("PUT") => Method::Put,
        Some("PATCH") => Method::Patch,
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        other => {
            return Err(rule(format!(
                "request.method must be GET, HEAD, POST, PUT, PATCH or DELETE, not {other:?}"
            )));
        }
    };
    let url = text("url").ok_or_else(|| rule("the entry's request has no url".to_owned()))?;
    let target = parse_url(url)?;
    let if_match = match text("ifMatch") {
        Some(tag) => Some(parse_version_tag(tag).ok_or_else(|| WriteError::BadHeader {
            name: "ifMatch",
            problem: format!("expected W/\"<version>\", got {tag:?}"),
        })?),
        None => None,
    };
    let full_url = entry
        .get("fullUrl")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let resource = entry.get("resource").cloned();
    let body = match method {
        Method::Post | Method::Put => Some(
            resource
                .ok_or_else(|| rule(format!("a {} entry needs a resource", method.as_str())))?,
        ),
        Method::Patch => Some(patch_document(resource)?),
        Method::Delete | Method::Get | Method::Head => None,
    };
    let entry = Entry {
        index,
        full_url,
        method,
        target,
        body,
        if_none_exist: text("ifNoneExist")
            .filter(|criteria| !criteria.trim().is_empty())
            .map(str::to_owned),
        if_match,
        if_none_match: text("ifNoneMatch").is_some(),
    };
    check_shape(&entry)?;
    Ok(entry)
}

/// Which targets each method accepts.
fn check_shape(entry: &Entry) -> Result<(), WriteError> {
    let fits = matches!(
        (entry.method, &entry.target),
        (Method::Post, Target::Type(_))
            | (
                Method::Put | Method::Patch | Method::Delete,
                Target::Instance(..) | Target::Criteria(..)
            )
            | (
                Method::Get | Method::Head,
                Target::Instance(..) | Target::Version(..)
            )
    );
    if fits {
        Ok(())
    } else if matches!(entry.method, Method::Get | Method::Head) {
        Err(WriteError::NotImplemented(
            "searches and history inside Bundles (only reads of Type/id and Type/id/_history/n)",
        ))
    } else {
        Err(WriteError::Rule(format!(
            "{} is not a request this server accepts in a Bundle",
            entry.describe()
        )))
    }
}

/// `request.url`: relative to the base (`Patient`, `Patient/1`, `Patient?identifier=x`), or an
/// absolute URL whose path runs through `/fhir/`.
fn parse_url(url: &str) -> Result<Target, WriteError> {
    let path_part = url.split('?').next().unwrap_or_default();
    let relative = if path_part.contains("://") {
        url.split_once("/fhir/")
            .map(|(_, rest)| rest)
            .ok_or_else(|| {
                WriteError::Rule(format!(
                    "request.url {url:?} is absolute but not under this server's /fhir base"
                ))
            })?
    } else {
        url.trim_start_matches('/')
    };
    let (path, query) = match relative.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (relative, None),
    };
    let parse_type = |name: &str| {
        ResourceType::parse(name).map_err(|_| WriteError::UnknownType(name.to_owned()))
    };
    let parse_id =
        |id: &str| ResourceId::parse(id).map_err(|error| WriteError::InvalidId(error.to_string()));
    let segments: Vec<&str> = path.split('/').collect();
    match (segments.as_slice(), query) {
        ([type_name], Some(query)) if !query.trim().is_empty() => {
            Ok(Target::Criteria(parse_type(type_name)?, query.to_owned()))
        }
        ([type_name], _) => Ok(Target::Type(parse_type(type_name)?)),
        ([type_name, id], None) => Ok(Target::Instance(parse_type(type_name)?, parse_id(id)?)),
        ([type_name, id, "_history", version], None) => {
            let version = version.parse::<u32>().map_err(|_| {
                WriteError::Rule(format!(
                    "{version:?} in request.url is not a version number"
                ))
            })?;
            Ok(Target::Version(
                parse_type(type_name)?,
                parse_id(id)?,
                version,
            ))
        }
        _ => Err(WriteError::Rule(format!(
            "request.url {url:?} is not Type, Type/id, Type/id/_history/n or Type?criteria"
        ))),
    }
}

/// A PATCH entry's JSON Patch: a `Binary` resource holding it (contentType
/// `application/json-patch+json`, base64 `data`), as FHIR carries patches in Bundles.
fn patch_document(resource: Option<Value>) -> Result<Value, WriteError> {
    let rule = |message: &str| WriteError::Rule(message.to_owned());
    let resource = resource
        .ok_or_else(|| rule("a PATCH entry needs a Binary resource holding a JSON Patch"))?;
    if resource.get("resourceType").and_then(Value::as_str) != Some("Binary")
        || resource.get("contentType").and_then(Value::as_str) != Some(crate::request::JSON_PATCH)
    {
        return Err(WriteError::NotImplemented(
            "PATCH entries other than a Binary with contentType application/json-patch+json (FHIRPath Patch)",
        ));
    }
    let data = resource
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| rule("the PATCH entry's Binary has no data"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|error| {
            WriteError::Rule(format!(
                "the PATCH entry's Binary data is not base64: {error}"
            ))
        })?;
    serde_json::from_slice(&bytes).map_err(|error| WriteError::MalformedJson(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_name_types_instances_versions_and_criteria() {
        let patient = ResourceType::parse("Patient").unwrap_or_else(|_| unreachable!());
        assert_eq!(parse_url("Patient").ok(), Some(Target::Type(patient)));
        assert!(
            matches!(parse_url("Patient/1"), Ok(Target::Instance(_, id)) if id.as_str() == "1")
        );
        assert!(matches!(
            parse_url("http://x/fhir/Patient/1/_history/2"),
            Ok(Target::Version(_, _, 2))
        ));
        assert!(matches!(
            parse_url("Patient?identifier=a|b"),
            Ok(Target::Criteria(_, criteria)) if criteria == "identifier=a|b"
        ));
        assert!(matches!(
            parse_url("Nonsense/1"),
            Err(WriteError::UnknownType(_))
        ));
        assert!(parse_url("Patient/1/extra").is_err());
        assert!(parse_url("http://elsewhere/Patient/1").is_err());
    }

    #[test]
    fn entries_are_read_with_their_conditions() {
        let entry = read(
            3,
            &json!({"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=a|b"}}),
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(entry.method, Method::Post);
        assert_eq!(entry.if_none_exist.as_deref(), Some("identifier=a|b"));
        assert_eq!(entry.describe(), "POST Patient");
        assert!(
            read(
                0,
                &json!({"request": {"method": "PUT", "url": "Patient/1"}})
            )
            .is_err()
        );
        assert!(
            read(
                0,
                &json!({"request": {"method": "POST", "url": "Patient/1"}, "resource": {}})
            )
            .is_err()
        );
        assert!(
            read(
                0,
                &json!({"request": {"method": "FETCH", "url": "Patient"}})
            )
            .is_err()
        );
        assert!(read(0, &json!({"resource": {}})).is_err());
    }

    #[test]
    fn a_patch_travels_as_a_base64_binary() {
        let patch = json!([{"op": "replace", "path": "/active", "value": false}]);
        let data = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
        let binary = json!({"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data});
        assert_eq!(patch_document(Some(binary)).ok(), Some(patch));
        assert!(patch_document(Some(json!({"resourceType": "Parameters"}))).is_err());
    }
}
