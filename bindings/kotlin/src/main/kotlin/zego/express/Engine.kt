package zego.express

import java.io.Closeable
import java.util.concurrent.atomic.AtomicLong
import zego.express.ffi.*

/**
 * Room, publishing, playing and messaging events of an [Engine]. Override what you need; every method runs on the
 * engine's callback thread, one at a time, and may call any [Engine] method (including [Engine.close]).
 * An exception a method throws goes to [ZegoExpress.callbackExceptionHandler] and never reaches the SDK.
 */
abstract class EventHandler {
    open fun onDebugError(errorCode: Int, funcName: String, info: String) {}
    open fun onEngineStateUpdate(state: EngineState) {}
    open fun onRoomStateUpdate(roomId: String, state: RoomState, errorCode: Int, extendedData: String) {}
    open fun onRoomStateChanged(roomId: String, reason: RoomStateChangedReason, errorCode: Int, extendedData: String) {}
    open fun onRoomUserUpdate(roomId: String, updateType: UpdateType, userList: Array<User>) {}
    open fun onRoomOnlineUserCountUpdate(roomId: String, count: Int) {}
    open fun onRoomStreamUpdate(roomId: String, updateType: UpdateType, streamList: Array<Stream>, extendedData: String) {}
    open fun onRoomStreamExtraInfoUpdate(roomId: String, streamList: Array<Stream>) {}
    open fun onRoomExtraInfoUpdate(roomId: String, roomExtraInfoList: Array<RoomExtraInfo>) {}
    open fun onRoomTokenWillExpire(roomId: String, remainTimeInSecond: Int) {}
    open fun onRoomSetRoomExtraInfoResult(errorCode: Int, roomId: String, key: String, seq: Int) {}
    open fun onPublisherStateUpdate(streamId: String, state: PublisherState, errorCode: Int, extendedData: String) {}
    open fun onPublisherQualityUpdate(streamId: String, quality: PublishStreamQuality?) {}
    open fun onPublisherCapturedVideoFirstFrame(channel: PublishChannel) {}
    open fun onPublisherUpdateStreamExtraInfoResult(errorCode: Int, seq: Int) {}
    open fun onPlayerStateUpdate(streamId: String, state: PlayerState, errorCode: Int, extendedData: String) {}
    open fun onPlayerQualityUpdate(streamId: String, quality: PlayStreamQuality?) {}
    open fun onPlayerRecvVideoFirstFrame(streamId: String) {}
    open fun onPlayerRecvAudioFirstFrame(streamId: String) {}
    open fun onPlayerRenderVideoFirstFrame(streamId: String) {}
    open fun onPlayerRecvSEI(streamId: String, data: ByteArray) {}
    open fun onPlayerVideoSizeChanged(streamId: String, width: Int, height: Int) {}
    open fun onIMRecvBroadcastMessage(roomId: String, messageList: Array<BroadcastMessageInfo>) {}
    open fun onIMRecvCustomCommand(roomId: String, fromUser: User?, command: String) {}
    open fun onIMSendBroadcastMessageResult(roomId: String, messageId: Long, errorCode: Int, seq: Int) {}
    open fun onIMSendCustomCommandResult(roomId: String, errorCode: Int, seq: Int) {}
}

/**
 * Raw video frames ([Engine.setCustomVideoRenderHandler]). `planes` are copies (3 for I420, 2 for NV12, 1 for
 * BGRA32/RGBA32; unused entries null) in the format chosen with [Engine.setRemoteRenderFormat] /
 * [Engine.setCapturedRenderFormat].
 */
abstract class CustomVideoRenderHandler {
    open fun onRemoteVideoFrame(streamId: String, planes: Array<ByteArray?>, param: VideoFrameParam) {}
    open fun onCapturedVideoFrame(planes: Array<ByteArray?>, param: VideoFrameParam, channel: PublishChannel) {}
}

/** When a channel whose video source is CUSTOM wants frames ([Engine.sendCustomVideoCaptureFrame]). */
abstract class CustomVideoCaptureHandler {
    open fun onStart(channel: PublishChannel) {}
    open fun onStop(channel: PublishChannel) {}
}

