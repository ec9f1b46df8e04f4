package zego.express.tests

import java.util.UUID
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess
import zego.express.*
import zego.express.ffi.Native

// A small self-contained test runner (no JUnit: nothing is downloaded). Tests are listed in TESTS; each runs on its
// own thread with a time limit. The server is $ZEGO_SERVER_URL (tests/bindings_kotlin.rs starts one in-process).

class AssertionFailed(message: String) : RuntimeException(message)

fun check(condition: Boolean, message: () -> String) {
    if (!condition) throw AssertionFailed(message())
}

fun <T> checkEqual(expected: T, actual: T, what: String) = check(expected == actual) { "$what: expected $expected, got $actual" }

inline fun <reified T : Throwable> expectThrows(what: String, body: () -> Unit): T {
    try {
        body()
    } catch (t: Throwable) {
        if (t is T) return t
        throw AssertionFailed("$what: expected ${T::class.java.simpleName}, got $t")
    }
    throw AssertionFailed("$what: expected ${T::class.java.simpleName}, nothing was thrown")
}

/** Collects values from the callback thread; [await] blocks (bounded) until a predicate holds. */
class Collector<T> {
    private val items = ArrayList<T>()
    private val lock = Object()

    fun add(item: T) = synchronized(lock) {
        items.add(item)
        lock.notifyAll()
    }

    fun snapshot(): List<T> = synchronized(lock) { ArrayList(items) }

    fun await(what: String, timeoutMs: Long = 15000, done: (List<T>) -> Boolean): List<T> {
        val deadline = System.currentTimeMillis() + timeoutMs
        synchronized(lock) {
            while (!done(items)) {
                val left = deadline - System.currentTimeMillis()
                if (left <= 0) throw AssertionFailed("timed out waiting for $what; got $items")
                lock.wait(left)
            }
            return ArrayList(items)
        }
    }
}

object Env {
    val url: String = System.getenv("ZEGO_SERVER_URL") ?: throw IllegalStateException("set ZEGO_SERVER_URL")
    val appId: Long = (System.getenv("ZEGO_APP_ID") ?: "1234567890").toLong()
    val appSign: String = System.getenv("ZEGO_APP_SIGN") ?: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

    fun unique(prefix: String) = prefix + "-" + UUID.randomUUID().toString().replace("-", "").substring(0, 10)
    fun engine() = Engine(appId, url, appSign)
}

/** Starts `anchor` publishing and `viewer` playing one stream in a fresh room. */
fun startStreaming(anchor: Engine, viewer: Engine) {
    val room = Env.unique("room")
    val stream = Env.unique("stream")
    anchor.loginRoom(room, User(Env.unique("a"), "A"))
    viewer.loginRoom(room, User(Env.unique("v"), "V"))
    anchor.startPublishingStream(stream)
    viewer.startPlayingStream(stream)
}

class FrameCounter : CustomVideoRenderHandler() {
    val frames = Collector<VideoFrameParam>()
    override fun onRemoteVideoFrame(streamId: String, planes: Array<ByteArray?>, param: VideoFrameParam) {
        frames.add(param)
    }
}

