//! What the relay's benchmarks share: an H.264 clip encoded once with openh264 and looped, and str0m peers (a
//! publisher of the clip, players that hand what they get to the benchmark) that talk to a relay through their own
//! loopback sockets, all on the calling thread. Much cheaper than full peer connections, so what a benchmark
//! measures is the relay.

#![allow(dead_code)]

pub mod fanout;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, IntraFramePeriod};
use openh264::formats::YUVBuffer;
use openh264::OpenH264API;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpPacket;
use str0m::{change::SdpAnswer, change::SdpOffer, Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use zego_relay::{Relay, RelayConfig, SessionId, StreamKey};

/// Logs (warnings, unless `RUST_LOG` says otherwise) to stderr: stdout is the benchmark's JSON.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// A relay on loopback with `io_threads` I/O threads (0: one per core).
pub async fn start_relay(io_threads: usize) -> Relay {
    Relay::start(RelayConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        announce: None,
        io_threads,
    })
    .await
    .expect("relay starts")
}

/// The benchmark's stream `stream_id` (of app 1).
pub fn stream_key(stream_id: &str) -> StreamKey {
    StreamKey {
        app_id: 1,
        stream_id: stream_id.into(),
    }
}

/// Polls every 20 ms until `done` holds or `timeout` has passed.
pub async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && !done() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value after `flag` on the command line; panics with the flag's usage when it is missing or no number.
pub fn flag_value<T: FromStr>(args: &mut impl Iterator<Item = String>, flag: &str) -> T {
    args.next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{flag} N"))
}

/// The comma-separated numbers after `flag` (`--players 1,10,100`).
pub fn flag_list(args: &mut impl Iterator<Item = String>, flag: &str) -> Vec<usize> {
    args.next()
        .unwrap_or_else(|| panic!("{flag} N,N,..."))
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{flag}: {n} is not a number"))
        })
        .collect()
}

/// CPU time of the calling thread: the publisher and all players run on this one.
pub fn this_thread_cpu() -> Duration {
    let nanos = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

/// A clip of moving diagonal stripes over noise: enough detail for the encoder to spend its bitrate. Its first
/// frame is its only IDR picture, so one comes each time the clip loops, and whenever the relay asks for one.
#[derive(Clone, Copy)]
pub struct ClipSpec {
    pub width: usize,
    pub height: usize,
    pub fps: u32,
    pub bitrate_bps: u32,
    pub frames: usize,
    /// The width of a stripe, in pixels along a row.
    pub stripe_width: usize,
    /// How far the stripes move from one frame to the next, in pixels.
    pub stripe_step: usize,
    /// How many levels of noise lie over the stripes.
    pub noise_levels: u32,
}

/// The encoded clip: one Annex-B access unit a frame.
pub struct Clip {
    pub spec: ClipSpec,
    pub frames: Vec<Vec<u8>>,
}

impl ClipSpec {
    /// Encodes the clip off the async threads, saying so on stderr.
    pub async fn encode(self) -> Arc<Clip> {
        eprintln!(
            "encoding {} frames of {}x{} at {} kbps ...",
            self.frames,
            self.width,
            self.height,
            self.bitrate_bps / 1000
        );
        let frames = tokio::task::spawn_blocking(move || self.encode_frames())
            .await
            .expect("encoder");
        Arc::new(Clip { spec: self, frames })
    }

    fn encode_frames(self) -> Vec<Vec<u8>> {
        let ClipSpec { width, height, .. } = self;
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(self.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(self.fps as f32))
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(self.frames as u32));
        let mut encoder =
            Encoder::with_api_config(OpenH264API::from_source(), config).expect("openh264");
        let mut yuv = vec![0u8; width * height * 3 / 2];
        (0..self.frames)
            .map(|i| {
                let (luma, chroma) = yuv.split_at_mut(width * height);
                let mut seed = (i as u32).wrapping_mul(2_654_435_761);
                for (p, px) in luma.iter_mut().enumerate() {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    let (x, y) = (p % width, p / width);
                    let stripe = ((x + y + i * self.stripe_step) / self.stripe_width) % 2;
                    *px = (stripe * 120 + (seed % self.noise_levels) as usize) as u8;
                }
                chroma.fill(128);
                if i == 0 {
                    encoder.force_intra_frame();
                }
                let buffer = YUVBuffer::from_vec(yuv.clone(), width, height);
                encoder.encode(&buffer).expect("encode").to_vec()
            })
            .collect()
    }
}

