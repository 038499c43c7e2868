//! Every FHIRPath expression of the official R4 SearchParameter definitions, parsed and evaluated.
//!
//! The definitions come from `schemas/fhir/search-parameters.json` (what the server indexes
//! with). Each expression is evaluated on every resource of its base types from the Synthea
//! sample bundles (the repository's `testdata/synthea-r4.tar.xz`, which the test command unpacks
//! into `target/testdata`, or wherever `FHIR_TEST_DATA_DIR` points; without them it fails), and on
//! resources generated from the R4 element model for every base type, so that definitions
//! for types Synthea never produces are exercised too. Besides "no evaluation error", the
//! tests check that results carry the FHIR types the indexer needs for each parameter type.

// Test helpers outside `#[test]` functions panic on broken fixtures by design, and the figures
// are printed for the ADR.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fhir_model::{ElementModel, TypeKind};
use fhirpath::{Expression, Item};
use serde_json::{Map, Value, json};

/// One SearchParameter definition with its compiled expressions.
struct Definition {
    id: String,
    kind: String,
    bases: Vec<String>,
    expression: Expression,
    /// Composite components, evaluated on each result of `expression`.
    components: Vec<Expression>,
    /// For expressions that are only plain paths (`A.b.c | B.d`), each path's segments: these
    /// are checked against a naive JSON walk.
    plain_paths: Option<Vec<Vec<String>>>,
}

/// `Patient.name | Person.name` as [["Patient", "name"], ["Person", "name"]]; `None` if any
/// branch is more than a dotted path.
fn plain_paths(source: &str) -> Option<Vec<Vec<String>>> {
    source
        .split(" | ")
        .map(|branch| {
            let plain = branch.contains('.')
                && branch.starts_with(|c: char| c.is_ascii_uppercase())
                && branch
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.');
            plain.then(|| branch.split('.').map(str::to_owned).collect())
        })
        .collect()
}

