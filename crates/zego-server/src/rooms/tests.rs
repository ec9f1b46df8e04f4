//! The room core, driven directly with a fake clock and made-up relay answers.

use std::time::Duration;

use zego_protocol::error;
use zego_protocol::message::{
    stream_delete_reason as reason, Credentials, ReplyResult, ServerMessage, UpdateType, User,
};
use zego_protocol::token04::{self, Claims, Mode, Privilege};
use zego_protocol::{signature, validate};

use super::*;
use crate::config::{AppConfig, DEV_APP_ID, DEV_APP_SIGN, DEV_SERVER_SECRET};

const OTHER_APP: u32 = 77;

struct World {
    reg: Registry,
    now: Now,
    nonce: u64,
    next_relay: u64,
}

fn user(id: &str) -> User {
    User {
        user_id: id.into(),
        user_name: format!("name of {id}"),
    }
}

/// Messages for one session, in order.
fn to(outputs: &[Output], session: SessionId) -> Vec<ServerMessage> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } if to.contains(&session) => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

fn reply_code(msg: &ServerMessage) -> ErrorCode {
    match msg {
        ServerMessage::Reply { code, .. } => *code,
        other => panic!("not a reply: {other:?}"),
    }
}

fn closed_relays(outputs: &[Output]) -> Vec<RelaySessionId> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::CloseRelay(id) => Some(*id),
            _ => None,
        })
        .collect()
}

impl World {
    fn new() -> Self {
        let other = AppConfig {
            app_id: OTHER_APP,
            ..AppConfig::dev()
        };
        let keys = [
            AppKeys::new(&AppConfig::dev()).unwrap(),
            AppKeys::new(&other).unwrap(),
        ];
        World {
            reg: Registry::new(
                Settings {
                    heartbeat_interval: Duration::from_secs(1),
                    heartbeat_timeout: Duration::from_secs(3),
                    online_count_interval: Duration::from_secs(30),
                    token_expire_notice: Duration::from_secs(30),
                },
                &keys,
            ),
            now: Now::system(),
            nonce: 0,
            next_relay: 100,
        }
    }

    fn advance(&mut self, d: Duration) -> Vec<Output> {
        self.now = self.now.after(d);
        self.reg.handle_timeout(self.now)
    }

    fn app_sign(&mut self, app_id: u32, user_id: &str, room_id: &str) -> Credentials {
        self.nonce += 1;
        let nonce = format!("n{}", self.nonce);
        let key = validate::app_sign(DEV_APP_SIGN).unwrap();
        Credentials::AppSign {
            timestamp_ms: self.now.unix_ms,
            signature: signature::sign(&key, app_id, user_id, room_id, self.now.unix_ms, &nonce),
            nonce,
        }
    }

    fn request(&mut self, app_id: u32, user_id: &str, room_id: &str, notify: bool) -> LoginRequest {
        LoginRequest {
            req_id: 1,
            protocol_version: PROTOCOL_VERSION,
            app_id,
            room_id: room_id.into(),
            user: user(user_id),
            credentials: self.app_sign(app_id, user_id, room_id),
            notify_users: notify,
            max_member_count: 0,
            resume_session: None,
        }
    }

    fn login_in(
        &mut self,
        app_id: u32,
        user_id: &str,
        room_id: &str,
        notify: bool,
    ) -> (SessionId, Vec<Output>) {
        let req = self.request(app_id, user_id, room_id, notify);
        let ok = self.reg.login(req, self.now).expect("login");
        (ok.session, ok.outputs)
    }

    fn login(&mut self, user_id: &str, room_id: &str) -> (SessionId, Vec<Output>) {
        self.login_in(DEV_APP_ID, user_id, room_id, true)
    }

    fn relay_ok(&mut self) -> RelayOutcome {
        self.next_relay += 1;
        Ok((self.next_relay, format!("answer-{}", self.next_relay)))
    }

    /// Publishes through both steps with a relay that accepts.
    fn publish(&mut self, session: SessionId, stream_id: &str) -> Vec<Output> {
        let prepared = self
            .reg
            .prepare_publish(session, 2, stream_id, "", "offer", self.now);
        let grant = prepared
            .grant
            .unwrap_or_else(|| panic!("publish refused: {:?}", prepared.outputs));
        let outcome = self.relay_ok();
        self.reg.finish_publish(grant, "", outcome)
    }

    fn play(&mut self, session: SessionId, stream_id: &str) -> Vec<Output> {
        let prepared = self
            .reg
            .prepare_play(session, 3, stream_id, "offer", false, self.now);
        let grant = prepared
            .grant
            .unwrap_or_else(|| panic!("play refused: {:?}", prepared.outputs));
        let outcome = self.relay_ok();
        self.reg.finish_play(grant, outcome)
    }

    fn login_reply(outputs: &[Output], session: SessionId) -> ReplyResult {
        match to(outputs, session).into_iter().next() {
            Some(ServerMessage::Reply {
                code: 0,
                result: Some(result),
                ..
            }) => result,
            other => panic!("no login reply: {other:?}"),
        }
    }
}