impl Clip {
    /// How long the clip plays, once through.
    pub fn seconds(&self) -> f64 {
        self.spec.frames as f64 / f64::from(self.spec.fps)
    }

    /// The stream's bitrate as encoded, in kb/s.
    pub fn kbps(&self) -> f64 {
        let bits: usize = self.frames.iter().map(|f| f.len() * 8).sum();
        bits as f64 / self.seconds() / 1000.0
    }
}

/// What a player does with the media it gets. Called on the peers' thread.
pub trait Reception: Send + 'static {
    /// A datagram read once the player is connected, before str0m sees it: true when it is taken here, and str0m
    /// never gets it.
    fn take_datagram(&mut self, _datagram: &[u8]) -> bool {
        false
    }

    /// A media packet from str0m. `kernel_stamp`: when the kernel received the datagram last read (since the epoch;
    /// with `SocketOptions::kernel_stamps` only).
    fn rtp_packet(&mut self, packet: &RtpPacket, kernel_stamp: Option<Duration>);
}

/// A publisher's: it gets no media.
impl Reception for () {
    fn rtp_packet(&mut self, _: &RtpPacket, _: Option<Duration>) {}
}

/// How the peers' sockets are set up.
#[derive(Default)]
pub struct SocketOptions {
    /// The receive buffer each socket asks for (the kernel caps it at its maximum); `None`: the system's.
    pub recv_buffer: Option<usize>,
    /// The kernel stamps every datagram a socket receives (`SO_TIMESTAMPNS`); the players get the stamps.
    pub kernel_stamps: bool,
}

/// Makes str0m peers that talk to a relay through their own loopback sockets.
pub struct PeerFactory {
    crypto: Arc<CryptoProvider>,
    cert: DtlsCert,
    sockets: SocketOptions,
}

impl PeerFactory {
    /// Peers with one DTLS certificate.
    pub fn new(sockets: SocketOptions) -> PeerFactory {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .expect("certificate");
        PeerFactory {
            crypto,
            cert,
            sockets,
        }
    }

