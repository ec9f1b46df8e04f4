//! The repair format (`flexfec-rs`, zego-fec) in SDP: what an offer says about it, and its announcement in the
//! answer str0m wrote, which has no FEC format of its own. The answer is edited line by line so that everything
//! str0m wrote passes through unchanged and only the added lines differ.

use str0m::media::{Mid, Pt};
use str0m::rtp::Ssrc;

/// The lines of the offer's section of media `kind` ("video", "audio").
pub(crate) fn section<'a>(offer_sdp: &'a str, kind: &'a str) -> impl Iterator<Item = &'a str> {
    let mut inside = false;
    offer_sdp.lines().map(str::trim_end).filter(move |line| {
        if let Some(media) = line.strip_prefix("m=") {
            inside = media
                .strip_prefix(kind)
                .is_some_and(|rest| rest.starts_with(' '));
            return false;
        }
        inside
    })
}

/// The lines of the offer's video section.
fn video_section(offer_sdp: &str) -> impl Iterator<Item = &str> {
    section(offer_sdp, "video")
}

/// The payload type of the repair format in the offer's video section, if the peer takes or sends
/// it.
pub(crate) fn offered_pt(offer_sdp: &str) -> Option<u8> {
    video_section(offer_sdp).find_map(|line| {
        let (pt, format) = line.strip_prefix("a=rtpmap:")?.split_once(' ')?;
        format
            .split_once('/')
            .filter(|(name, rate)| {
                name.eq_ignore_ascii_case(zego_fec::ENCODING_NAME)
                    && rate.parse() == Ok(zego_fec::CLOCK_RATE)
            })
            .and_then(|_| payload_type(pt))
    })
}

/// A payload type as SDP writes one: a decimal number that fits RTP's 7 bits, without sign or leading zeros (the
/// answer writes the number back, so it must read the same).
pub(crate) fn payload_type(text: &str) -> Option<u8> {
    let pt = text.parse::<u8>().ok().filter(|pt| *pt < 128)?;
    (pt.to_string() == text).then_some(pt)
}

/// The media and repair SSRCs of the `a=ssrc-group:FEC-FR` in the offer's video section, if any.
pub(crate) fn offered_group(offer_sdp: &str) -> Option<(u32, u32)> {
    video_section(offer_sdp).find_map(|line| {
        let mut ssrcs = line
            .strip_prefix("a=ssrc-group:FEC-FR ")?
            .split_whitespace()
            .map(str::parse::<u32>);
        Some((ssrcs.next()?.ok()?, ssrcs.next()?.ok()?))
    })
}