#[test]
fn login_reply_is_the_snapshot_and_later_logins_are_increments() {
    let mut w = World::new();
    let (a, out) = w.login("a", "r");
    let ReplyResult::Login {
        users,
        online_count,
        ..
    } = World::login_reply(&out, a)
    else {
        panic!()
    };
    assert_eq!(users, vec![user("a")]);
    assert_eq!(online_count, 1);
    w.publish(a, "s-a");

    let (b, out) = w.login("b", "r");
    let ReplyResult::Login { users, streams, .. } = World::login_reply(&out, b) else {
        panic!()
    };
    assert_eq!(
        users,
        vec![user("a"), user("b")],
        "everyone present, this user included"
    );
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].stream_id, "s-a");
    assert_eq!(
        to(&out, a),
        vec![ServerMessage::UserUpdate {
            room_id: "r".into(),
            update_type: UpdateType::Add,
            users: vec![user("b")],
        }]
    );

    // Without is_user_status_notify: no user list, no user events.
    let (c, out) = w.login_in(DEV_APP_ID, "c", "r", false);
    let ReplyResult::Login {
        users,
        online_count,
        ..
    } = World::login_reply(&out, c)
    else {
        panic!()
    };
    assert!(users.is_empty());
    assert_eq!(online_count, 3);
    assert_eq!(to(&out, a).len(), 1);
    assert_eq!(to(&out, b).len(), 1);
    let (_, out) = w.login("d", "r");
    assert!(to(&out, c).is_empty());
}

#[test]
fn rooms_and_apps_are_separate_namespaces() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let (other_room, _) = w.login("x", "r2");
    let (other_app, _) = w.login_in(OTHER_APP, "y", "r", true);
    // The same user_id in another app is another user: no kick.
    let (same_id_other_app, out) = w.login_in(OTHER_APP, "a", "r", true);
    assert!(to(&out, a).is_empty());
    assert_eq!(to(&out, other_app).len(), 1);

    let out = w.publish(a, "s1");
    assert!(to(&out, other_room).is_empty());
    assert!(to(&out, other_app).is_empty());
    assert!(to(&out, same_id_other_app).is_empty());
    // stream ids are per app: the other app may publish "s1" too.
    let out = w.publish(same_id_other_app, "s1");
    assert!(to(&out, a).is_empty());
    assert_eq!(to(&out, other_app).len(), 1);

    let out = w.reg.broadcast(a, 9, "hello", w.now);
    assert!(to(&out, other_room).is_empty() && to(&out, other_app).is_empty());
}

#[test]
fn a_stream_id_has_one_publisher_per_app_and_its_owner_may_republish() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let (b, _) = w.login("b", "r");
    let out = w.publish(a, "s1");
    assert!(matches!(
        &to(&out, b)[0],
        ServerMessage::StreamUpdate {
            update_type: UpdateType::Add,
            ..
        }
    ));
    w.play(b, "s1");

    let refused = w.reg.prepare_publish(b, 5, "s1", "", "offer", w.now);
    assert!(refused.grant.is_none());
    assert_eq!(
        reply_code(&to(&refused.outputs, b)[0]),
        error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED
    );

    // The owner publishing again is the SDK restoring its media: the relay replaces the publisher, nobody is told.
    let out = w.publish(a, "s1");
    assert_eq!(reply_code(&to(&out, a)[0]), error::SUCCESS);
    assert!(
        to(&out, b).is_empty(),
        "no Add again, the player keeps playing: {out:?}"
    );
    assert!(closed_relays(&out).is_empty());
    assert_eq!(w.reg.census().plays, 1);
    assert_eq!(w.reg.census().streams, 1);
}

#[test]
fn a_second_login_of_the_same_user_kicks_the_first() {
    let mut w = World::new();
    let (a1, _) = w.login("a", "r");
    let (b, _) = w.login("b", "r");
    w.publish(a1, "s1");

    let (a2, out) = w.login("a", "r");
    assert_ne!(a1, a2);
    assert_eq!(
        to(&out, a1),
        vec![ServerMessage::Kicked {
            room_id: "r".into(),
            code: error::ROOM_KICKED_OUT_SAME_USER
        }]
    );
    assert!(out.contains(&Output::Detach {
        session: a1,
        close: Some(CloseReason::Kicked)
    }));
    assert_eq!(
        closed_relays(&out).len(),
        1,
        "the old publisher's relay session is closed"
    );
    let events = to(&out, b);
    assert!(matches!(
        &events[0],
        ServerMessage::StreamUpdate { update_type: UpdateType::Delete, reasons, .. }
            if reasons[0].code == reason::REPEATED_LOGIN && reasons[0].stream_id == "s1"
    ));
    assert!(matches!(
        &events[1],
        ServerMessage::UserUpdate {
            update_type: UpdateType::Delete,
            ..
        }
    ));
    assert!(matches!(
        &events[2],
        ServerMessage::UserUpdate {
            update_type: UpdateType::Add,
            ..
        }
    ));
    assert!(!w.reg.has_session(a1));
    assert_eq!(w.reg.census().sessions, 2);
}

#[test]
fn a_silent_session_times_out_and_the_others_hear_why() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let (b, _) = w.login("b", "r");
    w.publish(a, "s1");
    for _ in 0..2 {
        assert!(w
            .advance(Duration::from_millis(1400))
            .iter()
            .all(|o| !matches!(o, Output::Detach { .. })));
        w.reg.heartbeat(b, 1, w.now);
    }
    // a has been silent for 3 s now.
    let out = w.advance(Duration::from_millis(200));
    assert!(out.contains(&Output::Detach {
        session: a,
        close: Some(CloseReason::HeartbeatTimeout)
    }));
    let events = to(&out, b);
    assert!(matches!(
        &events[0],
        ServerMessage::StreamUpdate { update_type: UpdateType::Delete, reasons, .. }
            if reasons[0].code == reason::HEARTBEAT_TIMEOUT
    ));
    assert_eq!(
        events[1],
        ServerMessage::UserUpdate {
            room_id: "r".into(),
            update_type: UpdateType::Delete,
            users: vec![user("a")]
        }
    );
    assert!(w.reg.has_session(b));
    assert_eq!(w.reg.totals().heartbeat_timeouts, 1);
}

