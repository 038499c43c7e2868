//! A FHIR search request, parsed and checked against the registry: what to match (criteria,
//! chains, `_has`), and how to present it (`_sort`, `_count`, `_include`, `_summary`, ...).
//!
//! Parsing is pure, so the rules of search.html are unit-tested here and shared: the query
//! service turns a [`SearchQuery`] into SQL over the `hfj_*` tables, and whatever needs to know
//! whether one resource matches criteria (a subscription) can use the same parse. Parameters
//! the server does not know or cannot apply are collected as [`Ignored`]: under
//! `Prefer: handling=strict` the caller answers 400 naming them, otherwise it drops them and
//! says so in the Bundle. Values that cannot be understood are always an error.
//!
//! A search's cost grows with what it asks for (criteria, OR values, sort keys, includes,
//! chain and `_has` hops), and a few hundred of any of these made one request run for
//! minutes. So every parse is held to a [`Limits`] budget, counted before any value is parsed
//! (includes once duplicates are removed); past a limit the search is refused as
//! [`QueryErrorKind::TooCostly`], naming the limit, and nothing runs.

pub mod values;

use fhir_model::ResourceType;

use crate::registry::{Indexing, ParamType, Registry, SearchParam};
pub use values::{
    DateValue, NearValue, NumberValue, Prefix, QuantityValue, ReferenceValue, StringMatch,
    StringValue, TokenValue, UriMatch, UriValue,
};
use values::{split_unescaped, unescape};

/// Largest page a client may ask for; larger `_count`s are reduced to it (as HAPI does).
pub const MAX_COUNT: usize = 1000;
/// The page size when `_count` is absent.
pub const DEFAULT_COUNT: usize = 20;

/// What one search may ask for. The query service takes these from its settings; the other
/// users of the parser (conditional writes, subscription criteria) keep the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Parameters in one request (`_sort`, `_include` and the like count; `_format` does not).
    pub parameters: usize,
    /// OR values (`a,b,c`) of one parameter.
    pub values_per_parameter: usize,
    /// OR values of all the parameters together.
    pub values: usize,
    /// `_sort` keys.
    pub sort_keys: usize,
    /// Distinct `_include`s and `_revinclude`s together, after duplicates are removed.
    pub includes: usize,
    /// Rounds of `:iterate` (applied by the caller when it follows includes).
    pub iterate_depth: usize,
    /// Hops of one chain (`subject:Patient.organization.name` has 2).
    pub chain_depth: usize,
    /// Nested `_has` in one parameter.
    pub has_depth: usize,
    /// Bind parameters of the SQL statement a search becomes (checked by the caller that
    /// builds it, `sql::bind_count`).
    pub bind_parameters: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            parameters: 100,
            values_per_parameter: 200,
            values: 1_000,
            sort_keys: 8,
            includes: 20,
            iterate_depth: 4,
            chain_depth: 4,
            has_depth: 4,
            bind_parameters: 10_000,
        }
    }
}

/// How the search reaches the resources it tests, from the searched resource outwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Chaining: follow the reference parameter `param` to targets of these types.
    Forward {
        param: String,
        target_types: Vec<String>,
    },
    /// `_has`: resources of `source_type` whose reference parameter `param` points here.
    Reverse { source_type: String, param: String },
}

/// One value to compare (the alternatives of a parameter are OR-ed).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(StringValue),
    Token(TokenValue),
    Reference(ReferenceValue),
    Date(DateValue),
    Number(NumberValue),
    Quantity(QuantityValue),
    Uri(UriValue),
    /// A composite: one value per component, in the definition's order.
    Composite(Vec<Value>),
    /// `_text` / `_content`: words to find.
    Text(String),
    Near(NearValue),
}

/// What a criterion asks of the parameter's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `:missing=true` (no value at all) or `:missing=false` (some value).
    Missing(bool),
    /// Some value matches one of these.
    Any(Vec<Value>),
    /// `:not`: no value matches any of these (resources without the parameter match).
    None(Vec<Value>),
}

/// One parameter of the query (parameters are AND-ed).
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// Chains and `_has` hops leading to the resources whose parameter is tested.
    pub steps: Vec<Step>,
    /// The types the parameter is tested on (several when a chain may reach several).
    pub types: Vec<String>,
    /// The parameter's code (`birthdate`, `_id`, `code-value-quantity`).
    pub code: String,
    pub kind: ParamType,
    pub test: Test,
}

