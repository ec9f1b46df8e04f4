//! At TRACE the log callback receives every line, the WebSocket frames its dependencies log included, and none of
//! them carries a login token or an app_sign signature: not as JSON, not escaped in a Debug string, not in a hex
//! dump. One test, because logging is process-wide.

mod flow_support;

use std::ffi::{c_char, c_void, CStr};
use std::sync::Mutex;
use std::time::Duration;

use flow_support::*;
use zego_express::config::{RoomConfig, RoomStateChangedReason};
use zego_express::event::Event;
use zego_express::ffi::*;
use zego_protocol::token04::{self, Claims, Mode};
use zego_protocol::{signature, validate};
use zego_server::{EmbeddedServer, ServerConfig, DEV_APP_ID, DEV_APP_SIGN, DEV_SERVER_SECRET};

const T: Duration = Duration::from_secs(10);

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn collect(_level: i32, message: *const c_char, _user_context: *mut c_void) {
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    LINES.lock().unwrap().push(text);
}

fn token(user_id: &str) -> String {
    let now = (now_us() / 1_000_000) as i64;
    let claims = Claims {
        app_id: DEV_APP_ID,
        user_id: user_id.into(),
        nonce: 7,
        ctime: now,
        expire: now + 600,
        payload: String::new(),
    };
    token04::generate(DEV_SERVER_SECRET, &claims, Mode::Gcm, None).unwrap()
}

/// The line with its hex dumps (`0x7b22...`) decoded, so a secret inside a dumped frame is visible to a search.
fn with_hex_decoded(line: &str) -> String {
    let mut text = line.to_owned();
    for run in line.split("0x").skip(1) {
        let hex: String = run.chars().take_while(char::is_ascii_hexdigit).collect();
        let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
            .collect();
        if let Some(bytes) = bytes {
            text.push('\n');
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}

/// The value after `"name":` in a JSON text, unquoted.
fn json_value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let at = text.find(&format!("\"{name}\":"))? + name.len() + 3;
    let rest = text[at..].trim_start_matches('"');
    let end = rest.find(['"', ',', '}'])?;
    Some(&rest[..end])
}

#[test]
fn no_token_or_signature_reaches_any_log_output() {
    assert_eq!(
        zego_set_log_callback(Some(collect), std::ptr::null_mut()),
        0
    );
    assert_eq!(
        zego_set_log_level(zego_log_level::ZEGO_LOG_LEVEL_TRACE as i32),
        0
    );
    let server = EmbeddedServer::start(ServerConfig::default()).unwrap();
    let logined = |e: &Event| matches!(e, Event::RoomStateChanged { reason, .. } if *reason == RoomStateChangedReason::Logined);

    // A token login, then a renewed token; and an app_sign login, whose signature the engine makes.
    let first = token("alice");
    let renewed = token("alice");
    let (alice, alice_events) = engine(server.ws_url());
    let config = RoomConfig {
        token: first.clone(),
        ..RoomConfig::default()
    };
    alice.login_room("room-1", user("alice"), config).unwrap();
    alice_events.wait_for("alice logged in", T, logined);
    alice.renew_token("room-1", &renewed).unwrap();
    let (bob, bob_events) = engine(server.ws_url());
    bob.login_room("room-1", user("bob"), RoomConfig::default())
        .unwrap();
    bob_events.wait_for("bob logged in", T, logined);
    alice.logout_room(None).unwrap();
    bob.logout_room(None).unwrap();
    alice.destroy();
    bob.destroy();
    assert_eq!(zego_set_log_callback(None, std::ptr::null_mut()), 0);
    assert_eq!(
        zego_set_log_level(zego_log_level::ZEGO_LOG_LEVEL_WARN as i32),
        0
    );

    let lines: Vec<String> = LINES
        .lock()
        .unwrap()
        .iter()
        .map(|l| with_hex_decoded(l))
        .collect();
    let all = lines.join("\n");
    // The frames were logged (so the search below means something), with bob's login among them.
    let login = lines
        .iter()
        .find(|l| l.contains(r#""kind":"app_sign""#))
        .unwrap_or_else(|| panic!("no logged login frame of bob's among {} lines", lines.len()));
    let timestamp_ms: u64 = json_value(login, "timestamp_ms").unwrap().parse().unwrap();
    let nonce = json_value(login, "nonce").unwrap();
    let key = validate::app_sign(DEV_APP_SIGN).unwrap();
    let bob_signature = signature::sign(&key, DEV_APP_ID, "bob", "room-1", timestamp_ms, nonce);

    for secret in [&first, &renewed, &bob_signature, DEV_APP_SIGN] {
        // The token's base64 body, in part too, so a line cut short or re-encoded still counts.
        let probe = &secret[2..34];
        assert!(!all.contains(probe), "a secret was logged:\n{all}");
    }
    assert!(
        all.contains("<redacted>"),
        "no frame with a credential was logged"
    );
}
