//! Raw video frames and conversions between the pixel formats apps hand us.
//!
//! Internally every frame is planar I420 (what the H.264 codec reads and writes). Colour
//! conversion uses BT.601 limited range (Y 16..235, Cb/Cr 16..240), the matrix H.264 decoders
//! assume when the stream carries no colour description.

use std::fmt;

use crate::error::{MediaError, Result};

/// Largest side accepted for a frame, matching the H.264 encoder's limit.
pub const MAX_DIMENSION: u32 = 4096;

/// Pixel layouts of raw frames exchanged with apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Planar Y, U, V; chroma subsampled 2x2.
    I420,
    /// Planar Y followed by interleaved U/V; chroma subsampled 2x2.
    Nv12,
    /// Packed 8-bit R, G, B, A.
    Rgba32,
    /// Packed 8-bit B, G, R, A.
    Bgra32,
}

impl PixelFormat {
    /// The value of ZEGO's `zego_video_frame_format` for this layout.
    pub fn zego_value(self) -> i32 {
        match self {
            PixelFormat::I420 => 1,
            PixelFormat::Nv12 => 2,
            PixelFormat::Bgra32 => 4,
            PixelFormat::Rgba32 => 5,
        }
    }

    /// The layout for a `zego_video_frame_format` value, or `None` for formats not supported.
    pub fn from_zego_value(value: i32) -> Option<Self> {
        match value {
            1 => Some(PixelFormat::I420),
            2 => Some(PixelFormat::Nv12),
            4 => Some(PixelFormat::Bgra32),
            5 => Some(PixelFormat::Rgba32),
            _ => None,
        }
    }
}

/// One uncompressed picture in planar I420.
///
/// Chroma planes are `ceil(width / 2)` x `ceil(height / 2)`, so odd sizes are representable.
/// Constructors produce tightly packed planes (stride == plane width).
#[derive(Clone, PartialEq, Eq)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    pub stride_y: u32,
    pub stride_u: u32,
    pub stride_v: u32,
    /// Wall-clock unix microseconds when the frame was captured (0 if unknown).
    pub capture_time_us: u64,
    pub frame_number: u64,
}

impl fmt::Debug for VideoFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VideoFrame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("strides", &(self.stride_y, self.stride_u, self.stride_v))
            .field("capture_time_us", &self.capture_time_us)
            .field("frame_number", &self.frame_number)
            .finish_non_exhaustive()
    }
}

/// Width and height of the chroma planes for a luma size.
pub fn chroma_size(width: u32, height: u32) -> (u32, u32) {
    (width.div_ceil(2), height.div_ceil(2))
}

fn check_size(width: u32, height: u32) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(MediaError::InvalidFrame(format!(
            "size {width}x{height} has a zero side"
        )));
    }
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(MediaError::InvalidFrame(format!(
            "size {width}x{height} exceeds {MAX_DIMENSION} pixels on a side"
        )));
    }
    Ok(())
}

/// Checks that `data` holds `rows` rows of `row_bytes` at `stride`, and names the plane if not.
fn check_plane(name: &str, data: &[u8], stride: u32, row_bytes: u32, rows: u32) -> Result<()> {
    if stride < row_bytes {
        return Err(MediaError::InvalidFrame(format!(
            "{name} stride {stride} is smaller than a row ({row_bytes} bytes)"
        )));
    }
    let needed = stride as usize * (rows as usize - 1) + row_bytes as usize;
    if data.len() < needed {
        return Err(MediaError::InvalidFrame(format!(
            "{name} has {} bytes, {rows} rows at stride {stride} need {needed}",
            data.len()
        )));
    }
    Ok(())
}

/// Copies `rows` rows of `row_bytes` out of a strided plane into a tight one.
fn copy_plane(src: &[u8], stride: u32, row_bytes: u32, rows: u32) -> Vec<u8> {
    let (stride, row_bytes) = (stride as usize, row_bytes as usize);
    let mut out = Vec::with_capacity(row_bytes * rows as usize);
    for r in 0..rows as usize {
        out.extend_from_slice(&src[r * stride..r * stride + row_bytes]);
    }
    out
}

