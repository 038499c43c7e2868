//! The hostile requests, generated from a seed: the same seed gives the same requests, so a
//! failure can be replayed. Each case carries a label (what kind of hostility it is) by which
//! the test groups its failures.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};

use super::seeds;

/// One request to send through the edge.
pub struct Case {
    /// The kind of hostility: failures are grouped by it.
    pub label: String,
    pub method: Method,
    /// Path and query, already percent-encoded (or deliberately mis-encoded).
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
    /// May write a very large resource or take the server a long time: sent after the others,
    /// so that if one of them stops the platform, the rest have already been judged.
    pub heavy: bool,
    /// The body is invalid FHIR whatever the server holds: a success is a failure.
    pub must_fail: bool,
}

/// `count` cases from `seed`, the light ones first.
pub fn generate(seed: u64, count: usize) -> Vec<Case> {
    let mut generator = Generator {
        rng: StdRng::seed_from_u64(seed),
        seeds: seeds::resources(),
        raws: Vec::new(),
    };
    let mut cases: Vec<Case> = (0..count).map(|_| generator.case()).collect();
    cases.sort_by_key(|case| case.heavy);
    cases
}

/// A search value, URL-encoded, with the kind of hostility it carries.
struct Val {
    class: &'static str,
    text: String,
}

fn val(class: &'static str, text: impl AsRef<str>) -> Val {
    Val {
        class,
        text: encode(text.as_ref()),
    }
}

/// Already encoded (deliberately bad percent-encoding).
fn raw(class: &'static str, text: &str) -> Val {
    Val {
        class,
        text: text.to_owned(),
    }
}

/// Percent-encodes everything but the unreserved characters and FHIR's search syntax.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~,|$:/*!()@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    String,
    Token,
    Reference,
    Date,
    Number,
    Quantity,
    Uri,
    Composite,
    Special,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Token => "token",
            Kind::Reference => "reference",
            Kind::Date => "date",
            Kind::Number => "number",
            Kind::Quantity => "quantity",
            Kind::Uri => "uri",
            Kind::Composite => "composite",
            Kind::Special => "special",
        }
    }

    fn modifiers(self) -> &'static [&'static str] {
        match self {
            Kind::String => &[":exact", ":contains", ":missing", ":text", ":not", ":bogus"],
            Kind::Token => &[
                ":not", ":text", ":of-type", ":in", ":below", ":above", ":missing", ":bogus",
            ],
            Kind::Reference => &[":Patient", ":Bogus", ":identifier", ":missing", ":below"],
            Kind::Uri => &[":below", ":above", ":missing", ":contains"],
            _ => &[":missing", ":exact", ":bogus"],
        }
    }
}

/// (type, parameter, kind): at least one parameter of every R4 search parameter type.
const PARAMS: &[(&str, &str, Kind)] = &[
    ("Patient", "name", Kind::String),
    ("Patient", "family", Kind::String),
    ("Patient", "address-city", Kind::String),
    ("Observation", "value-string", Kind::String),
    ("Patient", "gender", Kind::Token),
    ("Patient", "identifier", Kind::Token),
    ("Patient", "_id", Kind::Token),
    ("Patient", "_tag", Kind::Token),
    ("Observation", "code", Kind::Token),
    ("Observation", "category", Kind::Token),
    ("Observation", "subject", Kind::Reference),
    ("Observation", "patient", Kind::Reference),
    ("Encounter", "location", Kind::Reference),
    ("Patient", "general-practitioner", Kind::Reference),
    ("Patient", "birthdate", Kind::Date),
    ("Observation", "date", Kind::Date),
    ("Patient", "_lastUpdated", Kind::Date),
    ("RiskAssessment", "probability", Kind::Number),
    ("MolecularSequence", "variant-start", Kind::Number),
    ("Observation", "value-quantity", Kind::Quantity),
    ("Observation", "component-value-quantity", Kind::Quantity),
    ("Encounter", "length", Kind::Quantity),
    ("ValueSet", "url", Kind::Uri),
    ("Patient", "_profile", Kind::Uri),
    ("Patient", "_source", Kind::Uri),
    ("Observation", "code-value-quantity", Kind::Composite),
    (
        "Observation",
        "component-code-value-quantity",
        Kind::Composite,
    ),
    ("Observation", "code-value-string", Kind::Composite),
    (
        "MolecularSequence",
        "chromosome-variant-coordinate",
        Kind::Composite,
    ),
    ("Location", "near", Kind::Special),
    ("Patient", "_text", Kind::Special),
    ("Observation", "_content", Kind::Special),
];

/// Mutations after which no FHIR resource is valid: no element holds an array of arrays, a
/// bare array where one value goes, or a mixture of numbers, strings and arrays.
const ALWAYS_INVALID: &[&str] = &[
    "array where an object goes",
    "non-objects in an array of objects",
    "deep nesting",
];

/// A repeated or OR-ed value is cut to this length, so that the request line stays within what
/// an HTTP client can send (the edge's own limit is far below it, and is one of the things tried).
const MAX_LISTED_VALUE: usize = 120;

const PREFIXES: &[&str] = &[
    "", "", "", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "GT", "zz", "gtlt",
];

const NUMBERS: &[(&str, &str)] = &[
    ("tiny decimal", "1e-28"),
    ("huge exponent", "1e999999999"),
    ("huge exponent", "-1e999999999"),
    ("tiny exponent", "1e-999999999"),
    ("tiny decimal", "0.0000000000000000000000000001"),
    (
        "long decimal",
        "123456789012345678901234567890.123456789012345678901234567890",
    ),
    ("malformed number", "1."),
    ("malformed number", "0.5e"),
    ("malformed number", "NaN"),
    ("malformed number", "Infinity"),
    ("malformed number", "0x1F"),
    ("malformed number", "1_000"),
    ("malformed number", "١٢٣"),
    ("malformed number", "--5"),
    ("huge exponent", "5e-2147483649"),
    ("huge exponent", "1e309"),
    ("plain number", "0.125"),
    ("plain number", "-0"),
    ("plain number", "120"),
];

const UNITS: &[&str] = &[
    "",
    "||mm[Hg]",
    "|http://unitsofmeasure.org|mm[Hg]",
    "|http://unitsofmeasure.org|kg",
    "|http://unitsofmeasure.org|10*-999.g",
    "|http://unitsofmeasure.org|10*999999999.g",
    "|http://unitsofmeasure.org|[in_i]^99",
    "|http://unitsofmeasure.org|m/0",
    "|http://unitsofmeasure.org|g/(m.s2",
    "|http://unitsofmeasure.org|%",
    "||",
    "|||",
    "|x|y|z",
];

