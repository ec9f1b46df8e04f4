//! A server on ephemeral loopback ports and signaling clients that speak to it over real WebSockets.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use zego_protocol::error::ErrorCode;
use zego_protocol::message::{ClientMessage, Credentials, ReplyResult, ServerMessage, User};
use zego_protocol::token04::{self, Claims, Mode, Privilege};
use zego_protocol::{signature, validate, PROTOCOL_VERSION};
use zego_server::{
    AppConfig, Server, ServerConfig, ServerHandle, DEV_APP_ID, DEV_APP_SIGN, DEV_SERVER_SECRET,
};

/// How long a test waits for something the server should send.
pub const PATIENCE: Duration = Duration::from_secs(5);

pub use zego_test_kit::init_tracing;

/// A second app, to show apps are separate namespaces.
pub const OTHER_APP_ID: u32 = 4242;
pub const OTHER_APP_SIGN: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
pub const OTHER_SERVER_SECRET: &str = "fedcba9876543210fedcba9876543210";

pub fn two_apps() -> ServerConfig {
    ServerConfig {
        apps: vec![
            AppConfig::dev(),
            AppConfig {
                app_id: OTHER_APP_ID,
                app_sign: OTHER_APP_SIGN.into(),
                server_secret: OTHER_SERVER_SECRET.into(),
            },
        ],
        ..ServerConfig::default()
    }
}

pub async fn start(config: ServerConfig) -> ServerHandle {
    init_tracing();
    Server::start(config).await.expect("server starts")
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub fn user(id: &str) -> User {
    User {
        user_id: id.into(),
        user_name: format!("{id} name"),
    }
}

/// An app_sign login proof made now with a fresh nonce.
pub fn app_sign_proof(
    app_id: u32,
    app_sign_hex: &str,
    user_id: &str,
    room_id: &str,
) -> Credentials {
    let key = validate::app_sign(app_sign_hex).unwrap();
    let timestamp_ms = unix_ms();
    let nonce = format!("{:016x}", rand::random::<u64>());
    Credentials::AppSign {
        signature: signature::sign(&key, app_id, user_id, room_id, timestamp_ms, &nonce),
        timestamp_ms,
        nonce,
    }
}

pub fn dev_proof(user_id: &str, room_id: &str) -> Credentials {
    app_sign_proof(DEV_APP_ID, DEV_APP_SIGN, user_id, room_id)
}

/// A Token04 of the dev app for `user_id`, valid for `lifetime_s` (negative: already expired).
pub fn dev_token(user_id: &str, lifetime_s: i64, privilege: Option<Privilege>) -> String {
    let now = (unix_ms() / 1000) as i64;
    let claims = Claims {
        app_id: DEV_APP_ID,
        user_id: user_id.into(),
        nonce: rand::random::<i32>() as i64,
        ctime: now,
        expire: now + lifetime_s,
        payload: privilege.map(|p| p.to_payload()).unwrap_or_default(),
    };
    token04::generate(DEV_SERVER_SECRET, &claims, Mode::Gcm, None).unwrap()
}

pub fn room_privilege(room_id: &str, publish: bool, streams: Option<&[&str]>) -> Option<Privilege> {
    Some(Privilege {
        room_id: room_id.into(),
        login_room: true,
        publish,
        stream_id_list: streams.map(|s| s.iter().map(|s| s.to_string()).collect()),
    })
}

pub fn login_message(
    req_id: u64,
    app_id: u32,
    room_id: &str,
    user_id: &str,
    credentials: Credentials,
) -> ClientMessage {
    ClientMessage::Login {
        req_id,
        protocol_version: PROTOCOL_VERSION,
        app_id,
        room_id: room_id.into(),
        user: user(user_id),
        credentials,
        is_user_status_notify: true,
        max_member_count: 0,
        resume_session: None,
    }
}

/// A reply's code, message and result.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: ErrorCode,
    pub message: String,
    pub result: Option<ReplyResult>,
}

