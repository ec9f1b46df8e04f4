// Quickstart: an anchor publishes the synthetic camera and microphone, a viewer in the same room plays it and counts
// decoded frames; then both stop, log out and are disposed.
//
//   mcs -unsafe -out:quickstart.exe examples/csharp/Quickstart.cs bindings/csharp/src/*.cs
//   LD_LIBRARY_PATH=target/release mono quickstart.exe [ws://127.0.0.1:9180/ws] [frames]
//
// The server URL may also come from $ZEGO_SERVER_URL, the app from $ZEGO_APP_ID / $ZEGO_APP_SIGN (default: the
// server's development app). Exits 0 on success, 1 naming the step that failed.

using System;
using System.Diagnostics;
using System.Threading;
using Zego.Express;

public static class Quickstart
{
    const int StepTimeoutMs = 10000;

    static void Wait(ManualResetEvent step, string name)
    {
        if (!step.WaitOne(StepTimeoutMs)) throw new TimeoutException("timed out waiting for: " + name);
    }

    public static int Main(string[] args)
    {
        string server = args.Length > 0 ? args[0] : (Environment.GetEnvironmentVariable("ZEGO_SERVER_URL") ?? "ws://127.0.0.1:9180/ws");
        int wanted = args.Length > 1 ? int.Parse(args[1]) : 30;
        uint appId = uint.Parse(Environment.GetEnvironmentVariable("ZEGO_APP_ID") ?? "1234567890");
        string appSign = Environment.GetEnvironmentVariable("ZEGO_APP_SIGN") ?? "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        string suffix = Guid.NewGuid().ToString("N").Substring(0, 8);
        string room = "quickstart-" + suffix, stream = "quickstart-stream-" + suffix;
        Console.WriteLine("zego_express " + ZegoExpress.Version + ", server " + server);

        var publishing = new ManualResetEvent(false);
        var stoppedPublishing = new ManualResetEvent(false);
        var playing = new ManualResetEvent(false);
        var stoppedPlaying = new ManualResetEvent(false);
        var enough = new ManualResetEvent(false);
        int frames = 0;
        long firstFrameMs = -1;
        var clock = new Stopwatch();

        try
        {
            using (var anchor = new Engine(appId, server, appSign))
            using (var viewer = new Engine(appId, server, appSign))
            {
                anchor.PublisherStateUpdate += (sender, e) =>
                {
                    Console.WriteLine("anchor: publisher " + e.StreamId + " " + e.State + " code=" + e.ErrorCode);
                    if (e.State == PublisherState.Publishing) publishing.Set();
                    if (e.State == PublisherState.NoPublish) stoppedPublishing.Set();
                };
                viewer.PlayerStateUpdate += (sender, e) =>
                {
                    Console.WriteLine("viewer: player " + e.StreamId + " " + e.State + " code=" + e.ErrorCode);
                    if (e.State == PlayerState.Playing) playing.Set();
                    if (e.State == PlayerState.NoPlay) stoppedPlaying.Set();
                };
                viewer.CustomVideoRenderRemoteFrame += (sender, e) =>
                {
                    // e.Data (the planes) is valid only during this handler; Copy() what you keep.
                    if (Interlocked.Increment(ref frames) == 1) firstFrameMs = clock.ElapsedMilliseconds;
                    if (frames == wanted) enough.Set();
                };

                anchor.LoginRoom(room, new User { UserId = "anchor-" + suffix, UserName = "Anchor" });
                viewer.LoginRoom(room, new User { UserId = "viewer-" + suffix, UserName = "Viewer" });
                anchor.StartPublishingStream(stream);
                Wait(publishing, "publishing");
                clock.Start();
                viewer.StartPlayingStream(stream);
                Wait(playing, "playing");
                Wait(enough, wanted + " frames");
                Console.WriteLine("first frame " + firstFrameMs + " ms after StartPlayingStream");
                viewer.StopPlayingStream(stream);
                Wait(stoppedPlaying, "stopped playing");
                anchor.StopPublishingStream();
                Wait(stoppedPublishing, "stopped publishing");
                viewer.LogoutRoom(room);
                anchor.LogoutRoom(room);
            }
        }
        catch (Exception e)
        {
            if (!(e is ZegoException) && !(e is TimeoutException)) throw;
            Console.Error.WriteLine("quickstart failed: " + e.Message);
            return 1;
        }
        Console.WriteLine("ok: " + frames + " frames decoded, both engines disposed");
        return 0;
    }
}