#[test]
fn resume_moves_the_session_without_events() {
    let mut w = World::new();
    let (a, out) = w.login("a", "r");
    let ReplyResult::Login { session_id, .. } = World::login_reply(&out, a) else {
        panic!()
    };
    let (b, _) = w.login("b", "r");
    w.publish(a, "s1");

    let mut req = w.request(DEV_APP_ID, "a", "r", true);
    req.resume_session = Some(session_id.clone());
    let ok = w.reg.login(req, w.now).unwrap();
    assert!(ok.resumed);
    assert_eq!(ok.session, a);
    assert!(to(&ok.outputs, b).is_empty());
    let ReplyResult::Login {
        session_id: again,
        streams,
        ..
    } = World::login_reply(&ok.outputs, a)
    else {
        panic!()
    };
    assert_eq!(again, session_id);
    assert_eq!(streams.len(), 1, "its stream survived");

    // Someone else cannot take the session over by naming it: that is a fresh login of that user.
    let mut req = w.request(DEV_APP_ID, "c", "r", true);
    req.resume_session = Some(session_id);
    let ok = w.reg.login(req, w.now).unwrap();
    assert!(!ok.resumed);
    assert_ne!(ok.session, a);
}

#[test]
fn a_full_room_refuses_newcomers_but_not_the_same_user_again() {
    let mut w = World::new();
    let mut req = w.request(DEV_APP_ID, "a", "r", true);
    req.max_member_count = 2;
    w.reg.login(req, w.now).unwrap();
    w.login("b", "r");
    let req = w.request(DEV_APP_ID, "c", "r", true);
    assert_eq!(
        w.reg.login(req, w.now).unwrap_err(),
        error::ROOM_MAX_MEMBER_COUNT
    );
    w.login("b", "r");
}

#[test]
fn login_failures_have_their_codes() {
    let mut w = World::new();
    let mut req = w.request(DEV_APP_ID, "a", "r", true);
    req.protocol_version = 99;
    assert_eq!(
        w.reg.login(req, w.now).unwrap_err(),
        error::PROTOCOL_VERSION_UNSUPPORTED
    );
    let mut req = w.request(DEV_APP_ID, "a", "r", true);
    req.app_id = 5;
    assert_eq!(
        w.reg.login(req, w.now).unwrap_err(),
        error::ENGINE_APP_ID_INCORRECT
    );
    let mut req = w.request(DEV_APP_ID, "a", "r", true);
    req.room_id = "has space".into();
    assert_eq!(
        w.reg.login(req, w.now).unwrap_err(),
        error::ROOM_ROOM_ID_INVALID_CHARACTER
    );
    let mut req = w.request(DEV_APP_ID, "a", "r", true);
    req.user.user_id = "b".into();
    assert_eq!(
        w.reg.login(req, w.now).unwrap_err(),
        error::ENGINE_APP_SIGN_INCORRECT
    );
    assert_eq!(w.reg.census().sessions, 0);
}

#[test]
fn room_extra_info_is_shared_limited_and_in_the_snapshot() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let (b, _) = w.login("b", "r");
    let out = w.reg.set_room_extra_info(a, 4, "k0", "v0", w.now);
    assert_eq!(reply_code(&to(&out, a)[0]), 0);
    let ServerMessage::RoomExtraInfoUpdate { infos, .. } = &to(&out, b)[0] else {
        panic!()
    };
    assert_eq!(
        (infos[0].key.as_str(), infos[0].value.as_str()),
        ("k0", "v0")
    );
    assert_eq!(infos[0].update_user, user("a"));

    // Ten per second, then refused until the window slides.
    for i in 1..10 {
        let out = w
            .reg
            .set_room_extra_info(a, 4, &format!("k{i}"), "v", w.now);
        assert_eq!(reply_code(&to(&out, a)[0]), 0);
    }
    let out = w.reg.set_room_extra_info(a, 4, "k10", "v", w.now);
    assert_eq!(
        reply_code(&to(&out, a)[0]),
        error::ROOM_RATE_LIMITED_EXTRA_INFO
    );
    // Up to 32 keys.
    w.now = w.now.after(Duration::from_secs(1));
    for i in 10..32 {
        w.now = w.now.after(Duration::from_millis(101));
        let out = w
            .reg
            .set_room_extra_info(a, 4, &format!("k{i}"), "v", w.now);
        assert_eq!(reply_code(&to(&out, a)[0]), 0, "key {i}");
    }
    w.now = w.now.after(Duration::from_secs(1));
    let out = w.reg.set_room_extra_info(a, 4, "k32", "v", w.now);
    assert_eq!(
        reply_code(&to(&out, a)[0]),
        error::ROOM_EXTRA_INFO_KEY_COUNT_EXCEEDED
    );
    let out = w.reg.set_room_extra_info(a, 4, "", "v", w.now);
    assert_eq!(
        reply_code(&to(&out, a)[0]),
        error::ROOM_EXTRA_INFO_KEY_TOO_LONG
    );

    let (c, out) = w.login("c", "r");
    let ReplyResult::Login {
        room_extra_info, ..
    } = World::login_reply(&out, c)
    else {
        panic!()
    };
    assert_eq!(room_extra_info.len(), 32);
}

