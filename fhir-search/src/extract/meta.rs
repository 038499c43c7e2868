//! Tag rows (`hfj_res_tag`) straight from `meta`: every `meta.tag` and `meta.security` Coding
//! and every `meta.profile` URL (as the code). The `_tag`, `_security` and `_profile` parameters
//! index the same values as tokens and uris through their definitions; these rows serve the
//! tag operations (`$meta`) and listing a resource's tags without the search tables.

use serde_json::Value;

use super::token::{array_of_objects, text_of};
use crate::index::{TagKind, TagRow};

pub(super) fn tags(resource: &Value, tags: &mut Vec<TagRow>) {
    let Some(meta) = resource.get("meta").and_then(Value::as_object) else {
        return;
    };
    for (key, kind) in [("tag", TagKind::Tag), ("security", TagKind::Security)] {
        for coding in array_of_objects(meta, key) {
            let system = text_of(coding, "system");
            let code = text_of(coding, "code");
            if system.is_none() && code.is_none() {
                continue;
            }
            tags.push(TagRow {
                kind,
                system: system.map(str::to_owned),
                code: code.map(str::to_owned),
                display: text_of(coding, "display").map(str::to_owned),
            });
        }
    }
    for profile in meta
        .get("profile")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|p| !p.trim().is_empty())
    {
        tags.push(TagRow {
            kind: TagKind::Profile,
            system: None,
            code: Some(profile.to_owned()),
            display: None,
        });
    }
}
