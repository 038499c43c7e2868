//! notifier: streams committed FHIR changes to WebSocket clients (ward dashboards, tools).
//!
//! Clients connect to `/ws`, subscribe by patient, ward, resource type or FHIR search, and
//! receive each matching event once, in position order; a client that reconnects says the last
//! position it saw and gets everything after it from the event store before the live stream
//! resumes (docs/notifier-protocol.md). The pieces:
//!
//! - [`hub`]: one JetStream consumer per instance fanning events out to the connections
//!   subscribed to their topics;
//! - [`audience`]: which topics an event falls under (compartment, ward census, search);
//! - [`connection`]: one client's subscriptions, resume, heartbeats and queue;
//! - [`presence`]: connection state in Redis (`ws:connected`), the per-address cap on
//!   connections and the per-address budget of search subscriptions, shared by every instance
//!   behind the edge.
//!
//! No client may cost the others much: subscriptions are budgeted per connection and per
//! address, every search on an event is evaluated in one statement, a resume is streamed in
//! pages beside the live path, and a message that makes the notifier panic is answered with an
//! error rather than taking the connection (or its seat) away.

pub mod audience;
pub mod connection;
pub mod event;
pub mod hub;
pub mod presence;
pub mod protocol;

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Json;
use axum::extract::State;
use axum::routing::get;
use clap::Parser;
use event_store::EventStore;
use secrecy::ExposeSecret;
use service_kit::config::{
    DatabaseSettings, HttpSettings, NatsSettings, ProxySettings, RedisSettings, TelemetrySettings,
};
use service_kit::health::{DependencyCheck, tcp_check};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::audience::Audience;
use crate::connection::{Limits, Shared};
use crate::hub::{Hub, Source};
use crate::presence::Presence;

/// Events to WebSocket clients: live ward dashboards.
#[derive(Debug, Clone, Parser)]
#[command(name = "notifier", version)]
pub struct Settings {
    /// TOML file with settings (keys are the option names); the environment overrides it.
    #[arg(long, env = "NOTIFIER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "NOTIFIER_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "NOTIFIER_PORT", default_value_t = 8084)]
    pub port: u16,
    /// The base that absolute references to this server start with, as the projection service
    /// indexes them (its `--fhir-base-url`): subscription criteria are read against it.
    #[arg(
        long,
        env = "FHIR_REFERENCE_BASE_URL",
        default_value = "http://localhost:8080/fhir"
    )]
    pub reference_base_url: String,
    /// Events a connection may have waiting; one more and it is closed as a slow consumer.
    #[arg(long, env = "NOTIFIER_QUEUE", default_value_t = 1024)]
    pub queue: usize,
    /// Live events held for a client while its resume replays (then: slow consumer).
    #[arg(long, env = "NOTIFIER_HELD", default_value_t = 20_000)]
    pub held: usize,
    /// Open connections per client address, across every notifier sharing the Redis.
    #[arg(
        long,
        env = "NOTIFIER_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 64
    )]
    pub max_connections_per_address: usize,
    /// Subscriptions one connection may hold; a subscribe past it gets an `error`.
    #[arg(
        long,
        env = "NOTIFIER_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        default_value_t = 50
    )]
    pub max_subscriptions_per_connection: usize,
    /// Resuming clients' replay pages read and matched at once; more wait their turn, so that
    /// clients resuming from far back cannot take the database from the live path.
    #[arg(long, env = "NOTIFIER_CONCURRENT_REPLAYS", default_value_t = 2)]
    pub concurrent_replays: usize,
    /// Search (`criteria`) subscriptions per client address, across all its connections and
    /// every notifier sharing the Redis: each adds to the statement run for every event of its
    /// type.
    #[arg(long, env = "NOTIFIER_MAX_CRITERIA_PER_ADDRESS", default_value_t = 100)]
    pub max_criteria_per_address: usize,
    /// Silence, in milliseconds, after which a client is sent a heartbeat.
    #[arg(long, env = "NOTIFIER_HEARTBEAT_MS", default_value_t = 15_000)]
    pub heartbeat_ms: u64,
    /// How long, in milliseconds, live events wait after a client's first subscription for the
    /// `resume` that must come before them.
    #[arg(long, env = "NOTIFIER_RESUME_GRACE_MS", default_value_t = 200)]
    pub resume_grace_ms: u64,
    /// Longest wait, in milliseconds, for the projections to apply an event before ward and
    /// search subscriptions are evaluated on it anyway.
    #[arg(long, env = "NOTIFIER_PROJECTION_WAIT_MS", default_value_t = 5_000)]
    pub projection_wait_ms: u64,
    /// Prefix of the Redis keys holding connection state (`<prefix>:connected`, ...).
    #[arg(long, env = "NOTIFIER_REDIS_PREFIX", default_value = "ws")]
    pub redis_prefix: String,
    #[command(flatten)]
    pub http: HttpSettings,
    /// The edge, whose `X-Forwarded-For` names the client a connection is counted under.
    #[command(flatten)]
    pub proxies: ProxySettings,
    /// Where access tokens come from.
    #[command(flatten)]
    pub auth: service_kit::auth::AuthSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub nats: NatsSettings,
    #[command(flatten)]
    pub redis: RedisSettings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
}

