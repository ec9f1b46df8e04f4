//! Publishing: preview, publish, per-channel configuration and sources, and custom capture frames. Functions
//! validate and return at once; the outcome of publishing arrives through `publisher_state_update`. Thread-safe
//! and callable from inside callbacks. `channel` is a `zego_publish_channel` value; any other value is 1000008.

use std::ffi::{c_char, c_int};

use zego_media::frame::{chroma_size, PixelFormat, VideoFrame, MAX_DIMENSION};
use zego_protocol::error;

use crate::config::{
    AudioConfig, AudioSourceType, PublishChannel, SeiType, VideoConfig, VideoFrameFormat,
    VideoSourceType,
};
use crate::ffi::handle::{self, zego_engine};
use crate::ffi::input::{self, ffi_code, Out};
use crate::ffi::types::{zego_audio_config, zego_video_config, zego_video_frame_param};

/// Starts capturing on `channel` so that `custom_video_render_captured_frame` receives frames (before or while
/// publishing).
///
/// Returns 0, or: 1000001 bad handle; 1000008 bad channel.
#[no_mangle]
pub extern "C" fn zego_start_preview(engine: zego_engine, channel: i32) -> c_int {
    ffi_code!("zego_start_preview", {
        handle::with_engine(engine, |engine| {
            engine.start_preview(PublishChannel::from_value(channel)?)
        })
    })
}

/// Stops the preview of `channel`; capture continues while the channel publishes.
///
/// Returns 0, or: 1000001 bad handle; 1000008 bad channel.
#[no_mangle]
pub extern "C" fn zego_stop_preview(engine: zego_engine, channel: i32) -> c_int {
    ffi_code!("zego_stop_preview", {
        handle::with_engine(engine, |engine| {
            engine.stop_preview(PublishChannel::from_value(channel)?)
        })
    })
}

/// Publishes `channel` as `stream_id` in the room the engine is logged in to. Progress: `publisher_state_update`
/// (PUBLISH_REQUESTING, then PUBLISHING, or NO_PUBLISH with e.g. 1003028 when another user publishes that
/// stream_id, 1003072 when the server refuses the credentials).
///
/// Returns 0, or: 1000001 bad handle; 1000015/1000016/1000014 stream_id NULL or empty / bad characters / longer
/// than 256 bytes; 1000008 bad channel; 1000002 not logged in; 1003023 the channel already publishes; 1003028
/// another channel of this engine already publishes that stream_id.
#[no_mangle]
pub extern "C" fn zego_start_publishing_stream(
    engine: zego_engine,
    stream_id: *const c_char,
    channel: i32,
) -> c_int {
    ffi_code!("zego_start_publishing_stream", {
        handle::with_engine(engine, |engine| {
            let stream_id = unsafe { input::stream_id(stream_id) }?;
            engine.start_publishing(stream_id, PublishChannel::from_value(channel)?)
        })
    })
}

/// Stops publishing `channel`.
///
/// Returns 0, or: 1000001 bad handle; 1000008 bad channel.
#[no_mangle]
pub extern "C" fn zego_stop_publishing_stream(engine: zego_engine, channel: i32) -> c_int {
    ffi_code!("zego_stop_publishing_stream", {
        handle::with_engine(engine, |engine| {
            engine.stop_publishing(PublishChannel::from_value(channel)?)
        })
    })
}

