//! Evaluator tests on small inline resources, one group per construct.

use serde_json::{Value, json};

use crate::{Expression, Item};

fn eval<'a>(expression: &str, resource: &'a Value) -> Vec<Item<'a>> {
    Expression::parse(expression)
        .unwrap_or_else(|error| panic!("{error}"))
        .evaluate(resource)
        .unwrap_or_else(|error| panic!("{error}"))
}

/// The results as (type name, JSON) pairs, computed values as their JSON equivalent.
fn typed(items: &[Item<'_>]) -> Vec<(Option<String>, Value)> {
    items
        .iter()
        .map(|item| {
            let value = match item {
                Item::Node { value, .. } => (*value).clone(),
                Item::Boolean(b) => json!(b),
                Item::String(s) => json!(s),
                Item::Integer(i) => json!(i),
                Item::Decimal(d) => json!(d),
                Item::Resolved { reference, .. } => json!(reference),
            };
            (item.type_name().map(str::to_owned), value)
        })
        .collect()
}

fn types(items: &[Item<'_>]) -> Vec<String> {
    items
        .iter()
        .map(|item| item.type_name().unwrap_or("?").to_owned())
        .collect()
}

fn booleans(items: &[Item<'_>]) -> Vec<bool> {
    items
        .iter()
        .map(|item| match item {
            Item::Boolean(value) => *value,
            other => panic!("not a Boolean: {other:?}"),
        })
        .collect()
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "active": true,
        "birthDate": "1970-01-01",
        "_birthDate": {"extension": [{"url": "http://example.org/ignored"}]},
        "deceasedDateTime": "2020-02-02T10:00:00Z",
        "name": [
            {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
            {"use": "usual", "given": ["Jim"]}
        ],
        "telecom": [
            {"system": "phone", "value": "555-1234"},
            {"system": "email", "value": "peter@example.org"}
        ],
        "extension": [
            {"url": "http://example.org/race", "valueCoding": {"code": "2106-3"}},
            {"url": "http://example.org/birthsex", "valueCode": "M"}
        ],
        "generalPractitioner": [{"reference": "Practitioner/dr1"}],
        "managingOrganization": {"reference": "http://example.org/fhir/Organization/o1/_history/3"}
    })
}

fn observation() -> Value {
    json!({
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}], "text": "BP"},
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "urn:uuid:4a3b2c1d-0000-4000-8000-000000000000"},
        "performer": [{"reference": "#pr1"}, {"reference": "Practitioner/x"}],
        "effectiveDateTime": "2021-05-01T10:00:00Z",
        "valueQuantity": {"value": 120.50, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
        "component": [
            {"code": {"text": "systolic"}, "valueQuantity": {"value": 120}},
            {"code": {"text": "note"}, "valueString": "fine"},
            {"code": {"text": "flag"}, "valueCodeableConcept": {"text": "H"}}
        ],
        "contained": [
            {"resourceType": "Practitioner", "id": "pr1", "name": [{"family": "Who"}]}
        ]
    })
}

#[test]
fn paths_start_with_the_resource_type_and_flatten_arrays() {
    let patient = patient();
    assert_eq!(
        typed(&eval("Patient.name.given", &patient)),
        vec![
            (Some("string".into()), json!("Peter")),
            (Some("string".into()), json!("James")),
            (Some("string".into()), json!("Jim")),
        ]
    );
    assert_eq!(
        types(&eval("Patient.name", &patient)),
        ["HumanName", "HumanName"]
    );
    assert_eq!(types(&eval("Patient", &patient)), ["Patient"]);
    // Another type name at the start matches nothing; abstract ancestors match.
    assert!(eval("Observation.status", &patient).is_empty());
    assert_eq!(types(&eval("Resource.id", &patient)), ["string"]);
    assert_eq!(
        types(&eval("DomainResource.extension", &patient)),
        ["Extension", "Extension"]
    );
    // Without the type name, names are children of the input.
    assert_eq!(types(&eval("birthDate", &patient)), ["date"]);
    assert!(eval("Patient.nothing.here", &patient).is_empty());
}

