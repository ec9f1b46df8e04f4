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
