//! Reference parameters: Reference elements, canonicals and uris, as `hfj_res_link` rows.
//!
//! How the reference text is read (search.html "reference", and HAPI where the page is silent):
//! - `Type/id` and `Type/id/_history/v`: [`LinkKind::Local`], with the version.
//! - An absolute URL under this server's base URL: the same, as a local reference.
//! - Any other absolute URL: [`LinkKind::External`] with the URL, and type and id when the URL
//!   ends in `<Type>/<id>` (or `<Type>/<id>/_history/<v>`) of a known resource type.
//! - `#id`: [`LinkKind::Contained`], typed by the contained resource with that id.
//! - `urn:uuid:` and `urn:oid:`: External with the URL; when the resource indexed is a Bundle,
//!   the entry with that `fullUrl` gives type and id.
//! - Only `identifier`: [`LinkKind::Logical`]. An identifier beside a reference is recorded on the
//!   same row (for `:identifier`). `Reference.type` types a link whose text does not.
//! - canonical (and uri) values: an absolute URL is External with the version after `|` split
//!   off; a relative `Type/id` is Local (HAPI reads a canonical `Questionnaire/123` so too).
//! - A resource (`Bundle.entry[0].resource` for `composition`, `message`): its entry's `fullUrl`
//!   read as above, else `Type/id` from the resource; HAPI skips these.
//!
//! When the parameter restricts its targets (`Observation.subject` for `patient` targets
//! Patient), a link whose type is known and not among them is not recorded, as HAPI does; links
//! of unknown type are. Text that is none of the above (`Patient?identifier=x`, which only a
//! transaction may carry) is reported as a problem.

use fhir_model::ResourceType;
use serde_json::{Map, Value};

use super::node::Node;
use super::token::text_of;
use super::{Context, Target};
use crate::ResourceIndex;
use crate::index::{LinkKind, LinkRow};

pub(super) fn extract(
    ctx: &Context<'_>,
    out: &mut ResourceIndex,
    target: &Target<'_>,
    node: Node<'_>,
) {
    if let Some(object) = node.object()
        && object.contains_key("resourceType")
    {
        resource(ctx, out, target, object);
        return;
    }
    match node.ty() {
        "Reference" => {
            if let Some(reference) = node.object() {
                self::reference(ctx, out, target, reference);
            }
        }
        ty @ ("canonical" | "uri" | "url" | "uuid" | "oid") => {
            if let Some(text) = node.as_str().filter(|t| !t.trim().is_empty()) {
                canonical(ctx, out, target, text, ty == "canonical");
            }
        }
        _ => {}
    }
}

/// What a reference text points at.
#[derive(Debug, Default, PartialEq, Eq)]
struct Link {
    kind: Option<LinkKind>,
    target_type: Option<String>,
    target_id: Option<String>,
    target_version: Option<String>,
    target_url: Option<String>,
}

fn reference(
    ctx: &Context<'_>,
    out: &mut ResourceIndex,
    target: &Target<'_>,
    reference: &Map<String, Value>,
) {
    let identifier = reference.get("identifier").and_then(Value::as_object);
    let identifier_system = identifier.and_then(|i| text_of(i, "system"));
    let identifier_value = identifier.and_then(|i| text_of(i, "value"));
    let has_identifier = identifier_system.is_some() || identifier_value.is_some();

    let mut link = match text_of(reference, "reference") {
        Some(text) => match read_reference(ctx, text) {
            Some(link) => link,
            None => {
                target.problem(out, format!("cannot read the reference `{}`", short(text)));
                if !has_identifier {
                    return;
                }
                Link::default()
            }
        },
        None if has_identifier => Link::default(),
        None => return,
    };
    if link.kind.is_none() {
        link.kind = Some(LinkKind::Logical);
    }
    if link.target_type.is_none() {
        link.target_type = text_of(reference, "type").map(str::to_owned);
    }
    push(
        out,
        target,
        link,
        identifier_system.map(str::to_owned),
        identifier_value.map(str::to_owned),
    );
}

