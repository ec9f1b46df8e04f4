//! The per-engine callback registry, and the delivery of [`Event`]s to the app's C callbacks on the callback
//! thread: Rust values become C arguments that live exactly as long as the call.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use zego_media::frame::{PixelFormat, VideoFrame};
use zego_protocol::error::ErrorCode;
use zego_protocol::message::{BroadcastMessage, RoomExtraInfo, StreamInfo, User};

use crate::event::{AudioFrame, Event, EventSink, PlayQuality, PublishQuality};
use crate::ffi::callbacks::*;
use crate::ffi::types::{
    zego_audio_frame_param, zego_broadcast_message_info, zego_play_stream_quality,
    zego_publish_stream_quality, zego_room_extra_info, zego_stream, zego_user,
    zego_video_frame_param,
};

/// The app's `void *user_context`, handed back on the callback thread. The app promised it may be used there.
#[derive(Clone, Copy)]
pub(crate) struct UserContext(pub(crate) *mut c_void);

// Safety: the SDK never dereferences it; it only passes it back to the app's callback, per the registration contract.
unsafe impl Send for UserContext {}
unsafe impl Sync for UserContext {}

/// One registered callback with its context. `F` is one of the `Option<fn>` types above.
#[derive(Clone, Copy)]
pub(crate) struct Slot<F> {
    pub(crate) callback: F,
    pub(crate) context: UserContext,
}

impl<F: Default> Default for Slot<F> {
    fn default() -> Self {
        Slot {
            callback: F::default(),
            context: UserContext(std::ptr::null_mut()),
        }
    }
}

macro_rules! callback_table {
    ($($name:ident: $ty:ty),* $(,)?) => {
        /// The callbacks an app registered on one engine.
        #[derive(Default)]
        pub(crate) struct CallbackTable { $(pub(crate) $name: Slot<$ty>,)* }
    };
}

callback_table! {
    debug_error: zego_func_debug_error,
    engine_state_update: zego_func_engine_state_update,
    room_state_update: zego_func_room_state_update,
    room_state_changed: zego_func_room_state_changed,
    room_user_update: zego_func_room_user_update,
    room_online_user_count_update: zego_func_room_online_user_count_update,
    room_stream_update: zego_func_room_stream_update,
    room_stream_extra_info_update: zego_func_room_stream_extra_info_update,
    room_extra_info_update: zego_func_room_extra_info_update,
    room_token_will_expire: zego_func_room_token_will_expire,
    room_set_room_extra_info_result: zego_func_room_set_room_extra_info_result,
    publisher_state_update: zego_func_publisher_state_update,
    publisher_quality_update: zego_func_publisher_quality_update,
    publisher_captured_video_first_frame: zego_func_publisher_captured_video_first_frame,
    publisher_update_stream_extra_info_result: zego_func_publisher_update_stream_extra_info_result,
    player_state_update: zego_func_player_state_update,
    player_quality_update: zego_func_player_quality_update,
    player_recv_video_first_frame: zego_func_player_recv_video_first_frame,
    player_recv_audio_first_frame: zego_func_player_recv_audio_first_frame,
    player_render_video_first_frame: zego_func_player_render_video_first_frame,
    player_recv_sei: zego_func_player_recv_sei,
    player_video_size_changed: zego_func_player_video_size_changed,
    im_recv_broadcast_message: zego_func_im_recv_broadcast_message,
    im_recv_custom_command: zego_func_im_recv_custom_command,
    im_send_broadcast_message_result: zego_func_im_send_broadcast_message_result,
    im_send_custom_command_result: zego_func_im_send_custom_command_result,
    custom_video_capture_start: zego_func_custom_video_capture_start,
    custom_video_capture_stop: zego_func_custom_video_capture_stop,
    custom_video_render_remote_frame: zego_func_custom_video_render_remote_frame,
    custom_video_render_captured_frame: zego_func_custom_video_render_captured_frame,
    player_audio_data: zego_func_player_audio_data,
}

