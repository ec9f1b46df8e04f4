//! The network conditions and stream settings the bench knows, and what each must achieve.

use serde::Serialize;

/// What the publisher sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Video {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

pub const HD: Video = Video {
    width: 1280,
    height: 720,
    fps: 30,
    bitrate_kbps: 2500,
};
pub const SD: Video = Video {
    width: 640,
    height: 360,
    fps: 30,
    bitrate_kbps: 800,
};

/// How media gets from the clients to the server and back.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Path {
    /// Straight to the server's media port on loopback.
    Direct,
    /// Through the impairment relay: the server announces the relay's address, so every media packet of both the
    /// publisher and the player crosses it, `up` (client -> server) and `down` (server -> client).
    Impaired {
        up: String,
        down: String,
        /// Impairments that apply only from the start of the measurement window (the stream warms up clean).
        #[serde(skip_serializing_if = "Option::is_none")]
        from_window_start: Option<(String, String)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Glass-to-glass p50 and p99 in a clean 720p30 run.
    CleanLatency,
    /// start_playing -> first rendered frame p50.
    FirstFrame,
    /// p95 latency, rendered share, longest freeze and no audio gap under 10% loss.
    Loss10,
    /// Still playing with 90% of frames rendered under 30% loss; at most 2 audio gaps per 30 s.
    Loss30,
    /// Still playing with 90% of frames rendered under 50% loss; no audio gap longer than 200 ms.
    Loss50,
    /// The publisher adapts under the cap and latency recovers.
    RateCap,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub description: String,
    pub video: Video,
    pub path: Path,
    pub goals: &'static [Goal],
    /// Clean warm-up before the window, in seconds (quick runs use a second).
    pub warmup_s: f64,
}

pub fn all() -> Vec<Scenario> {
    let impaired = |spec: &str| Path::Impaired {
        up: spec.into(),
        down: spec.into(),
        from_window_start: None,
    };
    vec![
        Scenario {
            name: "clean",
            description: "1280x720@30 2.5 Mb/s, direct loopback".into(),
            video: HD,
            path: Path::Direct,
            goals: &[Goal::CleanLatency, Goal::FirstFrame],
            warmup_s: 2.0,
        },
        Scenario {
            name: "clean360",
            description: "640x360@30 0.8 Mb/s, direct loopback".into(),
            video: SD,
            path: Path::Direct,
            goals: &[Goal::FirstFrame],
            warmup_s: 2.0,
        },
        Scenario {
            name: "loss10",
            description: "1280x720@30 2.5 Mb/s; 50 ms one-way delay and 10% random loss each way, for the publisher and the player".into(),
            video: HD,
            path: impaired("delay=50ms,loss=10%"),
            goals: &[Goal::Loss10],
            warmup_s: 2.0,
        },
        Scenario {
            name: "loss30",
            description: "1280x720@30 2.5 Mb/s, playing on a clean path, then 30% random loss each way for the publisher and the player from the window start".into(),
            video: HD,
            path: Path::Impaired {
                up: "clean".into(),
                down: "clean".into(),
                from_window_start: Some(("loss=30%".into(), "loss=30%".into())),
            },
            goals: &[Goal::Loss30],
            warmup_s: 2.0,
        },
        Scenario {
            name: "loss50",
            description: "1280x720@30 2.5 Mb/s, playing on a clean path, then 50% random loss each way for the publisher and the player from the window start".into(),
            video: HD,
            path: Path::Impaired {
                up: "clean".into(),
                down: "clean".into(),
                from_window_start: Some(("loss=50%".into(), "loss=50%".into())),
            },
            goals: &[Goal::Loss50],
            warmup_s: 2.0,
        },
        Scenario {
            name: "bursty",
            description: "1280x720@30 2.5 Mb/s; 50 ms one-way delay and bursts of loss each way (Gilbert-Elliott: 2% chance a good packet starts a burst, bursts of 4 packets on average, all lost: about 7% loss), for the publisher and the player".into(),
            video: HD,
            path: impaired("delay=50ms,burst=2%/25%/100%"),
            goals: &[],
            warmup_s: 2.0,
        },
        Scenario {
            name: "cap1m",
            description: "1280x720@30 2.5 Mb/s, warmed up clean, then a 1 Mb/s cap (100 ms queue) each way for the publisher and the player from the window start".into(),
            video: HD,
            path: Path::Impaired {
                up: "clean".into(),
                down: "clean".into(),
                from_window_start: Some(("rate=1mbit,queue=100ms".into(), "rate=1mbit,queue=100ms".into())),
            },
            goals: &[Goal::RateCap],
            warmup_s: 5.0,
        },
    ]
}

/// The 1 Mb/s cap of `cap1m`, in kb/s of UDP payload.
pub const CAP_KBPS: f64 = 1000.0;

pub fn find(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}

/// A 720p30 run under impairments given on the command line, to look into one direction or one setting at a
/// time. It has no targets of its own.
pub fn custom(up: &str, down: &str) -> Scenario {
    Scenario {
        name: "custom",
        description: format!(
            "1280x720@30 2.5 Mb/s; up (client -> server) `{up}`, down (server -> client) `{down}`"
        ),
        video: HD,
        path: Path::Impaired {
            up: up.into(),
            down: down.into(),
            from_window_start: None,
        },
        goals: &[],
        warmup_s: 2.0,
    }
}