/// A built, bound service.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    http: HttpSettings,
    hub: Arc<Hub>,
    source: Source,
    presence: Arc<Presence>,
    stop: watch::Sender<bool>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = EventStore::connect(
            settings.database.database_url.expose_secret(),
            settings.database.database_max_connections,
        )
        .await
        .context("cannot connect to Postgres")?;
        let checkpoint = fhir_search::sql::checkpoint::Checkpoint::follow(pool.clone());
        let audience = Arc::new(Audience::new(
            pool.clone(),
            checkpoint,
            settings.reference_base_url.clone(),
            Duration::from_millis(settings.projection_wait_ms),
        ));
        let hub = Hub::new(audience, settings.queue.max(1));
        let presence = Arc::new(Presence::new(
            &settings.redis.redis_url,
            &settings.redis_prefix,
            settings.max_connections_per_address.max(1),
            settings.max_criteria_per_address,
        ));
        let (stop, stopping) = watch::channel(false);
        let shared = Shared {
            hub: hub.clone(),
            presence: presence.clone(),
            store: EventStore::new(pool.clone()),
            limits: Limits {
                heartbeat: Duration::from_millis(settings.heartbeat_ms.max(1)),
                resume_grace: Duration::from_millis(settings.resume_grace_ms),
                held: settings.held.max(1),
                max_subscriptions: settings.max_subscriptions_per_connection,
            },
            trusted_proxies: settings.proxies.trusted_proxies.clone().into(),
            replays: Arc::new(tokio::sync::Semaphore::new(
                settings.concurrent_replays.max(1),
            )),
            stopping,
            auth: service_kit::auth::Authenticator::from_settings(
                &settings.auth,
                &settings.redis.redis_url,
            )
            .context("cannot set up access-token checks")?,
        };
        let listener = service_kit::http::bind(settings.host, settings.port)
            .await
            .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
        // Its own state (connections, subscriptions) is for operators only.
        let operations = axum::Router::new()
            .route("/status", get(status))
            .with_state(shared.clone())
            .layer(axum::middleware::from_fn_with_state(
                shared.auth.clone(),
                service_kit::auth::operators_only,
            ));
        let router = axum::Router::new()
            .route("/ws", get(connection::upgrade))
            .route("/sandbox/{name}/ws", get(connection::upgrade_sandbox))
            .with_state(shared)
            .merge(operations)
            .merge(service_kit::health::routes(
                "notifier",
                checks(&settings, pool.clone(), hub.clone()),
            ));
        Ok(Application {
            listener,
            router: service_kit::http::with_common_layers(router),
            http: settings.http.clone(),
            hub,
            source: Source {
                nats_url: settings.nats.nats_url.clone(),
                stream: settings.nats.events_stream.clone(),
                subject_prefix: settings.nats.events_subject_prefix.clone(),
                store: EventStore::new(pool.clone()),
            },
            presence,
            stop,
        })
    }

    /// The port actually bound (tests bind port 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|address| address.port())
            .unwrap_or(0)
    }

    /// Serves until `shutdown` resolves; open connections are then closed with 1001.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let follow = tokio::spawn(self.hub.clone().follow(self.source, self.stop.subscribe()));
        let presence = self.presence.clone();
        let upkeep = tokio::spawn(async move { presence.maintain().await });
        let stop = self.stop.clone();
        let served = service_kit::http::serve(self.listener, self.router, &self.http, async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await;
        let _ = self.stop.send(true);
        upkeep.abort();
        let _ = follow.await;
        served?;
        Ok(())
    }
}

fn checks(settings: &Settings, pool: sqlx::PgPool, hub: Arc<Hub>) -> Vec<DependencyCheck> {
    vec![
        service_kit::health::postgres_check(pool),
        DependencyCheck::new("jetstream", true, move || {
            let connected = hub.is_connected();
            async move {
                connected
                    .then_some(())
                    .ok_or_else(|| "not following the event stream".to_owned())
            }
        }),
        tcp_check("redis", false, &settings.redis.redis_url),
    ]
}

/// `GET /status`: connections, deliveries, evictions, the position reached.
async fn status(State(shared): State<Shared>) -> Json<serde_json::Value> {
    let (connections, delivered, evicted) = shared.hub.counts();
    Json(serde_json::json!({
        "instance": shared.presence.instance(),
        "connections": connections,
        "delivered": delivered,
        "evicted": evicted,
        "position": shared.hub.latest_position(),
        "following": shared.hub.is_connected(),
    }))
}
