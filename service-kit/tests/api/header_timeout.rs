//! A client that sends half a request line and stalls, or nothing at all, is disconnected
//! within the header-read timeout; a client that sends its request promptly is served.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_slow_header_client_is_disconnected_within_the_timeout() {
    let router = Router::new().route("/", get(|| async { "ok" }));
    let port = super::spawn(router, 500).await;

    let mut slow = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    slow.write_all(b"GET / HT").await.unwrap();
    let started = Instant::now();
    let mut buffer = [0_u8; 1024];
    // The server closes the connection (end of stream, or a reset), perhaps after a 408.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match slow.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the connection was still open after 5 s with a 500 ms header timeout"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed only after {:?}",
        started.elapsed()
    );

    // A client that connects and sends nothing at all is disconnected too.
    let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let started = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match silent.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "a silent connection was still open after 5 s"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    // A prompt client on a fresh connection is served as usual.
    let mut prompt = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    prompt
        .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    prompt.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");
}
