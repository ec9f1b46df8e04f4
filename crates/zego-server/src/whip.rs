//! WHIP ingest (RFC 9725) and WHEP playback (draft-ietf-wish-whep) over plain HTTP.
//!
//! A WHIP or WHEP resource is a room session without a WebSocket: the POST logs in through the hub exactly as a
//! `login` message does (Token04 only), then publishes or plays exactly as a `publish` or `play` message does, so
//! every check (token privileges and stream list, stream-id uniqueness, the relay's refusal of an offer) is the
//! signaling path's own. The session's [`Link`] is a queue read here: the login and publish/play replies are
//! taken from it, everything else the room sends is dropped, except what ends the resource (a `play_stopped`, a
//! kick, the server closing it).
//!
//! While the resource lives, a keeper task touches the session (its heartbeat) and watches its media: when a
//! WHIP stream is gone (the relay lost its media, or its DTLS closed and the grace ran out), the session logs out,
//! so the room sees the user leave. `DELETE` logs out at once.
//!
//! URLs (ZEGO's OBS URL carries the app, the stream and the user the same way):
//! - `POST /whip/{app_id}/{stream_id}?user_id=U&room_id=R&extra_info=E`, `Authorization: Bearer <Token04>`
//! - `POST /whep/{app_id}/{stream_id}?user_id=U&room_id=R`, same token rules as a WebSocket `play` (a login)
//! - `DELETE` / `PATCH` / `OPTIONS` on `/whip/session/{id}` and `/whep/session/{id}`, the `Location` of the POST.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zego_protocol::error::{self, ErrorCode};
use zego_protocol::message::{Credentials, ReplyResult, ServerMessage, User};
use zego_protocol::PROTOCOL_VERSION;

use crate::hub::{ConnId, Hub, Link, Outgoing};
use crate::rooms::{LoginRequest, SessionId};

/// How often a resource's session is kept alive and its stream checked; well inside any heartbeat timeout.
const KEEP_PERIOD: Duration = Duration::from_millis(500);
/// Messages queued for a resource before the hub counts it as a slow reader; the keeper drains it at once.
const QUEUE_CAPACITY: usize = 256;
/// How long the POST waits for its login and publish/play replies (the relay call itself is bounded at 10 s).
const REPLY_TIMEOUT: Duration = Duration::from_secs(15);

const LOGIN_REQ: u64 = 1;
const MEDIA_REQ: u64 = 2;

const SDP: &str = "application/sdp";
const TRICKLE: &str = "application/trickle-ice-sdpfrag";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Whip,
    Whep,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Whip => "whip",
            Kind::Whep => "whep",
        }
    }
}

/// One WHIP or WHEP resource: the room session behind it and the end of its keeper.
struct Resource {
    kind: Kind,
    conn: ConnId,
    session: SessionId,
    etag: String,
    end: CancellationToken,
}

struct Endpoints {
    hub: Arc<Hub>,
    next_conn: Arc<AtomicU64>,
    resources: Mutex<HashMap<String, Resource>>,
}

type Shared = Arc<Endpoints>;

/// The WHIP and WHEP routes, every response with the CORS headers a browser client needs.
pub fn router<S: Clone + Send + Sync + 'static>(
    hub: Arc<Hub>,
    next_conn: Arc<AtomicU64>,
) -> Router<S> {
    let endpoints = Arc::new(Endpoints {
        hub,
        next_conn,
        resources: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/whip/{app_id}/{stream_id}", post(whip).options(preflight))
        .route("/whep/{app_id}/{stream_id}", post(whep).options(preflight))
        .route(
            "/whip/session/{id}",
            axum::routing::delete(delete)
                .patch(patch)
                .options(preflight),
        )
        .route(
            "/whep/session/{id}",
            axum::routing::delete(delete)
                .patch(patch)
                .options(preflight),
        )
        .layer(axum::middleware::map_response(cors))
        .with_state(endpoints)
}

async fn cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let mut set = |name, value| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    set(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        "POST, DELETE, PATCH, OPTIONS",
    );
    set(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        "Authorization, Content-Type, If-Match",
    );
    set(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        "Location, ETag, Link",
    );
    response
}

async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::HeaderName::from_static("accept-post"), SDP)],
    )
        .into_response()
}