    fn rtc(&self, rtp_mode: bool) -> Rtc {
        let mut config = Rtc::builder()
            .set_rtp_mode(rtp_mode)
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.cert.clone())
            .clear_codecs();
        config
            .codec_config()
            .add_h264(108.into(), Some(109.into()), true, 0x42e01f);
        config.build(Instant::now())
    }

    async fn connect(
        &self,
        relay: &Relay,
        mut rtc: Rtc,
        direction: Direction,
        key: StreamKey,
        publish: bool,
    ) -> (Rtc, UdpSocket, Mid, SessionId) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
        if let Some(bytes) = self.sockets.recv_buffer {
            let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(bytes);
        }
        if self.sockets.kernel_stamps {
            enable_kernel_timestamps(&socket);
        }
        let local = socket.local_addr().unwrap();
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Video, direction, None, None, None);
        let (offer, pending) = change.apply().expect("an offer");
        let offer = offer.to_sdp_string();
        let (session, answer) = if publish {
            relay.publish(key, &offer).await
        } else {
            relay.play(key, &offer).await
        }
        .expect("the relay answers");
        let answer = SdpAnswer::from_sdp_string(&answer).expect("an SDP answer");
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
        (rtc, socket, mid, session)
    }

    /// A publisher of `key` on `relay` that sends the clip in a loop until the flag returned is set.
    pub async fn publisher(
        &self,
        relay: &Relay,
        key: StreamKey,
        clip: Arc<Clip>,
    ) -> Arc<AtomicBool> {
        let (rtc, socket, mid, _) = self
            .connect(relay, self.rtc(false), Direction::SendOnly, key, true)
            .await;
        let stop = Arc::new(AtomicBool::new(false));
        let role = Role::<()>::Publisher { mid, clip };
        let kernel_stamps = self.sockets.kernel_stamps;
        tokio::spawn(drive(rtc, socket, stop.clone(), role, kernel_stamps));
        stop
    }

    /// A player of another server's stream, through a socket of its own on `ip`: answers the server's SDP `offer`
    /// and runs until `stop`, handing what it gets to `reception`. Returns the SDP answer.
    pub async fn answering_player<R: Reception>(
        &self,
        ip: std::net::IpAddr,
        offer: &str,
        stop: Arc<AtomicBool>,
        reception: R,
    ) -> String {
        let socket = UdpSocket::bind((ip, 0)).await.expect("socket");
        if let Some(bytes) = self.sockets.recv_buffer {
            let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(bytes);
        }
        if self.sockets.kernel_stamps {
            enable_kernel_timestamps(&socket);
        }
        let mut rtc = self.rtc(true);
        rtc.add_local_candidate(Candidate::host(socket.local_addr().unwrap(), "udp").unwrap());
        let offer = SdpOffer::from_sdp_string(offer).expect("an SDP offer");
        let answer = rtc.sdp_api().accept_offer(offer).expect("offer accepted");
        let role = Role::Player(reception);
        tokio::spawn(drive(rtc, socket, stop, role, self.sockets.kernel_stamps));
        answer.to_sdp_string()
    }

    /// A player of `key` on `relay` until `stop`, handing what it gets to `reception`. Returns its session.
    pub async fn player<R: Reception>(
        &self,
        relay: &Relay,
        key: StreamKey,
        stop: Arc<AtomicBool>,
        reception: R,
    ) -> SessionId {
        let (rtc, socket, _, session) = self
            .connect(relay, self.rtc(true), Direction::RecvOnly, key, false)
            .await;
        let role = Role::Player(reception);
        tokio::spawn(drive(rtc, socket, stop, role, self.sockets.kernel_stamps));
        session
    }
}

enum Role<R> {
    Publisher { mid: Mid, clip: Arc<Clip> },
    Player(R),
}

/// The run loop of one peer: drain str0m, then wait for a datagram, the next timeout, or the next frame.
async fn drive<R: Reception>(
    mut rtc: Rtc,
    socket: UdpSocket,
    stop: Arc<AtomicBool>,
    mut role: Role<R>,
    kernel_stamps: bool,
) {
    let local: SocketAddr = socket.local_addr().unwrap();
    let mut buf = vec![0u8; 2048];
    let mut connected = false;
    let mut frame: u64 = 0;
    let mut clip_index = 0usize;
    // The kernel's receive time of the datagram last handed to str0m.
    let mut kernel_stamp: Option<Duration> = None;
    let start = tokio::time::Instant::now();
    // Players send no frames.
    let (frame_interval, frame_ticks) = match &role {
        Role::Publisher { clip, .. } => (
            Duration::from_secs(1) / clip.spec.fps,
            u64::from(90_000 / clip.spec.fps),
        ),
        Role::Player(_) => (Duration::ZERO, 0),
    };
    loop {
        let timeout = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    let _ = socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(event)) => match event {
                    Event::Connected => connected = true,
                    Event::RtpPacket(packet) => {
                        if let Role::Player(reception) = &mut role {
                            reception.rtp_packet(&packet, kernel_stamp);
                        }
                    }
                    // The relay asks for a keyframe for a new player: restart the clip at its IDR picture.
                    Event::KeyframeRequest(_) => clip_index = 0,
                    _ => {}
                },
                Err(e) => {
                    eprintln!("peer failed: {e}");
                    return;
                }
            }
        };
        if stop.load(Ordering::Relaxed) || !rtc.is_alive() {
            return;
        }
        let next_frame = start + frame_interval * frame as u32;
        let publishing = matches!(role, Role::Publisher { .. }) && connected;
        let wake = if publishing {
            tokio::time::Instant::from_std(timeout).min(next_frame)
        } else {
            tokio::time::Instant::from_std(timeout)
        };
        let input_time;
        tokio::select! {
            received = receive(&socket, &mut buf, kernel_stamps) => {
                let Ok((len, source, stamp)) = received else { return };
                if let (Role::Player(reception), true) = (&mut role, connected) {
                    if reception.take_datagram(&buf[..len]) {
                        continue;
                    }
                }
                kernel_stamp = stamp;
                input_time = Instant::now();
                let Ok(contents) = buf[..len].try_into() else { continue };
                let input = Input::Receive(input_time, Receive { proto: Protocol::Udp, source, destination: local, contents });
                if rtc.handle_input(input).is_err() {
                    return;
                }
                continue;
            }
            _ = tokio::time::sleep_until(wake) => { input_time = Instant::now(); }
        }
        if let (Role::Publisher { mid, clip }, true) = (&role, publishing) {
            if tokio::time::Instant::now() >= next_frame {
                let Some(writer) = rtc.writer(*mid) else {
                    return;
                };
                let Some(pt) = writer
                    .payload_params()
                    .find(|p| p.spec().codec == Codec::H264)
                    .map(|p| p.pt())
                else {
                    return;
                };
                let media_time = MediaTime::new(frame * frame_ticks, Frequency::NINETY_KHZ);
                let data = clip.frames[clip_index].clone();
                clip_index = (clip_index + 1) % clip.frames.len();
                frame += 1;
                if writer.write(pt, input_time, media_time, data).is_err() {
                    return;
                }
                continue;
            }
        }
        if rtc.handle_input(Input::Timeout(input_time)).is_err() {
            return;
        }
    }
}

