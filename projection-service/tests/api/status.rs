//! `/status`, `/metrics`, readiness, and invalidation of the query service's cache entries.

use std::time::Duration;

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn status_reports_position_and_lag() {
    let mut app = TestApp::spawn().await;
    app.put_ok(&json!({"resourceType": "Patient", "id": "first"}))
        .await;
    app.caught_up().await;
    let status = app.status(&app.projection).await;
    assert_eq!(status["eventsBehind"], json!(0), "{status}");
    assert_eq!(status["position"], status["head"]);
    assert_eq!(status["secondsBehind"].as_f64(), Some(0.0));
    assert_eq!(status["consumerConnected"], json!(true));

    // An instance that cannot reach NATS reports the lag of the tables it cannot advance.
    app.stop_projection().await;
    let mut settings = app.projection_settings();
    settings.nats.nats_url = format!("nats://127.0.0.1:{}", test_support::free_port());
    let stuck = projection_service::Application::build(settings)
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", stuck.port());
    tokio::spawn(stuck.run_until(std::future::pending()));
    for n in 0..5 {
        app.put_ok(&json!({"resourceType": "Patient", "id": format!("late{n}")}))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let status = app.status(&base).await;
    assert_eq!(status["eventsBehind"], json!(5), "{status}");
    assert!(status["secondsBehind"].as_f64().unwrap() >= 1.0, "{status}");
    assert_eq!(status["consumerConnected"], json!(false));

    let metrics = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\nprojection_events_behind 5\n"),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE projection_lag_seconds gauge"));
    let ready = app
        .client
        .get(format!("{base}/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "not ready without its consumer");

    // Once an instance consumes again, the lag goes.
    let (_healthy, _stop) = app.spawn_projection().await;
    app.caught_up().await;
    let status = app.status(&base).await;
    assert_eq!(status["eventsBehind"], json!(0), "{status}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_projected_change_removes_the_resource_from_the_cache() {
    let app = TestApp::spawn().await;
    let client = redis::Client::open(test_support::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let id = format!("cached-{}", uuid::Uuid::new_v4());
    let key = format!("fhir:resource:Patient/{id}");
    let other = format!("fhir:resource:Patient/untouched-{id}");
    app.put_ok(&json!({"resourceType": "Patient", "id": id, "gender": "male"}))
        .await;
    app.caught_up().await;
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("stale")
        .query_async(&mut redis)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&other)
        .arg("kept")
        .query_async(&mut redis)
        .await
        .unwrap();

    app.put_ok(&json!({"resourceType": "Patient", "id": id, "gender": "female"}))
        .await;
    test_support::eventually(
        "the stale cache entry is replaced or evicted",
        Duration::from_secs(10),
        || {
            let mut redis = redis.clone();
            let key = key.clone();
            async move {
                let value: Option<String> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut redis)
                    .await
                    .unwrap();
                // Gone (evicted by the projection) or version 2 (stored by the command service).
                value
                    .is_none_or(|value| value.starts_with("r1|2|"))
                    .then_some(())
            }
        },
    )
    .await;
    let kept: Option<String> = redis::cmd("GET")
        .arg(&other)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("kept"), "other entries stay");
    let _: () = redis::cmd("DEL")
        .arg(&other)
        .query_async(&mut redis)
        .await
        .unwrap();
    app.cleanup().await;
}
