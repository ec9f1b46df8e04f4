//! A logout or destroy right after a login, before the server's reply can have arrived, still ends the session on
//! the server: nobody else in the room is left with a user who is gone.

mod flow_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use flow_support::*;
use zego_express::config::{RoomConfig, RoomStateChangedReason};
use zego_express::event::Event;
use zego_protocol::message::UpdateType;

const T: Duration = Duration::from_secs(10);
/// Far below the server's heartbeat timeout, which is what would end a forgotten session.
const SETTLE: Duration = Duration::from_secs(5);

/// The users the recorder's engine believes are in the room, from its user updates.
fn members(recorder: &Recorder) -> HashMap<String, i32> {
    let mut members: HashMap<String, i32> = HashMap::new();
    for event in recorder.events() {
        if let Event::RoomUserUpdate {
            update_type, users, ..
        } = event
        {
            for user in users {
                let delta = if update_type == UpdateType::Add {
                    1
                } else {
                    -1
                };
                *members.entry(user.user_id).or_default() += delta;
            }
        }
    }
    members.retain(|_, n| *n != 0);
    members
}

/// Waits a few hundred microseconds to a few milliseconds, so the logout lands at every point of the login.
fn short_pause(i: u32) {
    let pause = Duration::from_micros(u64::from(i % 12) * 250);
    let until = Instant::now() + pause;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

#[test]
fn a_logout_or_destroy_right_after_login_leaves_no_ghost() {
    let iterations: u32 = std::env::var("GHOST_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let server = server();
    let (observer, rec_o) = engine(server.ws_url());
    observer
        .login_room("ghosts", user("observer"), notify_users())
        .unwrap();
    rec_o.wait_for("the observer is in", T, |e| {
        matches!(
            e,
            Event::RoomStateChanged {
                reason: RoomStateChangedReason::Logined,
                ..
            }
        )
    });

    let (quitter, _rec_q) = engine(server.ws_url());
    for i in 0..iterations {
        let user_id = format!("quick-{i}");
        if i % 2 == 0 {
            quitter
                .login_room("ghosts", user(&user_id), RoomConfig::default())
                .unwrap();
            short_pause(i);
            quitter.logout_room(None).unwrap();
        } else {
            let (short_lived, _rec) = engine(server.ws_url());
            short_lived
                .login_room("ghosts", user(&user_id), RoomConfig::default())
                .unwrap();
            short_pause(i);
            short_lived.destroy();
        }
    }

    // Every quick session ended at once: the observer's room and the server's count are back to the observer.
    let deadline = Instant::now() + SETTLE;
    loop {
        let ghosts = members(&rec_o);
        let sessions = metric(&server, "zego_users");
        if ghosts.is_empty() && sessions == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} sessions on the server; the observer still sees {ghosts:?}",
            sessions
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    quitter.destroy();
    observer.destroy();
}