#[test]
fn broadcasts_are_numbered_per_room_and_rate_limited() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let (b, _) = w.login("b", "r");
    for expected in 1..=10u64 {
        let out = w.reg.broadcast(a, 6, "hi", w.now);
        assert_eq!(
            to(&out, a)[0],
            ServerMessage::reply(
                6,
                0,
                Some(ReplyResult::BroadcastMessage {
                    message_id: expected
                })
            )
        );
        let ServerMessage::BroadcastMessage { messages, .. } = &to(&out, b)[0] else {
            panic!()
        };
        assert_eq!(messages[0].message_id, expected);
        assert_eq!(messages[0].from_user, user("a"));
    }
    let out = w.reg.broadcast(a, 6, "hi", w.now);
    assert_eq!(
        reply_code(&to(&out, a)[0]),
        error::IM_BROADCAST_RATE_EXCEEDED
    );
    assert!(to(&out, b).is_empty());
    w.now = w.now.after(Duration::from_secs(1));
    assert_eq!(
        reply_code(&to(&w.reg.broadcast(a, 6, "hi", w.now), a)[0]),
        0
    );
    assert_eq!(
        reply_code(&to(&w.reg.broadcast(a, 6, "", w.now), a)[0]),
        error::IM_CONTENT_NULL
    );
    let long = "x".repeat(1025);
    assert_eq!(
        reply_code(&to(&w.reg.broadcast(a, 6, &long, w.now), a)[0]),
        error::IM_CONTENT_TOO_LONG
    );
}

#[test]
fn custom_commands_reach_the_listed_users_of_the_room_only() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let (b, _) = w.login("b", "r");
    let (c, _) = w.login("c", "r");
    let (elsewhere, _) = w.login("d", "r2");
    let out = w.reg.custom_command(
        a,
        7,
        "cmd",
        &["b".into(), "d".into(), "nobody".into()],
        w.now,
    );
    assert_eq!(reply_code(&to(&out, a)[0]), 0);
    assert_eq!(to(&out, b).len(), 1);
    assert!(to(&out, c).is_empty());
    assert!(
        to(&out, elsewhere).is_empty(),
        "users of other rooms are not reachable"
    );
    let out = w.reg.custom_command(a, 7, "cmd", &[], w.now);
    assert_eq!(to(&out, b).len() + to(&out, c).len(), 2);
    assert_eq!(to(&out, a).len(), 1, "only the reply");
    for _ in 2..20 {
        w.reg.custom_command(a, 7, "cmd", &[], w.now);
    }
    let out = w.reg.custom_command(a, 7, "cmd", &[], w.now);
    assert_eq!(
        reply_code(&to(&out, a)[0]),
        error::ROOM_RATE_LIMITED_REQUEST
    );
}

#[test]
fn online_count_goes_to_every_member_each_interval() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let (b, _) = w.login_in(DEV_APP_ID, "b", "r", false);
    let keepalive = |w: &mut World| {
        w.reg.touch(a, w.now);
        w.reg.touch(b, w.now);
    };
    let mut counts = 0;
    for _ in 0..60 {
        let out = w.advance(Duration::from_secs(1));
        keepalive(&mut w);
        for s in [a, b] {
            for msg in to(&out, s) {
                assert_eq!(
                    msg,
                    ServerMessage::OnlineUserCount {
                        room_id: "r".into(),
                        count: 2
                    }
                );
                counts += 1;
            }
        }
    }
    assert_eq!(counts, 4, "two members, twice in 60 s");
}

fn token(user_id: &str, expire: i64, privilege: Option<Privilege>) -> Credentials {
    let claims = Claims {
        app_id: DEV_APP_ID,
        user_id: user_id.into(),
        nonce: 1,
        ctime: expire - 3600,
        expire,
        payload: privilege.map(|p| p.to_payload()).unwrap_or_default(),
    };
    Credentials::Token {
        token: token04::generate(DEV_SERVER_SECRET, &claims, Mode::Gcm, None).unwrap(),
    }
}

fn privilege(room: &str, publish: bool, streams: Option<&[&str]>) -> Option<Privilege> {
    Some(Privilege {
        room_id: room.into(),
        login_room: true,
        publish,
        stream_id_list: streams.map(|s| s.iter().map(|s| s.to_string()).collect()),
    })
}

impl World {
    fn login_with_token(
        &mut self,
        user_id: &str,
        credentials: Credentials,
    ) -> Result<LoginOk, ErrorCode> {
        let mut req = self.request(DEV_APP_ID, user_id, "r", true);
        req.credentials = credentials;
        self.reg.login(req, self.now)
    }
}

