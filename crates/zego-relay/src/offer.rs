//! What a client's SDP offer carries, read for what the relay tells the client: plain refusals naming what is
//! missing, and rejected m-lines the client's parser takes.
//!
//! Text sent back to a client never holds a parser's internals (its `Debug` output carries heap addresses) or
//! anything else of the server's own: parse errors become a plain sentence, and str0m's own messages pass only
//! when they read as plain text.

use std::fmt::Write;

use str0m::change::SdpOffer;
use str0m::RtcError;

use crate::session::RoleKind;
use crate::RelayError;

/// What the relay takes and gives, as named in refusals.
const VIDEO_FORMAT: &str =
    "H.264 (constrained baseline, main or high profile; packetization-mode 0 or 1)";
const AUDIO_FORMAT: &str = "Opus/48000/2";

/// Parses an offer; a parse failure is refused in plain words.
pub(crate) fn parse(offer_sdp: &str) -> Result<SdpOffer, RelayError> {
    SdpOffer::from_sdp_string(offer_sdp).map_err(|e| {
        tracing::debug!("unparsable offer: {e}");
        RelayError::BadOffer(not_sdp(offer_sdp))
    })
}

/// Why an offer is not SDP, as far as its lines tell without the parser's internals.
fn not_sdp(offer_sdp: &str) -> String {
    const PLAIN: &str = "the offer is not valid SDP";
    if offer_sdp.trim().is_empty() {
        return format!("{PLAIN}: it is empty");
    }
    if !offer_sdp.starts_with("v=0") {
        return format!("{PLAIN}: it must start with v=0");
    }
    let well_formed = |line: &str| {
        let bytes = line.as_bytes();
        line.is_empty() || (bytes.len() >= 2 && bytes[0].is_ascii_lowercase() && bytes[1] == b'=')
    };
    let malformed = offer_sdp
        .lines()
        .map(str::trim_end)
        .position(|line| !well_formed(line));
    match malformed {
        Some(n) => format!(
            "{PLAIN}: line {} is not of the form <letter>=<value>",
            n + 1
        ),
        None if !offer_sdp.lines().any(|l| l.starts_with("m=")) => {
            format!("{PLAIN}: it has no m-line")
        }
        None => format!("{PLAIN}: a line has a value the relay cannot read"),
    }
}

/// A str0m refusal of an offer, in words fit for the client.
pub(crate) fn refused(e: RtcError) -> RelayError {
    tracing::debug!("offer refused: {e}");
    let message = match e {
        RtcError::RemoteSdp(message) => plain(message),
        RtcError::Sdp(e) => plain(e.to_string()),
        _ => None,
    };
    RelayError::BadOffer(message.unwrap_or_else(|| "the offer could not be applied".to_owned()))
}

/// The text if it reads as a plain sentence: no addresses, escapes or paths of the server's own.
fn plain(text: String) -> Option<String> {
    let internal = text.contains("0x")
        || text.contains("Pointer")
        || text.contains(".rs")
        || text.contains('\\')
        || text.contains('{')
        || text.split_whitespace().any(|word| word.starts_with('/'))
        || text.chars().any(char::is_control);
    (!internal).then_some(text)
}

/// One m-line of an offer, as its text names it.
#[derive(Debug, Default)]
pub(crate) struct OfferedLine {
    /// `audio`, `video`, `application`...
    pub kind: String,
    /// The formats of the m-line itself (payload types), in order.
    pub pts: Vec<String>,
    /// The formats by name, as `name/clock rate` with the H.264 parameters that decide whether it is usable.
    pub formats: Vec<String>,
    /// The format a rejected m-line of the answer names, from the offer's own: the payload type and the
    /// `a=rtpmap` value that goes with it (none for a static payload type).
    pub rejected_format: Option<(String, Option<String>)>,
}