/// Per-engine callbacks plus the render formats they deliver frames in.
pub(crate) struct CallbackRegistry {
    table: Mutex<CallbackTable>,
    /// Set once the engine is destroyed: events still queued then are dropped, so no callback runs after
    /// `zego_engine_destroy` returned.
    closed: AtomicBool,
    remote_render_format: AtomicI32,
    captured_render_format: AtomicI32,
}

impl CallbackRegistry {
    pub(crate) fn new() -> Arc<CallbackRegistry> {
        Arc::new(CallbackRegistry {
            table: Mutex::new(CallbackTable::default()),
            closed: AtomicBool::new(false),
            remote_render_format: AtomicI32::new(PixelFormat::I420.zego_value()),
            captured_render_format: AtomicI32::new(PixelFormat::I420.zego_value()),
        })
    }

    /// The sink the engine delivers events to.
    pub(crate) fn sink(self: &Arc<Self>) -> EventSink {
        let registry = self.clone();
        Arc::new(move |event: &Event| registry.deliver(event))
    }

    /// Replaces one slot (a NULL callback unregisters).
    pub(crate) fn set<F>(
        &self,
        pick: impl FnOnce(&mut CallbackTable) -> &mut Slot<F>,
        slot: Slot<F>,
    ) {
        *pick(&mut self.table.lock()) = slot;
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub(crate) fn set_remote_render_format(&self, format: PixelFormat) {
        self.remote_render_format
            .store(format.zego_value(), Ordering::Relaxed);
    }

    pub(crate) fn set_captured_render_format(&self, format: PixelFormat) {
        self.captured_render_format
            .store(format.zego_value(), Ordering::Relaxed);
    }

    /// Runs `call` with the callback in the slot `pick` selects, if one is registered. The slot is copied out
    /// under the lock and the callback runs with no lock held, so it may register callbacks itself.
    fn call<G: Copy>(
        &self,
        pick: impl FnOnce(&CallbackTable) -> &Slot<Option<G>>,
        call: impl FnOnce(G, *mut c_void),
    ) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let slot = *pick(&self.table.lock());
        if let Some(callback) = slot.callback {
            call(callback, slot.context.0);
        }
    }