/** Decoded audio of played streams: interleaved 16-bit samples. */
abstract class AudioDataHandler {
    open fun onPlayerAudioData(streamId: String, samples: ShortArray, param: AudioFrameParam) {}
}

/**
 * An engine: logs in to a room as one user, previews, publishes and plays streams. [close] it to stop everything
 * (it is [Closeable], so `use {}` works). Every method throws [ZegoException] when the SDK returns an error code.
 */
class Engine(appId: Long, server: String, appSign: String = "", scenario: Scenario = Scenario.DEFAULT) : Closeable {
    private val handleValue = AtomicLong(0)

    init {
        val out = LongArray(1)
        // app_id is a uint32_t: values above Int.MAX_VALUE travel as their two's complement.
        val profile = EngineProfile(appId.toInt(), appSign, scenario, server)
        ZegoException.check(Native.zego_engine_create(profile, out), "zego_engine_create")
        handleValue.set(out[0])
    }

    /** The C handle (`zego_engine`), 0 once closed. */
    val handle: Long get() = handleValue.get()

    /**
     * Destroys the engine. No handler runs after this returns, unless it is called from inside a handler, which
     * then finishes first. Calling it again does nothing.
     */
    override fun close() {
        val handle = handleValue.getAndSet(0)
        if (handle != 0L) ZegoException.check(Native.zego_engine_destroy(handle), "zego_engine_destroy")
    }

    private fun live(function: String): Long {
        val handle = handleValue.get()
        if (handle == 0L) throw ZegoException(ErrorCode.COMMON_ENGINE_NOT_CREATED, null, function)
        return handle
    }

    private inline fun call(function: String, body: (Long) -> Int) = ZegoException.check(body(live(function)), function)

    private inline fun callSeq(function: String, body: (Long, IntArray) -> Int): Int {
        val seq = IntArray(1)
        ZegoException.check(body(live(function), seq), function)
        return seq[0]
    }

    // -- handlers ------------------------------------------------------------------------------------------------

    @Volatile
    private var eventHandler: EventHandler? = null
    @Volatile
    private var renderHandler: CustomVideoRenderHandler? = null
    @Volatile
    private var captureHandler: CustomVideoCaptureHandler? = null
    @Volatile
    private var audioHandler: AudioDataHandler? = null

    private inline fun onEvent(name: String, body: (EventHandler) -> Unit) {
        val handler = eventHandler ?: return
        ZegoExpress.guard(name) { body(handler) }
    }

