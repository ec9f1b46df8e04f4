//! What one direction of the simulated path does to packets, and its string form.
//!
//! The string form is a comma-separated list of `key=value` pairs, for example
//! `delay=50ms,jitter=10ms,loss=2%,burst=1%/30%/100%,reorder=1%,rate=1mbit,queue=100ms,duplicate=0.5%`.
//! `""`, `clean` and `none` all mean a clean path.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Queue used when a rate cap is set without an explicit `queue=`.
pub const DEFAULT_QUEUE: QueueLimit = QueueLimit::Time(Duration::from_millis(100));

/// Impairments applied to every packet travelling in one direction.
///
/// Each client of the relay gets its own simulated path, so the loss state, the bottleneck queue and the
/// ordering are kept per client: two clients behind a `rate=1mbit` path get 1 mbit/s each.
///
/// For each packet, in this order:
/// 1. loss: the Gilbert-Elliott `burst` model (when set), then independent random `loss`;
/// 2. bottleneck: with `rate_bps`, the packet waits behind earlier ones and takes its serialization time;
///    if the queue already holds more than `queue`, the packet is tail-dropped;
/// 3. delay: `delay` plus a uniform sample in `[-jitter, +jitter]` (never below zero). Jitter never
///    reorders: a packet is never released before the one that arrived ahead of it;
/// 4. reorder: with probability `reorder` the packet is held back until the next packet of the same
///    client has been delivered, so the two arrive swapped;
/// 5. duplicate: with probability `duplicate` a second copy is delivered right after the packet.
///
/// `Default` is a clean path: nothing is delayed, lost, reordered or capped.
#[derive(Debug, Clone, PartialEq)]
pub struct Impairment {
    /// Fixed one-way delay added to every packet.
    pub delay: Duration,
    /// Half-width of the uniform random variation around `delay`.
    pub jitter: Duration,
    /// Probability (0.0..=1.0) that a packet is lost, independently of every other packet.
    pub loss: f64,
    /// Optional bursty loss, applied before `loss`.
    pub burst: Option<GilbertElliott>,
    /// Probability (0.0..=1.0) that a packet is held back behind the packet that follows it.
    pub reorder: f64,
    /// Bottleneck rate in bits per second of UDP payload; `None` means no cap.
    pub rate_bps: Option<u64>,
    /// How much the bottleneck queue may hold before arriving packets are tail-dropped. Only used with `rate_bps`.
    pub queue: QueueLimit,
    /// Probability (0.0..=1.0) that a packet is delivered twice.
    pub duplicate: f64,
}

impl Default for Impairment {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            burst: None,
            reorder: 0.0,
            rate_bps: None,
            queue: DEFAULT_QUEUE,
            duplicate: 0.0,
        }
    }
}

/// Two-state (Gilbert-Elliott) loss model, which makes losses come in bursts.
///
/// The chain starts in the good state, where nothing is lost by this model. Each packet is first judged
/// in the current state, then the chain moves: good -> bad with `p_good_to_bad`, bad -> good with
/// `p_bad_to_good`. The mean burst length is `1 / p_bad_to_good` packets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GilbertElliott {
    /// Probability (0.0..=1.0) per packet of moving from the good to the bad state.
    pub p_good_to_bad: f64,
    /// Probability (0.0..=1.0) per packet of moving from the bad back to the good state.
    pub p_bad_to_good: f64,
    /// Probability (0.0..=1.0) that a packet is lost while in the bad state.
    pub loss_in_bad: f64,
}

/// Capacity of the bottleneck queue in front of a rate cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueLimit {
    /// The queue holds at most this much transmission time at the capped rate.
    Time(Duration),
    /// The queue holds at most this many bytes of UDP payload.
    Bytes(u64),
}

impl QueueLimit {
    /// The limit in bytes at `rate_bps`.
    pub fn bytes_at(self, rate_bps: u64) -> u64 {
        match self {
            QueueLimit::Bytes(bytes) => bytes,
            QueueLimit::Time(time) => {
                let bytes = time.as_nanos() * u128::from(rate_bps) / 8 / 1_000_000_000;
                u64::try_from(bytes).unwrap_or(u64::MAX)
            }
        }
    }
}

