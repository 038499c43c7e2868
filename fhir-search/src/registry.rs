//! The R4 search parameters, built from the official definitions embedded at compile time.
//!
//! `schemas/fhir/search-parameters.json` (the 1,378 SearchParameter resources of FHIR 4.0.1) is
//! parsed once, on first use, into [`Registry::r4`]. Every expression is compiled once, branch by
//! branch (see [`branch`]), and for each resource type the registry precomputes which parameters
//! and which branches apply, so indexing a resource does no lookups by name.
//!
//! Parameters based on `Resource` (`_id`, `_lastUpdated`, `_tag`, `_profile`, `_security`,
//! `_source`) and `DomainResource` apply to every type they cover. Definitions without an
//! expression cannot be indexed from the resource: `_text` and `_content` are full-text searches
//! (the index keeps [`crate::ResourceIndex::narrative`] and `content` for them instead), `_query`
//! names a named query. The other parameters of the search page (`_list`, `_has`, `_type`,
//! `_filter`, `_sort`, `_count`, `_include`, ...) have no SearchParameter resource at all: they are
//! search machinery or result controls, answered by the query service, see [`SERVER_PARAMETERS`].

pub mod branch;

use std::collections::HashMap;
use std::sync::LazyLock;

use fhir_model::ResourceType;
use fhirpath::Expression;
use serde::Deserialize;

const SEARCH_PARAMETERS_JSON: &str = include_str!("../../schemas/fhir/search-parameters.json");

/// Search parameters of the search page that no SearchParameter defines, and why they are not
/// indexed values.
pub const SERVER_PARAMETERS: &[(&str, &str)] = &[
    (
        "_list",
        "membership of a List resource, answered from the List's own index",
    ),
    (
        "_has",
        "reverse chaining, answered by joining other resources' links",
    ),
    ("_type", "a filter on resource type for system-level search"),
    (
        "_filter",
        "a query language evaluated over the other indexes",
    ),
    ("_sort", "a result control"),
    ("_count", "a result control"),
    ("_include", "a result control"),
    ("_revinclude", "a result control"),
    ("_summary", "a result control"),
    ("_elements", "a result control"),
    ("_contained", "a result control"),
    ("_containedType", "a result control"),
    ("_total", "a result control"),
];

/// The search parameter types of FHIR R4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

impl ParamType {
    /// The type from its FHIR code (`token`, `date`, ...).
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "number" => Self::Number,
            "date" => Self::Date,
            "string" => Self::String,
            "token" => Self::Token,
            "reference" => Self::Reference,
            "composite" => Self::Composite,
            "quantity" => Self::Quantity,
            "uri" => Self::Uri,
            "special" => Self::Special,
            _ => return None,
        })
    }

    /// The FHIR code of this type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Number => "number",
            Self::Date => "date",
            Self::String => "string",
            Self::Token => "token",
            Self::Reference => "reference",
            Self::Composite => "composite",
            Self::Quantity => "quantity",
            Self::Uri => "uri",
            Self::Special => "special",
        }
    }
}

/// Whether a parameter's values can be taken from a resource, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Indexing {
    /// The expression compiled: extraction evaluates it.
    Indexed,
    /// The definition has no expression (`_text`, `_content`, `_query`).
    NoExpression,
    /// The FHIRPath evaluator cannot compile the expression (the reason is its error).
    Unparsable(String),
    /// A composite whose component definition is not among the definitions.
    UnresolvedComponent(String),
}

/// One branch of a parameter's expression, compiled on its own.
#[derive(Debug, Clone)]
pub struct Branch {
    /// The resource type the branch starts with (`Observation`, or `Resource` for all types);
    /// `None` when it starts with an element name and applies to every base type.
    pub applies_to: Option<String>,
    /// The element path of the branch (`Observation.subject`), for `source_path`.
    pub source_path: String,
    /// The compiled branch.
    pub expression: Expression,
}