    /** Sets (or clears, with null) the handler of room, publishing, playing and messaging events. */
    @Synchronized
    fun setEventHandler(handler: EventHandler?) {
        val wasOn = eventHandler != null
        eventHandler = handler
        val on = handler != null
        // Listeners read the current handler, so only switching on or off needs the C API.
        if (wasOn == on) return
        register("zego_register_debug_error_callback") { h ->
            Native.zego_register_debug_error_callback(h, if (!on) null else object : DebugErrorCallback {
                override fun invoke(errorCode: Int, funcName: String, info: String) =
                    onEvent("onDebugError") { it.onDebugError(errorCode, funcName, info) }
            })
        }
        register("zego_register_engine_state_update_callback") { h ->
            Native.zego_register_engine_state_update_callback(h, if (!on) null else object : EngineStateUpdateCallback {
                override fun invoke(state: EngineState) = onEvent("onEngineStateUpdate") { it.onEngineStateUpdate(state) }
            })
        }
        register("zego_register_room_state_update_callback") { h ->
            Native.zego_register_room_state_update_callback(h, if (!on) null else object : RoomStateUpdateCallback {
                override fun invoke(roomId: String, state: RoomState, errorCode: Int, extendedData: String) =
                    onEvent("onRoomStateUpdate") { it.onRoomStateUpdate(roomId, state, errorCode, extendedData) }
            })
        }
        register("zego_register_room_state_changed_callback") { h ->
            Native.zego_register_room_state_changed_callback(h, if (!on) null else object : RoomStateChangedCallback {
                override fun invoke(roomId: String, reason: RoomStateChangedReason, errorCode: Int, extendedData: String) =
                    onEvent("onRoomStateChanged") { it.onRoomStateChanged(roomId, reason, errorCode, extendedData) }
            })
        }
        register("zego_register_room_user_update_callback") { h ->
            Native.zego_register_room_user_update_callback(h, if (!on) null else object : RoomUserUpdateCallback {
                override fun invoke(roomId: String, updateType: UpdateType, userList: Array<User>) =
                    onEvent("onRoomUserUpdate") { it.onRoomUserUpdate(roomId, updateType, userList) }
            })
        }
        register("zego_register_room_online_user_count_update_callback") { h ->
            Native.zego_register_room_online_user_count_update_callback(h, if (!on) null else object : RoomOnlineUserCountUpdateCallback {
                override fun invoke(roomId: String, count: Int) =
                    onEvent("onRoomOnlineUserCountUpdate") { it.onRoomOnlineUserCountUpdate(roomId, count) }
            })
        }
        register("zego_register_room_stream_update_callback") { h ->
            Native.zego_register_room_stream_update_callback(h, if (!on) null else object : RoomStreamUpdateCallback {
                override fun invoke(roomId: String, updateType: UpdateType, streamList: Array<Stream>, extendedData: String) =
                    onEvent("onRoomStreamUpdate") { it.onRoomStreamUpdate(roomId, updateType, streamList, extendedData) }
            })
        }
        register("zego_register_room_stream_extra_info_update_callback") { h ->
            Native.zego_register_room_stream_extra_info_update_callback(h, if (!on) null else object : RoomStreamExtraInfoUpdateCallback {
                override fun invoke(roomId: String, streamList: Array<Stream>) =
                    onEvent("onRoomStreamExtraInfoUpdate") { it.onRoomStreamExtraInfoUpdate(roomId, streamList) }
            })
        }
        register("zego_register_room_extra_info_update_callback") { h ->
            Native.zego_register_room_extra_info_update_callback(h, if (!on) null else object : RoomExtraInfoUpdateCallback {
                override fun invoke(roomId: String, roomExtraInfoList: Array<RoomExtraInfo>) =
                    onEvent("onRoomExtraInfoUpdate") { it.onRoomExtraInfoUpdate(roomId, roomExtraInfoList) }
            })
        }
        register("zego_register_room_token_will_expire_callback") { h ->
            Native.zego_register_room_token_will_expire_callback(h, if (!on) null else object : RoomTokenWillExpireCallback {
                override fun invoke(roomId: String, remainTimeInSecond: Int) =
                    onEvent("onRoomTokenWillExpire") { it.onRoomTokenWillExpire(roomId, remainTimeInSecond) }
            })
        }
        register("zego_register_room_set_room_extra_info_result_callback") { h ->
            Native.zego_register_room_set_room_extra_info_result_callback(h, if (!on) null else object : RoomSetRoomExtraInfoResultCallback {
                override fun invoke(errorCode: Int, roomId: String, key: String, seq: Int) =
                    onEvent("onRoomSetRoomExtraInfoResult") { it.onRoomSetRoomExtraInfoResult(errorCode, roomId, key, seq) }
            })
        }
        register("zego_register_publisher_state_update_callback") { h ->
            Native.zego_register_publisher_state_update_callback(h, if (!on) null else object : PublisherStateUpdateCallback {
                override fun invoke(streamId: String, state: PublisherState, errorCode: Int, extendedData: String) =
                    onEvent("onPublisherStateUpdate") { it.onPublisherStateUpdate(streamId, state, errorCode, extendedData) }
            })
        }
        register("zego_register_publisher_quality_update_callback") { h ->
            Native.zego_register_publisher_quality_update_callback(h, if (!on) null else object : PublisherQualityUpdateCallback {
                override fun invoke(streamId: String, quality: PublishStreamQuality?) =
                    onEvent("onPublisherQualityUpdate") { it.onPublisherQualityUpdate(streamId, quality) }
            })
        }
        register("zego_register_publisher_captured_video_first_frame_callback") { h ->
            Native.zego_register_publisher_captured_video_first_frame_callback(h, if (!on) null else object : PublisherCapturedVideoFirstFrameCallback {
                override fun invoke(channel: PublishChannel) =
                    onEvent("onPublisherCapturedVideoFirstFrame") { it.onPublisherCapturedVideoFirstFrame(channel) }
            })
        }
        register("zego_register_publisher_update_stream_extra_info_result_callback") { h ->
            Native.zego_register_publisher_update_stream_extra_info_result_callback(h, if (!on) null else object : PublisherUpdateStreamExtraInfoResultCallback {
                override fun invoke(errorCode: Int, seq: Int) =
                    onEvent("onPublisherUpdateStreamExtraInfoResult") { it.onPublisherUpdateStreamExtraInfoResult(errorCode, seq) }
            })
        }
        register("zego_register_player_state_update_callback") { h ->
            Native.zego_register_player_state_update_callback(h, if (!on) null else object : PlayerStateUpdateCallback {
                override fun invoke(streamId: String, state: PlayerState, errorCode: Int, extendedData: String) =
                    onEvent("onPlayerStateUpdate") { it.onPlayerStateUpdate(streamId, state, errorCode, extendedData) }
            })
        }
        register("zego_register_player_quality_update_callback") { h ->
            Native.zego_register_player_quality_update_callback(h, if (!on) null else object : PlayerQualityUpdateCallback {
                override fun invoke(streamId: String, quality: PlayStreamQuality?) =
                    onEvent("onPlayerQualityUpdate") { it.onPlayerQualityUpdate(streamId, quality) }
            })
        }
        register("zego_register_player_recv_video_first_frame_callback") { h ->
            Native.zego_register_player_recv_video_first_frame_callback(h, if (!on) null else object : PlayerRecvVideoFirstFrameCallback {
                override fun invoke(streamId: String) = onEvent("onPlayerRecvVideoFirstFrame") { it.onPlayerRecvVideoFirstFrame(streamId) }
            })
        }
        register("zego_register_player_recv_audio_first_frame_callback") { h ->
            Native.zego_register_player_recv_audio_first_frame_callback(h, if (!on) null else object : PlayerRecvAudioFirstFrameCallback {
                override fun invoke(streamId: String) = onEvent("onPlayerRecvAudioFirstFrame") { it.onPlayerRecvAudioFirstFrame(streamId) }
            })
        }
        register("zego_register_player_render_video_first_frame_callback") { h ->
            Native.zego_register_player_render_video_first_frame_callback(h, if (!on) null else object : PlayerRenderVideoFirstFrameCallback {
                override fun invoke(streamId: String) =
                    onEvent("onPlayerRenderVideoFirstFrame") { it.onPlayerRenderVideoFirstFrame(streamId) }
            })
        }
        register("zego_register_player_recv_sei_callback") { h ->
            Native.zego_register_player_recv_sei_callback(h, if (!on) null else object : PlayerRecvSeiCallback {
                override fun invoke(streamId: String, data: ByteArray) =
                    onEvent("onPlayerRecvSEI") { it.onPlayerRecvSEI(streamId, data) }
            })
        }
        register("zego_register_player_video_size_changed_callback") { h ->
            Native.zego_register_player_video_size_changed_callback(h, if (!on) null else object : PlayerVideoSizeChangedCallback {
                override fun invoke(streamId: String, width: Int, height: Int) =
                    onEvent("onPlayerVideoSizeChanged") { it.onPlayerVideoSizeChanged(streamId, width, height) }
            })
        }
        register("zego_register_im_recv_broadcast_message_callback") { h ->
            Native.zego_register_im_recv_broadcast_message_callback(h, if (!on) null else object : ImRecvBroadcastMessageCallback {
                override fun invoke(roomId: String, messageList: Array<BroadcastMessageInfo>) =
                    onEvent("onIMRecvBroadcastMessage") { it.onIMRecvBroadcastMessage(roomId, messageList) }
            })
        }
        register("zego_register_im_recv_custom_command_callback") { h ->
            Native.zego_register_im_recv_custom_command_callback(h, if (!on) null else object : ImRecvCustomCommandCallback {
                override fun invoke(roomId: String, fromUser: User?, command: String) =
                    onEvent("onIMRecvCustomCommand") { it.onIMRecvCustomCommand(roomId, fromUser, command) }
            })
        }
        register("zego_register_im_send_broadcast_message_result_callback") { h ->
            Native.zego_register_im_send_broadcast_message_result_callback(h, if (!on) null else object : ImSendBroadcastMessageResultCallback {
                override fun invoke(roomId: String, messageId: Long, errorCode: Int, seq: Int) =
                    onEvent("onIMSendBroadcastMessageResult") { it.onIMSendBroadcastMessageResult(roomId, messageId, errorCode, seq) }
            })
        }
        register("zego_register_im_send_custom_command_result_callback") { h ->
            Native.zego_register_im_send_custom_command_result_callback(h, if (!on) null else object : ImSendCustomCommandResultCallback {
                override fun invoke(roomId: String, errorCode: Int, seq: Int) =
                    onEvent("onIMSendCustomCommandResult") { it.onIMSendCustomCommandResult(roomId, errorCode, seq) }
            })
        }
    }