    /// Calls the app's callback for one event, if it registered one. Runs on the callback thread. The C
    /// arguments are built only when a callback is registered.
    fn deliver(&self, event: &Event) {
        let mut keep = Strings::default();
        match event {
            Event::DebugError {
                code,
                func_name,
                info,
            } => self.call(
                |t| &t.debug_error,
                |cb, cx| unsafe { cb(code_arg(*code), keep.c(func_name), keep.c(info), cx) },
            ),
            Event::EngineStateUpdate { state } => self.call(
                |t| &t.engine_state_update,
                |cb, cx| unsafe { cb(state.value(), cx) },
            ),
            Event::RoomStateUpdate {
                room_id,
                state,
                error_code,
                extended_data,
            } => self.call(
                |t| &t.room_state_update,
                |cb, cx| unsafe {
                    cb(
                        keep.c(room_id),
                        state.value(),
                        code_arg(*error_code),
                        keep.c(extended_data),
                        cx,
                    )
                },
            ),
            Event::RoomStateChanged {
                room_id,
                reason,
                error_code,
                extended_data,
            } => self.call(
                |t| &t.room_state_changed,
                |cb, cx| unsafe {
                    cb(
                        keep.c(room_id),
                        reason.value(),
                        code_arg(*error_code),
                        keep.c(extended_data),
                        cx,
                    )
                },
            ),
            Event::RoomUserUpdate {
                room_id,
                update_type,
                users,
            } => self.call(
                |t| &t.room_user_update,
                |cb, cx| {
                    let list: Vec<zego_user> = users.iter().map(|u| keep.user(u)).collect();
                    unsafe {
                        cb(
                            keep.c(room_id),
                            update_type.zego_value(),
                            list.as_ptr(),
                            count(&list),
                            cx,
                        )
                    }
                },
            ),
            Event::RoomOnlineUserCountUpdate { room_id, count } => self.call(
                |t| &t.room_online_user_count_update,
                |cb, cx| unsafe { cb(keep.c(room_id), *count, cx) },
            ),
            Event::RoomStreamUpdate {
                room_id,
                update_type,
                streams,
                extended_data,
            } => self.call(
                |t| &t.room_stream_update,
                |cb, cx| {
                    let list: Vec<zego_stream> = streams.iter().map(|s| keep.stream(s)).collect();
                    let (room_id, extended_data) = (keep.c(room_id), keep.c(extended_data));
                    unsafe {
                        cb(
                            room_id,
                            update_type.zego_value(),
                            list.as_ptr(),
                            count(&list),
                            extended_data,
                            cx,
                        )
                    }
                },
            ),
            Event::RoomStreamExtraInfoUpdate { room_id, streams } => self.call(
                |t| &t.room_stream_extra_info_update,
                |cb, cx| {
                    let list: Vec<zego_stream> = streams.iter().map(|s| keep.stream(s)).collect();
                    unsafe { cb(keep.c(room_id), list.as_ptr(), count(&list), cx) }
                },
            ),
            Event::RoomExtraInfoUpdate { room_id, infos } => self.call(
                |t| &t.room_extra_info_update,
                |cb, cx| {
                    let list: Vec<zego_room_extra_info> =
                        infos.iter().map(|i| keep.room_extra_info(i)).collect();
                    unsafe { cb(keep.c(room_id), list.as_ptr(), count(&list), cx) }
                },
            ),
            Event::RoomTokenWillExpire {
                room_id,
                remain_seconds,
            } => self.call(
                |t| &t.room_token_will_expire,
                |cb, cx| unsafe { cb(keep.c(room_id), *remain_seconds, cx) },
            ),
            Event::RoomSetRoomExtraInfoResult {
                error_code,
                room_id,
                key,
                seq,
            } => self.call(
                |t| &t.room_set_room_extra_info_result,
                |cb, cx| unsafe {
                    cb(
                        code_arg(*error_code),
                        keep.c(room_id),
                        keep.c(key),
                        *seq,
                        cx,
                    )
                },
            ),
            Event::PublisherStateUpdate {
                stream_id,
                state,
                error_code,
                extended_data,
            } => self.call(
                |t| &t.publisher_state_update,
                |cb, cx| unsafe {
                    cb(
                        keep.c(stream_id),
                        state.value(),
                        code_arg(*error_code),
                        keep.c(extended_data),
                        cx,
                    )
                },
            ),
            Event::PublisherQualityUpdate { stream_id, quality } => self.call(
                |t| &t.publisher_quality_update,
                |cb, cx| unsafe { cb(keep.c(stream_id), &publish_quality(quality), cx) },
            ),
            Event::PublisherCapturedVideoFirstFrame { channel } => self.call(
                |t| &t.publisher_captured_video_first_frame,
                |cb, cx| unsafe { cb(channel.value(), cx) },
            ),
            Event::PublisherUpdateStreamExtraInfoResult { error_code, seq } => self.call(
                |t| &t.publisher_update_stream_extra_info_result,
                |cb, cx| unsafe { cb(code_arg(*error_code), *seq, cx) },
            ),
            Event::PlayerStateUpdate {
                stream_id,
                state,
                error_code,
                extended_data,
            } => self.call(
                |t| &t.player_state_update,
                |cb, cx| unsafe {
                    cb(
                        keep.c(stream_id),
                        state.value(),
                        code_arg(*error_code),
                        keep.c(extended_data),
                        cx,
                    )
                },
            ),
            Event::PlayerQualityUpdate { stream_id, quality } => self.call(
                |t| &t.player_quality_update,
                |cb, cx| unsafe { cb(keep.c(stream_id), &play_quality(quality), cx) },
            ),
            Event::PlayerRecvVideoFirstFrame { stream_id } => self.call(
                |t| &t.player_recv_video_first_frame,
                |cb, cx| unsafe { cb(keep.c(stream_id), cx) },
            ),
            Event::PlayerRecvAudioFirstFrame { stream_id } => self.call(
                |t| &t.player_recv_audio_first_frame,
                |cb, cx| unsafe { cb(keep.c(stream_id), cx) },
            ),
            Event::PlayerRecvSei { stream_id, data } => self.call(
                |t| &t.player_recv_sei,
                |cb, cx| unsafe { cb(keep.c(stream_id), data.as_ptr(), data.len() as u32, cx) },
            ),
            Event::PlayerRenderVideoFirstFrame { stream_id } => self.call(
                |t| &t.player_render_video_first_frame,
                |cb, cx| unsafe { cb(keep.c(stream_id), cx) },
            ),
            Event::PlayerVideoSizeChanged {
                stream_id,
                width,
                height,
            } => self.call(
                |t| &t.player_video_size_changed,
                |cb, cx| unsafe { cb(keep.c(stream_id), *width, *height, cx) },
            ),
            Event::ImRecvBroadcastMessage { room_id, messages } => self.call(
                |t| &t.im_recv_broadcast_message,
                |cb, cx| {
                    let list: Vec<zego_broadcast_message_info> =
                        messages.iter().map(|m| keep.message(m)).collect();
                    unsafe { cb(keep.c(room_id), list.as_ptr(), count(&list), cx) }
                },
            ),
            Event::ImRecvCustomCommand {
                room_id,
                from_user,
                command,
            } => self.call(
                |t| &t.im_recv_custom_command,
                |cb, cx| {
                    let from_user = keep.user(from_user);
                    unsafe { cb(keep.c(room_id), &from_user, keep.c(command), cx) }
                },
            ),
            Event::ImSendBroadcastMessageResult {
                room_id,
                error_code,
                message_id,
                seq,
            } => self.call(
                |t| &t.im_send_broadcast_message_result,
                |cb, cx| unsafe {
                    cb(
                        keep.c(room_id),
                        *message_id,
                        code_arg(*error_code),
                        *seq,
                        cx,
                    )
                },
            ),
            Event::ImSendCustomCommandResult {
                room_id,
                error_code,
                seq,
            } => self.call(
                |t| &t.im_send_custom_command_result,
                |cb, cx| unsafe { cb(keep.c(room_id), code_arg(*error_code), *seq, cx) },
            ),
            Event::CustomVideoCaptureStart { channel } => self.call(
                |t| &t.custom_video_capture_start,
                |cb, cx| unsafe { cb(channel.value(), cx) },
            ),
            Event::CustomVideoCaptureStop { channel } => self.call(
                |t| &t.custom_video_capture_stop,
                |cb, cx| unsafe { cb(channel.value(), cx) },
            ),
            Event::RemoteVideoFrame { stream_id, frame } => self.call(
                |t| &t.custom_video_render_remote_frame,
                |cb, cx| {
                    let planes =
                        Planes::new(frame, self.remote_render_format.load(Ordering::Relaxed));
                    unsafe {
                        cb(
                            keep.c(stream_id),
                            planes.data.as_ptr(),
                            planes.lengths.as_ptr(),
                            &planes.param,
                            cx,
                        )
                    }
                },
            ),
            Event::CapturedVideoFrame { channel, frame } => self.call(
                |t| &t.custom_video_render_captured_frame,
                |cb, cx| {
                    let planes =
                        Planes::new(frame, self.captured_render_format.load(Ordering::Relaxed));
                    unsafe {
                        cb(
                            planes.data.as_ptr(),
                            planes.lengths.as_ptr(),
                            &planes.param,
                            channel.value(),
                            cx,
                        )
                    }
                },
            ),
            Event::RemoteAudioFrame { stream_id, frame } => self.call(
                |t| &t.player_audio_data,
                |cb, cx| {
                    let AudioFrame {
                        samples,
                        sample_rate,
                        channels,
                        ..
                    } = &**frame;
                    let param = zego_audio_frame_param {
                        sample_rate: *sample_rate,
                        channels: u32::from(*channels),
                    };
                    unsafe {
                        cb(
                            keep.c(stream_id),
                            samples.as_ptr(),
                            count(samples),
                            &param,
                            cx,
                        )
                    }
                },
            ),
        }
    }
}

