//! The oracle: the 42 Synthea bundles written through the command service and projected, then
//! well over a hundred searches spread over every parameter type, modifiers, chains, `_has`,
//! `_include`/`_revinclude`, `_sort` and paging, each checked against the same criteria
//! evaluated here directly on the resources' JSON (not through the indexer, and nothing
//! hard-coded: the codes, names and thresholds are picked from the data).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use serde_json::Value;

use crate::helpers::{TestApp, link};

/// A search and what it must return.
struct Case {
    query: String,
    expect: Expect,
}

enum Expect {
    /// These resources as matches, in any order.
    Matches(BTreeSet<String>),
    /// These resources as matches, in this order.
    Ordered(Vec<String>),
    /// These matches, and these included resources.
    WithIncluded(BTreeSet<String>, BTreeSet<String>),
    /// `_summary=count`: this total.
    Total(usize),
}

fn key(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    )
}

fn of_type<'a>(resources: &'a [Value], resource_type: &str) -> Vec<&'a Value> {
    resources
        .iter()
        .filter(|r| r["resourceType"] == resource_type)
        .collect()
}

fn codings(concept: &Value) -> Vec<(String, String)> {
    concept["coding"]
        .as_array()
        .map(|codings| {
            codings
                .iter()
                .map(|c| {
                    (
                        c["system"].as_str().unwrap_or_default().to_owned(),
                        c["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn has_code(resource: &Value, field: &str, system: &str, code: &str) -> bool {
    codings(&resource[field])
        .iter()
        .any(|(s, c)| s == system && c == code)
}

/// The most frequent codings of `field` over `resources`.
fn top_codes(resources: &[&Value], field: &str, n: usize) -> Vec<(String, String)> {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for resource in resources {
        for coding in codings(&resource[field]) {
            *counts.entry(coding).or_default() += 1;
        }
    }
    let mut ranked: Vec<_> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .take(n)
        .map(|(coding, _)| coding)
        .collect()
}

fn set<'a>(resources: impl IntoIterator<Item = &'a Value>) -> BTreeSet<String> {
    resources.into_iter().map(key).collect()
}

fn reference(resource: &Value, field: &str) -> Option<String> {
    resource[field]["reference"].as_str().map(str::to_owned)
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(&text[..10], "%Y-%m-%d").unwrap()
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn cases(resources: &[Value]) -> Vec<Case> {
    let mut cases = Vec::new();
    let patients = of_type(resources, "Patient");
    let observations = of_type(resources, "Observation");
    let conditions = of_type(resources, "Condition");
    let encounters = of_type(resources, "Encounter");
    let loinc = "http://loinc.org";

    // Tokens, with and without the system, and :not.
    for (system, code) in top_codes(&observations, "code", 15) {
        let expected = set(observations
            .iter()
            .copied()
            .filter(|o| has_code(o, "code", &system, &code)));
        cases.push(Case {
            query: format!("Observation?code={system}|{code}"),
            expect: Expect::Matches(expected.clone()),
        });
        cases.push(Case {
            query: format!("Observation?code={code}&_summary=count"),
            expect: Expect::Total(expected.len()),
        });
    }
    for gender in ["male", "female"] {
        let expected = set(patients.iter().copied().filter(|p| p["gender"] == gender));
        cases.push(Case {
            query: format!("Patient?gender={gender}"),
            expect: Expect::Matches(expected),
        });
        let others = set(patients.iter().copied().filter(|p| p["gender"] != gender));
        cases.push(Case {
            query: format!("Patient?gender:not={gender}"),
            expect: Expect::Matches(others),
        });
    }

    // Dates: birth dates by decade, both prefixes.
    for year in (1920..=2020).step_by(10) {
        let start = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
        let ge = set(patients
            .iter()
            .copied()
            .filter(|p| day(p["birthDate"].as_str().unwrap()) >= start));
        let lt = set(patients
            .iter()
            .copied()
            .filter(|p| day(p["birthDate"].as_str().unwrap()) < start));
        cases.push(Case {
            query: format!("Patient?birthdate=ge{year}"),
            expect: Expect::Matches(ge),
        });
        cases.push(Case {
            query: format!("Patient?birthdate=lt{year}"),
            expect: Expect::Matches(lt),
        });
    }
    // Encounters in a year: the period is after the year's start (or within the day) and
    // starts before the next year (search.html's ge and lt on ranges).
    for year in [2012, 2016, 2019, 2021] {
        let low = NaiveDate::from_ymd_opt(year, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        let next = NaiveDate::from_ymd_opt(year + 1, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        let day_after = low + chrono::Duration::days(1);
        let expected = set(encounters.iter().copied().filter(|e| {
            let start = instant(e["period"]["start"].as_str().unwrap());
            let high = e["period"]["end"]
                .as_str()
                .map(|end| instant(end) + chrono::Duration::seconds(1));
            let after = high.is_none_or(|high| high > day_after)
                || (start >= low && high.is_some_and(|h| h <= day_after));
            after && start < next
        }));
        cases.push(Case {
            query: format!("Encounter?date=ge{year}-01-01&date=lt{}-01-01", year + 1),
            expect: Expect::Matches(expected),
        });
    }

    // Strings: family-name prefixes, folded.
    let mut families: Vec<String> = patients
        .iter()
        .filter_map(|p| p["name"][0]["family"].as_str())
        .map(str::to_owned)
        .collect();
    families.sort();
    families.dedup();
    for family in families.iter().take(12) {
        let prefix: String = family.chars().take(3).collect::<String>().to_lowercase();
        let expected = set(patients.iter().copied().filter(|p| {
            p["name"].as_array().unwrap().iter().any(|n| {
                n["family"]
                    .as_str()
                    .is_some_and(|f| f.to_lowercase().starts_with(&prefix))
            })
        }));
        cases.push(Case {
            query: format!("Patient?family={}", prefix.to_uppercase()),
            expect: Expect::Matches(expected),
        });
    }

    // References, plain and chained, and reverse chains.
    for patient in patients.iter().take(10) {
        let target = key(patient);
        let expected = set(observations
            .iter()
            .copied()
            .filter(|o| reference(o, "subject").as_deref() == Some(target.as_str())));
        cases.push(Case {
            query: format!("Observation?subject={target}"),
            expect: Expect::Matches(expected),
        });
        let conditions_of = set(conditions
            .iter()
            .copied()
            .filter(|c| reference(c, "subject").as_deref() == Some(target.as_str())));
        cases.push(Case {
            query: format!("Condition?patient={}", patient["id"].as_str().unwrap()),
            expect: Expect::Matches(conditions_of.clone()),
        });
        cases.push(Case {
            query: format!(
                "Patient?_id={}&_revinclude=Condition:subject",
                patient["id"].as_str().unwrap()
            ),
            expect: Expect::WithIncluded(BTreeSet::from([target.clone()]), conditions_of),
        });
    }
    let gender_of: BTreeMap<String, String> = patients
        .iter()
        .map(|p| (key(p), p["gender"].as_str().unwrap_or_default().to_owned()))
        .collect();
    for (system, code) in top_codes(&observations, "code", 4) {
        let expected = set(observations.iter().copied().filter(|o| {
            has_code(o, "code", &system, &code)
                && reference(o, "subject")
                    .and_then(|s| gender_of.get(&s).cloned())
                    .as_deref()
                    == Some("female")
        }));
        cases.push(Case {
            query: format!("Observation?code={system}|{code}&subject:Patient.gender=female"),
            expect: Expect::Matches(expected),
        });
    }
    for (system, code) in top_codes(&conditions, "code", 6) {
        let with: BTreeSet<String> = conditions
            .iter()
            .copied()
            .filter(|c| has_code(c, "code", &system, &code))
            .filter_map(|c| reference(c, "subject"))
            .collect();
        cases.push(Case {
            query: format!("Patient?_has:Condition:subject:code={system}|{code}"),
            expect: Expect::Matches(with),
        });
    }

    // Quantities: above the median of a code's values, as written and in other units.
    for (system, code) in top_codes(&observations, "code", 8) {
        let mut values: Vec<(f64, String, &Value)> = observations
            .iter()
            .copied()
            .filter(|o| has_code(o, "code", &system, &code))
            .filter_map(|o| {
                Some((
                    o["valueQuantity"]["value"].as_f64()?,
                    o["valueQuantity"]["code"].as_str()?.to_owned(),
                    o,
                ))
            })
            .collect();
        if values.len() < 10 {
            continue;
        }
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (median, unit, _) = values[values.len() / 2].clone();
        let threshold = (median * 10.0).round() / 10.0;
        let expected = set(values
            .iter()
            .filter(|(v, _, _)| *v > threshold)
            .map(|(_, _, o)| *o));
        cases.push(Case {
            query: format!("Observation?code={system}|{code}&value-quantity=gt{threshold}|http://unitsofmeasure.org|{}", urlencode(&unit)),
            expect: Expect::Matches(expected),
        });
        if unit == "cm" {
            let expected = set(values
                .iter()
                .filter(|(v, _, _)| *v / 100.0 > threshold / 100.0)
                .map(|(_, _, o)| *o));
            cases.push(Case {
                query: format!("Observation?code={system}|{code}&value-quantity=gt{}|http://unitsofmeasure.org|m", threshold / 100.0),
                expect: Expect::Matches(expected),
            });
        }
    }

    // _include, :missing, _sort and paging.
    for patient in patients.iter().take(3) {
        let target = key(patient);
        let expected = set(encounters
            .iter()
            .copied()
            .filter(|e| reference(e, "subject").as_deref() == Some(target.as_str())));
        cases.push(Case {
            query: format!("Encounter?subject={target}&_include=Encounter:subject"),
            expect: Expect::WithIncluded(expected, BTreeSet::from([target])),
        });
    }
    let without_provider = set(encounters
        .iter()
        .copied()
        .filter(|e| e.get("serviceProvider").is_none()));
    cases.push(Case {
        query: "Encounter?service-provider:missing=true".into(),
        expect: Expect::Matches(without_provider),
    });
    let mut by_birth: Vec<&Value> = patients.clone();
    by_birth.sort_by_key(|p| p["birthDate"].as_str().unwrap().to_owned());
    cases.push(Case {
        query: "Patient?_sort=birthdate&_count=7".into(),
        expect: Expect::Ordered(by_birth.iter().map(|p| key(p)).collect()),
    });
    by_birth.reverse();
    cases.push(Case {
        query: "Patient?_sort=-birthdate&_count=9".into(),
        expect: Expect::Ordered(by_birth.iter().map(|p| key(p)).collect()),
    });
    let (system, code) = top_codes(&observations, "code", 1).remove(0);
    let expected = set(observations
        .iter()
        .copied()
        .filter(|o| has_code(o, "code", &system, &code)));
    cases.push(Case {
        query: format!("Observation?code={system}|{code}&_count=37&_sort=date"),
        expect: Expect::Matches(expected),
    });
    let _ = loinc;
    cases
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Every page of a search: the match and include keys, in order.
async fn run(app: &TestApp, query: &str) -> (Vec<String>, Vec<String>, Option<u64>) {
    let separator = if query.contains('?') { '&' } else { '?' };
    let has_count = query.contains("_count=");
    let first = if has_count || query.contains("_summary=count") {
        query.to_owned()
    } else {
        format!("{query}{separator}_count=1000")
    };
    let mut bundle = app.search(&first).await;
    let total = bundle["total"].as_u64();
    let (mut matches, mut included) = (Vec::new(), Vec::new());
    loop {
        for entry in bundle["entry"].as_array().cloned().unwrap_or_default() {
            let k = key(&entry["resource"]);
            match entry["search"]["mode"].as_str() {
                Some("match") => matches.push(k),
                Some("include") => included.push(k),
                _ => {}
            }
        }
        let Some(next) = link(&bundle, "next") else {
            break;
        };
        let response = app.client.get(&next).send().await.unwrap();
        assert_eq!(response.status(), 200, "{next}");
        bundle = response.json().await.unwrap();
    }
    (matches, included, total)
}

#[tokio::test]
async fn searches_over_synthea_agree_with_a_direct_evaluation_of_the_files() {
    let dir = test_support::synthea::data_dir();
    // Indexing the whole set may take longer than the default wait of the first search.
    let app = TestApp::spawn_with(true, 180_000).await;
    let levels = test_support::synthea::load_levels(&dir);
    for level in &levels {
        futures::stream::iter(level)
            .for_each_concurrent(8, |resource| app.put(resource))
            .await;
    }
    let resources: Vec<Value> = levels.into_iter().flatten().collect();
    let cases = cases(&resources);
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut failures = Vec::new();
    let mut non_empty = 0;
    for case in &cases {
        let (matches, included, total) = run(&app, &case.query).await;
        let unique: BTreeSet<String> = matches.iter().cloned().collect();
        if unique.len() != matches.len() {
            failures.push(format!("{}: a resource repeated across pages", case.query));
        }
        let ok = match &case.expect {
            Expect::Matches(expected) => {
                non_empty += usize::from(!expected.is_empty());
                &unique == expected
            }
            Expect::Ordered(expected) => &matches == expected,
            Expect::WithIncluded(expected, expected_included) => {
                let included: BTreeSet<String> = included.into_iter().collect();
                &unique == expected && &included == expected_included
            }
            Expect::Total(expected) => total == Some(*expected as u64),
        };
        if !ok {
            let expected_len = match &case.expect {
                Expect::Matches(e) | Expect::WithIncluded(e, _) => e.len(),
                Expect::Ordered(e) => e.len(),
                Expect::Total(t) => *t,
            };
            failures.push(format!(
                "{}: got {} (total {total:?}), expected {expected_len}",
                case.query,
                matches.len()
            ));
        }
    }
    eprintln!(
        "{} searches over {} resources, {non_empty} expecting a non-empty set",
        cases.len(),
        resources.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} searches disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        non_empty * 2 > cases.len() / 2,
        "too many cases expect nothing: {non_empty}"
    );
}
