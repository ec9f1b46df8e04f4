//! RTP sequence numbers unwrapped to 64 bits: the one definition for everyone who counts or orders a stream's
//! packets (the FEC coder and decoder, the frame assembler, the loss and downlink counts, the relay).

/// Where a stream's first packet is placed: far from zero, so the stream can also go backwards (reordering) from
/// its first packet.
const FIRST: u64 = 1 << 32;

/// The extended sequence number whose low 16 bits are `seq` and which lies nearest `reference` (less than 2^15
/// either side); `None` where that would be below zero.
pub fn nearest(reference: u64, seq: u16) -> Option<u64> {
    let delta = i64::from(seq.wrapping_sub(reference as u16) as i16);
    reference.checked_add_signed(delta)
}

/// `seq` extended next to `newest`, the newest extended number of its stream so far (`None` before the first).
pub fn extend(newest: Option<u64>, seq: u16) -> u64 {
    match newest {
        None => FIRST + u64::from(seq),
        Some(newest) => nearest(newest, seq).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_unwrap_across_the_wrap_both_ways() {
        let first = extend(None, 65_535);
        assert_eq!(first as u16, 65_535);
        assert_eq!(extend(Some(first), 0), first + 1);
        assert_eq!(extend(Some(first + 1), 65_534), first - 1);
        assert_eq!(nearest(70_000, 70_000u64 as u16 + 32_767), Some(102_767));
        assert_eq!(nearest(70_000, 70_000u64 as u16 + 32_768), Some(37_232));
        assert_eq!(nearest(3, 65_535), None, "below zero");
        assert_eq!(extend(Some(3), 65_535), 0);
    }
}
