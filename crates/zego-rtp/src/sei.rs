//! App data carried in H.264 SEI NAL units (ITU-T H.264 7.3.2.3 and annex D): the publisher writes one message per
//! NAL unit into the access unit of the next encoded frame, so the data reaches players with that frame through
//! every hop that forwards the video (relays, edges, recorders); players read the messages back out of the access
//! units they assemble.

use crate::h264::{NAL_IDR, NAL_SEI, NAL_SLICE};

/// ZEGO's own SEI payload type: the message is the app's data as given.
pub const PAYLOAD_TYPE_ZEGO: u32 = 243;
/// `user_data_unregistered` (D.1.6): a 16-byte UUID, then the data. The app's data begins with the UUID.
pub const PAYLOAD_TYPE_USER_DATA_UNREGISTERED: u32 = 5;
/// The length of the UUID a `user_data_unregistered` message begins with.
pub const UUID_LEN: usize = 16;
/// The most data one message carries.
pub const MAX_DATA: usize = 4096;

const TYPE_MASK: u8 = 0x1F;
/// The SEI NAL unit header: forbidden bit 0, nal_ref_idc 0, type 6.
const SEI_HEADER: u8 = NAL_SEI;
const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// rbsp_trailing_bits: the stop bit, then alignment zeros.
const RBSP_STOP: u8 = 0x80;

/// One SEI NAL unit in Annex B form (4-byte start code) holding one message of `payload_type` with `data`.
pub fn nal_unit(payload_type: u32, data: &[u8]) -> Vec<u8> {
    let mut rbsp = Vec::with_capacity(data.len() + 8);
    push_ff_coded(&mut rbsp, payload_type as usize);
    push_ff_coded(&mut rbsp, data.len());
    rbsp.extend_from_slice(data);
    rbsp.push(RBSP_STOP);
    let mut nal = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 6);
    nal.extend_from_slice(&START_CODE);
    nal.push(SEI_HEADER);
    escape_into(&rbsp, &mut nal);
    nal
}

/// `access_unit` (Annex B) with `sei` (Annex B NAL units) placed before its first slice, where H.264 wants SEI: after
/// any delimiter and parameter sets, before the picture. An access unit without a slice gets them at its end.
pub fn insert_before_first_slice(access_unit: &[u8], sei: &[u8]) -> Vec<u8> {
    let at = nal_units(access_unit)
        .find(|n| matches!(n.header & TYPE_MASK, NAL_SLICE..=NAL_IDR))
        .map_or(access_unit.len(), |n| n.start_code_at);
    let mut out = Vec::with_capacity(access_unit.len() + sei.len());
    out.extend_from_slice(&access_unit[..at]);
    out.extend_from_slice(sei);
    out.extend_from_slice(&access_unit[at..]);
    out
}

/// The messages of every SEI NAL unit of an Annex B access unit, in order, as (payload type, data). A malformed
/// message ends the reading of its NAL unit; what came before it stands.
pub fn messages(access_unit: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    for nal in nal_units(access_unit).filter(|n| n.header & TYPE_MASK == NAL_SEI) {
        let rbsp = unescape(nal.body);
        let mut rest = rbsp.as_slice();
        // more_rbsp_data: anything left but the stop bit.
        while !rest.is_empty() && rest != [RBSP_STOP] {
            let Some((payload_type, after)) = read_ff_coded(rest) else {
                break;
            };
            let Some((size, after)) = read_ff_coded(after) else {
                break;
            };
            let Some(payload) = after.get(..size) else {
                break;
            };
            out.push((payload_type as u32, payload.to_vec()));
            rest = &after[size..];
        }
    }
    out
}

/// The app data of an access unit: ZEGO's messages and `user_data_unregistered` ones (UUID included), in order.
pub fn app_data(access_unit: &[u8]) -> Vec<Vec<u8>> {
    if !crate::h264::annex_b_nal_types(access_unit).any(|t| t == NAL_SEI) {
        return Vec::new();
    }
    messages(access_unit)
        .into_iter()
        .filter(|(t, data)| match *t {
            PAYLOAD_TYPE_ZEGO => true,
            PAYLOAD_TYPE_USER_DATA_UNREGISTERED => data.len() >= UUID_LEN,
            _ => false,
        })
        .map(|(_, data)| data)
        .collect()
}