fn workspace_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn definitions_bundle() -> Value {
    let path = workspace_file("schemas/fhir/search-parameters.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Parses every definition that has an expression; panics with all failures at once.
fn definitions() -> Vec<Definition> {
    let bundle = definitions_bundle();
    let mut parsed = Vec::new();
    let mut failures = Vec::new();
    for entry in bundle["entry"].as_array().unwrap() {
        let resource = &entry["resource"];
        let Some(source) = resource["expression"].as_str() else {
            continue;
        };
        let mut components = Vec::new();
        for component in resource["component"].as_array().into_iter().flatten() {
            match Expression::parse(component["expression"].as_str().unwrap()) {
                Ok(expression) => components.push(expression),
                Err(error) => failures.push(error.to_string()),
            }
        }
        match Expression::parse(source) {
            Ok(expression) => parsed.push(Definition {
                plain_paths: plain_paths(source),
                id: resource["id"].as_str().unwrap().to_owned(),
                kind: resource["type"].as_str().unwrap().to_owned(),
                bases: resource["base"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|base| base.as_str().unwrap().to_owned())
                    .collect(),
                expression,
                components,
            }),
            Err(error) => failures.push(error.to_string()),
        }
    }
    assert!(failures.is_empty(), "unparsable: {failures:#?}");
    parsed
}

/// Whether a definition with `base` applies to resources of `resource_type`.
fn applies(base: &str, resource_type: &str) -> bool {
    ElementModel::global().is_subtype_of(resource_type, base)
}

/// The FHIR types a result may have for each search parameter type: what the indexer turns
/// into rows of that kind. A result of another type means a wrong type name.
fn allowed_types(kind: &str) -> &'static [&'static str] {
    match kind {
        "date" => &["date", "dateTime", "instant", "Period", "Timing"],
        "string" => &["string", "markdown", "HumanName", "Address"],
        "token" => &[
            "code",
            "Coding",
            "CodeableConcept",
            "Identifier",
            "ContactPoint",
            "boolean",
            "string",
            "uri",
            "id",
            "canonical",
            "Boolean",
        ],
        "reference" => &["Reference", "canonical", "uri"],
        "quantity" => &[
            "Quantity",
            "Age",
            "Duration",
            "Money",
            "Range",
            "SampledData",
        ],
        "number" => &["decimal", "integer", "positiveInt", "unsignedInt"],
        "uri" => &["uri", "url", "canonical", "oid", "uuid"],
        "composite" => &[],
        "special" => &["BackboneElement"],
        other => panic!("unknown search parameter type {other}"),
    }
}

/// Results of a type their parameter cannot index: the R4 expression takes every type of a
/// choice element (`Condition.onset` in `clinical-date` is also an Age, a Range or a string).
/// The indexer skips these; any other misfit is a wrong type name.
const KNOWN_MISFITS: [(&str, &str); 6] = [
    ("CarePlan-activity-date", "string"),
    ("Consent-source-reference", "Attachment"),
    ("RiskAssessment-probability", "Range"),
    ("clinical-date", "Age"),
    ("clinical-date", "Range"),
    ("clinical-date", "string"),
];

/// What evaluating many definitions on many resources gave.
#[derive(Default)]
struct Tally {
    evaluations: usize,
    component_evaluations: usize,
    elapsed: Duration,
    /// Definition id -> number of results over all resources.
    results: BTreeMap<String, usize>,
    /// (definition id, type name) of results whose type does not fit the parameter type.
    misfits: BTreeSet<(String, String)>,
    /// Definition ids whose results include a node of unknown type.
    untyped: BTreeSet<String>,
    /// Evaluation errors.
    errors: Vec<String>,
    /// Evaluations of plain-path definitions compared with the JSON walk.
    oracle_checks: usize,
    /// Plain-path definitions whose result count differs from the JSON walk.
    oracle_mismatches: Vec<String>,
}

/// Counts what a plain path reaches by walking the JSON directly with the element model's
/// public API: an exact key for plain elements, the typed keys (`valueQuantity`, ...) for
/// choice elements. Written independently of the evaluator's navigation, to compare with it.
struct PathOracle;

impl PathOracle {
    fn new() -> PathOracle {
        PathOracle
    }

    fn count(&self, resource: &Value, path: &[String]) -> usize {
        let model = ElementModel::global();
        let resource_type = resource["resourceType"].as_str().unwrap();
        if !applies(&path[0], resource_type) {
            return 0;
        }
        let mut current: Vec<(&Value, String)> = vec![(resource, resource_type.to_owned())];
        for segment in &path[1..] {
            let mut next = Vec::new();
            for (value, type_name) in current {
                let Some(element) = model.element(&type_name, segment) else {
                    continue;
                };
                for code in element.types() {
                    let key = if element.is_choice() {
                        format!("{segment}{}{}", code[..1].to_uppercase(), &code[1..])
                    } else {
                        segment.clone()
                    };
                    let child_type = element.backbone().unwrap_or(code).to_owned();
                    let items: Vec<&Value> = match value.get(&key) {
                        Some(Value::Array(items)) => items.iter().collect(),
                        Some(item) => vec![item],
                        None => Vec::new(),
                    };
                    for item in items.into_iter().filter(|item| !item.is_null()) {
                        next.push((item, child_type.clone()));
                    }
                    if !element.is_choice() {
                        break;
                    }
                }
            }
            current = next;
        }
        current.len()
    }
}

impl Tally {
    /// Evaluates every definition on every resource of its base types. Only the calls to the
    /// evaluator are timed, not the checks around them.
    fn run(&mut self, definitions: &[Definition], resources: &[Value], oracle: &PathOracle) {
        let mut applicable: HashMap<String, Vec<&Definition>> = HashMap::new();
        for resource in resources {
            let resource_type = resource["resourceType"].as_str().unwrap();
            let definitions = applicable
                .entry(resource_type.to_owned())
                .or_insert_with(|| {
                    definitions
                        .iter()
                        .filter(|d| d.bases.iter().any(|b| applies(b, resource_type)))
                        .collect()
                });
            for definition in definitions.iter() {
                self.evaluations += 1;
                let start = Instant::now();
                let result = definition.expression.evaluate(resource);
                self.elapsed += start.elapsed();
                match result {
                    Ok(items) => {
                        *self.results.entry(definition.id.clone()).or_default() += items.len();
                        self.check_types(definition, &items);
                        if let Some(paths) = &definition.plain_paths {
                            self.oracle_checks += 1;
                            let expected: usize =
                                paths.iter().map(|path| oracle.count(resource, path)).sum();
                            if expected != items.len() {
                                self.oracle_mismatches.push(format!(
                                    "{} on {resource_type}/{}: {} results, the JSON walk finds {expected}",
                                    definition.id,
                                    resource["id"],
                                    items.len()
                                ));
                            }
                        }
                        self.run_components(definition, resource, &items);
                    }
                    Err(error) => self.errors.push(format!("{}: {error}", definition.id)),
                }
            }
        }
    }

    fn run_components(&mut self, definition: &Definition, resource: &Value, items: &[Item<'_>]) {
        for item in items {
            for component in &definition.components {
                self.component_evaluations += 1;
                let start = Instant::now();
                let result = component.evaluate_on(resource, item);
                self.elapsed += start.elapsed();
                match result {
                    Ok(values) => {
                        for value in &values {
                            if matches!(
                                value,
                                Item::Node {
                                    type_name: None,
                                    ..
                                }
                            ) {
                                self.untyped
                                    .insert(format!("{} / {component}", definition.id));
                            }
                        }
                    }
                    Err(error) => self
                        .errors
                        .push(format!("{} component: {error}", definition.id)),
                }
            }
        }
    }

    fn check_types(&mut self, definition: &Definition, items: &[Item<'_>]) {
        for item in items {
            let Some(type_name) = item.type_name() else {
                self.untyped.insert(definition.id.clone());
                continue;
            };
            let model = ElementModel::global();
            let fits = match definition.kind.as_str() {
                // A composite's base is the resource, a backbone element or a data type
                // (`useContext`, a UsageContext).
                "composite" => {
                    type_name == "BackboneElement"
                        || model
                            .type_definition(type_name)
                            .is_some_and(|t| t.kind() != TypeKind::PrimitiveType)
                }
                // `Bundle.entry[0].resource` (Bundle-composition) is a resource itself.
                "reference" if model.is_resource_type(type_name) => true,
                kind => allowed_types(kind).contains(&type_name),
            };
            if !fits {
                self.misfits
                    .insert((definition.id.clone(), type_name.to_owned()));
            }
        }
    }

    fn non_empty(&self) -> usize {
        self.results.values().filter(|&&count| count > 0).count()
    }

    fn assert_clean(&self) {
        assert!(
            self.errors.is_empty(),
            "{} evaluation errors, first: {:#?}",
            self.errors.len(),
            &self.errors[..self.errors.len().min(20)]
        );
        let unexpected: Vec<_> = self
            .misfits
            .iter()
            .filter(|(id, type_name)| !KNOWN_MISFITS.contains(&(id.as_str(), type_name.as_str())))
            .collect();
        assert!(
            unexpected.is_empty(),
            "results of unexpected types: {unexpected:#?}"
        );
        assert!(
            self.oracle_mismatches.is_empty(),
            "{} results differ from the JSON walk, first: {:#?}",
            self.oracle_mismatches.len(),
            &self.oracle_mismatches[..self.oracle_mismatches.len().min(20)]
        );
        assert!(
            self.untyped.is_empty(),
            "results without a type: {:#?}",
            self.untyped
        );
    }

    fn report(&self, what: &str, resources: usize) {
        let seconds = self.elapsed.as_secs_f64();
        println!(
            "{what}: {} evaluations of search parameter expressions (+{} composite components) on {resources} resources in {:.3} s: {:.1} µs per evaluation, {:.0} resources/s; {} of {} definitions gave results; {} evaluations of plain paths matched the JSON walk",
            self.evaluations,
            self.component_evaluations,
            seconds,
            seconds * 1e6 / self.evaluations.max(1) as f64,
            resources as f64 / seconds.max(1e-9),
            self.non_empty(),
            self.results.len(),
            self.oracle_checks,
        );
    }
}

#[test]
fn every_expression_of_the_r4_definitions_parses() {
    let bundle = definitions_bundle();
    let entries = bundle["entry"].as_array().unwrap();
    let with_expression = entries
        .iter()
        .filter(|entry| entry["resource"]["expression"].is_string())
        .count();
    let components: usize = entries
        .iter()
        .map(|entry| {
            entry["resource"]["component"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    let start = Instant::now();
    let definitions = definitions();
    let elapsed = start.elapsed();
    let parsed_components: usize = definitions.iter().map(|d| d.components.len()).sum();
    println!(
        "{} SearchParameter definitions, {with_expression} with an expression: {} expressions and {parsed_components} composite component expressions parsed in {:.1} ms",
        entries.len(),
        definitions.len(),
        elapsed.as_secs_f64() * 1e3
    );
    assert_eq!(entries.len(), 1378);
    assert_eq!(definitions.len(), with_expression);
    assert_eq!(parsed_components, components);
    // The three without one are `_text`, `_content` and `_query`, which are not FHIRPath.
    assert_eq!(entries.len() - with_expression, 3);
}

// ---------------------------------------------------------------------------------------------
// Synthea

/// The resources of every bundle, with `urn:uuid:` references rewritten to `Type/id` the way
/// a transaction does before anything is indexed; and the same resources as the files hold
/// them.
fn synthea_resources(dir: &Path) -> (Vec<Value>, Vec<Value>) {
    let mut rewritten = Vec::new();
    let mut raw = Vec::new();
    for file in test_support::synthea::bundle_files(dir) {
        let bundle: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let entries = bundle["entry"].as_array().unwrap();
        let mut targets = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let resource = &entry["resource"];
            let resource_type = resource["resourceType"].as_str().unwrap();
            let id = resource["id"]
                .as_str()
                .map_or_else(|| format!("e{index}"), str::to_owned);
            if let Some(full_url) = entry["fullUrl"].as_str() {
                targets.insert(full_url.to_owned(), format!("{resource_type}/{id}"));
            }
        }
        for entry in entries {
            let mut resource = entry["resource"].clone();
            raw.push(resource.clone());
            rewrite_references(&mut resource, &targets);
            rewritten.push(resource);
        }
    }
    (rewritten, raw)
}

fn rewrite_references(value: &mut Value, targets: &HashMap<String, String>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                if key == "reference"
                    && let Some(target) = child.as_str().and_then(|r| targets.get(r))
                {
                    *child = Value::String(target.clone());
                    continue;
                }
                rewrite_references(child, targets);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_references(item, targets)),
        _ => {}
    }
}

fn evaluate_one<'a>(expression: &str, resource: &'a Value) -> Vec<Item<'a>> {
    Expression::parse(expression)
        .unwrap()
        .evaluate(resource)
        .unwrap()
}

#[test]
fn every_expression_evaluates_on_the_synthea_resources() {
    let dir = test_support::synthea::data_dir();
    let definitions = definitions();
    let (resources, raw) = synthea_resources(&dir);
    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
    for resource in &resources {
        *by_type
            .entry(resource["resourceType"].as_str().unwrap())
            .or_default() += 1;
    }
    println!("{} resources: {by_type:?}", resources.len());

    let oracle = PathOracle::new();
    let mut tally = Tally::default();
    tally.run(&definitions, &resources, &oracle);
    tally.report("Synthea", resources.len());
    tally.assert_clean();

    // References as the files have them (`urn:uuid:`) resolve to nothing, without errors:
    // every union branch that resolves finds nothing on the raw resources.
    let mut resolving_branches = 0;
    for definition in &definitions {
        for branch in definition.expression.source().split(" | ") {
            if !branch.contains("resolve()") {
                continue;
            }
            let expression = Expression::parse(branch).unwrap();
            resolving_branches += 1;
            for resource in &raw {
                let results = expression.evaluate(resource).unwrap();
                assert!(results.is_empty(), "{branch} found {results:?}");
            }
        }
    }
    assert!(resolving_branches >= 50, "{resolving_branches}");

    let results = |id: &str| tally.results.get(id).copied().unwrap_or(0);
    let count_of = |resource_type: &str| by_type.get(resource_type).copied().unwrap_or(0);
    // Spot checks of parameters whose result count follows from the data.
    assert!(results("individual-given") > 0);
    assert!(results("clinical-code") >= count_of("Observation"));
    assert!(results("Observation-value-quantity") > 0);
    assert!(results("clinical-patient") > 0);
    assert!(results("clinical-encounter") > 0);
    // Synthea fills in about half of what the definitions index; the rest is covered by the
    // generated resources below.
    assert!(
        tally.non_empty() >= 100,
        "only {} definitions gave results on Synthea",
        tally.non_empty()
    );

    let patients: Vec<&Value> = resources
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .collect();
    assert!(!patients.is_empty());
    for patient in &patients {
        let names = evaluate_one("Patient.name", patient);
        assert!(!names.is_empty());
        assert!(names.iter().all(|n| n.type_name() == Some("HumanName")));
    }
    let mut quantities = 0;
    let mut encounter_patients = 0;
    for resource in &resources {
        match resource["resourceType"].as_str().unwrap() {
            "Observation" => {
                let codes = evaluate_one("Observation.code", resource);
                assert_eq!(codes.len(), 1);
                assert_eq!(codes[0].type_name(), Some("CodeableConcept"));
                let values = evaluate_one("Observation.value as Quantity", resource);
                assert!(values.iter().all(|v| v.type_name() == Some("Quantity")));
                assert_eq!(
                    values.len(),
                    usize::from(resource.get("valueQuantity").is_some())
                );
                quantities += values.len();
            }
            "Encounter" => {
                let subjects =
                    evaluate_one("Encounter.subject.where(resolve() is Patient)", resource);
                assert_eq!(subjects.len(), 1, "{resource}");
                assert_eq!(subjects[0].type_name(), Some("Reference"));
                encounter_patients += 1;
            }
            _ => {}
        }
    }
    assert!(quantities > 0);
    assert_eq!(encounter_patients, count_of("Encounter"));
}

// ---------------------------------------------------------------------------------------------
// Resources generated from the element model, for every base type

/// How many differently filled resources are generated per type: choice elements take their
/// n-th type in the n-th resource, and codes and reference targets rotate the same way.
const VARIANTS: usize = 12;
/// How deep data types are filled in (Reference -> Identifier -> Reference ... would not end).
const MAX_DEPTH: usize = 5;

/// Builds resources of one type with every element filled in, from the element model.
struct Generator<'m> {
    model: &'m ElementModel,
    /// Values for `code` elements: the codes the definitions filter on (`system = 'email'`).
    codes: Vec<String>,
    /// Resource types that references point to: those the definitions test (`resolve() is X`).
    targets: Vec<String>,
}