    /** Sets (or clears) the handler of raw video frames; frames are only converted and copied while one is set. */
    @Synchronized
    fun setCustomVideoRenderHandler(handler: CustomVideoRenderHandler?) {
        val wasOn = renderHandler != null
        renderHandler = handler
        val on = handler != null
        // Listeners read the current handler, so only switching on or off needs the C API.
        if (wasOn == on) return
        register("zego_register_custom_video_render_remote_frame_callback") { h ->
            Native.zego_register_custom_video_render_remote_frame_callback(h, if (!on) null else object : CustomVideoRenderRemoteFrameCallback {
                override fun invoke(streamId: String, data: Array<ByteArray?>, param: VideoFrameParam?) {
                    val current = renderHandler ?: return
                    if (param != null) ZegoExpress.guard("onRemoteVideoFrame") { current.onRemoteVideoFrame(streamId, data, param) }
                }
            })
        }
        register("zego_register_custom_video_render_captured_frame_callback") { h ->
            Native.zego_register_custom_video_render_captured_frame_callback(h, if (!on) null else object : CustomVideoRenderCapturedFrameCallback {
                override fun invoke(data: Array<ByteArray?>, param: VideoFrameParam?, channel: PublishChannel) {
                    val current = renderHandler ?: return
                    if (param != null) ZegoExpress.guard("onCapturedVideoFrame") { current.onCapturedVideoFrame(data, param, channel) }
                }
            })
        }
    }