#[inline]
fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// BT.601 limited-range luma from 8-bit RGB.
#[inline]
fn rgb_to_y(r: i32, g: i32, b: i32) -> u8 {
    clamp_u8(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16)
}

/// BT.601 limited-range chroma from 8-bit RGB.
#[inline]
fn rgb_to_uv(r: i32, g: i32, b: i32) -> (u8, u8) {
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    (clamp_u8(u), clamp_u8(v))
}

/// BT.601 limited-range YCbCr to 8-bit RGB.
#[inline]
pub(crate) fn yuv_to_rgb(y: u8, u: u8, v: u8) -> (u8, u8, u8) {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    (
        clamp_u8((c + 409 * e + 128) >> 8),
        clamp_u8((c - 100 * d - 208 * e + 128) >> 8),
        clamp_u8((c + 516 * d + 128) >> 8),
    )
}

/// Byte offsets of R, G, B inside a 4-byte packed pixel.
#[derive(Clone, Copy)]
struct PackedOrder {
    r: usize,
    g: usize,
    b: usize,
    a: usize,
}

const RGBA: PackedOrder = PackedOrder {
    r: 0,
    g: 1,
    b: 2,
    a: 3,
};
const BGRA: PackedOrder = PackedOrder {
    r: 2,
    g: 1,
    b: 0,
    a: 3,
};

impl VideoFrame {
    /// A black frame (Y 16, neutral chroma) with tight strides.
    pub fn new_black(width: u32, height: u32) -> Self {
        let (cw, ch) = chroma_size(width, height);
        VideoFrame {
            width,
            height,
            y: vec![16; width as usize * height as usize],
            u: vec![128; cw as usize * ch as usize],
            v: vec![128; cw as usize * ch as usize],
            stride_y: width,
            stride_u: cw,
            stride_v: cw,
            capture_time_us: 0,
            frame_number: 0,
        }
    }

    /// Width and height of the chroma planes.
    pub fn chroma_size(&self) -> (u32, u32) {
        chroma_size(self.width, self.height)
    }

    /// Checks that the public fields describe a consistent image: sizes in range, strides at
    /// least a row, and planes long enough for their strides.
    pub fn validate(&self) -> Result<()> {
        check_size(self.width, self.height)?;
        let (cw, ch) = self.chroma_size();
        check_plane("Y plane", &self.y, self.stride_y, self.width, self.height)?;
        check_plane("U plane", &self.u, self.stride_u, cw, ch)?;
        check_plane("V plane", &self.v, self.stride_v, cw, ch)?;
        Ok(())
    }

    /// Copies an I420 image given as three strided planes.
    #[allow(clippy::too_many_arguments)]
    pub fn from_i420(
        width: u32,
        height: u32,
        y: &[u8],
        stride_y: u32,
        u: &[u8],
        stride_u: u32,
        v: &[u8],
        stride_v: u32,
    ) -> Result<Self> {
        check_size(width, height)?;
        let (cw, ch) = chroma_size(width, height);
        check_plane("Y plane", y, stride_y, width, height)?;
        check_plane("U plane", u, stride_u, cw, ch)?;
        check_plane("V plane", v, stride_v, cw, ch)?;
        Ok(VideoFrame {
            width,
            height,
            y: copy_plane(y, stride_y, width, height),
            u: copy_plane(u, stride_u, cw, ch),
            v: copy_plane(v, stride_v, cw, ch),
            stride_y: width,
            stride_u: cw,
            stride_v: cw,
            capture_time_us: 0,
            frame_number: 0,
        })
    }

