//! The planner: what each request entry means. This is the one place that turns an entry
//! (method, URL, conditions, body) into the command it runs on a stream, for REST requests and
//! Bundle entries alike (a REST write is a transaction of one entry), so both obey the same
//! rules of the specification's http.html:
//!
//! 1. **The body, on its own** ([`check`]): a create's body is a resource of the URL's type
//!    (its `id` is ignored: the server assigns one); an update's body carries the id of the URL;
//!    a conditional update's body may carry an id; every resource is valid against the R4
//!    schema; a patch is a JSON Patch document. All of this before any lock is taken.
//! 2. **The criteria** ([`criteria`]): every search the entries depend on (`If-None-Exist`,
//!    conditional `PUT`/`PATCH`/`DELETE` URLs, and, in Bundles, conditional references) is
//!    checked, so that the caller can open one conditional-write session holding their locks.
//! 3. **The targets** ([`plan`]), in processing order (DELETE, POST, PUT/PATCH, GET/HEAD): the
//!    stream each entry writes (a new id for a create, the one match of its criteria, the id of
//!    its URL), or why it writes nothing (`If-None-Exist` matched; a conditional delete matched
//!    nothing). A conditional update that matches nothing creates the resource under the
//!    body's id, unless that id names a live resource the criteria did not match (400: it would
//!    overwrite what the client did not select). Two entries writing one resource is an error.
//! 4. **References** (Bundles only): every reference to an entry's `fullUrl`, and every
//!    conditional reference (`Patient?identifier=...`), is rewritten to the `Type/id` it
//!    resolved to. Outside a Bundle there is nothing to resolve them against, and the reference
//!    check refuses them.
//!
//! Whether each command applies (versions, `If-Match`, the patch's result) is the aggregate's
//! decision, taken on the stream's head in the commit loop (`commit.rs`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use event_store::{EventStore, ResourceCommand};
use fhir_model::{ResourceId, ResourceType};
use serde_json::Value;
use uuid::Uuid;

use crate::commit::Write;
use crate::conditional::{Matcher, Session};
use crate::entry::{Entry, Method, Target};
use crate::error::{EntryError, WriteError};

/// What kind of request the entries came in: a Bundle resolves references between its entries
/// and conditional references; a REST request has no entries to resolve them against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Request,
    Bundle,
}

/// An entry, and what it will do.
#[derive(Debug)]
pub struct Item {
    pub entry: Entry,
    pub step: Step,
}

/// What an entry does.
#[derive(Debug)]
pub enum Step {
    /// Writes stream `id` (`fresh`: a new id, so the stream is known to be empty); the
    /// command is the [`Write`] of the same entry index in [`Plan::writes`].
    Write { id: String, fresh: bool },
    /// `If-None-Exist` matched this resource: nothing is written, the match is the answer.
    Existing { id: String },
    /// A conditional delete that matched nothing (`Type?criteria`).
    NothingToDelete { criteria: String },
    /// A read, answered after the writes.
    Read,
}

/// The entries, in Bundle order, and the writes they make.
#[derive(Debug)]
pub struct Plan {
    pub items: Vec<Item>,
    pub writes: Vec<Write>,
}

/// Checks an entry's body on its own, and brings it to the form its command takes (a create's
/// `id` removed).
pub fn check(entry: &mut Entry) -> Result<(), WriteError> {
    match (entry.method, &entry.target) {
        (Method::Post, Target::Type(resource_type)) => {
            let resource_type = *resource_type;
            let resource = body_mut(entry)?;
            // The server assigns the id of a created resource; one sent by the client is ignored.
            if let Some(object) = resource.as_object_mut() {
                object.shift_remove("id");
            }
            check_resource(resource, resource_type)
        }
        (Method::Put, Target::Instance(resource_type, id)) => {
            let (resource_type, id) = (*resource_type, id.to_string());
            let resource = body_mut(entry)?;
            match body_id(resource)? {
                Some(body_id) if body_id == id => {}
                Some(body_id) => {
                    return Err(WriteError::Rule(format!(
                        "the resource's id '{body_id}' does not match the id in the URL '{id}'"
                    )));
                }
                None => {
                    return Err(WriteError::Rule(
                        "an update must carry the resource's id, equal to the id in the URL"
                            .to_owned(),
                    ));
                }
            }
            check_resource(resource, resource_type)
        }
        (Method::Put, Target::Criteria(resource_type, _)) => {
            let resource_type = *resource_type;
            let resource = body_mut(entry)?;
            body_id(resource)?;
            check_resource(resource, resource_type)
        }
        (Method::Patch, _) => {
            let patch = body_mut(entry)?;
            serde_json::from_value::<json_patch::Patch>(patch.clone())
                .map(|_| ())
                .map_err(|error| {
                    WriteError::Rule(format!("the body is not a JSON Patch document: {error}"))
                })
        }
        _ => Ok(()),
    }
}

