//! Just enough of the H.264 RTP payload format (RFC 6184) to see where a keyframe starts.

const NAL_TYPE_MASK: u8 = 0x1F;
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;
const FU_START: u8 = 0x80;

/// Whether this RTP payload opens a keyframe: an IDR slice or the SPS in front of one, as a single NAL unit, inside
/// a STAP-A aggregate, or as the first fragment of an FU-A.
///
/// A new player starts at such a packet, so its decoder never sees a picture that refers to one it did not get.
pub(crate) fn starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & NAL_TYPE_MASK {
        NAL_IDR | NAL_SPS => true,
        STAP_A => stap_a_nal_types(&payload[1..]).any(|t| t == NAL_IDR || t == NAL_SPS),
        FU_A => payload.get(1).is_some_and(|&fu| {
            fu & FU_START != 0 && matches!(fu & NAL_TYPE_MASK, NAL_IDR | NAL_SPS)
        }),
        _ => false,
    }
}

/// NAL unit types inside a STAP-A body: a sequence of (16-bit size, NAL unit).
fn stap_a_nal_types(mut body: &[u8]) -> impl Iterator<Item = u8> + '_ {
    std::iter::from_fn(move || {
        let size = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
        let nal = body.get(2..2 + size)?;
        body = &body[2 + size..];
        Some(nal.first()? & NAL_TYPE_MASK)
    })
}

#[cfg(test)]
mod tests {
    use super::starts_keyframe;

    #[test]
    fn single_nal_units() {
        assert!(starts_keyframe(&[0x65, 0x88, 0x80]), "IDR slice");
        assert!(starts_keyframe(&[0x67, 0x42, 0xe0, 0x1f]), "SPS");
        assert!(!starts_keyframe(&[0x41, 0x9a]), "non-IDR slice");
        assert!(!starts_keyframe(&[0x68, 0xce]), "PPS alone");
        assert!(!starts_keyframe(&[]));
    }

    #[test]
    fn stap_a_with_sps_and_pps() {
        let stap = [0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce];
        assert!(starts_keyframe(&stap));
        let stap_p = [0x78, 0x00, 0x02, 0x41, 0x9a];
        assert!(!starts_keyframe(&stap_p));
        let truncated = [0x78, 0x00, 0x09, 0x67];
        assert!(!starts_keyframe(&truncated));
    }

    #[test]
    fn fu_a_start_of_idr_only() {
        assert!(starts_keyframe(&[0x7c, 0x85, 0x88]), "FU-A start of IDR");
        assert!(!starts_keyframe(&[0x7c, 0x05, 0x88]), "FU-A middle of IDR");
        assert!(
            !starts_keyframe(&[0x7c, 0x81, 0x88]),
            "FU-A start of non-IDR"
        );
        assert!(!starts_keyframe(&[0x7c]), "FU-A without header");
    }
}