    /// Converts an NV12 image: `height` luma rows at `stride`, directly followed by
    /// `ceil(height / 2)` rows of interleaved U/V at the same stride.
    pub fn from_nv12(width: u32, height: u32, data: &[u8], stride: u32) -> Result<Self> {
        check_size(width, height)?;
        check_plane("NV12 Y plane", data, stride, width, height)?;
        let uv_start = stride as usize * height as usize;
        let uv = data.get(uv_start..).unwrap_or_default();
        Self::from_nv12_planes(width, height, data, stride, uv, stride)
    }

    /// Converts an NV12 image whose luma and interleaved chroma planes are separate buffers.
    pub fn from_nv12_planes(
        width: u32,
        height: u32,
        y: &[u8],
        stride_y: u32,
        uv: &[u8],
        stride_uv: u32,
    ) -> Result<Self> {
        check_size(width, height)?;
        let (cw, ch) = chroma_size(width, height);
        check_plane("NV12 Y plane", y, stride_y, width, height)?;
        check_plane("NV12 UV plane", uv, stride_uv, cw * 2, ch)?;
        let mut u = Vec::with_capacity(cw as usize * ch as usize);
        let mut v = Vec::with_capacity(cw as usize * ch as usize);
        for r in 0..ch as usize {
            let row = &uv[r * stride_uv as usize..][..cw as usize * 2];
            for pair in row.chunks_exact(2) {
                u.push(pair[0]);
                v.push(pair[1]);
            }
        }
        Ok(VideoFrame {
            width,
            height,
            y: copy_plane(y, stride_y, width, height),
            u,
            v,
            stride_y: width,
            stride_u: cw,
            stride_v: cw,
            capture_time_us: 0,
            frame_number: 0,
        })
    }

    /// Converts packed YUYV 4:2:2 (Y0 U Y1 V per pixel pair, `stride` bytes per row), the usual
    /// raw webcam format. Vertical chroma is the average of each pair of rows.
    pub fn from_yuyv(width: u32, height: u32, data: &[u8], stride: u32) -> Result<Self> {
        check_size(width, height)?;
        let row_bytes = width.div_ceil(2) * 4;
        check_plane("YUYV", data, stride, row_bytes, height)?;
        let mut frame = VideoFrame::new_black(width, height);
        let (w, h, stride) = (width as usize, height as usize, stride as usize);
        let cw = frame.stride_u as usize;
        for y in 0..h {
            let row = &data[y * stride..][..row_bytes as usize];
            for x in 0..w {
                frame.y[y * w + x] = row[(x / 2) * 4 + (x % 2) * 2];
            }
        }
        for cy in 0..h.div_ceil(2) {
            let r0 = &data[2 * cy * stride..][..row_bytes as usize];
            let r1 = &data[(2 * cy + 1).min(h - 1) * stride..][..row_bytes as usize];
            for cx in 0..cw {
                let avg = |i: usize| (u16::from(r0[i]) + u16::from(r1[i])).div_ceil(2) as u8;
                frame.u[cy * cw + cx] = avg(cx * 4 + 1);
                frame.v[cy * cw + cx] = avg(cx * 4 + 3);
            }
        }
        Ok(frame)
    }

    /// Converts packed RGBA (`stride` bytes per row). Alpha is ignored.
    pub fn from_rgba(width: u32, height: u32, data: &[u8], stride: u32) -> Result<Self> {
        Self::from_packed(width, height, data, stride, RGBA, "RGBA")
    }

    /// Converts packed BGRA (`stride` bytes per row). Alpha is ignored.
    pub fn from_bgra(width: u32, height: u32, data: &[u8], stride: u32) -> Result<Self> {
        Self::from_packed(width, height, data, stride, BGRA, "BGRA")
    }