    /** Sets (or clears) the handler told when custom video sources want frames. */
    @Synchronized
    fun setCustomVideoCaptureHandler(handler: CustomVideoCaptureHandler?) {
        val wasOn = captureHandler != null
        captureHandler = handler
        val on = handler != null
        // Listeners read the current handler, so only switching on or off needs the C API.
        if (wasOn == on) return
        register("zego_register_custom_video_capture_start_callback") { h ->
            Native.zego_register_custom_video_capture_start_callback(h, if (!on) null else object : CustomVideoCaptureStartCallback {
                override fun invoke(channel: PublishChannel) {
                    val current = captureHandler ?: return
                    ZegoExpress.guard("onStart") { current.onStart(channel) }
                }
            })
        }
        register("zego_register_custom_video_capture_stop_callback") { h ->
            Native.zego_register_custom_video_capture_stop_callback(h, if (!on) null else object : CustomVideoCaptureStopCallback {
                override fun invoke(channel: PublishChannel) {
                    val current = captureHandler ?: return
                    ZegoExpress.guard("onStop") { current.onStop(channel) }
                }
            })
        }
    }

    /** Sets (or clears) the handler of decoded audio of played streams. */
    @Synchronized
    fun setAudioDataHandler(handler: AudioDataHandler?) {
        val wasOn = audioHandler != null
        audioHandler = handler
        val on = handler != null
        // Listeners read the current handler, so only switching on or off needs the C API.
        if (wasOn == on) return
        register("zego_register_player_audio_data_callback") { h ->
            Native.zego_register_player_audio_data_callback(h, if (!on) null else object : PlayerAudioDataCallback {
                override fun invoke(streamId: String, samples: ShortArray, param: AudioFrameParam?) {
                    val current = audioHandler ?: return
                    if (param != null) ZegoExpress.guard("onPlayerAudioData") { current.onPlayerAudioData(streamId, samples, param) }
                }
            })
        }
    }