#[test]
fn choice_elements_are_found_and_typed_by_the_present_variant() {
    let observation = observation();
    assert_eq!(
        types(&eval("Observation.value", &observation)),
        ["Quantity"]
    );
    assert_eq!(
        types(&eval("Observation.effective", &observation)),
        ["dateTime"]
    );
    assert_eq!(
        types(&eval("Observation.component.value", &observation)),
        ["Quantity", "string", "CodeableConcept"]
    );
    // The JSON name reaches the same node.
    assert_eq!(
        types(&eval("Observation.valueQuantity", &observation)),
        ["Quantity"]
    );
    assert_eq!(types(&eval("Patient.deceased", &patient())), ["dateTime"]);
    assert_eq!(
        types(&eval("Observation.value.value", &observation)),
        ["decimal"]
    );
}

#[test]
fn as_and_of_type_keep_only_the_named_type() {
    let observation = observation();
    for expression in [
        "Observation.value as Quantity",
        "(Observation.value as Quantity)",
        "Observation.value.as(Quantity)",
        "Observation.value.ofType(Quantity)",
        "Observation.value.ofType(FHIR.Quantity)",
    ] {
        let items = eval(expression, &observation);
        assert_eq!(types(&items), ["Quantity"], "{expression}");
    }
    assert!(eval("Observation.value as CodeableConcept", &observation).is_empty());
    assert_eq!(
        types(&eval(
            "Observation.component.value as Quantity",
            &observation
        )),
        ["Quantity"]
    );
    assert_eq!(
        typed(&eval(
            "(Observation.component.value as CodeableConcept).text",
            &observation
        )),
        vec![(Some("string".into()), json!("H"))]
    );
    // `DateTime` (system type) matches FHIR dateTime, as R4's composite definitions expect.
    assert_eq!(
        types(&eval("Observation.effective.as(DateTime)", &observation)),
        ["dateTime"]
    );
    assert_eq!(
        types(&eval("Observation.effective as dateTime", &observation)),
        ["dateTime"]
    );
    assert!(eval("Observation.effective as Period", &observation).is_empty());
    // Exact types: a code is not a string here, an Age is not a Quantity.
    assert!(eval("Observation.status as string", &observation).is_empty());
    assert_eq!(
        types(&eval("Observation.status as code", &observation)),
        ["code"]
    );
    let condition = json!({"resourceType": "Condition", "onsetAge": {"value": 40, "unit": "a"}});
    assert_eq!(types(&eval("Condition.onset.as(Age)", &condition)), ["Age"]);
    assert!(eval("Condition.onset.as(Quantity)", &condition).is_empty());
}

#[test]
fn is_tests_a_single_item() {
    let observation = observation();
    assert_eq!(
        booleans(&eval("Observation.value is Quantity", &observation)),
        [true]
    );
    assert_eq!(
        booleans(&eval("Observation.value.is(Range)", &observation)),
        [false]
    );
    assert_eq!(
        booleans(&eval("Observation is DomainResource", &observation)),
        [true]
    );
    assert!(eval("Observation.method is CodeableConcept", &observation).is_empty());
    let error = Expression::parse("Observation.component.value is Quantity")
        .unwrap()
        .evaluate(&observation)
        .unwrap_err();
    assert!(error.reason.contains("single item"), "{error}");
}

#[test]
fn where_filters_on_criteria_evaluated_per_item() {
    let patient = patient();
    assert_eq!(
        typed(&eval("Patient.telecom.where(system='email')", &patient)),
        vec![(
            Some("ContactPoint".into()),
            json!({"system": "email", "value": "peter@example.org"})
        )]
    );
    assert!(eval("Patient.telecom.where(system='fax')", &patient).is_empty());
    assert_eq!(
        eval("Patient.name.where(given = 'Jim').use", &patient)
            .iter()
            .map(|i| i.as_str().unwrap().to_owned())
            .collect::<Vec<_>>(),
        ["usual"]
    );
    assert_eq!(
        eval(
            "Patient.name.where($this.use = 'official').family",
            &patient
        )[0]
        .as_str(),
        Some("Chalmers")
    );
    // Criteria that yield several items are an error (FHIRPath singleton evaluation).
    assert!(
        Expression::parse("Patient.name.where(given)")
            .unwrap()
            .evaluate(&patient)
            .is_err()
    );
}