/// Every search the entries depend on, each checked to be usable (400 naming the entry).
pub fn criteria(
    matcher: &Matcher,
    entries: &[Entry],
    scope: Scope,
) -> Result<Vec<(ResourceType, String)>, EntryError> {
    let mut wanted = Vec::new();
    for entry in entries {
        let mut mine = Vec::new();
        match (&entry.target, &entry.if_none_exist) {
            (Target::Type(t), Some(criteria)) if entry.method == Method::Post => {
                mine.push((*t, criteria.clone()));
            }
            (Target::Criteria(t, criteria), _) if entry.method != Method::Post => {
                mine.push((*t, criteria.clone()));
            }
            _ => {}
        }
        if scope == Scope::Bundle
            && let Some(body) = &entry.body
        {
            for reference in conditional_references_in(body) {
                mine.push(conditional_reference(&reference).map_err(EntryError::at(entry.index))?);
            }
        }
        for (resource_type, criteria) in &mine {
            matcher
                .check(*resource_type, criteria)
                .map_err(EntryError::at(entry.index))?;
        }
        wanted.extend(mine);
    }
    Ok(wanted)
}

/// Plans `entries` (checked, in Bundle order): targets, references, commands. `session` holds
/// the locks of every [`criteria`] the entries depend on (none when they have none).
pub async fn plan(
    store: &EventStore,
    mut entries: Vec<Entry>,
    mut session: Option<&mut Session>,
    scope: Scope,
    at: DateTime<Utc>,
) -> Result<Plan, EntryError> {
    let conditional_references = match scope {
        Scope::Bundle => resolve_conditional_references(&entries, &mut session).await?,
        Scope::Request => HashMap::new(),
    };
    entries.sort_by_key(|entry| entry.method.processing_rank());

    let mut full_urls: HashMap<String, String> = HashMap::new();
    let mut writers: HashMap<(ResourceType, String), usize> = HashMap::new();
    let mut items = Vec::with_capacity(entries.len());
    for entry in entries {
        let index = entry.index;
        let step = target_of(store, &entry, &mut session)
            .await
            .map_err(EntryError::at(index))?;
        let resource_type = entry.target.resource_type();
        let step = match step {
            Destination::Write { id, fresh } => {
                if let Some(previous) = writers.insert((resource_type, id.clone()), index) {
                    return Err(EntryError::at(index)(WriteError::Rule(format!(
                        "{resource_type}/{id} is written by entries {previous} and {index}; a transaction writes each resource once"
                    ))));
                }
                if let Some(full_url) = &entry.full_url {
                    full_urls.insert(full_url.clone(), format!("{resource_type}/{id}"));
                }
                Step::Write { id, fresh }
            }
            Destination::Existing(id) => {
                if let Some(full_url) = &entry.full_url {
                    full_urls.insert(full_url.clone(), format!("{resource_type}/{id}"));
                }
                Step::Existing { id }
            }
            Destination::NothingToDelete(criteria) => Step::NothingToDelete { criteria },
            Destination::Read => Step::Read,
        };
        items.push(Item { entry, step });
    }

    if scope == Scope::Bundle {
        for item in &mut items {
            if let (Method::Post | Method::Put, Some(body)) =
                (item.entry.method, item.entry.body.as_mut())
            {
                rewrite_references(body, &full_urls, &conditional_references)
                    .map_err(EntryError::at(item.entry.index))?;
            }
        }
    }

    // Still in processing order, which is the order the events are appended in.
    let mut writes = Vec::new();
    for item in &mut items {
        if let Step::Write { id, fresh } = &item.step {
            let index = item.entry.index;
            writes.push(Write {
                entry: index,
                resource_type: item.entry.target.resource_type(),
                command: command_for(&mut item.entry, id, at).map_err(EntryError::at(index))?,
                id: id.clone(),
                fresh: *fresh,
                outcome: None,
            });
        }
    }
    items.sort_by_key(|item| item.entry.index);
    Ok(Plan { items, writes })
}