/// Adds the repair format to the answer's section of the m-line `mid`: the payload type on the m-line with its `a=rtpmap`, and
/// for a repair stream the relay sends (`sent`: media and repair SSRC), the SSRC in an `a=ssrc-group:FEC-FR` with
/// the media SSRC (RFC 5956), under the media's CNAME.
pub(crate) fn announce(answer: &str, mid: Mid, pt: Pt, sent: Option<(Ssrc, Ssrc)>) -> String {
    let mid_line = format!("a=mid:{mid}");
    let lines: Vec<&str> = answer.lines().map(str::trim_end).collect();
    let sections: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("m="))
        .map(|(i, _)| i)
        .collect();
    let mut out = String::with_capacity(answer.len() + 256);
    let mut start = 0;
    for (n, &m_line) in sections.iter().enumerate() {
        let end = sections.get(n + 1).copied().unwrap_or(lines.len());
        for line in &lines[start..m_line] {
            out.push_str(line);
            out.push_str("\r\n");
        }
        let section = &lines[m_line..end];
        if section.contains(&mid_line.as_str()) {
            out.push_str(&format!("{} {pt}\r\n", section[0]));
            for line in &section[1..] {
                out.push_str(line);
                out.push_str("\r\n");
            }
            out.push_str(&format!(
                "a=rtpmap:{pt} {}/{}\r\n",
                zego_fec::ENCODING_NAME,
                zego_fec::CLOCK_RATE
            ));
            if let Some((media_ssrc, repair_ssrc)) = sent {
                let cname_prefix = format!("a=ssrc:{media_ssrc} cname:");
                let cname = section
                    .iter()
                    .find_map(|l| l.strip_prefix(cname_prefix.as_str()))
                    .unwrap_or("zego-relay");
                out.push_str(&format!(
                    "a=ssrc-group:FEC-FR {media_ssrc} {repair_ssrc}\r\n"
                ));
                out.push_str(&format!("a=ssrc:{repair_ssrc} cname:{cname}\r\n"));
            }
        } else {
            for line in section {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        start = end;
    }
    for line in &lines[start..] {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use str0m::change::SdpOffer;

    use super::*;

    const ANSWER: &str = "v=0\r\n\
        o=- 1 2 IN IP4 0.0.0.0\r\n\
        s=-\r\n\
        t=0 0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 108 109\r\n\
        a=mid:0\r\n\
        a=sendonly\r\n\
        a=rtpmap:108 H264/90000\r\n\
        a=rtpmap:109 rtx/90000\r\n\
        a=fmtp:109 apt=108\r\n\
        a=ssrc:1000 cname:abc\r\n\
        a=ssrc:2000 cname:abc\r\n\
        a=ssrc-group:FID 1000 2000\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
        a=mid:1\r\n\
        a=sendonly\r\n\
        a=rtpmap:111 opus/48000/2\r\n\
        a=ssrc:3000 cname:def\r\n";

    #[test]
    fn the_payload_type_is_taken_from_the_video_section_only() {
        let offer =
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 118\r\na=rtpmap:118 flexfec-rs/90000\r\n\
                     m=video 9 UDP/TLS/RTP/SAVPF 108 109 120\r\na=rtpmap:108 H264/90000\r\n\
                     a=rtpmap:120 flexfec-rs/90000\r\n";
        assert_eq!(offered_pt(offer), Some(120));
        assert_eq!(offered_pt(ANSWER), None);
    }

    /// Only what RTP can carry in its 7 bits, written as SDP writes it: the answer names the same number.
    #[test]
    fn a_payload_type_that_is_not_one_is_not_taken() {
        for pt in ["018", "+18", "200", "-1", ""] {
            let offer = format!(
                "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 108 18\r\na=rtpmap:108 H264/90000\r\n\
                 a=rtpmap:{pt} flexfec-rs/90000\r\n"
            );
            assert_eq!(offered_pt(&offer), None, "{pt:?}");
        }
    }

    #[test]
    fn the_answer_names_the_repair_stream_in_the_video_section() {
        let answer = announce(
            ANSWER,
            Mid::from("0"),
            118.into(),
            Some((1000.into(), 4000.into())),
        );
        let (video_section, audio_section) = answer.split_once("m=audio").unwrap();
        assert!(video_section.contains("m=video 9 UDP/TLS/RTP/SAVPF 108 109 118\r\n"));
        assert!(video_section.contains("a=rtpmap:118 flexfec-rs/90000\r\n"));
        assert!(video_section.contains("a=ssrc-group:FEC-FR 1000 4000\r\n"));
        assert!(video_section.contains("a=ssrc:4000 cname:abc\r\n"));
        assert!(!audio_section.contains("118"));
        assert_eq!(
            answer.lines().count(),
            ANSWER.lines().count() + 3,
            "only the three lines are added"
        );
        // The SDP parser of str0m (and so of any peer) takes the result.
        assert!(SdpOffer::from_sdp_string(&answer).is_ok());
    }

    #[test]
    fn a_publisher_is_answered_with_the_format_only() {
        let answer = announce(ANSWER, Mid::from("0"), 118.into(), None);
        let (video_section, _) = answer.split_once("m=audio").unwrap();
        assert!(video_section.contains("m=video 9 UDP/TLS/RTP/SAVPF 108 109 118\r\n"));
        assert!(video_section.contains("a=rtpmap:118 flexfec-rs/90000\r\n"));
        assert!(!answer.contains("FEC-FR"));
        assert_eq!(answer.lines().count(), ANSWER.lines().count() + 1);
    }

    #[test]
    fn the_publishers_repair_stream_is_read_from_its_video_section() {
        let offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ssrc-group:FEC-FR 1 2\r\n\
                     m=video 9 UDP/TLS/RTP/SAVPF 108 109 118\r\na=ssrc-group:FID 10 11\r\n\
                     a=ssrc-group:FEC-FR 10 12\r\na=ssrc:10 cname:x\r\n";
        assert_eq!(offered_group(offer), Some((10, 12)));
        assert_eq!(offered_group(ANSWER), None);
    }
}
