using System;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Threading;

namespace Zego.Express.Tests
{
    public static class FlowTests
    {
        /// <summary>Log in, publish the synthetic source, play it in a second engine, count frames, stop, log out, dispose.</summary>
        [Test]
        public static void PublishPlayAndCountFrames()
        {
            string room = Server.Unique("room"), stream = Server.Unique("stream");
            var publisherStates = new Collector<PublisherState>();
            var playerStates = new Collector<PlayerState>();
            var roomStates = new Collector<RoomState>();
            var frames = new Collector<VideoFrameParam>();
            var added = new Collector<string>();
            using (var anchor = Server.NewEngine())
            using (var viewer = Server.NewEngine())
            {
                anchor.RoomStateUpdate += (s, e) => roomStates.Add(e.State);
                anchor.PublisherStateUpdate += (s, e) => publisherStates.Add(e.State);
                viewer.PlayerStateUpdate += (s, e) => playerStates.Add(e.State);
                viewer.RoomStreamUpdate += (s, e) =>
                {
                    if (e.UpdateType == UpdateType.Add) foreach (var info in e.StreamList) added.Add(info.StreamId);
                };
                viewer.CustomVideoRenderRemoteFrame += (s, e) =>
                {
                    Assert.Equal(stream, e.StreamId, "stream id of a frame");
                    Assert.Equal(3, e.Data.Count, "I420 planes");
                    Assert.Equal((int)(e.Param.Strides[0] * e.Param.Height), e.Data.Length(0), "luma plane size");
                    frames.Add(e.Param);
                };

                anchor.LoginRoom(room, new User { UserId = Server.Unique("anchor"), UserName = "Anchor" });
                roomStates.Wait(l => l.Contains(RoomState.Connected), "anchor connected");
                viewer.LoginRoom(room, new User { UserId = Server.Unique("viewer"), UserName = "Viewer" });
                anchor.StartPublishingStream(stream);
                publisherStates.Wait(l => l.Contains(PublisherState.Publishing), "publishing");
                added.Wait(l => l.Contains(stream), "the stream added to the viewer's room");
                viewer.StartPlayingStream(stream);
                playerStates.Wait(l => l.Contains(PlayerState.Playing), "playing");
                var got = frames.Wait(l => l.Count >= 10, "10 frames");
                Assert.Equal(640u, got[0].Width, "default width");
                Assert.Equal(360u, got[0].Height, "default height");
                Assert.True(got.Select(p => p.FrameNumber).SequenceEqual(got.Select(p => p.FrameNumber).OrderBy(n => n)), "frames in capture order");

                viewer.StopPlayingStream(stream);
                playerStates.Wait(l => l.Last() == PlayerState.NoPlay, "stopped playing");
                anchor.StopPublishingStream();
                publisherStates.Wait(l => l.Last() == PublisherState.NoPublish, "stopped publishing");
                viewer.LogoutRoom(room);
                anchor.LogoutRoom();
                roomStates.Wait(l => l.Last() == RoomState.Disconnected, "anchor logged out");
            }
        }

        [Test]
        public static void BroadcastMessagesAndUserUpdates()
        {
            string room = Server.Unique("room"), aliceId = Server.Unique("alice");
            var received = new Collector<string>();
            var results = new Collector<int>();
            var joined = new Collector<string>();
            using (var alice = Server.NewEngine())
            using (var bob = Server.NewEngine())
            {
                bob.ImRecvBroadcastMessage += (s, e) => { foreach (var m in e.MessageList) received.Add(m.Message); };
                bob.RoomUserUpdate += (s, e) => { foreach (var u in e.UserList) joined.Add(u.UserId); };
                alice.ImSendBroadcastMessageResult += (s, e) => results.Add(e.ErrorCode == 0 ? e.Seq : -1);
                bob.LoginRoom(room, new User { UserId = Server.Unique("bob"), UserName = "Bob" }, new RoomConfig { IsUserStatusNotify = true });
                alice.LoginRoom(room, new User { UserId = aliceId, UserName = "Alice" });
                joined.Wait(l => l.Contains(aliceId), "alice seen by bob");
                int seq = alice.SendBroadcastMessage(room, "héllo");
                Assert.Equal(seq, results.Wait(l => l.Count > 0, "send result")[0], "seq of the result");
                Assert.Equal("héllo", received.Wait(l => l.Count > 0, "message")[0], "received text");
            }
        }