#[test]
fn resolve_gives_the_type_of_references() {
    let observation = observation();
    assert_eq!(
        typed(&eval(
            "Observation.subject.where(resolve() is Patient)",
            &observation
        )),
        vec![(Some("Reference".into()), json!({"reference": "Patient/p1"}))]
    );
    assert!(
        eval(
            "Observation.subject.where(resolve() is Group)",
            &observation
        )
        .is_empty()
    );
    // urn:uuid references carry no type: nothing to resolve.
    assert!(eval("Observation.encounter.resolve()", &observation).is_empty());
    // Contained references resolve to the contained resource itself.
    let resolved = eval("Observation.performer.resolve()", &observation);
    assert_eq!(types(&resolved), ["Practitioner", "Practitioner"]);
    assert_eq!(resolved[0].as_json().unwrap()["id"], "pr1");
    assert!(matches!(
        resolved[1],
        Item::Resolved {
            reference: "Practitioner/x",
            ..
        }
    ));
    assert_eq!(
        types(&eval("Observation.performer.resolve().name", &observation)),
        ["HumanName"]
    );
    let patient = patient();
    assert_eq!(
        types(&eval("Patient.managingOrganization.resolve()", &patient)),
        ["Organization"]
    );
    assert_eq!(
        booleans(&eval(
            "Patient.generalPractitioner.resolve() is Practitioner",
            &patient
        )),
        [true]
    );
}

#[test]
fn extension_filters_by_url() {
    let patient = patient();
    let race = eval(
        "Patient.extension('http://example.org/race').value",
        &patient,
    );
    assert_eq!(types(&race), ["Coding"]);
    let sex = eval(
        "Patient.extension('http://example.org/birthsex').value",
        &patient,
    );
    assert_eq!(typed(&sex), vec![(Some("code".into()), json!("M"))]);
    assert!(eval("Patient.extension('http://example.org/none')", &patient).is_empty());
    // Extensions on primitives (`_birthDate`) are not looked at.
    assert!(
        eval(
            "Patient.birthDate.extension('http://example.org/ignored')",
            &patient
        )
        .is_empty()
    );
}

#[test]
fn exists_and_logic() {
    let patient = patient();
    let deceased = "Patient.deceased.exists() and Patient.deceased != false";
    assert_eq!(booleans(&eval(deceased, &patient)), [true]);
    let alive = json!({"resourceType": "Patient", "deceasedBoolean": false});
    assert_eq!(booleans(&eval(deceased, &alive)), [false]);
    let unknown = json!({"resourceType": "Patient"});
    assert_eq!(booleans(&eval(deceased, &unknown)), [false]);
    assert_eq!(
        booleans(&eval("Patient.name.exists(use = 'usual')", &patient)),
        [true]
    );
    assert_eq!(booleans(&eval("Patient.photo.empty()", &patient)), [true]);
    assert_eq!(booleans(&eval("Patient.active.not()", &patient)), [false]);
    assert_eq!(
        booleans(&eval("Patient.active or Patient.photo.exists()", &patient)),
        [true]
    );
    assert!(eval("Patient.photo.exists().not() and {}", &patient).is_empty());
    assert_eq!(booleans(&eval("{} or true", &patient)), [true]);
    assert_eq!(booleans(&eval("true xor true", &patient)), [false]);
    assert_eq!(booleans(&eval("false implies {}", &patient)), [true]);
    assert!(eval("true implies {}", &patient).is_empty());
}

#[test]
fn equality_comparison_and_membership() {
    let observation = observation();
    assert_eq!(
        booleans(&eval("Observation.value.value = 120.5", &observation)),
        [true]
    );
    assert_eq!(
        booleans(&eval("Observation.value.value > 100", &observation)),
        [true]
    );
    assert_eq!(
        booleans(&eval("Observation.value.value <= 120.49", &observation)),
        [false]
    );
    assert_eq!(
        booleans(&eval("Observation.status != 'final'", &observation)),
        [false]
    );
    assert_eq!(
        booleans(&eval("Observation.status ~ 'FINAL'", &observation)),
        [true]
    );
    assert_eq!(
        booleans(&eval(
            "Observation.status in ('final' | 'amended')",
            &observation
        )),
        [true]
    );
    assert_eq!(
        booleans(&eval(
            "('a' | 'b') contains Observation.status",
            &observation
        )),
        [false]
    );
    assert!(eval("Observation.method = 'x'", &observation).is_empty());
    assert_eq!(
        booleans(&eval("Observation.code = Observation.code", &observation)),
        [true]
    );
    let error = Expression::parse("Observation.effective < 'x'")
        .unwrap()
        .evaluate(&observation)
        .unwrap_err();
    assert!(error.reason.contains("not supported"), "{error}");
}