    /// Converts one contiguous buffer in any supported layout. `strides` are per plane in bytes
    /// (I420: Y, U, V; NV12: Y, UV; packed formats: the first only), as in ZEGO's
    /// `zego_video_frame_param`; planes follow each other with no gap.
    pub fn from_buffer(
        format: PixelFormat,
        width: u32,
        height: u32,
        data: &[u8],
        strides: [u32; 3],
    ) -> Result<Self> {
        check_size(width, height)?;
        let (_, ch) = chroma_size(width, height);
        match format {
            PixelFormat::I420 => {
                let y_len = strides[0] as usize * height as usize;
                let u_len = strides[1] as usize * ch as usize;
                if data.len() < y_len + u_len {
                    return Err(MediaError::InvalidFrame(format!(
                        "I420 buffer of {} bytes is shorter than its Y and U planes ({} bytes)",
                        data.len(),
                        y_len + u_len
                    )));
                }
                Self::from_i420(
                    width,
                    height,
                    &data[..y_len],
                    strides[0],
                    &data[y_len..y_len + u_len],
                    strides[1],
                    &data[y_len + u_len..],
                    strides[2],
                )
            }
            PixelFormat::Nv12 => {
                let y_len = strides[0] as usize * height as usize;
                let uv = data.get(y_len..).unwrap_or_default();
                Self::from_nv12_planes(width, height, data, strides[0], uv, strides[1])
            }
            PixelFormat::Rgba32 => Self::from_rgba(width, height, data, strides[0]),
            PixelFormat::Bgra32 => Self::from_bgra(width, height, data, strides[0]),
        }
    }

    fn from_packed(
        width: u32,
        height: u32,
        data: &[u8],
        stride: u32,
        order: PackedOrder,
        name: &str,
    ) -> Result<Self> {
        check_size(width, height)?;
        check_plane(name, data, stride, width * 4, height)?;
        let mut frame = VideoFrame::new_black(width, height);
        let (w, h, stride) = (width as usize, height as usize, stride as usize);
        let cw = frame.stride_u as usize;
        let px = |x: usize, y: usize| {
            let p = &data[y * stride + x * 4..][..4];
            (
                i32::from(p[order.r]),
                i32::from(p[order.g]),
                i32::from(p[order.b]),
            )
        };
        for y in 0..h {
            let row = &mut frame.y[y * w..][..w];
            for (x, out) in row.iter_mut().enumerate() {
                let (r, g, b) = px(x, y);
                *out = rgb_to_y(r, g, b);
            }
        }
        // Chroma from the average colour of each 2x2 block (fewer pixels at odd edges).
        for cy in 0..h.div_ceil(2) {
            for cx in 0..w.div_ceil(2) {
                let (mut sr, mut sg, mut sb, mut n) = (0, 0, 0, 0);
                for y in 2 * cy..(2 * cy + 2).min(h) {
                    for x in 2 * cx..(2 * cx + 2).min(w) {
                        let (r, g, b) = px(x, y);
                        sr += r;
                        sg += g;
                        sb += b;
                        n += 1;
                    }
                }
                let (u, v) = rgb_to_uv((sr + n / 2) / n, (sg + n / 2) / n, (sb + n / 2) / n);
                frame.u[cy * cw + cx] = u;
                frame.v[cy * cw + cx] = v;
            }
        }
        Ok(frame)
    }

    fn to_packed(&self, order: PackedOrder) -> Vec<u8> {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut out = vec![0u8; w * h * 4];
        for y in 0..h {
            let yrow = &self.y[y * self.stride_y as usize..][..w];
            let urow = &self.u[(y / 2) * self.stride_u as usize..];
            let vrow = &self.v[(y / 2) * self.stride_v as usize..];
            let orow = &mut out[y * w * 4..][..w * 4];
            for (x, (o, &luma)) in orow.chunks_exact_mut(4).zip(yrow).enumerate() {
                let (r, g, b) = yuv_to_rgb(luma, urow[x / 2], vrow[x / 2]);
                o[order.r] = r;
                o[order.g] = g;
                o[order.b] = b;
                o[order.a] = 255;
            }
        }
        out
    }

    /// Tightly packed RGBA (`width * 4` bytes per row), alpha 255.
    ///
    /// The frame must be valid (see [`VideoFrame::validate`]); frames from this crate always are.
    pub fn to_rgba(&self) -> Vec<u8> {
        self.to_packed(RGBA)
    }