/// A component of a composite parameter, resolved to the parameter it names.
#[derive(Debug, Clone)]
pub struct Component {
    /// The component parameter's canonical URL, as the definition gives it.
    pub definition: String,
    /// The component parameter's code (`code`, `value-quantity`).
    pub code: String,
    /// The component parameter's type: its rows go to that type's table.
    pub kind: ParamType,
    /// The component parameter's reference targets (sorted), empty when unrestricted.
    pub target: Vec<String>,
    /// The expression, relative to each value of the composite's own expression.
    pub expression: String,
    /// The compiled expression (`None` when it did not compile; see the composite's `indexing`).
    pub compiled: Option<Expression>,
}

/// One search parameter as defined.
#[derive(Debug, Clone)]
pub struct SearchParam {
    pub code: String,
    pub url: String,
    pub kind: ParamType,
    pub base: Vec<String>,
    pub expression: Option<String>,
    /// Resource types a reference parameter may point to (sorted), empty when unrestricted.
    pub target: Vec<String>,
    /// Modifiers allowed, when the definition lists them (no R4 definition does).
    pub modifiers: Vec<String>,
    /// Comparators allowed (`eq`, `gt`, ...), when the definition lists them.
    pub comparators: Vec<String>,
    pub multiple_or: Option<bool>,
    pub multiple_and: Option<bool>,
    /// A composite's components, in definition order (the `component` index of its rows).
    pub components: Vec<Component>,
    pub indexing: Indexing,
    /// The whole expression, compiled (`None` when absent or not compilable).
    pub compiled: Option<Expression>,
    /// The expression's union branches, compiled one by one.
    pub branches: Vec<Branch>,
}

impl SearchParam {
    /// True when `resource_type` may be the target of this reference parameter.
    pub fn allows_target(&self, resource_type: &str) -> bool {
        self.target.is_empty()
            || self
                .target
                .binary_search_by(|t| t.as_str().cmp(resource_type))
                .is_ok()
    }
}

/// A parameter that applies to one resource type, with the branches that apply to it.
#[derive(Debug, Clone)]
pub(crate) struct Applicable {
    pub param: usize,
    pub branches: Vec<usize>,
}

/// Why the embedded definitions could not be read (only possible if the file is corrupted).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("search parameter bundle is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("search parameter `{url}` has an unknown type `{kind}`")]
    UnknownType { url: String, kind: String },
}

/// All search parameters, by resource type.
#[derive(Debug, Default)]
pub struct Registry {
    params: Vec<SearchParam>,
    by_type: HashMap<String, Vec<Applicable>>,
    by_type_code: HashMap<String, HashMap<String, usize>>,
    by_url: HashMap<String, usize>,
    /// For types not in the R4 list: the parameters based on `Resource`/`DomainResource`.
    generic: Vec<Applicable>,
}

static R4: LazyLock<Registry> = LazyLock::new(|| {
    match Registry::from_bundle_json(SEARCH_PARAMETERS_JSON) {
        Ok(registry) => registry,
        // The file is compiled into the binary and parsed by the tests: this cannot happen in a
        // build that passed them.
        Err(error) => panic!("embedded search-parameters.json: {error}"),
    }
});

#[derive(Deserialize)]
struct BundleJson {
    #[serde(default)]
    entry: Vec<EntryJson>,
}

#[derive(Deserialize)]
struct EntryJson {
    resource: Option<SearchParameterJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchParameterJson {
    #[serde(default)]
    code: String,
    #[serde(default)]
    url: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    base: Vec<String>,
    expression: Option<String>,
    #[serde(default)]
    target: Vec<String>,
    #[serde(default)]
    modifier: Vec<String>,
    #[serde(default)]
    comparator: Vec<String>,
    multiple_or: Option<bool>,
    multiple_and: Option<bool>,
    #[serde(default)]
    component: Vec<ComponentJson>,
}

#[derive(Deserialize)]
struct ComponentJson {
    #[serde(default)]
    definition: String,
    #[serde(default)]
    expression: String,
}

/// Types that are `Resource` but not `DomainResource`.
const NOT_DOMAIN_RESOURCES: [&str; 3] = ["Bundle", "Binary", "Parameters"];

impl Registry {
    /// The registry of the FHIR R4 (4.0.1) definitions, built on first use.
    pub fn r4() -> &'static Registry {
        &R4
    }

