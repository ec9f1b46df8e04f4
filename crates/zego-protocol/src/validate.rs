//! Input checks with the codes of the reference. The SDK runs them before anything goes on the wire and the
//! server runs them again on what arrives, so both sides reject the same inputs with the same codes.

use crate::error::{self, ErrorCode};
use crate::limits;

/// IDs (room, user, stream): non-empty, within the limit, printable ASCII without spaces or control characters.
fn id(
    value: &str,
    max: usize,
    null: ErrorCode,
    too_long: ErrorCode,
    bad: ErrorCode,
) -> Result<(), ErrorCode> {
    if value.is_empty() {
        return Err(null);
    }
    if value.len() > max {
        return Err(too_long);
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad);
    }
    Ok(())
}

pub fn room_id(value: &str) -> Result<(), ErrorCode> {
    id(
        value,
        limits::ROOM_ID_MAX,
        error::ROOM_ROOM_ID_NULL,
        error::ROOM_ROOM_ID_TOO_LONG,
        error::ROOM_ROOM_ID_INVALID_CHARACTER,
    )
}

pub fn user_id(value: &str) -> Result<(), ErrorCode> {
    id(
        value,
        limits::USER_ID_MAX,
        error::ROOM_USER_ID_NULL,
        error::ROOM_USER_ID_TOO_LONG,
        error::ROOM_USER_ID_INVALID_CHARACTER,
    )
}

pub fn stream_id(value: &str) -> Result<(), ErrorCode> {
    id(
        value,
        limits::STREAM_ID_MAX,
        error::COMMON_STREAM_ID_NULL,
        error::COMMON_STREAM_ID_TOO_LONG,
        error::COMMON_STREAM_ID_INVALID_CHARACTER,
    )
}

/// User names are display text: any UTF-8 without control or invisible formatting characters, which would let a
/// name reorder or hide the text shown around it (a right-to-left override, a line separator).
pub fn user_name(value: &str) -> Result<(), ErrorCode> {
    if value.is_empty() {
        return Err(error::ROOM_USER_NAME_NULL);
    }
    if value.len() > limits::USER_NAME_MAX {
        return Err(error::ROOM_USER_NAME_TOO_LONG);
    }
    if value.chars().any(|c| c.is_control() || is_format(c)) {
        return Err(error::ROOM_USER_NAME_INVALID_CHARACTER);
    }
    Ok(())
}