/// The payload types every SDP parser knows without an `a=rtpmap` (PCMU, G722, PCMA, CN).
const STATIC_PTS: [&str; 4] = ["0", "9", "8", "13"];

/// The m-lines of an offer, in order.
pub(crate) fn offered_lines(offer_sdp: &str) -> Vec<OfferedLine> {
    let mut lines: Vec<OfferedLine> = Vec::new();
    // Per m-line: (pt, encoding) of its rtpmaps and (pt, parameters) of its fmtps.
    let mut rtpmaps: Vec<Vec<(String, String)>> = Vec::new();
    let mut fmtps: Vec<Vec<(String, String)>> = Vec::new();
    for line in offer_sdp.lines().map(str::trim_end) {
        if let Some(media) = line.strip_prefix("m=") {
            let mut fields = media.split_whitespace();
            let kind = fields.next().unwrap_or_default().to_owned();
            let pts = fields.skip(2).map(str::to_owned).collect();
            lines.push(OfferedLine {
                kind,
                pts,
                formats: Vec::new(),
                rejected_format: None,
            });
            rtpmaps.push(Vec::new());
            fmtps.push(Vec::new());
        } else if let Some((pt, encoding)) = line
            .strip_prefix("a=rtpmap:")
            .and_then(|v| v.split_once(' '))
        {
            if let Some(maps) = rtpmaps.last_mut() {
                maps.push((pt.to_owned(), encoding.to_owned()));
            }
        } else if let Some((pt, params)) =
            line.strip_prefix("a=fmtp:").and_then(|v| v.split_once(' '))
        {
            if let Some(f) = fmtps.last_mut() {
                f.push((pt.to_owned(), params.to_owned()));
            }
        }
    }
    for ((line, maps), fmtps) in lines.iter_mut().zip(rtpmaps).zip(fmtps) {
        // The first format with an rtpmap any parser takes, or one that needs none.
        line.rejected_format = line.pts.iter().find_map(|pt| {
            let rtpmap = maps
                .iter()
                .find(|(p, encoding)| p == pt && well_formed_rtpmap(p, encoding))
                .map(|(_, encoding)| format!("{pt} {encoding}"));
            match rtpmap {
                Some(rtpmap) => Some((pt.clone(), Some(rtpmap))),
                None => STATIC_PTS
                    .contains(&pt.as_str())
                    .then(|| (pt.clone(), None)),
            }
        });
        for (pt, encoding) in maps {
            let name = encoding.split('/').next().unwrap_or_default();
            if ["rtx", "red", "ulpfec"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
                || name.eq_ignore_ascii_case(zego_fec::ENCODING_NAME)
            {
                continue;
            }
            let mut format = encoding.clone();
            if name.eq_ignore_ascii_case("H264") {
                let params = fmtps
                    .iter()
                    .find(|(p, _)| *p == pt)
                    .map(|(_, v)| v.as_str());
                let param = |key: &str| {
                    params?
                        .split(';')
                        .filter_map(|kv| kv.trim().split_once('='))
                        .find(|(k, _)| k.eq_ignore_ascii_case(key))
                        .map(|(_, v)| v.to_owned())
                };
                let _ = write!(
                    format,
                    " packetization-mode={} profile-level-id={}",
                    param("packetization-mode").unwrap_or_else(|| "0".into()),
                    param("profile-level-id").unwrap_or_else(|| "none".into()),
                );
            }
            if !line.formats.contains(&format) {
                line.formats.push(format);
            }
        }
    }
    lines
}

/// Whether an `a=rtpmap` value is one any SDP parser takes, so that the relay may echo it: an RTP payload type,
/// then `name/clock rate` with an optional `/channels`, the name without spaces or slashes and the numbers in
/// range.
fn well_formed_rtpmap(pt: &str, encoding: &str) -> bool {
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut parts = encoding.split('/');
    let (Some(name), Some(rate)) = (parts.next(), parts.next()) else {
        return false;
    };
    let channels = parts.next();
    number(pt)
        && pt.parse::<u8>().is_ok_and(|pt| pt <= 127)
        && !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_graphic())
        && number(rate)
        && rate.parse::<u32>().is_ok_and(|rate| rate > 0)
        && channels.is_none_or(|c| number(c) && c.parse::<u8>().is_ok())
        && parts.next().is_none()
}