fn canonical(
    ctx: &Context<'_>,
    out: &mut ResourceIndex,
    target: &Target<'_>,
    text: &str,
    is_canonical: bool,
) {
    let (url, version) = match text.split_once('|') {
        Some((url, version)) if is_canonical => (url, Some(version)),
        _ => (text, None),
    };
    let mut link = match read_reference(ctx, url) {
        Some(link) if link.kind != Some(LinkKind::Contained) => link,
        _ => Link {
            kind: Some(LinkKind::External),
            target_url: Some(url.to_owned()),
            ..Link::default()
        },
    };
    if let Some(version) = version.filter(|v| !v.is_empty()) {
        link.target_version = Some(version.to_owned());
    }
    push(out, target, link, None, None);
}

fn resource(
    ctx: &Context<'_>,
    out: &mut ResourceIndex,
    target: &Target<'_>,
    resource: &Map<String, Value>,
) {
    let resource_type = text_of(resource, "resourceType");
    let id = text_of(resource, "id");
    let full_url = bundle_entry_of(ctx.root, resource).and_then(|entry| text_of(entry, "fullUrl"));
    let mut link = match full_url.and_then(|url| read_reference(ctx, url)) {
        Some(link) => link,
        None => match (resource_type, id) {
            (Some(resource_type), Some(id)) => Link {
                kind: Some(LinkKind::Local),
                target_type: Some(resource_type.to_owned()),
                target_id: Some(id.to_owned()),
                ..Link::default()
            },
            _ => return,
        },
    };
    if link.target_type.is_none() {
        link.target_type = resource_type.map(str::to_owned);
    }
    if link.target_id.is_none() {
        link.target_id = id.map(str::to_owned);
    }
    push(out, target, link, None, None);
}

/// The Bundle entry (of the root, when it is a Bundle) whose resource is `resource` itself.
fn bundle_entry_of<'a>(
    root: &'a Value,
    resource: &Map<String, Value>,
) -> Option<&'a Map<String, Value>> {
    if root.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return None;
    }
    root.get("entry")?
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .find(|entry| {
            entry
                .get("resource")
                .and_then(Value::as_object)
                .is_some_and(|r| std::ptr::eq(r, resource))
        })
}

/// Reads a reference text; `None` when it is not a reference this understands.
fn read_reference(ctx: &Context<'_>, text: &str) -> Option<Link> {
    if let Some(local_id) = text.strip_prefix('#') {
        return Some(contained(ctx, local_id));
    }
    if text.starts_with("urn:uuid:") || text.starts_with("urn:oid:") {
        let mut link = Link {
            kind: Some(LinkKind::External),
            target_url: Some(text.to_owned()),
            ..Link::default()
        };
        if let Some(entry_resource) = bundle_resource_by_full_url(ctx.root, text) {
            link.target_type = text_of(entry_resource, "resourceType").map(str::to_owned);
            link.target_id = text_of(entry_resource, "id").map(str::to_owned);
        }
        return Some(link);
    }
    if let Some((scheme, _)) = text.split_once(':')
        && is_scheme(scheme)
    {
        if let Some(base) = ctx.base_url
            && let Some(relative) = text.strip_prefix(base).and_then(|r| r.strip_prefix('/'))
            && let Some(link) = relative_reference(relative)
        {
            return Some(link);
        }
        let mut link = Link {
            kind: Some(LinkKind::External),
            target_url: Some(text.to_owned()),
            ..Link::default()
        };
        if let Some(tail) = typed_tail(text) {
            link.target_type = tail.target_type;
            link.target_id = tail.target_id;
            link.target_version = tail.target_version;
        }
        return Some(link);
    }
    relative_reference(text)
}