fun publishPlayAndCountFrames() {
    val room = Env.unique("room")
    val stream = Env.unique("stream")
    val publisherStates = Collector<PublisherState>()
    val playerStates = Collector<PlayerState>()
    val roomStates = Collector<RoomState>()
    val added = Collector<String>()
    val frames = Collector<VideoFrameParam>()
    Env.engine().use { anchor ->
        Env.engine().use { viewer ->
            anchor.setEventHandler(object : EventHandler() {
                override fun onRoomStateUpdate(roomId: String, state: RoomState, errorCode: Int, extendedData: String) = roomStates.add(state)
                override fun onPublisherStateUpdate(streamId: String, state: PublisherState, errorCode: Int, extendedData: String) =
                    publisherStates.add(state)
            })
            viewer.setEventHandler(object : EventHandler() {
                override fun onPlayerStateUpdate(streamId: String, state: PlayerState, errorCode: Int, extendedData: String) =
                    playerStates.add(state)

                override fun onRoomStreamUpdate(roomId: String, updateType: UpdateType, streamList: Array<Stream>, extendedData: String) {
                    if (updateType == UpdateType.ADD) streamList.forEach { added.add(it.streamId) }
                }
            })
            viewer.setCustomVideoRenderHandler(object : CustomVideoRenderHandler() {
                override fun onRemoteVideoFrame(streamId: String, planes: Array<ByteArray?>, param: VideoFrameParam) {
                    checkEqual(stream, streamId, "stream id of a frame")
                    checkEqual(VideoFrameFormat.I420, param.format, "frame format")
                    checkEqual(param.strides[0] * param.height, planes[0]?.size, "luma plane size")
                    check(planes[1] != null && planes[2] != null && planes[3] == null) { "I420 has three planes" }
                    frames.add(param)
                }
            })
            anchor.loginRoom(room, User(Env.unique("anchor"), "Anchor"))
            roomStates.await("anchor connected") { RoomState.CONNECTED in it }
            viewer.loginRoom(room, User(Env.unique("viewer"), "Viewer"))
            anchor.startPublishingStream(stream)
            publisherStates.await("publishing") { PublisherState.PUBLISHING in it }
            added.await("stream added") { stream in it }
            viewer.startPlayingStream(stream)
            playerStates.await("playing") { PlayerState.PLAYING in it }
            val got = frames.await("10 frames") { it.size >= 10 }
            checkEqual(640, got[0].width, "default width")
            checkEqual(360, got[0].height, "default height")
            val numbers = got.map { it.frameNumber }
            checkEqual(numbers.sorted(), numbers, "frames in capture order")
            viewer.stopPlayingStream(stream)
            playerStates.await("stopped playing") { it.last() == PlayerState.NO_PLAY }
            anchor.stopPublishingStream()
            publisherStates.await("stopped publishing") { it.last() == PublisherState.NO_PUBLISH }
            viewer.logoutRoom(room)
            anchor.logoutRoom()
            roomStates.await("logged out") { it.last() == RoomState.DISCONNECTED }
        }
    }
}

fun messagesAndStructsCrossJni() {
    val room = Env.unique("room")
    val aliceId = Env.unique("alice")
    val received = Collector<BroadcastMessageInfo>()
    val joined = Collector<String>()
    val results = Collector<Pair<Int, Int>>()
    Env.engine().use { alice ->
        Env.engine().use { bob ->
            bob.setEventHandler(object : EventHandler() {
                override fun onIMRecvBroadcastMessage(roomId: String, messageList: Array<BroadcastMessageInfo>) = messageList.forEach { received.add(it) }
                override fun onRoomUserUpdate(roomId: String, updateType: UpdateType, userList: Array<User>) = userList.forEach { joined.add(it.userId) }
            })
            alice.setEventHandler(object : EventHandler() {
                override fun onIMSendBroadcastMessageResult(roomId: String, messageId: Long, errorCode: Int, seq: Int) = results.add(Pair(errorCode, seq))
            })
            bob.loginRoom(room, User(Env.unique("bob"), "Bob"), RoomConfig(isUserStatusNotify = true))
            alice.loginRoom(room, User(aliceId, "Alice"))
            joined.await("alice seen by bob") { aliceId in it }
            val seq = alice.sendBroadcastMessage(room, "héllo")
            checkEqual(Pair(0, seq), results.await("send result") { it.isNotEmpty() }[0], "send result")
            val message = received.await("message") { it.isNotEmpty() }[0]
            checkEqual("héllo", message.message, "text")
            checkEqual(aliceId, message.fromUser.userId, "nested struct: sender")

            val config = VideoConfig(320, 240, 320, 240, 10, 300, 1)
            alice.setVideoConfig(config, PublishChannel.AUX)
            checkEqual(config, alice.getVideoConfig(PublishChannel.AUX), "video config round trip")
        }
    }
}