/// One datagram and its source, with the kernel's receive time when `stamped` (on Linux).
async fn receive(
    socket: &UdpSocket,
    buf: &mut [u8],
    stamped: bool,
) -> std::io::Result<(usize, SocketAddr, Option<Duration>)> {
    #[cfg(target_os = "linux")]
    if stamped {
        return recv_stamped(socket, buf).await;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = stamped;
    let (len, source) = socket.recv_from(buf).await?;
    Ok((len, source, None))
}

/// Asks the kernel to stamp every datagram the socket receives.
#[cfg(target_os = "linux")]
fn enable_kernel_timestamps(socket: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and an option value of the size given.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result != 0 {
        eprintln!(
            "SO_TIMESTAMPNS: {}; the players get no kernel stamps",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn enable_kernel_timestamps(_: &UdpSocket) {}

/// One datagram, its source, and the kernel's receive time (since the epoch) when there is one.
#[cfg(target_os = "linux")]
async fn recv_stamped(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr, Option<Duration>)> {
    use std::os::fd::AsRawFd;
    let fd = socket.as_raw_fd();
    socket
        .async_io(tokio::io::Interest::READABLE, || {
            // SAFETY: every pointer in the message header points into a live local of the size given; the kernel
            // writes no more than those sizes, and the control messages are read within msg_controllen.
            unsafe {
                let mut addr: libc::sockaddr_storage = std::mem::zeroed();
                let mut iov = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                };
                let mut control = [0u64; 16];
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
                msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                msg.msg_iov = &mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = control.as_mut_ptr().cast();
                msg.msg_controllen = std::mem::size_of_val(&control) as _;
                let n = libc::recvmsg(fd, &mut msg, 0);
                if n < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let mut stamp = None;
                let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
                while !cmsg.is_null() {
                    if (*cmsg).cmsg_level == libc::SOL_SOCKET
                        && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                    {
                        let ts: libc::timespec =
                            std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                        stamp = Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                    }
                    cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
                }
                if i32::from(addr.ss_family) != libc::AF_INET {
                    return Err(std::io::Error::other("not an IPv4 datagram"));
                }
                let sin: libc::sockaddr_in =
                    std::ptr::read_unaligned((&addr as *const libc::sockaddr_storage).cast());
                let source = SocketAddr::from((
                    u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                    u16::from_be(sin.sin_port),
                ));
                Ok((n as usize, source, stamp))
            }
        })
        .await
}
