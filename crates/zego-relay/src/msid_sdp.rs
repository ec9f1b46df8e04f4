//! One media stream (msid, RFC 8830) for a play's audio and video, which players sync only within one stream: str0m
//! answers each m-line with a stream of its own and cannot be told otherwise, so its answer is edited line by line,
//! every other line passing through unchanged.

use std::fmt::Write;

use str0m::media::Mid;

/// The longest msid-id (RFC 8830: `1*64token-char`).
const MAX_ID_LEN: usize = 64;

/// A token-char of RFC 8830 (RFC 4566's token).
fn is_token_char(c: char) -> bool {
    matches!(c, '!' | '#'..='\'' | '*' | '+' | '-' | '.' | '0'..='9' | 'A'..='Z' | '^'..='~')
}

/// The media stream id a play of `stream` names: the stream id itself when msid allows it (1 to 64 token-chars,
/// and not `-`, which means no stream), otherwise its token-chars followed by a hash of the whole id, which is the
/// same for the same stream id every time.
pub(crate) fn stream_id(stream: &str) -> String {
    if stream != "-"
        && (1..=MAX_ID_LEN).contains(&stream.len())
        && stream.chars().all(is_token_char)
    {
        return stream.to_owned();
    }
    // FNV-1a (64 bits): stable across builds and platforms, unlike the standard library's hasher.
    let hash = stream.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    // Room for "-" and 16 hex digits.
    let prefix: String = stream
        .chars()
        .filter(|c| is_token_char(*c))
        .take(MAX_ID_LEN - 17)
        .collect();
    if prefix.is_empty() {
        format!("stream-{hash:016x}")
    } else {
        format!("{prefix}-{hash:016x}")
    }
}