/// A URI scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn contained(ctx: &Context<'_>, local_id: &str) -> Link {
    let target_type = if local_id.is_empty() {
        // `#` alone is the containing resource itself.
        Some(ctx.resource_type.to_owned())
    } else {
        ctx.root
            .get("contained")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c.get("id").and_then(Value::as_str) == Some(local_id))
            .and_then(|c| c.get("resourceType"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Link {
        kind: Some(LinkKind::Contained),
        target_type,
        target_id: (!local_id.is_empty()).then(|| local_id.to_owned()),
        ..Link::default()
    }
}

fn bundle_resource_by_full_url<'a>(
    root: &'a Value,
    full_url: &str,
) -> Option<&'a Map<String, Value>> {
    if root.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return None;
    }
    root.get("entry")?
        .as_array()?
        .iter()
        .find(|entry| entry.get("fullUrl").and_then(Value::as_str) == Some(full_url))?
        .get("resource")?
        .as_object()
}

/// `Type/id` or `Type/id/_history/v`, with a known type and a valid id.
fn relative_reference(text: &str) -> Option<Link> {
    let mut parts = text.split('/');
    let (resource_type, id) = (parts.next()?, parts.next()?);
    let version = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => None,
        (Some("_history"), Some(version), None) if is_id(version) => Some(version),
        _ => return None,
    };
    if ResourceType::parse(resource_type).is_err() || !is_id(id) {
        return None;
    }
    Some(Link {
        kind: Some(LinkKind::Local),
        target_type: Some(resource_type.to_owned()),
        target_id: Some(id.to_owned()),
        target_version: version.map(str::to_owned),
        target_url: None,
    })
}

/// The `<Type>/<id>[/_history/<v>]` an absolute URL ends with, if any.
fn typed_tail(url: &str) -> Option<Link> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let segments: Vec<&str> = path.split('/').collect();
    let from_end = |n: usize| {
        segments
            .len()
            .checked_sub(n)
            .and_then(|at| segments.get(at))
    };
    let typed = |resource_type: &str, id: &str, version: Option<&str>| {
        (ResourceType::parse(resource_type).is_ok() && is_id(id) && version.is_none_or(is_id)).then(
            || Link {
                target_type: Some(resource_type.to_owned()),
                target_id: Some(id.to_owned()),
                target_version: version.map(str::to_owned),
                ..Link::default()
            },
        )
    };
    if let (Some(resource_type), Some(id), Some(&"_history"), Some(version)) =
        (from_end(4), from_end(3), from_end(2), from_end(1))
    {
        return typed(resource_type, id, Some(version));
    }
    typed(from_end(2)?, from_end(1)?, None)
}

/// A FHIR id: 1 to 64 of `A-Z a-z 0-9 - .`.
fn is_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn short(text: &str) -> &str {
    text.char_indices()
        .nth(64)
        .map_or(text, |(cut, _)| &text[..cut])
}

