using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using Zego.Express.Native;

namespace Zego.Express
{
    /// <summary>
    /// Owns a <c>zego_engine</c> handle: releasing it destroys the engine, and it keeps the native callback
    /// delegates alive for as long as the engine may call them (even when the <see cref="Engine"/> is finalized).
    /// </summary>
    internal sealed class EngineHandle : SafeHandle
    {
        readonly List<Delegate> delegates = new List<Delegate>();

        internal EngineHandle(ulong value)
            : base(IntPtr.Zero, true)
        {
            Value = value;
            // zego_engine is a 64-bit integer, not a pointer; the SafeHandle field only marks it valid.
            SetHandle(new IntPtr(1));
        }

        /// <summary>The C handle.</summary>
        internal ulong Value { get; private set; }

        public override bool IsInvalid
        {
            get { return handle == IntPtr.Zero; }
        }

        internal void Keep(Delegate native)
        {
            lock (delegates) delegates.Add(native);
        }

        protected override bool ReleaseHandle()
        {
            return NativeMethods.zego_engine_destroy(Value) == 0;
        }
    }

    /// <summary>
    /// An engine: logs in to a room as one user, previews, publishes and plays streams. Dispose it to stop
    /// everything. Events are raised on the engine's callback thread, one at a time; handlers may call any method,
    /// including <see cref="Dispose"/>. An exception a handler throws is reported through
    /// <see cref="ZegoExpress.CallbackException"/> and never reaches the SDK. Every method throws
    /// <see cref="ZegoException"/> when the SDK returns an error code.
    /// </summary>
    public sealed partial class Engine : IDisposable
    {
        readonly object gate = new object();
        readonly EngineHandle handle;

        public Engine(uint appId, string server, string appSign = "", Scenario scenario = Scenario.Default)
            : this(new EngineProfile { AppId = appId, Server = server, AppSign = appSign, Scenario = scenario })
        {
        }

        public unsafe Engine(EngineProfile profile)
        {
            if (profile == null) throw new ArgumentNullException("profile");
            ulong value = 0;
            using (var keep = new NativeStrings())
            {
                var c = profile.ToNative(keep);
                ZegoException.Check(NativeMethods.zego_engine_create(&c, &value), "zego_engine_create");
            }
            handle = new EngineHandle(value);
        }

        /// <summary>The C handle (<c>zego_engine</c>), 0 once disposed.</summary>
        public ulong Handle
        {
            get { return handle.IsClosed ? 0 : handle.Value; }
        }

        /// <summary>
        /// Stops previewing, publishing and playing, logs out and destroys the engine. No handler runs after this
        /// returns, unless it is called from inside a handler, which then finishes first.
        /// </summary>
        public void Dispose()
        {
            handle.Dispose();
        }

        void Keep(Delegate native)
        {
            handle.Keep(native);
        }

        void Subscribe<T>(ref EventHandler<T> field, EventHandler<T> value, Func<bool, int> register) where T : EventArgs
        {
            lock (gate)
            {
                bool first = field == null;
                field = (EventHandler<T>)Delegate.Combine(field, value);
                if (first && field != null)
                {
                    int code = register(true);
                    if (code != 0)
                    {
                        field = null;
                        ZegoException.Check(code, "register");
                    }
                }
            }
        }

        void Unsubscribe<T>(ref EventHandler<T> field, EventHandler<T> value, Func<bool, int> register) where T : EventArgs
        {
            lock (gate)
            {
                bool had = field != null;
                field = (EventHandler<T>)Delegate.Remove(field, value);
                if (had && field == null && !handle.IsClosed) register(false);
            }
        }

        ulong Live(string function)
        {
            ulong value = Handle;
            if (value == 0) throw new ZegoException((int)ErrorCode.CommonEngineNotCreated, null, function);
            return value;
        }

        // -- rooms ------------------------------------------------------------------------------------------------