/// A NAL unit of an Annex B stream.
struct NalUnit<'a> {
    /// Where its start code begins (a 4-byte one counts from its leading zero).
    start_code_at: usize,
    header: u8,
    /// The bytes after the header, up to the next start code, trailing zeros removed.
    body: &'a [u8],
}

fn nal_units(stream: &[u8]) -> impl Iterator<Item = NalUnit<'_>> {
    let mut at = find_start_code(stream, 0);
    std::iter::from_fn(move || {
        let (code_at, header_at) = at?;
        let header = *stream.get(header_at)?;
        let next = find_start_code(stream, header_at + 1);
        let end = next.map_or(stream.len(), |(c, _)| c);
        let mut body = &stream[header_at + 1..end.max(header_at + 1)];
        while let [rest @ .., 0] = body {
            body = rest;
        }
        at = next;
        Some(NalUnit {
            start_code_at: code_at,
            header,
            body,
        })
    })
}

/// The next start code at or after `from`: (where it begins, where the NAL unit after it begins).
fn find_start_code(stream: &[u8], from: usize) -> Option<(usize, usize)> {
    let at = stream
        .get(from..)?
        .windows(3)
        .position(|w| w == [0, 0, 1])?
        + from;
    let begins = if at > 0 && stream[at - 1] == 0 {
        at - 1
    } else {
        at
    };
    Some((begins, at + 3))
}

/// A value coded as a run of 0xFF bytes and a last byte below 0xFF (7.3.2.3.1).
fn push_ff_coded(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0xFF {
        out.push(0xFF);
        value -= 0xFF;
    }
    out.push(value as u8);
}