/// Why an impairment string or value was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImpairmentError {
    /// A key that is not one of delay, jitter, loss, burst, reorder, rate, queue, duplicate.
    #[error("unknown impairment `{0}` (expected delay, jitter, loss, burst, reorder, rate, queue or duplicate)")]
    UnknownKey(String),
    /// The same key appears twice.
    #[error("impairment `{0}` is given more than once")]
    RepeatedKey(String),
    /// A `key` without `=value`.
    #[error("impairment `{0}` needs a value, as in `{0}=...`")]
    MissingValue(String),
    /// A value that does not parse.
    #[error("invalid value `{value}` for `{key}`: expected {expected}")]
    InvalidValue {
        /// The key whose value is wrong.
        key: String,
        /// The value as written.
        value: String,
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// A probability outside 0..=1 (0%..=100%), or not a number.
    #[error("`{key}` must be between 0% and 100%, got {value}")]
    ProbabilityOutOfRange {
        /// The field holding the probability.
        key: &'static str,
        /// The offending value, as a fraction.
        value: f64,
    },
    /// `rate_bps` of zero: nothing could ever be sent.
    #[error("`rate` must be above zero (omit it for no cap)")]
    ZeroRate,
}

impl Impairment {
    /// Checks that every probability lies in 0..=1 and that a rate cap is above zero.
    pub fn validate(&self) -> Result<(), ImpairmentError> {
        let mut probabilities = vec![
            ("loss", self.loss),
            ("reorder", self.reorder),
            ("duplicate", self.duplicate),
        ];
        if let Some(burst) = &self.burst {
            probabilities.push(("burst p_good_to_bad", burst.p_good_to_bad));
            probabilities.push(("burst p_bad_to_good", burst.p_bad_to_good));
            probabilities.push(("burst loss_in_bad", burst.loss_in_bad));
        }
        for (key, value) in probabilities {
            if !(0.0..=1.0).contains(&value) {
                return Err(ImpairmentError::ProbabilityOutOfRange { key, value });
            }
        }
        if self.rate_bps == Some(0) {
            return Err(ImpairmentError::ZeroRate);
        }
        Ok(())
    }

    /// True when this impairment leaves packets untouched.
    pub fn is_clean(&self) -> bool {
        self.delay.is_zero()
            && self.jitter.is_zero()
            && self.loss == 0.0
            && self.burst.is_none()
            && self.reorder == 0.0
            && self.rate_bps.is_none()
            && self.duplicate == 0.0
    }
}

impl FromStr for Impairment {
    type Err = ImpairmentError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty()
            || text.eq_ignore_ascii_case("clean")
            || text.eq_ignore_ascii_case("none")
        {
            return Ok(Self::default());
        }
        let mut out = Self::default();
        let mut seen: Vec<&str> = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (key, value) = match item.split_once('=') {
                Some((key, value)) => (key.trim(), value.trim()),
                None => return Err(ImpairmentError::MissingValue(item.to_string())),
            };
            let key =
                canonical_key(key).ok_or_else(|| ImpairmentError::UnknownKey(key.to_string()))?;
            if seen.contains(&key) {
                return Err(ImpairmentError::RepeatedKey(key.to_string()));
            }
            seen.push(key);
            if value.is_empty() {
                return Err(ImpairmentError::MissingValue(key.to_string()));
            }
            match key {
                "delay" => out.delay = parse_duration(key, value)?,
                "jitter" => out.jitter = parse_duration(key, value)?,
                "loss" => out.loss = parse_probability(key, value)?,
                "burst" => out.burst = Some(parse_burst(value)?),
                "reorder" => out.reorder = parse_probability(key, value)?,
                "rate" => out.rate_bps = Some(parse_rate(value)?),
                "queue" => out.queue = parse_queue(value)?,
                "duplicate" => out.duplicate = parse_probability(key, value)?,
                _ => unreachable!("canonical_key only returns known keys"),
            }
        }
        out.validate()?;
        Ok(out)
    }
}