/// Why an m-line of this kind was not usable: what the relay needed and what was offered instead.
fn missing(line: &OfferedLine) -> String {
    let needed = match line.kind.as_str() {
        "video" => VIDEO_FORMAT,
        "audio" => AUDIO_FORMAT,
        _ => return format!("{}: not audio or video", line.kind),
    };
    let offered = if line.formats.is_empty() {
        "nothing".to_owned()
    } else {
        line.formats.join(", ")
    };
    format!(
        "{}: no {needed} format offered; offered: {offered}",
        line.kind
    )
}

/// The refusal of an offer none of whose m-lines the relay can use. `rejected` holds the m-lines the answer
/// rejected (no common format); the others were usable formats in the wrong direction for `role`.
pub(crate) fn nothing_usable(
    role: RoleKind,
    offered: &[OfferedLine],
    rejected: &[usize],
) -> RelayError {
    let (who, verb) = match role {
        RoleKind::Publisher => ("a publisher", "send"),
        RoleKind::Player => ("a player", "receive"),
    };
    let reasons: Vec<String> = offered
        .iter()
        .enumerate()
        .map(|(i, line)| {
            if rejected.contains(&i) {
                missing(line)
            } else {
                format!("{}: not offered to {verb}", line.kind)
            }
        })
        .collect();
    let reasons = if reasons.is_empty() {
        "the offer has no m-line".to_owned()
    } else {
        reasons.join("; ")
    };
    RelayError::BadOffer(format!(
        "{who} must {verb} {VIDEO_FORMAT} video or {AUDIO_FORMAT} audio; {reasons}"
    ))
}

/// The indexes of the answer's rejected m-lines (port 0).
pub(crate) fn rejected_lines(answer: &str) -> Vec<usize> {
    answer
        .lines()
        .filter_map(|line| line.strip_prefix("m="))
        .enumerate()
        .filter(|(_, media)| media.split_whitespace().nth(1) == Some("0"))
        .map(|(i, _)| i)
        .collect()
}