/// A `_sort` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub code: String,
    pub kind: ParamType,
    pub descending: bool,
}

/// An `_include` or `_revinclude`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// The type whose reference parameter is followed; `None` for `*`.
    pub source_type: Option<String>,
    /// The reference parameter; `None` for `Type:*` or `*`.
    pub param: Option<String>,
    pub target_type: Option<String>,
    /// `:iterate` (or R3's `:recurse`): applied again to what it included.
    pub iterate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Total {
    None,
    Estimate,
    #[default]
    Accurate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    True,
    Text,
    Data,
    Count,
    False,
}

impl Summary {
    /// The value of `_summary`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "true" => Some(Summary::True),
            "text" => Some(Summary::Text),
            "data" => Some(Summary::Data),
            "count" => Some(Summary::Count),
            "false" => Some(Summary::False),
            _ => None,
        }
    }
}

/// The element names of an `_elements` value (`name,birthDate`).
pub fn element_names(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|element| !element.is_empty())
        .map(str::to_owned)
}

/// A parameter that was not applied, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub name: String,
    pub reason: String,
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The types searched: one for `GET /Patient?...`, those of `_type` (or every type) for a
    /// search of the whole system.
    pub types: Vec<String>,
    pub criteria: Vec<Criterion>,
    pub sort: Vec<SortKey>,
    /// The page size (`_count`, at most [`MAX_COUNT`]).
    pub count: usize,
    pub total: Total,
    pub summary: Option<Summary>,
    pub elements: Vec<String>,
    pub includes: Vec<Include>,
    pub revincludes: Vec<Include>,
    pub ignored: Vec<Ignored>,
}

/// Why a search cannot be run: the client's mistake, reported as 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .messages.join("; "))]
pub struct QueryError {
    pub kind: QueryErrorKind,
    pub messages: Vec<String>,
}

/// What kind of mistake a [`QueryError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryErrorKind {
    /// A value or parameter that cannot be understood.
    Invalid,
    /// The search asks for more than a [`Limits`] allows (FHIR issue code `too-costly`).
    TooCostly,
}

/// Parameters that shape the answer rather than select resources, with what they do; the
/// CapabilityStatement lists them.
pub const RESULT_PARAMETERS: &[&str] = &[
    "_sort",
    "_count",
    "_total",
    "_summary",
    "_elements",
    "_include",
    "_revinclude",
];

/// Parameters of the HTTP layer that search ignores (`_format`, `_pretty`) or handles itself.
const TRANSPORT_PARAMETERS: &[&str] = &["_format", "_pretty", "_type", "_method"];

/// Parses a search of `types` (one type, or several for a system search) from the request's
/// decoded parameters. `base_url` is this server's FHIR base, so that absolute references to it
/// are local. The budget is [`Limits::default`].
pub fn parse(
    registry: &Registry,
    types: Vec<String>,
    params: &[(String, String)],
    base_url: &str,
) -> Result<SearchQuery, QueryError> {
    parse_within(registry, types, params, base_url, &Limits::default())
}

/// As [`parse`], held to `limits`.
pub fn parse_within(
    registry: &Registry,
    types: Vec<String>,
    params: &[(String, String)],
    base_url: &str,
    limits: &Limits,
) -> Result<SearchQuery, QueryError> {
    // A repeated `name=value` adds nothing (criteria are AND-ed, includes a set): it is read
    // once, and counts once.
    let mut distinct: Vec<&(String, String)> = Vec::with_capacity(params.len());
    let mut seen = std::collections::HashSet::with_capacity(params.len());
    for pair in params {
        if seen.insert(pair) {
            distinct.push(pair);
        }
    }
    budget(&distinct, limits)?;
    refuse_nul(&distinct)?;
    let mut parser = Parser {
        registry,
        base_url,
        limits,
        query: SearchQuery {
            types,
            criteria: Vec::new(),
            sort: Vec::new(),
            count: DEFAULT_COUNT,
            total: Total::default(),
            summary: None,
            elements: Vec::new(),
            includes: Vec::new(),
            revincludes: Vec::new(),
            ignored: Vec::new(),
        },
        errors: Vec::new(),
        costly: Vec::new(),
    };
    for (name, value) in distinct {
        parser.parameter(name, value);
    }
    if !parser.costly.is_empty() {
        return Err(too_costly(parser.costly));
    }
    let mut query = parser.query;
    dedup(&mut query.includes);
    dedup(&mut query.revincludes);
    let includes = query.includes.len() + query.revincludes.len();
    if includes > limits.includes {
        return Err(too_costly(vec![format!(
            "{includes} distinct _include and _revinclude exceed the limit of {} per search",
            limits.includes
        )]));
    }
    if parser.errors.is_empty() {
        Ok(query)
    } else {
        Err(QueryError {
            kind: QueryErrorKind::Invalid,
            messages: parser.errors,
        })
    }
}