/// Where an entry leads, once its criteria are matched.
enum Destination {
    Write { id: String, fresh: bool },
    Existing(String),
    NothingToDelete(String),
    Read,
}

/// Which stream an entry writes, matching its criteria where it has some.
async fn target_of(
    store: &EventStore,
    entry: &Entry,
    session: &mut Option<&mut Session>,
) -> Result<Destination, WriteError> {
    let mut find = async |resource_type: ResourceType, criteria: &str| {
        let session = session
            .as_deref_mut()
            .ok_or_else(|| WriteError::Rule("criteria outside a session".to_owned()))?;
        session.find(resource_type, criteria).await
    };
    let new = || Destination::Write {
        id: ResourceId::from_uuid(Uuid::now_v7()).to_string(),
        fresh: true,
    };
    let existing = |id: &str| Destination::Write {
        id: id.to_owned(),
        fresh: false,
    };
    Ok(match (entry.method, &entry.target) {
        (Method::Get | Method::Head, _) => Destination::Read,
        (Method::Post, Target::Type(resource_type)) => match &entry.if_none_exist {
            Some(criteria) => match find(*resource_type, criteria).await?.single()? {
                Some(id) => Destination::Existing(id.to_owned()),
                None => new(),
            },
            None => new(),
        },
        (method, Target::Instance(resource_type, id)) => {
            if method == Method::Put && entry.if_none_match {
                let head = store.latest(resource_type.as_str(), id.as_str()).await?;
                if head.is_some_and(|head| !head.is_delete()) {
                    return Err(WriteError::PreconditionFailed(format!(
                        "{resource_type}/{id} exists, and If-None-Match asks that it does not"
                    )));
                }
            }
            existing(id.as_str())
        }
        (method, Target::Criteria(resource_type, criteria)) => {
            let matched = find(*resource_type, criteria).await?;
            let body_id = entry
                .body
                .as_ref()
                .and_then(|body| body_id(body).ok().flatten());
            match (method, matched.single()?) {
                (Method::Put, Some(found)) => {
                    if let Some(body_id) = body_id.filter(|body_id| *body_id != found) {
                        return Err(WriteError::Rule(format!(
                            "the resource's id '{body_id}' is not the id of the resource {} matches ({resource_type}/{found})",
                            matched.criteria
                        )));
                    }
                    existing(found)
                }
                (Method::Put, None) => match body_id {
                    Some(body_id) => {
                        let head = store.latest(resource_type.as_str(), body_id).await?;
                        if head.is_some_and(|head| !head.is_delete()) {
                            return Err(WriteError::Rule(format!(
                                "{resource_type}/{body_id} exists but does not match {}; update it by id, or fix the criteria",
                                matched.criteria
                            )));
                        }
                        existing(body_id)
                    }
                    None => new(),
                },
                (Method::Delete, None) => Destination::NothingToDelete(matched.criteria.clone()),
                (_, Some(found)) => existing(found),
                (_, None) => return Err(WriteError::NoMatch(matched.criteria.clone())),
            }
        }
        _ => {
            return Err(WriteError::Rule(format!(
                "{} is not a request this server accepts",
                entry.describe()
            )));
        }
    })
}

/// The command an entry runs on its stream `id` (its body, checked and with its references
/// rewritten, moves into the command).
fn command_for(
    entry: &mut Entry,
    id: &str,
    at: DateTime<Utc>,
) -> Result<ResourceCommand, WriteError> {
    let describe = entry.describe();
    let mut body = entry.body.take();
    let mut body = || {
        body.take()
            .ok_or_else(|| WriteError::Rule(format!("{describe} needs a body")))
    };
    Ok(match entry.method {
        Method::Post => ResourceCommand::Create {
            id: id.to_owned(),
            resource: body()?,
            at,
        },
        Method::Put => {
            let mut resource = body()?;
            // A conditional update's body may leave the id out: it is the match's (or new).
            if let Some(object) = resource.as_object_mut() {
                object.insert("id".to_owned(), Value::String(id.to_owned()));
            }
            ResourceCommand::Update {
                id: id.to_owned(),
                resource,
                if_match: entry.if_match,
                at,
            }
        }
        Method::Patch => ResourceCommand::Patch {
            patch: body()?,
            if_match: entry.if_match,
            at,
        },
        Method::Delete => ResourceCommand::Delete {
            if_match: entry.if_match,
            at,
        },
        Method::Get | Method::Head => {
            return Err(WriteError::Rule("a read writes nothing".to_owned()));
        }
    })
}