/// Sets the extra info of the stream `channel` publishes ("" clears it). The result arrives through
/// `publisher_update_stream_extra_info_result` with the sequence number written to `*out_seq` (which may be NULL).
///
/// Returns 0, or: 1000001 bad handle; 1003050 extra_info NULL; 1003051 longer than 1024 bytes; 1000008 not UTF-8
/// or bad channel.
#[no_mangle]
pub extern "C" fn zego_set_stream_extra_info(
    engine: zego_engine,
    extra_info: *const c_char,
    channel: i32,
    out_seq: *mut c_int,
) -> c_int {
    ffi_code!("zego_set_stream_extra_info", {
        handle::with_engine(engine, |engine| {
            let out_seq = if out_seq.is_null() {
                None
            } else {
                Some(unsafe { Out::new(out_seq) }?)
            };
            let extra_info = unsafe {
                input::text(
                    extra_info,
                    error::PUBLISHER_EXTRA_INFO_NULL,
                    error::COMMON_INVALID_PARAMETER,
                )
            }?;
            zego_protocol::validate::stream_extra_info(extra_info)?;
            let seq =
                engine.set_stream_extra_info(extra_info, PublishChannel::from_value(channel)?)?;
            if let Some(out) = out_seq {
                out.write(seq);
            }
            Ok(())
        })
    })
}

/// Stops (`mute` true) or resumes sending the audio of `channel`; the stream stays published.
///
/// Returns 0, or: 1000001 bad handle; 1000008 bad channel.
#[no_mangle]
pub extern "C" fn zego_mute_publish_stream_audio(
    engine: zego_engine,
    mute: bool,
    channel: i32,
) -> c_int {
    ffi_code!("zego_mute_publish_stream_audio", {
        handle::with_engine(engine, |engine| {
            engine.mute_publish_stream_audio(mute, PublishChannel::from_value(channel)?)
        })
    })
}

/// Stops (`mute` true) or resumes sending the video of `channel`; the stream stays published.
///
/// Returns 0, or: 1000001 bad handle; 1000008 bad channel.
#[no_mangle]
pub extern "C" fn zego_mute_publish_stream_video(
    engine: zego_engine,
    mute: bool,
    channel: i32,
) -> c_int {
    ffi_code!("zego_mute_publish_stream_video", {
        handle::with_engine(engine, |engine| {
            engine.mute_publish_stream_video(mute, PublishChannel::from_value(channel)?)
        })
    })
}

/// Sets the video configuration of `channel`; applies live while publishing. The default is 640x360 at 15 fps
/// and 600 kb/s with a keyframe every 2 s.
///
/// Returns 0, or: 1000001 bad handle; 1000008 `config` NULL, bad channel, or a value out of range (sizes even,
/// 16x16..3840x2160; fps 1..=60; bitrate 10..=20000 kb/s; keyframe interval 0..=60 s).
#[no_mangle]
pub extern "C" fn zego_set_video_config(
    engine: zego_engine,
    config: *const zego_video_config,
    channel: i32,
) -> c_int {
    ffi_code!("zego_set_video_config", {
        handle::with_engine(engine, |engine| {
            let c = unsafe { input::reference(config, error::COMMON_INVALID_PARAMETER) }?;
            let config = VideoConfig {
                capture_width: c.capture_width,
                capture_height: c.capture_height,
                encode_width: c.encode_width,
                encode_height: c.encode_height,
                fps: c.fps,
                bitrate_kbps: c.bitrate_kbps,
                keyframe_interval_s: c.keyframe_interval_s,
            };
            config.validate()?;
            engine.set_video_config(config, PublishChannel::from_value(channel)?)
        })
    })
}

/// Writes the video configuration of `channel` to `*config`.
///
/// Returns 0, or: 1000001 bad handle; 1000008 `config` NULL or bad channel.
#[no_mangle]
pub extern "C" fn zego_get_video_config(
    engine: zego_engine,
    channel: i32,
    config: *mut zego_video_config,
) -> c_int {
    ffi_code!("zego_get_video_config", {
        handle::with_engine(engine, |engine| {
            let out = unsafe { Out::new(config) }?;
            let c = engine.video_config(PublishChannel::from_value(channel)?);
            out.write(zego_video_config {
                capture_width: c.capture_width,
                capture_height: c.capture_height,
                encode_width: c.encode_width,
                encode_height: c.encode_height,
                fps: c.fps,
                bitrate_kbps: c.bitrate_kbps,
                keyframe_interval_s: c.keyframe_interval_s,
            });
            Ok(())
        })
    })
}

