use chrono::{DateTime, Utc};
use fhir_search::index::{StringRow, TagKind, TokenRow};
use serde_json::json;

use crate::{index_cleanly, s};

fn patient() -> serde_json::Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "meta": {
            "lastUpdated": "2024-05-01T12:00:00.123Z",
            "tag": [{"system": "http://example.org/tags", "code": "teaching", "display": "Teaching"}],
            "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]
        },
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Zoë <b>Saldaña</b> &amp; family</div>"},
        "identifier": [{
            "system": "http://hospital.example.org/mrn",
            "value": "MRN-0042",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
        }],
        "active": true,
        "name": [{"family": "Saldaña", "given": ["Zoë", "Ana"], "prefix": ["Ms."]}],
        "telecom": [
            {"system": "phone", "value": "555-0100", "use": "home"},
            {"system": "email", "value": "zoe@example.org"}
        ],
        "gender": "female",
        "birthDate": "1987-06",
        "address": [{"line": ["1 Main St"], "city": "Springfield", "postalCode": "01101"}]
    })
}

fn strings<'a>(rows: &'a [StringRow], param: &str) -> Vec<&'a str> {
    rows.iter()
        .filter(|r| r.param == param)
        .map(|r| r.normalized.as_str())
        .collect()
}

fn tokens<'a>(rows: &'a [TokenRow], param: &str) -> Vec<(Option<&'a str>, Option<&'a str>)> {
    rows.iter()
        .filter(|r| r.param == param)
        .map(|r| (r.system.as_deref(), r.code.as_deref()))
        .collect()
}

#[test]
fn names_are_folded_strings() {
    let index = index_cleanly(&patient());
    let mut name = strings(&index.strings, "name");
    name.sort_unstable();
    assert_eq!(name, vec!["ana", "ms.", "saldana", "zoe"]);
    assert_eq!(strings(&index.strings, "family"), vec!["saldana"]);
    let mut given = strings(&index.strings, "given");
    given.sort_unstable();
    assert_eq!(given, vec!["ana", "zoe"]);
    let exact: Vec<&str> = index
        .strings
        .iter()
        .filter(|r| r.param == "family")
        .map(|r| r.exact.as_str())
        .collect();
    assert_eq!(exact, vec!["Saldaña"]);
    assert!(strings(&index.strings, "address-city").contains(&"springfield"));
    assert!(strings(&index.strings, "address").contains(&"1 main st"));
}

#[test]
fn birthdate_is_the_month_written() {
    let index = index_cleanly(&patient());
    let birthdate: Vec<_> = index
        .dates
        .iter()
        .filter(|r| r.param == "birthdate")
        .map(|r| (r.low, r.high))
        .collect();
    let at = |t: &str| Some(t.parse::<DateTime<Utc>>().unwrap());
    assert_eq!(
        birthdate,
        vec![(at("1987-06-01T00:00:00Z"), at("1987-07-01T00:00:00Z"))]
    );
    let last_updated: Vec<_> = index
        .dates
        .iter()
        .filter(|r| r.param == "_lastUpdated")
        .map(|r| (r.low, r.high))
        .collect();
    assert_eq!(
        last_updated,
        vec![(
            at("2024-05-01T12:00:00.123Z"),
            at("2024-05-01T12:00:00.124Z")
        )]
    );
}

#[test]
fn identifier_gender_telecom_and_id_are_tokens() {
    let index = index_cleanly(&patient());
    assert_eq!(
        tokens(&index.tokens, "identifier"),
        vec![(Some("http://hospital.example.org/mrn"), Some("MRN-0042"))]
    );
    let identifier = index
        .tokens
        .iter()
        .find(|r| r.param == "identifier")
        .unwrap();
    assert_eq!(identifier.type_code, s("MR"));
    // A code takes the system of the value set its element is bound to.
    assert_eq!(
        tokens(&index.tokens, "gender"),
        vec![(
            Some("http://hl7.org/fhir/administrative-gender"),
            Some("female")
        )]
    );
    assert_eq!(tokens(&index.tokens, "active"), vec![(None, Some("true"))]);
    assert_eq!(tokens(&index.tokens, "_id"), vec![(None, Some("p1"))]);
    let mut telecom = tokens(&index.tokens, "telecom");
    telecom.sort_unstable();
    assert_eq!(
        telecom,
        vec![
            (Some("email"), Some("zoe@example.org")),
            (Some("phone"), Some("555-0100")),
        ]
    );
    assert_eq!(
        tokens(&index.tokens, "phone"),
        vec![(Some("phone"), Some("555-0100"))]
    );
    assert_eq!(
        tokens(&index.tokens, "email"),
        vec![(Some("email"), Some("zoe@example.org"))]
    );
    assert_eq!(
        tokens(&index.tokens, "_tag"),
        vec![(Some("http://example.org/tags"), Some("teaching"))]
    );
    assert_eq!(
        tokens(&index.tokens, "deceased"),
        vec![(None, Some("false"))],
        "`Patient.deceased.exists() and ...` is false without deceased[x]"
    );
}

#[test]
fn meta_gives_tags_profiles_and_uris() {
    let index = index_cleanly(&patient());
    let tags: Vec<_> = index
        .tags
        .iter()
        .map(|t| (t.kind, t.system.as_deref(), t.code.as_deref()))
        .collect();
    assert_eq!(
        tags,
        vec![
            (
                TagKind::Tag,
                Some("http://example.org/tags"),
                Some("teaching")
            ),
            (
                TagKind::Profile,
                None,
                Some("http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient")
            ),
        ]
    );
    let profiles: Vec<&str> = index
        .uris
        .iter()
        .filter(|u| u.param == "_profile")
        .map(|u| u.uri.as_str())
        .collect();
    assert_eq!(
        profiles,
        vec!["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]
    );
}

#[test]
fn narrative_and_content() {
    let index = index_cleanly(&patient());
    assert_eq!(index.narrative, "Zoë Saldaña & family");
    assert!(index.content.contains("Saldaña"));
    assert!(index.content.contains("555-0100"));
    assert!(!index.content.contains("<div"), "{}", index.content);
}