fn read_ff_coded(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut value = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        value = value.checked_add(usize::from(b))?;
        if b != 0xFF {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

/// Emulation prevention (7.4.1): a 0x03 after two zeros where the next byte would be 0..=3.
fn escape_into(rbsp: &[u8], out: &mut Vec<u8>) {
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
}

fn unescape(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut zeros = 0;
    for &b in body {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::annex_b_nal_types;

    const SPS: &[u8] = &[0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f];
    const PPS: &[u8] = &[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80];
    const IDR: &[u8] = &[0, 0, 1, 0x65, 0x88, 0x84, 0x00];

    fn keyframe() -> Vec<u8> {
        [SPS, PPS, IDR].concat()
    }

    #[test]
    fn data_goes_in_and_comes_back_unchanged() {
        for data in [
            b"score:3-1".to_vec(),
            vec![0; 300],
            (0..=255u8).cycle().take(MAX_DATA).collect(),
            vec![0, 0, 3, 0, 0, 1, 0, 0, 0, 0, 2],
            vec![],
        ] {
            let au = insert_before_first_slice(&keyframe(), &nal_unit(PAYLOAD_TYPE_ZEGO, &data));
            assert_eq!(messages(&au), vec![(PAYLOAD_TYPE_ZEGO, data.clone())]);
        }
    }

    #[test]
    fn the_bytes_are_those_the_web_sdk_writes() {
        // The same vector is in web/sdk/test/sei.test.js.
        assert_eq!(
            nal_unit(PAYLOAD_TYPE_ZEGO, &[0, 0, 1]),
            [0, 0, 0, 1, 6, 243, 3, 0, 0, 3, 1, 0x80]
        );
    }

    #[test]
    fn the_escaped_unit_holds_no_start_code() {
        let nal = nal_unit(PAYLOAD_TYPE_ZEGO, &[0, 0, 0, 0, 1, 0, 0, 2, 0, 0]);
        assert!(!nal[4..]
            .windows(3)
            .any(|w| w == [0, 0, 1] || w == [0, 0, 0]));
        assert_eq!(nal[4], 0x06);
    }

    #[test]
    fn sei_goes_after_the_parameter_sets_and_before_the_slice() {
        let sei = [
            nal_unit(PAYLOAD_TYPE_ZEGO, b"a"),
            nal_unit(PAYLOAD_TYPE_ZEGO, b"b"),
        ]
        .concat();
        let au = insert_before_first_slice(&keyframe(), &sei);
        assert_eq!(annex_b_nal_types(&au).collect::<Vec<_>>(), [7, 8, 6, 6, 5]);
        assert_eq!(app_data(&au), [b"a".to_vec(), b"b".to_vec()]);
        // A delta frame (no parameter sets): first.
        let delta = [0, 0, 0, 1, 0x41, 0x9a, 0x02];
        let au = insert_before_first_slice(&delta, &sei);
        assert_eq!(annex_b_nal_types(&au).collect::<Vec<_>>(), [6, 6, 1]);
    }

    #[test]
    fn app_data_is_zego_and_unregistered_messages() {
        let uuid_and_data: Vec<u8> = (1..=UUID_LEN as u8).chain(*b"hello").collect();
        let sei = [
            nal_unit(PAYLOAD_TYPE_USER_DATA_UNREGISTERED, &uuid_and_data),
            // Recovery point and a too-short unregistered message: not app data.
            nal_unit(6, &[0x84]),
            nal_unit(PAYLOAD_TYPE_USER_DATA_UNREGISTERED, b"short"),
            nal_unit(PAYLOAD_TYPE_ZEGO, b"z"),
        ]
        .concat();
        let au = insert_before_first_slice(&keyframe(), &sei);
        assert_eq!(app_data(&au), [uuid_and_data, b"z".to_vec()]);
        assert!(app_data(&keyframe()).is_empty());
    }

    #[test]
    fn several_messages_in_one_unit_are_read_in_order() {
        // Type 243 of 1 byte, type 5 of 16 bytes, the stop bit.
        let mut rbsp = Vec::new();
        push_ff_coded(&mut rbsp, 243);
        rbsp.extend([1, b'x']);
        push_ff_coded(&mut rbsp, 5);
        rbsp.push(16);
        rbsp.extend([7; 16]);
        rbsp.push(RBSP_STOP);
        let mut au = vec![0, 0, 0, 1, 0x06];
        escape_into(&rbsp, &mut au);
        assert_eq!(messages(&au), vec![(243, b"x".to_vec()), (5, vec![7; 16])]);
    }

    #[test]
    fn sizes_of_255_and_more_take_several_bytes() {
        let mut v = Vec::new();
        push_ff_coded(&mut v, 255);
        assert_eq!(v, [0xFF, 0]);
        v.clear();
        push_ff_coded(&mut v, 600);
        assert_eq!(v, [0xFF, 0xFF, 90]);
        assert_eq!(read_ff_coded(&v), Some((600, &[][..])));
        assert_eq!(read_ff_coded(&[0xFF, 0xFF]), None);
    }

    #[test]
    fn malformed_units_give_what_they_hold_and_never_panic() {
        // Size beyond the unit, a unit cut after its type, a lone header, an empty stream.
        assert!(messages(&[0, 0, 1, 0x06, 243, 50, 1, 2]).is_empty());
        assert!(messages(&[0, 0, 1, 0x06, 0xFF]).is_empty());
        assert!(messages(&[0, 0, 1, 0x06]).is_empty());
        assert!(messages(&[0, 0, 1]).is_empty());
        assert!(messages(&[]).is_empty());
        let mut cut = nal_unit(PAYLOAD_TYPE_ZEGO, b"one");
        cut.extend_from_slice(&nal_unit(PAYLOAD_TYPE_ZEGO, b"two")[..7]);
        assert_eq!(messages(&cut), vec![(PAYLOAD_TYPE_ZEGO, b"one".to_vec())]);
        // Every prefix of a good unit reads without panicking.
        let au = insert_before_first_slice(&keyframe(), &nal_unit(PAYLOAD_TYPE_ZEGO, &[9; 700]));
        for end in 0..au.len() {
            let _ = messages(&au[..end]);
        }
    }
}