/// A refusal: the HTTP status, and a JSON body with the ZEGO code and why.
fn refuse(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The HTTP status for a ZEGO code from the signaling path.
fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        error::ROOM_NO_TOKEN_NO_APP_SIGN
        | error::ROOM_TOKEN_INNER_ERROR
        | error::ROOM_TOKEN_FORMAT_ERROR
        | error::ROOM_TOKEN_APP_ID_ERROR
        | error::ROOM_TOKEN_USER_ID_ERROR
        | error::ROOM_TOKEN_EXPIRED
        | error::ROOM_TOKEN_VERSION_ERROR
        | error::ROOM_TOKEN_NONCE_ERROR => StatusCode::UNAUTHORIZED,
        // The token is good but does not let this user into this room, or publish this stream; a full room.
        error::ROOM_AUTHENTICATION_FAILED
        | error::PUBLISHER_AUTH_FAILED
        | error::ROOM_MAX_MEMBER_COUNT => StatusCode::FORBIDDEN,
        error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED => StatusCode::CONFLICT,
        error::ENGINE_APP_ID_INCORRECT | error::PLAYER_STREAM_NOT_EXIST => StatusCode::NOT_FOUND,
        error::PUBLISHER_INNER_ERROR | error::PLAYER_INNER_ERROR | error::ROOM_INNER_ERROR => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        // Bad ids, extra info, offers: what the request itself got wrong.
        _ => StatusCode::BAD_REQUEST,
    }
}

fn refuse_code(code: ErrorCode, message: &str) -> Response {
    refuse(status_of(code), code, message)
}

