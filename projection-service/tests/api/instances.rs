//! Two projection instances sharing the durable consumer produce the tables one does.

use serde_json::json;

use crate::helpers::TestApp;
use crate::rebuild::write_ward;

#[tokio::test]
async fn two_instances_produce_exactly_the_tables_of_one() {
    let mut app = TestApp::spawn().await;
    // Small pulls, so the two instances take turns instead of one taking everything.
    app.stop_projection().await;
    let mut settings = app.projection_settings();
    settings.batch_size = 5;
    let mut bases = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..2 {
        let service = projection_service::Application::build(settings.clone())
            .await
            .unwrap();
        let port = service.port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(service.run_until(async move {
            let _ = stopped.await;
        }));
        bases.push(format!("http://127.0.0.1:{port}"));
        stops.push(stop);
    }
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let client = app.client.clone();
            let writes = app.writes.clone();
            tokio::spawn(async move {
                for version in 0..4 {
                    for n in 0..15 {
                        let response = client
                            .put(format!("{writes}/Patient/w{writer}-{n}"))
                            .header("content-type", "application/fhir+json")
                            .body(
                                json!({"resourceType": "Patient", "id": format!("w{writer}-{n}"),
                                "name": [{"family": format!("Writer{writer}v{version}")}]})
                                .to_string(),
                            )
                            .send()
                            .await
                            .unwrap();
                        assert!(response.status().is_success());
                    }
                }
            })
        })
        .collect();
    write_ward(&app, "two", 3).await;
    for writer in writers {
        writer.await.unwrap();
    }
    app.caught_up().await;
    for base in &bases {
        app.status_when(base, "both instances took part", |status| {
            status["eventsReceived"].as_u64().unwrap() > 0
        })
        .await;
    }
    let shared = app.snapshot().await;

    // One instance alone (a rebuild replays sequentially) must give the same tables.
    let response = app
        .client
        .post(format!("{}/admin/rebuild", bases[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.snapshot().await, shared);
    drop(stops);
    app.cleanup().await;
}
