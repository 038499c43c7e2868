//! Uri parameters: uri, url, canonical, oid and uuid values, stored as written (uri search
//! compares exactly, or by prefix with `:below`).

use super::Target;
use super::node::Node;
use crate::ResourceIndex;
use crate::index::UriRow;

pub(super) fn extract(out: &mut ResourceIndex, target: &Target<'_>, node: Node<'_>) {
    let Some(uri) = node.as_str().filter(|u| !u.trim().is_empty()) else {
        return;
    };
    out.uris.push(UriRow {
        param: target.code.to_owned(),
        composite: target.composite,
        uri: uri.to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::extract::testing::{node, rows};

    #[test]
    fn uris_as_written() {
        let root =
            json!({"resourceType": "ValueSet", "url": "http://example.org/fhir/ValueSet/Vs|1"});
        let blank = json!(" ");
        let index = rows(
            &root,
            "url",
            &[node(&root["url"], "uri"), node(&blank, "uri")],
        );
        let uris: Vec<&str> = index.uris.iter().map(|u| u.uri.as_str()).collect();
        assert_eq!(uris, vec!["http://example.org/fhir/ValueSet/Vs|1"]);
    }
}
