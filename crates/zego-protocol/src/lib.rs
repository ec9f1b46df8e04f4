//! The one definition of the zego-express wire protocol, shared by the SDK and the server:
//! signaling messages ([`message`]), error codes ([`error`]), limits ([`limits`]), input checks ([`validate`]),
//! the app_sign login proof ([`signature`]), the Token04 room token ([`token04`]) and keeping their secrets out of
//! logs ([`redact`]), and what the nodes of a cluster tell each other ([`cluster`]).

pub mod cluster;
pub mod error;
pub mod limits;
pub mod message;
pub mod redact;
pub mod signature;
pub mod token04;
pub mod validate;

pub use error::ErrorCode;
pub use message::{ClientMessage, ServerMessage, PROTOCOL_VERSION};
