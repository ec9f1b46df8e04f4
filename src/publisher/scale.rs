//! Resizing I420 frames to the encode size: bilinear per plane, in 16.16 fixed point.

use zego_media::frame::{chroma_size, VideoFrame};

/// `frame` resized to `width` x `height` (tight strides), keeping its capture time and frame number.
pub(crate) fn scale_i420(frame: &VideoFrame, width: u32, height: u32) -> VideoFrame {
    let mut out = VideoFrame::new_black(width, height);
    out.capture_time_us = frame.capture_time_us;
    out.frame_number = frame.frame_number;
    let (src_cw, src_ch) = frame.chroma_size();
    let (dst_cw, dst_ch) = chroma_size(width, height);
    scale_plane(
        &frame.y,
        frame.stride_y,
        frame.width,
        frame.height,
        &mut out.y,
        width,
        height,
    );
    scale_plane(
        &frame.u,
        frame.stride_u,
        src_cw,
        src_ch,
        &mut out.u,
        dst_cw,
        dst_ch,
    );
    scale_plane(
        &frame.v,
        frame.stride_v,
        src_cw,
        src_ch,
        &mut out.v,
        dst_cw,
        dst_ch,
    );
    out
}

/// Bilinear resize of one plane into a tight destination. Sample centres are aligned (the half-pixel convention),
/// so scaling by 2 and back is close to the identity and edges do not shift.
fn scale_plane(src: &[u8], stride: u32, sw: u32, sh: u32, dst: &mut [u8], dw: u32, dh: u32) {
    if sw == 0 || sh == 0 || dw == 0 || dh == 0 {
        return;
    }
    let stride = stride as usize;
    let step_x = ((u64::from(sw) << 16) / u64::from(dw)) as i64;
    let step_y = ((u64::from(sh) << 16) / u64::from(dh)) as i64;
    let max_x = i64::from(sw - 1) << 16;
    let max_y = i64::from(sh - 1) << 16;
    // Source x positions and weights are the same for every row.
    let columns: Vec<(usize, usize, u32)> = (0..i64::from(dw))
        .map(|x| {
            let fx = (x * step_x + step_x / 2 - (1 << 15)).clamp(0, max_x);
            let x0 = (fx >> 16) as usize;
            let x1 = (x0 + 1).min(sw as usize - 1);
            (x0, x1, ((fx & 0xFFFF) >> 8) as u32)
        })
        .collect();
    for y in 0..dh as usize {
        let fy = (y as i64 * step_y + step_y / 2 - (1 << 15)).clamp(0, max_y);
        let y0 = (fy >> 16) as usize;
        let y1 = (y0 + 1).min(sh as usize - 1);
        let wy = ((fy & 0xFFFF) >> 8) as u32;
        let row0 = &src[y0 * stride..];
        let row1 = &src[y1 * stride..];
        let out = &mut dst[y * dw as usize..(y + 1) * dw as usize];
        for (px, &(x0, x1, wx)) in out.iter_mut().zip(&columns) {
            let top = u32::from(row0[x0]) * (256 - wx) + u32::from(row0[x1]) * wx;
            let bottom = u32::from(row1[x0]) * (256 - wx) + u32::from(row1[x1]) * wx;
            *px = ((top * (256 - wy) + bottom * wy + (1 << 15)) >> 16) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> VideoFrame {
        let mut f = VideoFrame::new_black(width, height);
        for y in 0..height as usize {
            for x in 0..width as usize {
                f.y[y * width as usize + x] = (x * 255 / (width as usize - 1)) as u8;
            }
        }
        f
    }

    #[test]
    fn scaling_keeps_flat_areas_and_gradients() {
        let src = gradient(640, 360);
        let half = scale_i420(&src, 320, 180);
        half.validate().unwrap();
        assert_eq!((half.width, half.height), (320, 180));
        // The gradient survives: left edge dark, right edge bright, middle in between.
        assert!(
            half.y[0] < 5 && half.y[319] > 250,
            "{} {}",
            half.y[0],
            half.y[319]
        );
        assert!((half.y[160] as i32 - 128).abs() < 4, "{}", half.y[160]);
        assert!(half.u.iter().all(|&u| u == 128));
    }

    #[test]
    fn upscaling_handles_odd_sizes_and_strides() {
        // 33x17 with 7 bytes of padding on every row of every plane.
        let pad = |w: usize, h: usize, v: u8| -> Vec<u8> {
            (0..h)
                .flat_map(|_| std::iter::repeat_n(v, w).chain(std::iter::repeat_n(0xAA, 7)))
                .collect()
        };
        let (y, u, v) = (pad(33, 17, 200), pad(17, 9, 90), pad(17, 9, 160));
        let src = VideoFrame {
            width: 33,
            height: 17,
            y,
            u,
            v,
            stride_y: 40,
            stride_u: 24,
            stride_v: 24,
            capture_time_us: 42,
            frame_number: 7,
        };
        src.validate().unwrap();
        let up = scale_i420(&src, 64, 36);
        up.validate().unwrap();
        assert!(up.y.iter().all(|&p| p == 200));
        assert!(up.u.iter().all(|&p| p == 90) && up.v.iter().all(|&p| p == 160));
        assert_eq!((up.capture_time_us, up.frame_number), (42, 7));
    }

    #[test]
    fn same_size_is_identity() {
        let src = gradient(64, 32);
        assert_eq!(scale_i420(&src, 64, 32).y, src.y);
    }
}
