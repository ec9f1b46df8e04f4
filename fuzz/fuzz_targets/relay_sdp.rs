//! The relay's SDP reading and editing: the repair format and FEC group read from an offer's video section, the
//! answer edited to announce the repair stream (every line kept, in order, and the additions present), and whole
//! offers answered as for a publisher and a player (an answer the relay makes must parse as SDP again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zego_relay::fuzzing::{accept, announce_fec, answer_parses, offered_fec_group, offered_fec_pt};

/// The input: a flags byte (bit 0 publisher, bit 1 a repair stream sent), the repair payload type, the media and
/// repair SSRCs (4 bytes each), a mid length and the mid, then the SDP.
struct Input<'a> {
    sdp: &'a str,
    mid: &'a str,
    pt: u8,
    sent: Option<(u32, u32)>,
    publisher: bool,
}

impl<'a> Input<'a> {
    fn read(data: &'a [u8]) -> Option<Self> {
        let (head, rest) = data.split_at_checked(11)?;
        let mid_len = usize::from(head[10] % 8);
        let (mid, sdp) = rest.split_at_checked(mid_len)?;
        let ssrc = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        Some(Input {
            sdp: std::str::from_utf8(sdp).ok()?,
            mid: std::str::from_utf8(mid).ok()?,
            pt: head[1],
            sent: (head[0] & 2 != 0).then(|| (ssrc(2), ssrc(6))),
            publisher: head[0] & 1 != 0,
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    let sdp = input.sdp;
    let pt = offered_fec_pt(sdp);
    let group = offered_fec_group(sdp);
    if let Some(pt) = pt {
        assert!(pt < 128, "payload type {pt} does not fit RTP");
        assert!(sdp.contains(&format!("a=rtpmap:{pt} ")));
    }
    if let Some((media, repair)) = group {
        assert!(sdp.contains("a=ssrc-group:FEC-FR "));
        let _ = (media, repair);
    }

    check_announce(sdp, input.mid, input.pt, input.sent);

    if let Ok(answer) = accept(input.publisher, sdp) {
        assert!(answer.starts_with("v=0"), "an answer that is not SDP");
        // The relay's answer, edits included, is what the peer parses.
        assert!(
            answer_parses(&answer),
            "the relay made an answer it cannot read itself:\n{answer}"
        );
    }
});

fn check_announce(sdp: &str, mid: &str, pt: u8, sent: Option<(u32, u32)>) {
    // A mid is a token: the relay only ever names one str0m negotiated.
    if mid.is_empty() || !mid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return;
    }
    let out = announce_fec(sdp, mid, pt, sent);
    let before: Vec<&str> = sdp.lines().map(str::trim_end).collect();
    let after: Vec<&str> = out.lines().collect();
    let mid_line = format!("a=mid:{mid}");
    let rtpmap = format!("a=rtpmap:{pt} flexfec-rs/90000");
    let mut i = 0;
    let mut in_section = false;
    let mut section_has_mid = false;
    let mut announced = 0usize;
    for (n, line) in before.iter().enumerate() {
        if line.starts_with("m=") {
            let end = before[n + 1..]
                .iter()
                .position(|l| l.starts_with("m="))
                .map_or(before.len(), |p| n + 1 + p);
            section_has_mid = before[n..end].contains(&mid_line.as_str());
            in_section = true;
            if section_has_mid {
                assert_eq!(
                    after[i],
                    format!("{line} {pt}"),
                    "m-line without the payload type"
                );
                i += 1;
                announced += 1;
                continue;
            }
        }
        assert_eq!(after[i], *line, "line {n} changed");
        i += 1;
        let section_ends = before.get(n + 1).is_none_or(|l| l.starts_with("m="));
        if in_section && section_has_mid && section_ends {
            assert_eq!(after[i], rtpmap);
            i += 1;
            if let Some((media, repair)) = sent {
                assert_eq!(after[i], format!("a=ssrc-group:FEC-FR {media} {repair}"));
                assert!(after[i + 1].starts_with(&format!("a=ssrc:{repair} cname:")));
                i += 2;
            }
        }
    }
    assert_eq!(i, after.len(), "lines added beyond the announcement");
    let _ = announced;
}