fn content_type_is(headers: &HeaderMap, wanted: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(wanted))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn whip(
    State(endpoints): State<Shared>,
    Path((app_id, stream_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create(
        endpoints,
        Kind::Whip,
        &app_id,
        stream_id,
        query,
        &headers,
        body,
    )
    .await
}

async fn whep(
    State(endpoints): State<Shared>,
    Path((app_id, stream_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create(
        endpoints,
        Kind::Whep,
        &app_id,
        stream_id,
        query,
        &headers,
        body,
    )
    .await
}

/// The POST of either protocol: log in, publish or play, and hand back the relay's answer.
async fn create(
    endpoints: Shared,
    kind: Kind,
    app_id: &str,
    stream_id: String,
    mut query: HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if !content_type_is(headers, SDP) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error::COMMON_INVALID_PARAMETER,
            "the offer must be sent as Content-Type: application/sdp",
        );
    }
    let Ok(app_id) = app_id.parse::<u32>() else {
        return refuse_code(
            error::ENGINE_APP_ID_INCORRECT,
            "the app id in the URL is not a number",
        );
    };
    let Some(token) = bearer(headers) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            error::ROOM_NO_TOKEN_NO_APP_SIGN,
            "an Authorization: Bearer <Token04> header is required",
        );
    };
    let Ok(offer) = String::from_utf8(body.to_vec()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            error::COMMON_INVALID_PARAMETER,
            "the offer is not UTF-8",
        );
    };
    let Some(user_id) = query.remove("user_id") else {
        return refuse(
            StatusCode::BAD_REQUEST,
            error::COMMON_INVALID_PARAMETER,
            "the user_id query parameter is required",
        );
    };
    let room_id = query.remove("room_id").unwrap_or_else(|| stream_id.clone());
    let extra_info = query.remove("extra_info").unwrap_or_default();

    let hub = &endpoints.hub;
    let conn = endpoints.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
    let (tx, mut rx) = mpsc::channel(QUEUE_CAPACITY);
    let link = Link {
        conn,
        tx,
        kill: CancellationToken::new(),
    };
    let login = LoginRequest {
        req_id: LOGIN_REQ,
        protocol_version: PROTOCOL_VERSION,
        app_id,
        room_id,
        user: User {
            user_id: user_id.clone(),
            user_name: user_id,
        },
        credentials: Credentials::Token {
            token: token.to_owned(),
        },
        notify_users: false,
        max_member_count: 0,
        resume_session: None,
    };
    let session = match hub.login(&link, login) {
        Ok(session) => session,
        Err(code) => return refuse_code(code, error::message(code)),
    };
    // From here on the session exists: a refusal, or the client going away before its answer, ends it.
    let mut pending = Pending {
        hub: hub.clone(),
        conn,
        session: Some(session),
    };
    let owned = match kind {
        Kind::Whip => {
            hub.publish(conn, session, MEDIA_REQ, &stream_id, &extra_info, &offer)
                .await
        }
        Kind::Whep => {
            hub.play(conn, session, MEDIA_REQ, &stream_id, &offer, false)
                .await
        }
    };
    let reply = if owned {
        tokio::time::timeout(REPLY_TIMEOUT, reply_to(&mut rx, MEDIA_REQ))
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let answer = match reply {
        Some((error::SUCCESS, _, Some(ReplyResult::Publish { sdp })))
        | Some((error::SUCCESS, _, Some(ReplyResult::Play { sdp: Some(sdp), .. }))) => sdp,
        Some((code, message, _)) => return refuse_code(code, &message),
        None => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                error::ROOM_INNER_ERROR,
                "the session ended before it was answered",
            );
        }
    };

    pending.disarm();
    let id = format!("{:032x}", rand::random::<u128>());
    let etag = format!("\"{:016x}\"", rand::random::<u64>());
    let end = CancellationToken::new();
    endpoints.resources.lock().insert(
        id.clone(),
        Resource {
            kind,
            conn,
            session,
            etag: etag.clone(),
            end: end.clone(),
        },
    );
    tracing::info!(
        conn,
        session,
        stream_id,
        resource = %id,
        "{} session started",
        kind.path()
    );
    tokio::spawn(keep(
        endpoints.clone(),
        id.clone(),
        kind,
        stream_id,
        rx,
        link.kill,
        end,
    ));
    let location = format!("/{}/session/{id}", kind.path());
    let mut response = (StatusCode::CREATED, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    response
}

/// A session logged in for a POST not answered yet: dropped armed (refused, or the client went away), it logs out.
struct Pending {
    hub: Arc<Hub>,
    conn: ConnId,
    session: Option<SessionId>,
}

impl Pending {
    /// The POST succeeded: the resource's keeper owns the session now.
    fn disarm(&mut self) {
        self.session = None;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(session) = self.session {
            tracing::debug!(
                conn = self.conn,
                session,
                "ending a session whose POST was not answered with 201"
            );
            self.hub.with_session(self.conn, session, |registry, now| {
                registry.logout(session, 0, now)
            });
        }
    }
}

/// Reads the session's queue until the reply to `req_id`: its code, message and result. `None` if the session
/// was closed first.
async fn reply_to(
    rx: &mut mpsc::Receiver<Outgoing>,
    req_id: u64,
) -> Option<(ErrorCode, String, Option<ReplyResult>)> {
    loop {
        match rx.recv().await? {
            Outgoing::Close(..) => return None,
            Outgoing::Text(text) => {
                if let Ok(ServerMessage::Reply {
                    req_id: r,
                    code,
                    message,
                    result,
                }) = serde_json::from_str(text.as_str())
                {
                    if r == req_id {
                        return Some((code, message, result));
                    }
                }
            }
        }
    }
}