        [Test]
        public static void VideoConfigRoundTrips()
        {
            using (var engine = Server.NewEngine())
            {
                var config = new VideoConfig
                {
                    CaptureWidth = 320, CaptureHeight = 240, EncodeWidth = 320, EncodeHeight = 240, Fps = 10, BitrateKbps = 300,
                    KeyframeIntervalS = 1,
                };
                engine.SetVideoConfig(config, PublishChannel.Aux);
                var back = engine.GetVideoConfig(PublishChannel.Aux);
                Assert.Equal(320u, back.EncodeWidth, "encode width");
                Assert.Equal(10u, back.Fps, "fps");
                Assert.Equal(1u, back.KeyframeIntervalS, "keyframe interval");
            }
        }

        /// <summary>Frames pushed from C# (a byte[] pinned for the call, copied by the SDK) are what the player decodes.</summary>
        [Test]
        public static void CustomCaptureFramesReachThePlayer()
        {
            const int width = 320, height = 240;
            var started = new ManualResetEvent(false);
            var lumas = new Collector<double>();
            using (var anchor = Server.NewEngine())
            using (var viewer = Server.NewEngine())
            {
                anchor.CustomVideoCaptureStart += (s, e) => started.Set();
                viewer.CustomVideoRenderRemoteFrame += (s, e) =>
                {
                    var luma = e.Data.Copy(0);
                    lumas.Add(luma.Average(b => (double)b));
                };
                anchor.SetVideoConfig(new VideoConfig
                {
                    CaptureWidth = width, CaptureHeight = height, EncodeWidth = width, EncodeHeight = height, Fps = 30,
                    BitrateKbps = 400, KeyframeIntervalS = 1,
                });
                anchor.SetVideoSource(VideoSourceType.Custom);
                CallbackTests.StartStreaming(anchor, viewer);
                Assert.True(started.WaitOne(15000), "custom capture started");
                // I420: luma 200, neutral chroma.
                var frame = new byte[width * height * 3 / 2];
                for (int i = 0; i < frame.Length; i++) frame[i] = (byte)(i < width * height ? 200 : 128);
                var param = new VideoFrameParam { Format = VideoFrameFormat.I420, Width = width, Height = height };
                var stop = new ManualResetEvent(false);
                var pusher = new Thread(() =>
                {
                    while (!stop.WaitOne(33)) anchor.SendCustomVideoCaptureFrame(frame, param);
                });
                pusher.Start();
                try
                {
                    var got = lumas.Wait(l => l.Count >= 5, "decoded custom frames");
                    Assert.True(got.Skip(got.Count - 3).All(l => Math.Abs(l - 200) < 8), "decoded luma is the pushed one: " + string.Join(", ", got));
                }
                finally
                {
                    stop.Set();
                    pusher.Join(5000);
                }
                var e2 = Assert.Throws<ZegoException>(() => anchor.SendCustomVideoCaptureFrame(new byte[100], param), "short frame");
                Assert.Equal((int)ErrorCode.CommonInvalidParameter, e2.Code, "code");
            }
        }
    }