#[test]
fn token_warns_then_kicks_unless_renewed() {
    let mut w = World::new();
    let expire = w.now.unix_secs() + 40;
    let ok = w.login_with_token("a", token("a", expire, None)).unwrap();
    let a = ok.session;
    let ReplyResult::Login {
        token_expire_time, ..
    } = World::login_reply(&ok.outputs, a)
    else {
        panic!()
    };
    assert_eq!(token_expire_time, Some(expire as u64));
    let (b, _) = w.login("b", "r");
    w.publish(a, "s1");

    // Seconds pass with both sessions heartbeating; what happened in each second is kept.
    let live = |w: &mut World, secs: u64| -> Vec<Vec<Output>> {
        (0..secs)
            .map(|_| {
                let out = w.advance(Duration::from_secs(1));
                w.reg.touch(a, w.now);
                w.reg.touch(b, w.now);
                out
            })
            .collect()
    };
    let seconds = live(&mut w, 11);
    let warnings: Vec<(usize, ServerMessage)> = seconds
        .iter()
        .enumerate()
        .flat_map(|(i, out)| to(out, a).into_iter().map(move |m| (i + 1, m)))
        .collect();
    // The token expires 40 s after login (less the sub-second part of the clock): the warning comes 30 s
    // before, at the tenth second.
    assert_eq!(
        warnings,
        vec![(
            10,
            ServerMessage::TokenWillExpire {
                room_id: "r".into(),
                remain_seconds: 30
            }
        )],
        "warned once, 30 s before expiry"
    );

    // Renewed: a new expiry, a new warning later, no kick at the old expiry.
    let renewed = expire + 60;
    let token_text = |c: Credentials| match c {
        Credentials::Token { token } => token,
        _ => unreachable!(),
    };
    let out = w
        .reg
        .renew_token(a, 8, &token_text(token("a", renewed, None)), w.now);
    assert_eq!(
        to(&out, a)[0],
        ServerMessage::reply(
            8,
            0,
            Some(ReplyResult::RenewToken {
                token_expire_time: renewed as u64
            })
        )
    );
    let seconds = live(&mut w, 40);
    assert!(seconds
        .iter()
        .flatten()
        .all(|o| !matches!(o, Output::Detach { .. })));
    // Past the renewed expiry without renewing again: warned, then kicked, and its stream goes with reason
    // "kicked out".
    let seconds = live(&mut w, 70);
    let kicked: Vec<Output> = seconds
        .into_iter()
        .find(|out| out.iter().any(|o| matches!(o, Output::Detach { .. })))
        .expect("kicked");
    assert!(to(&kicked, a).contains(&ServerMessage::Kicked {
        room_id: "r".into(),
        code: error::ROOM_KICKED_OUT_TOKEN_EXPIRED
    }));
    assert!(matches!(
        &to(&kicked, b)[0],
        ServerMessage::StreamUpdate { reasons, .. } if reasons[0].code == reason::KICKED_OUT
    ));
    assert!(!w.reg.has_session(a));
}

#[test]
fn token_privileges_govern_login_and_publish() {
    let mut w = World::new();
    let in_an_hour = w.now.unix_secs() + 3600;
    assert_eq!(
        w.login_with_token(
            "a",
            token("a", in_an_hour, privilege("other-room", true, None))
        )
        .unwrap_err(),
        error::ROOM_AUTHENTICATION_FAILED
    );
    assert_eq!(
        w.login_with_token("a", token("b", in_an_hour, None))
            .unwrap_err(),
        error::ROOM_TOKEN_USER_ID_ERROR
    );
    assert_eq!(
        w.login_with_token("a", token("a", w.now.unix_secs() - 1, None))
            .unwrap_err(),
        error::ROOM_TOKEN_EXPIRED
    );

    let viewer = w
        .login_with_token("v", token("v", in_an_hour, privilege("r", false, None)))
        .unwrap()
        .session;
    let refused = w.reg.prepare_publish(viewer, 2, "s1", "", "offer", w.now);
    assert_eq!(
        reply_code(&to(&refused.outputs, viewer)[0]),
        error::PUBLISHER_AUTH_FAILED
    );

    let host = w
        .login_with_token(
            "h",
            token("h", in_an_hour, privilege("r", true, Some(&["s1"]))),
        )
        .unwrap()
        .session;
    let refused = w.reg.prepare_publish(host, 2, "s2", "", "offer", w.now);
    assert_eq!(
        reply_code(&to(&refused.outputs, host)[0]),
        error::PUBLISHER_AUTH_FAILED
    );
    w.publish(host, "s1");

    // A renewed token must still allow what is being published.
    let Credentials::Token { token: weaker } =
        token("h", in_an_hour + 60, privilege("r", false, None))
    else {
        unreachable!()
    };
    let out = w.reg.renew_token(host, 9, &weaker, w.now);
    assert_eq!(
        reply_code(&to(&out, host)[0]),
        error::ROOM_RENEWED_TOKEN_NO_PUBLISH_PRIVILEGE
    );
    let out = w.reg.renew_token(host, 9, "04garbage", w.now);
    assert_eq!(
        reply_code(&to(&out, host)[0]),
        error::ROOM_TOKEN_FORMAT_ERROR
    );
}

#[test]
fn a_waiting_play_starts_when_the_stream_appears_and_stops_with_it() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let (b, _) = w.login("b", "r");
    let prepared = w.reg.prepare_play(b, 3, "s1", "b-offer", true, w.now);
    assert!(prepared.grant.is_none());
    assert_eq!(
        to(&prepared.outputs, b),
        vec![ServerMessage::reply(
            3,
            error::PLAYER_STREAM_NOT_EXIST,
            Some(ReplyResult::Play {
                sdp: None,
                waiting: true
            })
        )]
    );
    assert_eq!(w.reg.census().waiting_plays, 1);

    let out = w.publish(a, "s1");
    let grant = out
        .iter()
        .find_map(|o| match o {
            Output::StartPlay(g) => Some(g.clone()),
            _ => None,
        })
        .expect("the waiting play starts");
    assert_eq!(
        (grant.session, grant.offer.as_str(), grant.req_id),
        (b, "b-offer", None)
    );
    let out = w.reg.finish_play(grant, Ok((900, "b-answer".into())));
    assert_eq!(
        to(&out, b),
        vec![ServerMessage::PlayStarted {
            stream_id: "s1".into(),
            sdp: "b-answer".into()
        }]
    );
    assert_eq!(w.reg.census().plays, 1);

    let out = w.reg.stop_publish(a, 4, "s1", w.now);
    assert!(to(&out, b).contains(&ServerMessage::PlayStopped {
        stream_id: "s1".into(),
        code: reason::STOPPED
    }));
    assert!(
        closed_relays(&out).contains(&900),
        "the player's relay session is closed"
    );
    assert_eq!(closed_relays(&out).len(), 2, "and the publisher's");
    assert_eq!(w.reg.census().plays, 0);
}

