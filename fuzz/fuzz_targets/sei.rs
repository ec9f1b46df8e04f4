//! H.264 SEI as players read it out of assembled access units (`zego_rtp::sei`): arbitrary bytes as an Annex B
//! access unit, and arbitrary app data written as an SEI NAL unit into a keyframe and read back.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use zego_rtp::sei;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Read as an access unit as received.
    access_unit: Vec<u8>,
    /// Written by the publisher, then read back.
    data: Vec<u8>,
    unregistered: bool,
}

const KEYFRAME: &[u8] = &[
    0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 1, 0x65, 0x88,
    0x84,
];

fuzz_target!(|input: Input| {
    // Anything reads without panicking, and no message claims more bytes than the access unit holds.
    for (_, data) in sei::messages(&input.access_unit) {
        assert!(data.len() <= input.access_unit.len());
    }
    let _ = sei::app_data(&input.access_unit);

    // What is written comes back unchanged, and the slice after it is intact.
    let data = &input.data[..input.data.len().min(sei::MAX_DATA)];
    let payload_type = if input.unregistered {
        sei::PAYLOAD_TYPE_USER_DATA_UNREGISTERED
    } else {
        sei::PAYLOAD_TYPE_ZEGO
    };
    let unit = sei::nal_unit(payload_type, data);
    let au = sei::insert_before_first_slice(KEYFRAME, &unit);
    assert_eq!(sei::messages(&au), vec![(payload_type, data.to_vec())]);
    assert!(au.ends_with(&[0, 0, 1, 0x65, 0x88, 0x84]));
    let expected: Vec<Vec<u8>> = if !input.unregistered || data.len() >= sei::UUID_LEN {
        vec![data.to_vec()]
    } else {
        Vec::new()
    };
    assert_eq!(sei::app_data(&au), expected);
});