/// Rejects the answer's m-lines that are open (port not 0) but name no format, and takes their mids out of the
/// BUNDLE group, as for any other rejected m-line. str0m matches a format of the other kind (Opus offered in a video
/// section) and then writes only the formats of the section's own kind, leaving an m-line no SDP parser takes.
/// The relay builds no track on such a section: it has no H.264 or Opus format of its kind.
pub(crate) fn reject_formatless_lines(answer: &str) -> String {
    let open_without_format = |media: &str| {
        let fields: Vec<&str> = media.split_whitespace().collect();
        fields.len() == 3 && fields[1] != "0"
    };
    // The m-line indexes to reject and their mids.
    let mut lines: Vec<usize> = Vec::new();
    let mut mids: Vec<&str> = Vec::new();
    let mut section: Option<(usize, bool)> = None;
    for line in answer.lines().map(str::trim_end) {
        if let Some(media) = line.strip_prefix("m=") {
            let index = section.map_or(0, |(i, _)| i + 1);
            let formatless = open_without_format(media);
            if formatless {
                lines.push(index);
            }
            section = Some((index, formatless));
        } else if let (Some(mid), Some((_, true))) = (line.strip_prefix("a=mid:"), section) {
            mids.push(mid);
        }
    }
    if lines.is_empty() {
        return answer.to_owned();
    }
    let mut out = String::with_capacity(answer.len());
    let mut index = None;
    for line in answer.lines().map(str::trim_end) {
        if let Some(media) = line.strip_prefix("m=") {
            let i = index.map_or(0, |i: usize| i + 1);
            index = Some(i);
            if lines.contains(&i) {
                let fields: Vec<&str> = media.split_whitespace().collect();
                let _ = write!(out, "m={} 0 {} \r\n", fields[0], fields[2]);
                continue;
            }
        } else if let (None, Some(group)) = (index, line.strip_prefix("a=group:BUNDLE")) {
            out.push_str("a=group:BUNDLE");
            for mid in group.split_whitespace().filter(|m| !mids.contains(m)) {
                out.push(' ');
                out.push_str(mid);
            }
            out.push_str("\r\n");
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

/// Gives every rejected m-line of the answer a format of the offer's m-line (the first with a well-formed
/// `a=rtpmap`, or a static one), with its `a=rtpmap` at the end of the section (RFC 3264: a rejected stream keeps at
/// least one format; browsers refuse an m-line without one, and some stacks a format without its rtpmap). An offer
/// with an m-line that has no such format is refused.
pub(crate) fn complete_rejected_lines(
    answer: &str,
    offered: &[OfferedLine],
) -> Result<String, RelayError> {
    let mut out = String::with_capacity(answer.len() + 64);
    let mut index = 0;
    // The rtpmap owed to the section being copied.
    let mut owed: Option<&str> = None;
    for line in answer.lines().map(str::trim_end) {
        if let Some(media) = line.strip_prefix("m=") {
            if let Some(rtpmap) = owed.take() {
                let _ = write!(out, "a=rtpmap:{rtpmap}\r\n");
            }
            let fields: Vec<&str> = media.split_whitespace().collect();
            let line_offered = offered.get(index);
            index += 1;
            if fields.len() == 3 && fields[1] == "0" {
                let Some((pt, rtpmap)) = line_offered.and_then(|o| o.rejected_format.as_ref())
                else {
                    return Err(RelayError::BadOffer(format!(
                        "m-line {index} ({}) has no format with a well-formed a=rtpmap",
                        fields[0]
                    )));
                };
                let _ = write!(out, "m={} 0 {} {pt}\r\n", fields[0], fields[2]);
                owed = rtpmap.as_deref();
                continue;
            }
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if let Some(rtpmap) = owed {
        let _ = write!(out, "a=rtpmap:{rtpmap}\r\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\n\
        o=- 1 2 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        t=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\n\
        a=rtpmap:111 opus/48000/2\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97 102\r\n\
        a=rtpmap:96 VP8/90000\r\n\
        a=rtpmap:97 rtx/90000\r\n\
        a=fmtp:97 apt=96\r\n\
        a=rtpmap:102 H264/90000\r\n\
        a=fmtp:102 profile-level-id=640c1f;packetization-mode=1\r\n";

    #[test]
    fn offered_formats_are_named_with_what_decides_h264() {
        let lines = offered_lines(OFFER);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].kind, "audio");
        assert_eq!(lines[0].formats, ["opus/48000/2", "PCMU/8000"]);
        assert_eq!(lines[1].pts, ["96", "97", "102"]);
        assert_eq!(
            lines[1].formats,
            [
                "VP8/90000",
                "H264/90000 packetization-mode=1 profile-level-id=640c1f"
            ]
        );
    }

    #[test]
    fn a_rejected_m_line_gets_the_first_offered_format() {
        let answer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
                      m=video 0 UDP/TLS/RTP/SAVPF \r\na=mid:1\r\n";
        assert_eq!(rejected_lines(answer), [1]);
        let completed = complete_rejected_lines(answer, &offered_lines(OFFER)).unwrap();
        assert!(
            completed.ends_with(
                "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\n"
            ),
            "{completed}"
        );
        assert!(completed.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"));
    }

    #[test]
    fn a_rejected_m_line_names_a_format_every_parser_takes() {
        let offer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\n\
                     a=rtpmap:102 VPort-wide-cc-extensions-01\r\na=rtpmap:102 VP8/90000\r\n\
                     m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=rtpmap:111 opus/48000/300\r\n\
                     m=video 9 UDP/TLS/RTP/SAVPF 100\r\na=rtpmap:100 VP8\r\n";
        let lines = offered_lines(offer);
        let format = |i: usize| lines[i].rejected_format.clone();
        assert_eq!(
            format(0),
            Some(("102".into(), Some("102 VP8/90000".into())))
        );
        assert_eq!(format(1), Some(("0".into(), None)));
        assert_eq!(format(2), None);
        for (pt, encoding, taken) in [
            ("111", "opus/48000/2", true),
            ("96", "H264/90000", true),
            ("96", "x-custom:codec/90000", true),
            ("128", "VP8/90000", false),
            ("96", "VP8/0", false),
            ("96", "VP8/", false),
            ("96", "VP 8/90000", false),
            ("96", "/90000", false),
            ("96", "opus/48000/300", false),
        ] {
            assert_eq!(well_formed_rtpmap(pt, encoding), taken, "{pt} {encoding}");
        }
        let answer = "v=0\r\nm=video 0 UDP/TLS/RTP/SAVPF \r\na=mid:0\r\n\
                      m=audio 0 UDP/TLS/RTP/SAVPF \r\na=mid:1\r\n";
        let completed = complete_rejected_lines(answer, &lines).unwrap();
        assert_eq!(
            completed,
            "v=0\r\nm=video 0 UDP/TLS/RTP/SAVPF 102\r\na=mid:0\r\na=rtpmap:102 VP8/90000\r\n\
             m=audio 0 UDP/TLS/RTP/SAVPF 0\r\na=mid:1\r\n"
        );
        // The third m-line has nothing to name when rejected: the offer is refused, saying so.
        let answer = format!("{answer}m=video 0 UDP/TLS/RTP/SAVPF \r\na=mid:2\r\n");
        let Err(RelayError::BadOffer(message)) = complete_rejected_lines(&answer, &lines) else {
            panic!("an m-line without a usable format was answered");
        };
        assert_eq!(
            message,
            "m-line 3 (video) has no format with a well-formed a=rtpmap"
        );
    }

    #[test]
    fn an_open_m_line_without_a_format_is_rejected_and_leaves_the_bundle() {
        let answer = "v=0\r\na=group:BUNDLE 0 1\r\n\
                      m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n\
                      m=video 9 UDP/TLS/RTP/SAVPF \r\na=mid:1\r\na=sendonly\r\n";
        let fixed = reject_formatless_lines(answer);
        assert_eq!(
            fixed,
            "v=0\r\na=group:BUNDLE 0\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n\
             m=video 0 UDP/TLS/RTP/SAVPF \r\na=mid:1\r\na=sendonly\r\n"
        );
        assert_eq!(rejected_lines(&fixed), [1]);
        // An answer whose m-lines all name a format is left as it is.
        assert_eq!(reject_formatless_lines(&fixed), fixed);
    }

    #[test]
    fn unparsable_offers_are_described_without_the_parser() {
        for offer in [
            "",
            "hello",
            "v=0\r\nthis is not a line\r\n",
            "v=0\r\no=x\r\n",
        ] {
            let Err(RelayError::BadOffer(message)) = parse(offer) else {
                panic!("{offer:?} parsed");
            };
            assert!(
                message.starts_with("the offer is not valid SDP"),
                "{message}"
            );
            assert!(
                !message.contains("0x") && !message.contains("Pointer"),
                "{message}"
            );
        }
    }

    #[test]
    fn internal_text_is_not_plain() {
        assert!(plain("Expected at least one PT for mid: 0".into()).is_some());
        assert!(plain("Unexpected PointerOffset(0x7f00deadbeef)".into()).is_none());
        assert!(plain("panicked at src/sdp/parser.rs:12".into()).is_none());
    }
}