const DATES: &[&str] = &[
    "2024-03-02",
    "2020-13-45",
    "2020-02-30",
    "99999-01-01",
    "0000-00-00",
    "-2020",
    "2020-01-01T25:61:61Z",
    "2020-01-01T00:00:00+99:99",
    "2020-01-01T00:00:00.12345678912345Z",
    "1e10",
    "now",
    "2020",
    "2020-1",
    "2020-01-01T00:00",
    "2020-01-01T00:00:00",
    "9999-12-31T23:59:59.999999999Z",
    "0001-01-01",
    "10000-01-01",
    "2020-01-01 00:00:00",
    "2020-01-01T00:00:00-24:00",
    "292278994-08-17",
];

const TOKENS: &[&str] = &[
    "http://loinc.org|8480-6",
    "|8480-6",
    "http://loinc.org|",
    "|",
    "||",
    "a|b|c",
    "female",
    "FEMALE",
    "true",
    "fz-ann",
    "http://example.org/mrn|MRN-0001",
];

const REFERENCES: &[&str] = &[
    "Patient/fz-ann",
    "fz-ann",
    "Patient/",
    "/",
    "Patient/../../x",
    "http://evil.example/fhir/Patient/fz-ann",
    "Patient/fz-ann/_history/x",
    "Patient/fz-ann/_history/99999999999999999999",
    "Bogus/1",
    "urn:uuid:00000000-0000-0000-0000-000000000000",
    "#contained",
    "http://example.org/mrn|MRN-0001",
    "Patient/fz-ann/_history/1",
];

const URIS: &[&str] = &[
    "http://example.org/fhir/ValueSet/fuzz",
    "http://example.org/fhir/ValueSet",
    "http://",
    "urn:",
    "not a uri",
    "http://example.org/fhir/ValueSet/fuzz|1.0.0",
    "..//..//",
    "file:///etc/passwd",
];

const COMPOSITES: &[&str] = &[
    "http://loinc.org|8480-6$gt100",
    "8480-6$1e-28",
    "8480-6$1e999999999",
    "http://loinc.org|8480-6$ap1e-28||mm[Hg]",
    "8480-6$gt100|http://unitsofmeasure.org|mm[Hg]",
    "29463-7$weighed",
    "1$gt100",
    "1$1e-28",
    "$",
    "$$",
    "a$b$c",
    "8480-6$",
    "$gt5",
    "8480-6\\$5",
];

const NEAR: &[&str] = &[
    "51.5|-0.13|10|km",
    "91|181|1|km",
    "NaN|NaN|1|km",
    "51.5|-0.13|1e999999999|km",
    "51.5|-0.13|-5|km",
    "51.5|-0.13|5|parsecs",
    "a|b",
    "|||",
    "51.5",
    "1e-28|1e-28|1e-28|m",
    "Infinity|-Infinity|1|km",
];

const COUNTS: &[&str] = &[
    "-1",
    "0",
    "1e9",
    "99999999999999999999",
    "abc",
    "",
    "1.5",
    "2147483648",
    "1000000",
    "5",
];

const HEADER_VALUES: &[&str] = &[
    "W/\"abc\"",
    "W/\"0\"",
    "W/\"-1\"",
    "W/\"99999999999999999999\"",
    "*",
    "\"1\", \"2\"",
    "W/",
    "garbage",
];

impl Generator {
    fn case(&mut self) -> Case {
        match self.below(100) {
            0..=27 => self.search_case(),
            28..=39 => self.result_case(),
            40..=43 => self.history_case(),
            44..=48 => self.path_case(),
            49..=59 => self.create_case(),
            60..=66 => self.update_case(),
            67..=73 => self.conditional_case(),
            74..=81 => self.patch_case(),
            82..=89 => self.bundle_case(),
            90..=95 => self.malformed_case(),
            _ => self.header_case(),
        }
    }
}

/// The generator's state: the random source, the resources bodies are mutated from, and the
/// raw JSON texts spliced into the body being built.
struct Generator {
    rng: StdRng,
    seeds: Vec<Value>,
    raws: Vec<String>,
}

