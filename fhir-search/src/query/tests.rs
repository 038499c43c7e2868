use super::*;

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn search(resource_type: &str, pairs: &[(&str, &str)]) -> Result<SearchQuery, QueryError> {
    parse(
        Registry::r4(),
        vec![resource_type.to_owned()],
        &params(pairs),
        "http://localhost:8080/fhir",
    )
}

#[test]
fn plain_parameters_and_or_values() {
    let query = search(
        "Observation",
        &[
            ("code", "http://loinc.org|8867-4,http://loinc.org|9279-1"),
            ("date", "ge2020"),
        ],
    )
    .unwrap();
    assert_eq!(query.criteria.len(), 2);
    let code = &query.criteria[0];
    assert_eq!((code.code.as_str(), code.kind), ("code", ParamType::Token));
    assert!(code.steps.is_empty());
    let Test::Any(values) = &code.test else {
        panic!("expected values")
    };
    assert_eq!(values.len(), 2);
    assert_eq!(query.criteria[1].kind, ParamType::Date);
}

#[test]
fn modifiers_by_type() {
    let query = search(
        "Patient",
        &[
            ("name:exact", "Ana"),
            ("family:contains", "son"),
            ("gender:not", "male"),
            (
                "identifier:of-type",
                "http://terminology.hl7.org/CodeSystem/v2-0203|MR|123",
            ),
            ("birthdate:missing", "false"),
            ("general-practitioner:Practitioner", "p1"),
        ],
    )
    .unwrap();
    assert!(query.ignored.is_empty(), "{:?}", query.ignored);
    assert!(
        matches!(&query.criteria[0].test, Test::Any(v) if matches!(&v[0], Value::String(s) if s.mode == StringMatch::Exact))
    );
    assert!(matches!(&query.criteria[2].test, Test::None(_)));
    assert_eq!(query.criteria[4].test, Test::Missing(false));
    assert!(
        matches!(&query.criteria[5].test, Test::Any(v) if v[0] == Value::Reference(ReferenceValue::Local { resource_type: Some("Practitioner".into()), id: "p1".into() }))
    );
}

#[test]
fn unknown_parameters_and_modifiers_are_ignored_with_a_reason() {
    let query = search(
        "Patient",
        &[("nonsense", "1"), ("name:below", "x"), ("gender", "female")],
    )
    .unwrap();
    assert_eq!(query.criteria.len(), 1);
    let names: Vec<&str> = query.ignored.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, vec!["nonsense", "name:below"]);
}

#[test]
fn invalid_values_are_errors() {
    let error = search("Patient", &[("birthdate", "yesterday"), ("_count", "x")]).unwrap_err();
    assert_eq!(error.messages.len(), 2);
    assert!(error.messages[0].starts_with("birthdate:"), "{error}");
    assert!(search("Patient", &[("gender:missing", "maybe")]).is_err());
    assert!(search("Observation", &[("value-quantity", "abc")]).is_err());
    assert!(search("Observation", &[("code-value-quantity", "1|2")]).is_err());
}

#[test]
fn chains_follow_reference_targets() {
    let query = search("Observation", &[("subject:Patient.name", "peter")]).unwrap();
    let criterion = &query.criteria[0];
    assert_eq!(
        criterion.steps,
        vec![Step::Forward {
            param: "subject".into(),
            target_types: vec!["Patient".into()]
        }]
    );
    assert_eq!(criterion.types, vec!["Patient".to_owned()]);
    assert_eq!(criterion.code, "name");

    // Without a type, every target that has the next parameter.
    let query = search("Observation", &[("subject.name", "x")]).unwrap();
    let Step::Forward { target_types, .. } = &query.criteria[0].steps[0] else {
        panic!()
    };
    assert!(target_types.contains(&"Patient".to_owned()));
    assert!(!target_types.contains(&"Device".to_owned()));

    // Two levels.
    let query = search(
        "Encounter",
        &[("patient.general-practitioner.name", "smith")],
    )
    .unwrap();
    assert_eq!(query.criteria[0].steps.len(), 2);

    // Chaining a token is an error; a chain to nowhere is ignored.
    assert!(search("Patient", &[("gender.x", "1")]).is_err());
    let query = search("Observation", &[("subject:Patient.nonsense", "1")]).unwrap();
    assert_eq!(query.ignored.len(), 1);
}