    private inline fun register(function: String, body: (Long) -> Int) = call(function, body)

    // -- rooms ---------------------------------------------------------------------------------------------------

    /** Logs in to [roomId] as [user]; progress arrives as [EventHandler.onRoomStateUpdate]. */
    @JvmOverloads
    fun loginRoom(roomId: String, user: User, config: RoomConfig? = null) =
        call("zego_login_room") { Native.zego_login_room(it, roomId, user, config) }

    /** How long a broken connection is retried before the room gives up (at least 1 s; 1200 s by default). */
    fun setRoomRetryTime(seconds: Int) = call("zego_set_room_retry_time") { Native.zego_set_room_retry_time(it, seconds) }

    /** Logs out of [roomId], or of every room when it is null. */
    @JvmOverloads
    fun logoutRoom(roomId: String? = null) = call("zego_logout_room") { Native.zego_logout_room(it, roomId) }

    fun renewToken(roomId: String, token: String) = call("zego_renew_token") { Native.zego_renew_token(it, roomId, token) }

    /** Sets a room extra info entry; returns the seq its result event carries. */
    fun setRoomExtraInfo(roomId: String, key: String, value: String): Int =
        callSeq("zego_set_room_extra_info") { h, seq -> Native.zego_set_room_extra_info(h, roomId, key, value, seq) }

    /** Sends a message to everyone in the room; returns the seq its result event carries. */
    fun sendBroadcastMessage(roomId: String, message: String): Int =
        callSeq("zego_send_broadcast_message") { h, seq -> Native.zego_send_broadcast_message(h, roomId, message, seq) }

    /** Sends a command to [toUserIds] (everyone else in the room when empty); returns the seq. */
    @JvmOverloads
    fun sendCustomCommand(roomId: String, command: String, toUserIds: Array<String> = arrayOf()): Int =
        callSeq("zego_send_custom_command") { h, seq -> Native.zego_send_custom_command(h, roomId, command, toUserIds, seq) }

    // -- publishing ----------------------------------------------------------------------------------------------

    @JvmOverloads
    fun startPreview(channel: PublishChannel = PublishChannel.MAIN) =
        call("zego_start_preview") { Native.zego_start_preview(it, channel.value) }

    @JvmOverloads
    fun stopPreview(channel: PublishChannel = PublishChannel.MAIN) =
        call("zego_stop_preview") { Native.zego_stop_preview(it, channel.value) }

    /** Publishes [channel] as [streamId]; progress arrives as [EventHandler.onPublisherStateUpdate]. */
    @JvmOverloads
    fun startPublishingStream(streamId: String, channel: PublishChannel = PublishChannel.MAIN) =
        call("zego_start_publishing_stream") { Native.zego_start_publishing_stream(it, streamId, channel.value) }

    @JvmOverloads
    fun stopPublishingStream(channel: PublishChannel = PublishChannel.MAIN) =
        call("zego_stop_publishing_stream") { Native.zego_stop_publishing_stream(it, channel.value) }

    @JvmOverloads
    fun setStreamExtraInfo(extraInfo: String, channel: PublishChannel = PublishChannel.MAIN): Int =
        callSeq("zego_set_stream_extra_info") { h, seq -> Native.zego_set_stream_extra_info(h, extraInfo, channel.value, seq) }

    @JvmOverloads
    fun mutePublishStreamAudio(mute: Boolean, channel: PublishChannel = PublishChannel.MAIN) =
        call("zego_mute_publish_stream_audio") { Native.zego_mute_publish_stream_audio(it, mute, channel.value) }