fun errorCodesSurfaceAsZegoException() {
    var e = expectThrows<ZegoException>("app id 0") { Engine(0, Env.url, Env.appSign) }
    checkEqual(ErrorCode.ENGINE_APP_ID_INCORRECT, e.code, "code")
    checkEqual("ENGINE_APP_ID_INCORRECT", e.codeName, "name")
    checkEqual("zego_engine_create", e.function, "function")
    check(e.message!!.contains(ZegoExpress.errorMessage(e.code))) { "message: ${e.message}" }
    e = expectThrows("bad server") { Engine(Env.appId, "not a url", Env.appSign) }
    checkEqual(ErrorCode.ENGINE_SERVER_ADDRESS_INVALID, e.code, "code")
    val engine = Env.engine()
    e = expectThrows("empty user id") { engine.loginRoom(Env.unique("r"), User("", "N")) }
    checkEqual(ErrorCode.ROOM_USER_ID_NULL, e.code, "code")
    e = expectThrows("publish before login") { engine.startPublishingStream(Env.unique("s")) }
    checkEqual(ErrorCode.COMMON_NOT_LOGGED_IN, e.code, "code")
    e = expectThrows("odd width") { engine.setVideoConfig(VideoConfig(0, 0, 641, 360, 15, 600, 2)) }
    checkEqual(ErrorCode.COMMON_INVALID_PARAMETER, e.code, "code")
    engine.setRoomRetryTime(5)
    e = expectThrows("retry time 0") { engine.setRoomRetryTime(0) }
    checkEqual(ErrorCode.COMMON_INVALID_PARAMETER, e.code, "code")
    e = expectThrows("NUL in a string") { engine.loginRoom("r", User("nul\u0000inside", "N")) }
    checkEqual(ErrorCode.COMMON_INVALID_PARAMETER, e.code, "code")
    checkEqual(ErrorCode.COMMON_INVALID_PARAMETER, Native.zego_engine_create(null, LongArray(1)), "null profile")
    checkEqual(ErrorCode.COMMON_INVALID_PARAMETER, Native.zego_start_preview(engine.handle, 7), "bad channel")
    checkEqual(ErrorCode.COMMON_ENGINE_NOT_CREATED, Native.zego_engine_destroy(0), "destroy of handle 0")
    engine.close()
    checkEqual(0L, engine.handle, "handle after close")
    e = expectThrows("call after close") { engine.startPreview() }
    checkEqual(ErrorCode.COMMON_ENGINE_NOT_CREATED, e.code, "code")
    engine.close()
    checkEqual("Unknown error code.", ZegoExpress.errorMessage(42), "unknown code")
    checkEqual(2, ZegoExpress.version.count { it == '.' }, "version x.y.z")
}

fun throwingHandlerIsReportedAndTheEngineKeepsWorking() {
    val reported = Collector<String>()
    val states = Collector<RoomState>()
    ZegoExpress.callbackExceptionHandler = object : ZegoExpress.CallbackExceptionHandler {
        override fun onCallbackException(event: String, exception: Throwable) = reported.add("$event: ${exception.message}")
    }
    try {
        Env.engine().use { engine ->
            engine.setEventHandler(object : EventHandler() {
                override fun onRoomStateUpdate(roomId: String, state: RoomState, errorCode: Int, extendedData: String) {
                    states.add(state)
                    throw IllegalStateException("boom from a handler")
                }
            })
            val room = Env.unique("room")
            engine.loginRoom(room, User(Env.unique("u"), "U"))
            states.await("connected") { RoomState.CONNECTED in it }
            check(reported.await("a report") { it.isNotEmpty() }[0].contains("boom from a handler")) { "report text" }
            engine.logoutRoom(room)
            states.await("logged out after the exception") { it.last() == RoomState.DISCONNECTED }
        }
    } finally {
        ZegoExpress.callbackExceptionHandler = null
    }
}

/** A listener that throws past the Kotlin layer (straight on the JNI interface) is logged by the glue, not fatal. */
fun exceptionThrownIntoJniIsContained() {
    val calls = Collector<RoomState>()
    Env.engine().use { engine ->
        Native.zego_register_room_state_update_callback(engine.handle, object : zego.express.ffi.RoomStateUpdateCallback {
            override fun invoke(roomId: String, state: RoomState, errorCode: Int, extendedData: String) {
                calls.add(state)
                throw RuntimeException("thrown into the JNI glue")
            }
        })
        val room = Env.unique("room")
        engine.loginRoom(room, User(Env.unique("u"), "U"))
        calls.await("connected") { RoomState.CONNECTED in it }
        engine.logoutRoom(room)
        calls.await("disconnected") { it.last() == RoomState.DISCONNECTED }
    }
}

