//! The Kotlin binding (bindings/kotlin) compiled once with `kotlinc` together with its self-contained test runner
//! and examples/kotlin/Quickstart.kt, run on the JDK against an in-process server. The JNI natives need the cdylib
//! built with `--features jni`, which is built here into its own target folder (target/jni) so it neither fights
//! over the build lock nor replaces the library the other tests use. Without kotlinc or java the tests are skipped
//! (failed under CI=true).

#[path = "bindings_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

const INSTALL_KOTLIN: &str = "apt-get install -y kotlin";
const INSTALL_JAVA: &str = "apt-get install -y default-jdk-headless";

fn toolchain() -> Option<()> {
    support::tool("kotlinc", &["-version"], INSTALL_KOTLIN)?;
    support::tool("java", &["-version"], INSTALL_JAVA)?;
    Some(())
}

/// The cdylib with the JNI natives, built once per test binary.
fn jni_library() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.as_ref() {
        return path.clone();
    }
    let profile = support::profile();
    let target = support::profile_dir()
        .parent()
        .expect("target folder")
        .join("jni");
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(support::root())
        .args(["build", "-p", "zego-express", "--lib", "--features", "jni"])
        .env("CARGO_TARGET_DIR", &target);
    if profile == "release" {
        command.arg("--release");
    }
    // The first build compiles every dependency into target/jni; later ones only the SDK.
    let output = support::run(
        "cargo build --features jni",
        &mut command,
        Duration::from_secs(3600),
    );
    support::assert_success("building the JNI library", &output);
    let path = target.join(&profile).join(support::cdylib_name());
    assert!(path.is_file(), "{} was not built", path.display());
    *built = Some(path.clone());
    path
}

fn kotlin_sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "kt") {
                out.push(path);
            }
        }
    }
    let root = support::root();
    let mut files = Vec::new();
    walk(&root.join("bindings/kotlin/src"), &mut files);
    files.push(root.join("examples/kotlin/Quickstart.kt"));
    files.sort();
    files
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The binding, its tests and the quickstart in one jar with the Kotlin runtime. kotlinc is slow, so this runs
/// once per test binary, and not at all when the jar is newer than every source.
fn jar() -> PathBuf {
    static JAR: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut done = JAR.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = done.as_ref() {
        return path.clone();
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bindings_kotlin");
    std::fs::create_dir_all(&dir).unwrap();
    let jar = dir.join("zego-express-tests.jar");
    let sources = kotlin_sources();
    let newest = sources
        .iter()
        .map(|p| modified(p))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    if !jar.is_file() || modified(&jar) < newest {
        // kotlinc writes a jar only when the name ends in .jar (anything else is a folder of classes).
        let partial = dir.join("zego-express-tests.partial.jar");
        let output = support::run(
            "kotlinc",
            Command::new("kotlinc")
                .args(&sources)
                .args(["-include-runtime", "-d"])
                .arg(&partial),
            Duration::from_secs(900),
        );
        support::assert_success("compiling the Kotlin binding", &output);
        std::fs::rename(&partial, &jar).unwrap();
    }
    *done = Some(jar.clone());
    jar
}

fn java(main: &str, args: &[&str], server: &zego_server::EmbeddedServer) -> Command {
    let lib = jni_library();
    let mut command = Command::new("java");
    command
        .arg(format!("-Dzego.express.library={}", lib.display()))
        .arg("-Xcheck:jni")
        .arg("-cp")
        .arg(jar())
        .arg(main)
        .args(args)
        .envs(support::server_env(server));
    command
}

#[test]
fn kotlin_suite_passes() {
    if toolchain().is_none() {
        return;
    }
    let server = support::server();
    let output = support::run(
        "the Kotlin tests",
        &mut java("zego.express.tests.TestsKt", &[], &server),
        Duration::from_secs(300),
    );
    support::assert_success("the Kotlin suite", &output);
    assert!(String::from_utf8_lossy(&output.stdout).contains(" passed, 0 failed"));
}

#[test]
fn kotlin_quickstart_runs_the_flow() {
    if toolchain().is_none() {
        return;
    }
    let server = support::server();
    let output = support::run(
        "examples/kotlin/Quickstart.kt",
        &mut java("QuickstartKt", &[server.ws_url(), "20"], &server),
        Duration::from_secs(120),
    );
    support::assert_success("the Kotlin quickstart", &output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("frames decoded"));
}

/// The JNI library exports a native for every function of the header (the JVM binds natives lazily, so a
/// missing one would only fail when first called).
#[test]
fn jni_library_exports_a_native_for_every_c_function() {
    if toolchain().is_none() {
        return;
    }
    let bytes = std::fs::read(jni_library()).unwrap();
    // Every NUL-terminated string starting "Java_zego_express_" (the dynamic symbol names are among them).
    let prefix = b"Java_zego_express_";
    let mut exported = std::collections::HashSet::new();
    let mut at = 0;
    while let Some(offset) = bytes[at..].windows(prefix.len()).position(|w| w == prefix) {
        let start = at + offset;
        let end = bytes[start..]
            .iter()
            .position(|b| *b == 0)
            .map_or(bytes.len(), |n| start + n);
        exported.insert(String::from_utf8_lossy(&bytes[start..end]).into_owned());
        at = end;
    }
    let missing: Vec<String> = support::header_functions()
        .iter()
        .map(|f| support::jni_symbol(f))
        .filter(|symbol| !exported.contains(symbol))
        .collect();
    assert!(
        missing.is_empty(),
        "JNI natives missing from the library: {missing:?}"
    );
}