fn too_costly(messages: Vec<String>) -> QueryError {
    QueryError {
        kind: QueryErrorKind::TooCostly,
        messages,
    }
}

/// The counts that need no parsing: parameters, OR values and sort keys, checked before any
/// value is looked at, so that a request of 70,000 values costs no more than its decoding.
/// A NUL character can be neither indexed nor compared (Postgres text cannot hold one), so a
/// parameter name or value that contains one is refused before it reaches any SQL.
fn refuse_nul(params: &[&(String, String)]) -> Result<(), QueryError> {
    let messages: Vec<String> = params
        .iter()
        .filter(|(name, value)| name.contains('\0') || value.contains('\0'))
        .map(|(name, _)| {
            format!(
                "`{}`: search parameters and values may not contain a NUL character",
                name.replace('\0', "\\0")
            )
        })
        .collect();
    if messages.is_empty() {
        Ok(())
    } else {
        Err(QueryError {
            kind: QueryErrorKind::Invalid,
            messages,
        })
    }
}

fn budget(params: &[&(String, String)], limits: &Limits) -> Result<(), QueryError> {
    let counted = params.iter().filter(|(name, value)| {
        !value.is_empty() && !TRANSPORT_PARAMETERS.contains(&name.as_str())
    });
    let mut parameters = 0;
    let mut values = 0;
    let mut sort_keys = 0;
    for (name, value) in counted {
        parameters += 1;
        if name == "_sort" {
            sort_keys += value
                .split(',')
                .filter(|key| !key.trim().is_empty())
                .count();
            continue;
        }
        if name.starts_with('_')
            && RESULT_PARAMETERS.contains(&name.split(':').next().unwrap_or_default())
        {
            continue;
        }
        let alternatives = split_unescaped(value, ',').len();
        if alternatives > limits.values_per_parameter {
            return Err(too_costly(vec![format!(
                "{name}: {alternatives} values exceed the limit of {} per parameter",
                limits.values_per_parameter
            )]));
        }
        values += alternatives;
    }
    let over = [
        (parameters, limits.parameters, "parameters"),
        (values, limits.values, "values"),
        (sort_keys, limits.sort_keys, "_sort keys"),
    ];
    for (count, limit, what) in over {
        if count > limit {
            return Err(too_costly(vec![format!(
                "{count} {what} exceed the limit of {limit} per search"
            )]));
        }
    }
    Ok(())
}

/// Removes repeated includes, keeping the first of each.
fn dedup(includes: &mut Vec<Include>) {
    let mut seen = Vec::with_capacity(includes.len());
    includes.retain(|include| {
        if seen.contains(include) {
            false
        } else {
            seen.push(include.clone());
            true
        }
    });
}

struct Parser<'r> {
    registry: &'r Registry,
    base_url: &'r str,
    limits: &'r Limits,
    query: SearchQuery,
    errors: Vec<String>,
    /// Limits the search goes beyond.
    costly: Vec<String>,
}

/// Why a criterion was not built: the parameter is unknown (ignorable), its value is wrong,
/// or it goes beyond a limit.
enum Refusal {
    Unknown(String),
    Invalid(String),
    TooCostly(String),
}