#[test]
fn has_nests_and_checks_its_reference() {
    let query = search("Patient", &[("_has:Observation:patient:code", "1234-5")]).unwrap();
    assert_eq!(
        query.criteria[0].steps,
        vec![Step::Reverse {
            source_type: "Observation".into(),
            param: "patient".into()
        }]
    );
    assert_eq!(query.criteria[0].types, vec!["Observation".to_owned()]);
    let query = search(
        "Patient",
        &[(
            "_has:Observation:patient:_has:Provenance:target:agent",
            "Practitioner/1",
        )],
    )
    .unwrap();
    assert_eq!(query.criteria[0].steps.len(), 2);
    assert!(search("Patient", &[("_has:Observation:code:code", "1")]).is_err());
    assert!(search("Patient", &[("_has:Nonsense:patient:code", "1")]).is_err());
    assert!(search("Patient", &[("_has:Observation", "1")]).is_err());
}

#[test]
fn composites_split_on_dollar() {
    let query = search(
        "Observation",
        &[(
            "code-value-quantity",
            "http://loinc.org|8480-6$gt140|http://unitsofmeasure.org|mm[Hg]",
        )],
    )
    .unwrap();
    let Test::Any(values) = &query.criteria[0].test else {
        panic!()
    };
    let Value::Composite(parts) = &values[0] else {
        panic!()
    };
    assert!(matches!(parts[0], Value::Token(_)));
    assert!(matches!(&parts[1], Value::Quantity(q) if q.number.prefix == Prefix::Gt));
}

#[test]
fn result_parameters() {
    let query = search(
        "Observation",
        &[
            ("_sort", "-date,code"),
            ("_count", "5000"),
            ("_total", "none"),
            ("_summary", "count"),
            ("_elements", "code, subject"),
            ("_include", "Observation:subject"),
            (
                "_include:iterate",
                "Patient:general-practitioner:Practitioner",
            ),
            ("_revinclude", "Provenance:target"),
            ("_include", "*"),
            ("_format", "json"),
        ],
    )
    .unwrap();
    assert_eq!(query.sort.len(), 2);
    assert!(query.sort[0].descending && query.sort[0].kind == ParamType::Date);
    assert_eq!(query.count, MAX_COUNT);
    assert_eq!(query.total, Total::None);
    assert_eq!(query.summary, Some(Summary::Count));
    assert_eq!(query.elements, vec!["code", "subject"]);
    assert_eq!(query.includes.len(), 3);
    assert!(query.includes[1].iterate);
    assert_eq!(
        query.includes[1].target_type.as_deref(),
        Some("Practitioner")
    );
    assert_eq!(query.includes[2].source_type, None);
    assert_eq!(query.revincludes.len(), 1);
    assert!(search("Observation", &[("_include", "Observation:code")]).is_err());
    assert!(search("Observation", &[("_summary", "maybe")]).is_err());
}

#[test]
fn text_and_special_parameters() {
    let query = search("Patient", &[("_text", "diabetes"), ("_content", "x")]).unwrap();
    assert_eq!(query.criteria.len(), 2);
    let query = search("Location", &[("near", "42.2|-83.7|10|km")]).unwrap();
    assert!(matches!(&query.criteria[0].test, Test::Any(v) if matches!(v[0], Value::Near(_))));
    let query = search("Patient", &[("_query", "x")]).unwrap();
    assert_eq!(query.ignored.len(), 1);
}

#[test]
fn empty_values_are_ignored() {
    let query = search("Patient", &[("name", "")]).unwrap();
    assert!(query.criteria.is_empty() && query.ignored.is_empty());
}

#[test]
fn decimal_values_beyond_range_are_an_error_naming_the_parameter() {
    for (resource_type, name, value) in [
        ("Observation", "value-quantity", "1e-28"),
        (
            "Observation",
            "value-quantity",
            "le1e-28|http://unitsofmeasure.org|mg",
        ),
        (
            "RiskAssessment",
            "probability",
            "ap79228162514264337593543950335",
        ),
        (
            "Observation",
            "combo-value-quantity",
            "99999999999999999999999999999||kg",
        ),
        (
            "Observation",
            "code-value-quantity",
            "http://loinc.org|8867-4$1e-28",
        ),
    ] {
        let error = search(resource_type, &[(name, value)]).unwrap_err();
        assert!(
            error.to_string().starts_with(&format!("{name}: ")),
            "{name}={value}: {error}"
        );
    }
}

