//! RTP timestamps unwrapped to 64 bits, for the media time between frames of one stream.

/// `ts` extended to the value nearest `previous` (less than 2^31 either side); the first of a stream is itself.
pub fn extend(previous: Option<i64>, ts: u32) -> i64 {
    match previous {
        None => i64::from(ts),
        Some(previous) => previous + i64::from(ts.wrapping_sub(previous as u32) as i32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_unwrap_across_the_wrap_both_ways() {
        let max = i64::from(u32::MAX);
        assert_eq!(extend(None, u32::MAX), max);
        assert_eq!(extend(Some(max), 5), max + 6);
        assert_eq!(extend(Some(max + 6), u32::MAX - 3), max - 3);
        assert_eq!(extend(Some(100), 50), 50, "reordered, before the wrap");
        assert_eq!(extend(Some(10), u32::MAX), -1, "before the first");
    }
}