impl<'r> Parser<'r> {
    fn parameter(&mut self, name: &str, value: &str) {
        // search.html: a parameter with no value is ignored.
        if value.is_empty() || TRANSPORT_PARAMETERS.contains(&name) {
            return;
        }
        let (base, modifier) = match name.split_once(':') {
            Some((base, modifier)) if !name.starts_with("_has:") => (base, Some(modifier)),
            _ => (name, None),
        };
        match base {
            "_sort" => self.sort(value),
            "_count" => match value.parse::<usize>() {
                Ok(count) => self.query.count = count.min(MAX_COUNT),
                Err(_) => self.invalid(format!("_count must be a whole number, not `{value}`")),
            },
            "_total" => match value {
                "none" => self.query.total = Total::None,
                "estimate" => self.query.total = Total::Estimate,
                "accurate" => self.query.total = Total::Accurate,
                _ => self.invalid(format!(
                    "_total must be none, estimate or accurate, not `{value}`"
                )),
            },
            "_summary" => match Summary::parse(value) {
                Some(summary) => self.query.summary = Some(summary),
                None => self.invalid(format!(
                    "_summary must be true, text, data, count or false, not `{value}`"
                )),
            },
            "_elements" => self.query.elements.extend(element_names(value)),
            "_include" | "_revinclude" => self.include(base, modifier, value),
            _ => self.criterion(name, value),
        }
    }

    fn invalid(&mut self, message: String) {
        self.errors.push(message);
    }

    fn ignore(&mut self, name: &str, reason: String) {
        self.query.ignored.push(Ignored {
            name: name.to_owned(),
            reason,
        });
    }

    fn criterion(&mut self, name: &str, value: &str) {
        let types = self.query.types.clone();
        match self.chain(&types, name, value, Depth::default()) {
            Ok(criterion) => self.query.criteria.push(criterion),
            Err(Refusal::Unknown(reason)) => self.ignore(name, reason),
            Err(Refusal::Invalid(message)) => self.invalid(format!("{name}: {message}")),
            Err(Refusal::TooCostly(message)) => self.costly.push(format!("{name}: {message}")),
        }
    }