    /// Builds a registry from a Bundle of SearchParameter resources.
    pub fn from_bundle_json(json: &str) -> Result<Self, RegistryError> {
        let bundle: BundleJson = serde_json::from_str(json)?;
        let mut params = Vec::with_capacity(bundle.entry.len());
        let mut pending_components = Vec::with_capacity(bundle.entry.len());
        for definition in bundle.entry.into_iter().filter_map(|e| e.resource) {
            let Some(kind) = ParamType::from_code(&definition.kind) else {
                return Err(RegistryError::UnknownType {
                    url: definition.url,
                    kind: definition.kind,
                });
            };
            let (indexing, compiled, branches) = compile(definition.expression.as_deref());
            let mut target = definition.target;
            target.sort_unstable();
            params.push(SearchParam {
                code: definition.code,
                url: definition.url,
                kind,
                base: definition.base,
                expression: definition.expression,
                target,
                modifiers: definition.modifier,
                comparators: definition.comparator,
                multiple_or: definition.multiple_or,
                multiple_and: definition.multiple_and,
                components: Vec::new(),
                indexing,
                compiled,
                branches,
            });
            pending_components.push(definition.component);
        }

        let by_url: HashMap<String, usize> = params
            .iter()
            .enumerate()
            .map(|(n, p)| (p.url.clone(), n))
            .collect();
        for (n, components) in pending_components.into_iter().enumerate() {
            let mut resolved = Vec::with_capacity(components.len());
            let mut problem = None;
            for component in components {
                let Some(&target) = by_url.get(&component.definition) else {
                    problem.get_or_insert(Indexing::UnresolvedComponent(component.definition));
                    continue;
                };
                let compiled = match Expression::parse(&component.expression) {
                    Ok(expression) => Some(expression),
                    Err(error) => {
                        problem.get_or_insert(Indexing::Unparsable(error.to_string()));
                        None
                    }
                };
                resolved.push(Component {
                    definition: component.definition,
                    code: params[target].code.clone(),
                    kind: params[target].kind,
                    target: params[target].target.clone(),
                    expression: component.expression,
                    compiled,
                });
            }
            let param = &mut params[n];
            param.components = resolved;
            if let Some(problem) = problem
                && param.indexing == Indexing::Indexed
            {
                param.indexing = problem;
            }
        }

        let mut registry = Registry {
            params,
            by_url,
            ..Registry::default()
        };
        registry.index_by_type();
        Ok(registry)
    }

    fn index_by_type(&mut self) {
        let mut types: Vec<String> = ResourceType::all().map(|t| t.as_str().to_owned()).collect();
        for param in &self.params {
            for base in &param.base {
                if base != "Resource" && base != "DomainResource" && !types.contains(base) {
                    types.push(base.clone());
                }
            }
        }
        for resource_type in types {
            let applicable = self.compute_applicable(&resource_type);
            let codes = applicable
                .iter()
                .map(|a| (self.params[a.param].code.clone(), a.param))
                .collect();
            self.by_type_code.insert(resource_type.clone(), codes);
            self.by_type.insert(resource_type, applicable);
        }
        self.generic = self.compute_applicable("");
    }

    /// Parameters whose base includes `resource_type` (or `Resource`/`DomainResource`), with
    /// the branches that apply to it. `""` stands for a type outside R4.
    fn compute_applicable(&self, resource_type: &str) -> Vec<Applicable> {
        let domain = !NOT_DOMAIN_RESOURCES.contains(&resource_type);
        let mut applicable = Vec::new();
        for (n, param) in self.params.iter().enumerate() {
            let applies = param.base.iter().any(|base| {
                base == "Resource"
                    || (base == "DomainResource" && domain)
                    || (!resource_type.is_empty() && base == resource_type)
            });
            if !applies {
                continue;
            }
            let branches = param
                .branches
                .iter()
                .enumerate()
                .filter(|(_, b)| match b.applies_to.as_deref() {
                    None | Some("Resource" | "DomainResource") => true,
                    Some(start) => start == resource_type,
                })
                .map(|(m, _)| m)
                .collect();
            applicable.push(Applicable { param: n, branches });
        }
        applicable
    }