/// Codes fit an `int` (they are below 2^31).
fn code_arg(code: ErrorCode) -> c_int {
    code as c_int
}

fn count<T>(list: &[T]) -> u32 {
    u32::try_from(list.len()).unwrap_or(u32::MAX)
}

/// Owns the C strings handed to one callback until it returns. Moving a `CString` into the vector does not move
/// its bytes, so the pointers stay valid.
#[derive(Default)]
struct Strings(Vec<CString>);

impl Strings {
    /// A C copy of `text`, cut at an interior NUL (C could not see past it anyway).
    fn c(&mut self, text: &str) -> *const c_char {
        let end = text.find('\0').unwrap_or(text.len());
        let owned = CString::new(&text[..end]).unwrap_or_default();
        let ptr = owned.as_ptr();
        self.0.push(owned);
        ptr
    }

    fn user(&mut self, user: &User) -> zego_user {
        zego_user {
            user_id: self.c(&user.user_id),
            user_name: self.c(&user.user_name),
        }
    }

    fn stream(&mut self, stream: &StreamInfo) -> zego_stream {
        zego_stream {
            user: self.user(&stream.user),
            stream_id: self.c(&stream.stream_id),
            extra_info: self.c(&stream.extra_info),
        }
    }

    fn room_extra_info(&mut self, info: &RoomExtraInfo) -> zego_room_extra_info {
        zego_room_extra_info {
            key: self.c(&info.key),
            value: self.c(&info.value),
            update_user: self.user(&info.update_user),
            update_time: info.update_time_ms,
        }
    }