/// Keeps a resource's session alive while its media lives; ends it (logout) when its stream is gone, its play
/// stopped, it was kicked or closed by the server, or `DELETE` asked.
async fn keep(
    endpoints: Shared,
    id: String,
    kind: Kind,
    stream_id: String,
    mut rx: mpsc::Receiver<Outgoing>,
    kill: CancellationToken,
    end: CancellationToken,
) {
    let Some((conn, session)) = endpoints
        .resources
        .lock()
        .get(&id)
        .map(|r| (r.conn, r.session))
    else {
        return;
    };
    let hub = endpoints.hub.clone();
    let mut ticker = tokio::time::interval(KEEP_PERIOD);
    let why = loop {
        tokio::select! {
            biased;
            _ = end.cancelled() => break "deleted",
            _ = kill.cancelled() => break "dropped by the hub",
            msg = rx.recv() => match msg {
                None | Some(Outgoing::Close(..)) => break "closed by the server",
                Some(Outgoing::Text(text)) => {
                    if let Ok(ServerMessage::PlayStopped { .. } | ServerMessage::Kicked { .. }) =
                        serde_json::from_str(text.as_str())
                    {
                        break "the play stopped or the session was kicked";
                    }
                }
            },
            _ = ticker.tick() => {
                let mut gone = false;
                let owned = hub.with_session(conn, session, |registry, _| {
                    gone = kind == Kind::Whip && !registry.publishes(session, &stream_id);
                    Vec::new()
                });
                if !owned {
                    break "the session ended";
                }
                if gone {
                    break "its stream is gone";
                }
            }
        }
    };
    endpoints.resources.lock().remove(&id);
    hub.with_session(conn, session, |registry, now| {
        registry.logout(session, 0, now)
    });
    tracing::info!(conn, session, resource = %id, why, "{} session ended", kind.path());
}

fn resource_kind(method_path: &str) -> Kind {
    if method_path.starts_with("/whep/") {
        Kind::Whep
    } else {
        Kind::Whip
    }
}

async fn delete(
    State(endpoints): State<Shared>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let kind = resource_kind(uri.path());
    let removed = {
        let mut resources = endpoints.resources.lock();
        match resources.get(&id) {
            Some(r) if r.kind == kind => resources.remove(&id),
            _ => None,
        }
    };
    let Some(resource) = removed else {
        return unknown_session();
    };
    // The session leaves now, so the room hears of it before this answer; the keeper only stops.
    resource.end.cancel();
    endpoints
        .hub
        .with_session(resource.conn, resource.session, |registry, now| {
            registry.logout(resource.session, 0, now)
        });
    StatusCode::OK.into_response()
}

fn unknown_session() -> Response {
    refuse(
        StatusCode::NOT_FOUND,
        error::COMMON_INVALID_PARAMETER,
        "no such session (deleted, ended, or never created)",
    )
}

/// Trickle ICE and ICE restart. The relay is ICE-lite with one host candidate: it never checks towards the
/// remote candidates (it answers the checks that reach it), so trickled ones are accepted and ignored. An ICE
/// restart is not supported.
async fn patch(
    State(endpoints): State<Shared>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let kind = resource_kind(uri.path());
    let etag = match endpoints.resources.lock().get(&id) {
        Some(r) if r.kind == kind => r.etag.clone(),
        _ => return unknown_session(),
    };
    if !content_type_is(&headers, TRICKLE) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error::COMMON_INVALID_PARAMETER,
            "a PATCH must be Content-Type: application/trickle-ice-sdpfrag",
        );
    }
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    // RFC 9725 section 4.3.2: a restart is the PATCH with `If-Match: "*"` (it carries new ICE credentials).
    if if_match == Some("*") {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            error::COMMON_INVALID_PARAMETER,
            "ICE restart is not supported: DELETE this session and POST a new offer",
        );
    }
    if if_match.is_some_and(|m| m != etag) {
        return refuse(
            StatusCode::PRECONDITION_FAILED,
            error::COMMON_INVALID_PARAMETER,
            "If-Match does not match this session's ETag",
        );
    }
    StatusCode::NO_CONTENT.into_response()
}