    @JvmOverloads
    fun mutePublishStreamVideo(mute: Boolean, channel: PublishChannel = PublishChannel.MAIN) =
        call("zego_mute_publish_stream_video") { Native.zego_mute_publish_stream_video(it, mute, channel.value) }

    @JvmOverloads
    fun setVideoConfig(config: VideoConfig, channel: PublishChannel = PublishChannel.MAIN) =
        call("zego_set_video_config") { Native.zego_set_video_config(it, config, channel.value) }

    @JvmOverloads
    fun getVideoConfig(channel: PublishChannel = PublishChannel.MAIN): VideoConfig {
        val config = VideoConfig()
        call("zego_get_video_config") { Native.zego_get_video_config(it, channel.value, config) }
        return config
    }

    @JvmOverloads
    fun setAudioConfig(config: AudioConfig, channel: PublishChannel = PublishChannel.MAIN) =
        call("zego_set_audio_config") { Native.zego_set_audio_config(it, config, channel.value) }

    @JvmOverloads
    fun setVideoSource(source: VideoSourceType, channel: PublishChannel = PublishChannel.MAIN) =
        call("zego_set_video_source") { Native.zego_set_video_source(it, source.value, channel.value) }

    @JvmOverloads
    fun setAudioSource(source: AudioSourceType, channel: PublishChannel = PublishChannel.MAIN) =
        call("zego_set_audio_source") { Native.zego_set_audio_source(it, source.value, channel.value) }

    /** How [sendSEI] writes data: ZEGO_DEFINED (default) or USER_UNREGISTER (data begins with a 16-byte UUID). */
    fun setSEIConfig(seiType: SeiType) =
        call("zego_set_sei_config") { Native.zego_set_sei_config(it, seiType.value) }

    /**
     * Sends up to 4096 bytes with the next video frame of the stream [channel] publishes, at most 30 times a second;
     * players receive them in [EventHandler.onPlayerRecvSEI] just before that frame.
     */
    @JvmOverloads
    fun sendSEI(data: ByteArray, channel: PublishChannel = PublishChannel.MAIN) =
        call("zego_send_sei") { Native.zego_send_sei(it, data, channel.value) }

    /** Pushes one frame (planes back to back as [param] describes them) into a channel whose source is CUSTOM. */
    @JvmOverloads
    fun sendCustomVideoCaptureFrame(data: ByteArray, param: VideoFrameParam, channel: PublishChannel = PublishChannel.MAIN) =
        call("zego_send_custom_video_capture_frame") { Native.zego_send_custom_video_capture_frame(it, data, param, channel.value) }

    /** The pixel format of captured frames: I420 (default), NV12, BGRA32 or RGBA32. */
    fun setCapturedRenderFormat(format: VideoFrameFormat) =
        call("zego_set_captured_render_format") { Native.zego_set_captured_render_format(it, format.value) }

    // -- playing -------------------------------------------------------------------------------------------------

    /** Plays [streamId]; progress arrives as [EventHandler.onPlayerStateUpdate]. */
    @JvmOverloads
    fun startPlayingStream(streamId: String, config: PlayerConfig? = null) =
        call("zego_start_playing_stream") { Native.zego_start_playing_stream(it, streamId, config) }

    fun stopPlayingStream(streamId: String) = call("zego_stop_playing_stream") { Native.zego_stop_playing_stream(it, streamId) }

    /** 0..200, 100 = as received. */
    fun setPlayVolume(streamId: String, volume: Int) =
        call("zego_set_play_volume") { Native.zego_set_play_volume(it, streamId, volume) }

    fun mutePlayStreamAudio(streamId: String, mute: Boolean) =
        call("zego_mute_play_stream_audio") { Native.zego_mute_play_stream_audio(it, streamId, mute) }

    fun mutePlayStreamVideo(streamId: String, mute: Boolean) =
        call("zego_mute_play_stream_video") { Native.zego_mute_play_stream_video(it, streamId, mute) }

    /** The pixel format of played frames: I420 (default), NV12, BGRA32 or RGBA32. */
    fun setRemoteRenderFormat(format: VideoFrameFormat) =
        call("zego_set_remote_render_format") { Native.zego_set_remote_render_format(it, format.value) }
}
