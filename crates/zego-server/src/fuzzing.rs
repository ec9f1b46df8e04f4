//! How the server reads one signaling text frame, as a plain function for the fuzz targets (`fuzz/`). Built only
//! with the `fuzzing` feature.

use zego_protocol::error::{self, ErrorCode};
use zego_protocol::limits;
use zego_protocol::message::ClientMessage;

/// A text frame as the connection reads it before handing it on: the request, or the code it is refused with and
/// the `req_id` the refusal goes to (none when it cannot be read).
pub fn read_frame(text: &str) -> Result<ClientMessage, (Option<u64>, ErrorCode)> {
    if text.len() > limits::MESSAGE_MAX {
        return Err((None, error::PROTOCOL_MESSAGE_TOO_LARGE));
    }
    serde_json::from_str::<ClientMessage>(text).map_err(|_| crate::connection::classify(text))
}
