//! Destroying engines through the C ABI: while publishing and playing, from inside a frame callback, and while
//! other threads keep calling the API with the same handle. Against an in-process server on loopback.

use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr::null;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use zego_express::error;
use zego_express::ffi::*;
use zego_server::{EmbeddedServer, ServerConfig, DEV_APP_ID, DEV_APP_SIGN};

const STEP: Duration = Duration::from_secs(20);
/// Destroy joins every engine thread; it must not take long even mid-stream.
const DESTROY_BOUND: Duration = Duration::from_secs(5);

/// What one engine's callbacks saw. Lives on the test's stack: callbacks must stop before it goes away, which is
/// exactly what destroy promises.
#[derive(Default)]
struct Seen {
    engine: AtomicU64,
    room_state: AtomicI32,
    publisher_state: AtomicI32,
    player_state: AtomicI32,
    frames: AtomicUsize,
    /// Destroy the engine from inside the frame callback once this many frames arrived (0 = never).
    destroy_at_frame: AtomicUsize,
    destroyed_in_callback: AtomicBool,
    callbacks_after_destroy: AtomicUsize,
    destroyed: AtomicBool,
}

fn seen(context: *mut c_void) -> &'static Seen {
    unsafe { &*(context as *const Seen) }
}

fn note_after_destroy(s: &Seen) {
    if s.destroyed.load(Ordering::SeqCst) {
        s.callbacks_after_destroy.fetch_add(1, Ordering::SeqCst);
    }
}

unsafe extern "C" fn on_room(
    _: *const c_char,
    state: i32,
    _: c_int,
    _: *const c_char,
    cx: *mut c_void,
) {
    note_after_destroy(seen(cx));
    seen(cx).room_state.store(state, Ordering::SeqCst);
}

unsafe extern "C" fn on_publisher(
    _: *const c_char,
    state: i32,
    _: c_int,
    _: *const c_char,
    cx: *mut c_void,
) {
    note_after_destroy(seen(cx));
    seen(cx).publisher_state.store(state, Ordering::SeqCst);
}

unsafe extern "C" fn on_player(
    _: *const c_char,
    state: i32,
    _: c_int,
    _: *const c_char,
    cx: *mut c_void,
) {
    note_after_destroy(seen(cx));
    seen(cx).player_state.store(state, Ordering::SeqCst);
}

unsafe extern "C" fn on_frame(
    _: *const c_char,
    _: *const *const u8,
    _: *const u32,
    _: *const zego_video_frame_param,
    cx: *mut c_void,
) {
    let s = seen(cx);
    note_after_destroy(s);
    let frames = s.frames.fetch_add(1, Ordering::SeqCst) + 1;
    if frames == s.destroy_at_frame.load(Ordering::SeqCst) {
        let engine = s.engine.load(Ordering::SeqCst);
        assert_eq!(zego_engine_destroy(engine), 0);
        s.destroyed.store(true, Ordering::SeqCst);
        // Already invalid, even though this callback is still running.
        assert_eq!(
            zego_start_preview(engine, 0),
            error::COMMON_ENGINE_NOT_CREATED as c_int
        );
        s.destroyed_in_callback.store(true, Ordering::SeqCst);
    }
}

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + STEP;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn create(server: &EmbeddedServer, s: &Seen) -> zego_engine {
    let (sign, url) = (c(DEV_APP_SIGN), c(server.ws_url()));
    let profile = zego_engine_profile {
        app_id: DEV_APP_ID,
        app_sign: sign.as_ptr(),
        scenario: 0,
        server: url.as_ptr(),
    };
    let mut h = 0;
    assert_eq!(zego_engine_create(&profile, &mut h), 0);
    s.engine.store(h, Ordering::SeqCst);
    let cx = s as *const Seen as *mut c_void;
    assert_eq!(
        zego_register_room_state_update_callback(h, Some(on_room), cx),
        0
    );
    assert_eq!(
        zego_register_publisher_state_update_callback(h, Some(on_publisher), cx),
        0
    );
    assert_eq!(
        zego_register_player_state_update_callback(h, Some(on_player), cx),
        0
    );
    assert_eq!(
        zego_register_custom_video_render_remote_frame_callback(h, Some(on_frame), cx),
        0
    );
    h
}

fn login(h: zego_engine, s: &Seen, room: &str, user: &str) {
    let (room, user_id) = (c(room), c(user));
    let user = zego_user {
        user_id: user_id.as_ptr(),
        user_name: user_id.as_ptr(),
    };
    assert_eq!(zego_login_room(h, room.as_ptr(), &user, null()), 0);
    wait_for("login", || {
        s.room_state.load(Ordering::SeqCst) == zego_room_state::ZEGO_ROOM_STATE_CONNECTED as i32
    });
}