#[test]
fn plays_of_missing_streams_and_stops_of_unplayed_ones_fail() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let prepared = w.reg.prepare_play(a, 3, "nope", "offer", false, w.now);
    assert_eq!(
        to(&prepared.outputs, a),
        vec![ServerMessage::reply(
            3,
            error::PLAYER_STREAM_NOT_EXIST,
            None
        )]
    );
    let out = w.reg.stop_play(a, 4, "nope", w.now);
    assert_eq!(reply_code(&to(&out, a)[0]), error::PLAYER_STREAM_NOT_PLAYED);
    let prepared = w.reg.prepare_play(a, 3, "bad id", "offer", false, w.now);
    assert_eq!(
        reply_code(&to(&prepared.outputs, a)[0]),
        error::COMMON_STREAM_ID_INVALID_CHARACTER
    );
}

#[test]
fn streams_of_other_rooms_of_the_same_app_can_be_played() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r1");
    let (b, _) = w.login("b", "r2");
    w.publish(a, "s1");
    let out = w.play(b, "s1");
    assert!(matches!(
        &to(&out, b)[0],
        ServerMessage::Reply {
            code: 0,
            result: Some(ReplyResult::Play {
                sdp: Some(_),
                waiting: false
            }),
            ..
        }
    ));
    // When the stream goes, its player in the other room hears PlayStopped, but no stream event of a room it
    // is not in.
    let out = w.reg.logout(a, 5, w.now);
    assert_eq!(
        to(&out, b),
        vec![ServerMessage::PlayStopped {
            stream_id: "s1".into(),
            code: reason::STOPPED
        }]
    );
}

#[test]
fn logout_deletes_streams_and_empty_rooms() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let (b, _) = w.login("b", "r");
    w.publish(a, "s1");
    w.reg.set_room_extra_info(a, 1, "k", "v", w.now);
    let out = w.reg.logout(a, 5, w.now);
    assert_eq!(to(&out, a), vec![ServerMessage::reply(5, 0, None)]);
    assert!(out.contains(&Output::Detach {
        session: a,
        close: None
    }));
    let events = to(&out, b);
    assert!(
        matches!(&events[0], ServerMessage::StreamUpdate { reasons, .. } if reasons[0].code == reason::STOPPED)
    );
    assert!(matches!(
        &events[1],
        ServerMessage::UserUpdate {
            update_type: UpdateType::Delete,
            ..
        }
    ));
    w.reg.logout(b, 6, w.now);
    assert_eq!(w.reg.census(), Census::default());
    // A new room of the same name starts empty.
    let (c, out) = w.login("c", "r");
    let ReplyResult::Login {
        room_extra_info, ..
    } = World::login_reply(&out, c)
    else {
        panic!()
    };
    assert!(room_extra_info.is_empty());
}

#[test]
fn relay_answers_that_arrive_too_late_are_closed() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let (b, _) = w.login("b", "r");
    // A publish in flight when its session is kicked: the relay's session is closed on arrival.
    let grant = w
        .reg
        .prepare_publish(a, 2, "s1", "", "offer", w.now)
        .grant
        .unwrap();
    w.login("a", "r");
    let out = w.reg.finish_publish(grant, "", Ok((500, "answer".into())));
    assert_eq!(out, vec![Output::CloseRelay(500)]);
    assert_eq!(w.reg.census().streams, 0);

    // A play in flight when its stream stops: the request is answered 1004002 and the relay session closed.
    let (c, _) = w.login("c", "r");
    w.publish(c, "s2");
    let grant = w
        .reg
        .prepare_play(b, 3, "s2", "offer", false, w.now)
        .grant
        .unwrap();
    let out = w.reg.stop_publish(c, 4, "s2", w.now);
    assert!(to(&out, b)
        .iter()
        .all(|m| !matches!(m, ServerMessage::PlayStopped { .. })));
    let out = w.reg.finish_play(grant, Ok((600, "answer".into())));
    assert!(closed_relays(&out).contains(&600));
    assert_eq!(reply_code(&to(&out, b)[0]), error::PLAYER_STREAM_NOT_EXIST);
}

#[test]
fn a_refused_first_publish_frees_the_stream_id() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let (b, _) = w.login("b", "r");
    let grant = w
        .reg
        .prepare_publish(a, 2, "s1", "", "offer", w.now)
        .grant
        .unwrap();
    let out = w.reg.finish_publish(
        grant,
        "",
        Err(RelayRefusal {
            code: error::COMMON_INVALID_PARAMETER,
            message: "bad offer".into(),
        }),
    );
    assert_eq!(reply_code(&to(&out, a)[0]), error::COMMON_INVALID_PARAMETER);
    assert!(to(&out, b).is_empty());
    w.publish(b, "s1");
}

#[test]
fn stream_extra_info_is_the_publishers_to_change() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let (b, _) = w.login("b", "r");
    w.publish(a, "s1");
    let out = w.reg.set_stream_extra_info(a, 3, "s1", "hello", w.now);
    assert_eq!(reply_code(&to(&out, a)[0]), 0);
    let ServerMessage::StreamExtraInfoUpdate { streams, .. } = &to(&out, b)[0] else {
        panic!()
    };
    assert_eq!(streams[0].extra_info, "hello");
    let out = w.reg.set_stream_extra_info(b, 3, "s1", "mine", w.now);
    assert_eq!(
        reply_code(&to(&out, b)[0]),
        error::PUBLISHER_UPDATE_EXTRA_INFO_FAILED
    );
    let out = w
        .reg
        .set_stream_extra_info(a, 3, "s1", &"x".repeat(1025), w.now);
    assert_eq!(
        reply_code(&to(&out, a)[0]),
        error::PUBLISHER_EXTRA_INFO_TOO_LONG
    );
}

