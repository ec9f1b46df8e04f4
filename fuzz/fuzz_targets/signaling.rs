//! Signaling frames as the server reads them (size check, parse, classification of refusals) and as the SDK reads
//! the server's, with the checks of `zego_protocol::validate` on every field: parsed messages survive a round trip,
//! refusals carry one of the three refusal codes and the frame's own `req_id`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zego_protocol::message::{ClientMessage, Credentials, ServerMessage};
use zego_protocol::{error, limits, signature, validate};
use zego_server::fuzzing::read_frame;

fuzz_target!(|data: &[u8]| {
    // WebSocket text frames are UTF-8; anything else ends the connection before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match read_frame(text) {
        Ok(msg) => {
            let json = serde_json::to_string(&msg).expect("a message always serializes");
            let back: ClientMessage =
                serde_json::from_str(&json).expect("a written message reads back");
            assert_eq!(back, msg);
            if json.len() <= limits::MESSAGE_MAX {
                assert_eq!(read_frame(&json).ok(), Some(msg.clone()));
            }
            check_fields(&msg);
        }
        Err((req_id, code)) => {
            match code {
                error::PROTOCOL_MESSAGE_TOO_LARGE => {
                    assert!(text.len() > limits::MESSAGE_MAX);
                    assert_eq!(req_id, None);
                }
                error::PROTOCOL_MALFORMED_MESSAGE | error::PROTOCOL_UNKNOWN_MESSAGE => {
                    if let Some(id) = req_id {
                        let value: serde_json::Value =
                            serde_json::from_str(text).expect("a req_id was read from JSON");
                        assert_eq!(value["req_id"].as_u64(), Some(id));
                    }
                }
                other => panic!("refused with {other}"),
            }
            assert!(!error::message(code).is_empty());
        }
    }
    // The SDK's side: what the server sends.
    if let Ok(msg) = serde_json::from_str::<ServerMessage>(text) {
        let json = serde_json::to_string(&msg).expect("a message always serializes");
        let back: ServerMessage =
            serde_json::from_str(&json).expect("a written message reads back");
        assert_eq!(back, msg);
    }
});

/// Runs the server's field checks; each accepted value keeps its limit.
fn check_fields(msg: &ClientMessage) {
    match msg {
        ClientMessage::Login {
            app_id,
            room_id,
            user,
            credentials,
            ..
        } => {
            let room_ok = validate::room_id(room_id).is_ok();
            let user_ok = validate::user_id(&user.user_id).is_ok();
            if room_ok {
                assert!(!room_id.is_empty() && room_id.len() <= limits::ROOM_ID_MAX);
                assert!(room_id.bytes().all(|b| b.is_ascii_graphic()));
            }
            if user_ok {
                assert!(user.user_id.len() <= limits::USER_ID_MAX);
            }
            if validate::user_name(&user.user_name).is_ok() {
                assert!(!user.user_name.chars().any(char::is_control));
            }
            match credentials {
                Credentials::Token { token } => {
                    let _ = validate::token(token);
                }
                Credentials::AppSign {
                    timestamp_ms,
                    nonce,
                    signature,
                } => {
                    let key = [0x5a; 32];
                    let _ = signature::verify(
                        &key,
                        *app_id,
                        &user.user_id,
                        room_id,
                        *timestamp_ms,
                        nonce,
                        signature,
                    );
                    let made = signature::sign(
                        &key,
                        *app_id,
                        &user.user_id,
                        room_id,
                        *timestamp_ms,
                        nonce,
                    );
                    assert!(signature::verify(
                        &key,
                        *app_id,
                        &user.user_id,
                        room_id,
                        *timestamp_ms,
                        nonce,
                        &made
                    ));
                }
            }
        }
        ClientMessage::RenewToken { token, .. } => {
            if validate::token(token).is_ok() {
                assert!(token.len() <= limits::TOKEN_MAX);
            }
        }
        ClientMessage::SetRoomExtraInfo { key, value, .. } => {
            if validate::room_extra_info(key, value).is_ok() {
                assert!(!key.is_empty() && key.len() <= limits::ROOM_EXTRA_INFO_KEY_MAX);
                assert!(value.len() <= limits::ROOM_EXTRA_INFO_VALUE_MAX);
            }
        }
        ClientMessage::SendBroadcastMessage { message, .. } => {
            if validate::broadcast_message(message).is_ok() {
                assert!(!message.is_empty() && message.len() <= limits::BROADCAST_MESSAGE_MAX);
            }
        }
        ClientMessage::SendCustomCommand {
            command,
            to_user_ids,
            ..
        } => {
            if validate::custom_command(command).is_ok() {
                assert!(command.len() <= limits::CUSTOM_COMMAND_MAX);
            }
            for id in to_user_ids {
                let _ = validate::user_id(id);
            }
        }
        ClientMessage::Publish {
            stream_id,
            extra_info,
            ..
        }
        | ClientMessage::SetStreamExtraInfo {
            stream_id,
            extra_info,
            ..
        } => {
            if validate::stream_id(stream_id).is_ok() {
                assert!(stream_id.len() <= limits::STREAM_ID_MAX);
            }
            if validate::stream_extra_info(extra_info).is_ok() {
                assert!(extra_info.len() <= limits::STREAM_EXTRA_INFO_MAX);
            }
        }
        ClientMessage::Play { stream_id, .. }
        | ClientMessage::StopPublish { stream_id, .. }
        | ClientMessage::StopPlay { stream_id, .. } => {
            let _ = validate::stream_id(stream_id);
        }
        ClientMessage::Logout { .. } | ClientMessage::Heartbeat { .. } => {}
    }
}
