//! Starts a command service, a projection service and notifiers over a fresh database, stream
//! and Redis key prefix, and a WebSocket client that reads the protocol's messages.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::Client;
use serde_json::{Value, json};
use test_support::identity::TestIdentity;
use test_support::{ServiceArgs, TestDatabase, spawn_service};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The base URL the projection and the notifier treat as local.
const BASE_URL: &str = "http://fhir.test/fhir";

pub struct TestApp {
    /// `http://127.0.0.1:<port>/fhir` of the command service.
    pub writes: String,
    /// `ws://127.0.0.1:<port>/ws` of the first notifier.
    pub ws: String,
    pub client: Client,
    pub redis_prefix: String,
    database_url: String,
    stream: String,
    subject_prefix: String,
    /// The identity service the services trust (in-process, like them).
    pub identity: TestIdentity,
    /// A backend client's token (`system/*.cruds`): `client` sends it, and the `ws` URLs carry
    /// it as browsers send it (`?access_token=`).
    pub token: String,
}

impl TestApp {
    /// The services, with the first notifier started with `notifier_options` added.
    pub async fn spawn(notifier_options: &[(&str, &str)]) -> TestApp {
        let database = TestDatabase::create().await;
        let (stream, subject_prefix) = test_support::unique_stream();
        let identity = TestIdentity::spawn(&database.url).await;
        let (issuer, jwks) = (identity.issuer(), identity.jwks_url());
        let command_port = spawn_service!(
            command_service,
            ServiceArgs::new("command-service", &database.url, 5)
                .events(&stream, &subject_prefix)
                .redis()
                .auth(issuer, &jwks)
        );
        spawn_service!(
            projection_service,
            ServiceArgs::new("projection-service", &database.url, 5)
                .events(&stream, &subject_prefix)
                .redis()
                .auth(issuer, &jwks)
                .arg("--consumer", format!("projection-{stream}"))
                .arg("--fhir-base-url", BASE_URL)
        );
        let token = identity.system_token("system/*.cruds").await.access_token;
        let mut app = TestApp {
            writes: format!("http://127.0.0.1:{command_port}/fhir"),
            ws: String::new(),
            client: test_support::bearer_client(&token, Duration::from_secs(60)),
            identity,
            token,
            redis_prefix: format!("ws-test-{stream}"),
            database_url: database.url.clone(),
            stream,
            subject_prefix,
        };
        app.ws = app.spawn_notifier(notifier_options).await;
        app
    }

    /// Another notifier on the same database, stream and Redis prefix; its `/ws` URL.
    pub async fn spawn_notifier(&self, options: &[(&str, &str)]) -> String {
        let mut args = ServiceArgs::new("notifier", &self.database_url, 5)
            .events(&self.stream, &self.subject_prefix)
            .redis()
            .auth(self.identity.issuer(), &self.identity.jwks_url())
            .arg("--reference-base-url", BASE_URL)
            .arg("--redis-prefix", &self.redis_prefix)
            // A loaded machine may keep the projection behind for seconds; the tests are about
            // what is delivered, not about the wait's bound.
            .arg("--projection-wait-ms", "60000");
        for (name, value) in options {
            args = args.arg(name, value);
        }
        let port = spawn_service!(notifier, args);
        let base = format!("http://127.0.0.1:{port}");
        let client = self.client.clone();
        test_support::eventually(
            "the notifier follows the stream",
            Duration::from_secs(30),
            || {
                let client = client.clone();
                let base = base.clone();
                async move {
                    let ready = client.get(format!("{base}/ready")).send().await.ok()?;
                    ready.status().is_success().then_some(())
                }
            },
        )
        .await;
        format!("ws://127.0.0.1:{port}/ws?access_token={}", self.token)
    }