/// Unicode general category Cf (format characters, Unicode 16.0), plus the line and paragraph separators
/// (U+2028, U+2029), which break lines like control characters do.
fn is_format(c: char) -> bool {
    const FORMAT: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x2028, 0x2029),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let c = c as u32;
    FORMAT
        .binary_search_by(|&(first, last)| {
            if last < c {
                std::cmp::Ordering::Less
            } else if first > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Stream extra info may be empty (it clears the info).
pub fn stream_extra_info(value: &str) -> Result<(), ErrorCode> {
    if value.len() > limits::STREAM_EXTRA_INFO_MAX {
        return Err(error::PUBLISHER_EXTRA_INFO_TOO_LONG);
    }
    Ok(())
}

pub fn broadcast_message(value: &str) -> Result<(), ErrorCode> {
    if value.is_empty() {
        return Err(error::IM_CONTENT_NULL);
    }
    if value.len() > limits::BROADCAST_MESSAGE_MAX {
        return Err(error::IM_CONTENT_TOO_LONG);
    }
    Ok(())
}

pub fn custom_command(value: &str) -> Result<(), ErrorCode> {
    if value.is_empty() {
        return Err(error::IM_CONTENT_NULL);
    }
    if value.len() > limits::CUSTOM_COMMAND_MAX {
        return Err(error::IM_CONTENT_TOO_LONG);
    }
    Ok(())
}

pub fn room_extra_info(key: &str, value: &str) -> Result<(), ErrorCode> {
    if key.is_empty() || key.len() > limits::ROOM_EXTRA_INFO_KEY_MAX {
        return Err(error::ROOM_EXTRA_INFO_KEY_TOO_LONG);
    }
    if value.len() > limits::ROOM_EXTRA_INFO_VALUE_MAX {
        return Err(error::ROOM_EXTRA_INFO_VALUE_TOO_LONG);
    }
    Ok(())
}

pub fn token(value: &str) -> Result<(), ErrorCode> {
    if value.len() > limits::TOKEN_MAX {
        return Err(error::ROOM_TOKEN_FORMAT_ERROR);
    }
    Ok(())
}

/// Parses an app_sign: exactly 64 hex characters (32 bytes).
pub fn app_sign(value: &str) -> Result<[u8; 32], ErrorCode> {
    if value.len() != limits::APP_SIGN_HEX_LEN {
        return Err(error::ENGINE_APP_SIGN_INCORRECT);
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(value, &mut out).map_err(|_| error::ENGINE_APP_SIGN_INCORRECT)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(room_id("room-1"), Ok(()));
        assert_eq!(room_id(""), Err(error::ROOM_ROOM_ID_NULL));
        assert_eq!(room_id("a b"), Err(error::ROOM_ROOM_ID_INVALID_CHARACTER));
        assert_eq!(room_id("é"), Err(error::ROOM_ROOM_ID_INVALID_CHARACTER));
        assert_eq!(room_id(&"r".repeat(129)), Err(error::ROOM_ROOM_ID_TOO_LONG));
        assert_eq!(room_id(&"r".repeat(128)), Ok(()));
        assert_eq!(user_id(&"u".repeat(65)), Err(error::ROOM_USER_ID_TOO_LONG));
        assert_eq!(user_id("u\t1"), Err(error::ROOM_USER_ID_INVALID_CHARACTER));
        assert_eq!(stream_id(""), Err(error::COMMON_STREAM_ID_NULL));
        assert_eq!(
            stream_id(&"s".repeat(257)),
            Err(error::COMMON_STREAM_ID_TOO_LONG)
        );
        assert_eq!(
            stream_id("s\u{7f}"),
            Err(error::COMMON_STREAM_ID_INVALID_CHARACTER)
        );
    }

    #[test]
    fn texts() {
        assert_eq!(user_name("Zoë 李"), Ok(()));
        assert_eq!(
            user_name("a\nb"),
            Err(error::ROOM_USER_NAME_INVALID_CHARACTER)
        );
        // Bidi overrides, zero-width and other format characters, and the Unicode line separators are refused
        // like control characters; letters of any script and emoji are not.
        for name in [
            "evil\u{202E}gpj.exe",
            "a\u{200B}b",
            "\u{2066}x\u{2069}",
            "soft\u{AD}hyphen",
            "bom\u{FEFF}",
            "line\u{2028}break",
            "para\u{2029}graph",
            "tag\u{E0041}",
            "egypt\u{1343F}",
        ] {
            assert_eq!(
                user_name(name),
                Err(error::ROOM_USER_NAME_INVALID_CHARACTER),
                "{name:?}"
            );
        }
        for name in ["مرحبا", "שלום", "नमस्ते", "🙂 smile", "a\u{FE0F}"] {
            assert_eq!(user_name(name), Ok(()), "{name:?}");
        }
        assert_eq!(broadcast_message(""), Err(error::IM_CONTENT_NULL));
        assert_eq!(
            broadcast_message(&"m".repeat(1025)),
            Err(error::IM_CONTENT_TOO_LONG)
        );
        assert_eq!(stream_extra_info(""), Ok(()));
        assert_eq!(
            stream_extra_info(&"x".repeat(1025)),
            Err(error::PUBLISHER_EXTRA_INFO_TOO_LONG)
        );
        assert_eq!(
            room_extra_info("", "v"),
            Err(error::ROOM_EXTRA_INFO_KEY_TOO_LONG)
        );
        assert_eq!(
            room_extra_info("k", &"v".repeat(4097)),
            Err(error::ROOM_EXTRA_INFO_VALUE_TOO_LONG)
        );
    }

    #[test]
    fn app_signs() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(app_sign(&hex).unwrap()[0], 0x01);
        assert_eq!(app_sign(&hex[..63]), Err(error::ENGINE_APP_SIGN_INCORRECT));
        assert_eq!(
            app_sign(&"zz".repeat(32)),
            Err(error::ENGINE_APP_SIGN_INCORRECT)
        );
    }
}
