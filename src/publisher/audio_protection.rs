//! Opus in-band FEC on a lossy uplink, driven by the loss the relay's transport-wide feedback shows.
//!
//! With in-band FEC each Opus packet also carries a coarser copy of the frame before it (SILK's LBRR), so a player
//! that lost a packet rebuilds it from the next one instead of concealing it (`player::decode` does). The encoder
//! adds the copy only when told to expect loss, and only above a bitrate that depends on that loss and the audio
//! bandwidth: both are set here. Loss is taken at once when it rises and let go slowly, a few seconds after the
//! path turned clean, so that one clean second on a bursty path does not switch the protection off.

use std::time::{Duration, Instant};

use crate::transport::congestion::FeedbackCounters;

/// How often the feedback's loss is summed up.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Loss at or below this is not worth the bits (a packet in a few hundred).
const MIN_LOSS_PERCENT: u8 = 1;
/// The loss the encoder is told at most: beyond it libopus spends no more on the copy.
const MAX_LOSS_PERCENT: u8 = 50;
/// The bitrate per channel below which libopus would narrow the audio band to fit the copy (its FEC thresholds
/// reach 22 kb/s for fullband at low loss, more as the loss grows).
const FEC_MIN_BPS_PER_CHANNEL: u32 = 32_000;

/// What the audio encoder is to be told about loss, from the uplink's feedback.
#[derive(Debug, Default)]
pub(super) struct AudioProtection {
    last: Option<(Instant, FeedbackCounters)>,
    /// The loss the encoder expects, in percent; 0: no in-band FEC.
    loss_percent: u8,
}

impl AudioProtection {
    /// Takes the feedback counters at `now`; returns the encoder's new expected loss (percent) when it changes.
    pub fn update(&mut self, now: Instant, feedback: FeedbackCounters) -> Option<u8> {
        let Some((at, before)) = self.last else {
            self.last = Some((now, feedback));
            return None;
        };
        if now.saturating_duration_since(at) < REPORT_INTERVAL {
            return None;
        }
        self.last = Some((now, feedback));
        // Nothing reported (no feedback yet, or nothing sent): what was expected still holds.
        let measured = feedback.loss_since(&before)?;
        let measured = (measured * 100.0).round().min(f64::from(MAX_LOSS_PERCENT)) as u8;
        // Up at once; down by half a step per report.
        let next = measured.max(self.loss_percent / 2);
        let next = if next <= MIN_LOSS_PERCENT { 0 } else { next };
        (next != self.loss_percent).then(|| {
            self.loss_percent = next;
            next
        })
    }

    /// The loss the encoder expects now, in percent (0: no in-band FEC).
    pub fn loss_percent(&self) -> u8 {
        self.loss_percent
    }

    /// The bitrate for an encoder configured at `configured_bps`: raised while in-band FEC is on to where the copy
    /// fits without narrowing the audio band.
    pub fn bitrate(&self, configured_bps: u32, channels: u16) -> u32 {
        if self.loss_percent == 0 {
            return configured_bps;
        }
        configured_bps.max(FEC_MIN_BPS_PER_CHANNEL * u32::from(channels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(reported: u64, lost: u64) -> FeedbackCounters {
        FeedbackCounters { reported, lost }
    }

    #[test]
    fn loss_turns_fec_on_at_once_and_off_after_a_few_clean_seconds() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut p = AudioProtection::default();
        assert_eq!(p.update(at(0), counters(0, 0)), None);
        assert_eq!(p.update(at(1), counters(100, 0)), None, "clean: stays off");
        assert_eq!(p.bitrate(16_000, 1), 16_000);

        assert_eq!(p.update(at(2), counters(200, 20)), Some(20), "20 % lost");
        assert_eq!(p.bitrate(16_000, 1), 32_000, "raised for the copy");
        assert_eq!(p.bitrate(64_000, 2), 64_000);
        assert_eq!(p.update(at(3), counters(300, 50)), Some(30), "up at once");
        // Nothing reported in between: no change.
        assert_eq!(p.update(at(4), counters(300, 50)), None);
        assert_eq!(p.update(at(5), counters(400, 50)), Some(15), "clean: half");
        assert_eq!(p.update(at(6), counters(500, 50)), Some(7));
        assert_eq!(p.update(at(7), counters(600, 50)), Some(3));
        assert_eq!(p.update(at(8), counters(700, 50)), Some(0), "off");
        assert_eq!(p.loss_percent(), 0);
        assert_eq!(p.bitrate(16_000, 1), 16_000);
    }

    #[test]
    fn reports_come_once_a_second_and_loss_is_capped() {
        let start = Instant::now();
        let mut p = AudioProtection::default();
        p.update(start, counters(0, 0));
        assert_eq!(
            p.update(start + Duration::from_millis(500), counters(100, 90)),
            None
        );
        assert_eq!(
            p.update(start + Duration::from_secs(1), counters(100, 90)),
            Some(MAX_LOSS_PERCENT)
        );
    }
}
