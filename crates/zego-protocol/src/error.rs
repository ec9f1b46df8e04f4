//! Error codes: one table shared by the SDK (return values, callbacks) and the server (replies).
//!
//! Codes follow the ZEGO Express scheme `1_000_000 + module * 1000 + n` (modules: 0 common, 1 engine,
//! 2 room, 3 publisher, 4 player, 9 IM) so code written against the original keeps its meaning.

/// A ZEGO-style error code. `0` is success.
pub type ErrorCode = u32;

macro_rules! error_table {
    ($( $name:ident = $code:expr, $msg:expr; )*) => {
        $( #[doc = $msg] pub const $name: ErrorCode = $code; )*

        /// Every known code with its constant name and message, in ascending order.
        pub const ALL: &[(ErrorCode, &str, &str)] = &[ $( ($code, stringify!($name), $msg), )* ];
    };
}

error_table! {
    SUCCESS = 0, "Success.";

    // common
    COMMON_ENGINE_NOT_CREATED = 1000001, "The engine has not been created, or the handle is invalid or already destroyed.";
    COMMON_NOT_LOGGED_IN = 1000002, "Not logged in to a room.";
    COMMON_ENGINE_NOT_STARTED = 1000003, "The engine has not started; start it (preview, publish or play) first.";
    COMMON_UNSUPPORTED = 1000006, "The feature is not supported by this build or in this state.";
    COMMON_INVALID_PARAMETER = 1000008, "A parameter is invalid (null pointer, non-UTF-8 string, or out-of-range value).";
    COMMON_STREAM_ID_TOO_LONG = 1000014, "stream_id is longer than 256 bytes.";
    COMMON_STREAM_ID_NULL = 1000015, "stream_id is null or empty.";
    COMMON_STREAM_ID_INVALID_CHARACTER = 1000016, "stream_id contains characters other than printable ASCII without spaces.";
    COMMON_INVALID_HANDLE = 1000017, "The object handle is invalid.";

    // engine
    ENGINE_APP_ID_INCORRECT = 1001004, "app_id is incorrect or unknown to the server.";
    ENGINE_APP_SIGN_INCORRECT = 1001005, "app_sign is incorrect: it must be 64 hex characters and match the app.";
    ENGINE_SERVER_ADDRESS_INVALID = 1001006, "The server address in the engine profile is invalid.";
    ENGINE_INNER_ERROR = 1001099, "Internal engine error.";

    // room
    ROOM_COUNT_EXCEED = 1002001, "Already logged in to a room; log out before logging in to another.";
    ROOM_NOT_LOGGED_IN_THAT_ROOM = 1002002, "Not logged in to that room.";
    ROOM_USER_ID_NULL = 1002005, "user_id is null or empty.";
    ROOM_USER_ID_INVALID_CHARACTER = 1002006, "user_id contains characters other than printable ASCII without spaces.";
    ROOM_USER_ID_TOO_LONG = 1002007, "user_id is longer than 64 bytes.";
    ROOM_USER_NAME_NULL = 1002008, "user_name is null or empty.";
    ROOM_USER_NAME_INVALID_CHARACTER = 1002009, "user_name contains control characters.";
    ROOM_USER_NAME_TOO_LONG = 1002010, "user_name is longer than 256 bytes.";
    ROOM_ROOM_ID_NULL = 1002011, "room_id is null or empty.";
    ROOM_ROOM_ID_INVALID_CHARACTER = 1002012, "room_id contains characters other than printable ASCII without spaces.";
    ROOM_ROOM_ID_TOO_LONG = 1002013, "room_id is longer than 128 bytes.";
    ROOM_CONNECT_FAILED = 1002030, "Could not connect to the server.";
    ROOM_LOGIN_TIMEOUT = 1002031, "Login timed out.";
    ROOM_AUTHENTICATION_FAILED = 1002033, "Authentication failed: the app_sign signature or the token was rejected.";
    ROOM_MAX_MEMBER_COUNT = 1002034, "The room is full (max member count reached).";
    ROOM_KICKED_OUT_SAME_USER = 1002050, "Kicked out: the same user_id logged in elsewhere.";
    ROOM_CONNECTION_BROKEN_RETRYING = 1002051, "The connection to the server broke; retrying.";
    ROOM_DISCONNECTED = 1002052, "Disconnected from the server.";
    ROOM_RECONNECT_RETRY_TIMEOUT = 1002053, "Reconnecting gave up after the reconnect window.";
    ROOM_KICKED_OUT_BY_SERVER = 1002055, "Kicked out by the server.";
    ROOM_KICKED_OUT_TOKEN_EXPIRED = 1002056, "Kicked out: the token expired.";
    ROOM_ROOM_ID_ALREADY_USED = 1002064, "room_id is already used.";
    ROOM_NO_TOKEN_NO_APP_SIGN = 1002067, "Neither a token nor an app_sign was provided.";
    ROOM_RATE_LIMITED_LOGIN = 1002071, "Login requests too frequent.";
    ROOM_RATE_LIMITED_REQUEST = 1002072, "Room requests too frequent.";
    ROOM_RATE_LIMITED_EXTRA_INFO = 1002073, "Room extra info updates too frequent.";
    ROOM_TOKEN_INNER_ERROR = 1002074, "Token check failed: internal error (bad secret or decryption failed).";
    ROOM_TOKEN_FORMAT_ERROR = 1002075, "Token format error.";
    ROOM_TOKEN_APP_ID_ERROR = 1002076, "Token app_id does not match.";
    ROOM_TOKEN_USER_ID_ERROR = 1002077, "Token user_id does not match.";
    ROOM_TOKEN_EXPIRED = 1002078, "Token expired.";
    ROOM_TOKEN_VERSION_ERROR = 1002079, "Token version error (only \"04\" is accepted).";
    ROOM_TOKEN_NONCE_ERROR = 1002080, "Token nonce error.";
    ROOM_RENEWED_TOKEN_NO_PUBLISH_PRIVILEGE = 1002082, "The renewed token lacks the publish privilege of the stream being published.";
    ROOM_EXTRA_INFO_KEY_TOO_LONG = 1002083, "Room extra info key is empty or longer than 128 bytes.";
    ROOM_EXTRA_INFO_VALUE_TOO_LONG = 1002084, "Room extra info value is longer than 4096 bytes.";
    ROOM_EXTRA_INFO_KEY_COUNT_EXCEEDED = 1002085, "Too many room extra info keys.";
    // signaling protocol (server replies to malformed requests)
    PROTOCOL_MALFORMED_MESSAGE = 1002090, "Malformed signaling message (not JSON, or a field has the wrong type).";
    PROTOCOL_UNKNOWN_MESSAGE = 1002091, "Unknown signaling message type.";
    PROTOCOL_MESSAGE_TOO_LARGE = 1002092, "Signaling message too large.";
    PROTOCOL_VERSION_UNSUPPORTED = 1002093, "Unsupported protocol version.";
    ROOM_INNER_ERROR = 1002099, "Room internal error.";

    // publisher
    PUBLISHER_NO_DATA = 1003001, "No media data is being published.";
    PUBLISHER_NETWORK_INTERRUPTED_RETRYING = 1003020, "Publishing network interrupted; retrying.";
    PUBLISHER_RETRY_TIMEOUT = 1003021, "Publishing retry timed out.";
    PUBLISHER_CHANNEL_ALREADY_PUBLISHING = 1003023, "This publish channel is already publishing a stream.";
    PUBLISHER_FORBIDDEN_BY_SERVER = 1003025, "Publishing forbidden by the server.";
    PUBLISHER_STREAM_ID_ALREADY_PUBLISHED = 1003028, "The same stream_id is already published by another user.";
    PUBLISHER_SEI_DATA_NULL = 1003043, "SEI data is null or empty.";
    PUBLISHER_SEI_DATA_TOO_LONG = 1003044, "SEI data is longer than 4096 bytes.";
    PUBLISHER_SEI_TOO_FREQUENT = 1003045, "SEI sent more than 30 times in a second (a code of this SDK).";
    PUBLISHER_EXTRA_INFO_NULL = 1003050, "Stream extra info is null.";
    PUBLISHER_EXTRA_INFO_TOO_LONG = 1003051, "Stream extra info is longer than 1024 bytes.";
    PUBLISHER_UPDATE_EXTRA_INFO_FAILED = 1003053, "Updating the stream extra info failed (is the stream being published?).";
    PUBLISHER_AUTH_FAILED = 1003072, "Publish authentication failed: bad app_sign, or the token is wrong, expired or lacks the publish privilege.";
    PUBLISHER_INNER_ERROR = 1003099, "Publisher internal error.";

    // player
    PLAYER_PLAY_FAILED = 1004001, "Playing failed.";
    PLAYER_STREAM_NOT_EXIST = 1004002, "The stream does not exist.";
    PLAYER_AUTH_FAILED = 1004003, "Play authentication failed.";
    PLAYER_STREAM_NOT_PLAYED = 1004011, "That stream is not being played.";
    PLAYER_NETWORK_INTERRUPTED = 1004020, "Playing network interrupted.";
    PLAYER_FORBIDDEN_BY_SERVER = 1004025, "Playing forbidden by the server.";
    PLAYER_RESOURCE_MODE_UNSUPPORTED = 1004072, "This resource mode has no path on this server: use ONLY_L3 or ONLY_RTC.";
    PLAYER_INNER_ERROR = 1004099, "Player internal error.";

    // IM
    IM_CONTENT_NULL = 1009001, "Message content is null or empty.";
    IM_CONTENT_TOO_LONG = 1009002, "Message content is longer than 1024 bytes.";
    IM_WRONG_ROOM = 1009005, "Not logged in to that room.";
    IM_BROADCAST_RATE_EXCEEDED = 1009015, "Broadcast messages sent too frequently.";
}

/// The human-readable message of a code, or a generic text for unknown codes.
pub fn message(code: ErrorCode) -> &'static str {
    match ALL.binary_search_by_key(&code, |(c, _, _)| *c) {
        Ok(i) => ALL[i].2,
        Err(_) => "Unknown error code.",
    }
}

/// The constant name of a code (e.g. `"ROOM_TOKEN_EXPIRED"`), if known.
pub fn name(code: ErrorCode) -> Option<&'static str> {
    ALL.binary_search_by_key(&code, |(c, _, _)| *c)
        .ok()
        .map(|i| ALL[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in ALL.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} then {}", pair[0].0, pair[1].0);
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(
            message(PUBLISHER_STREAM_ID_ALREADY_PUBLISHED),
            "The same stream_id is already published by another user."
        );
        assert_eq!(
            name(PLAYER_STREAM_NOT_EXIST),
            Some("PLAYER_STREAM_NOT_EXIST")
        );
        assert_eq!(message(42), "Unknown error code.");
        assert_eq!(name(42), None);
    }
}