/// An anchor publishing `stream` and an audience rendering it.
fn publish_and_play(
    server: &EmbeddedServer,
    room: &str,
    stream: &str,
    anchor: &Seen,
    audience: &Seen,
) -> (zego_engine, zego_engine) {
    let a = create(server, anchor);
    let b = create(server, audience);
    login(a, anchor, room, &format!("{room}-anchor"));
    let stream = c(stream);
    assert_eq!(zego_start_publishing_stream(a, stream.as_ptr(), 0), 0);
    wait_for("publishing", || {
        anchor.publisher_state.load(Ordering::SeqCst)
            == zego_publisher_state::ZEGO_PUBLISHER_STATE_PUBLISHING as i32
    });
    login(b, audience, room, &format!("{room}-audience"));
    assert_eq!(zego_start_playing_stream(b, stream.as_ptr(), null()), 0);
    wait_for("frames", || audience.frames.load(Ordering::SeqCst) >= 5);
    (a, b)
}

fn destroy_within_bound(h: zego_engine, s: &Seen) {
    let started = Instant::now();
    assert_eq!(zego_engine_destroy(h), 0);
    s.destroyed.store(true, Ordering::SeqCst);
    assert!(
        started.elapsed() < DESTROY_BOUND,
        "destroy took {:?}",
        started.elapsed()
    );
}

#[test]
fn destroy_while_publishing_and_playing_stops_every_callback() {
    let server = EmbeddedServer::start(ServerConfig::default()).unwrap();
    let (anchor, audience) = (Seen::default(), Seen::default());
    let (a, b) = publish_and_play(
        &server,
        "destroy-live",
        "destroy-live-stream",
        &anchor,
        &audience,
    );

    // The anchor goes first, mid-stream; then the audience, still playing.
    destroy_within_bound(a, &anchor);
    destroy_within_bound(b, &audience);
    let frames = audience.frames.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        audience.frames.load(Ordering::SeqCst),
        frames,
        "frames after destroy"
    );
    assert_eq!(anchor.callbacks_after_destroy.load(Ordering::SeqCst), 0);
    assert_eq!(audience.callbacks_after_destroy.load(Ordering::SeqCst), 0);
    assert_eq!(
        zego_engine_destroy(a),
        error::COMMON_ENGINE_NOT_CREATED as c_int
    );
    server.stop();
}

#[test]
fn an_engine_can_destroy_itself_from_its_frame_callback() {
    let server = EmbeddedServer::start(ServerConfig::default()).unwrap();
    let (anchor, audience) = (Seen::default(), Seen::default());
    let (a, b) = publish_and_play(
        &server,
        "destroy-self",
        "destroy-self-stream",
        &anchor,
        &audience,
    );

    audience
        .destroy_at_frame
        .store(audience.frames.load(Ordering::SeqCst) + 3, Ordering::SeqCst);
    wait_for("destroy from the callback", || {
        audience.destroyed_in_callback.load(Ordering::SeqCst)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        audience.callbacks_after_destroy.load(Ordering::SeqCst),
        0,
        "callbacks after destroy"
    );
    let stream = c("destroy-self-stream");
    assert_eq!(
        zego_stop_playing_stream(b, stream.as_ptr()),
        error::COMMON_ENGINE_NOT_CREATED as c_int
    );
    destroy_within_bound(a, &anchor);
    server.stop();
}

#[test]
fn calls_racing_with_destroy_either_work_or_see_an_invalid_handle() {
    for round in 0..5 {
        let s = Seen::default();
        let (sign, url) = (c(DEV_APP_SIGN), c("ws://127.0.0.1:9/ws"));
        let profile = zego_engine_profile {
            app_id: DEV_APP_ID,
            app_sign: sign.as_ptr(),
            scenario: 0,
            server: url.as_ptr(),
        };
        let mut h = 0;
        assert_eq!(zego_engine_create(&profile, &mut h), 0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for worker in 0..3 {
                let (stop, s) = (&stop, &s);
                scope.spawn(move || {
                    let cx = s as *const Seen as *mut c_void;
                    let video = zego_video_config {
                        capture_width: 320,
                        capture_height: 180,
                        encode_width: 320,
                        encode_height: 180,
                        fps: 15,
                        bitrate_kbps: 300,
                        keyframe_interval_s: 2,
                    };
                    while !stop.load(Ordering::SeqCst) {
                        let codes = [
                            zego_start_preview(h, worker % 2),
                            zego_set_video_config(h, &video, 0),
                            zego_register_room_state_update_callback(h, Some(on_room), cx),
                            zego_stop_preview(h, worker % 2),
                            zego_set_remote_render_format(h, 5),
                        ];
                        for code in codes {
                            assert!(
                                code == 0 || code == error::COMMON_ENGINE_NOT_CREATED as c_int,
                                "round {round}: {code}"
                            );
                        }
                        if codes.iter().all(|&c| c != 0) {
                            break;
                        }
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(50));
            destroy_within_bound(h, &s);
            stop.store(true, Ordering::SeqCst);
        });
        assert_eq!(
            zego_start_preview(h, 0),
            error::COMMON_ENGINE_NOT_CREATED as c_int
        );
    }
}
