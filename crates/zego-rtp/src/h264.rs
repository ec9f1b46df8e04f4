//! H.264 as RTP carries it (RFC 6184) and as encoders write it (Annex B): NAL unit types, and which ones a payload
//! or an access unit holds. Each predicate says what it tests; callers choose the one their decision needs.

/// Coded slice of a non-IDR picture.
pub const NAL_SLICE: u8 = 1;
/// Coded slice of an IDR picture.
pub const NAL_IDR: u8 = 5;
/// Sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// Picture parameter set.
pub const NAL_PPS: u8 = 8;
/// Supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// Access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// Single-time aggregation packet.
pub const STAP_A: u8 = 24;
/// Fragmentation unit.
pub const FU_A: u8 = 28;

const TYPE_MASK: u8 = 0x1F;
const FU_START: u8 = 0x80;

/// The types of the NAL units an RTP payload begins: a single NAL unit's, each one's in a STAP-A, the fragmented
/// unit's for the first fragment of an FU-A, none for a later fragment or anything malformed.
pub fn payload_nal_types(payload: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let (single, mut aggregated) = match payload.first().map(|b| b & TYPE_MASK) {
        None => (None, &[][..]),
        Some(STAP_A) => (None, &payload[1..]),
        Some(FU_A) => {
            let start = payload.get(1).filter(|&&fu| fu & FU_START != 0);
            (start.map(|fu| fu & TYPE_MASK), &[][..])
        }
        Some(t) => (Some(t), &[][..]),
    };
    // A STAP-A body is a sequence of (16-bit size, NAL unit).
    let stap_a = std::iter::from_fn(move || {
        let size = usize::from(u16::from_be_bytes([
            *aggregated.first()?,
            *aggregated.get(1)?,
        ]));
        let nal = aggregated.get(2..2 + size)?;
        aggregated = &aggregated[2 + size..];
        Some(nal.first()? & TYPE_MASK)
    });
    single.into_iter().chain(stap_a)
}

/// Whether the payload's first NAL unit is an SPS (alone, or first in a STAP-A): where a decoder can start, since
/// every IDR picture our encoder and browsers send comes after its parameter sets, while an IDR slice seen first
/// may not be its picture's first slice.
pub fn begins_with_sps(payload: &[u8]) -> bool {
    payload_nal_types(payload).next() == Some(NAL_SPS)
}

/// Whether the payload begins an IDR slice or an SPS anywhere in it: a packet at which a keyframe's access unit
/// may start.
pub fn begins_idr_or_sps(payload: &[u8]) -> bool {
    payload_nal_types(payload).any(|t| t == NAL_IDR || t == NAL_SPS)
}

/// Whether the payload begins NAL units that a decoder may skip and that come before a picture's parameter sets
/// and slices: access unit delimiters and SEI (x264, as GStreamer runs it, opens every access unit with a delimiter).
/// False for a later FU-A fragment or anything malformed.
pub fn begins_only_prelude(payload: &[u8]) -> bool {
    let mut any = false;
    payload_nal_types(payload).all(|t| {
        any = true;
        t == NAL_AUD || t == NAL_SEI
    }) && any
}

/// The NAL unit types of an Annex B access unit (start codes `00 00 01` or `00 00 00 01`), in order.
pub fn annex_b_nal_types(access_unit: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        while at + 3 < access_unit.len() {
            if access_unit[at..at + 3] == [0, 0, 1] {
                let header = access_unit[at + 3];
                at += 4;
                return Some(header & TYPE_MASK);
            }
            at += 1;
        }
        None
    })
}

/// Whether an Annex B access unit holds an IDR slice.
pub fn contains_idr(access_unit: &[u8]) -> bool {
    annex_b_nal_types(access_unit).any(|t| t == NAL_IDR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prelude_is_delimiters_and_sei_only() {
        assert!(begins_only_prelude(&[0x09, 0xF0]));
        assert!(begins_only_prelude(&[0x06, 0x05, 0x01]));
        // STAP-A of a delimiter and an SEI; and one that also holds an SPS.
        assert!(begins_only_prelude(&[
            24, 0, 2, 0x09, 0xF0, 0, 2, 0x06, 0x05
        ]));
        assert!(!begins_only_prelude(&[
            24, 0, 2, 0x09, 0xF0, 0, 2, 0x67, 0x42
        ]));
        assert!(!begins_only_prelude(&[0x67, 0x42]));
        assert!(!begins_only_prelude(&[0x7C, 0x05]), "a later fragment");
        assert!(!begins_only_prelude(&[]));
    }

    #[test]
    fn single_nal_units() {
        assert!(begins_idr_or_sps(&[0x65, 0x88, 0x80]), "IDR slice");
        assert!(!begins_with_sps(&[0x65, 0x88, 0x80]), "IDR slice");
        assert!(begins_idr_or_sps(&[0x67, 0x42, 0xe0, 0x1f]), "SPS");
        assert!(begins_with_sps(&[0x67, 0x42, 0xe0, 0x1f]), "SPS");
        assert!(!begins_idr_or_sps(&[0x41, 0x9a]), "non-IDR slice");
        assert!(!begins_idr_or_sps(&[0x68, 0xce]), "PPS alone");
        assert!(!begins_idr_or_sps(&[]));
        assert!(!begins_with_sps(&[]));
    }

    #[test]
    fn stap_a() {
        let sps_pps = [0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce];
        assert!(begins_idr_or_sps(&sps_pps));
        assert!(begins_with_sps(&sps_pps));
        let pps_sps = [0x78, 0x00, 0x02, 0x68, 0xce, 0x00, 0x02, 0x67, 0x42];
        assert!(begins_idr_or_sps(&pps_sps), "an SPS anywhere in it");
        assert!(!begins_with_sps(&pps_sps), "not first");
        assert_eq!(
            payload_nal_types(&pps_sps).collect::<Vec<_>>(),
            [NAL_PPS, NAL_SPS]
        );
        let slice = [0x78, 0x00, 0x02, 0x41, 0x9a];
        assert!(!begins_idr_or_sps(&slice));
        let truncated = [0x78, 0x00, 0x09, 0x67];
        assert!(!begins_idr_or_sps(&truncated));
        assert!(!begins_with_sps(&truncated));
    }

    #[test]
    fn fu_a_start_only() {
        assert!(begins_idr_or_sps(&[0x7c, 0x85, 0x88]), "FU-A start of IDR");
        assert!(
            !begins_idr_or_sps(&[0x7c, 0x05, 0x88]),
            "FU-A middle of IDR"
        );
        assert!(
            !begins_idr_or_sps(&[0x7c, 0x81, 0x88]),
            "FU-A start of a slice"
        );
        assert!(!begins_idr_or_sps(&[0x7c]), "FU-A without header");
        assert_eq!(
            payload_nal_types(&[0x7c, 0x81, 0x88]).collect::<Vec<_>>(),
            [NAL_SLICE]
        );
    }

    #[test]
    fn annex_b_access_units() {
        let keyframe = [
            0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0x88,
        ];
        assert_eq!(
            annex_b_nal_types(&keyframe).collect::<Vec<_>>(),
            [NAL_SPS, NAL_PPS, NAL_IDR]
        );
        assert!(contains_idr(&keyframe));
        assert!(!contains_idr(&[0, 0, 0, 1, 0x41, 0x9a]));
        assert!(!contains_idr(&[0, 0, 1]), "a start code without a header");
        assert!(!contains_idr(&[]));
    }
}