    /// The parameters named `code` of `types` (those of the types that have one).
    fn lookup<'t>(&self, types: &'t [String], code: &str) -> Vec<(&'t str, &'r SearchParam)> {
        types
            .iter()
            .filter_map(|t| self.registry.get(t, code).map(|p| (t.as_str(), p)))
            .collect()
    }

    /// Parses `name=value` evaluated on resources of `types`, following chains and `_has`;
    /// `depth` counts the chain hops and `_has` levels above this one.
    fn chain(
        &self,
        types: &[String],
        name: &str,
        value: &str,
        depth: Depth,
    ) -> Result<Criterion, Refusal> {
        if depth.chain > self.limits.chain_depth {
            return Err(Refusal::TooCostly(format!(
                "a chain may have at most {} hops (the chain depth limit)",
                self.limits.chain_depth
            )));
        }
        if depth.has > self.limits.has_depth {
            return Err(Refusal::TooCostly(format!(
                "_has may be nested at most {} deep (the _has depth limit)",
                self.limits.has_depth
            )));
        }
        if let Some(rest) = name.strip_prefix("_has:") {
            return self.reverse(types, rest, value, depth);
        }
        let (head, tail) = match name.split_once('.') {
            Some((head, tail)) => (head, Some(tail)),
            None => (name, None),
        };
        let (code, modifier) = match head.split_once(':') {
            Some((code, modifier)) => (code, Some(modifier)),
            None => (head, None),
        };
        let found = self.lookup(types, code);
        let Some(&(_, param)) = found.first() else {
            return Err(Refusal::Unknown(format!(
                "`{code}` is not a search parameter of {}",
                describe(types)
            )));
        };
        let Some(tail) = tail else {
            let found_types = found.iter().map(|(t, _)| (*t).to_owned()).collect();
            return self.final_criterion(found_types, param, modifier, value);
        };
        // A chain: `param[:Type].rest`.
        if param.kind != ParamType::Reference {
            return Err(Refusal::Invalid(format!(
                "`{code}` is a {} parameter and cannot be chained",
                param.kind.as_str()
            )));
        }
        let next_code = tail.split(['.', ':']).next().unwrap_or_default().to_owned();
        let mut targets: Vec<String> = match modifier {
            Some(target) => {
                if ResourceType::parse(target).is_err() {
                    return Err(Refusal::Invalid(format!(
                        "`{target}` is not a resource type"
                    )));
                }
                vec![target.to_owned()]
            }
            None => {
                let mut all: Vec<String> = found
                    .iter()
                    .flat_map(|(_, p)| p.target.iter().cloned())
                    .collect();
                all.sort();
                all.dedup();
                all
            }
        };
        targets.retain(|t| found.iter().any(|(_, p)| p.allows_target(t)));
        if !next_code.starts_with("_has") {
            targets.retain(|t| self.registry.get(t, &next_code).is_some());
        }
        if targets.is_empty() {
            return Err(Refusal::Unknown(format!(
                "`{code}` of {} leads to no resource type with a parameter `{next_code}`",
                describe(types)
            )));
        }
        let deeper = Depth {
            chain: depth.chain + 1,
            ..depth
        };
        let mut inner = self.chain(&targets, tail, value, deeper)?;
        inner.steps.insert(
            0,
            Step::Forward {
                param: code.to_owned(),
                target_types: targets,
            },
        );
        Ok(inner)
    }

    /// `_has:Source:param:rest=value` on resources of `types`.
    fn reverse(
        &self,
        types: &[String],
        rest: &str,
        value: &str,
        depth: Depth,
    ) -> Result<Criterion, Refusal> {
        let mut parts = rest.splitn(3, ':');
        let (Some(source), Some(param_code), Some(inner_name)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(Refusal::Invalid(
                "_has needs the form `_has:Type:reference-parameter:parameter`".to_owned(),
            ));
        };
        if ResourceType::parse(source).is_err() {
            return Err(Refusal::Invalid(format!(
                "_has: `{source}` is not a resource type"
            )));
        }
        let Some(param) = self.registry.get(source, param_code) else {
            return Err(Refusal::Unknown(format!(
                "_has: `{param_code}` is not a search parameter of {source}"
            )));
        };
        if param.kind != ParamType::Reference {
            return Err(Refusal::Invalid(format!(
                "_has: `{source}:{param_code}` is not a reference parameter"
            )));
        }
        if !types.iter().any(|t| param.allows_target(t)) {
            return Err(Refusal::Invalid(format!(
                "_has: `{source}:{param_code}` never refers to {}",
                describe(types)
            )));
        }
        let deeper = Depth {
            has: depth.has + 1,
            ..depth
        };
        let mut inner = self.chain(&[source.to_owned()], inner_name, value, deeper)?;
        inner.steps.insert(
            0,
            Step::Reverse {
                source_type: source.to_owned(),
                param: param_code.to_owned(),
            },
        );
        Ok(inner)
    }

    fn final_criterion(
        &self,
        types: Vec<String>,
        param: &SearchParam,
        modifier: Option<&str>,
        value: &str,
    ) -> Result<Criterion, Refusal> {
        let code = param.code.clone();
        if let Indexing::Unparsable(_) | Indexing::UnresolvedComponent(_) = &param.indexing {
            return Err(Refusal::Unknown(format!(
                "`{code}` is defined but cannot be indexed by this server"
            )));
        }
        let criterion = |test| Criterion {
            steps: Vec::new(),
            types: types.clone(),
            code: code.clone(),
            kind: param.kind,
            test,
        };
        if modifier == Some("missing") {
            return match value {
                "true" => Ok(criterion(Test::Missing(true))),
                "false" => Ok(criterion(Test::Missing(false))),
                _ => Err(Refusal::Invalid(format!(
                    ":missing takes true or false, not `{value}`"
                ))),
            };
        }
        let unsupported = |modifier: &str| {
            Err(Refusal::Unknown(format!(
                "the modifier `:{modifier}` is not supported on `{code}` ({} parameter)",
                param.kind.as_str()
            )))
        };
        let alternatives = split_unescaped(value, ',');
        let parse_all = |parse: &dyn Fn(&str) -> Result<Value, values::ValueError>| {
            alternatives
                .iter()
                .map(|raw| parse(raw))
                .collect::<Result<Vec<Value>, _>>()
                .map_err(|e| Refusal::Invalid(e.0))
        };
        if param.indexing == Indexing::NoExpression {
            // `_text` and `_content`: full text over the narrative or every string.
            if matches!(code.as_str(), "_text" | "_content") && modifier.is_none() {
                return Ok(criterion(Test::Any(parse_all(&|raw| {
                    let words = unescape(raw);
                    if words.trim().is_empty() {
                        Err(values::ValueError("needs words to search for".to_owned()))
                    } else {
                        Ok(Value::Text(words))
                    }
                })?)));
            }
            return Err(Refusal::Unknown(format!(
                "`{code}` is not supported by this server"
            )));
        }
        let test = match (param.kind, modifier) {
            (ParamType::String, None) => Test::Any(parse_all(&|raw| {
                StringValue::parse(raw, StringMatch::Prefix).map(Value::String)
            })?),
            (ParamType::String, Some("exact")) => Test::Any(parse_all(&|raw| {
                StringValue::parse(raw, StringMatch::Exact).map(Value::String)
            })?),
            (ParamType::String, Some("contains")) => Test::Any(parse_all(&|raw| {
                StringValue::parse(raw, StringMatch::Contains).map(Value::String)
            })?),
            (ParamType::Token, None) => {
                Test::Any(parse_all(&|raw| TokenValue::parse(raw).map(Value::Token))?)
            }
            (ParamType::Token, Some("not")) => {
                Test::None(parse_all(&|raw| TokenValue::parse(raw).map(Value::Token))?)
            }
            (ParamType::Token, Some("text")) => Test::Any(parse_all(&|raw| {
                TokenValue::parse_text(raw).map(Value::Token)
            })?),
            (ParamType::Token, Some("of-type")) => Test::Any(parse_all(&|raw| {
                TokenValue::parse_of_type(raw).map(Value::Token)
            })?),
            (ParamType::Reference, None) => Test::Any(parse_all(&|raw| {
                ReferenceValue::parse(raw, self.base_url).map(Value::Reference)
            })?),
            (ParamType::Reference, Some("identifier")) => Test::Any(parse_all(&|raw| {
                ReferenceValue::parse_identifier(raw).map(Value::Reference)
            })?),
            (ParamType::Reference, Some(target)) if ResourceType::parse(target).is_ok() => {
                if !param.allows_target(target) {
                    return Err(Refusal::Invalid(format!(
                        "`{code}` never refers to {target}"
                    )));
                }
                Test::Any(parse_all(&|raw| {
                    let value = unescape(raw);
                    if value.is_empty() || value.contains('/') {
                        return Err(values::ValueError(format!(
                            "with `:{target}` the value is an id, not `{value}`"
                        )));
                    }
                    Ok(Value::Reference(ReferenceValue::Local {
                        resource_type: Some(target.to_owned()),
                        id: value,
                    }))
                })?)
            }
            (ParamType::Date, None) => {
                Test::Any(parse_all(&|raw| DateValue::parse(raw).map(Value::Date))?)
            }
            (ParamType::Number, None) => Test::Any(parse_all(&|raw| {
                NumberValue::parse(raw).map(Value::Number)
            })?),
            (ParamType::Quantity, None) => Test::Any(parse_all(&|raw| {
                QuantityValue::parse(raw).map(Value::Quantity)
            })?),
            (ParamType::Uri, None) => Test::Any(parse_all(&|raw| {
                UriValue::parse(raw, UriMatch::Exact).map(Value::Uri)
            })?),
            (ParamType::Uri, Some("below")) => Test::Any(parse_all(&|raw| {
                UriValue::parse(raw, UriMatch::Below).map(Value::Uri)
            })?),
            (ParamType::Uri, Some("above")) => Test::Any(parse_all(&|raw| {
                UriValue::parse(raw, UriMatch::Above).map(Value::Uri)
            })?),
            (ParamType::Composite, None) => {
                let components = self.components(param)?;
                Test::Any(parse_all(&|raw| {
                    composite_value(&components, raw, self.base_url)
                })?)
            }
            (ParamType::Special, None) if code == "near" => {
                Test::Any(parse_all(&|raw| NearValue::parse(raw).map(Value::Near))?)
            }
            (ParamType::Special, None) => {
                return Err(Refusal::Unknown(format!(
                    "the special parameter `{code}` is not supported"
                )));
            }
            (_, Some(modifier)) => return unsupported(modifier),
        };
        Ok(criterion(test))
    }

    fn components(&self, param: &SearchParam) -> Result<Vec<ParamType>, Refusal> {
        param
            .components
            .iter()
            .map(|component| match component.kind {
                ParamType::Composite | ParamType::Special => Err(Refusal::Unknown(format!(
                    "`{}` has a component of a type this server cannot compare",
                    param.code
                ))),
                kind => Ok(kind),
            })
            .collect()
    }

    fn sort(&mut self, value: &str) {
        for key in value
            .split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
        {
            let (descending, code) = match key.strip_prefix('-') {
                Some(code) => (true, code),
                None => (false, key),
            };
            let types = self.query.types.clone();
            match self.lookup(&types, code).first() {
                Some((_, param))
                    if !matches!(param.kind, ParamType::Composite | ParamType::Special) =>
                {
                    let kind = param.kind;
                    self.query.sort.push(SortKey {
                        code: code.to_owned(),
                        kind,
                        descending,
                    });
                }
                Some(_) => self.ignore(
                    "_sort",
                    format!("`{code}` is a composite or special parameter and cannot sort"),
                ),
                None => self.ignore(
                    "_sort",
                    format!("`{code}` is not a search parameter of {}", describe(&types)),
                ),
            }
        }
    }

    fn include(&mut self, name: &str, modifier: Option<&str>, value: &str) {
        let iterate = match modifier {
            None => false,
            Some("iterate" | "recurse") => true,
            Some(other) => {
                self.ignore(name, format!("the modifier `:{other}` is not supported"));
                return;
            }
        };
        if value == "*" {
            self.push_include(
                name,
                Include {
                    source_type: None,
                    param: None,
                    target_type: None,
                    iterate,
                },
            );
            return;
        }
        let parts: Vec<&str> = value.split(':').collect();
        let (source, param, target) = match parts.as_slice() {
            [source, param] => (*source, *param, None),
            [source, param, target] => (*source, *param, Some(*target)),
            _ => {
                self.invalid(format!(
                    "{name}: `{value}` should be `Type:parameter[:targetType]` or `*`"
                ));
                return;
            }
        };
        if ResourceType::parse(source).is_err() {
            self.invalid(format!("{name}: `{source}` is not a resource type"));
            return;
        }
        if let Some(target) = target
            && ResourceType::parse(target).is_err()
        {
            self.invalid(format!("{name}: `{target}` is not a resource type"));
            return;
        }
        if param != "*" {
            match self.registry.get(source, param) {
                Some(found) if found.kind == ParamType::Reference => {}
                Some(_) => {
                    self.invalid(format!(
                        "{name}: `{source}:{param}` is not a reference parameter"
                    ));
                    return;
                }
                None => {
                    self.ignore(
                        name,
                        format!("`{param}` is not a search parameter of {source}"),
                    );
                    return;
                }
            }
        }
        let include = Include {
            source_type: Some(source.to_owned()),
            param: (param != "*").then(|| param.to_owned()),
            target_type: target.map(str::to_owned),
            iterate,
        };
        self.push_include(name, include);
    }

    fn push_include(&mut self, name: &str, include: Include) {
        if name == "_include" {
            self.query.includes.push(include);
        } else {
            self.query.revincludes.push(include);
        }
    }
}