#[test]
fn media_lost_at_the_relay_ends_plays_and_eventually_streams() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let (b, _) = w.login("b", "r");
    w.publish(a, "s1");
    let out = w.play(b, "s1");
    let _ = out;
    let player_relay = w.next_relay;
    let publisher_relay = player_relay - 1;

    // A player's media connection ends: its play is over.
    let out = w.reg.relay_disconnected(player_relay, w.now);
    assert_eq!(
        to(&out, b),
        vec![ServerMessage::PlayStopped {
            stream_id: "s1".into(),
            code: reason::DISCONNECTED
        }]
    );
    assert!(
        closed_relays(&out).is_empty(),
        "the relay already forgot it"
    );
    assert_eq!(w.reg.census().plays, 0);

    // The publisher's ends: the stream stays while the SDK may restore it...
    assert!(w.reg.relay_disconnected(publisher_relay, w.now).is_empty());
    let keep = |w: &mut World| {
        w.reg.touch(a, w.now);
        w.reg.touch(b, w.now);
    };
    w.advance(Duration::from_secs(2));
    keep(&mut w);
    // ... and publishing again within the grace keeps it.
    w.publish(a, "s1");
    let out = w.advance(Duration::from_secs(2));
    keep(&mut w);
    assert!(to(&out, b).is_empty());

    // Lost again and not restored: deleted with reason 5 after one heartbeat timeout.
    let publisher_relay = w.next_relay;
    w.reg.relay_disconnected(publisher_relay, w.now);
    w.advance(Duration::from_secs(2));
    keep(&mut w);
    let out = w.advance(Duration::from_secs(1));
    assert!(matches!(
        &to(&out, b)[0],
        ServerMessage::StreamUpdate { update_type: UpdateType::Delete, reasons, .. }
            if reasons[0].code == reason::DISCONNECTED
    ));
    // Events about sessions the server closed itself are ignored.
    assert!(w.reg.relay_disconnected(12345, w.now).is_empty());
}

#[test]
fn a_lost_publisher_s_stream_is_deleted_at_once_with_reason_2() {
    let mut w = World::new();
    let (a, _) = w.login("a", "r");
    let (b, _) = w.login("b", "r");
    let (c, _) = w.login("c", "r");
    w.publish(a, "s1");
    w.play(b, "s1");
    let player_relay = w.next_relay;
    let publisher_relay = player_relay - 1;

    let out = w.reg.relay_lost(publisher_relay, w.now);
    assert_eq!(
        to(&out, b),
        vec![
            ServerMessage::PlayStopped {
                stream_id: "s1".into(),
                code: reason::HEARTBEAT_TIMEOUT
            },
            ServerMessage::StreamUpdate {
                room_id: "r".into(),
                update_type: UpdateType::Delete,
                streams: vec![StreamInfo {
                    user: user("a"),
                    stream_id: "s1".into(),
                    extra_info: String::new(),
                }],
                reasons: vec![StreamDeleteReason {
                    stream_id: "s1".into(),
                    code: reason::HEARTBEAT_TIMEOUT
                }],
            }
        ]
    );
    assert!(matches!(
        &to(&out, c)[..],
        [ServerMessage::StreamUpdate { update_type: UpdateType::Delete, reasons, .. }]
            if reasons[0].code == reason::HEARTBEAT_TIMEOUT
    ));
    assert_eq!(
        closed_relays(&out),
        vec![player_relay],
        "the player's media ends; the relay already forgot the publisher's"
    );
    assert_eq!((w.reg.census().streams, w.reg.census().plays), (0, 0));
    assert!(w.reg.has_session(a), "its signaling session stays");

    // A lost player: its play ends, as when its media connection ends.
    w.publish(a, "s2");
    w.play(b, "s2");
    let out = w.reg.relay_lost(w.next_relay, w.now);
    assert_eq!(
        to(&out, b),
        vec![ServerMessage::PlayStopped {
            stream_id: "s2".into(),
            code: reason::DISCONNECTED
        }]
    );
    assert_eq!(w.reg.census().streams, 1);
}

mod cluster {
    //! Two registries as two nodes: what one outputs for the cluster is fed to the other.

    use super::*;
    use zego_protocol::cluster::RoomEvent;

    fn events(outputs: &[Output]) -> Vec<RoomEvent> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Cluster(event) => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    fn node() -> World {
        let mut w = World::new();
        w.reg.join_cluster();
        w
    }

    /// Feeds `outputs`' cluster events from node `from` to `to`, returning `to`'s outputs.
    fn deliver(outputs: &[Output], from: &str, to: &mut World) -> Vec<Output> {
        events(outputs)
            .into_iter()
            .flat_map(|event| to.reg.cluster_event(from, event))
            .collect()
    }

    #[test]
    fn a_single_server_says_nothing_to_a_cluster() {
        let mut w = World::new();
        let (anchor, outputs) = w.login("anchor", "r");
        assert!(events(&outputs).is_empty());
        assert!(events(&w.publish(anchor, "s")).is_empty());
    }

