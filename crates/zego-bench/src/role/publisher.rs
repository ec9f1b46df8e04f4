//! The publishing process: the synthetic camera and microphone, encoded and sent at the scenario's settings.

use zego_express::config::{PublishChannel, VideoConfig};
use zego_express::event::Event;

use super::{check, create_engine, login};
use crate::cli::RoleArgs;
use crate::cpu::round1;
use crate::proto::{self, round3, Command, PublishQualityReport, Report};

pub fn run(args: &RoleArgs) -> Result<(), String> {
    let stream_id = args.stream.clone();
    let engine = create_engine(args, move |event| match event {
        Event::PublisherStateUpdate {
            stream_id: id,
            state,
            error_code,
            ..
        } if *id == stream_id => proto::send(&Report::PublisherState {
            at_us: proto::now_us(),
            state: state.value(),
            error_code: *error_code,
        }),
        Event::PublisherQualityUpdate {
            stream_id: id,
            quality,
        } if *id == stream_id => proto::send(&Report::PublisherQuality {
            at_us: proto::now_us(),
            quality: PublishQualityReport {
                video_capture_fps: round1(quality.video_capture_fps),
                video_encode_fps: round1(quality.video_encode_fps),
                video_send_fps: round1(quality.video_send_fps),
                video_kbps: round1(quality.video_kbps),
                audio_kbps: round1(quality.audio_kbps),
                rtt_ms: quality.rtt_ms,
                packet_lost_rate: round3(quality.packet_lost_rate),
                target_bitrate_kbps: round1(quality.target_bitrate_kbps),
                level: quality.level,
            },
        }),
        _ => {}
    })?;

    let config = VideoConfig {
        capture_width: args.width,
        capture_height: args.height,
        encode_width: args.width,
        encode_height: args.height,
        fps: args.fps,
        bitrate_kbps: args.bitrate_kbps,
        ..VideoConfig::default()
    };
    if let Err(code) = engine.set_video_config(config, PublishChannel::Main) {
        engine.destroy();
        return Err(format!("set_video_config({config:?}) failed with {code}"));
    }
    if let Err(e) = login(&engine, args, "bench-publisher") {
        engine.destroy();
        return Err(e);
    }

    for command in proto::commands() {
        match command {
            Command::Publish => match engine.start_publishing(&args.stream, PublishChannel::Main) {
                Ok(()) => proto::send(&Report::PublishCalled {
                    at_us: proto::now_us(),
                }),
                Err(code) => check("start_publishing", Err(code)),
            },
            Command::Unpublish => check(
                "stop_publishing",
                engine.stop_publishing(PublishChannel::Main),
            ),
            Command::Quit => break,
            other => tracing::warn!(?other, "not a publisher command"),
        }
    }
    check("logout_room", engine.logout_room(None));
    engine.destroy();
    proto::send(&Report::Done);
    Ok(())
}