fun closeWhilePublishingAndPlaying() {
    val counter = FrameCounter()
    val anchor = Env.engine()
    val viewer = Env.engine()
    viewer.setCustomVideoRenderHandler(counter)
    startStreaming(anchor, viewer)
    counter.frames.await("frames") { it.size >= 3 }
    viewer.close()
    val count = counter.frames.snapshot().size
    Thread.sleep(300)
    checkEqual(count, counter.frames.snapshot().size, "no handler runs after close returns")
    anchor.close()
    val e = expectThrows<ZegoException>("call after close") { viewer.stopPlayingStream("x") }
    checkEqual(ErrorCode.COMMON_ENGINE_NOT_CREATED, e.code, "code")
}

fun closeFromInsideAFrameHandler() {
    val closed = CountDownLatch(1)
    Env.engine().use { anchor ->
        val viewer = Env.engine()
        viewer.setCustomVideoRenderHandler(object : CustomVideoRenderHandler() {
            override fun onRemoteVideoFrame(streamId: String, planes: Array<ByteArray?>, param: VideoFrameParam) {
                viewer.close()
                closed.countDown()
            }
        })
        startStreaming(anchor, viewer)
        check(closed.await(15, TimeUnit.SECONDS)) { "the handler closed its engine" }
        checkEqual(0L, viewer.handle, "handle after close")
    }
}

fun logHandlerReceivesLines() {
    val lines = Collector<String>()
    ZegoExpress.setLogLevel(LogLevel.DEBUG)
    try {
        ZegoExpress.setLogHandler(object : ZegoExpress.LogHandler {
            override fun onLog(level: LogLevel, message: String) {
                lines.add("$level $message")
                throw RuntimeException("log handler failure")
            }
        })
        repeat(2) { expectThrows<ZegoException>("bad app sign") { Engine(Env.appId, Env.url, "not hex") } }
    } finally {
        ZegoExpress.setLogHandler(null)
        ZegoExpress.setLogLevel(LogLevel.WARN)
    }
    val message = ZegoExpress.errorMessage(ErrorCode.ENGINE_APP_SIGN_INCORRECT)
    check(lines.snapshot().count { it.contains(message) } >= 2) { "log lines: ${lines.snapshot()}" }
}

/** Frames pushed from Kotlin (a ByteArray through JNI, copied by the SDK) are what the player decodes. */
fun customCaptureFramesReachThePlayer() {
    val width = 320
    val height = 240
    val started = CountDownLatch(1)
    val lumas = Collector<Double>()
    Env.engine().use { anchor ->
        Env.engine().use { viewer ->
            anchor.setCustomVideoCaptureHandler(object : CustomVideoCaptureHandler() {
                override fun onStart(channel: PublishChannel) {
                    checkEqual(PublishChannel.MAIN, channel, "channel")
                    started.countDown()
                }
            })
            viewer.setCustomVideoRenderHandler(object : CustomVideoRenderHandler() {
                override fun onRemoteVideoFrame(streamId: String, planes: Array<ByteArray?>, param: VideoFrameParam) {
                    checkEqual(width, param.width, "width")
                    lumas.add(planes[0]!!.map { it.toInt() and 0xff }.average())
                }
            })
            anchor.setVideoConfig(VideoConfig(width, height, width, height, 30, 400, 1))
            anchor.setVideoSource(VideoSourceType.CUSTOM)
            startStreaming(anchor, viewer)
            check(started.await(15, TimeUnit.SECONDS)) { "custom capture started" }
            // I420: luma 200, neutral chroma.
            val frame = ByteArray(width * height * 3 / 2) { i -> if (i < width * height) 200.toByte() else 128.toByte() }
            val param = VideoFrameParam(format = VideoFrameFormat.I420, width = width, height = height)
            val pusher = Thread {
                try {
                    while (!Thread.currentThread().isInterrupted) {
                        anchor.sendCustomVideoCaptureFrame(frame, param)
                        Thread.sleep(33)
                    }
                } catch (stopped: InterruptedException) {
                }
            }
            pusher.start()
            try {
                val got = lumas.await("decoded custom frames") { it.size >= 5 }
                check(got.takeLast(3).all { Math.abs(it - 200) < 8 }) { "decoded luma is the pushed one: $got" }
            } finally {
                pusher.interrupt()
                pusher.join(5000)
            }
            val e = expectThrows<ZegoException>("short frame") { anchor.sendCustomVideoCaptureFrame(ByteArray(100), param) }
            checkEqual(ErrorCode.COMMON_INVALID_PARAMETER, e.code, "code")
        }
    }
}

