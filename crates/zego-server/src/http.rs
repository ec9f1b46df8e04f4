//! The HTTP side: the signaling WebSocket at [`SIGNALING_PATH`], `/healthz` and `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{State, WebSocketUpgrade};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use zego_protocol::message::SIGNALING_PATH;

use crate::cancel::Cancel;
use crate::connection::{self, ConnectionSettings, FRAME_HARD_MAX};
use crate::hub::Hub;

#[derive(Clone)]
pub struct HttpState {
    pub hub: Arc<Hub>,
    pub shutdown: Cancel,
    pub connections: ConnectionSettings,
    pub next_conn: Arc<AtomicU64>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route(SIGNALING_PATH, get(signaling))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn signaling(State(state): State<HttpState>, upgrade: WebSocketUpgrade) -> Response {
    let conn = state.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
    upgrade
        // Frames between MESSAGE_MAX and this are still read, so that they can be refused with a code.
        .max_message_size(FRAME_HARD_MAX)
        .max_frame_size(FRAME_HARD_MAX)
        .on_upgrade(move |socket| {
            connection::serve(socket, state.hub, conn, state.connections, state.shutdown)
        })
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.hub.metrics_text(),
    )
}