#[test]
fn union_removes_repeats_of_the_same_node() {
    let patient = patient();
    assert_eq!(eval("Patient.name | Patient.name", &patient).len(), 2);
    assert_eq!(
        eval("Patient.name.given | Patient.name.family", &patient).len(),
        4
    );
    assert_eq!(eval("'a' | 'b' | 'a'", &patient).len(), 2);
    assert_eq!(
        types(&eval("Patient.telecom | Observation.code", &patient)),
        ["ContactPoint", "ContactPoint"]
    );
    // Long collections take the hashed path: the same answers.
    let names: Vec<Value> = (0..40)
        .map(|i| json!({"family": format!("F{i}")}))
        .collect();
    let many = json!({"resourceType": "Patient", "name": names});
    assert_eq!(eval("Patient.name | Patient.name", &many).len(), 40);
    assert_eq!(
        eval("(Patient.name | Patient.name).distinct()", &many).len(),
        40
    );
    assert_eq!(
        eval("Patient.name.family | Patient.name.family.first()", &many).len(),
        40
    );
}

#[test]
fn indexers_and_subsetting_functions() {
    let patient = patient();
    let given = |expression: &str| {
        eval(expression, &patient)
            .iter()
            .map(|i| i.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(given("Patient.name[1].given"), ["Jim"]);
    assert_eq!(given("Patient.name.given[2]"), ["Jim"]);
    assert!(given("Patient.name[5].given").is_empty());
    assert_eq!(given("Patient.name.given.first()"), ["Peter"]);
    assert_eq!(given("Patient.name.given.last()"), ["Jim"]);
    assert_eq!(given("Patient.name.given.tail()"), ["James", "Jim"]);
    assert_eq!(given("Patient.name.given.skip(1).take(1)"), ["James"]);
    assert_eq!(
        given("Patient.name.first().given.select($this)"),
        ["Peter", "James"]
    );
    assert!(matches!(
        eval("Patient.name.given.count()", &patient)[..],
        [Item::Integer(3)]
    ));
    assert_eq!(given("('x' | 'y' | 'x').distinct()"), ["x", "y"]);
    assert_eq!(
        given("Patient.name.where(use = 'usual').given.single()"),
        ["Jim"]
    );
    assert!(
        Expression::parse("Patient.name.given.single()")
            .unwrap()
            .evaluate(&patient)
            .is_err()
    );
    assert_eq!(
        booleans(&eval("Patient.name.all(given.exists())", &patient)),
        [true]
    );
    assert_eq!(
        booleans(&eval("Patient.birthDate.hasValue()", &patient)),
        [true]
    );
    assert_eq!(
        booleans(&eval("Patient.name.hasValue()", &patient)),
        [false]
    );
}

#[test]
fn bundle_entries_are_typed_by_their_resource_type() {
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "document",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Composition", "status": "final"}},
            {"resource": {"resourceType": "Patient", "id": "p"}}
        ]
    });
    assert_eq!(
        types(&eval("Bundle.entry[0].resource", &bundle)),
        ["Composition"]
    );
    assert_eq!(
        types(&eval("Bundle.entry.resource", &bundle)),
        ["Composition", "Patient"]
    );
    assert_eq!(
        types(&eval("Bundle.entry[0].resource.status", &bundle)),
        ["code"]
    );
    assert_eq!(
        types(&eval("Bundle.entry", &bundle)),
        ["BackboneElement", "BackboneElement"]
    );
    assert_eq!(types(&eval("Bundle.entry.fullUrl", &bundle)), ["uri"]);
}

#[test]
fn environment_variables() {
    let observation = observation();
    assert_eq!(types(&eval("%resource", &observation)), ["Observation"]);
    assert_eq!(
        types(&eval("%resource.subject", &observation)),
        ["Reference"]
    );
    assert_eq!(
        types(&eval("%rootResource.code", &observation)),
        ["CodeableConcept"]
    );
    assert_eq!(
        eval("%ucum", &observation)[0].as_str(),
        Some("http://unitsofmeasure.org")
    );
    assert_eq!(
        booleans(&eval("Observation.value.system = %ucum", &observation)),
        [true]
    );
    assert_eq!(types(&eval("%context", &observation)), ["Observation"]);
    let quantity = eval("Observation.value", &observation);
    let context = Expression::parse("%context.unit").unwrap();
    assert_eq!(
        types(&context.evaluate_on(&observation, &quantity[0]).unwrap()),
        ["string"]
    );
}

