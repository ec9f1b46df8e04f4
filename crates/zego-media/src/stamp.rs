//! A capture timestamp and frame number drawn into the pixels, so glass-to-glass latency can be
//! read off decoded frames without any side channel.
//!
//! Layout: a strip across the top of the frame, [`ROWS`] rows of [`COLUMNS`] square luma blocks,
//! each block one bit (16 = 0, 235 = 1). The 120 bits are a magic byte, the 64-bit capture time,
//! the low 32 bits of the frame number and a CRC-16 over all of them. Blocks are large (a fortieth
//! of the width) so H.264 at real-time bitrates keeps them legible, and reading averages only
//! the block interiors, away from ringing at the edges. A block whose average is not clearly
//! dark or bright, a wrong magic byte or a CRC mismatch makes [`read`] return `None`: a damaged
//! stamp is rejected rather than misread.

use crate::frame::VideoFrame;

/// Blocks per row of the strip.
pub const COLUMNS: u32 = 40;
/// Rows of blocks in the strip.
pub const ROWS: u32 = 3;
/// Smallest block side; narrower frames (under 160 pixels) carry no stamp.
pub const MIN_BLOCK: u32 = 4;

const BITS: usize = (COLUMNS * ROWS) as usize;
const MAGIC: u8 = 0xA5;
const DARK: u8 = 16;
const BRIGHT: u8 = 235;
/// Interior averages between these are neither a clear 0 nor a clear 1.
const MAX_DARK: u32 = 90;
const MIN_BRIGHT: u32 = 160;

/// What a stamp carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// Wall-clock unix microseconds at capture.
    pub capture_time_us: u64,
    /// Frame counter; only the low 32 bits are carried.
    pub frame_number: u64,
}

/// Side in pixels of one stamp block for a frame width: a fortieth of the width, rounded down
/// to a multiple of 4 so blocks line up with the codec's 4x4 transform. `None` if the frame is
/// too small to carry a stamp.
pub fn block_size(width: u32, height: u32) -> Option<u32> {
    let block = (width / COLUMNS) & !3;
    (block >= MIN_BLOCK && height >= block * ROWS).then_some(block)
}

/// Height in pixels of the stamp strip at the top of a frame of this size (0 if none fits).
pub fn strip_height(width: u32, height: u32) -> u32 {
    block_size(width, height).map_or(0, |b| b * ROWS)
}

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF). The non-zero init keeps an all-black strip
/// from passing as a valid stamp.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn encode_payload(stamp: Stamp) -> [u8; BITS / 8] {
    let mut bytes = [0u8; BITS / 8];
    bytes[0] = MAGIC;
    bytes[1..9].copy_from_slice(&stamp.capture_time_us.to_be_bytes());
    bytes[9..13].copy_from_slice(&(stamp.frame_number as u32).to_be_bytes());
    let crc = crc16(&bytes[..13]);
    bytes[13..15].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn decode_payload(bytes: &[u8; BITS / 8]) -> Option<Stamp> {
    if bytes[0] != MAGIC {
        return None;
    }
    let crc = u16::from_be_bytes([bytes[13], bytes[14]]);
    if crc16(&bytes[..13]) != crc {
        return None;
    }
    let time = u64::from_be_bytes(bytes[1..9].try_into().ok()?);
    let number = u32::from_be_bytes(bytes[9..13].try_into().ok()?);
    Some(Stamp {
        capture_time_us: time,
        frame_number: u64::from(number),
    })
}

/// Draws `stamp` into the top strip of `frame` and records it in the frame's metadata.
/// Frames too small to hold a stamp (see [`block_size`]) keep their pixels.
pub fn draw(frame: &mut VideoFrame, stamp: Stamp) {
    frame.capture_time_us = stamp.capture_time_us;
    frame.frame_number = stamp.frame_number;
    let Some(block) = block_size(frame.width, frame.height) else {
        tracing::trace!(
            width = frame.width,
            height = frame.height,
            "frame too small for a stamp"
        );
        return;
    };
    if frame.validate().is_err() {
        return;
    }
    let payload = encode_payload(stamp);
    let strip = (block * ROWS) as usize;
    let stride = frame.stride_y as usize;
    for y in 0..strip {
        let row = &mut frame.y[y * stride..][..frame.width as usize];
        let bit_row = y / block as usize;
        for (x, px) in row.iter_mut().enumerate() {
            let col = x / block as usize;
            *px = if col < COLUMNS as usize {
                let bit = bit_row * COLUMNS as usize + col;
                if payload[bit / 8] & (0x80 >> (bit % 8)) != 0 {
                    BRIGHT
                } else {
                    DARK
                }
            } else {
                DARK
            };
        }
    }
    // Neutral chroma under the strip, so it reads as black and white after any conversion.
    let (cw, _) = frame.chroma_size();
    for cy in 0..strip.div_ceil(2) {
        frame.u[cy * frame.stride_u as usize..][..cw as usize].fill(128);
        frame.v[cy * frame.stride_v as usize..][..cw as usize].fill(128);
    }
}

