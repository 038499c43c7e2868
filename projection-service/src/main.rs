//! Reads the settings, starts logging, and either serves (consuming events) until SIGTERM or
//! Ctrl-C, or runs the `rebuild` command.

use projection_service::{Application, Command, Settings};

/// mimalloc: projecting allocates many small, short-lived values (JSON trees, index rows),
/// where glibc's allocator showed up as the largest cost in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = service_kit::config::load();
    service_kit::telemetry::init(&settings.telemetry);
    if let Some(Command::Rebuild) = settings.command {
        let report = projection_service::run_rebuild(&settings).await?;
        // The report is the command's output.
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, &report)?;
        std::io::Write::write_all(&mut stdout, b"\n")?;
        return Ok(());
    }
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "projection-service listening");
    application
        .run_until(service_kit::http::shutdown_signal())
        .await
}
