//! The committed C header is what the sources generate, carries every error code, declares a registration
//! function for every callback, and compiles on its own as C and C++.

use std::path::{Path, PathBuf};
use std::process::Command;

fn committed_header() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("include")
        .join("zego_express.h")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn committed_header_matches_the_generated_one() {
    let generated = Path::new(env!("OUT_DIR")).join("zego_express.h");
    assert!(
        read(&committed_header()) == read(&generated),
        "include/zego_express.h is stale: regenerate it with `ZEGO_UPDATE_HEADER=1 cargo build -p zego-express` \
         (fresh copy: {})",
        generated.display()
    );
}

#[test]
fn every_error_code_is_a_define() {
    let header = read(&committed_header());
    for (code, name, _) in zego_protocol::error::ALL {
        let define = format!("#define ZEGO_ERROR_{name} {code}\n");
        assert!(header.contains(&define), "missing: {define}");
    }
}

#[test]
fn every_callback_of_the_reference_can_be_registered() {
    let header = read(&committed_header());
    let callbacks = [
        "debug_error",
        "engine_state_update",
        "room_state_update",
        "room_state_changed",
        "room_user_update",
        "room_online_user_count_update",
        "room_stream_update",
        "room_stream_extra_info_update",
        "room_extra_info_update",
        "room_token_will_expire",
        "room_set_room_extra_info_result",
        "publisher_state_update",
        "publisher_quality_update",
        "publisher_captured_video_first_frame",
        "publisher_update_stream_extra_info_result",
        "player_state_update",
        "player_quality_update",
        "player_recv_video_first_frame",
        "player_recv_audio_first_frame",
        "player_render_video_first_frame",
        "player_video_size_changed",
        "im_recv_broadcast_message",
        "im_recv_custom_command",
        "im_send_broadcast_message_result",
        "im_send_custom_command_result",
        "custom_video_capture_start",
        "custom_video_capture_stop",
        "custom_video_render_remote_frame",
        "custom_video_render_captured_frame",
        "player_audio_data",
    ];
    for name in callbacks {
        let register = format!("int zego_register_{name}_callback(zego_engine engine,");
        let typedef = format!("typedef void (*zego_func_{name})(");
        assert!(header.contains(&register), "missing: {register}");
        assert!(header.contains(&typedef), "missing: {typedef}");
    }
}

/// Compiles a translation unit that includes only the header, with every warning an error.
fn compile_alone(compiler: &str, args: &[&str]) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ffi_header");
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join(format!(
        "alone.{}",
        if compiler.ends_with("++") { "cpp" } else { "c" }
    ));
    std::fs::write(
        &source,
        "#include \"zego_express.h\"\nint main(void) { return zego_get_version() == 0 ? 1 : 0; }\n",
    )
    .unwrap();
    let output = Command::new(compiler)
        .args(args)
        .args(["-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I"])
        .arg(committed_header().parent().unwrap())
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        output.status.success(),
        "{compiler} {args:?} rejected the header:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn header_compiles_as_c99_c11_and_cpp() {
    compile_alone("cc", &["-std=c99", "-pedantic"]);
    compile_alone("cc", &["-std=c11", "-pedantic"]);
    if Command::new("c++").arg("--version").output().is_ok() {
        compile_alone("c++", &["-std=c++17"]);
    }
}

/// The numbers a doc comment names, ranges like `1002005..1002007` included.
fn codes_named_in(doc: &str) -> Vec<u32> {
    let mut codes = Vec::new();
    for word in doc.split(|c: char| !(c.is_ascii_digit() || c == '.')) {
        let word = word.trim_matches('.');
        let (first, last) = word.split_once("..").unwrap_or((word, word));
        if let (Ok(first), Ok(last)) = (first.parse::<u32>(), last.parse::<u32>()) {
            codes.extend(first..=last);
        }
    }
    codes
}

#[test]
fn every_login_failure_code_is_documented_at_the_room_state_callback() {
    use zego_protocol::error::*;
    let header = read(&committed_header());
    let end = header
        .find("typedef void (*zego_func_room_state_changed)")
        .expect("the room_state_changed callback type");
    let doc_start = header[..end]
        .rfind("\n\n")
        .expect("a blank line before its doc");
    let doc = &header[doc_start..end];
    let named = codes_named_in(doc);
    // Every code a login can end with: the SDK's own, then each refusal of the server's login path.
    for code in [
        ROOM_CONNECT_FAILED,
        ROOM_LOGIN_TIMEOUT,
        ROOM_INNER_ERROR,
        ENGINE_APP_ID_INCORRECT,
        ENGINE_APP_SIGN_INCORRECT,
        ROOM_AUTHENTICATION_FAILED,
        ROOM_NO_TOKEN_NO_APP_SIGN,
        ROOM_TOKEN_INNER_ERROR,
        ROOM_TOKEN_FORMAT_ERROR,
        ROOM_TOKEN_APP_ID_ERROR,
        ROOM_TOKEN_USER_ID_ERROR,
        ROOM_TOKEN_EXPIRED,
        ROOM_TOKEN_VERSION_ERROR,
        ROOM_TOKEN_NONCE_ERROR,
        ROOM_MAX_MEMBER_COUNT,
        ROOM_RATE_LIMITED_LOGIN,
        ROOM_RATE_LIMITED_REQUEST,
        ROOM_USER_ID_NULL,
        ROOM_USER_ID_INVALID_CHARACTER,
        ROOM_USER_ID_TOO_LONG,
        ROOM_USER_NAME_NULL,
        ROOM_USER_NAME_INVALID_CHARACTER,
        ROOM_USER_NAME_TOO_LONG,
        ROOM_ROOM_ID_NULL,
        ROOM_ROOM_ID_INVALID_CHARACTER,
        ROOM_ROOM_ID_TOO_LONG,
        PROTOCOL_MALFORMED_MESSAGE,
        PROTOCOL_UNKNOWN_MESSAGE,
        PROTOCOL_MESSAGE_TOO_LARGE,
        PROTOCOL_VERSION_UNSUPPORTED,
        ROOM_CONNECTION_BROKEN_RETRYING,
        ROOM_RECONNECT_RETRY_TIMEOUT,
        ROOM_KICKED_OUT_SAME_USER,
        ROOM_KICKED_OUT_BY_SERVER,
        ROOM_KICKED_OUT_TOKEN_EXPIRED,
    ] {
        assert!(named.contains(&code), "{code} is not documented in\n{doc}");
    }
}