        /// <summary>Logs in to <paramref name="roomId"/>; progress arrives as <see cref="RoomStateUpdate"/>.</summary>
        public unsafe void LoginRoom(string roomId, User user, RoomConfig config = null)
        {
            if (user == null) throw new ArgumentNullException("user");
            using (var keep = new NativeStrings())
            {
                var cUser = user.ToNative(keep);
                var cConfig = config != null ? config.ToNative(keep) : default(zego_room_config);
                ZegoException.Check(
                    NativeMethods.zego_login_room(Live("zego_login_room"), keep.Add(roomId), &cUser, config != null ? &cConfig : null),
                    "zego_login_room");
            }
        }

        /// <summary>
        /// How long a broken connection is retried before the room gives up (at least 1 s; 1200 s by default).
        /// Applies to later logins.
        /// </summary>
        public void SetRoomRetryTime(uint seconds)
        {
            ZegoException.Check(NativeMethods.zego_set_room_retry_time(Live("zego_set_room_retry_time"), seconds), "zego_set_room_retry_time");
        }

        /// <summary>Logs out of <paramref name="roomId"/>, or of every room when it is null.</summary>
        public unsafe void LogoutRoom(string roomId = null)
        {
            using (var keep = new NativeStrings())
                ZegoException.Check(NativeMethods.zego_logout_room(Live("zego_logout_room"), keep.Add(roomId)), "zego_logout_room");
        }

        /// <summary>Replaces the login token before it expires.</summary>
        public unsafe void RenewToken(string roomId, string token)
        {
            using (var keep = new NativeStrings())
                ZegoException.Check(
                    NativeMethods.zego_renew_token(Live("zego_renew_token"), keep.Add(roomId), keep.Add(token)), "zego_renew_token");
        }

        /// <summary>Sets a room extra info entry; returns the seq its result event carries.</summary>
        public unsafe int SetRoomExtraInfo(string roomId, string key, string value)
        {
            int seq = 0;
            using (var keep = new NativeStrings())
                ZegoException.Check(
                    NativeMethods.zego_set_room_extra_info(Live("zego_set_room_extra_info"), keep.Add(roomId), keep.Add(key), keep.Add(value), &seq),
                    "zego_set_room_extra_info");
            return seq;
        }

        /// <summary>Sends a message to everyone in the room; returns the seq its result event carries.</summary>
        public unsafe int SendBroadcastMessage(string roomId, string message)
        {
            int seq = 0;
            using (var keep = new NativeStrings())
                ZegoException.Check(
                    NativeMethods.zego_send_broadcast_message(Live("zego_send_broadcast_message"), keep.Add(roomId), keep.Add(message), &seq),
                    "zego_send_broadcast_message");
            return seq;
        }

        /// <summary>Sends a command to the listed users (everyone else in the room when none); returns the seq.</summary>
        public unsafe int SendCustomCommand(string roomId, string command, params string[] toUserIds)
        {
            int seq = 0;
            int count = toUserIds == null ? 0 : toUserIds.Length;
            using (var keep = new NativeStrings())
                ZegoException.Check(
                    NativeMethods.zego_send_custom_command(
                        Live("zego_send_custom_command"), keep.Add(roomId), keep.Add(command), keep.AddList(toUserIds), (UIntPtr)count, &seq),
                    "zego_send_custom_command");
            return seq;
        }

        // -- publishing -------------------------------------------------------------------------------------------

        /// <summary>Starts capturing on <paramref name="channel"/>; frames go to <see cref="CustomVideoRenderCapturedFrame"/>.</summary>
        public void StartPreview(PublishChannel channel = PublishChannel.Main)
        {
            ZegoException.Check(NativeMethods.zego_start_preview(Live("zego_start_preview"), (int)channel), "zego_start_preview");
        }

        public void StopPreview(PublishChannel channel = PublishChannel.Main)
        {
            ZegoException.Check(NativeMethods.zego_stop_preview(Live("zego_stop_preview"), (int)channel), "zego_stop_preview");
        }

        /// <summary>Publishes <paramref name="channel"/> as <paramref name="streamId"/>; progress arrives as <see cref="PublisherStateUpdate"/>.</summary>
        public unsafe void StartPublishingStream(string streamId, PublishChannel channel = PublishChannel.Main)
        {
            using (var keep = new NativeStrings())
                ZegoException.Check(
                    NativeMethods.zego_start_publishing_stream(Live("zego_start_publishing_stream"), keep.Add(streamId), (int)channel),
                    "zego_start_publishing_stream");
        }