/// Puts the m-lines of `tracks` (mid, track id) in the media stream `stream_id`: their `a=msid` and their
/// `a=ssrc:<ssrc> msid:` attributes, and the session's `a=msid-semantic` list of streams.
pub(crate) fn one_stream(answer: &str, stream_id: &str, tracks: &[(Mid, &str)]) -> String {
    let lines: Vec<&str> = answer.lines().map(str::trim_end).collect();
    let mut edited: Vec<String> = Vec::with_capacity(lines.len());
    let mut track: Option<&str> = None;
    for (i, &line) in lines.iter().enumerate() {
        if line.starts_with("m=") {
            let section = lines[i + 1..].iter().take_while(|l| !l.starts_with("m="));
            track = section
                .filter_map(|l| l.strip_prefix("a=mid:"))
                .find_map(|mid| tracks.iter().find(|(m, _)| **m == *mid))
                .map(|(_, track)| *track);
        }
        let msid = format!("{stream_id} {}", track.unwrap_or_default());
        let line = match track {
            Some(_) if line.starts_with("a=msid:") => format!("a=msid:{msid}"),
            Some(_) => match line
                .strip_prefix("a=ssrc:")
                .and_then(|ssrc| ssrc.split_once(' '))
                .filter(|(_, attr)| attr.starts_with("msid:"))
            {
                Some((ssrc, _)) => format!("a=ssrc:{ssrc} msid:{msid}"),
                None => line.to_owned(),
            },
            None => line.to_owned(),
        };
        edited.push(line);
    }

    // The session lists the streams of all its m-lines, as str0m does: in order, each once.
    let mut streams: Vec<&str> = Vec::new();
    for id in edited
        .iter()
        .filter_map(|l| l.strip_prefix("a=msid:")?.split_whitespace().next())
    {
        if !streams.contains(&id) {
            streams.push(id);
        }
    }
    let streams = streams.join(" ");
    let mut out = String::with_capacity(answer.len() + 64);
    for line in &edited {
        let semantic = line
            .strip_prefix("a=msid-semantic:")
            .and_then(|rest| rest.split_whitespace().next());
        match semantic {
            Some(semantic) => {
                let _ = write!(out, "a=msid-semantic: {semantic} {streams}\r\n");
            }
            None => {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use str0m::change::SdpAnswer;

    use super::*;

    /// Shaped as str0m answers a player: each m-line in a random stream of its own.
    const ANSWER: &str = "v=0\r\n\
        o=- 1 2 IN IP4 0.0.0.0\r\n\
        s=-\r\n\
        t=0 0\r\n\
        a=group:BUNDLE 0 1\r\n\
        a=msid-semantic: WMS Rv7 Qz2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 108 109\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=mid:0\r\n\
        a=sendonly\r\n\
        a=msid:Rv7 t1\r\n\
        a=rtpmap:108 H264/90000\r\n\
        a=rtpmap:109 rtx/90000\r\n\
        a=fmtp:109 apt=108\r\n\
        a=ssrc:1000 cname:abc\r\n\
        a=ssrc:1000 msid:Rv7 t1\r\n\
        a=ssrc:2000 cname:abc\r\n\
        a=ssrc:2000 msid:Rv7 t1\r\n\
        a=ssrc-group:FID 1000 2000\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=mid:1\r\n\
        a=sendonly\r\n\
        a=msid:Qz2 t2\r\n\
        a=rtpmap:111 opus/48000/2\r\n\
        a=ssrc:3000 cname:def\r\n\
        a=ssrc:3000 msid:Qz2 t2\r\n";

    #[test]
    fn a_stream_id_msid_allows_is_kept() {
        for id in ["s", "room7_cam-1", "a.b~c!{x}", &"x".repeat(64)] {
            assert_eq!(stream_id(id), id);
        }
    }

    #[test]
    fn a_stream_id_msid_does_not_allow_becomes_a_stable_valid_one() {
        let long = "y".repeat(65);
        for id in ["", "-", "room 7", "cam/1\"x\"", "caméra", long.as_str()] {
            let derived = stream_id(id);
            assert!(
                (1..=64).contains(&derived.len()) && derived.chars().all(is_token_char),
                "{id:?} -> {derived:?}"
            );
            assert_ne!(derived, "-");
            assert_eq!(derived, stream_id(id), "the same every time");
        }
        assert!(stream_id("room 7").starts_with("room7-"));
        assert!(stream_id("").starts_with("stream-"));
        // Ids that keep the same token-chars still differ.
        assert_ne!(stream_id("room 7"), stream_id("room/7"));
        // Pinned: the same stream id gives the same media stream id from one relay version to the next.
        assert_eq!(stream_id("room 7"), "room7-bf9e3424f836dd1b");
    }

    #[test]
    fn both_m_lines_are_put_in_one_stream_with_their_own_track_ids() {
        let tracks = [(Mid::from("0"), "video"), (Mid::from("1"), "audio")];
        let answer = one_stream(ANSWER, "cam-1", &tracks);
        let (video, audio) = answer.split_once("m=audio").unwrap();
        assert!(video.contains("a=msid:cam-1 video\r\n"));
        assert!(video.contains("a=ssrc:1000 msid:cam-1 video\r\n"));
        assert!(video.contains("a=ssrc:2000 msid:cam-1 video\r\n"));
        assert!(audio.contains("a=msid:cam-1 audio\r\n"));
        assert!(audio.contains("a=ssrc:3000 msid:cam-1 audio\r\n"));
        assert!(answer.contains("a=msid-semantic: WMS cam-1\r\n"));
        assert!(!answer.contains("Rv7") && !answer.contains("Qz2"));
        // Every other line is str0m's, in order.
        let changed = |l: &&str| l.contains("msid");
        let others = |sdp: &str| -> Vec<String> {
            sdp.lines()
                .filter(|l| !changed(l))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(others(&answer), others(ANSWER));
        assert_eq!(answer.lines().count(), ANSWER.lines().count());
        // The SDP parser of str0m (and so of any peer) takes the result.
        assert!(SdpAnswer::from_sdp_string(&answer).is_ok());
    }

    #[test]
    fn an_m_line_the_relay_does_not_send_on_keeps_its_stream() {
        let answer = one_stream(ANSWER, "cam-1", &[(Mid::from("0"), "video")]);
        let (video, audio) = answer.split_once("m=audio").unwrap();
        assert!(video.contains("a=msid:cam-1 video\r\n"));
        assert!(audio.contains("a=msid:Qz2 t2\r\n"));
        assert!(audio.contains("a=ssrc:3000 msid:Qz2 t2\r\n"));
        assert!(answer.contains("a=msid-semantic: WMS cam-1 Qz2\r\n"));
    }
}
