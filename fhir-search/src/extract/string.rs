//! String parameters: one row per string value, each part of a HumanName or Address apart.
//!
//! search.html ("string"): a HumanName matches on family, given, prefix, suffix and text; an
//! Address on its lines, city, district, state, postalCode, country and text. A ContactPoint
//! (no R4 string parameter yields one) gives its value, as HAPI does. Blank values are skipped.

use serde_json::Value;

use super::Target;
use super::node::Node;
use crate::ResourceIndex;
use crate::index::StringRow;
use crate::normalize::string::{is_blank, normalize};

const HUMAN_NAME_PARTS: [&str; 5] = ["family", "given", "prefix", "suffix", "text"];
const ADDRESS_PARTS: [&str; 7] = [
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
    "text",
];

pub(super) fn extract(out: &mut ResourceIndex, target: &Target<'_>, node: Node<'_>) {
    let parts: &[&str] = match node.ty() {
        "HumanName" => &HUMAN_NAME_PARTS,
        "Address" => &ADDRESS_PARTS,
        "ContactPoint" => &["value"],
        _ => {
            if let Some(text) = node.as_str() {
                push(out, target, text);
            }
            return;
        }
    };
    let Some(object) = node.object() else {
        return;
    };
    for part in parts {
        match object.get(*part) {
            Some(Value::String(text)) => push(out, target, text),
            Some(Value::Array(values)) => {
                for text in values.iter().filter_map(Value::as_str) {
                    push(out, target, text);
                }
            }
            _ => {}
        }
    }
}

fn push(out: &mut ResourceIndex, target: &Target<'_>, text: &str) {
    if is_blank(text) {
        return;
    }
    out.strings.push(StringRow {
        param: target.code.to_owned(),
        composite: target.composite,
        normalized: normalize(text),
        exact: text.to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::extract::testing::{node, rows, untyped};

    fn pairs(index: &crate::ResourceIndex) -> Vec<(&str, &str)> {
        index
            .strings
            .iter()
            .map(|r| (r.normalized.as_str(), r.exact.as_str()))
            .collect()
    }

    #[test]
    fn human_names_index_every_part() {
        let root = json!({"resourceType": "Patient"});
        let name = json!({
            "use": "official",
            "family": "Saldaña",
            "given": ["Zoë", "Yadira"],
            "prefix": ["Dr."],
            "suffix": ["PhD"],
            "text": "Dr. Zoë  Yadira Saldaña PhD"
        });
        let index = rows(&root, "name", &[node(&name, "HumanName")]);
        let mut expected = vec![
            ("saldana", "Saldaña"),
            ("zoe", "Zoë"),
            ("yadira", "Yadira"),
            ("dr.", "Dr."),
            ("phd", "PhD"),
            ("dr. zoe yadira saldana phd", "Dr. Zoë  Yadira Saldaña PhD"),
        ];
        expected.sort_unstable();
        let mut got = pairs(&index);
        got.sort_unstable();
        assert_eq!(got, expected);
        assert!(
            index
                .strings
                .iter()
                .all(|r| r.param == "name" && r.composite.is_none())
        );
    }

    #[test]
    fn addresses_index_lines_and_places() {
        let root = json!({"resourceType": "Patient"});
        let address = json!({
            "line": ["12 Rue de l'Église", "Bât. B"],
            "city": "Montréal",
            "district": "Ville-Marie",
            "state": "QC",
            "postalCode": "H2X 1Y4",
            "country": "Canada",
            "use": "home"
        });
        let index = rows(&root, "address", &[node(&address, "Address")]);
        let normalized: Vec<&str> = index
            .strings
            .iter()
            .map(|r| r.normalized.as_str())
            .collect();
        for expected in [
            "12 rue de l'eglise",
            "bat. b",
            "montreal",
            "ville-marie",
            "qc",
            "h2x 1y4",
            "canada",
        ] {
            assert!(
                normalized.contains(&expected),
                "{expected} in {normalized:?}"
            );
        }
        assert!(!normalized.contains(&"home"), "use is not an address part");
    }

    #[test]
    fn plain_strings_blank_ones_skipped() {
        let root = json!({"resourceType": "Organization"});
        let name = json!("  ACME   Clinic ");
        let blank = json!("   ");
        let number = json!(12);
        let index = rows(
            &root,
            "name",
            &[untyped(&name), node(&blank, "string"), untyped(&number)],
        );
        assert_eq!(pairs(&index), vec![("acme clinic", "  ACME   Clinic ")]);
    }

    #[test]
    fn long_values_fold_to_200_characters_but_stay_exact() {
        let root = json!({"resourceType": "Organization"});
        let long = json!("x".repeat(500));
        let index = rows(&root, "name", &[node(&long, "string")]);
        assert_eq!(index.strings[0].normalized.len(), 200);
        assert_eq!(index.strings[0].exact.len(), 500);
    }
}