    public static class ErrorTests
    {
        /// <summary>SendSei bytes arrive in PlayerRecvSei unchanged and in order; the limits are ZegoExceptions.</summary>
        [Test]
        public static void SeiReachesThePlayer()
        {
            string room = Server.Unique("room"), stream = Server.Unique("stream");
            var publisherStates = new Collector<PublisherState>();
            var frames = new Collector<ulong>();
            var sei = new Collector<byte[]>();
            using (var anchor = Server.NewEngine())
            using (var viewer = Server.NewEngine())
            {
                anchor.PublisherStateUpdate += (s, e) => publisherStates.Add(e.State);
                viewer.CustomVideoRenderRemoteFrame += (s, e) => frames.Add(e.Param.FrameNumber);
                viewer.PlayerRecvSei += (s, e) =>
                {
                    Assert.Equal(stream, e.StreamId, "stream id of an SEI");
                    sei.Add(e.Data);
                };
                anchor.LoginRoom(room, new User { UserId = Server.Unique("anchor"), UserName = "Anchor" });
                viewer.LoginRoom(room, new User { UserId = Server.Unique("viewer"), UserName = "Viewer" });
                var e1 = Assert.Throws<ZegoException>(() => anchor.SendSei(new byte[] { 1 }), "before publishing");
                Assert.Equal((int)ErrorCode.PublisherNoData, e1.Code, "code");
                anchor.StartPublishingStream(stream);
                publisherStates.Wait(l => l.Contains(PublisherState.Publishing), "publishing");
                viewer.StartPlayingStream(stream);
                frames.Wait(l => l.Count >= 3, "3 frames");

                var sent = Enumerable.Range(0, 5)
                    .Select(i => new byte[] { (byte)i, 0, 0, 1, 0, 0, 3, 0xFF })
                    .ToList();
                foreach (var data in sent)
                {
                    anchor.SendSei(data);
                    Thread.Sleep(50);
                }
                anchor.SetSeiConfig(SeiType.UserUnregister);
                var unregistered = Enumerable.Range(0, 16).Select(i => (byte)i).Concat(new byte[] { 42 }).ToArray();
                anchor.SendSei(unregistered);
                sent.Add(unregistered);
                var got = sei.Wait(l => l.Count >= 6, "6 SEI messages");
                Assert.Equal(6, got.Count, "each message once");
                for (int i = 0; i < 6; i++) Assert.True(got[i].SequenceEqual(sent[i]), "message " + i + " unchanged");

                e1 = Assert.Throws<ZegoException>(() => anchor.SendSei(new byte[0]), "empty");
                Assert.Equal((int)ErrorCode.PublisherSeiDataNull, e1.Code, "code");
                e1 = Assert.Throws<ZegoException>(() => anchor.SendSei(new byte[4097]), "too long");
                Assert.Equal((int)ErrorCode.PublisherSeiDataTooLong, e1.Code, "code");
                e1 = Assert.Throws<ZegoException>(() => anchor.SendSei(new byte[15]), "shorter than the UUID");
                Assert.Equal((int)ErrorCode.CommonInvalidParameter, e1.Code, "code");
            }
        }

        [Test]
        public static void ErrorCodesSurfaceAsZegoException()
        {
            var e = Assert.Throws<ZegoException>(() => new Engine(0, Server.Url, Server.AppSign), "app id 0");
            Assert.Equal((int)ErrorCode.EngineAppIdIncorrect, e.Code, "code");
            Assert.Equal(ErrorCode.EngineAppIdIncorrect, e.KnownCode.Value, "known code");
            Assert.Equal("zego_engine_create", e.Function, "function");
            Assert.True(e.Message.Contains(ZegoExpress.ErrorMessage(e.Code)), "message: " + e.Message);
            e = Assert.Throws<ZegoException>(() => new Engine(Server.AppId, "not a url", Server.AppSign), "bad server");
            Assert.Equal((int)ErrorCode.EngineServerAddressInvalid, e.Code, "code");

            using (var engine = Server.NewEngine())
            {
                e = Assert.Throws<ZegoException>(() => engine.LoginRoom(Server.Unique("r"), new User { UserId = "", UserName = "N" }), "empty user id");
                Assert.Equal((int)ErrorCode.RoomUserIdNull, e.Code, "code");
                e = Assert.Throws<ZegoException>(() => engine.StartPublishingStream(Server.Unique("s")), "publish before login");
                Assert.Equal((int)ErrorCode.CommonNotLoggedIn, e.Code, "code");
                e = Assert.Throws<ZegoException>(() => engine.SetVideoConfig(new VideoConfig { EncodeWidth = 641, EncodeHeight = 360, Fps = 15, BitrateKbps = 600 }), "odd width");
                Assert.Equal((int)ErrorCode.CommonInvalidParameter, e.Code, "code");
                engine.SetRoomRetryTime(5);
                e = Assert.Throws<ZegoException>(() => engine.SetRoomRetryTime(0), "retry time 0");
                Assert.Equal((int)ErrorCode.CommonInvalidParameter, e.Code, "code");
                e = Assert.Throws<ZegoException>(() => engine.StartPreview((PublishChannel)7), "bad channel");
                Assert.Equal((int)ErrorCode.CommonInvalidParameter, e.Code, "code");
                e = Assert.Throws<ZegoException>(() => engine.LoginRoom("r", new User { UserId = "nul\0inside", UserName = "N" }), "NUL in a string");
                Assert.Equal((int)ErrorCode.CommonInvalidParameter, e.Code, "code");
                engine.Dispose();
                Assert.Equal(0ul, engine.Handle, "handle after dispose");
                e = Assert.Throws<ZegoException>(() => engine.StartPreview(), "call after dispose");
                Assert.Equal((int)ErrorCode.CommonEngineNotCreated, e.Code, "code");
                engine.Dispose();
            }
            Assert.Equal("Unknown error code.", ZegoExpress.ErrorMessage(42), "unknown code");
            Assert.True(new ZegoException(42).KnownCode == null, "unknown codes have no name");
            Assert.Equal(2, ZegoExpress.Version.Count(c => c == '.'), "version x.y.z");
        }
    }