    /// Every parameter, in definition order.
    pub fn all(&self) -> &[SearchParam] {
        &self.params
    }

    /// The parameters that apply to `resource_type`, including those based on `Resource` and
    /// `DomainResource`.
    pub fn params_for<'r>(
        &'r self,
        resource_type: &str,
    ) -> impl Iterator<Item = &'r SearchParam> + 'r {
        self.applicable(resource_type)
            .iter()
            .map(|a| &self.params[a.param])
    }

    /// The parameter `code` of `resource_type`.
    pub fn get(&self, resource_type: &str, code: &str) -> Option<&SearchParam> {
        match self.by_type_code.get(resource_type) {
            Some(codes) => codes.get(code).map(|&n| &self.params[n]),
            None => self
                .generic
                .iter()
                .map(|a| &self.params[a.param])
                .find(|p| p.code == code),
        }
    }

    /// The parameter with canonical URL `url`.
    pub fn by_url(&self, url: &str) -> Option<&SearchParam> {
        self.by_url.get(url).map(|&n| &self.params[n])
    }

    /// Parameters whose values cannot be taken from a resource, with the reason.
    pub fn not_indexed(&self) -> impl Iterator<Item = (&SearchParam, &Indexing)> {
        self.params
            .iter()
            .filter(|p| p.indexing != Indexing::Indexed)
            .map(|p| (p, &p.indexing))
    }

    pub(crate) fn applicable(&self, resource_type: &str) -> &[Applicable] {
        self.by_type
            .get(resource_type)
            .map_or(self.generic.as_slice(), Vec::as_slice)
    }

    pub(crate) fn param(&self, index: usize) -> &SearchParam {
        &self.params[index]
    }
}

