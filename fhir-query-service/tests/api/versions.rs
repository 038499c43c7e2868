//! `$diff` and `$timeline`: what changed between versions, and who changed it, for a resource
//! written every way a resource can be.

use serde_json::{Value, json};

use crate::helpers::TestApp;

fn parameters<'a>(resource: &'a Value, name: &str) -> Vec<&'a Value> {
    resource["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|parameter| parameter["name"] == name)
        .collect()
}

#[tokio::test]
async fn every_diff_turns_one_version_into_the_next_and_the_timeline_names_who_and_why() {
    let app = TestApp::spawn().await;
    let write = |method: reqwest::Method, path: &str, body: Value, media: &str| {
        app.client
            .request(method, format!("{}/{path}", app.writes))
            .header("content-type", media)
            .header("x-change-reason", format!("step via {path}"))
            .body(body.to_string())
    };
    let fhir = "application/fhir+json";
    // 1: create; 2: update; 3: JSON Patch; 4: conditional update; 5: in a transaction; 6: delete.
    let observation = json!({"resourceType": "Observation", "id": "diffed", "status": "preliminary",
        "identifier": [{"system": "urn:diff", "value": "d1"}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "valueQuantity": {"value": 72, "unit": "/min"}});
    let response = write(
        reqwest::Method::PUT,
        "Observation/diffed",
        observation.clone(),
        fhir,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 201);
    let mut updated = observation.clone();
    updated["status"] = json!("final");
    assert!(
        write(
            reqwest::Method::PUT,
            "Observation/diffed",
            updated.clone(),
            fhir
        )
        .send()
        .await
        .unwrap()
        .status()
        .is_success()
    );
    let patch = json!([{"op": "replace", "path": "/valueQuantity/value", "value": 90}]);
    assert!(
        write(
            reqwest::Method::PATCH,
            "Observation/diffed",
            patch,
            "application/json-patch+json"
        )
        .send()
        .await
        .unwrap()
        .status()
        .is_success()
    );
    let mut conditional = updated.clone();
    conditional["valueQuantity"]["value"] = json!(95);
    conditional["note"] = json!([{"text": "rechecked"}]);
    assert!(
        write(
            reqwest::Method::PUT,
            "Observation?identifier=urn:diff|d1",
            conditional.clone(),
            fhir
        )
        .send()
        .await
        .unwrap()
        .status()
        .is_success()
    );
    let mut in_bundle = conditional.clone();
    in_bundle["code"]["coding"][0]["display"] = json!("Heart rate");
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": in_bundle, "request": {"method": "PUT", "url": "Observation/diffed"}}]});
    assert!(
        write(reqwest::Method::POST, "", bundle, fhir)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let response = app
        .client
        .delete(format!("{}/Observation/diffed", app.writes))
        .header("x-change-reason", "entered in error")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());

    let limits = fhir_model::PatchLimits {
        max_operations: 1_000,
        max_bytes: 1 << 20,
    };
    for from in 1..6 {
        let to = from + 1;
        let diff: Value = app
            .get(&format!("Observation/diffed/$diff?from={from}&to={to}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(diff["resourceType"], "Parameters", "{diff}");
        let patch: Value = serde_json::from_str(
            parameters(&diff, "patch")[0]["valueString"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let version = |v: i32| {
            let app = &app;
            async move { app.get(&format!("Observation/diffed/_history/{v}")).await }
        };
        let older = version(from).await;
        let older: Value = if older.status() == 200 {
            older.json().await.unwrap()
        } else {
            Value::Null
        };
        let newer = version(to).await;
        if newer.status() != 200 {
            // The delete: its event keeps the version it deleted; the diff is empty of content.
            continue;
        }
        let newer: Value = newer.json().await.unwrap();
        let applied = fhir_model::apply_patch(&older, &patch, limits).unwrap();
        assert_eq!(applied, newer, "$diff {from} -> {to}");
    }
    let diff: Value = app
        .get("Observation/diffed/$diff?from=2&to=3")
        .await
        .json()
        .await
        .unwrap();
    let paths: Vec<&str> = parameters(&diff, "path")
        .iter()
        .map(|p| p["valueString"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"Observation.valueQuantity.value"),
        "{paths:?}"
    );

    let timeline: Value = app
        .get("Observation/diffed/$timeline")
        .await
        .json()
        .await
        .unwrap();
    let versions = parameters(&timeline, "version");
    assert_eq!(versions.len(), 6);
    let part = |version: &Value, name: &str| -> Vec<String> {
        version["part"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|part| part["name"] == name)
            .map(|part| {
                part.as_object()
                    .unwrap()
                    .iter()
                    .find(|(key, _)| key.starts_with("value"))
                    .unwrap()
                    .1
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let kinds: Vec<String> = versions
        .iter()
        .map(|v| part(v, "kind")[0].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            "ResourceCreated",
            "ResourceUpdated",
            "ResourceUpdated",
            "ResourceUpdated",
            "ResourceUpdated",
            "ResourceDeleted"
        ]
    );
    assert_eq!(part(versions[1], "reason"), ["step via Observation/diffed"]);
    assert_eq!(part(versions[5], "reason"), ["entered in error"]);
    assert!(part(versions[2], "changed").contains(&"Observation.valueQuantity.value".to_owned()));
    assert!(!part(versions[0], "user").is_empty(), "the actor");
    // Errors: an unknown version, a bad parameter, an unknown resource.
    assert_eq!(
        app.get("Observation/diffed/$diff?from=1&to=9")
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get("Observation/diffed/$diff?from=one&to=2")
            .await
            .status(),
        400
    );
    assert_eq!(app.get("Observation/diffed/$diff?to=2").await.status(), 400);
    assert_eq!(app.get("Observation/nothing/$timeline").await.status(), 404);
    // In the past, the timeline ends there.
    let past: Value = app
        .get("_asof/1/Observation/diffed/$timeline")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(parameters(&past, "version").len(), 1);
}