/// A signaling client over a real WebSocket.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    last_req: u64,
    /// Events that arrived while a reply was awaited.
    inbox: VecDeque<ServerMessage>,
    /// The close frame, once the server closed the connection.
    pub closed: Option<Option<(u16, String)>>,
    pub session_id: Option<String>,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url))
            .await
            .expect("connects in time")
            .expect("WebSocket handshake");
        Client {
            ws,
            last_req: 0,
            inbox: VecDeque::new(),
            closed: None,
            session_id: None,
        }
    }

    /// Like [`Client::join`], over a socket with a tiny receive buffer, so that not reading backs up quickly.
    pub async fn join_with_small_receive_buffer(
        url: &str,
        user_id: &str,
        room_id: &str,
    ) -> (Client, ReplyResult) {
        let addr: std::net::SocketAddr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .expect("WebSocket handshake");
        let mut client = Client {
            ws,
            last_req: 0,
            inbox: VecDeque::new(),
            closed: None,
            session_id: None,
        };
        let reply = client
            .login(login_message(
                0,
                DEV_APP_ID,
                room_id,
                user_id,
                dev_proof(user_id, room_id),
            ))
            .await;
        assert_eq!(reply.code, 0, "login failed: {reply:?}");
        (client, reply.result.expect("login result"))
    }

    pub fn ws_mut(&mut self) -> &mut WebSocketStream<MaybeTlsStream<TcpStream>> {
        &mut self.ws
    }

    /// Connects and logs in to the dev app with app_sign; returns the client and its login result.
    pub async fn join(url: &str, user_id: &str, room_id: &str) -> (Client, ReplyResult) {
        Self::join_with(
            url,
            login_message(0, DEV_APP_ID, room_id, user_id, dev_proof(user_id, room_id)),
        )
        .await
    }

    /// Connects and sends this login (its req_id is replaced); panics unless it succeeds.
    pub async fn join_with(url: &str, login: ClientMessage) -> (Client, ReplyResult) {
        let mut client = Client::connect(url).await;
        let reply = client.login(login).await;
        assert_eq!(reply.code, 0, "login failed: {reply:?}");
        (client, reply.result.expect("login result"))
    }

    pub async fn login(&mut self, mut login: ClientMessage) -> Reply {
        if let ClientMessage::Login { req_id, .. } = &mut login {
            self.last_req += 1;
            *req_id = self.last_req;
        }
        let reply = self.send_and_wait(login).await;
        if let Some(ReplyResult::Login { session_id, .. }) = &reply.result {
            self.session_id = Some(session_id.clone());
        }
        reply
    }

    pub async fn send(&mut self, msg: &ClientMessage) {
        self.send_text(&serde_json::to_string(msg).unwrap()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn send_message(&mut self, msg: Message) {
        self.ws.send(msg).await.expect("send");
    }

    /// The next message from the server (earlier buffered events first); `None` once the connection is closed.
    pub async fn next(&mut self) -> Option<ServerMessage> {
        self.next_within(PATIENCE)
            .await
            .expect("the server sends something in time")
    }

    /// `Err(())` if nothing arrives within `d`.
    pub async fn next_within(&mut self, d: Duration) -> Result<Option<ServerMessage>, ()> {
        if let Some(msg) = self.inbox.pop_front() {
            return Ok(Some(msg));
        }
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Err(()),
                Ok(frame) => frame,
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let msg = serde_json::from_str::<ServerMessage>(text.as_str())
                        .unwrap_or_else(|e| panic!("server sent unreadable {text:?}: {e}"));
                    return Ok(Some(msg));
                }
                Some(Ok(Message::Close(frame))) => {
                    self.closed = Some(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
                    return Ok(None);
                }
                Some(Ok(Message::Binary(_))) => panic!("server sent a binary frame"),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    self.closed.get_or_insert(None);
                    return Ok(None);
                }
            }
        }
    }

    /// The next event (anything but a reply, skipping online counts unless asked for).
    pub async fn event(&mut self) -> ServerMessage {
        loop {
            match self.next().await {
                Some(ServerMessage::OnlineUserCount { .. }) => continue,
                Some(msg) => return msg,
                None => panic!(
                    "connection closed while an event was awaited ({:?})",
                    self.closed
                ),
            }
        }
    }

    /// Asserts nothing but online counts arrives within `d`.
    pub async fn expect_quiet(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Err(()) => return,
                Ok(Some(ServerMessage::OnlineUserCount { .. })) => {}
                Ok(other) => panic!("expected nothing, got {other:?}"),
            }
        }
    }

    /// Waits until the server closes the connection, skipping whatever comes before.
    pub async fn expect_closed(&mut self) -> Option<(u16, String)> {
        loop {
            if self.next().await.is_none() {
                return self.closed.clone().flatten();
            }
        }
    }

    pub fn next_req(&mut self) -> u64 {
        self.last_req += 1;
        self.last_req
    }

    /// Sends a request and waits for its reply, keeping events that arrive first.
    pub async fn request(&mut self, build: impl FnOnce(u64) -> ClientMessage) -> Reply {
        let req_id = self.next_req();
        self.send_and_wait(build(req_id)).await
    }

    async fn send_and_wait(&mut self, msg: ClientMessage) -> Reply {
        let req_id = msg.req_id();
        self.send(&msg).await;
        self.reply_to(req_id).await
    }

    pub async fn reply_to(&mut self, req_id: u64) -> Reply {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut held = VecDeque::new();
        let reply = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            // Read from the socket only: buffered events are not replies.
            let inbox = std::mem::take(&mut self.inbox);
            let got = self.next_within(left).await;
            self.inbox = inbox;
            match got {
                Err(()) => panic!("no reply to request {req_id}"),
                Ok(None) => panic!(
                    "connection closed before the reply to {req_id} ({:?})",
                    self.closed
                ),
                Ok(Some(ServerMessage::Reply {
                    req_id: id,
                    code,
                    message,
                    result,
                })) if id == req_id => {
                    break Reply {
                        code,
                        message,
                        result,
                    }
                }
                Ok(Some(other)) => held.push_back(other),
            }
        };
        self.inbox.extend(held);
        reply
    }

    pub async fn heartbeat(&mut self) -> Reply {
        self.request(|req_id| ClientMessage::Heartbeat { req_id })
            .await
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