/// Writes the string form that [`FromStr`] reads back to an equal value; a clean path is `clean`.
impl fmt::Display for Impairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if !self.delay.is_zero() {
            parts.push(format!("delay={}", FmtDuration(self.delay)));
        }
        if !self.jitter.is_zero() {
            parts.push(format!("jitter={}", FmtDuration(self.jitter)));
        }
        if self.loss != 0.0 {
            parts.push(format!("loss={}", FmtProbability(self.loss)));
        }
        if let Some(burst) = &self.burst {
            parts.push(format!(
                "burst={}/{}/{}",
                FmtProbability(burst.p_good_to_bad),
                FmtProbability(burst.p_bad_to_good),
                FmtProbability(burst.loss_in_bad)
            ));
        }
        if self.reorder != 0.0 {
            parts.push(format!("reorder={}", FmtProbability(self.reorder)));
        }
        if let Some(rate) = self.rate_bps {
            parts.push(format!("rate={}", FmtRate(rate)));
        }
        if self.queue != DEFAULT_QUEUE {
            match self.queue {
                QueueLimit::Time(time) => parts.push(format!("queue={}", FmtDuration(time))),
                QueueLimit::Bytes(bytes) => parts.push(format!("queue={bytes}b")),
            }
        }
        if self.duplicate != 0.0 {
            parts.push(format!("duplicate={}", FmtProbability(self.duplicate)));
        }
        if parts.is_empty() {
            f.write_str("clean")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

fn canonical_key(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    Some(match key.as_str() {
        "delay" | "latency" => "delay",
        "jitter" => "jitter",
        "loss" => "loss",
        "burst" => "burst",
        "reorder" => "reorder",
        "rate" => "rate",
        "queue" => "queue",
        "duplicate" | "dup" => "duplicate",
        _ => return None,
    })
}

/// Splits `12.5ms` into (12.5, "ms").
fn split_number(value: &str) -> Option<(f64, String)> {
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let number: f64 = value[..end].parse().ok()?;
    if !number.is_finite() || number < 0.0 {
        return None;
    }
    Some((number, value[end..].trim().to_ascii_lowercase()))
}

const DURATION_HINT: &str = "a duration such as 50ms, 1.5s or 800us";

fn duration_unit_nanos(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" | "sec" => 1e9,
        _ => return None,
    })
}

fn parse_duration(key: &str, value: &str) -> Result<Duration, ImpairmentError> {
    let invalid = || ImpairmentError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        expected: DURATION_HINT,
    };
    let (number, unit) = split_number(value).ok_or_else(invalid)?;
    let nanos = if unit.is_empty() && number == 0.0 {
        0.0
    } else {
        number * duration_unit_nanos(&unit).ok_or_else(invalid)?
    };
    // An hour is far beyond anything a network path does; refusing it keeps Instant arithmetic safe.
    if nanos > 3_600e9 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

fn parse_probability(key: &str, value: &str) -> Result<f64, ImpairmentError> {
    let invalid = || ImpairmentError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        expected: "a percentage such as 10% or a fraction such as 0.1",
    };
    let (number, unit) = split_number(value).ok_or_else(invalid)?;
    let fraction = match unit.as_str() {
        "%" => number / 100.0,
        "" => number,
        _ => return Err(invalid()),
    };
    if !(0.0..=1.0).contains(&fraction) {
        return Err(invalid());
    }
    Ok(fraction)
}

fn parse_burst(value: &str) -> Result<GilbertElliott, ImpairmentError> {
    let parts: Vec<&str> = value.split('/').map(str::trim).collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(ImpairmentError::InvalidValue {
            key: "burst".to_string(),
            value: value.to_string(),
            expected: "p_good_to_bad/p_bad_to_good[/loss_in_bad], such as 1%/30% or 1%/30%/80%",
        });
    }
    Ok(GilbertElliott {
        p_good_to_bad: parse_probability("burst", parts[0])?,
        p_bad_to_good: parse_probability("burst", parts[1])?,
        loss_in_bad: match parts.get(2) {
            Some(part) => parse_probability("burst", part)?,
            None => 1.0,
        },
    })
}