fn body_mut(entry: &mut Entry) -> Result<&mut Value, WriteError> {
    let describe = entry.describe();
    entry
        .body
        .as_mut()
        .ok_or_else(|| WriteError::Rule(format!("{describe} needs a body")))
}

/// The checks every resource body passes: its type is the URL's, and it is valid against the
/// R4 schema.
fn check_resource(resource: &Value, expected: ResourceType) -> Result<(), WriteError> {
    let Some(object) = resource.as_object() else {
        return Err(WriteError::Rule(
            "the body must be a FHIR resource (a JSON object)".to_owned(),
        ));
    };
    match object.get("resourceType").and_then(Value::as_str) {
        Some(found) if found == expected.as_str() => {}
        Some(found) => {
            return Err(WriteError::Rule(format!(
                "the body is a {found} but the URL is for {expected}"
            )));
        }
        None => return Err(WriteError::Rule("the body has no resourceType".to_owned())),
    }
    fhir_model::check_resource(resource)
        .map(|_| ())
        .map_err(WriteError::Invalid)
}

/// The body's `id`, checked to be a valid one.
fn body_id(resource: &Value) -> Result<Option<&str>, WriteError> {
    match resource.get("id") {
        None => Ok(None),
        Some(Value::String(id)) => ResourceId::parse(id)
            .map(|_| Some(id.as_str()))
            .map_err(|error| WriteError::InvalidId(error.to_string())),
        Some(_) => Err(WriteError::Rule(
            "the resource's id must be a string".to_owned(),
        )),
    }
}

/// A conditional reference's type and criteria.
fn conditional_reference(reference: &str) -> Result<(ResourceType, String), WriteError> {
    let (type_name, criteria) = reference.split_once('?').unwrap_or_default();
    let resource_type = ResourceType::parse(type_name).map_err(|_| {
        WriteError::Rule(format!(
            "conditional reference {reference:?}: {type_name:?} is not a resource type"
        ))
    })?;
    Ok((resource_type, criteria.to_owned()))
}

/// `reference` values of the form `Type?criteria` anywhere in `value`.
fn conditional_references_in(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    visit_references(value, &mut |text| {
        if crate::references::is_conditional(text) {
            found.push(text.to_owned());
        }
    });
    found
}