    public static class CallbackTests
    {
        /// <summary>A throwing handler is reported and dropped; the next handler and the engine keep working.</summary>
        [Test]
        public static void ThrowingHandlerIsReportedAndTheEngineKeepsWorking()
        {
            var reported = new Collector<string>();
            var states = new Collector<RoomState>();
            int callbackThread = 0;
            EventHandler<CallbackExceptionEventArgs> report = (s, e) => reported.Add(e.Event + ": " + e.Exception.Message);
            ZegoExpress.CallbackException += report;
            try
            {
                using (var engine = Server.NewEngine())
                {
                    engine.RoomStateUpdate += (s, e) =>
                    {
                        callbackThread = Thread.CurrentThread.ManagedThreadId;
                        throw new InvalidOperationException("boom from a handler");
                    };
                    engine.RoomStateUpdate += (s, e) => states.Add(e.State);
                    var room = Server.Unique("room");
                    engine.LoginRoom(room, new User { UserId = Server.Unique("u"), UserName = "U" });
                    states.Wait(l => l.Contains(RoomState.Connected), "connected");
                    Assert.True(reported.Wait(l => l.Count > 0, "a report")[0].Contains("boom from a handler"), "report text");
                    Assert.True(callbackThread != Thread.CurrentThread.ManagedThreadId, "handlers run on the callback thread");
                    engine.LogoutRoom(room);
                    states.Wait(l => l.Last() == RoomState.Disconnected, "logged out after the exception");
                }
            }
            finally
            {
                ZegoExpress.CallbackException -= report;
            }
        }

        /// <summary>Frame planes are readable during the event only.</summary>
        [Test]
        public static void FramePlanesAreValidOnlyDuringTheEvent()
        {
            var kept = new Collector<VideoPlanes>();
            var copies = new Collector<int>();
            using (var anchor = Server.NewEngine())
            using (var viewer = Server.NewEngine())
            {
                viewer.CustomVideoRenderRemoteFrame += (s, e) =>
                {
                    copies.Add(e.Data.Copy(0).Length);
                    kept.Add(e.Data);
                };
                StartStreaming(anchor, viewer);
                // The second frame's event starts only after the first one's returned (one callback thread), so
                // the first frame's planes are past their event then.
                var planes = kept.Wait(l => l.Count > 1, "two frames")[0];
                Assert.True(copies.Snapshot()[0] > 0, "a copy made during the event has the data");
                Assert.Throws<ObjectDisposedException>(() => planes.Copy(0), "reading planes after the event");
            }
        }