fn push(
    out: &mut ResourceIndex,
    target: &Target<'_>,
    link: Link,
    identifier_system: Option<String>,
    identifier_value: Option<String>,
) {
    if let Some(target_type) = &link.target_type
        && !target.allows_target(target_type)
    {
        return;
    }
    out.links.push(LinkRow {
        param: target.code.to_owned(),
        composite: target.composite,
        source_path: target.source_path.to_owned(),
        kind: link.kind.unwrap_or(LinkKind::Logical),
        target_type: link.target_type,
        target_id: link.target_id,
        target_version: link.target_version,
        target_url: link.target_url,
        identifier_system,
        identifier_value,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::testing::{node, rows};
    use serde_json::json;

    fn ctx<'a>(root: &'a Value, base_url: Option<&'a str>) -> Context<'a> {
        Context {
            root,
            resource_type: root["resourceType"].as_str().unwrap(),
            base_url,
        }
    }

    fn link(
        kind: LinkKind,
        ty: Option<&str>,
        id: Option<&str>,
        version: Option<&str>,
        url: Option<&str>,
    ) -> Link {
        Link {
            kind: Some(kind),
            target_type: ty.map(str::to_owned),
            target_id: id.map(str::to_owned),
            target_version: version.map(str::to_owned),
            target_url: url.map(str::to_owned),
        }
    }

    #[test]
    fn reads_reference_texts() {
        let root = json!({
            "resourceType": "Observation",
            "contained": [{"resourceType": "Practitioner", "id": "p1"}]
        });
        let ctx = ctx(&root, Some("http://localhost:8080/fhir"));
        use LinkKind::*;
        let cases = [
            (
                "Patient/123",
                Some(link(Local, Some("Patient"), Some("123"), None, None)),
            ),
            (
                "Patient/123/_history/4",
                Some(link(Local, Some("Patient"), Some("123"), Some("4"), None)),
            ),
            (
                "http://localhost:8080/fhir/Patient/9",
                Some(link(Local, Some("Patient"), Some("9"), None, None)),
            ),
            (
                "http://other.org/fhir/Patient/9/_history/2",
                Some(link(
                    External,
                    Some("Patient"),
                    Some("9"),
                    Some("2"),
                    Some("http://other.org/fhir/Patient/9/_history/2"),
                )),
            ),
            (
                "https://example.org/docs/report.pdf",
                Some(link(
                    External,
                    None,
                    None,
                    None,
                    Some("https://example.org/docs/report.pdf"),
                )),
            ),
            (
                "#p1",
                Some(link(
                    Contained,
                    Some("Practitioner"),
                    Some("p1"),
                    None,
                    None,
                )),
            ),
            (
                "#missing",
                Some(link(Contained, None, Some("missing"), None, None)),
            ),
            (
                "#",
                Some(link(Contained, Some("Observation"), None, None, None)),
            ),
            (
                "urn:uuid:6f1c4b2e-0000-4000-8000-000000000001",
                Some(link(
                    External,
                    None,
                    None,
                    None,
                    Some("urn:uuid:6f1c4b2e-0000-4000-8000-000000000001"),
                )),
            ),
            ("Patient?identifier=x", None),
            ("Patient", None),
            ("NotAType/1", None),
            ("Patient/1/extra", None),
            ("Patient/has space", None),
        ];
        for (text, expected) in cases {
            assert_eq!(read_reference(&ctx, text), expected, "{text}");
        }
    }

    #[test]
    fn base_url_only_matches_on_a_path_boundary() {
        let root = json!({"resourceType": "Observation"});
        let ctx = ctx(&root, Some("http://localhost:8080/fhir"));
        let link = read_reference(&ctx, "http://localhost:8080/fhirx/Patient/1").unwrap();
        assert_eq!(link.kind, Some(LinkKind::External));
    }

    type Summary<'a> = (LinkKind, Option<&'a str>, Option<&'a str>, Option<&'a str>);

    fn links(index: &ResourceIndex) -> Vec<Summary<'_>> {
        index
            .links
            .iter()
            .map(|l| {
                (
                    l.kind,
                    l.target_type.as_deref(),
                    l.target_id.as_deref(),
                    l.target_url.as_deref(),
                )
            })
            .collect()
    }

    #[test]
    fn reference_rows_record_path_identifier_and_type() {
        let root = json!({"resourceType": "Observation"});
        let relative = json!({"reference": "Patient/p1", "display": "Ann"});
        let with_identifier = json!({
            "reference": "http://localhost:8080/fhir/Patient/p2",
            "identifier": {"system": "urn:mrn", "value": "42"}
        });
        let logical =
            json!({"identifier": {"system": "urn:mrn", "value": "43"}, "type": "Patient"});
        let display_only = json!({"display": "someone"});
        let index = rows(
            &root,
            "subject",
            &[
                node(&relative, "Reference"),
                node(&with_identifier, "Reference"),
                node(&logical, "Reference"),
                node(&display_only, "Reference"),
            ],
        );
        assert_eq!(
            links(&index),
            vec![
                (LinkKind::Local, Some("Patient"), Some("p1"), None),
                (LinkKind::Local, Some("Patient"), Some("p2"), None),
                (LinkKind::Logical, Some("Patient"), None, None),
            ]
        );
        assert!(
            index
                .links
                .iter()
                .all(|l| l.source_path == "Observation.subject")
        );
        assert_eq!(index.links[1].identifier_value.as_deref(), Some("42"));
        assert_eq!(index.links[2].identifier_system.as_deref(), Some("urn:mrn"));
        assert!(index.problems.is_empty());
    }

    #[test]
    fn targets_outside_the_definition_are_not_links_of_it() {
        let root = json!({"resourceType": "Observation"});
        let device = json!({"reference": "Device/d1"});
        let patient = json!({"reference": "Patient/p1"});
        let unknown = json!({"reference": "https://elsewhere.org/thing/1"});
        let index = rows(
            &root,
            "patient",
            &[
                node(&device, "Reference"),
                node(&patient, "Reference"),
                node(&unknown, "Reference"),
            ],
        );
        assert_eq!(
            links(&index),
            vec![
                (LinkKind::Local, Some("Patient"), Some("p1"), None),
                (
                    LinkKind::External,
                    None,
                    None,
                    Some("https://elsewhere.org/thing/1")
                ),
            ]
        );
    }

    #[test]
    fn canonicals_split_their_version() {
        let root = json!({"resourceType": "QuestionnaireResponse"});
        let absolute = json!("http://example.org/fhir/Questionnaire/q1|2.0");
        let relative = json!("Questionnaire/q2");
        let index = rows(
            &root,
            "questionnaire",
            &[node(&absolute, "canonical"), node(&relative, "canonical")],
        );
        assert_eq!(
            links(&index),
            vec![
                (LinkKind::Local, Some("Questionnaire"), Some("q2"), None),
                (
                    LinkKind::External,
                    Some("Questionnaire"),
                    Some("q1"),
                    Some("http://example.org/fhir/Questionnaire/q1")
                ),
            ]
        );
        assert_eq!(index.links[1].target_version.as_deref(), Some("2.0"));
    }

    #[test]
    fn unreadable_references_are_problems() {
        let root = json!({"resourceType": "Observation"});
        let conditional = json!({"reference": "Patient?identifier=urn:mrn|42"});
        let odd = json!({"reference": 42});
        let index = rows(
            &root,
            "subject",
            &[node(&conditional, "Reference"), node(&odd, "Reference")],
        );
        assert!(index.links.is_empty());
        assert_eq!(index.problems.len(), 1, "{:?}", index.problems);
        assert!(index.problems[0].starts_with("subject: cannot read the reference"));
    }

    #[test]
    fn bundle_entries_link_through_their_full_url() {
        let root = json!({
            "resourceType": "Bundle",
            "type": "document",
            "entry": [{
                "fullUrl": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
                "resource": {"resourceType": "Composition", "id": "c1"}
            }]
        });
        let index = rows(
            &root,
            "composition",
            &[node(&root["entry"][0]["resource"], "Composition")],
        );
        assert_eq!(
            links(&index),
            vec![(
                LinkKind::External,
                Some("Composition"),
                Some("c1"),
                Some("urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0")
            )]
        );
    }

    #[test]
    fn urns_resolve_against_the_bundle_being_indexed() {
        let root = json!({
            "resourceType": "Bundle",
            "entry": [{"fullUrl": "urn:uuid:abc", "resource": {"resourceType": "Patient", "id": "p"}}]
        });
        let ctx = ctx(&root, None);
        let link = read_reference(&ctx, "urn:uuid:abc").unwrap();
        assert_eq!(link.kind, Some(LinkKind::External));
        assert_eq!(link.target_type.as_deref(), Some("Patient"));
        assert_eq!(link.target_id.as_deref(), Some("p"));
        assert_eq!(link.target_url.as_deref(), Some("urn:uuid:abc"));
    }
}
