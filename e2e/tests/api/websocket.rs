//! `/ws` through the edge reaches the notifier: the WebSocket handshake is passed through
//! (HTTP/1.1, `Upgrade` and `Connection`), and frames flow both ways.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_websocket_handshake_through_the_edge_reaches_the_notifier() {
    let app = TestApp::spawn().await;
    let token = app.system_token().await;
    let url = format!("ws://127.0.0.1:{}/ws?access_token={token}", app.edge.port);
    let (mut socket, response) = tokio_tungstenite::connect_async(&url).await.unwrap();
    assert_eq!(response.status(), 101);

    socket
        .send(Message::text(json!({"type": "ping"}).to_string()))
        .await
        .unwrap();
    let reply = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
        .await
        .expect("no answer to ping through the edge")
        .unwrap()
        .unwrap();
    let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(reply["type"], "pong", "{reply}");
    app.cleanup().await;
}