/// Compiles an expression whole and branch by branch. When a branch does not compile on its own
/// although the whole does (a split the evaluator reads differently), the whole expression is
/// kept as the single branch.
fn compile(expression: Option<&str>) -> (Indexing, Option<Expression>, Vec<Branch>) {
    let Some(source) = expression.filter(|s| !s.trim().is_empty()) else {
        return (Indexing::NoExpression, None, Vec::new());
    };
    let whole = match Expression::parse(source) {
        Ok(whole) => whole,
        Err(error) => return (Indexing::Unparsable(error.to_string()), None, Vec::new()),
    };
    let parts = branch::split_union(source);
    let mut branches = Vec::with_capacity(parts.len());
    for part in &parts {
        let Ok(expression) = Expression::parse(part) else {
            let source_path = parts
                .first()
                .map(|p| branch::element_path(p))
                .unwrap_or_default();
            let single = Branch {
                applies_to: None,
                source_path,
                expression: whole.clone(),
            };
            return (Indexing::Indexed, Some(whole), vec![single]);
        };
        let start = branch::leading_identifier(part);
        let applies_to = (start == "Resource"
            || start == "DomainResource"
            || ResourceType::parse(start).is_ok())
        .then(|| start.to_owned());
        branches.push(Branch {
            applies_to,
            source_path: branch::element_path(part),
            expression,
        });
    }
    (Indexing::Indexed, Some(whole), branches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_every_r4_definition() {
        let registry = Registry::r4();
        assert_eq!(registry.all().len(), 1378);
        let no_expression: Vec<&str> = registry
            .not_indexed()
            .filter(|(_, why)| **why == Indexing::NoExpression)
            .map(|(p, _)| p.code.as_str())
            .collect();
        assert_eq!(no_expression, vec!["_text", "_content", "_query"]);
    }

    #[test]
    fn every_expression_and_component_compiles() {
        let problems: Vec<String> = Registry::r4()
            .not_indexed()
            .filter(|(_, why)| **why != Indexing::NoExpression)
            .map(|(p, why)| format!("{}: {why:?}", p.url))
            .collect();
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn finds_parameters_by_type_and_code_including_resource_ones() {
        let registry = Registry::r4();
        let birthdate = registry.get("Patient", "birthdate").unwrap();
        assert_eq!(birthdate.kind, ParamType::Date);
        assert!(
            birthdate
                .expression
                .as_deref()
                .unwrap()
                .starts_with("Patient.birthDate | ")
        );

        let id = registry.get("Patient", "_id").unwrap();
        assert_eq!(id.base, vec!["Resource"]);
        assert!(registry.get("Bundle", "_lastUpdated").is_some());
        assert!(registry.get("Patient", "value-quantity").is_none());
        assert!(registry.get("NotAType", "_id").is_some());
        assert!(registry.get("NotAType", "name").is_none());

        let codes: Vec<&str> = registry
            .params_for("Patient")
            .map(|p| p.code.as_str())
            .collect();
        for code in [
            "name",
            "family",
            "identifier",
            "telecom",
            "_id",
            "_tag",
            "_text",
        ] {
            assert!(codes.contains(&code), "Patient lacks {code}");
        }
        // `_text` is based on DomainResource: Bundle is not one.
        assert!(registry.get("Bundle", "_text").is_none());
        assert!(registry.get("Bundle", "_content").is_some());
    }

    #[test]
    fn shared_expressions_apply_only_their_own_branch() {
        let registry = Registry::r4();
        let patient = registry.get("Observation", "patient").unwrap();
        assert!(patient.base.len() > 20, "one definition for many types");
        let applicable = registry
            .applicable("Observation")
            .iter()
            .find(|a| registry.param(a.param).code == "patient")
            .unwrap();
        assert_eq!(applicable.branches.len(), 1);
        let branch = &patient.branches[applicable.branches[0]];
        assert_eq!(branch.applies_to.as_deref(), Some("Observation"));
        assert_eq!(branch.source_path, "Observation.subject");
        assert_eq!(
            branch.expression.source(),
            "Observation.subject.where(resolve() is Patient)"
        );
        assert_eq!(patient.target, vec!["Patient"]);
        assert!(patient.allows_target("Patient"));
        assert!(!patient.allows_target("Device"));
    }

    #[test]
    fn composites_resolve_their_components() {
        let registry = Registry::r4();
        let composite = registry
            .get("Observation", "component-code-value-quantity")
            .unwrap();
        assert_eq!(composite.kind, ParamType::Composite);
        let components: Vec<(&str, ParamType, &str)> = composite
            .components
            .iter()
            .map(|c| (c.code.as_str(), c.kind, c.expression.as_str()))
            .collect();
        assert_eq!(
            components,
            vec![
                ("component-code", ParamType::Token, "code"),
                (
                    "component-value-quantity",
                    ParamType::Quantity,
                    "value.as(Quantity)"
                ),
            ]
        );
        let total: usize = registry
            .all()
            .iter()
            .filter(|p| p.kind == ParamType::Composite)
            .map(|p| p.components.len())
            .sum();
        assert_eq!(total, 96, "every component of the 46 composites resolved");
        assert_eq!(
            registry
                .all()
                .iter()
                .filter(|p| matches!(p.indexing, Indexing::UnresolvedComponent(_)))
                .count(),
            0
        );
    }

    #[test]
    fn reads_comparators_and_multiple_or() {
        let registry = Registry::r4();
        let birthdate = registry.get("Patient", "birthdate").unwrap();
        assert!(birthdate.comparators.iter().any(|c| c == "ge"));
        let composite = registry.get("Observation", "code-value-quantity").unwrap();
        assert_eq!(composite.multiple_or, Some(false));
        assert!(registry.by_url(&composite.url).is_some());
    }

    #[test]
    fn rejects_bundles_that_are_not_definitions() {
        assert!(Registry::from_bundle_json("not json").is_err());
        let unknown_type = r#"{"entry":[{"resource":{"code":"x","url":"u","type":"bogus"}}]}"#;
        assert!(matches!(
            Registry::from_bundle_json(unknown_type),
            Err(RegistryError::UnknownType { .. })
        ));
        let empty = Registry::from_bundle_json(r#"{"entry":[]}"#).unwrap();
        assert_eq!(empty.params_for("Patient").count(), 0);
    }
}
