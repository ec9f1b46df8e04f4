//! A WHIP client nobody here wrote publishes into a room, and the native SDK plays it: Debian's
//! `simple-whip-client` (GStreamer's webrtcbin, libnice ICE, OpenSSL DTLS with an RSA certificate) sends x264 and
//! Opus to the embedded server; an SDK user in the room sees the stream added, decodes its video and audio, and sees
//! it deleted when the client hangs up (its DELETE).
//!
//! libnice gathers no loopback candidates, so the client runs in a network namespace this test creates, joined to
//! the server by a veth pair (`ip`, as root). Bookworm's whip-client links libsoup 2.4 while libnice's UPnP-IGD
//! library pulls in libsoup 3, and the two abort in one process: the client runs with a UPnP-less
//! libgupnp-igd built from `tests/whip/gupnp_igd_stub.c`.
//!
//! Needs `whip-client` (Debian package simple-whip-client), `ip`, `cc` and root. Without them the test says why and
//! passes, unless CI=true, where they must be there.

mod flow_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use flow_support::*;
use zego_express::config::{PlayerConfig, PlayerState};
use zego_express::event::Event;
use zego_protocol::message::UpdateType;
use zego_protocol::token04::Privilege;
use zego_server::{EmbeddedServer, ServerConfig, DEV_APP_ID};

const T: Duration = Duration::from_secs(20);
const ROOM: &str = "whip-room";

/// Why the test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let runs = |program: &str, arg: &str| {
        Command::new(program)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if !runs("whip-client", "--help") {
        return Some("whip-client is not installed (Debian package simple-whip-client)".into());
    }
    if !runs("ip", "-V") {
        return Some("ip is not installed (Debian package iproute2)".into());
    }
    if !runs("cc", "--version") {
        return Some("cc is not installed".into());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("creating a network namespace needs root".into());
    }
    None
}

fn prerequisites_met() -> bool {
    match missing_prerequisite() {
        None => true,
        Some(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the WHIP client test must run in CI, but {why}"
            );
            eprintln!("skipped: {why}");
            false
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace with one veth link to this one: `host` is this side's address, `peer` the namespace's.
struct Netns {
    name: String,
    host: Ipv4Addr,
}

impl Netns {
    fn create() -> Netns {
        static CREATED: AtomicU32 = AtomicU32::new(0);
        let (pid, n) = (
            std::process::id(),
            CREATED.fetch_add(1, Ordering::Relaxed) % 4,
        );
        let name = format!("zwhip{pid}-{n}");
        let (outer, inner) = (format!("zw{pid}{n}a"), format!("zw{pid}{n}b"));
        // A /30 of 10.213.0.0/16 picked by the process id and the test, so that tests at once do not collide.
        let base = ((pid % 4096) * 4 + n) * 4;
        let octets = |n: u32| Ipv4Addr::new(10, 213, (n >> 8) as u8, n as u8);
        let (host, peer) = (octets(base + 1), octets(base + 2));
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns { name, host };
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ]);
        ip(&["link", "set", &inner, "netns", &ns.name]);
        ip(&["addr", "add", &format!("{host}/30"), "dev", &outer]);
        ip(&["link", "set", &outer, "up"]);
        ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{peer}/30"),
            "dev",
            &inner,
        ]);
        ip(&["-n", &ns.name, "link", "set", &inner, "up"]);
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, and with it this side's.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// The UPnP-less libgupnp-igd, built into a directory of its own for the client's LD_LIBRARY_PATH.
fn gupnp_igd_stub() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zego-whip-igd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/whip/gupnp_igd_stub.c");
    let out = Command::new("cc")
        .args([
            "-shared",
            "-fPIC",
            "-Wl,-soname,libgupnp-igd-1.0.so.4",
            "-o",
        ])
        .arg(dir.join("libgupnp-igd-1.0.so.4"))
        .arg(&source)
        .output()
        .expect("cc runs");
    assert!(
        out.status.success(),
        "building {}: {}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn publish_token(user_id: &str, stream_id: &str) -> String {
    let privilege = Privilege {
        room_id: ROOM.into(),
        login_room: true,
        publish: true,
        stream_id_list: Some(vec![stream_id.into()]),
    };
    dev_token(user_id, unix_secs() + 3600, privilege.to_payload())
}

/// whip-client in the namespace, publishing its test sources (video encoded in `profile`) as `stream_id`.
struct WhipClient {
    child: Child,
    log: PathBuf,
}

