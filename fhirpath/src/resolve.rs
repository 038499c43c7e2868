//! `resolve()`: what a reference points to, as far as its text says.
//!
//! The evaluator is pure and sees one resource, so it cannot fetch targets. The R4 search
//! parameters only ask for the target's type (`where(resolve() is Patient)`), which the
//! reference text gives: `Patient/123`, `Patient/123/_history/2` and
//! `http://server/fhir/Patient/123` resolve to "a Patient"; `#id` resolves to the contained
//! resource itself (and `#` to the containing resource). References that carry no type, such
//! as `urn:uuid:...` inside a transaction Bundle, resolve to nothing.

use serde_json::Value;

use crate::eval::Env;
use crate::types::{Node, model};
use crate::value::Val;

/// Appends what `item` (a Reference, or a uri/canonical/string node) resolves to.
pub(crate) fn resolve<'a>(item: &Val<'a>, env: &Env<'a>, out: &mut Vec<Val<'a>>) {
    let Val::Node(node) = item else {
        return;
    };
    let reference = match node.ty.code {
        Some("Reference") => node.value.get("reference").and_then(Value::as_str),
        _ => node.value.as_str(),
    };
    let Some(reference) = reference else {
        return;
    };
    match target(reference) {
        Some(Target::Container) => out.push(env.resource.clone()),
        Some(Target::Contained(id)) => {
            let contained = env
                .root
                .get("contained")
                .and_then(Value::as_array)
                .and_then(|resources| {
                    resources
                        .iter()
                        .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
                });
            if let Some(resource) = contained {
                out.push(Val::Node(Node::resource(resource)));
            }
        }
        Some(Target::Typed(resource_type)) => out.push(Val::Resolved {
            resource_type,
            reference,
        }),
        None => {}
    }
}

/// What a reference text designates.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target<'r> {
    /// `#`: the resource that contains the reference.
    Container,
    /// `#id`: a contained resource.
    Contained(&'r str),
    /// `Type/id` (relative or absolute, possibly versioned): a resource of that type.
    Typed(&'static str),
}

/// Parses a reference text; `None` for texts that say nothing about the target's type.
pub(crate) fn target(reference: &str) -> Option<Target<'_>> {
    if let Some(id) = reference.strip_prefix('#') {
        return Some(if id.is_empty() {
            Target::Container
        } else {
            Target::Contained(id)
        });
    }
    let unversioned = match reference.find("/_history/") {
        Some(position) => &reference[..position],
        None => reference,
    };
    let mut segments = unversioned.rsplit('/');
    let id = segments.next()?;
    let resource_type = segments.next()?;
    if id.is_empty() || id.contains(['?', '#']) || !model().is_resource_type(resource_type) {
        return None;
    }
    model()
        .type_definition(resource_type)
        .map(|definition| Target::Typed(definition.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_texts() {
        assert_eq!(target("Patient/123"), Some(Target::Typed("Patient")));
        assert_eq!(
            target("Observation/1/_history/2"),
            Some(Target::Typed("Observation"))
        );
        assert_eq!(
            target("http://example.org/fhir/Practitioner/abc"),
            Some(Target::Typed("Practitioner"))
        );
        assert_eq!(target("#med1"), Some(Target::Contained("med1")));
        assert_eq!(target("#"), Some(Target::Container));
        assert_eq!(
            target("urn:uuid:0a1b2c3d-0000-4000-8000-000000000000"),
            None
        );
        assert_eq!(target("NotAType/1"), None);
        assert_eq!(target("Patient/"), None);
        assert_eq!(target("Patient?identifier=x"), None);
        assert_eq!(target("123"), None);
    }
}