    fn message(&mut self, message: &BroadcastMessage) -> zego_broadcast_message_info {
        zego_broadcast_message_info {
            message: self.c(&message.message),
            message_id: message.message_id,
            send_time: message.send_time_ms,
            from_user: self.user(&message.from_user),
        }
    }
}

fn publish_quality(q: &PublishQuality) -> zego_publish_stream_quality {
    zego_publish_stream_quality {
        video_capture_fps: q.video_capture_fps,
        video_encode_fps: q.video_encode_fps,
        video_send_fps: q.video_send_fps,
        video_kbps: q.video_kbps,
        audio_capture_fps: q.audio_capture_fps,
        audio_send_fps: q.audio_send_fps,
        audio_kbps: q.audio_kbps,
        rtt: q.rtt_ms,
        packet_lost_rate: q.packet_lost_rate,
        level: q.level,
        total_send_bytes: q.total_send_bytes,
        target_bitrate_kbps: q.target_bitrate_kbps,
    }
}

fn play_quality(q: &PlayQuality) -> zego_play_stream_quality {
    zego_play_stream_quality {
        video_recv_fps: q.video_recv_fps,
        video_decode_fps: q.video_decode_fps,
        video_render_fps: q.video_render_fps,
        video_kbps: q.video_kbps,
        video_break_rate: q.video_break_rate,
        audio_recv_fps: q.audio_recv_fps,
        audio_kbps: q.audio_kbps,
        rtt: q.rtt_ms,
        packet_lost_rate: q.packet_lost_rate,
        delay: q.delay_ms,
        level: q.level,
        total_recv_bytes: q.total_recv_bytes,
    }
}

/// A frame laid out for a render callback: I420 planes borrowed from the frame, or a converted buffer.
pub(crate) struct Planes<'a> {
    _converted: Option<Vec<u8>>,
    pub(crate) data: [*const u8; 4],
    pub(crate) lengths: [u32; 4],
    pub(crate) param: zego_video_frame_param,
    _frame: std::marker::PhantomData<&'a VideoFrame>,
}

