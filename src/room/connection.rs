//! One WebSocket connection to the signaling server: JSON text frames in both directions.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use zego_protocol::{ClientMessage, ServerMessage};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    #[error("connecting timed out")]
    ConnectTimeout,
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("the server closed the connection")]
    Closed,
}

pub(crate) struct Connection {
    socket: Socket,
}

/// What one read produced.
pub(crate) enum Incoming {
    Message(ServerMessage),
    /// A frame that is not a message we know (a newer server, a ping): liveness, nothing else.
    Other,
}

impl Connection {
    /// Opens the WebSocket within `timeout`. Nagle is off: signaling messages are small and latency matters.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Connection, ConnectionError> {
        let connecting = tokio_tungstenite::connect_async_with_config(url, None, true);
        match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok((socket, _response))) => Ok(Connection { socket }),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(ConnectionError::ConnectTimeout),
        }
    }

    pub async fn send(&mut self, msg: &ClientMessage) -> Result<(), ConnectionError> {
        let text = serde_json::to_string(msg).expect("client messages always serialize");
        self.socket.send(Message::text(text)).await?;
        Ok(())
    }

    /// The next frame. Pings are answered by the WebSocket layer on the next read or write.
    pub async fn recv(&mut self) -> Result<Incoming, ConnectionError> {
        match self.socket.next().await {
            None | Some(Ok(Message::Close(_))) => Err(ConnectionError::Closed),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(Message::Text(text))) => {
                match serde_json::from_str::<ServerMessage>(text.as_str()) {
                    Ok(msg) => Ok(Incoming::Message(msg)),
                    Err(e) => {
                        tracing::warn!(error = %e, "ignoring a signaling message this client cannot read");
                        Ok(Incoming::Other)
                    }
                }
            }
            Some(Ok(_)) => Ok(Incoming::Other),
        }
    }

    /// Sends a close frame (best effort, bounded) so the server sees a clean end.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_millis(200), self.socket.close(None)).await;
    }
}