/// Reads the stamp from `frame`'s pixels. `None` if the frame carries no stamp or it was damaged.
pub fn read(frame: &VideoFrame) -> Option<Stamp> {
    let block = block_size(frame.width, frame.height)?;
    frame.validate().ok()?;
    let inset = block / 4;
    let inner = block - 2 * inset;
    let stride = frame.stride_y as usize;
    let mut payload = [0u8; BITS / 8];
    for bit in 0..BITS {
        let x0 = (bit as u32 % COLUMNS) * block + inset;
        let y0 = (bit as u32 / COLUMNS) * block + inset;
        let mut sum = 0u32;
        for y in y0..y0 + inner {
            let row = &frame.y[y as usize * stride + x0 as usize..][..inner as usize];
            sum += row.iter().map(|&p| u32::from(p)).sum::<u32>();
        }
        let mean = sum / (inner * inner);
        if mean >= MIN_BRIGHT {
            payload[bit / 8] |= 0x80 >> (bit % 8);
        } else if mean > MAX_DARK {
            return None;
        }
    }
    decode_payload(&payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_ccitt_false_check_value() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
    }

    #[test]
    fn stamp_round_trips_on_raw_frames_of_many_sizes() {
        for (w, h) in [(160, 90), (320, 180), (640, 360), (1280, 720), (333, 241)] {
            let mut f = VideoFrame::new_black(w, h);
            let s = Stamp {
                capture_time_us: 1_700_000_000_123_456,
                frame_number: 4_000_000_123,
            };
            draw(&mut f, s);
            assert_eq!(read(&f), Some(s), "{w}x{h}");
        }
    }

    /// The vector web/debug/test/stamp.test.js checks too: its stamp.js must draw and read these bytes.
    #[test]
    fn a_fixed_stamp_has_the_payload_and_top_row_the_web_page_expects() {
        let s = Stamp {
            capture_time_us: 1_700_000_000_123_456,
            frame_number: 4_000_000_123,
        };
        let payload = encode_payload(s);
        let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "a500060a2418202240ee6b287b410d");
        // At 160 pixels wide a block is 4 pixels: the top row is bits 0..40, each four times.
        let mut f = VideoFrame::new_black(160, 90);
        draw(&mut f, s);
        let row: Vec<u8> = (0..160)
            .map(|x| {
                let bit = x / 4;
                if payload[bit / 8] & (0x80 >> (bit % 8)) != 0 {
                    BRIGHT
                } else {
                    DARK
                }
            })
            .collect();
        assert_eq!(&f.y[..160], row.as_slice());
        assert_eq!(read(&f), Some(s));
    }

    #[test]
    fn frames_without_a_stamp_read_none() {
        assert_eq!(read(&VideoFrame::new_black(640, 360)), None);
        let mut white = VideoFrame::new_black(640, 360);
        white.y.fill(235);
        assert_eq!(read(&white), None);
        assert_eq!(block_size(100, 100), None);
    }

    #[test]
    fn a_flipped_block_or_a_grey_block_is_rejected() {
        let s = Stamp {
            capture_time_us: 42,
            frame_number: 7,
        };
        let mut f = VideoFrame::new_black(640, 360);
        draw(&mut f, s);
        let block = block_size(640, 360).unwrap() as usize;
        // Invert the block of bit 50 (a capture-time bit).
        let (bx, by) = (50 % 40, 50 / 40);
        let mut flipped = f.clone();
        for y in by * block..(by + 1) * block {
            for x in bx * block..(bx + 1) * block {
                let p = &mut flipped.y[y * 640 + x];
                *p = if *p == BRIGHT { DARK } else { BRIGHT };
            }
        }
        assert_eq!(read(&flipped), None);
        let mut grey = f.clone();
        for y in by * block..(by + 1) * block {
            grey.y[y * 640 + bx * block..][..block].fill(128);
        }
        assert_eq!(read(&grey), None);
        assert_eq!(read(&f), Some(s));
    }
}
