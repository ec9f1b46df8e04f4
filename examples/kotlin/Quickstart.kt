// Quickstart: an anchor publishes the synthetic camera and microphone, a viewer in the same room plays it and counts
// decoded frames; then both stop, log out and are closed.
//
//   cargo build --release --features jni
//   kotlinc examples/kotlin/Quickstart.kt bindings/kotlin/src/main/kotlin -include-runtime -d quickstart.jar
//   java -Djava.library.path=target/release -cp quickstart.jar QuickstartKt [ws://127.0.0.1:9180/ws] [frames]
//
// The server URL may also come from $ZEGO_SERVER_URL, the app from $ZEGO_APP_ID / $ZEGO_APP_SIGN (default: the
// server's development app). Exits 0 on success, 1 naming the step that failed.

import java.util.UUID
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.system.exitProcess
import zego.express.*

private fun CountDownLatch.waitFor(step: String) {
    if (!await(10, TimeUnit.SECONDS)) throw IllegalStateException("timed out waiting for: $step")
}

fun main(args: Array<String>) {
    val server = args.getOrNull(0) ?: System.getenv("ZEGO_SERVER_URL") ?: "ws://127.0.0.1:9180/ws"
    val wanted = args.getOrNull(1)?.toInt() ?: 30
    val appId = (System.getenv("ZEGO_APP_ID") ?: "1234567890").toLong()
    val appSign = System.getenv("ZEGO_APP_SIGN") ?: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    val suffix = UUID.randomUUID().toString().substring(0, 8)
    val room = "quickstart-$suffix"
    val stream = "quickstart-stream-$suffix"
    println("zego_express ${ZegoExpress.version}, server $server")

    val publishing = CountDownLatch(1)
    val stoppedPublishing = CountDownLatch(1)
    val playing = CountDownLatch(1)
    val stoppedPlaying = CountDownLatch(1)
    val enough = CountDownLatch(1)
    val frames = AtomicInteger()
    var started = 0L
    var firstFrameMs = -1L

    try {
        Engine(appId, server, appSign).use { anchor ->
            Engine(appId, server, appSign).use { viewer ->
                anchor.setEventHandler(object : EventHandler() {
                    override fun onPublisherStateUpdate(streamId: String, state: PublisherState, errorCode: Int, extendedData: String) {
                        println("anchor: publisher $streamId $state code=$errorCode")
                        if (state == PublisherState.PUBLISHING) publishing.countDown()
                        if (state == PublisherState.NO_PUBLISH) stoppedPublishing.countDown()
                    }
                })
                viewer.setEventHandler(object : EventHandler() {
                    override fun onPlayerStateUpdate(streamId: String, state: PlayerState, errorCode: Int, extendedData: String) {
                        println("viewer: player $streamId $state code=$errorCode")
                        if (state == PlayerState.PLAYING) playing.countDown()
                        if (state == PlayerState.NO_PLAY) stoppedPlaying.countDown()
                    }
                })
                viewer.setCustomVideoRenderHandler(object : CustomVideoRenderHandler() {
                    override fun onRemoteVideoFrame(streamId: String, planes: Array<ByteArray?>, param: VideoFrameParam) {
                        val count = frames.incrementAndGet()
                        if (count == 1) firstFrameMs = (System.nanoTime() - started) / 1_000_000
                        if (count == wanted) enough.countDown()
                    }
                })

                anchor.loginRoom(room, User("anchor-$suffix", "Anchor"))
                viewer.loginRoom(room, User("viewer-$suffix", "Viewer"))
                anchor.startPublishingStream(stream)
                publishing.waitFor("publishing")
                started = System.nanoTime()
                viewer.startPlayingStream(stream)
                playing.waitFor("playing")
                enough.waitFor("$wanted frames")
                println("first frame $firstFrameMs ms after startPlayingStream")
                viewer.stopPlayingStream(stream)
                stoppedPlaying.waitFor("stopped playing")
                anchor.stopPublishingStream()
                stoppedPublishing.waitFor("stopped publishing")
                viewer.logoutRoom(room)
                anchor.logoutRoom(room)
            }
        }
    } catch (e: ZegoException) {
        System.err.println("quickstart failed: ${e.message}")
        exitProcess(1)
    } catch (e: IllegalStateException) {
        System.err.println("quickstart failed: ${e.message}")
        exitProcess(1)
    }
    println("ok: ${frames.get()} frames decoded, both engines closed")
    exitProcess(0)
}