    #[test]
    fn users_streams_and_messages_of_another_node_reach_local_members() {
        let (mut a, mut b) = (node(), node());
        let (viewer, _) = b.login("viewer", "r");
        let (anchor, outputs) = a.login("anchor", "r");
        let seen = deliver(&outputs, "a", &mut b);
        assert!(
            matches!(&to(&seen, viewer)[..], [ServerMessage::UserUpdate { update_type: UpdateType::Add, users, .. }] if users == &[user("anchor")])
        );

        let seen = deliver(&a.publish(anchor, "s"), "a", &mut b);
        assert!(
            matches!(&to(&seen, viewer)[..], [ServerMessage::StreamUpdate { update_type: UpdateType::Add, streams, .. }] if streams[0].stream_id == "s")
        );
        // The same event again (a resync) changes nothing.
        let again = b.reg.cluster_event(
            "a",
            RoomEvent::StreamAdded {
                app_id: DEV_APP_ID,
                room_id: "r".into(),
                stream: zego_protocol::message::StreamInfo {
                    user: user("anchor"),
                    stream_id: "s".into(),
                    extra_info: String::new(),
                },
            },
        );
        assert!(to(&again, viewer).is_empty());

        // The viewer's play is of a stream on node a: the relay pulls it first.
        let prepared = b.reg.prepare_play(viewer, 3, "s", "offer", false, b.now);
        let grant = prepared.grant.expect("granted");
        assert_eq!(grant.origin.as_deref(), Some("a"));
        let outcome = b.relay_ok();
        b.reg.finish_play(grant, outcome);
        let key = StreamKey {
            app_id: DEV_APP_ID,
            stream_id: "s".into(),
        };
        assert_eq!(b.reg.players_of(&key), 1);
        assert_eq!(b.reg.remote_audiences(), [(key.clone(), "a".to_owned())]);

        // A second publisher of the id on b is refused there at once.
        let (intruder, _) = b.login("intruder", "r");
        let prepared = b.reg.prepare_publish(intruder, 9, "s", "", "offer", b.now);
        assert!(prepared.grant.is_none());
        assert_eq!(
            reply_code(&to(&prepared.outputs, intruder)[0]),
            error::PUBLISHER_STREAM_ID_ALREADY_PUBLISHED
        );

        // The anchor stops: the viewer's play ends and its relay session closes.
        let outputs = a.reg.stop_publish(anchor, 4, "s", a.now);
        let seen = deliver(&outputs, "a", &mut b);
        let msgs = to(&seen, viewer);
        assert!(msgs.iter().any(|m| matches!(m, ServerMessage::PlayStopped { stream_id, code } if stream_id == "s" && *code == reason::STOPPED)));
        assert!(msgs.iter().any(|m| matches!(
            m,
            ServerMessage::StreamUpdate {
                update_type: UpdateType::Delete,
                ..
            }
        )));
        assert_eq!(closed_relays(&seen).len(), 1, "the play's relay session");
        assert_eq!(b.reg.players_of(&key), 0);
        assert!(b.reg.origin_of(&key).is_none());
    }

    #[test]
    fn a_login_snapshot_holds_the_whole_cluster_s_room() {
        let (mut a, mut b) = (node(), node());
        let (anchor, outputs) = a.login("anchor", "r");
        deliver(&outputs, "a", &mut b);
        deliver(&a.publish(anchor, "s"), "a", &mut b);
        let (late, outputs) = b.login("late", "r");
        match World::login_reply(&outputs, late) {
            ReplyResult::Login {
                users,
                streams,
                online_count,
                ..
            } => {
                assert!(users.contains(&user("anchor")));
                assert!(users.contains(&user("late")));
                assert_eq!(streams.len(), 1);
                assert_eq!(online_count, 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_user_id_per_app_in_the_whole_cluster() {
        let (mut a, mut b) = (node(), node());
        let (first, _) = b.login("u", "r");
        let (_, outputs) = a.login("u", "r");
        let seen = deliver(&outputs, "a", &mut b);
        assert!(to(&seen, first).iter().any(|m| matches!(m, ServerMessage::Kicked { code, .. } if *code == error::ROOM_KICKED_OUT_SAME_USER)));
        assert!(!b.reg.has_session(first));
        // b tells the others its session left; a, where the user now is, keeps it.
        let left = deliver(&seen, "b", &mut a);
        assert!(left.is_empty());
        assert_eq!(a.reg.sessions.len(), 1);
    }

    #[test]
    fn a_node_that_goes_takes_its_users_and_streams_with_it() {
        let (mut a, mut b) = (node(), node());
        let (viewer, _) = b.login("viewer", "r");
        let (anchor, outputs) = a.login("anchor", "r");
        deliver(&outputs, "a", &mut b);
        deliver(&a.publish(anchor, "s"), "a", &mut b);
        let gone = b.reg.node_gone("a");
        let msgs = to(&gone, viewer);
        assert!(msgs.iter().any(|m| matches!(m, ServerMessage::StreamUpdate { update_type: UpdateType::Delete, reasons, .. } if reasons[0].code == reason::DISCONNECTED)));
        assert!(msgs.iter().any(|m| matches!(m, ServerMessage::UserUpdate { update_type: UpdateType::Delete, users, .. } if users == &[user("anchor")])));
        // What a node writes again after Redis came back is its own state only.
        let state = a.reg.cluster_state();
        assert_eq!(state.len(), 2, "{state:?}");
    }

    #[test]
    fn a_node_s_state_after_an_outage_removes_what_it_no_longer_has() {
        let (mut a, mut b) = (node(), node());
        let (viewer, _) = b.login("viewer", "r");
        let (_, outputs) = a.login("stays", "r");
        deliver(&outputs, "a", &mut b);
        let (_, outputs) = a.login("leaves", "r");
        deliver(&outputs, "a", &mut b);
        let users = [(DEV_APP_ID, "r".to_owned(), "stays".to_owned())].into();
        let seen = b.reg.node_state("a", &users, &BTreeSet::new());
        let msgs = to(&seen, viewer);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(
            matches!(&msgs[0], ServerMessage::UserUpdate { update_type: UpdateType::Delete, users, .. } if users == &[user("leaves")])
        );
        assert!(b.reg.node_state("a", &users, &BTreeSet::new()).is_empty());
    }
}