/// Sets the audio configuration of `channel` (default 48 kb/s mono Opus).
///
/// Returns 0, or: 1000001 bad handle; 1000008 `config` NULL, bad channel, bitrate outside 6..=510 kb/s or
/// channels other than 1 and 2.
#[no_mangle]
pub extern "C" fn zego_set_audio_config(
    engine: zego_engine,
    config: *const zego_audio_config,
    channel: i32,
) -> c_int {
    ffi_code!("zego_set_audio_config", {
        handle::with_engine(engine, |engine| {
            let c = unsafe { input::reference(config, error::COMMON_INVALID_PARAMETER) }?;
            let channels =
                u16::try_from(c.channels).map_err(|_| error::COMMON_INVALID_PARAMETER)?;
            let config = AudioConfig {
                bitrate_kbps: c.bitrate_kbps,
                channels,
            };
            config.validate()?;
            engine.set_audio_config(config, PublishChannel::from_value(channel)?)
        })
    })
}

/// Chooses where the video of `channel` comes from (`zego_video_source_type`; synthetic by default). With
/// CUSTOM, `custom_video_capture_start` / `_stop` say when to push frames with
/// `zego_send_custom_video_capture_frame`.
///
/// Returns 0, or: 1000001 bad handle; 1000008 bad source type or channel; 1000006 CAMERA in a build without
/// devices.
#[no_mangle]
pub extern "C" fn zego_set_video_source(
    engine: zego_engine,
    source_type: i32,
    channel: i32,
) -> c_int {
    ffi_code!("zego_set_video_source", {
        handle::with_engine(engine, |engine| {
            engine.set_video_source(
                VideoSourceType::from_value(source_type)?,
                PublishChannel::from_value(channel)?,
            )
        })
    })
}

/// Chooses where the audio of `channel` comes from (`zego_audio_source_type`; synthetic by default).
///
/// Returns 0, or: 1000001 bad handle; 1000008 bad source type or channel; 1000006 MICROPHONE in a build without
/// devices.
#[no_mangle]
pub extern "C" fn zego_set_audio_source(
    engine: zego_engine,
    source_type: i32,
    channel: i32,
) -> c_int {
    ffi_code!("zego_set_audio_source", {
        handle::with_engine(engine, |engine| {
            engine.set_audio_source(
                AudioSourceType::from_value(source_type)?,
                PublishChannel::from_value(channel)?,
            )
        })
    })
}

/// Pushes one frame into `channel`, whose video source must be CUSTOM. The `data_length` bytes at `data` hold the
/// planes back to back as `param` describes them: I420 (Y, U, V), NV12 (Y, UV), BGRA32 or RGBA32, with
/// `param->strides` bytes per row (0 = tightly packed), so `data_length` must be at least the sum of
/// stride x rows over the planes. The data is copied before this returns. `param->capture_time_us` (0 = now) and
/// `param->frame_number` (0 = numbered by the SDK) describe the frame in the captured-frame callback. Frames pushed
/// while the channel does not capture (before `custom_video_capture_start`) are dropped.
///
/// Returns 0, or: 1000001 bad handle; 1000008 `data` or `param` NULL, a size of 0 or above 4096, a stride smaller
/// than a row, `data_length` too short, or bad channel; 1000006 a pixel format other than the four above, or the
/// channel's source is not CUSTOM.
#[no_mangle]
pub extern "C" fn zego_send_custom_video_capture_frame(
    engine: zego_engine,
    data: *const u8,
    data_length: usize,
    param: *const zego_video_frame_param,
    channel: i32,
) -> c_int {
    ffi_code!("zego_send_custom_video_capture_frame", {
        handle::with_engine(engine, |engine| {
            let param = unsafe { input::reference(param, error::COMMON_INVALID_PARAMETER) }?;
            if data.is_null() {
                return Err(error::COMMON_INVALID_PARAMETER);
            }
            let data = unsafe { input::slice(data, data_length, error::COMMON_INVALID_PARAMETER) }?;
            let channel = PublishChannel::from_value(channel)?;
            engine.send_custom_video_capture_frame(custom_frame(data, param)?, channel)
        })
    })
}

