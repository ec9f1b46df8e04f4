//! How room happenings read as app events: the state pair (RoomStateUpdate for the old API, RoomStateChanged
//! with its reason for the new one) and the stream/user/info updates with their extended data.

use zego_protocol::error::ErrorCode;
use zego_protocol::message::{StreamDeleteReason, StreamInfo, UpdateType};

use crate::config::{RoomState, RoomStateChangedReason};
use crate::event::Event;

/// Extended data with nothing to say.
pub(crate) const EMPTY_JSON: &str = "{}";

/// The room state the original reports alongside each reason.
fn state_of(reason: RoomStateChangedReason) -> RoomState {
    match reason {
        RoomStateChangedReason::Logining | RoomStateChangedReason::Reconnecting => {
            RoomState::Connecting
        }
        RoomStateChangedReason::Logined | RoomStateChangedReason::Reconnected => {
            RoomState::Connected
        }
        RoomStateChangedReason::LoginFailed
        | RoomStateChangedReason::ReconnectFailed
        | RoomStateChangedReason::KickOut
        | RoomStateChangedReason::Logout
        | RoomStateChangedReason::LogoutFailed => RoomState::Disconnected,
    }
}

/// RoomStateUpdate then RoomStateChanged for one transition.
pub(crate) fn room_state(
    room_id: &str,
    reason: RoomStateChangedReason,
    error_code: ErrorCode,
) -> [Event; 2] {
    [
        Event::RoomStateUpdate {
            room_id: room_id.to_owned(),
            state: state_of(reason),
            error_code,
            extended_data: EMPTY_JSON.to_owned(),
        },
        Event::RoomStateChanged {
            room_id: room_id.to_owned(),
            reason,
            error_code,
            extended_data: EMPTY_JSON.to_owned(),
        },
    ]
}

/// The extended data of a stream Delete: `{"stream_delete_reason":[{"stream_id":..,"code":N}]}`.
pub(crate) fn stream_delete_extended_data(reasons: &[StreamDeleteReason]) -> String {
    serde_json::json!({ "stream_delete_reason": reasons }).to_string()
}

pub(crate) fn stream_update(
    room_id: &str,
    update_type: UpdateType,
    streams: Vec<StreamInfo>,
    reasons: &[StreamDeleteReason],
) -> Event {
    let extended_data = match update_type {
        UpdateType::Add => EMPTY_JSON.to_owned(),
        UpdateType::Delete => stream_delete_extended_data(reasons),
    };
    Event::RoomStreamUpdate {
        room_id: room_id.to_owned(),
        update_type,
        streams,
        extended_data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_reasons_are_listed_per_stream() {
        let data = stream_delete_extended_data(&[
            StreamDeleteReason {
                stream_id: "s1".into(),
                code: 1,
            },
            StreamDeleteReason {
                stream_id: "s2".into(),
                code: 2,
            },
        ]);
        let json: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(json["stream_delete_reason"][0]["stream_id"], "s1");
        assert_eq!(json["stream_delete_reason"][0]["code"], 1);
        assert_eq!(json["stream_delete_reason"][1]["code"], 2);
    }

    #[test]
    fn each_reason_comes_with_its_state() {
        let [update, changed] = room_state("r", RoomStateChangedReason::Reconnecting, 1002051);
        assert!(matches!(
            update,
            Event::RoomStateUpdate {
                state: RoomState::Connecting,
                error_code: 1002051,
                ..
            }
        ));
        assert!(matches!(
            changed,
            Event::RoomStateChanged {
                reason: RoomStateChangedReason::Reconnecting,
                ..
            }
        ));
        let [update, _] = room_state("r", RoomStateChangedReason::KickOut, 1002050);
        assert!(matches!(
            update,
            Event::RoomStateUpdate {
                state: RoomState::Disconnected,
                ..
            }
        ));
    }
}