fn costly(resource_type: &str, pairs: &[(&str, String)]) -> QueryError {
    let params: Vec<(String, String)> = pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect();
    let error = parse(
        Registry::r4(),
        vec![resource_type.to_owned()],
        &params,
        "http://localhost:8080/fhir",
    )
    .unwrap_err();
    assert_eq!(error.kind, QueryErrorKind::TooCostly, "{error}");
    error
}

#[test]
fn searches_beyond_the_budget_are_too_costly_naming_the_limit() {
    let limits = Limits::default();
    let many = |n: usize, value: &str| vec![value; n].join(",");
    // OR values: of one parameter, then of all together.
    let error = costly("Patient", &[("_id", many(70_000, "x"))]);
    assert!(error.to_string().contains("per parameter"), "{error}");
    let spread: Vec<(&str, String)> = ["family", "given", "name", "address", "telecom", "phone"]
        .into_iter()
        .map(|name| (name, many(limits.values_per_parameter, "x")))
        .collect();
    assert!(
        costly("Patient", &spread)
            .to_string()
            .contains("values exceed")
    );
    // Parameters.
    let criteria: Vec<(&str, String)> = (0..3_000)
        .map(|n| ("name:contains", format!("a{n}")))
        .collect();
    assert!(
        costly("Patient", &criteria)
            .to_string()
            .contains("parameters exceed")
    );
    // Sort keys, counted as written.
    let sort = many(96, "birthdate");
    assert!(
        costly("Patient", &[("_sort", sort)])
            .to_string()
            .contains("_sort keys")
    );
    // Includes count once duplicates are gone: 200 of the same one is one.
    // The same criterion 3,000 times is one criterion.
    let repeated: Vec<(&str, &str)> = (0..3_000).map(|_| ("name:contains", "ab")).collect();
    assert_eq!(search("Patient", &repeated).unwrap().criteria.len(), 1);
    let same: Vec<(&str, String)> = (0..200)
        .map(|_| ("_revinclude:iterate", "Observation:subject".into()))
        .collect();
    let query = parse(
        Registry::r4(),
        vec!["Patient".to_owned()],
        &same
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect::<Vec<_>>(),
        "http://localhost:8080/fhir",
    )
    .unwrap();
    assert_eq!(query.revincludes.len(), 1);
    let distinct: Vec<(&str, String)> = ["Observation", "Condition", "Encounter", "Procedure"]
        .into_iter()
        .flat_map(|source| {
            ["subject", "patient", "*"]
                .into_iter()
                .flat_map(move |param| {
                    ["", ":Patient"]
                        .map(|target| ("_revinclude", format!("{source}:{param}{target}")))
                })
        })
        .collect();
    assert!(distinct.len() > limits.includes);
    assert!(
        costly("Patient", &distinct)
            .to_string()
            .contains("_include")
    );
    // Chains and _has, each to its own depth.
    let chain = format!(
        "subject:Patient.{}name",
        "link:Patient.".repeat(limits.chain_depth)
    );
    assert!(
        costly("Observation", &[(chain.as_str(), "x".into())])
            .to_string()
            .contains("chain depth")
    );
    let has = format!("{}name", "_has:Patient:link:".repeat(limits.has_depth + 1));
    assert!(
        costly("Patient", &[(has.as_str(), "x".into())])
            .to_string()
            .contains("_has depth")
    );
}

#[test]
fn searches_within_the_budget_parse() {
    let limits = Limits::default();
    let values = vec!["x"; limits.values_per_parameter].join(",");
    let sort = vec!["birthdate"; limits.sort_keys].join(",");
    let chain = format!(
        "subject:Patient.{}name",
        "link:Patient.".repeat(limits.chain_depth - 1)
    );
    let query = search(
        "Observation",
        &[("_id", &values), ("_sort", &sort), (&chain, "x")],
    );
    assert!(query.is_ok(), "{query:?}");
}

#[test]
fn a_nul_character_in_a_name_or_value_is_refused() {
    for pair in [
        ("address-city:exact", "a\0b"),
        ("_profile", "x\0y"),
        ("subject.birthdate\0", "2020"),
        ("url:below", "http://,x\0y"),
    ] {
        let error = search("Patient", &[pair]).unwrap_err();
        assert_eq!(error.kind, QueryErrorKind::Invalid, "{pair:?}");
        assert!(error.to_string().contains("NUL"), "{pair:?}: {error}");
    }
}