/// Chain hops and `_has` levels walked so far.
#[derive(Debug, Clone, Copy, Default)]
struct Depth {
    chain: usize,
    has: usize,
}

fn composite_value(
    components: &[ParamType],
    raw: &str,
    base_url: &str,
) -> Result<Value, values::ValueError> {
    let parts = split_unescaped(raw, '$');
    if parts.len() != components.len() {
        return Err(values::ValueError(format!(
            "`{raw}` has {} parts; this composite takes {} separated by `$`",
            parts.len(),
            components.len()
        )));
    }
    parts
        .iter()
        .zip(components)
        .map(|(part, kind)| match kind {
            ParamType::String => StringValue::parse(part, StringMatch::Prefix).map(Value::String),
            ParamType::Token => TokenValue::parse(part).map(Value::Token),
            ParamType::Reference => ReferenceValue::parse(part, base_url).map(Value::Reference),
            ParamType::Date => DateValue::parse(part).map(Value::Date),
            ParamType::Number => NumberValue::parse(part).map(Value::Number),
            ParamType::Quantity => QuantityValue::parse(part).map(Value::Quantity),
            ParamType::Uri => UriValue::parse(part, UriMatch::Exact).map(Value::Uri),
            ParamType::Composite | ParamType::Special => Err(values::ValueError(
                "a composite component of this type cannot be compared".to_owned(),
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Composite)
}

fn describe(types: &[String]) -> String {
    match types {
        [one] => one.clone(),
        [] => "any resource type".to_owned(),
        many if many.len() > 4 => "the searched types".to_owned(),
        many => many.join(", "),
    }
}

#[cfg(test)]
mod tests;