fn parse_rate(value: &str) -> Result<u64, ImpairmentError> {
    let invalid = || ImpairmentError::InvalidValue {
        key: "rate".to_string(),
        value: value.to_string(),
        expected: "a bit rate such as 500kbit, 1mbit, 2.5mbit or 1gbit",
    };
    let (number, unit) = split_number(value).ok_or_else(invalid)?;
    let scale = match unit.as_str() {
        "" | "bit" | "bps" => 1.0,
        "kbit" | "k" => 1e3,
        "mbit" | "m" => 1e6,
        "gbit" | "g" => 1e9,
        _ => return Err(invalid()),
    };
    let bits = (number * scale).round();
    if bits > 1e12 {
        return Err(invalid());
    }
    if bits < 1.0 {
        return Err(ImpairmentError::ZeroRate);
    }
    Ok(bits as u64)
}

fn parse_queue(value: &str) -> Result<QueueLimit, ImpairmentError> {
    let invalid = || ImpairmentError::InvalidValue {
        key: "queue".to_string(),
        value: value.to_string(),
        expected: "a time such as 100ms or a size such as 64kb, 1500b or 1mib",
    };
    let (number, unit) = split_number(value).ok_or_else(invalid)?;
    if duration_unit_nanos(&unit).is_some() {
        return parse_duration("queue", value).map(QueueLimit::Time);
    }
    let scale = match unit.as_str() {
        "b" => 1.0,
        "kb" => 1e3,
        "kib" => 1024.0,
        "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        _ => return Err(invalid()),
    };
    let bytes = (number * scale).round();
    if bytes > 1e12 {
        return Err(invalid());
    }
    Ok(QueueLimit::Bytes(bytes as u64))
}

struct FmtDuration(Duration);

impl fmt::Display for FmtDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos % 1_000_000 == 0 {
            write!(f, "{}ms", nanos / 1_000_000)
        } else if nanos % 1_000 == 0 {
            write!(f, "{}us", nanos / 1_000)
        } else {
            write!(f, "{nanos}ns")
        }
    }
}

struct FmtProbability(f64);

impl fmt::Display for FmtProbability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A percentage reads best, but only when it parses back to exactly the same fraction.
        let percent = format!("{}%", self.0 * 100.0);
        match parse_probability("", &percent) {
            Ok(back) if back == self.0 => f.write_str(&percent),
            _ => write!(f, "{}", self.0),
        }
    }
}

struct FmtRate(u64);