/// Sets how `zego_send_sei` writes data into the video, for every channel: `sei_type` is a `zego_sei_type` value
/// (ZEGO's payload type 243 by default; user-unregistered data must begin with a 16-byte UUID).
///
/// Returns 0, or: 1000001 bad handle; 1000008 bad type.
#[no_mangle]
pub extern "C" fn zego_set_sei_config(engine: zego_engine, sei_type: i32) -> c_int {
    ffi_code!("zego_set_sei_config", {
        handle::with_engine(engine, |engine| {
            engine.set_sei_config(SeiType::from_value(sei_type)?);
            Ok(())
        })
    })
}

/// Sends `data_length` bytes of app data (copied before this returns) with the next video frame of the stream
/// `channel` publishes, as an H.264 SEI message: players receive it through `player_recv_sei` just before that
/// frame's render callback. At most 30 messages a second; while the video is muted they wait for the next frame
/// (the latest 30).
///
/// Returns 0, or: 1000001 bad handle; 1003043 `data` NULL or empty; 1003044 longer than 4096 bytes; 1000008 bad
/// channel, or user-unregistered data shorter than 16 bytes; 1003001 the channel does not publish; 1003045 more
/// than 30 messages in a second.
#[no_mangle]
pub extern "C" fn zego_send_sei(
    engine: zego_engine,
    data: *const u8,
    data_length: usize,
    channel: i32,
) -> c_int {
    ffi_code!("zego_send_sei", {
        handle::with_engine(engine, |engine| {
            if data.is_null() {
                return Err(error::PUBLISHER_SEI_DATA_NULL);
            }
            // Checked before the bytes are touched: a wrong length must not read past the app's buffer.
            if data_length > zego_rtp::sei::MAX_DATA {
                return Err(error::PUBLISHER_SEI_DATA_TOO_LONG);
            }
            let data = unsafe { input::slice(data, data_length, error::PUBLISHER_SEI_DATA_NULL) }?;
            engine.send_sei(data, PublishChannel::from_value(channel)?)
        })
    })
}

/// Checks `data` against `param` and copies it into an I420 frame.
pub(crate) fn custom_frame(
    data: &[u8],
    param: &zego_video_frame_param,
) -> input::Result<VideoFrame> {
    let format = match PixelFormat::from_zego_value(param.format) {
        Some(format) => format,
        None => {
            VideoFrameFormat::from_value(param.format)?;
            return Err(error::COMMON_UNSUPPORTED);
        }
    };
    let (width, height) = (param.width, param.height);
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(error::COMMON_INVALID_PARAMETER);
    }
    let (chroma_width, chroma_height) = chroma_size(width, height);
    // (bytes of one row, rows) per plane.
    let planes: &[(u32, u32)] = match format {
        PixelFormat::I420 => &[
            (width, height),
            (chroma_width, chroma_height),
            (chroma_width, chroma_height),
        ],
        PixelFormat::Nv12 => &[(width, height), (chroma_width * 2, chroma_height)],
        PixelFormat::Rgba32 | PixelFormat::Bgra32 => &[(width * 4, height)],
    };
    let mut strides = [0u32; 3];
    let mut needed = 0u64;
    for (i, &(row, rows)) in planes.iter().enumerate() {
        let stride = if param.strides[i] == 0 {
            row
        } else {
            param.strides[i]
        };
        if stride < row {
            return Err(error::COMMON_INVALID_PARAMETER);
        }
        strides[i] = stride;
        needed += u64::from(stride) * u64::from(rows);
    }
    if (data.len() as u64) < needed {
        return Err(error::COMMON_INVALID_PARAMETER);
    }
    let mut frame =
        VideoFrame::from_buffer(format, width, height, &data[..needed as usize], strides)
            .map_err(|_| error::COMMON_INVALID_PARAMETER)?;
    frame.capture_time_us = if param.capture_time_us == 0 {
        unix_micros()
    } else {
        param.capture_time_us
    };
    frame.frame_number = param.frame_number;
    Ok(frame)
}

fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::enums::zego_video_frame_format::*;

    fn param(format: i32, width: u32, height: u32, strides: [u32; 4]) -> zego_video_frame_param {
        zego_video_frame_param {
            format,
            strides,
            width,
            height,
            capture_time_us: 5,
            frame_number: 9,
        }
    }

    #[test]
    fn custom_frames_are_checked_against_their_description() {
        let i420 = ZEGO_VIDEO_FRAME_FORMAT_I420 as i32;
        // 4x2 I420 tightly packed: 8 + 2 + 2 bytes.
        let frame = custom_frame(&[16; 12], &param(i420, 4, 2, [0; 4])).unwrap();
        assert_eq!(
            (
                frame.width,
                frame.height,
                frame.capture_time_us,
                frame.frame_number
            ),
            (4, 2, 5, 9)
        );
        assert_eq!(
            custom_frame(&[16; 11], &param(i420, 4, 2, [0; 4])),
            Err(error::COMMON_INVALID_PARAMETER)
        );
        // Padded strides need the padding in the buffer too.
        assert!(custom_frame(&[16; 24], &param(i420, 4, 2, [8, 4, 4, 0])).is_ok());
        assert_eq!(
            custom_frame(&[16; 23], &param(i420, 4, 2, [8, 4, 4, 0])),
            Err(error::COMMON_INVALID_PARAMETER)
        );
        assert_eq!(
            custom_frame(&[16; 64], &param(i420, 4, 2, [3, 2, 2, 0])),
            Err(error::COMMON_INVALID_PARAMETER)
        );

        let rgba = ZEGO_VIDEO_FRAME_FORMAT_RGBA32 as i32;
        assert!(custom_frame(&[0; 32], &param(rgba, 4, 2, [16, 0, 0, 0])).is_ok());
        assert_eq!(
            custom_frame(&[0; 31], &param(rgba, 4, 2, [0; 4])),
            Err(error::COMMON_INVALID_PARAMETER)
        );
        let nv12 = ZEGO_VIDEO_FRAME_FORMAT_NV12 as i32;
        assert!(custom_frame(&[16; 12], &param(nv12, 4, 2, [0; 4])).is_ok());

        assert_eq!(
            custom_frame(&[0; 64], &param(rgba, 0, 2, [0; 4])),
            Err(error::COMMON_INVALID_PARAMETER)
        );
        assert_eq!(
            custom_frame(&[0; 64], &param(rgba, 5000, 1, [0; 4])),
            Err(error::COMMON_INVALID_PARAMETER)
        );
        assert_eq!(
            custom_frame(
                &[0; 64],
                &param(ZEGO_VIDEO_FRAME_FORMAT_NV21 as i32, 4, 2, [0; 4])
            ),
            Err(error::COMMON_UNSUPPORTED)
        );
        assert_eq!(
            custom_frame(&[0; 64], &param(77, 4, 2, [0; 4])),
            Err(error::COMMON_INVALID_PARAMETER)
        );
    }

    #[test]
    fn zero_capture_time_means_now() {
        let mut p = param(ZEGO_VIDEO_FRAME_FORMAT_I420 as i32, 4, 2, [0; 4]);
        p.capture_time_us = 0;
        let frame = custom_frame(&[16; 12], &p).unwrap();
        assert!(frame.capture_time_us.abs_diff(unix_micros()) < 10_000_000);
    }
}