    /// Writes `resource` by id (create or update); its event position.
    pub async fn put(&self, resource: &Value) -> i64 {
        let response = self
            .client
            .put(format!(
                "{}/{}/{}",
                self.writes,
                resource["resourceType"].as_str().unwrap(),
                resource["id"].as_str().unwrap()
            ))
            .header("content-type", "application/fhir+json")
            .body(resource.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let position = position(&response);
        assert!(
            status.is_success(),
            "PUT: {status} {}",
            response.text().await.unwrap()
        );
        position.expect("a write gives its event position")
    }

    /// Posts a transaction Bundle of `resources` (PUT by id), asserting success; the position
    /// of its last event.
    pub async fn put_all(&self, resources: &[Value]) -> i64 {
        let entries: Vec<Value> = resources
            .iter()
            .map(|resource| {
                json!({
                    "resource": resource,
                    "request": {"method": "PUT", "url": format!("{}/{}", resource["resourceType"].as_str().unwrap(), resource["id"].as_str().unwrap())}
                })
            })
            .collect();
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        let response = self
            .client
            .post(&self.writes)
            .header("content-type", "application/fhir+json")
            .body(bundle.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let position = position(&response);
        assert!(
            status.is_success(),
            "transaction: {status} {}",
            response.text().await.unwrap()
        );
        position.expect("a transaction gives its last event's position")
    }

    /// Waits until the first notifier has handled every event up to `position`, so that what a
    /// test writes before subscribing cannot arrive after it.
    pub async fn settled(&self, position: i64) {
        let status = self.status_url();
        let client = self.client.clone();
        test_support::eventually(
            "the notifier reaches the position",
            Duration::from_secs(30),
            || {
                let client = client.clone();
                let status = status.clone();
                async move {
                    let reached: Value =
                        client.get(&status).send().await.ok()?.json().await.ok()?;
                    (reached["position"].as_i64()? >= position).then_some(())
                }
            },
        )
        .await;
    }

    /// `GET /status` of the first notifier.
    pub fn status_url(&self) -> String {
        self.ws
            .replace("ws://", "http://")
            .replace("/ws", "/status")
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn connect(&self) -> WsClient {
        WsClient::connect(&self.ws).await
    }

    pub async fn cleanup(&self) {
        test_support::delete_stream(&test_support::nats_url(), &self.stream).await;
        if let Ok(client) = redis::Client::open(test_support::redis_url())
            && let Ok(mut redis) = client.get_multiplexed_async_connection().await
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}:*", self.redis_prefix))
                .query_async(&mut redis)
                .await
                .unwrap_or_default();
            for key in keys {
                let _: Result<(), _> = redis::cmd("DEL").arg(key).query_async(&mut redis).await;
            }
        }
    }
}

/// The `X-Event-Position` a write answers with.
fn position(response: &reqwest::Response) -> Option<i64> {
    response
        .headers()
        .get("x-event-position")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// A WebSocket client speaking the notifier's protocol.
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How long a message that should come may take.
pub const PATIENCE: Duration = Duration::from_secs(20);

impl WsClient {
    pub async fn connect(url: &str) -> WsClient {
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        WsClient { socket }
    }

    /// Connects with extra request headers (`X-Real-IP`, ...).
    pub async fn connect_with(url: &str, headers: &[(&'static str, &str)]) -> WsClient {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(*name, value.parse().unwrap());
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        WsClient { socket }
    }

    /// Drops the TCP connection without a close frame, as a crashed client does.
    pub fn abandon(self) {
        drop(self.socket);
    }

    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.to_owned().into()))
            .await
            .unwrap();
    }

    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.socket
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .unwrap();
    }

    /// The next frame within `wait`: `Ok(json)` for a text message, `Err(close frame)` when
    /// the server closes, `None` on timeout.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Result<Value, (u16, String)>> {
        loop {
            let frame = tokio::time::timeout(wait, self.socket.next()).await.ok()?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Some(Ok(serde_json::from_str(text.as_str()).unwrap()));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Some(Err(frame
                        .map(|frame| (u16::from(frame.code), frame.reason.to_string()))
                        .unwrap_or((1005, String::new()))));
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Some(Err((1006, error.to_string()))),
                None => return Some(Err((1006, "closed".to_owned()))),
            }
        }
    }

    /// The next message, which must come.
    pub async fn next(&mut self) -> Value {
        match self.next_within(PATIENCE).await {
            Some(Ok(message)) => message,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Subscribes, checking the answer; the subscription id.
    pub async fn subscribe(&mut self, filter: Value) -> String {
        let mut message = filter;
        message["type"] = json!("subscribe");
        self.send(message).await;
        let answer = self.next().await;
        assert_eq!(answer["type"], "subscribed", "{answer}");
        answer["id"].as_str().unwrap().to_owned()
    }

    /// The next `event` message, skipping heartbeats.
    pub async fn next_event(&mut self) -> Value {
        loop {
            let message = self.next().await;
            if message["type"] != "heartbeat" {
                assert_eq!(message["type"], "event", "{message}");
                return message;
            }
        }
    }

    /// Events until one about `resource_type`/`id` arrives (that one included).
    pub async fn events_until(&mut self, resource_type: &str, id: &str) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let event = self.next_event().await;
            let done = event["resourceType"] == resource_type && event["id"] == id;
            events.push(event);
            if done {
                return events;
            }
        }
    }

    /// Asserts that no event arrives within `wait`.
    pub async fn assert_quiet(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                None => return,
                Some(Ok(message)) if message["type"] == "heartbeat" => continue,
                other => panic!("expected nothing, got {other:?}"),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

pub fn patient(id: &str, family: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "name": [{"family": family}]})
}

/// A vital-sign (or, with `category` "laboratory", a lab) Observation of `patient`.
pub fn observation(id: &str, patient: &str, category: &str, code: &str, value: f64) -> Value {
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2026-12-01T10:00:00Z",
        "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    })
}

/// A ward, one bed on it, and nothing else.
pub fn ward(ward: &str) -> Vec<Value> {
    vec![
        json!({"resourceType": "Location", "id": ward, "name": format!("Ward {ward}"), "status": "active",
               "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": "wa"}]}}),
        json!({"resourceType": "Location", "id": format!("{ward}-bed-1"), "name": "Bed 1", "status": "active",
               "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": "bd"}]},
               "partOf": {"reference": format!("Location/{ward}")}}),
    ]
}

/// An inpatient Encounter of `patient` at `location`, in progress or finished.
pub fn stay(id: &str, patient: &str, location: &str, status: &str) -> Value {
    json!({
        "resourceType": "Encounter", "id": id, "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": format!("Patient/{patient}")},
        "period": {"start": "2026-12-01T08:00:00Z"},
        "location": [{"location": {"reference": format!("Location/{location}")}, "status": "active"}]
    })
}

/// The ids of events, as `Type/id`.
pub fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| {
            format!(
                "{}/{}",
                event["resourceType"].as_str().unwrap(),
                event["id"].as_str().unwrap()
            )
        })
        .collect()
}
