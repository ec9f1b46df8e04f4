//! The HTTP side: the signaling WebSocket at [`SIGNALING_PATH`], `/healthz`, `/metrics`, the embedded web assets
//! (the debug page at `/` and `/debug/`, the JavaScript SDK at `/sdk/`) and the dev app's token minting under
//! `/dev/`, and WHIP ingest and WHEP playback under `/whip/` and `/whep/` ([`whip`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRef, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use zego_protocol::limits;
use zego_protocol::message::SIGNALING_PATH;

use crate::assets;
use crate::connection::{self, ConnectionSettings, FRAME_HARD_MAX};
use crate::dev_token::{self, DevApp};
use crate::frame_limit::{FrameCap, FrameLimited};
use crate::hub::Hub;
use crate::whip;

/// The WebSocket's read buffer starts this small, so that a connection that has not logged in costs little; it
/// grows for the large frames (SDP) that may follow login.
const READ_BUFFER_START: usize = 4 * 1024;

#[derive(Clone)]
pub struct HttpState {
    pub hub: Arc<Hub>,
    pub shutdown: CancellationToken,
    pub connections: ConnectionSettings,
    pub next_conn: Arc<AtomicU64>,
    pub dev_app: DevApp,
}

impl FromRef<HttpState> for DevApp {
    fn from_ref(state: &HttpState) -> Self {
        state.dev_app.clone()
    }
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route(SIGNALING_PATH, get(signaling))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/", get(assets::serve))
        .route("/debug/{*file}", get(assets::serve))
        .route("/sdk/{*file}", get(assets::serve))
        .route("/dev/app", get(dev_token::app))
        .route("/dev/token", post(dev_token::mint))
        .merge(whip::router(state.hub.clone(), state.next_conn.clone()))
        .with_state(state)
}

/// The WebSocket upgrade. The handshake is answered here rather than by axum's extractor so that the stream can
/// be wrapped in a [`FrameLimited`] cap, which the connection lifts once it has logged in.
async fn signaling(State(state): State<HttpState>, mut request: Request) -> Response {
    let accept = match accept_key(request.headers()) {
        Ok(accept) => accept,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return (
            StatusCode::UPGRADE_REQUIRED,
            "connection cannot be upgraded",
        )
            .into_response();
    };
    let conn = state.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(conn, "WebSocket upgrade failed: {e}");
                return;
            }
        };
        let cap = FrameCap::new(Some(limits::PRE_LOGIN_MESSAGE_MAX));
        let stream = FrameLimited::new(TokioIo::new(upgraded), cap.clone());
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_START)
            // Frames between MESSAGE_MAX and this are still read, so that they can be refused with a code.
            .max_message_size(Some(FRAME_HARD_MAX))
            .max_frame_size(Some(FRAME_HARD_MAX));
        let socket = WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await;
        connection::serve(
            socket,
            cap,
            state.hub,
            conn,
            state.connections,
            state.shutdown,
        )
        .await
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// The `Sec-WebSocket-Accept` for a well-formed upgrade request (RFC 6455 section 4.2.1), or why it is not one.
fn accept_key(headers: &HeaderMap) -> Result<HeaderValue, &'static str> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") {
        return Err("the Connection header does not include upgrade");
    }
    if !has_token(header::UPGRADE, "websocket") {
        return Err("the Upgrade header is not websocket");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err("Sec-WebSocket-Version must be 13");
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("Sec-WebSocket-Key is missing")?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|_| "Sec-WebSocket-Key is unusable")
}

/// Ready to serve everything: a single server always is; a cluster node while its directory answers.
async fn ready(State(state): State<HttpState>) -> Response {
    if state.hub.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the cluster directory is unavailable\n",
        )
            .into_response()
    }
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.hub.metrics_text(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_follows_the_rfc_example() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        assert!(accept_key(&headers).is_err(), "no key");
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        assert_eq!(
            accept_key(&headers).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert!(accept_key(&headers).is_err());
    }
}
