//! Dependencies' log lines (`log` records and tracing events of other crates) go where the SDK's go, under its
//! level: an app that set no log sees none of them on stderr, only the SDK's own warnings, and never the paths the
//! dependencies were built from. Each case runs in a child process, because logging is process-wide.

use std::process::Command;

const CHILD: &str = "ZEGO_LOG_DEPENDENCIES_CHILD";

/// What a child logs: the SDK's own warning, a dependency's `log` warning (like the DTLS one every publish
/// produced) and a dependency's tracing warning.
fn log_one_of_each() {
    tracing::warn!(target: "zego_express::engine", "own warning");
    log::warn!(target: "rtc_dtls::config", "conn.remote_addr is empty, please set explicitly server_name");
    tracing::warn!(target: "webrtc::peer_connection", "dependency tracing warning");
}

/// Runs `test` of this binary in a child with `mode`; its stderr.
fn child_stderr(test: &str, mode: &str) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_sdk_logs_of_dependencies_follow_its_settings() {
    match std::env::var(CHILD).as_deref() {
        Ok("untouched") => {
            zego_express::log::install().unwrap();
            log_one_of_each();
            return;
        }
        Ok("level") => {
            zego_express::log::set_level(tracing::level_filters::LevelFilter::WARN).unwrap();
            log_one_of_each();
            return;
        }
        _ => {}
    }
    let name = "the_sdk_logs_of_dependencies_follow_its_settings";

    // Nothing set: the SDK's own warning only.
    let stderr = child_stderr(name, "untouched");
    assert!(
        stderr.contains("zego_express::engine: own warning"),
        "{stderr}"
    );
    for absent in ["rtc_dtls", "webrtc", "log.file", "log.target"] {
        assert!(!stderr.contains(absent), "{absent} on stderr:\n{stderr}");
    }

    // A level chosen by the app: dependencies' lines at that level too, named by their own target.
    let stderr = child_stderr(name, "level");
    assert!(
        stderr.contains("zego_express::engine: own warning"),
        "{stderr}"
    );
    assert!(
        stderr.contains("rtc_dtls::config: conn.remote_addr is empty"),
        "{stderr}"
    );
    assert!(
        stderr.contains("webrtc::peer_connection: dependency tracing warning"),
        "{stderr}"
    );
    for absent in ["log.file", "log.target", "log.module_path"] {
        assert!(!stderr.contains(absent), "{absent} on stderr:\n{stderr}");
    }
}