    /// Tightly packed BGRA (`width * 4` bytes per row), alpha 255.
    pub fn to_bgra(&self) -> Vec<u8> {
        self.to_packed(BGRA)
    }

    /// Tightly packed NV12: luma rows followed by interleaved U/V rows.
    pub fn to_nv12(&self) -> Vec<u8> {
        let (w, h) = (self.width as usize, self.height as usize);
        let (cw, ch) = self.chroma_size();
        let (cw, ch) = (cw as usize, ch as usize);
        let mut out = Vec::with_capacity(w * h + cw * ch * 2);
        for y in 0..h {
            out.extend_from_slice(&self.y[y * self.stride_y as usize..][..w]);
        }
        for y in 0..ch {
            let urow = &self.u[y * self.stride_u as usize..][..cw];
            let vrow = &self.v[y * self.stride_v as usize..][..cw];
            for (&u, &v) in urow.iter().zip(vrow) {
                out.push(u);
                out.push(v);
            }
        }
        out
    }

    /// Tightly packed I420: the Y, U and V planes back to back.
    pub fn to_i420(&self) -> Vec<u8> {
        let (cw, ch) = self.chroma_size();
        let mut out = copy_plane(&self.y, self.stride_y, self.width, self.height);
        out.extend(copy_plane(&self.u, self.stride_u, cw, ch));
        out.extend(copy_plane(&self.v, self.stride_v, cw, ch));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient_rgba(w: u32, h: u32) -> Vec<u8> {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                // Smooth colour field: chroma subsampling loses little on it.
                data.extend_from_slice(&[
                    (40 + x * 160 / w.max(64)) as u8,
                    (40 + y * 160 / h.max(64)) as u8,
                    128,
                    255,
                ]);
            }
        }
        data
    }

    fn max_diff(a: &[u8], b: &[u8]) -> u8 {
        a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap()
    }

    #[test]
    fn zego_format_values_match_the_sdk_enum() {
        for f in [
            PixelFormat::I420,
            PixelFormat::Nv12,
            PixelFormat::Rgba32,
            PixelFormat::Bgra32,
        ] {
            assert_eq!(PixelFormat::from_zego_value(f.zego_value()), Some(f));
        }
        assert_eq!(PixelFormat::I420.zego_value(), 1);
        assert_eq!(PixelFormat::Nv12.zego_value(), 2);
        assert_eq!(PixelFormat::Bgra32.zego_value(), 4);
        assert_eq!(PixelFormat::Rgba32.zego_value(), 5);
        assert_eq!(PixelFormat::from_zego_value(3), None);
    }

    #[test]
    fn primary_colours_convert_to_bt601_limited_range() {
        // Reference values of BT.601 limited range.
        let cases: [([u8; 3], [u8; 3]); 5] = [
            ([0, 0, 0], [16, 128, 128]),
            ([255, 255, 255], [235, 128, 128]),
            ([255, 0, 0], [82, 90, 240]),
            ([0, 255, 0], [145, 54, 34]),
            ([0, 0, 255], [41, 240, 110]),
        ];
        for (rgb, yuv) in cases {
            let px = [rgb[0], rgb[1], rgb[2], 255].repeat(4);
            let f = VideoFrame::from_rgba(2, 2, &px, 8).unwrap();
            let got = [f.y[0], f.u[0], f.v[0]];
            for (g, e) in got.iter().zip(yuv) {
                assert!(g.abs_diff(e) <= 1, "{rgb:?}: got {got:?}, want {yuv:?}");
            }
            let back = f.to_rgba();
            assert!(
                max_diff(&back[..3], &rgb) <= 2,
                "{rgb:?} -> {:?}",
                &back[..3]
            );
        }
    }

    #[test]
    fn rgba_round_trips_within_tolerance_including_odd_sizes() {
        for (w, h) in [(64, 48), (33, 17), (1, 1), (3, 5)] {
            let src = gradient_rgba(w, h);
            let f = VideoFrame::from_rgba(w, h, &src, w * 4).unwrap();
            f.validate().unwrap();
            assert_eq!(f.u.len() as u32, w.div_ceil(2) * h.div_ceil(2));
            let back = f.to_rgba();
            assert_eq!(back.len(), src.len());
            assert!(
                max_diff(&src, &back) <= 12,
                "{w}x{h}: {}",
                max_diff(&src, &back)
            );
        }
    }

    #[test]
    fn bgra_is_rgba_with_red_and_blue_swapped() {
        let rgba = gradient_rgba(16, 8);
        let mut bgra = rgba.clone();
        for p in bgra.chunks_exact_mut(4) {
            p.swap(0, 2);
        }
        let a = VideoFrame::from_rgba(16, 8, &rgba, 64).unwrap();
        let b = VideoFrame::from_bgra(16, 8, &bgra, 64).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_bgra(), {
            let mut x = a.to_rgba();
            x.chunks_exact_mut(4).for_each(|p| p.swap(0, 2));
            x
        });
    }

    #[test]
    fn nv12_and_i420_round_trip_exactly_with_padding_strides() {
        let src = VideoFrame::from_rgba(31, 15, &gradient_rgba(31, 15), 31 * 4).unwrap();
        let nv12 = src.to_nv12();
        assert!(VideoFrame::from_nv12(31, 15, &nv12, 32).is_err());
        let again = VideoFrame::from_nv12_planes(31, 15, &nv12, 31, &nv12[31 * 15..], 32).unwrap();
        assert_eq!(again, src);

        // Same picture with 8 bytes of row padding on every plane.
        let pad = |p: &[u8], w: usize| -> Vec<u8> {
            p.chunks(w)
                .flat_map(|r| r.iter().copied().chain([0xAA; 8]))
                .collect()
        };
        let y = pad(&src.y, 31);
        let u = pad(&src.u, 16);
        let v = pad(&src.v, 16);
        let from_planes = VideoFrame::from_i420(31, 15, &y, 39, &u, 24, &v, 24).unwrap();
        assert_eq!(from_planes, src);
        let packed = src.to_i420();
        let from_buffer =
            VideoFrame::from_buffer(PixelFormat::I420, 31, 15, &packed, [31, 16, 16]).unwrap();
        assert_eq!(from_buffer, src);
    }

    #[test]
    fn yuyv_keeps_luma_and_averages_chroma_rows() {
        // 4x2: two pixel pairs per row.
        let data = [
            10, 100, 20, 200, 30, 110, 40, 210, //
            50, 102, 60, 202, 70, 112, 80, 212,
        ];
        let f = VideoFrame::from_yuyv(4, 2, &data, 8).unwrap();
        assert_eq!(f.y, [10, 20, 30, 40, 50, 60, 70, 80]);
        assert_eq!(f.u, [101, 111]);
        assert_eq!(f.v, [201, 211]);
        let odd = VideoFrame::from_yuyv(3, 3, &[16; 24], 8).unwrap();
        odd.validate().unwrap();
        assert!(VideoFrame::from_yuyv(4, 2, &data[..15], 8).is_err());
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        assert!(VideoFrame::from_rgba(0, 10, &[], 0).is_err());
        assert!(VideoFrame::from_rgba(4, 4, &[0; 63], 16).is_err());
        assert!(VideoFrame::from_rgba(4, 4, &[0; 64], 12).is_err());
        assert!(VideoFrame::from_nv12(4, 4, &[0; 20], 4).is_err());
        assert!(VideoFrame::from_i420(4, 4, &[0; 16], 4, &[0; 4], 2, &[0; 3], 2).is_err());
        assert!(VideoFrame::from_buffer(PixelFormat::I420, 4, 4, &[0; 10], [4, 2, 2]).is_err());
        assert!(VideoFrame::from_rgba(5000, 2, &[0; 16], 20000).is_err());
        let mut f = VideoFrame::new_black(8, 8);
        f.u.truncate(3);
        assert!(f.validate().is_err());
    }
}