#[test]
fn evaluate_on_runs_relative_to_a_node() {
    let observation = observation();
    let components = eval("Observation.component", &observation);
    assert_eq!(types(&components), ["BackboneElement"; 3]);
    let code = Expression::parse("code").unwrap();
    let value = Expression::parse("value.as(Quantity) | value.as(Range)").unwrap();
    let first_code = code.evaluate_on(&observation, &components[0]).unwrap();
    assert_eq!(types(&first_code), ["CodeableConcept"]);
    let first_value = value.evaluate_on(&observation, &components[0]).unwrap();
    assert_eq!(
        typed(&first_value),
        vec![(Some("Quantity".into()), json!({"value": 120}))]
    );
    assert!(
        value
            .evaluate_on(&observation, &components[1])
            .unwrap()
            .is_empty()
    );
    // The resource itself as focus, and %resource from inside a component.
    let root = eval("Observation", &observation);
    assert_eq!(
        types(&code.evaluate_on(&observation, &root[0]).unwrap()),
        ["CodeableConcept"]
    );
    let status = Expression::parse("%resource.status").unwrap();
    assert_eq!(
        types(&status.evaluate_on(&observation, &components[2]).unwrap()),
        ["code"]
    );
    // A node handed back with its data type name.
    let quantity = eval("Observation.value", &observation);
    let unit = Expression::parse("unit").unwrap();
    assert_eq!(
        types(&unit.evaluate_on(&observation, &quantity[0]).unwrap()),
        ["string"]
    );
    // A node that is not in the resource is still navigated, without types.
    let loose = json!({"code": {"text": "x"}});
    let item = Item::Node {
        value: &loose,
        type_name: None,
        code_system: None,
    };
    assert_eq!(
        types(&code.evaluate_on(&observation, &item).unwrap()),
        ["?"]
    );
}

#[test]
fn nested_backbone_and_content_references_are_typed() {
    let questionnaire = json!({
        "resourceType": "Questionnaire",
        "status": "draft",
        "item": [{"linkId": "1", "type": "group", "item": [
            {"linkId": "1.1", "type": "string", "enableWhen": [
                {"question": "1", "operator": "exists", "answerBoolean": true}
            ]}
        ]}]
    });
    assert_eq!(
        types(&eval("Questionnaire.item.item.linkId", &questionnaire)),
        ["string"]
    );
    assert_eq!(
        types(&eval(
            "Questionnaire.item.item.enableWhen.answer",
            &questionnaire
        )),
        ["boolean"]
    );
    let timing = json!({
        "resourceType": "MedicationRequest",
        "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"start": "2020"}}}}]
    });
    assert_eq!(
        types(&eval(
            "MedicationRequest.dosageInstruction.timing.repeat.bounds",
            &timing
        )),
        ["Period"]
    );
    assert_eq!(
        types(&eval(
            "MedicationRequest.dosageInstruction.timing.repeat",
            &timing
        )),
        ["Element"]
    );
}

#[test]
fn unknown_elements_are_reachable_but_untyped() {
    let odd = json!({"resourceType": "Patient", "vendorThing": {"a": 1}});
    assert_eq!(types(&eval("Patient.vendorThing.a", &odd)), ["?"]);
    let unknown_type = json!({"resourceType": "NotAResource", "x": 1});
    assert!(eval("NotAResource.x", &unknown_type).is_empty());
    assert_eq!(types(&eval("x", &unknown_type)), ["?"]);
}

#[test]
fn parse_errors_name_the_expression_and_position() {
    let error = Expression::parse("Patient.name.where(").unwrap_err();
    assert_eq!(error.expression, "Patient.name.where(");
    assert!(error.reason.contains("offset 19"), "{}", error.reason);
    assert!(Expression::parse("Patient.name + 1").is_err());
    assert!(Expression::parse("Patient.birthDate > @2020").is_err());
    assert!(Expression::parse("Patient.name.substring(1)").is_err());
    let expression = Expression::parse(" Patient.name ").unwrap();
    assert_eq!(expression.source(), " Patient.name ");
    assert_eq!(expression.to_string(), " Patient.name ");
}

#[test]
fn expressions_are_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expression>();
}
