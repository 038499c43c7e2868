//! HTTP plumbing every service shares: request ids, request tracing, a panic guard, binding,
//! serving with a header-read timeout, graceful shutdown.
//!
//! Every service builds its router through [`with_common_layers`] and serves it with [`serve`],
//! so what protects one service protects all four: a handler that panics answers 500 with an
//! `OperationOutcome` (the connection is not dropped, the panic is logged with the request id),
//! and a client that sends its headers slowly is disconnected after
//! [`HttpSettings::header_read_timeout_ms`](crate::config::HttpSettings) instead of holding a
//! connection for ever.

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fhir_model::IssueCode;
use http::HeaderName;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::HttpSettings;
use crate::fhir_response::FhirError;

/// The header that carries the request id: taken from the client or the edge when present,
/// generated otherwise, returned on the response and recorded with every event.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps a router with request ids, a tracing span per request (method, path, request id) with
/// one log line per response (status, latency), and the panic guard ([`panic_response`]).
pub fn with_common_layers(router: Router) -> Router {
    router
        // Innermost, so the panic is logged inside the request's span (with its id) and the
        // 500 it becomes gets the request id header like any other response.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let request_id = request
                        .headers()
                        .get(REQUEST_ID_HEADER)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %request_id,
                    )
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeRequestUuid))
}

/// Reads each request's body (up to `limit` bytes) before its handler runs, so a handler that
/// refuses a request on its path or headers (an unknown type, a wrong content type) never
/// answers with the body still unread: a connection closed with unread data is reset, and the
/// edge, still sending that body, turned the client's 4xx into a 502. A body over `limit` is 413.
pub fn with_buffered_bodies(router: Router, limit: usize) -> Router {
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: axum::middleware::Next| async move {
            let (parts, body) = request.into_parts();
            match axum::body::to_bytes(body, limit).await {
                Ok(bytes) => {
                    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                        .await
                }
                Err(_) => FhirError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    IssueCode::TooLong,
                    format!("the request body is larger than the limit of {limit} bytes"),
                )
                .into_response(),
            }
        },
    ))
}

/// The answer to a request whose handler panicked: logged in full (inside the request's span,
/// so with its request id), answered with a 500 `OperationOutcome` that reveals nothing.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = %message, "a request handler panicked");
    FhirError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        IssueCode::Exception,
        "the server failed to process the request; the request id identifies it in the server log",
    )
    .into_response()
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight finish
/// (for at most [`DRAIN_TIMEOUT`]). Like `axum::serve` with connect info (handlers may extract
/// `ConnectInfo<SocketAddr>`) and upgrades (WebSockets), plus what it cannot be told: a client
/// must send each request's line and headers within `settings.header_read_timeout_ms` of the
/// connection opening (or of the previous response), or the connection is closed.
///
/// HTTP/1.1 only: the edge and every client speak it, and telling HTTP/2 apart first means
/// waiting for a connection's first bytes with no timeout at all.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: &HttpSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(
            settings.header_read_timeout_ms.max(1),
        ));
    // `stop` tells each connection to finish the request in flight and close; the drain is over
    // when every connection has dropped its clone of `open`.
    let (stop, stopping) = watch::channel(false);
    let (drained, open) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service =
            router
                .clone()
                .map_request(move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let mut stopping = stopping.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(open);
    if tokio::time::timeout(DRAIN_TIMEOUT, drained.closed())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the drain timeout were cut off");
    }
    Ok(())
}

/// Binds `host:port`; port 0 picks a free port (tests read it back from the listener).
pub async fn bind(host: std::net::IpAddr, port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::new(host, port)).await
}

/// Resolves on Ctrl-C or SIGTERM: the signal to stop accepting and drain.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, draining");
}

/// How long in-flight requests get to finish after the shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
