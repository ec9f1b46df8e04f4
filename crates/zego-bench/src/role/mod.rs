//! The three processes of a run besides the bench itself. Each is this same binary started with `--role`, so
//! the CPU time the kernel counts for it is that role's alone.

pub mod player;
pub mod publisher;
pub mod server;

use std::sync::Arc;

use zego_express::config::{EngineProfile, RoomConfig, RoomState, Scenario};
use zego_express::event::{Event, EventSink};
use zego_express::Engine;
use zego_protocol::message::User;

use crate::cli::RoleArgs;
use crate::proto::{self, Report};

/// Creates an engine for the dev app on the bench's server, with `on_event` as its sink; room login progress
/// and engine errors are reported for every role.
fn create_engine(
    args: &RoleArgs,
    on_event: impl Fn(&Event) + Send + Sync + 'static,
) -> Result<Engine, String> {
    let sink: EventSink = Arc::new(move |event: &Event| {
        match event {
            Event::RoomStateUpdate {
                state: RoomState::Connected,
                ..
            } => proto::send(&Report::LoggedIn {
                at_us: proto::now_us(),
            }),
            Event::RoomStateUpdate {
                error_code,
                extended_data,
                ..
            } if *error_code != 0 => proto::send(&Report::Error {
                at_us: proto::now_us(),
                what: format!("room: {extended_data}"),
                code: *error_code,
            }),
            Event::DebugError {
                code,
                func_name,
                info,
            } => proto::send(&Report::Error {
                at_us: proto::now_us(),
                what: format!("{func_name}: {info}"),
                code: *code,
            }),
            _ => {}
        }
        on_event(event);
    });
    let profile = EngineProfile {
        app_id: zego_server::DEV_APP_ID,
        app_sign: zego_server::DEV_APP_SIGN.to_owned(),
        scenario: Scenario::Default,
        server: args.ws.clone(),
    };
    Engine::create(profile, sink).map_err(|code| format!("Engine::create failed with {code}"))
}

fn login(engine: &Engine, args: &RoleArgs, user_id: &str) -> Result<(), String> {
    let user = User {
        user_id: user_id.to_owned(),
        user_name: user_id.to_owned(),
    };
    engine
        .login_room(&args.room, user, RoomConfig::default())
        .map_err(|code| format!("login_room failed with {code}"))
}

/// Reports a failed API call and carries on: the parent decides whether the run can continue.
fn check(what: &str, result: Result<(), u32>) {
    if let Err(code) = result {
        proto::send(&Report::Error {
            at_us: proto::now_us(),
            what: what.to_owned(),
            code,
        });
    }
}
