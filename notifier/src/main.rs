//! Reads the settings, starts logging, runs the service until SIGTERM or Ctrl-C.

use notifier::{Application, Settings};

/// mimalloc: request handling allocates many small, short-lived values (JSON trees), where
/// glibc's allocator showed up as the largest cost in profiles of the create path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = service_kit::config::load();
    service_kit::telemetry::init(&settings.telemetry);
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "notifier listening");
    application
        .run_until(service_kit::http::shutdown_signal())
        .await
}
