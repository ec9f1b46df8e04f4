//! Limits (bytes, NUL excluded) and rates, shared by SDK-side validation and server-side enforcement.

use std::time::Duration;

pub const USER_ID_MAX: usize = 64;
pub const USER_NAME_MAX: usize = 256;
pub const ROOM_ID_MAX: usize = 128;
pub const STREAM_ID_MAX: usize = 256;
pub const STREAM_EXTRA_INFO_MAX: usize = 1024;
pub const BROADCAST_MESSAGE_MAX: usize = 1024;
pub const CUSTOM_COMMAND_MAX: usize = 1024;
pub const ROOM_EXTRA_INFO_KEY_MAX: usize = 128;
pub const ROOM_EXTRA_INFO_VALUE_MAX: usize = 4096;
/// Distinct room extra info keys a room may hold.
pub const ROOM_EXTRA_INFO_KEYS_MAX: usize = 32;
pub const TOKEN_MAX: usize = 2048;
/// app_sign is 32 bytes, written as 64 hex characters.
pub const APP_SIGN_HEX_LEN: usize = 64;
/// A server secret (Token04 key) is 32 ASCII characters.
pub const SERVER_SECRET_LEN: usize = 32;
/// Streams one session may publish at once: the four publish channels of the SDK.
pub const STREAMS_PER_SESSION_MAX: usize = 4;
/// Streams one session may play (or wait for) at once.
pub const PLAYS_PER_SESSION_MAX: usize = 64;
/// Users announced in one user-update event; larger rooms are announced in several events.
pub const USERS_PER_EVENT_MAX: usize = 500;
/// SDP offers and answers are a few kilobytes; anything far larger is refused.
pub const SDP_MAX: usize = 64 * 1024;
/// Largest signaling frame the server reads.
pub const MESSAGE_MAX: usize = 128 * 1024;
/// Largest signaling frame the server reads before login: a login fits in a few kilobytes, and a connection that
/// has not proved anything yet should cost little. A larger frame ends the connection.
pub const PRE_LOGIN_MESSAGE_MAX: usize = 8 * 1024;

/// Broadcast messages a user may send per second in one room.
pub const BROADCAST_PER_SECOND: u32 = 10;
/// Custom commands a user may send per second.
pub const CUSTOM_COMMAND_PER_SECOND: u32 = 20;
/// Room extra info updates a user may make per second.
pub const ROOM_EXTRA_INFO_PER_SECOND: u32 = 10;
/// Requests of any kind a connection may send per second before it is rate limited.
pub const REQUESTS_PER_SECOND: u32 = 200;

/// How often the server reports the online user count of a room.
pub const ONLINE_COUNT_INTERVAL: Duration = Duration::from_secs(30);
/// How long before a token expires the server warns the client.
pub const TOKEN_WILL_EXPIRE_NOTICE: Duration = Duration::from_secs(30);
/// Default heartbeat interval the server asks clients to keep.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// Default silence after which the server removes a client.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the SDK keeps retrying a broken connection before reconnect_failed.
pub const RECONNECT_WINDOW: Duration = Duration::from_secs(20 * 60);
/// A login signature made with app_sign is accepted this far from the server's clock.
pub const SIGNATURE_MAX_SKEW: Duration = Duration::from_secs(10 * 60);
