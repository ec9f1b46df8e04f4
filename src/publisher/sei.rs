//! SEI the app sends with its video (`zego_send_sei`): checked and queued here as H.264 SEI NAL units, and written by
//! the encode thread into the next frame it encodes, so each message reaches players with that frame.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use zego_protocol::error::{self, ErrorCode};
use zego_rtp::sei;

use crate::config::SeiType;

/// Messages accepted per second at most, as the original allows.
pub const MAX_PER_SECOND: usize = 30;
const WINDOW: Duration = Duration::from_secs(1);
/// Messages waiting for a frame at most (while the video is muted or not flowing yet): the oldest go first.
const MAX_WAITING: usize = MAX_PER_SECOND;

/// The SEI of one publish channel that the encoder has not taken yet.
#[derive(Debug, Default)]
pub struct SeiOutbox {
    waiting: VecDeque<Vec<u8>>,
    /// When the messages of the last second were accepted.
    accepted: VecDeque<Instant>,
    /// Messages that waited too long for a frame and were left out.
    pub dropped: u64,
}

impl SeiOutbox {
    /// Takes `data` for the next frame: 1003043 when empty, 1003044 above 4096 bytes, 1000008 when a
    /// user-unregistered message is shorter than its 16-byte UUID, 1003045 beyond 30 messages in a second.
    pub fn push(&mut self, data: &[u8], kind: SeiType, now: Instant) -> Result<(), ErrorCode> {
        check(data, kind)?;
        while self
            .accepted
            .front()
            .is_some_and(|&t| now.duration_since(t) >= WINDOW)
        {
            self.accepted.pop_front();
        }
        if self.accepted.len() >= MAX_PER_SECOND {
            return Err(error::PUBLISHER_SEI_TOO_FREQUENT);
        }
        self.accepted.push_back(now);
        if self.waiting.len() >= MAX_WAITING {
            self.waiting.pop_front();
            self.dropped += 1;
            tracing::debug!("an SEI message waited too long for a video frame and was left out");
        }
        let payload_type = match kind {
            SeiType::ZegoDefined => sei::PAYLOAD_TYPE_ZEGO,
            SeiType::UserUnregister => sei::PAYLOAD_TYPE_USER_DATA_UNREGISTERED,
        };
        self.waiting.push_back(sei::nal_unit(payload_type, data));
        Ok(())
    }

    /// The waiting messages as Annex B NAL units, for the frame being encoded.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        if self.waiting.is_empty() {
            return None;
        }
        Some(self.waiting.drain(..).flatten().collect())
    }

    /// The publish ended: what waits belongs to it.
    pub fn clear(&mut self) {
        self.waiting.clear();
    }
}

/// Checks a message before it is queued.
pub fn check(data: &[u8], kind: SeiType) -> Result<(), ErrorCode> {
    if data.is_empty() {
        return Err(error::PUBLISHER_SEI_DATA_NULL);
    }
    if data.len() > sei::MAX_DATA {
        return Err(error::PUBLISHER_SEI_DATA_TOO_LONG);
    }
    if kind == SeiType::UserUnregister && data.len() < sei::UUID_LEN {
        return Err(error::COMMON_INVALID_PARAMETER);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_checked() {
        let mut o = SeiOutbox::default();
        let now = Instant::now();
        let zego = SeiType::ZegoDefined;
        assert_eq!(o.push(&[], zego, now), Err(error::PUBLISHER_SEI_DATA_NULL));
        assert_eq!(
            o.push(&[1; 4097], zego, now),
            Err(error::PUBLISHER_SEI_DATA_TOO_LONG)
        );
        assert_eq!(
            o.push(&[1; 15], SeiType::UserUnregister, now),
            Err(error::COMMON_INVALID_PARAMETER)
        );
        assert!(o.take().is_none(), "refused messages are not queued");
        assert_eq!(o.push(&[1; 4096], zego, now), Ok(()));
        assert_eq!(o.push(&[1; 16], SeiType::UserUnregister, now), Ok(()));
        let units = o.take().unwrap();
        let read = sei::messages(&units);
        assert_eq!(
            read,
            vec![
                (sei::PAYLOAD_TYPE_ZEGO, vec![1; 4096]),
                (sei::PAYLOAD_TYPE_USER_DATA_UNREGISTERED, vec![1; 16])
            ]
        );
        assert!(o.take().is_none());
    }

    #[test]
    fn at_most_thirty_a_second() {
        let mut o = SeiOutbox::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        for i in 0..30 {
            assert_eq!(o.push(b"x", SeiType::ZegoDefined, t0 + ms(i * 10)), Ok(()));
        }
        assert_eq!(
            o.push(b"x", SeiType::ZegoDefined, t0 + ms(999)),
            Err(error::PUBLISHER_SEI_TOO_FREQUENT)
        );
        // The first one leaves the window a second after it was sent.
        assert_eq!(o.push(b"x", SeiType::ZegoDefined, t0 + ms(1000)), Ok(()));
        assert_eq!(
            o.push(b"x", SeiType::ZegoDefined, t0 + ms(1001)),
            Err(error::PUBLISHER_SEI_TOO_FREQUENT)
        );
    }

    #[test]
    fn without_frames_the_oldest_give_way() {
        let mut o = SeiOutbox::default();
        let t0 = Instant::now();
        for i in 0..40u8 {
            let at = t0 + Duration::from_secs(u64::from(i));
            o.push(&[i], SeiType::ZegoDefined, at).unwrap();
        }
        assert_eq!(o.dropped, 10);
        let read = sei::messages(&o.take().unwrap());
        assert_eq!(read.first().map(|m| m.1.clone()), Some(vec![10]));
        assert_eq!(read.len(), 30);
        o.push(b"x", SeiType::ZegoDefined, t0 + Duration::from_secs(100))
            .unwrap();
        o.clear();
        assert!(o.take().is_none());
    }
}