impl<'a> Planes<'a> {
    /// `format` is a `zego_video_frame_format` value the registry accepted (I420, NV12, BGRA32 or RGBA32).
    pub(crate) fn new(frame: &'a VideoFrame, format: i32) -> Planes<'a> {
        let len = |v: &[u8]| u32::try_from(v.len()).unwrap_or(u32::MAX);
        let mut param = zego_video_frame_param {
            format,
            strides: [0; 4],
            width: frame.width,
            height: frame.height,
            capture_time_us: frame.capture_time_us,
            frame_number: frame.frame_number,
        };
        let null = std::ptr::null();
        match PixelFormat::from_zego_value(format) {
            Some(PixelFormat::Nv12) => {
                let buffer = frame.to_nv12();
                let luma = frame.width as usize * frame.height as usize;
                let (cw, _) = frame.chroma_size();
                param.strides = [frame.width, cw * 2, 0, 0];
                let data = [buffer.as_ptr(), buffer[luma..].as_ptr(), null, null];
                let lengths = [luma as u32, (buffer.len() - luma) as u32, 0, 0];
                Planes {
                    _converted: Some(buffer),
                    data,
                    lengths,
                    param,
                    _frame: std::marker::PhantomData,
                }
            }
            Some(packed @ (PixelFormat::Rgba32 | PixelFormat::Bgra32)) => {
                let buffer = if packed == PixelFormat::Rgba32 {
                    frame.to_rgba()
                } else {
                    frame.to_bgra()
                };
                param.strides = [frame.width * 4, 0, 0, 0];
                let data = [buffer.as_ptr(), null, null, null];
                let lengths = [len(&buffer), 0, 0, 0];
                Planes {
                    _converted: Some(buffer),
                    data,
                    lengths,
                    param,
                    _frame: std::marker::PhantomData,
                }
            }
            Some(PixelFormat::I420) | None => {
                param.format = PixelFormat::I420.zego_value();
                param.strides = [frame.stride_y, frame.stride_u, frame.stride_v, 0];
                let data = [frame.y.as_ptr(), frame.u.as_ptr(), frame.v.as_ptr(), null];
                let lengths = [len(&frame.y), len(&frame.u), len(&frame.v), 0];
                Planes {
                    _converted: None,
                    data,
                    lengths,
                    param,
                    _frame: std::marker::PhantomData,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_planes_describe_the_frame_in_each_format() {
        let mut frame = VideoFrame::new_black(6, 4);
        frame.capture_time_us = 1_700_000_000_000_000;
        frame.frame_number = 42;

        let i420 = Planes::new(&frame, PixelFormat::I420.zego_value());
        assert_eq!(i420.param.strides, [6, 3, 3, 0]);
        assert_eq!(i420.lengths, [24, 6, 6, 0]);
        assert_eq!(
            (i420.param.capture_time_us, i420.param.frame_number),
            (1_700_000_000_000_000, 42)
        );

        let nv12 = Planes::new(&frame, PixelFormat::Nv12.zego_value());
        assert_eq!(nv12.param.strides, [6, 6, 0, 0]);
        assert_eq!(nv12.lengths, [24, 12, 0, 0]);
        assert!(nv12.data[2].is_null());

        let rgba = Planes::new(&frame, PixelFormat::Rgba32.zego_value());
        assert_eq!(
            (rgba.param.format, rgba.param.strides[0], rgba.lengths[0]),
            (5, 24, 96)
        );
        // Black in BT.601 limited range is RGB 0,0,0 with opaque alpha.
        let pixel = unsafe { std::slice::from_raw_parts(rgba.data[0], 4) };
        assert_eq!(pixel, [0, 0, 0, 255]);
    }

    type Record = std::sync::Mutex<Vec<String>>;

    fn record(context: *mut c_void, line: String) {
        unsafe { &*(context as *const Record) }
            .lock()
            .unwrap()
            .push(line);
    }

    fn text(ptr: *const c_char) -> String {
        unsafe { std::ffi::CStr::from_ptr(ptr) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    unsafe extern "C" fn on_users(
        room: *const c_char,
        kind: i32,
        users: *const zego_user,
        n: u32,
        cx: *mut c_void,
    ) {
        let users = unsafe { std::slice::from_raw_parts(users, n as usize) };
        let ids: Vec<String> = users
            .iter()
            .map(|u| format!("{}/{}", text(u.user_id), text(u.user_name)))
            .collect();
        record(cx, format!("users {} {kind} {}", text(room), ids.join(",")));
    }

    unsafe extern "C" fn on_command(
        room: *const c_char,
        from: *const zego_user,
        command: *const c_char,
        cx: *mut c_void,
    ) {
        let from = unsafe { &*from };
        record(
            cx,
            format!(
                "command {} {} {}",
                text(room),
                text(from.user_id),
                text(command)
            ),
        );
    }

    unsafe extern "C" fn on_frame(
        stream: *const c_char,
        _data: *const *const u8,
        lengths: *const u32,
        param: *const zego_video_frame_param,
        cx: *mut c_void,
    ) {
        let (lengths, param) = unsafe { (std::slice::from_raw_parts(lengths, 4), &*param) };
        record(
            cx,
            format!(
                "frame {} {} {} {:?}",
                text(stream),
                param.format,
                param.frame_number,
                lengths
            ),
        );
    }

    fn user(id: &str, name: &str) -> User {
        User {
            user_id: id.into(),
            user_name: name.into(),
        }
    }

    #[test]
    fn events_reach_registered_callbacks_with_c_arguments() {
        let record = Record::default();
        let cx = UserContext(&record as *const Record as *mut c_void);
        let registry = CallbackRegistry::new();
        let (users, command, frame): (
            zego_func_room_user_update,
            zego_func_im_recv_custom_command,
            zego_func_custom_video_render_remote_frame,
        ) = (Some(on_users), Some(on_command), Some(on_frame));
        registry.set(
            |t| &mut t.room_user_update,
            Slot {
                callback: users,
                context: cx,
            },
        );
        registry.set(
            |t| &mut t.im_recv_custom_command,
            Slot {
                callback: command,
                context: cx,
            },
        );
        registry.set(
            |t| &mut t.custom_video_render_remote_frame,
            Slot {
                callback: frame,
                context: cx,
            },
        );
        let sink = registry.sink();

        sink(&Event::RoomUserUpdate {
            room_id: "r1".into(),
            update_type: zego_protocol::message::UpdateType::Delete,
            users: vec![user("a", "Ann"), user("b", "Bö")],
        });
        sink(&Event::ImRecvCustomCommand {
            room_id: "r1".into(),
            from_user: user("a", "Ann"),
            command: "go".into(),
        });
        // No callback registered for this one: nothing happens.
        sink(&Event::PlayerRecvVideoFirstFrame {
            stream_id: "s1".into(),
        });
        let mut frame = VideoFrame::new_black(4, 2);
        frame.frame_number = 7;
        let frame = Arc::new(frame);
        sink(&Event::RemoteVideoFrame {
            stream_id: "s1".into(),
            frame: frame.clone(),
        });
        registry.set_remote_render_format(PixelFormat::Rgba32);
        sink(&Event::RemoteVideoFrame {
            stream_id: "s1".into(),
            frame: frame.clone(),
        });
        // Unregistered, then closed: nothing more arrives.
        registry.set(|t| &mut t.im_recv_custom_command, Slot::default());
        sink(&Event::ImRecvCustomCommand {
            room_id: "r1".into(),
            from_user: user("a", "Ann"),
            command: "go".into(),
        });
        registry.close();
        sink(&Event::RemoteVideoFrame {
            stream_id: "s1".into(),
            frame,
        });

        assert_eq!(
            *record.lock().unwrap(),
            [
                "users r1 1 a/Ann,b/Bö",
                "command r1 a go",
                "frame s1 1 7 [8, 2, 2, 0]",
                "frame s1 5 7 [32, 0, 0, 0]",
            ]
        );
    }

    #[test]
    fn strings_for_callbacks_stop_at_interior_nul() {
        let mut keep = Strings::default();
        let ptr = keep.c("abc\0def");
        assert_eq!(unsafe { std::ffi::CStr::from_ptr(ptr) }.to_str(), Ok("abc"));
    }
}