fn visit_references(value: &Value, visit: &mut impl FnMut(&str)) {
    match value {
        Value::Object(members) => {
            for (name, member) in members {
                match (name.as_str(), member) {
                    ("reference", Value::String(text)) => visit(text),
                    _ => visit_references(member, visit),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| visit_references(item, visit)),
        _ => {}
    }
}

/// Each conditional reference in the entries, resolved to the `Type/id` of its one match.
async fn resolve_conditional_references(
    entries: &[Entry],
    session: &mut Option<&mut Session>,
) -> Result<HashMap<String, String>, EntryError> {
    let mut resolved = HashMap::new();
    for entry in entries {
        let Some(body) = &entry.body else { continue };
        let blame = EntryError::at(entry.index);
        for reference in conditional_references_in(body) {
            if resolved.contains_key(&reference) {
                continue;
            }
            let (resource_type, criteria) = conditional_reference(&reference).map_err(&blame)?;
            let Some(session) = session.as_deref_mut() else {
                return Err(blame(WriteError::Rule(
                    "conditional reference outside a session".to_owned(),
                )));
            };
            let matched = session
                .find(resource_type, &criteria)
                .await
                .map_err(&blame)?;
            let id = matched
                .single()
                .map_err(&blame)?
                .ok_or_else(|| blame(WriteError::NoMatch(matched.criteria.clone())))?;
            resolved.insert(reference, format!("{resource_type}/{id}"));
        }
    }
    Ok(resolved)
}

/// Rewrites every reference to a `fullUrl` of the bundle, or a conditional reference, to the
/// `Type/id` it resolved to.
fn rewrite_references(
    value: &mut Value,
    full_urls: &HashMap<String, String>,
    conditional: &HashMap<String, String>,
) -> Result<(), WriteError> {
    match value {
        Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                match (name.as_str(), member) {
                    ("reference", Value::String(text)) => {
                        if let Some(local) = full_urls
                            .get(text.as_str())
                            .or_else(|| conditional.get(text.as_str()))
                        {
                            *text = local.clone();
                        } else if text.starts_with("urn:uuid:") || text.starts_with("urn:oid:") {
                            return Err(WriteError::Rule(format!(
                                "the reference {text:?} names no entry of this Bundle"
                            )));
                        }
                    }
                    (_, member) => rewrite_references(member, full_urls, conditional)?,
                }
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|item| rewrite_references(item, full_urls, conditional)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_rewritten_wherever_they_are() {
        let mut resource = json!({
            "resourceType": "Observation",
            "subject": {"reference": "urn:uuid:p"},
            "extension": [{"url": "x", "valueReference": {"reference": "urn:uuid:p"}}],
            "contained": [{"resourceType": "Provenance", "target": [{"reference": "Organization?identifier=a|b"}]}],
            "performer": [{"reference": "Practitioner/kept"}, {"reference": "#inner"}],
        });
        let full_urls = HashMap::from([("urn:uuid:p".to_owned(), "Patient/1".to_owned())]);
        let conditional = HashMap::from([(
            "Organization?identifier=a|b".to_owned(),
            "Organization/9".to_owned(),
        )]);
        rewrite_references(&mut resource, &full_urls, &conditional)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(resource["subject"]["reference"], "Patient/1");
        assert_eq!(
            resource["extension"][0]["valueReference"]["reference"],
            "Patient/1"
        );
        assert_eq!(
            resource["contained"][0]["target"][0]["reference"],
            "Organization/9"
        );
        assert_eq!(resource["performer"][0]["reference"], "Practitioner/kept");
        assert_eq!(resource["performer"][1]["reference"], "#inner");

        let mut dangling = json!({"subject": {"reference": "urn:uuid:nobody"}});
        assert!(rewrite_references(&mut dangling, &full_urls, &conditional).is_err());
    }

    #[test]
    fn conditional_references_are_found_and_others_are_not() {
        let resource = json!({"a": {"reference": "Patient?identifier=http://x|1"}, "b": [{"reference": "Patient/1"},
            {"reference": "http://x/fhir/Patient?y=1"}, {"reference": "#c?d"}]});
        assert_eq!(
            conditional_references_in(&resource),
            ["Patient?identifier=http://x|1"]
        );
    }

    fn patient() -> ResourceType {
        ResourceType::parse("Patient").unwrap_or_else(|_| unreachable!())
    }

    fn entry(method: Method, target: Target, body: Value) -> Entry {
        Entry {
            body: Some(body),
            ..Entry::request(method, target)
        }
    }

    #[test]
    fn an_update_carries_the_id_of_its_url() {
        let id = ResourceId::parse("a").unwrap_or_else(|_| unreachable!());
        let target = Target::Instance(patient(), id);
        let mut good = entry(
            Method::Put,
            target.clone(),
            json!({"resourceType": "Patient", "id": "a"}),
        );
        assert!(check(&mut good).is_ok());
        for body in [
            json!({"resourceType": "Patient"}),
            json!({"resourceType": "Patient", "id": "b"}),
            json!({"resourceType": "Patient", "id": 7}),
        ] {
            let mut bad = entry(Method::Put, target.clone(), body.clone());
            assert!(
                matches!(check(&mut bad), Err(WriteError::Rule(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn a_create_ignores_the_id_it_is_sent() {
        let mut create = entry(
            Method::Post,
            Target::Type(patient()),
            json!({"resourceType": "Patient", "id": "mine"}),
        );
        assert!(check(&mut create).is_ok());
        assert_eq!(create.body, Some(json!({"resourceType": "Patient"})));
    }
}
