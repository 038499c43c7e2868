//! Reads the settings, starts logging, runs the service until SIGTERM or Ctrl-C.

use identity_service::{Application, Settings};

/// mimalloc, as in the other services: request handling allocates many small, short-lived
/// values.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = service_kit::config::load();
    service_kit::telemetry::init(&settings.telemetry);
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "identity service listening");
    application
        .run_until(service_kit::http::shutdown_signal())
        .await
}