        public void StopPublishingStream(PublishChannel channel = PublishChannel.Main)
        {
            ZegoException.Check(
                NativeMethods.zego_stop_publishing_stream(Live("zego_stop_publishing_stream"), (int)channel), "zego_stop_publishing_stream");
        }

        /// <summary>Sets the extra info of the stream <paramref name="channel"/> publishes; returns the seq.</summary>
        public unsafe int SetStreamExtraInfo(string extraInfo, PublishChannel channel = PublishChannel.Main)
        {
            int seq = 0;
            using (var keep = new NativeStrings())
                ZegoException.Check(
                    NativeMethods.zego_set_stream_extra_info(Live("zego_set_stream_extra_info"), keep.Add(extraInfo), (int)channel, &seq),
                    "zego_set_stream_extra_info");
            return seq;
        }

        public void MutePublishStreamAudio(bool mute, PublishChannel channel = PublishChannel.Main)
        {
            ZegoException.Check(
                NativeMethods.zego_mute_publish_stream_audio(Live("zego_mute_publish_stream_audio"), mute, (int)channel),
                "zego_mute_publish_stream_audio");
        }

        public void MutePublishStreamVideo(bool mute, PublishChannel channel = PublishChannel.Main)
        {
            ZegoException.Check(
                NativeMethods.zego_mute_publish_stream_video(Live("zego_mute_publish_stream_video"), mute, (int)channel),
                "zego_mute_publish_stream_video");
        }

        public unsafe void SetVideoConfig(VideoConfig config, PublishChannel channel = PublishChannel.Main)
        {
            if (config == null) throw new ArgumentNullException("config");
            using (var keep = new NativeStrings())
            {
                var c = config.ToNative(keep);
                ZegoException.Check(NativeMethods.zego_set_video_config(Live("zego_set_video_config"), &c, (int)channel), "zego_set_video_config");
            }
        }

        public unsafe VideoConfig GetVideoConfig(PublishChannel channel = PublishChannel.Main)
        {
            var c = new zego_video_config();
            ZegoException.Check(NativeMethods.zego_get_video_config(Live("zego_get_video_config"), (int)channel, &c), "zego_get_video_config");
            return VideoConfig.FromNative(&c);
        }

        public unsafe void SetAudioConfig(AudioConfig config, PublishChannel channel = PublishChannel.Main)
        {
            if (config == null) throw new ArgumentNullException("config");
            using (var keep = new NativeStrings())
            {
                var c = config.ToNative(keep);
                ZegoException.Check(NativeMethods.zego_set_audio_config(Live("zego_set_audio_config"), &c, (int)channel), "zego_set_audio_config");
            }
        }

        public void SetVideoSource(VideoSourceType source, PublishChannel channel = PublishChannel.Main)
        {
            ZegoException.Check(
                NativeMethods.zego_set_video_source(Live("zego_set_video_source"), (int)source, (int)channel), "zego_set_video_source");
        }

        public void SetAudioSource(AudioSourceType source, PublishChannel channel = PublishChannel.Main)
        {
            ZegoException.Check(
                NativeMethods.zego_set_audio_source(Live("zego_set_audio_source"), (int)source, (int)channel), "zego_set_audio_source");
        }

        /// <summary>
        /// Pushes one frame (planes back to back as <paramref name="param"/> describes them) into a channel whose
        /// video source is <see cref="VideoSourceType.Custom"/>. The data is copied before this returns.
        /// </summary>
        public unsafe void SendCustomVideoCaptureFrame(byte[] data, VideoFrameParam param, PublishChannel channel = PublishChannel.Main)
        {
            if (data == null) throw new ArgumentNullException("data");
            if (param == null) throw new ArgumentNullException("param");
            using (var keep = new NativeStrings())
            {
                var c = param.ToNative(keep);
                fixed (byte* bytes = data)
                {
                    ZegoException.Check(
                        NativeMethods.zego_send_custom_video_capture_frame(
                            Live("zego_send_custom_video_capture_frame"), bytes, (UIntPtr)data.Length, &c, (int)channel),
                        "zego_send_custom_video_capture_frame");
                }
            }
        }