        [Test]
        public static void UnsubscribedHandlersStopReceiving()
        {
            var frames = new Collector<ulong>();
            EventHandler<CustomVideoRenderRemoteFrameEventArgs> handler = (s, e) => frames.Add(e.Param.FrameNumber);
            using (var anchor = Server.NewEngine())
            using (var viewer = Server.NewEngine())
            {
                viewer.CustomVideoRenderRemoteFrame += handler;
                StartStreaming(anchor, viewer);
                frames.Wait(l => l.Count >= 3, "frames");
                viewer.CustomVideoRenderRemoteFrame -= handler;
                Thread.Sleep(200);
                int count = frames.Snapshot().Count;
                Thread.Sleep(500);
                Assert.Equal(count, frames.Snapshot().Count, "frames after unsubscribing");
            }
        }

        /// <summary>Every P/Invoke declaration resolves in the loaded library.</summary>
        [Test]
        public static void EveryNativeFunctionResolves()
        {
            var methods = typeof(Engine).Assembly.GetType("Zego.Express.Native.NativeMethods")
                .GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
                .Where(m => m.GetCustomAttributes(typeof(DllImportAttribute), false).Length > 0)
                .ToList();
            Assert.True(methods.Count > 30, "NativeMethods declares the C API (" + methods.Count + ")");
            foreach (var method in methods) Marshal.Prelink(method);
        }

        internal static void StartStreaming(Engine anchor, Engine viewer)
        {
            string room = Server.Unique("room"), stream = Server.Unique("stream");
            anchor.LoginRoom(room, new User { UserId = Server.Unique("a"), UserName = "A" });
            viewer.LoginRoom(room, new User { UserId = Server.Unique("v"), UserName = "V" });
            anchor.StartPublishingStream(stream);
            viewer.StartPlayingStream(stream);
        }
    }

    public static class DisposalTests
    {
        [Test]
        public static void DisposeWhilePublishingAndPlaying()
        {
            var frames = new Collector<ulong>();
            var anchor = Server.NewEngine();
            var viewer = Server.NewEngine();
            viewer.CustomVideoRenderRemoteFrame += (s, e) => frames.Add(e.Param.FrameNumber);
            CallbackTests.StartStreaming(anchor, viewer);
            frames.Wait(l => l.Count >= 3, "frames");
            viewer.Dispose();
            int count = frames.Snapshot().Count;
            Thread.Sleep(300);
            Assert.Equal(count, frames.Snapshot().Count, "no handler runs after Dispose returns");
            anchor.Dispose();
            var error = Assert.Throws<ZegoException>(() => viewer.StopPlayingStream("x"), "call after dispose");
            Assert.Equal((int)ErrorCode.CommonEngineNotCreated, error.Code, "code");
        }

        [Test]
        public static void DisposeFromInsideAFrameHandler()
        {
            var disposed = new ManualResetEvent(false);
            using (var anchor = Server.NewEngine())
            {
                var viewer = Server.NewEngine();
                viewer.CustomVideoRenderRemoteFrame += (s, e) =>
                {
                    viewer.Dispose();
                    disposed.Set();
                };
                CallbackTests.StartStreaming(anchor, viewer);
                Assert.True(disposed.WaitOne(15000), "the handler disposed its engine");
                Assert.Equal(0ul, viewer.Handle, "handle after dispose");
            }
        }

        /// <summary>An engine nobody disposes is destroyed by its finalizer without crashing.</summary>
        [Test]
        public static void FinalizerDestroysAnUndisposedEngine()
        {
            ulong handle = CreateAndDrop();
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            Assert.True(handle != 0, "the engine had a handle");
            // Destroyed by the finalizer: the C API no longer knows the handle.
            Assert.Equal((int)ErrorCode.CommonEngineNotCreated, Native.NativeMethods.zego_engine_destroy(handle), "handle after finalization");
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        static ulong CreateAndDrop()
        {
            var engine = Server.NewEngine();
            engine.RoomStateUpdate += (s, e) => { };
            return engine.Handle;
        }
    }
}
