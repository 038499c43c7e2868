//! Test support: rows from hand-made result items, so each extractor is tested without the
//! FHIRPath evaluator.

use std::borrow::Cow;

use fhirpath::Item;
use serde_json::Value;

use super::{Context, Target, dedupe, emit};
use crate::{Registry, ResourceIndex};

/// The server base URL the tests use.
pub const BASE_URL: &str = "http://localhost:8080/fhir";

/// A node of the resource with its FHIR type, as the evaluator gives it.
pub fn node<'a>(value: &'a Value, ty: &'static str) -> Item<'a> {
    Item::Node {
        value,
        type_name: Some(Cow::Borrowed(ty)),
        code_system: None,
    }
}

/// A node without a type name (the evaluator could not tell).
pub fn untyped(value: &Value) -> Item<'_> {
    Item::Node {
        value,
        type_name: None,
        code_system: None,
    }
}

/// The rows `items` give under parameter `code` of the root's type.
pub fn rows(root: &Value, code: &str, items: &[Item<'_>]) -> ResourceIndex {
    let registry = Registry::r4();
    let resource_type = root["resourceType"].as_str().unwrap();
    let param = registry
        .get(resource_type, code)
        .unwrap_or_else(|| panic!("{resource_type} has no parameter {code}"));
    let branch = param
        .branches
        .iter()
        .find(|b| {
            b.applies_to
                .as_deref()
                .is_none_or(|t| t == resource_type || t == "Resource")
        })
        .unwrap();
    let ctx = Context {
        root,
        resource_type,
        base_url: Some(BASE_URL),
    };
    let target = Target {
        code: &param.code,
        kind: param.kind,
        composite: None,
        source_path: &branch.source_path,
        targets: &param.target,
    };
    let mut out = ResourceIndex::default();
    for item in items {
        emit(&ctx, &mut out, &target, item);
    }
    dedupe(&mut out);
    out
}

/// `Some(text.to_owned())`.
pub fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}
