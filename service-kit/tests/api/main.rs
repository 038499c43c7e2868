//! Black-box tests of the HTTP layer every service shares: a router with the common layers,
//! served by `service_kit::http::serve` on a free port, as each service serves its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod header_timeout;
mod panic_guard;

use service_kit::config::HttpSettings;

/// Serves `router` (with the common layers) on a free loopback port and returns the port.
pub async fn spawn(router: axum::Router, header_read_timeout_ms: u64) -> u16 {
    let listener = service_kit::http::bind([127, 0, 0, 1].into(), 0)
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let settings = HttpSettings {
        header_read_timeout_ms,
    };
    tokio::spawn(async move {
        service_kit::http::serve(
            listener,
            service_kit::http::with_common_layers(router),
            &settings,
            std::future::pending(),
        )
        .await
    });
    port
}
