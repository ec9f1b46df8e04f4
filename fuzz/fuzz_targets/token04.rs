//! Token04 decode and verify: tokens minted from arbitrary claims decode to the same claims and mode; arbitrary
//! bodies and altered tokens are refused with a code of the module's table (and an altered GCM token never
//! decodes to other claims); the privilege payload survives its round trip and the login and publish checks.
#![no_main]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use zego_protocol::error;
use zego_protocol::token04::{self, Claims, Mode, Privilege};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

#[derive(Arbitrary, Debug)]
struct Input {
    claims: ClaimsIn,
    gcm: bool,
    iv: [u8; 16],
    /// Where to alter the minted token, and how.
    alter: Option<(u16, Alter)>,
    /// Bytes sent as a token body of their own.
    raw: Vec<u8>,
    /// A secret of another length.
    secret_len: u8,
    room_id: String,
    stream_id: String,
    now: i64,
}

#[derive(Arbitrary, Debug)]
struct ClaimsIn {
    app_id: u32,
    user_id: String,
    nonce: i64,
    ctime: i64,
    expire: i64,
    payload: Payload,
}

#[derive(Arbitrary, Debug)]
enum Payload {
    Empty,
    Privilege {
        room_id: String,
        login_room: bool,
        publish: bool,
        stream_id_list: Option<Vec<String>>,
    },
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Alter {
    /// Replace the character with another base64 character.
    Char(u8),
    Truncate,
    Append(String),
}

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

/// The codes `decode` may fail with (see the module's table).
fn is_decode_code(code: u32) -> bool {
    [
        error::ROOM_TOKEN_VERSION_ERROR,
        error::ROOM_TOKEN_FORMAT_ERROR,
        error::ROOM_TOKEN_NONCE_ERROR,
        error::ROOM_TOKEN_INNER_ERROR,
    ]
    .contains(&code)
}

fuzz_target!(|input: Input| {
    let privilege = match &input.claims.payload {
        Payload::Privilege {
            room_id,
            login_room,
            publish,
            stream_id_list,
        } => Some(Privilege {
            room_id: room_id.clone(),
            login_room: *login_room,
            publish: *publish,
            stream_id_list: stream_id_list.clone(),
        }),
        _ => None,
    };
    let claims = Claims {
        app_id: input.claims.app_id,
        user_id: input.claims.user_id.clone(),
        nonce: input.claims.nonce,
        ctime: input.claims.ctime,
        expire: input.claims.expire,
        payload: match &input.claims.payload {
            Payload::Empty => String::new(),
            Payload::Privilege { .. } => privilege.as_ref().expect("built above").to_payload(),
            Payload::Text(text) => text.clone(),
        },
    };
    let mode = if input.gcm { Mode::Gcm } else { Mode::Cbc };
    let iv = if input.gcm {
        &input.iv[..12]
    } else {
        &input.iv[..]
    };

    // Minted tokens read back.
    let token = match token04::generate(SECRET, &claims, mode, Some(iv)) {
        Ok(token) => token,
        Err(code) => {
            assert_eq!(
                code,
                error::ROOM_TOKEN_FORMAT_ERROR,
                "only an oversized claim fails"
            );
            return;
        }
    };
    assert!(token.starts_with(token04::VERSION));
    let (decoded, decoded_mode) = token04::decode(SECRET, &token).expect("a minted token decodes");
    assert_eq!(decoded, claims);
    assert_eq!(decoded_mode, mode);
    if let Some(p) = &privilege {
        assert_eq!(decoded.privilege(), Ok(Some(p.clone())));
    }

    // Verify checks app_id, then user_id, then expiry.
    match token04::verify(SECRET, &token, claims.app_id, &claims.user_id, input.now) {
        Ok(c) => {
            assert_eq!(c, claims);
            assert!(claims.expire > input.now);
        }
        Err(code) => {
            assert_eq!(code, error::ROOM_TOKEN_EXPIRED);
            assert!(claims.expire <= input.now);
        }
    }
    assert_eq!(
        token04::verify(
            SECRET,
            &token,
            claims.app_id.wrapping_add(1),
            &claims.user_id,
            input.now
        ),
        Err(error::ROOM_TOKEN_APP_ID_ERROR)
    );

    // The privilege checks agree with the payload.
    let login = token04::may_login(&claims, &input.room_id);
    let publish = token04::may_publish(&claims, &input.room_id, &input.stream_id);
    match claims.privilege() {
        Ok(None) => {
            assert_eq!(login, Ok(()));
            assert_eq!(publish, Ok(()));
        }
        Ok(Some(p)) => {
            assert_eq!(login.is_ok(), p.room_id == input.room_id && p.login_room);
            let listed = p
                .stream_id_list
                .as_ref()
                .is_none_or(|l| l.contains(&input.stream_id));
            assert_eq!(
                publish.is_ok(),
                p.room_id == input.room_id && p.publish && listed
            );
            if let Err(code) = login {
                assert_eq!(code, error::ROOM_AUTHENTICATION_FAILED);
            }
        }
        Err(code) => {
            assert_eq!(code, error::ROOM_TOKEN_FORMAT_ERROR);
            assert_eq!(login, Err(error::ROOM_TOKEN_FORMAT_ERROR));
            assert_eq!(publish, Err(error::PUBLISHER_AUTH_FAILED));
        }
    }

    // Altered tokens are refused with a decode code; GCM never yields other claims.
    if let Some((at, alter)) = &input.alter {
        let mut altered = token.clone().into_bytes();
        let at = 2 + usize::from(*at) % (altered.len() - 2);
        match alter {
            Alter::Char(c) => altered[at] = ALPHABET[usize::from(*c) % ALPHABET.len()],
            Alter::Truncate => altered.truncate(at),
            Alter::Append(s) => altered.extend_from_slice(s.as_bytes()),
        }
        let altered = String::from_utf8(altered).expect("ASCII and a string appended");
        match token04::decode(SECRET, &altered) {
            Ok((c, m)) => {
                if m == Mode::Gcm {
                    assert_eq!(c, claims, "an altered GCM token decoded to other claims");
                }
            }
            Err(code) => assert!(is_decode_code(code), "altered token refused with {code}"),
        }
    }

    // Arbitrary bodies, and secrets of the wrong length.
    let raw = format!("04{}", STANDARD.encode(&input.raw));
    if let Err(code) = token04::decode(SECRET, &raw) {
        assert!(is_decode_code(code), "body refused with {code}");
    }
    let secret = "s".repeat(usize::from(input.secret_len));
    if secret.len() != 32 {
        assert_eq!(
            token04::decode(&secret, &token),
            Err(error::ROOM_TOKEN_INNER_ERROR)
        );
    }
});