impl Generator<'_> {
    fn resource(&self, resource_type: &str, variant: usize) -> Value {
        let mut object = Map::new();
        object.insert("resourceType".to_owned(), json!(resource_type));
        if let Value::Object(fields) = self.structure(resource_type, variant, 0) {
            object.extend(fields);
        }
        Value::Object(object)
    }

    /// An object with every element of `type_name` (a type or backbone path).
    fn structure(&self, type_name: &str, variant: usize, depth: usize) -> Value {
        let definition = self.model.type_definition(type_name).unwrap();
        let mut object = Map::new();
        for element in definition.elements() {
            if matches!(element.name(), "extension" | "modifierExtension") && depth > 0 {
                continue;
            }
            let types = element.types();
            let code = &types[variant % types.len()];
            let primitive = element.backbone().is_none()
                && self.model.type_definition(code).unwrap().kind() == TypeKind::PrimitiveType;
            // Deep down only what is required, so that recursive structures end.
            if depth >= MAX_DEPTH && element.min() == 0 && !primitive {
                continue;
            }
            let value = if element.name() == "resourceType" {
                // ExampleScenario.instance names a resource type: the validator checks it.
                json!("Patient")
            } else {
                self.value(element.backbone(), code, variant, depth)
            };
            let value = if element.is_many() {
                json!([value])
            } else {
                value
            };
            object.insert(element.json_name(code).into_owned(), value);
        }
        Value::Object(object)
    }

    fn value(&self, backbone: Option<&str>, code: &str, variant: usize, depth: usize) -> Value {
        if let Some(backbone) = backbone {
            return self.structure(backbone, variant, depth + 1);
        }
        match code {
            "Resource" => {
                return json!({"resourceType": "Basic", "id": "c1", "code": {"text": "x"}});
            }
            "Reference" => {
                let target = &self.targets[variant % self.targets.len()];
                return json!({"reference": format!("{target}/t{variant}"), "display": "x"});
            }
            "Extension" => return json!({"url": "http://example.org/x", "valueString": "x"}),
            _ => {}
        }
        let definition = self.model.type_definition(code).unwrap();
        if definition.kind() == TypeKind::Resource {
            // An element typed with a resource (`Bundle.entry.response.outcome`).
            let mut resource = self.structure(code, variant, depth + 1);
            resource["resourceType"] = json!(code);
            return resource;
        }
        if definition.kind() != TypeKind::PrimitiveType {
            return self.structure(code, variant, depth + 1);
        }
        match code {
            "boolean" => json!(variant.is_multiple_of(2)),
            "integer" | "positiveInt" => json!(1 + variant),
            "unsignedInt" => json!(variant),
            "decimal" => serde_json::from_str("1.50").unwrap(),
            "date" => json!("2020-01-02"),
            "dateTime" => json!("2020-01-02T03:04:05Z"),
            "instant" => json!("2020-01-02T03:04:05.678Z"),
            "time" => json!("03:04:05"),
            "code" => json!(self.codes[variant % self.codes.len()]),
            "uri" | "url" | "canonical" => {
                json!(format!("http://example.org/fhir/ValueSet/v{variant}"))
            }
            "oid" => json!("urn:oid:1.2.3"),
            "uuid" => json!("urn:uuid:9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"),
            "id" => json!("abc"),
            "base64Binary" => json!("AAAA"),
            "xhtml" => json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"),
            _ => json!("text"),
        }
    }
}