impl WhipClient {
    fn start(ns: &Netns, server: &EmbeddedServer, stream_id: &str, profile: &str) -> WhipClient {
        let url = format!(
            "http://{}/whip/{DEV_APP_ID}/{stream_id}?user_id={stream_id}&room_id={ROOM}",
            server.http_addr()
        );
        // x264 signals the lowest profile its tools need: ultrafast uses neither CABAC (Main) nor the 8x8
        // transform (High). zerolatency means no B-frames, as WebRTC wants.
        let tools = match profile {
            "constrained-baseline" => "speed-preset=ultrafast",
            "main" => "speed-preset=superfast cabac=true dct8x8=false",
            _ => "speed-preset=superfast cabac=true dct8x8=true",
        };
        let video = format!(
            "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
             ! videoconvert ! x264enc tune=zerolatency {tools} key-int-max=30 bitrate=600 \
             ! video/x-h264,profile={profile} ! rtph264pay config-interval=-1 pt=102 \
             ! application/x-rtp,media=video,encoding-name=H264,payload=102"
        );
        let audio = "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc \
             ! rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111";
        let log = std::env::temp_dir().join(format!(
            "whip-client-{}-{stream_id}.log",
            std::process::id()
        ));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "whip-client"])
            .args(["-u", &url, "-t", &publish_token(stream_id, stream_id)])
            .args(["-n", "-l", "7", "-V", &video, "-A", audio])
            .env("LD_LIBRARY_PATH", gupnp_igd_stub())
            .env("GST_REGISTRY", log.with_extension("registry"))
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("whip-client starts");
        WhipClient { child, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Asks the client to stop as Ctrl-C does: it DELETEs its session and exits.
    fn interrupt(&mut self) {
        // SAFETY: kill with a pid this process spawned and a valid signal number.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "whip-client did not exit on SIGINT:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for WhipClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn stream_update(update: UpdateType, stream_id: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| {
        matches!(e, Event::RoomStreamUpdate { update_type, streams, .. }
            if *update_type == update && streams.iter().any(|s| s.stream_id == stream_id))
    }
}

/// The native SDK, in the room, plays what whip-client publishes in `profile` and decodes video and audio.
fn plays_from_whip_client(profile: &str) {
    if !prerequisites_met() {
        return;
    }
    init_logging();
    let ns = Netns::create();
    let server = EmbeddedServer::start(ServerConfig {
        listen: SocketAddr::new(IpAddr::V4(ns.host), 0),
        media_bind: SocketAddr::new(IpAddr::V4(ns.host), 0),
        ..ServerConfig::default()
    })
    .expect("the embedded server starts");
    let (native, rec) = engine(server.ws_url());
    native
        .login_room(ROOM, user("viewer"), notify_users())
        .unwrap();

    let stream_id = format!("gst-{profile}");
    let mut client = WhipClient::start(&ns, &server, &stream_id, profile);
    let deadline = Instant::now() + T;
    let added = stream_update(UpdateType::Add, &stream_id);
    while !rec.events().iter().any(&added) {
        if let Some(status) = client.child.try_wait().unwrap() {
            panic!(
                "whip-client exited ({status}) before its stream appeared:\n{}",
                client.output()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no stream added within {T:?}; whip-client's output:\n{}",
            client.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    native
        .start_playing(&stream_id, PlayerConfig::default())
        .unwrap();
    rec.wait_for("playing the WHIP stream", T, |e| {
        matches!(e, Event::PlayerStateUpdate { stream_id: s, state: PlayerState::Playing, .. } if *s == stream_id)
    });
    let decoded = |r: &Recorder| r.frame_count(&stream_id) >= 30 && r.audio_frames() >= 25;
    let deadline = Instant::now() + T;
    while !decoded(&rec) {
        assert!(
            Instant::now() < deadline,
            "decoded {} video frames and {} audio frames of the WHIP stream; whip-client's output:\n{}",
            rec.frame_count(&stream_id),
            rec.audio_frames(),
            client.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let last = *rec.frames(&stream_id).last().unwrap();
    assert_eq!((last.width, last.height), (320, 240));
    // The client offered the profile it encodes (its offer is in its log).
    let profile_idc = match profile {
        "constrained-baseline" => "42",
        "main" => "4d",
        _ => "64",
    };
    assert!(
        client
            .output()
            .contains(&format!("profile-level-id={profile_idc}")),
        "whip-client did not offer profile {profile_idc}:\n{}",
        client.output()
    );

    // Ctrl-C: the client DELETEs its resource; the room hears the stream go, stopped by its user.
    let seen = rec.len();
    client.interrupt();
    let deleted = rec.wait_for_after(
        seen,
        "the stream delete",
        Duration::from_secs(5),
        stream_update(UpdateType::Delete, &stream_id),
    );
    // Reason 1: stopped by its user (a lost publisher would be 2).
    let Event::RoomStreamUpdate { extended_data, .. } = &deleted else {
        unreachable!()
    };
    let data: serde_json::Value = serde_json::from_str(extended_data).unwrap();
    assert_eq!(
        data["stream_delete_reason"][0]["code"], 1,
        "{extended_data}"
    );
    native.destroy();
    drop(server);
}

#[test]
fn native_sdk_plays_a_constrained_baseline_stream_from_gstreamer_whip() {
    plays_from_whip_client("constrained-baseline");
}

#[test]
fn native_sdk_plays_a_main_profile_stream_from_gstreamer_whip() {
    plays_from_whip_client("main");
}

#[test]
fn native_sdk_plays_a_high_profile_stream_from_gstreamer_whip() {
    plays_from_whip_client("high");
}