fun seiReachesThePlayer() {
    val received = Collector<ByteArray>()
    Env.engine().use { anchor ->
        Env.engine().use { viewer ->
            val counter = FrameCounter()
            viewer.setCustomVideoRenderHandler(counter)
            viewer.setEventHandler(object : EventHandler() {
                override fun onPlayerRecvSEI(streamId: String, data: ByteArray) = received.add(data)
            })
            var e = expectThrows<ZegoException>("before publishing") { anchor.sendSEI(byteArrayOf(1)) }
            checkEqual(ErrorCode.PUBLISHER_NO_DATA, e.code, "code")
            startStreaming(anchor, viewer)
            counter.frames.await("3 frames") { it.size >= 3 }
            val sent = (0 until 5).map { i -> byteArrayOf(i.toByte(), 0, 0, 1, 0, 0, 3, -1) }.toMutableList()
            for (data in sent) {
                anchor.sendSEI(data)
                Thread.sleep(50)
            }
            anchor.setSEIConfig(SeiType.USER_UNREGISTER)
            val unregistered = ByteArray(16) { it.toByte() } + byteArrayOf(42)
            anchor.sendSEI(unregistered)
            sent.add(unregistered)
            val got = received.await("6 SEI messages") { it.size >= 6 }
            checkEqual(6, got.size, "each message once")
            for (i in 0 until 6) check(got[i].contentEquals(sent[i])) { "message $i unchanged" }
            e = expectThrows("empty") { anchor.sendSEI(ByteArray(0)) }
            checkEqual(ErrorCode.PUBLISHER_SEI_DATA_NULL, e.code, "code")
            e = expectThrows("too long") { anchor.sendSEI(ByteArray(4097)) }
            checkEqual(ErrorCode.PUBLISHER_SEI_DATA_TOO_LONG, e.code, "code")
            e = expectThrows("shorter than the UUID") { anchor.sendSEI(ByteArray(15)) }
            checkEqual(ErrorCode.COMMON_INVALID_PARAMETER, e.code, "code")
        }
    }
}

val TESTS: List<Pair<String, () -> Unit>> = listOf(
    "publishPlayAndCountFrames" to ::publishPlayAndCountFrames,
    "messagesAndStructsCrossJni" to ::messagesAndStructsCrossJni,
    "customCaptureFramesReachThePlayer" to ::customCaptureFramesReachThePlayer,
    "seiReachesThePlayer" to ::seiReachesThePlayer,
    "errorCodesSurfaceAsZegoException" to ::errorCodesSurfaceAsZegoException,
    "throwingHandlerIsReportedAndTheEngineKeepsWorking" to ::throwingHandlerIsReportedAndTheEngineKeepsWorking,
    "exceptionThrownIntoJniIsContained" to ::exceptionThrownIntoJniIsContained,
    "closeWhilePublishingAndPlaying" to ::closeWhilePublishingAndPlaying,
    "closeFromInsideAFrameHandler" to ::closeFromInsideAFrameHandler,
    "logHandlerReceivesLines" to ::logHandlerReceivesLines
)

fun main(args: Array<String>) {
    val selected = TESTS.filter { (name, _) -> args.isEmpty() || args.any { name.contains(it) } }
    var failed = 0
    for ((name, test) in selected) {
        var error: Throwable? = null
        val started = System.currentTimeMillis()
        val thread = Thread {
            try {
                test()
            } catch (t: Throwable) {
                error = t
            }
        }
        thread.isDaemon = true
        thread.start()
        thread.join(60000)
        if (thread.isAlive) {
            println("FAILED $name: timed out after 60 s")
            // A hung test cannot be stopped; end the run so it stays bounded.
            exitProcess(1)
        }
        val failure = error
        if (failure == null) {
            println("ok $name (${System.currentTimeMillis() - started} ms)")
        } else {
            failed++
            println("FAILED $name: $failure")
            failure.printStackTrace(System.out)
        }
    }
    println("${selected.size - failed} passed, $failed failed")
    exitProcess(if (failed == 0 && selected.isNotEmpty()) 0 else 1)
}