/// Every quoted string the definitions compare with, and every type they `resolve() is`.
fn literals(definitions: &[Definition]) -> (Vec<String>, Vec<String>) {
    let mut codes = BTreeSet::new();
    let mut targets = BTreeSet::new();
    for definition in definitions {
        let source = definition.expression.source();
        for (index, part) in source.split('\'').enumerate() {
            if index % 2 == 1 {
                codes.insert(part.to_owned());
            }
        }
        for part in source.split("resolve() is ").skip(1) {
            let name: String = part
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            targets.insert(name);
        }
    }
    (codes.into_iter().collect(), targets.into_iter().collect())
}

#[test]
fn every_expression_evaluates_on_generated_resources_of_every_base_type() {
    let definitions = definitions();
    let model = ElementModel::global();
    let (codes, targets) = literals(&definitions);
    let generator = Generator {
        model,
        codes,
        targets,
    };
    let mut resource_types: BTreeSet<String> = BTreeSet::new();
    for definition in &definitions {
        for base in &definition.bases {
            if model.is_resource_type(base) {
                resource_types.insert(base.clone());
            } else {
                // `Resource` and `DomainResource`: one concrete type is enough for them.
                resource_types.insert("Basic".to_owned());
            }
        }
    }
    let resources: Vec<Value> = resource_types
        .iter()
        .flat_map(|t| (0..VARIANTS).map(|variant| generator.resource(t, variant)))
        .collect();
    // The generated resources fit the R4 JSON Schema, apart from codes outside their required
    // value sets: the model they come from agrees with the schema incoming resources meet.
    for resource in resources.iter().step_by(VARIANTS) {
        // fhir-model's validator takes any object with a `resourceType` for a nested resource,
        // and `ExampleScenario.instance` has a `resourceType` element: it cannot pass.
        if resource["resourceType"] == "ExampleScenario" {
            continue;
        }
        if let Err(issues) = fhir_model::check_resource(resource) {
            let structural: Vec<_> = issues
                .iter()
                .filter(|issue| {
                    !issue
                        .diagnostics
                        .as_deref()
                        .is_some_and(|d| d.contains("is not one of"))
                })
                .collect();
            assert!(
                structural.is_empty(),
                "{}: {structural:#?}",
                resource["resourceType"]
            );
        }
    }

    let oracle = PathOracle::new();
    let mut tally = Tally::default();
    tally.run(&definitions, &resources, &oracle);
    tally.report("Generated", resources.len());
    tally.assert_clean();

    // Every variant of every choice element is generated: all the known misfits show up.
    let misfits: Vec<(&str, &str)> = tally
        .misfits
        .iter()
        .map(|(id, type_name)| (id.as_str(), type_name.as_str()))
        .collect();
    assert_eq!(misfits, KNOWN_MISFITS);

    let every_base_covered = definitions.iter().all(|d| {
        d.bases.iter().all(|base| {
            resources
                .iter()
                .any(|r| applies(base, r["resourceType"].as_str().unwrap()))
        })
    });
    assert!(every_base_covered);
    let empty: Vec<(&str, &str)> = definitions
        .iter()
        .filter(|d| tally.results.get(&d.id).copied().unwrap_or(0) == 0)
        .map(|d| (d.id.as_str(), d.expression.source()))
        .collect();
    println!(
        "{} definitions gave no result on generated resources: {empty:#?}",
        empty.len()
    );
    assert!(
        empty.is_empty(),
        "definitions that found nothing: {empty:#?}"
    );
}