        /// <summary>How <see cref="SendSei"/> writes data: ZEGO-defined (default) or user-unregistered (data begins
        /// with a 16-byte UUID).</summary>
        public void SetSeiConfig(SeiType seiType)
        {
            ZegoException.Check(
                NativeMethods.zego_set_sei_config(Live("zego_set_sei_config"), (int)seiType), "zego_set_sei_config");
        }

        /// <summary>
        /// Sends up to 4096 bytes with the next video frame of the stream <paramref name="channel"/> publishes, at
        /// most 30 times a second; players receive them in <c>PlayerRecvSei</c> just before that frame.
        /// </summary>
        public unsafe void SendSei(byte[] data, PublishChannel channel = PublishChannel.Main)
        {
            if (data == null) throw new ArgumentNullException("data");
            fixed (byte* bytes = data)
            {
                ZegoException.Check(
                    NativeMethods.zego_send_sei(Live("zego_send_sei"), bytes, (UIntPtr)data.Length, (int)channel),
                    "zego_send_sei");
            }
        }

        /// <summary>The pixel format of captured frames: I420 (default), NV12, BGRA32 or RGBA32.</summary>
        public void SetCapturedRenderFormat(VideoFrameFormat format)
        {
            ZegoException.Check(
                NativeMethods.zego_set_captured_render_format(Live("zego_set_captured_render_format"), (int)format),
                "zego_set_captured_render_format");
        }

        // -- playing ----------------------------------------------------------------------------------------------

        /// <summary>Plays <paramref name="streamId"/>; progress arrives as <see cref="PlayerStateUpdate"/>, frames as <see cref="CustomVideoRenderRemoteFrame"/>.</summary>
        public unsafe void StartPlayingStream(string streamId, PlayerConfig config = null)
        {
            using (var keep = new NativeStrings())
            {
                var c = config != null ? config.ToNative(keep) : default(zego_player_config);
                ZegoException.Check(
                    NativeMethods.zego_start_playing_stream(Live("zego_start_playing_stream"), keep.Add(streamId), config != null ? &c : null),
                    "zego_start_playing_stream");
            }
        }

        public unsafe void StopPlayingStream(string streamId)
        {
            using (var keep = new NativeStrings())
                ZegoException.Check(
                    NativeMethods.zego_stop_playing_stream(Live("zego_stop_playing_stream"), keep.Add(streamId)), "zego_stop_playing_stream");
        }

        /// <summary>0..200, 100 = as received.</summary>
        public unsafe void SetPlayVolume(string streamId, int volume)
        {
            using (var keep = new NativeStrings())
                ZegoException.Check(
                    NativeMethods.zego_set_play_volume(Live("zego_set_play_volume"), keep.Add(streamId), volume), "zego_set_play_volume");
        }

        public unsafe void MutePlayStreamAudio(string streamId, bool mute)
        {
            using (var keep = new NativeStrings())
                ZegoException.Check(
                    NativeMethods.zego_mute_play_stream_audio(Live("zego_mute_play_stream_audio"), keep.Add(streamId), mute),
                    "zego_mute_play_stream_audio");
        }

        public unsafe void MutePlayStreamVideo(string streamId, bool mute)
        {
            using (var keep = new NativeStrings())
                ZegoException.Check(
                    NativeMethods.zego_mute_play_stream_video(Live("zego_mute_play_stream_video"), keep.Add(streamId), mute),
                    "zego_mute_play_stream_video");
        }

        /// <summary>The pixel format of played frames: I420 (default), NV12, BGRA32 or RGBA32.</summary>
        public void SetRemoteRenderFormat(VideoFrameFormat format)
        {
            ZegoException.Check(
                NativeMethods.zego_set_remote_render_format(Live("zego_set_remote_render_format"), (int)format),
                "zego_set_remote_render_format");
        }
    }
}