impl Generator {
    fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    fn chance(&mut self, probability: f64) -> bool {
        self.rng.random_bool(probability)
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    fn uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.random())
            .into_uuid()
            .to_string()
    }

    fn seed(&mut self) -> Value {
        let index = self.below(self.seeds.len());
        self.seeds[index].clone()
    }

    /// A value hostile to any parameter type.
    fn generic_value(&mut self) -> Val {
        match self.below(16) {
            0 => val("empty value", ""),
            1 => val("whitespace", "  \t "),
            2 => val("control characters", "a\u{0}b\u{1}\u{1b}[31m\r\n"),
            3 => val("unicode", "Zoë 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u{202e}ǅ ﬃ İ ß 🙂"),
            4 => val(
                "combining marks",
                format!("a{}", "\u{301}".repeat(300 + self.below(400))),
            ),
            5 => val("SQL-like", "x' OR '1'='1'; -- \"; DROP TABLE fhir_event;"),
            6 => val("LIKE wildcards", "%_\\%\\_*"),
            7 => val("escapes", "a\\,b\\|c\\$d\\"),
            8 => raw("bad percent-encoding", "%zz%"),
            9 => raw("percent-encoded invalid UTF-8", "%C3%28%FF%FE"),
            10 => raw("percent-encoded NUL", "x%00y"),
            11 => raw("truncated percent-encoding", "abc%2"),
            12 => {
                let length = self.pick(&[500, 3000, 7000, 7000, 20000]);
                val("huge value", "x".repeat(length))
            }
            13 => val("separators only", ",,,,"),
            14 => val("separators only", "|||$$$"),
            _ => val("very long unicode", "é".repeat(2000)),
        }
    }

    fn number(&mut self) -> (&'static str, String) {
        let (class, number) = self.pick(NUMBERS);
        let prefix = self.pick(PREFIXES);
        let class = if prefix.is_empty() || class != "plain number" {
            class
        } else {
            "prefixed number"
        };
        (class, format!("{prefix}{number}"))
    }

    /// A value for a parameter of `kind`: mostly hostile to that type, sometimes to any.
    fn value(&mut self, kind: Kind) -> Val {
        if self.chance(0.25) {
            return self.generic_value();
        }
        match kind {
            Kind::String => {
                let text = self.pick(&["smith", "SMITH", "smi", "Zoë", "ß", "İ", "\\", "%"]);
                val("string value", text)
            }
            Kind::Token => {
                if self.chance(0.15) {
                    val(
                        "3 KB token system",
                        format!("http://example.org/{}|x", "s".repeat(3000)),
                    )
                } else {
                    let text = self.pick(TOKENS);
                    val("odd token", text)
                }
            }
            Kind::Reference => {
                let text = self.pick(REFERENCES);
                val("odd reference", text)
            }
            Kind::Date => {
                let prefix = self.pick(PREFIXES);
                let date = self.pick(DATES);
                val("malformed or extreme date", format!("{prefix}{date}"))
            }
            Kind::Number => {
                let (class, text) = self.number();
                val(class, text)
            }
            Kind::Quantity => {
                let (class, number) = self.number();
                let unit = self.pick(UNITS);
                let class = if unit.contains("10*") || unit.contains('^') || unit.contains("m/0") {
                    "odd unit"
                } else {
                    class
                };
                val(class, format!("{number}{unit}"))
            }
            Kind::Uri => {
                if self.chance(0.2) {
                    val(
                        "huge uri",
                        format!("http://example.org/{}", "p/".repeat(1500)),
                    )
                } else {
                    let text = self.pick(URIS);
                    val("odd uri", text)
                }
            }
            Kind::Composite => {
                let text = self.pick(COMPOSITES);
                let class = if text.contains("1e") {
                    "composite with extreme number"
                } else {
                    "malformed composite"
                };
                val(class, text)
            }
            Kind::Special => {
                let text = self.pick(NEAR);
                val("odd near", text)
            }
        }
    }

    /// A criterion on one parameter: `(name=value pairs, label)`.
    fn criterion(
        &mut self,
        resource_type: Option<&str>,
    ) -> (String, Vec<(String, String)>, String) {
        let candidates: Vec<_> = PARAMS
            .iter()
            .filter(|(t, ..)| resource_type.is_none_or(|wanted| *t == wanted))
            .collect();
        let &(type_name, param, kind) = if candidates.is_empty() {
            self.pick(PARAMS.iter().collect::<Vec<_>>().as_slice())
        } else {
            self.pick(&candidates)
        };
        let modifier = if self.chance(0.3) {
            self.pick(kind.modifiers())
        } else {
            ""
        };
        let name = format!("{param}{modifier}");
        let mut label = String::new();
        let pairs = match self.below(10) {
            0 => {
                let n = self.pick(&[10, 100, 400]);
                let mut value = self.value(kind);
                value.text.truncate(MAX_LISTED_VALUE);
                label.push_str(&format!("{} repeated", value.class));
                vec![(name, value.text); n]
            }
            1 => {
                let n = self.pick(&[10, 100, 1000]);
                let values: Vec<String> = (0..n)
                    .map(|_| {
                        let mut text = self.value(kind).text;
                        text.truncate(MAX_LISTED_VALUE);
                        text
                    })
                    .collect();
                label.push_str(&format!("{n} OR values"));
                vec![(name, values.join(","))]
            }
            _ => {
                let value = self.value(kind);
                label.push_str(value.class);
                vec![(name, value.text)]
            }
        };
        (
            type_name.to_owned(),
            pairs,
            format!("{} {label}", kind.name()),
        )
    }

    fn search_case(&mut self) -> Case {
        let (type_name, pairs, label) = self.criterion(None);
        let query = join(&pairs);
        match self.below(10) {
            0 | 1 => Case::new(
                format!("search (POST _search) {label}"),
                Method::POST,
                format!("/fhir/{type_name}/_search"),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(query.into_bytes()),
            2 if type_name != "Patient" && type_name != "ValueSet" && type_name != "Location" => {
                Case::new(
                    format!("compartment search {label}"),
                    Method::GET,
                    format!("/fhir/Patient/fz-ann/{type_name}?{query}"),
                )
            }
            3 => Case::new(
                format!("system search {label}"),
                Method::GET,
                format!("/fhir?_type={type_name}&{query}"),
            ),
            _ => Case::new(
                format!("search {label}"),
                Method::GET,
                format!("/fhir/{type_name}?{query}"),
            ),
        }
    }

    /// A result parameter (or chain, or `_has`) with a hostile value, beside a plain criterion.
    fn result_case(&mut self) -> Case {
        let type_name = self.pick(&["Patient", "Observation", "Encounter"]);
        let (class, pairs): (&str, Vec<(String, String)>) = match self.below(13) {
            0 | 1 => {
                let n = self.pick(&[1, 2, 5, 20, 96, 150]);
                let keys: Vec<String> = (0..n)
                    .map(|_| {
                        let key = self.pick(&[
                            "name",
                            "birthdate",
                            "_lastUpdated",
                            "date",
                            "code",
                            "_id",
                            "bogus",
                            "value-quantity",
                            "subject",
                            "_score",
                            "",
                        ]);
                        let sign = self.pick(&["", "-", "--", "+"]);
                        format!("{sign}{key}")
                    })
                    .collect();
                (
                    "_sort with many keys",
                    vec![("_sort".into(), encode(&keys.join(",")))],
                )
            }
            2 => {
                let count = self.pick(COUNTS);
                ("odd _count", vec![("_count".into(), encode(count))])
            }
            3 | 4 => {
                let target = self.pick(&[
                    "Observation:subject",
                    "Observation:subject:Patient",
                    "Observation:patient",
                    "*",
                    "Observation:*",
                    "Bogus:x",
                    ":",
                    "",
                    "Observation:subject:Bogus",
                    "Patient:general-practitioner",
                    "Encounter:location",
                ]);
                let name = self.pick(&["_include", "_revinclude"]);
                let modifier = self.pick(&["", ":iterate", ":recurse", ":bogus"]);
                let n = self.pick(&[1, 3, 50, 200]);
                (
                    "repeated _include/_revinclude",
                    vec![(format!("{name}{modifier}"), encode(target)); n],
                )
            }
            5 => {
                let value = match self.below(4) {
                    0 => (0..500)
                        .map(|n| format!("e{n}"))
                        .collect::<Vec<_>>()
                        .join(","),
                    1 => "name.family,*,,,,".to_owned(),
                    2 => String::new(),
                    _ => "name,gender,bogus".to_owned(),
                };
                ("odd _elements", vec![("_elements".into(), encode(&value))])
            }
            6 => {
                let value = self.pick(&["true", "false", "text", "data", "count", "bogus", ""]);
                let n = self.pick(&[1, 2, 30]);
                (
                    "odd _summary",
                    vec![("_summary".into(), value.to_owned()); n],
                )
            }
            7 => {
                let value = self.pick(&["none", "estimate", "accurate", "bogus", ""]);
                ("odd _total", vec![("_total".into(), value.to_owned())])
            }
            8 | 9 => {
                let depth = self.pick(&[1, 2, 5, 30]);
                let link = self.pick(&[
                    "subject:Patient.",
                    "subject.",
                    "general-practitioner.",
                    "organization.partof.",
                    "link:Patient.",
                    "subject:Bogus.",
                    ".",
                    "bogus.",
                ]);
                let last = self.pick(&["name", "bogus", "_id", "birthdate"]);
                let value = self.generic_value();
                (
                    "long or malformed chain",
                    vec![(format!("{}{last}", link.repeat(depth)), value.text)],
                )
            }
            10 | 11 => {
                let depth = self.pick(&[1, 2, 5, 20]);
                let step = self.pick(&[
                    "_has:Observation:patient:",
                    "_has:Observation:subject:",
                    "_has:Bogus:patient:",
                    "_has:Observation:bogus:",
                    "_has::patient:",
                    "_has:Observation:",
                ]);
                let last = self.pick(&["code", "_sort", "", "value-quantity"]);
                let value = self.value(Kind::Quantity);
                (
                    "deep or malformed _has",
                    vec![(format!("{}{last}", step.repeat(depth)), value.text)],
                )
            }
            _ => {
                let (name, value) = self.pick(&[
                    ("_format", "xml"),
                    ("_pretty", "maybe"),
                    ("_contained", "bogus"),
                    ("_list", "x"),
                    ("_filter", "name eq x"),
                    ("_query", "bogus"),
                    ("_type", "Patient"),
                    ("bogus-param", "x"),
                    ("", "x"),
                    ("=", "="),
                ]);
                ("unsupported parameter", vec![(name.into(), encode(value))])
            }
        };
        let mut query = pairs;
        if self.chance(0.5) {
            query.push(("_count".into(), "3".into()));
        }
        Case::new(
            format!("search {class}"),
            Method::GET,
            format!("/fhir/{type_name}?{}", join(&query)),
        )
    }

    fn history_case(&mut self) -> Case {
        let path = self.pick(&[
            "/fhir/_history",
            "/fhir/Patient/_history",
            "/fhir/Patient/fz-ann/_history",
            "/fhir/Observation/fz-bp/_history",
            "/fhir/Patient/fz-nobody/_history",
        ]);
        let (class, name, value) = match self.below(4) {
            0 => {
                let date = self.pick(DATES);
                ("odd _since", "_since", encode(date))
            }
            1 => {
                let prefix = self.pick(PREFIXES);
                let date = self.pick(DATES);
                ("odd _at", "_at", encode(&format!("{prefix}{date}")))
            }
            2 => {
                let count = self.pick(COUNTS);
                ("odd _count", "_count", encode(count))
            }
            _ => {
                let value = self.generic_value();
                let name = self.pick(&["_since", "_at", "_count", "_sort", "bogus"]);
                ("hostile value", name, value.text)
            }
        };
        Case::new(
            format!("history {class}"),
            Method::GET,
            format!("{path}?{name}={value}"),
        )
    }

    fn path_case(&mut self) -> Case {
        let id = self
            .pick(&[
                "a".repeat(65).as_str(),
                "..",
                "%00",
                "%2F",
                "%F0%9F%99%82",
                "a%20b",
                "-",
                "%zz",
                "fz-ann%0A",
                "fz-ann;x",
            ])
            .to_owned();
        let (class, method, path) = match self.below(8) {
            0 => ("bad id", Method::GET, format!("/fhir/Patient/{id}")),
            1 => {
                let version = self.pick(&["0", "-1", "abc", "99999999999999999999", "1.5", ""]);
                (
                    "bad version",
                    Method::GET,
                    format!("/fhir/Patient/fz-ann/_history/{version}"),
                )
            }
            2 => {
                let count = self.pick(COUNTS);
                let date = self.pick(DATES);
                let kind = self.pick(&["Bogus", "Observation", ""]);
                (
                    "odd $everything",
                    Method::GET,
                    format!(
                        "/fhir/Patient/fz-ann/$everything?_count={}&_since={}&_type={kind}",
                        encode(count),
                        encode(date)
                    ),
                )
            }
            3 => {
                let path = self.pick(&[
                    "/fhir/Bogus/1",
                    "/fhir/patient/fz-ann",
                    "/fhir/Patient/fz-ann/Bogus",
                    "/fhir/Patient/fz-ann/Observation/extra",
                    "/fhir/Patient/fz-ann/$bogus",
                    "/fhir//Patient",
                    "/fhir/metadata?mode=bogus",
                    "/fhir/Patient/fz-ann/_history/1/extra",
                    "/fhir/$bogus",
                ]);
                ("bad path", Method::GET, path.to_owned())
            }
            4 => {
                let method = self.pick(&[Method::PUT, Method::DELETE, Method::PATCH]);
                ("write with a bad id", method, format!("/fhir/Patient/{id}"))
            }
            5 => {
                let method = self.pick(&[Method::PUT, Method::DELETE, Method::PATCH, Method::POST]);
                let path = self.pick(&["/fhir/Bogus/1", "/fhir/patient", "/fhir/Patient/fz-ann/x"]);
                ("write to a bad path", method, path.to_owned())
            }
            6 => {
                let method = self.pick(&["OPTIONS", "TRACE", "PROPFIND", "FOO"]);
                (
                    "odd method",
                    Method::from_bytes(method.as_bytes()).unwrap_or(Method::OPTIONS),
                    "/fhir/Patient/fz-ann".to_owned(),
                )
            }
            _ => (
                "POST to an instance",
                Method::POST,
                "/fhir/Patient/fz-ann".to_owned(),
            ),
        };
        let mut case = Case::new(format!("path: {class}"), method, path);
        if case.method != Method::GET {
            let body = self.seed();
            case = case
                .header("content-type", "application/fhir+json")
                .body(body.to_string().into_bytes());
        }
        case
    }

    fn create_case(&mut self) -> Case {
        let mut resource = self.seed();
        let type_name = resource["resourceType"]
            .as_str()
            .unwrap_or("Patient")
            .to_owned();
        if let Some(object) = resource.as_object_mut() {
            object.remove("id");
        }
        let (class, heavy, invalid) = self.mutate_some(&mut resource);
        let body = self.render(&resource);
        let path = if self.chance(0.1) {
            let other = self.pick(&["Patient", "Observation", "Bogus", "OperationOutcome"]);
            format!("/fhir/{other}")
        } else {
            format!("/fhir/{type_name}")
        };
        let mut case = Case::new(format!("create: {class}"), Method::POST, path)
            .header("content-type", "application/fhir+json")
            .body(body);
        case.heavy = heavy;
        case.must_fail = invalid;
        self.maybe_prefer(case)
    }

    fn update_case(&mut self) -> Case {
        let mut resource = self.seed();
        let type_name = resource["resourceType"]
            .as_str()
            .unwrap_or("Patient")
            .to_owned();
        let id = resource["id"].as_str().unwrap_or("fz-ann").to_owned();
        let (class, heavy, invalid) = self.mutate_some(&mut resource);
        let body = self.render(&resource);
        let target = if self.chance(0.15) {
            self.pick(&["fz-other", "fz-ann", "new-one"]).to_owned()
        } else {
            id
        };
        let mut case = Case::new(
            format!("update: {class}"),
            Method::PUT,
            format!("/fhir/{type_name}/{target}"),
        )
        .header("content-type", "application/fhir+json")
        .body(body);
        case.heavy = heavy;
        case.must_fail = invalid;
        if self.chance(0.15) {
            let tag = self.pick(HEADER_VALUES);
            case = case.header("if-match", tag);
        }
        self.maybe_prefer(case)
    }

    fn conditional_case(&mut self) -> Case {
        let mut resource = self.seed();
        let type_name = resource["resourceType"]
            .as_str()
            .unwrap_or("Patient")
            .to_owned();
        let (_, pairs, label) = self.criterion(Some(&type_name));
        let criteria = join(&pairs);
        match self.below(4) {
            0 => {
                if let Some(object) = resource.as_object_mut() {
                    object.remove("id");
                }
                Case::new(
                    format!("conditional create (If-None-Exist) {label}"),
                    Method::POST,
                    format!("/fhir/{type_name}"),
                )
                .header("content-type", "application/fhir+json")
                .header("if-none-exist", &criteria)
                .body(resource.to_string().into_bytes())
            }
            1 => {
                if self.chance(0.5) {
                    remove_id(&mut resource);
                }
                Case::new(
                    format!("conditional update {label}"),
                    Method::PUT,
                    format!("/fhir/{type_name}?{criteria}"),
                )
                .header("content-type", "application/fhir+json")
                .body(resource.to_string().into_bytes())
            }
            2 => Case::new(
                format!("conditional delete {label}"),
                Method::DELETE,
                format!("/fhir/{type_name}?{criteria}"),
            ),
            _ => Case::new(
                format!("conditional patch {label}"),
                Method::PATCH,
                format!("/fhir/{type_name}?{criteria}"),
            )
            .header("content-type", "application/json-patch+json")
            .body(
                json!([{"op": "add", "path": "/meta", "value": {"tag": [{"code": "patched"}]}}])
                    .to_string()
                    .into_bytes(),
            ),
        }
    }

    /// A JSON Patch on a seed resource: `(label, patch text, heavy)`.
    fn patch(&mut self, resource: &Value) -> (&'static str, String, bool) {
        let keys: Vec<String> = resource
            .as_object()
            .map(|object| object.keys().cloned().collect())
            .unwrap_or_default();
        let key = if keys.is_empty() {
            "id".to_owned()
        } else {
            keys[self.below(keys.len())].clone()
        };
        let array_key = resource
            .as_object()
            .and_then(|object| {
                object
                    .iter()
                    .find(|(_, value)| value.is_array())
                    .map(|(key, _)| key.clone())
            })
            .unwrap_or_else(|| "identifier".to_owned());
        let (class, patch, heavy) = match self.below(14) {
            0 => {
                let value = resource[&key].clone();
                (
                    "valid replace",
                    json!([{"op": "replace", "path": format!("/{key}"), "value": value}]),
                    false,
                )
            }
            1 | 2 => {
                // Each operation doubles the array: bounded here so that the test cannot exhaust
                // the machine's memory while the server does not bound patches itself.
                let n = self.pick(&[1, 4, 8, 10, 12]);
                let ops: Vec<Value> = (0..n)
                    .map(|_| json!({"op": "copy", "from": format!("/{array_key}"), "path": format!("/{array_key}/-")}))
                    .collect();
                ("self-copy into its own child", Value::Array(ops), n >= 10)
            }
            3 => {
                let n = self.pick(&[1, 4, 8, 10]);
                let mut ops = vec![json!({"op": "add", "path": "/contained", "value": []})];
                ops.extend(
                    (0..n).map(|_| json!({"op": "copy", "from": "", "path": "/contained/-"})),
                );
                ("copy of the root into itself", Value::Array(ops), n >= 8)
            }
            4 => (
                "move into its own child",
                json!([{"op": "move", "from": format!("/{array_key}"), "path": format!("/{array_key}/0/x")}]),
                false,
            ),
            5 => {
                let op = self.pick(&[json!("bogus"), json!(""), json!(5), Value::Null]);
                (
                    "bad op",
                    json!([{"op": op, "path": "/id", "value": "x"}]),
                    false,
                )
            }
            6 => {
                let path = self.pick(&[
                    "no-slash",
                    "/name/99",
                    "/name/-1",
                    "/~2",
                    "/name/01",
                    "//",
                    "/name/99999999999999999999",
                    "",
                ]);
                (
                    "bad path",
                    json!([{"op": "add", "path": path, "value": "x"}]),
                    false,
                )
            }
            7 => (
                "missing value or from",
                json!([{"op": "add", "path": "/x"}, {"op": "copy", "path": "/y"}]),
                false,
            ),
            8 => (
                "failing test",
                json!([{"op": "test", "path": "/id", "value": "nope"}, {"op": "remove", "path": format!("/{key}")}]),
                false,
            ),
            9 => {
                let (path, value) = self.pick(&[
                    ("/resourceType", json!("Bogus")),
                    ("/resourceType", json!("Patient")),
                    ("/id", json!("fz-other")),
                    ("/meta", json!({"versionId": "999"})),
                    ("/birthDate", json!(5)),
                    ("/name", json!([5, "x", [1, [2]], true])),
                    ("/status", json!({"a": 1})),
                ]);
                (
                    "replace of an identity or with a wrong type",
                    json!([{"op": "add", "path": path, "value": value}]),
                    false,
                )
            }
            10 => {
                let length = self.pick(&[100_000, 1_500_000]);
                let div = format!(
                    "<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>",
                    "x".repeat(length)
                );
                (
                    "huge value",
                    json!([{"op": "add", "path": "/text", "value": {"status": "generated", "div": div}}]),
                    length > 1_000_000,
                )
            }
            11 => {
                let n = self.pick(&[1000, 5000]);
                let mut ops = vec![json!({"op": "add", "path": "/identifier", "value": []})];
                ops.extend((0..n).map(|i| json!({"op": "add", "path": "/identifier/-", "value": {"value": format!("id-{i}")}})));
                ("many operations", Value::Array(ops), false)
            }
            12 => {
                let patch = self.pick(&[
                    json!({}),
                    json!("x"),
                    json!([1, 2]),
                    json!([[]]),
                    Value::Null,
                    json!([{"op": "add"}]),
                ]);
                ("not a patch", patch, false)
            }
            _ => ("empty patch", json!([]), false),
        };
        (class, patch.to_string(), heavy)
    }

    fn patch_case(&mut self) -> Case {
        let resource = self.seed();
        let type_name = resource["resourceType"]
            .as_str()
            .unwrap_or("Patient")
            .to_owned();
        let id = resource["id"].as_str().unwrap_or("fz-ann").to_owned();
        let (class, patch, heavy) = self.patch(&resource);
        let content_type = if self.chance(0.9) {
            "application/json-patch+json"
        } else {
            self.pick(&["application/fhir+json", "application/json", "text/plain"])
        };
        let mut case = Case::new(
            format!("patch: {class}"),
            Method::PATCH,
            format!("/fhir/{type_name}/{id}"),
        )
        .header("content-type", content_type)
        .body(patch.into_bytes());
        case.heavy = heavy;
        if self.chance(0.1) {
            let tag = self.pick(HEADER_VALUES);
            case = case.header("if-match", tag);
        }
        case
    }

    /// One Bundle entry: `(label, entry)`.
    fn entry(&mut self) -> (&'static str, Value) {
        let mut resource = self.seed();
        let type_name = resource["resourceType"]
            .as_str()
            .unwrap_or("Patient")
            .to_owned();
        let id = resource["id"].as_str().unwrap_or("fz-ann").to_owned();
        let full_url = format!("urn:uuid:{}", self.uuid());
        match self.below(14) {
            0 => {
                remove_id(&mut resource);
                (
                    "valid create",
                    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": type_name}}),
                )
            }
            1 => {
                remove_id(&mut resource);
                let (_, heavy, _) = self.mutate_some(&mut resource);
                // The raw texts cannot live inside a Value: mutated entries keep their
                // placeholders, and stay small (the heavy cases are a phase of their own).
                self.raws.clear();
                if heavy {
                    resource = json!({"resourceType": type_name});
                }
                (
                    "mutated create",
                    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": type_name}}),
                )
            }
            2 => (
                "valid update",
                json!({"resource": resource, "request": {"method": "PUT", "url": format!("{type_name}/{id}")}}),
            ),
            3 => (
                "update with an id mismatch",
                json!({"resource": resource, "request": {"method": "PUT", "url": format!("{type_name}/fz-other")}}),
            ),
            4 => (
                "delete",
                json!({"request": {"method": "DELETE", "url": format!("{type_name}/{id}")}}),
            ),
            5 => {
                let (_, pairs, _) = self.criterion(Some(&type_name));
                (
                    "hostile conditional delete",
                    json!({"request": {"method": "DELETE", "url": format!("{type_name}?{}", join(&pairs))}}),
                )
            }
            6 => {
                remove_id(&mut resource);
                let (_, pairs, _) = self.criterion(Some(&type_name));
                (
                    "hostile ifNoneExist",
                    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": type_name, "ifNoneExist": join(&pairs)}}),
                )
            }
            7 => {
                let (_, pairs, _) = self.criterion(Some("Patient"));
                let dangling = format!("urn:uuid:{}", self.uuid());
                let reference = self.pick(&[
                    format!("Patient?{}", join(&pairs)),
                    dangling,
                    "Patient?".to_owned(),
                ]);
                (
                    "hostile or dangling reference",
                    json!({"fullUrl": full_url, "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": reference}}, "request": {"method": "POST", "url": "Observation"}}),
                )
            }
            8 => {
                let (_, patch, _) = self.patch(&resource);
                let data = self.pick(&[
                    base64(patch.as_bytes()),
                    "!!not base64!!".to_owned(),
                    String::new(),
                ]);
                let content_type = self.pick(&["application/json-patch+json", "text/plain"]);
                (
                    "patch as a Binary",
                    json!({"resource": {"resourceType": "Binary", "contentType": content_type, "data": data}, "request": {"method": "PATCH", "url": format!("{type_name}/{id}")}}),
                )
            }
            9 => {
                let (_, pairs, _) = self.criterion(Some(&type_name));
                (
                    "search entry",
                    json!({"request": {"method": "GET", "url": format!("{type_name}?{}", join(&pairs))}}),
                )
            }
            10 => {
                let request = self.pick(&[
                    Value::Null,
                    json!({"method": "BOGUS", "url": "Patient"}),
                    json!({"method": "POST", "url": ""}),
                    json!({"method": "POST", "url": "http://evil.example/fhir/Patient"}),
                    json!({"method": "PUT", "url": "../../Patient/x"}),
                    json!({"method": "PUT", "url": "Patient/fz-ann", "ifMatch": "W/\"x\""}),
                    json!({"method": 5}),
                ]);
                (
                    "bad request element",
                    json!({"fullUrl": full_url, "resource": resource, "request": request}),
                )
            }
            11 => {
                let entry = self.pick(&[json!(5), json!("x"), json!([]), Value::Null, json!({})]);
                ("entry not an object", entry)
            }
            12 => (
                "nested Bundle",
                json!({"fullUrl": full_url, "resource": {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": resource, "request": {"method": "POST", "url": type_name}}]}, "request": {"method": "POST", "url": "Bundle"}}),
            ),
            _ => (
                "resource missing",
                json!({"fullUrl": full_url, "request": {"method": "POST", "url": type_name}}),
            ),
        }
    }

    fn bundle_case(&mut self) -> Case {
        let kind = self.pick(&[
            json!("transaction"),
            json!("transaction"),
            json!("batch"),
            json!("batch"),
            json!("searchset"),
            json!("bogus"),
            json!(5),
        ]);
        let n = self.pick(&[0, 1, 2, 3, 5, 10, 50]);
        let mut label = "no entries";
        let mut entries = Vec::with_capacity(n);
        for i in 0..n {
            let (class, entry) = self.entry();
            if i == 0 || (label == "valid create" && class != "valid create") {
                label = class;
            }
            entries.push(entry);
        }
        if n > 1 && self.chance(0.1) {
            // Two entries with the same fullUrl.
            let copy = entries[0].clone();
            entries.push(copy);
            label = "duplicate fullUrl";
        }
        let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": entries});
        let kind = kind.as_str().unwrap_or("non-string type").to_owned();
        Case::new(
            format!("bundle {kind}: {label}"),
            Method::POST,
            "/fhir".to_owned(),
        )
        .header("content-type", "application/fhir+json")
        .body(bundle.to_string().into_bytes())
    }

    fn malformed_case(&mut self) -> Case {
        let resource = self.seed();
        let type_name = resource["resourceType"]
            .as_str()
            .unwrap_or("Patient")
            .to_owned();
        let text = resource.to_string();
        let mut content_type = "application/fhir+json".to_owned();
        let (class, body): (&str, Vec<u8>) = match self.below(17) {
            0 => {
                let cut = self.below(text.len());
                ("truncated JSON", text.as_bytes()[..cut].to_vec())
            }
            1 => ("trailing garbage", format!("{text}}}}}\u{0}").into_bytes()),
            2 => (
                "duplicate keys",
                format!(
                    "{{\"resourceType\":\"{type_name}\",\"resourceType\":\"Observation\",{}",
                    &text[1..]
                )
                .into_bytes(),
            ),
            3 => ("comments", format!("/* hi */{text}").into_bytes()),
            4 => (
                "NaN literal",
                text.replacen('{', "{\"x\":NaN,", 1).into_bytes(),
            ),
            5 => ("byte order mark", format!("\u{feff}{text}").into_bytes()),
            6 => {
                let mut bytes = text.into_bytes();
                let at = bytes.len() / 2;
                bytes.splice(at..at, [0xff, 0xfe, 0xc3]);
                ("invalid UTF-8", bytes)
            }
            7 => (
                "lone surrogate",
                text.replacen("\"id\":\"", "\"id\":\"\\ud800", 1)
                    .into_bytes(),
            ),
            8 => (
                "escaped NUL",
                text.replacen("\"id\":\"", "\"id\":\"\\u0000", 1)
                    .into_bytes(),
            ),
            9 => {
                let depth = self.pick(&[1000, 100_000]);
                (
                    "deep nesting",
                    format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes(),
                )
            }
            10 => ("empty body", Vec::new()),
            11 => {
                let scalar = self.pick(&["5", "\"x\"", "null", "true", "  "]);
                ("JSON scalar", scalar.as_bytes().to_vec())
            }
            12 => ("JSON array", format!("[{text}]").into_bytes()),
            13 => (
                "huge number literal",
                text.replacen('{', "{\"x\":1e999999999,", 1).into_bytes(),
            ),
            14 => ("form body", b"resourceType=Patient&name=x".to_vec()),
            _ => {
                content_type = self
                    .pick(&[
                        "text/plain",
                        "application/xml",
                        "application/fhir+xml",
                        "multipart/form-data; boundary=x",
                        "application/x-www-form-urlencoded",
                        "application/json-patch+json",
                        "application/fhir+json; charset=latin1",
                        "application/fhir+json; charset=utf-16",
                        "a/b/c",
                        "",
                        "application/fhir+json;;;;;",
                        "APPLICATION/FHIR+JSON",
                    ])
                    .to_owned();
                ("content type", text.into_bytes())
            }
        };
        let (method, path) = match self.below(3) {
            0 => (Method::POST, format!("/fhir/{type_name}")),
            1 => (
                Method::PUT,
                format!(
                    "/fhir/{type_name}/{}",
                    resource["id"].as_str().unwrap_or("x")
                ),
            ),
            _ => (Method::POST, "/fhir".to_owned()),
        };
        let label = if class == "content type" {
            format!("content type {content_type:?}")
        } else {
            format!("malformed body: {class}")
        };
        Case::new(label, method, path)
            .header("content-type", &content_type)
            .body(body)
    }

    fn header_case(&mut self) -> Case {
        let (name, value): (&'static str, String) = match self.below(8) {
            0 => ("if-none-match", self.pick(HEADER_VALUES).to_owned()),
            1 => (
                "if-modified-since",
                self.pick(&[
                    "garbage",
                    "Fri, 31 Dec 9999 23:59:59 GMT",
                    "Sat, 99 Foo 2020 99:99:99 GMT",
                    "",
                ])
                .to_owned(),
            ),
            2 => (
                "x-event-position",
                self.pick(&["-1", "abc", "99999999999999999999", "1e9", "", "0"])
                    .to_owned(),
            ),
            3 => (
                "prefer",
                self.pick(&[
                    "return=bogus",
                    "handling=bogus",
                    "handling=strict",
                    "return=representation, return=minimal",
                    "respond-async",
                ])
                .to_owned(),
            ),
            4 => (
                "accept",
                self.pick(&[
                    "application/xml",
                    "text/html",
                    "application/fhir+xml",
                    "*/*;q=bogus",
                    "application/fhir+json;fhirVersion=9.9",
                ])
                .to_owned(),
            ),
            5 => (
                "x-demo-user",
                self.pick(&["x".repeat(5000), "'; drop table fhir_event; --".to_owned()]),
            ),
            6 => (
                "x-forwarded-for",
                self.pick(&["1.2.3.4, evil", "999.999.999.999", "::::"])
                    .to_owned(),
            ),
            _ => ("cookie", "x".repeat(self.pick(&[100, 9000]))),
        };
        let write = self.chance(0.4);
        let mut case = if write {
            let resource = self.seed();
            let type_name = resource["resourceType"]
                .as_str()
                .unwrap_or("Patient")
                .to_owned();
            let id = resource["id"].as_str().unwrap_or("fz-ann").to_owned();
            Case::new(
                format!("header {name} on a write"),
                Method::PUT,
                format!("/fhir/{type_name}/{id}"),
            )
            .header("content-type", "application/fhir+json")
            .body(resource.to_string().into_bytes())
        } else {
            let path = self.pick(&[
                "/fhir/Patient/fz-ann",
                "/fhir/Patient?name=smith",
                "/fhir/metadata",
            ]);
            Case::new(
                format!("header {name} on a read"),
                Method::GET,
                path.to_owned(),
            )
        };
        case = case.header(name, &value);
        case
    }

    fn maybe_prefer(&mut self, case: Case) -> Case {
        if self.chance(0.2) {
            let prefer = self.pick(&[
                "return=minimal",
                "return=representation",
                "return=OperationOutcome",
                "return=bogus",
            ]);
            case.header("prefer", prefer)
        } else {
            case
        }
    }

    /// One to three mutations of `resource`: the first one's label, and whether any makes the
    /// body very large.
    fn mutate_some(&mut self, resource: &mut Value) -> (String, bool, bool) {
        self.raws.clear();
        let n = self.pick(&[1, 1, 1, 2, 3]);
        let mut label = String::new();
        let mut heavy = false;
        let mut invalid = false;
        for i in 0..n {
            let (class, big) = self.mutate(resource);
            heavy |= big;
            if i == 0 {
                label.push_str(class);
                // A later mutation could remove what made the body invalid.
                invalid = n == 1 && ALWAYS_INVALID.contains(&class);
            }
        }
        (label, heavy, invalid)
    }

    /// A value standing for `text` in the JSON text [`Self::render`] writes.
    fn raw_json(&mut self, text: String) -> Value {
        self.raws.push(text);
        Value::String(format!("@@fuzz-raw-{}@@", self.raws.len() - 1))
    }

    /// The body's text, with the raw JSON texts spliced in.
    fn render(&mut self, resource: &Value) -> Vec<u8> {
        let mut text = resource.to_string();
        for (i, raw) in self.raws.drain(..).enumerate() {
            text = text.replace(&format!("\"@@fuzz-raw-{i}@@\""), &raw);
        }
        text.into_bytes()
    }

    /// One mutation: its label, and whether it makes the body very large.
    fn mutate(&mut self, resource: &mut Value) -> (&'static str, bool) {
        let mut pointers = Vec::new();
        collect_pointers(resource, String::new(), &mut pointers);
        let pointer = if pointers.is_empty() {
            "/id".to_owned()
        } else {
            pointers[self.below(pointers.len())].clone()
        };
        let current = resource.pointer(&pointer).cloned().unwrap_or(Value::Null);
        let (class, replacement, heavy): (&'static str, Value, bool) = match self.below(17) {
            0 => {
                let other = self.pick(&[
                    json!(5),
                    json!(-1.5),
                    json!(true),
                    Value::Null,
                    json!("x"),
                    json!([]),
                    json!({}),
                ]);
                ("wrong type in a field", other, false)
            }
            1 => ("array where an object goes", json!([current]), false),
            2 => {
                let first = current
                    .as_array()
                    .and_then(|items| items.first().cloned())
                    .unwrap_or(json!({}));
                ("object where an array goes", first, false)
            }
            3 => (
                "non-objects in an array of objects",
                json!([5, "x", [1, [2]], true]),
                false,
            ),
            4 => {
                let depth = self.pick(&[50, 200, 2000, 100_000]);
                let (open, close) = self.pick(&[("[", "]"), ("{\"a\":", "}")]);
                let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
                ("deep nesting", self.raw_json(text), false)
            }
            5 => {
                let length = self.pick(&[10_000, 200_000, 200_000, 1_600_000]);
                ("huge string", json!("x".repeat(length)), length > 1_000_000)
            }
            6 => {
                let copies = self.pick(&[1000, 20_000]);
                (
                    "many array elements",
                    json!(vec![current; copies]),
                    copies > 10_000,
                )
            }
            7 => {
                let reference = self.pick(&[
                    "Patient/does-not-exist",
                    "Bogus/1",
                    "",
                    "Patient/",
                    "#missing",
                    "urn:uuid:not-a-uuid",
                    "Patient/fz-ann/_history/99",
                    "Patient?name=smith",
                    "http://evil.example/fhir/Patient/1",
                ]);
                let at = pointers
                    .iter()
                    .filter(|p| p.ends_with("/reference"))
                    .cloned()
                    .collect::<Vec<_>>();
                if at.is_empty() {
                    ("invalid reference", json!({"reference": reference}), false)
                } else {
                    let target = at[self.below(at.len())].clone();
                    if let Some(slot) = resource.pointer_mut(&target) {
                        *slot = json!(reference);
                    }
                    return ("invalid reference", false);
                }
            }
            8 => {
                let kind = self.pick(&[
                    json!("Bogus"),
                    json!("patient"),
                    json!(""),
                    json!(5),
                    Value::Null,
                    json!("OperationOutcome"),
                    json!("Bundle"),
                    json!("Observation"),
                ]);
                resource["resourceType"] = kind;
                return ("wrong resourceType", false);
            }
            9 => {
                let id = self.pick(&[
                    json!("fz-other"),
                    json!(""),
                    json!("a".repeat(65)),
                    json!("../x"),
                    json!("fz ann"),
                    json!(5),
                    json!("ñ"),
                ]);
                resource["id"] = id;
                return ("id mismatch or bad id", false);
            }
            10 => {
                let (key, value) = self.pick(&[
                    ("bogusElement", json!(1)),
                    ("_gender", json!({"extension": "x"})),
                    ("resourceType", json!("Patient")),
                    ("", json!("")),
                    ("extension", json!([{"url": "", "valueString": 5}])),
                    ("modifierExtension", json!([{"url": "x".repeat(5000)}])),
                ]);
                return match resource.pointer_mut(&parent(&pointer)) {
                    Some(Value::Object(object)) => {
                        object.insert(key.to_owned(), value);
                        ("unknown or bad element", false)
                    }
                    _ => ("unknown or bad element", false),
                };
            }
            11 => {
                let (parent_pointer, key) = split(&pointer);
                if let Some(Value::Object(object)) = resource.pointer_mut(&parent_pointer) {
                    object.remove(&key);
                }
                return ("missing element", false);
            }
            12 => {
                let text = self.pick(&[
                    "\u{0}".to_owned(),
                    "\u{202e}gnp.exe".to_owned(),
                    "a\r\nSet-Cookie: x".to_owned(),
                    "<script>alert(1)</script>".to_owned(),
                    "\u{301}".repeat(1000),
                ]);
                ("hostile string", json!(text), false)
            }
            13 => {
                let number = self.pick(&[
                    "1e999999999",
                    "-1e999999999",
                    "1e-28",
                    "1e-999999999",
                    "123456789012345678901234567890",
                    "0.0000000000000000000000000000000001",
                    "-0",
                    "1E400",
                ]);
                let at = pointers
                    .iter()
                    .filter(|p| resource.pointer(p).is_some_and(Value::is_number))
                    .cloned()
                    .collect::<Vec<_>>();
                let value = self.raw_json(number.to_owned());
                if at.is_empty() {
                    ("out-of-range number", value, false)
                } else {
                    let target = at[self.below(at.len())].clone();
                    if let Some(slot) = resource.pointer_mut(&target) {
                        *slot = value;
                    }
                    return ("out-of-range number", false);
                }
            }
            14 => {
                let text = self.pick(&[
                    "2020-13-45",
                    "not a date",
                    "  ",
                    "\t",
                    "1970-02-03T25:00:00Z",
                    "ŝ",
                ]);
                ("bad primitive format", json!(text), false)
            }
            15 => {
                resource["meta"] = self.pick(&[
                    json!({"versionId": "999", "lastUpdated": "1900-01-01T00:00:00Z"}),
                    json!({"profile": ["not a url"], "security": 5}),
                    json!({"tag": [{"system": format!("http://example.org/{}", "s".repeat(3000)), "code": "y"}]}),
                ]);
                return ("hostile meta", false);
            }
            _ => {
                resource["identifier"] = json!([{"system": format!("http://example.org/{}", "s".repeat(3000)), "value": "x"}]);
                return ("3 KB identifier system", false);
            }
        };
        match resource.pointer_mut(&pointer) {
            Some(slot) => *slot = replacement,
            None => resource["extension"] = replacement,
        }
        (class, heavy)
    }
}

/// JSON pointers of every node below the root.
fn collect_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                let pointer = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(pointer.clone());
                collect_pointers(child, pointer, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let pointer = format!("{at}/{i}");
                out.push(pointer.clone());
                collect_pointers(child, pointer, out);
            }
        }
        _ => {}
    }
}

fn remove_id(resource: &mut Value) {
    if let Some(object) = resource.as_object_mut() {
        object.remove("id");
    }
}

fn parent(pointer: &str) -> String {
    split(pointer).0
}

/// `(parent pointer, last key)`.
fn split(pointer: &str) -> (String, String) {
    match pointer.rfind('/') {
        Some(at) => (
            pointer[..at].to_owned(),
            pointer[at + 1..].replace("~1", "/").replace("~0", "~"),
        ),
        None => (String::new(), pointer.to_owned()),
    }
}

fn join(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Case {
    fn new(label: String, method: Method, path: String) -> Case {
        Case {
            label,
            method,
            path,
            headers: Vec::new(),
            body: None,
            heavy: false,
            must_fail: false,
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Case {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn body(mut self, body: Vec<u8>) -> Case {
        self.body = Some(body);
        self
    }
}