impl fmt::Display for FmtRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.0;
        if bits % 1_000_000_000 == 0 {
            write!(f, "{}gbit", bits / 1_000_000_000)
        } else if bits % 1_000_000 == 0 {
            write!(f, "{}mbit", bits / 1_000_000)
        } else if bits % 1_000 == 0 {
            write!(f, "{}kbit", bits / 1_000)
        } else {
            write!(f, "{bits}bit")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_clean_mean_default() {
        for text in ["", "  ", "clean", "NONE"] {
            assert_eq!(text.parse::<Impairment>().unwrap(), Impairment::default());
        }
        assert!(Impairment::default().is_clean());
        assert_eq!(Impairment::default().to_string(), "clean");
    }

    #[test]
    fn parses_every_key() {
        let imp: Impairment =
            "delay=50ms, jitter=10ms,loss=10%,burst=1%/30%/80%,reorder=1%,rate=1mbit,queue=64kb,duplicate=0.5%"
                .parse()
                .unwrap();
        assert_eq!(imp.delay, Duration::from_millis(50));
        assert_eq!(imp.jitter, Duration::from_millis(10));
        assert_eq!(imp.loss, 0.1);
        assert_eq!(
            imp.burst,
            Some(GilbertElliott {
                p_good_to_bad: 0.01,
                p_bad_to_good: 0.3,
                loss_in_bad: 0.8
            })
        );
        assert_eq!(imp.reorder, 0.01);
        assert_eq!(imp.rate_bps, Some(1_000_000));
        assert_eq!(imp.queue, QueueLimit::Bytes(64_000));
        assert_eq!(imp.duplicate, 0.005);
    }

    #[test]
    fn accepts_fractions_units_and_defaults() {
        let imp: Impairment =
            "delay=1.5s,jitter=800us,loss=0.25,rate=2.5mbit,queue=20ms,burst=5%/50%"
                .parse()
                .unwrap();
        assert_eq!(imp.delay, Duration::from_millis(1500));
        assert_eq!(imp.jitter, Duration::from_micros(800));
        assert_eq!(imp.loss, 0.25);
        assert_eq!(imp.rate_bps, Some(2_500_000));
        assert_eq!(imp.queue, QueueLimit::Time(Duration::from_millis(20)));
        assert_eq!(imp.burst.unwrap().loss_in_bad, 1.0);
        assert_eq!(
            "delay=0".parse::<Impairment>().unwrap().delay,
            Duration::ZERO
        );
    }

    #[test]
    fn display_reads_back_to_the_same_value() {
        for text in [
            "delay=50ms,jitter=10ms,loss=10%",
            "loss=7%,reorder=3%,duplicate=1%",
            "burst=1%/30%/80%,rate=1mbit,queue=1500b",
            "delay=1500us,rate=64kbit,queue=250ms",
            "loss=0.123456789",
            "rate=1234bit",
        ] {
            let imp: Impairment = text.parse().unwrap();
            let again: Impairment = imp.to_string().parse().unwrap();
            assert_eq!(imp, again, "{text} -> {imp}");
        }
        let imp: Impairment = "delay=50ms,loss=10%".parse().unwrap();
        assert_eq!(imp.to_string(), "delay=50ms,loss=10%");
    }

    #[test]
    fn refuses_bad_input_with_a_clear_error() {
        let cases = [
            ("delay=50", "expected a duration"),
            ("delay=fast", "expected a duration"),
            ("delay=-5ms", "expected a duration"),
            ("delay=2h", "expected a duration"),
            ("loss=150%", "percentage"),
            ("loss=1.5", "percentage"),
            ("loss=NaN", "percentage"),
            ("speed=1", "unknown impairment `speed`"),
            ("delay", "needs a value"),
            ("delay=", "needs a value"),
            ("delay=1ms,delay=2ms", "more than once"),
            ("rate=0", "above zero"),
            ("rate=1mbyte", "bit rate"),
            ("queue=12 parsecs", "queue"),
            ("burst=1%", "p_good_to_bad"),
            ("burst=1%/2%/3%/4%", "p_good_to_bad"),
        ];
        for (text, needle) in cases {
            let err = text.parse::<Impairment>().unwrap_err().to_string();
            assert!(
                err.contains(needle),
                "`{text}` gave `{err}`, expected it to mention `{needle}`"
            );
        }
    }

    #[test]
    fn validate_catches_values_set_in_code() {
        let bad = Impairment {
            loss: 1.5,
            ..Default::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(ImpairmentError::ProbabilityOutOfRange { key: "loss", .. })
        ));
        let nan = Impairment {
            reorder: f64::NAN,
            ..Default::default()
        };
        assert!(nan.validate().is_err());
        let zero = Impairment {
            rate_bps: Some(0),
            ..Default::default()
        };
        assert_eq!(zero.validate(), Err(ImpairmentError::ZeroRate));
    }

    #[test]
    fn queue_time_converts_to_bytes_at_the_rate() {
        assert_eq!(
            QueueLimit::Time(Duration::from_millis(100)).bytes_at(1_000_000),
            12_500
        );
        assert_eq!(QueueLimit::Bytes(3000).bytes_at(1_000_000), 3000);
    }
}
