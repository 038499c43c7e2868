//! The CapabilityStatement lists exactly what is served: every listed search parameter is run
//! as a live search under `Prefer: handling=strict`, which rejects anything unsupported.

use futures::StreamExt;
use serde_json::Value;

use crate::helpers::TestApp;

/// A value of the parameter's type that any server must accept.
fn sample(kind: &str, name: &str) -> (String, String) {
    match (kind, name) {
        (_, "near") => (name.to_owned(), "42.25|-83.7|5|km".to_owned()),
        ("string", _) => (name.to_owned(), "a".to_owned()),
        ("token", _) => (name.to_owned(), "http://example.org|x".to_owned()),
        ("reference", _) => (name.to_owned(), "x".to_owned()),
        ("date", _) => (name.to_owned(), "ge2020-01".to_owned()),
        ("number", _) => (name.to_owned(), "gt1".to_owned()),
        ("quantity", _) => (name.to_owned(), "5|http://unitsofmeasure.org|mg".to_owned()),
        ("uri", _) => (name.to_owned(), "http://example.org/x".to_owned()),
        ("special", "_text" | "_content") => (name.to_owned(), "word".to_owned()),
        // Composite values depend on their components: `:missing` is valid on every type.
        _ => (format!("{name}:missing"), "true".to_owned()),
    }
}

#[tokio::test]
async fn every_listed_search_parameter_answers_a_live_search() {
    let app = TestApp::spawn_with(true, 10_000).await;
    let statement: Value = app
        .client
        .get(format!("{}/metadata", app.reads))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    assert_eq!(statement["fhirVersion"], "4.0.1");
    let resources = statement["rest"][0]["resource"].as_array().unwrap();
    assert_eq!(resources.len(), 146, "every R4 resource type");
    let patient = resources.iter().find(|r| r["type"] == "Patient").unwrap();
    assert!(
        patient["searchInclude"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "Patient:general-practitioner")
    );
    assert!(
        patient["searchRevInclude"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "Observation:subject")
    );

    let mut searches = Vec::new();
    for resource in resources {
        let resource_type = resource["type"].as_str().unwrap().to_owned();
        for param in resource["searchParam"].as_array().unwrap() {
            let (name, value) = sample(
                param["type"].as_str().unwrap(),
                param["name"].as_str().unwrap(),
            );
            searches.push((resource_type.clone(), name, value));
        }
    }
    assert!(
        searches.len() > 1500,
        "{} parameters listed",
        searches.len()
    );
    let failures: Vec<String> = futures::stream::iter(searches)
        .map(|(resource_type, name, value)| {
            let request = app
                .client
                .get(format!("{}/{resource_type}", app.reads))
                .query(&[(name.as_str(), value.as_str()), ("_count", "1")])
                .header("prefer", "handling=strict");
            async move {
                let response = request.send().await.unwrap();
                let status = response.status();
                if status == 200 {
                    None
                } else {
                    Some(format!(
                        "{resource_type}?{name}={value}: {status} {}",
                        response.text().await.unwrap()
                    ))
                }
            }
        })
        .buffer_unordered(8)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}
