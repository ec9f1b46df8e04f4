//! Retransmission of audio in SDP: whether an offer repairs its Opus with RTX (RFC 4588), as the SDK does and
//! browsers do not. Only then does the relay answer with NACK and RTX for the audio, ask a publisher for its lost
//! audio, and resend a player's: browsers keep exactly the audio format they had.

/// The lines of the offer's audio section.
fn audio_section(offer_sdp: &str) -> impl Iterator<Item = &str> {
    crate::fec_sdp::section(offer_sdp, "audio")
}

/// The payload types of the audio section's `a=rtpmap` lines whose encoding is `name/48000`.
fn rtpmap_pts<'a>(offer_sdp: &'a str, name: &'a str) -> impl Iterator<Item = u8> + 'a {
    audio_section(offer_sdp).filter_map(move |line| {
        let (pt, format) = line.strip_prefix("a=rtpmap:")?.split_once(' ')?;
        let mut parts = format.split('/');
        let (encoding, rate) = (parts.next()?, parts.next()?);
        (encoding.eq_ignore_ascii_case(name) && rate == "48000")
            .then(|| crate::fec_sdp::payload_type(pt))
            .flatten()
    })
}

/// The offer's RTX payload type for Opus, if its audio section has one: an `rtx/48000` format whose `apt` is the
/// payload type of an `opus/48000` one.
pub(crate) fn offered_pt(offer_sdp: &str) -> Option<u8> {
    let opus: Vec<u8> = rtpmap_pts(offer_sdp, "opus").collect();
    rtpmap_pts(offer_sdp, "rtx").find(|&rtx| {
        let prefix = format!("a=fmtp:{rtx} ");
        audio_section(offer_sdp).any(|line| {
            line.strip_prefix(&prefix).is_some_and(|params| {
                params.split(';').any(|p| {
                    p.trim()
                        .strip_prefix("apt=")
                        .and_then(crate::fec_sdp::payload_type)
                        .is_some_and(|apt| opus.contains(&apt))
                })
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDK_AUDIO: &str =
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 108 109\r\na=rtpmap:109 rtx/90000\r\n\
        a=fmtp:109 apt=108\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 110\r\na=rtpmap:111 opus/48000/2\r\n\
        a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtcp-fb:111 nack\r\na=rtpmap:110 rtx/48000\r\n\
        a=fmtp:110 apt=111\r\n";

    #[test]
    fn the_sdk_s_audio_rtx_is_found() {
        assert_eq!(offered_pt(SDK_AUDIO), Some(110));
    }

    #[test]
    fn a_browser_offer_without_audio_rtx_has_none() {
        let browser = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\na=rtpmap:111 opus/48000/2\r\n\
            a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
            a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n";
        assert_eq!(offered_pt(browser), None);
        // Video RTX pointing at an audio payload type is not audio RTX.
        let crossed = SDK_AUDIO.replace("a=rtpmap:110 rtx/48000\r\na=fmtp:110 apt=111\r\n", "");
        assert_eq!(offered_pt(&crossed), None);
        let wrong_apt = SDK_AUDIO.replace("apt=111", "apt=108");
        assert_eq!(offered_pt(&wrong_apt), None);
    }
}
