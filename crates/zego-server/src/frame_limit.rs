//! A cap on incoming WebSocket frame sizes that can change while the connection lives: small before login, none
//! after (the WebSocket's own limits apply). The WebSocket layer fixes its limits when it is built and reserves a
//! frame's announced size as soon as it reads the header, so the cap is checked here, below it, on the headers
//! as they arrive: a frame announced too large is cut off before any of it is buffered.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The cap in force, shared by the connection (which sets it) and its [`FrameLimited`] stream.
#[derive(Debug, Default)]
pub struct FrameCap(AtomicUsize);

impl FrameCap {
    pub fn new(cap: Option<usize>) -> Arc<Self> {
        let this = Arc::new(FrameCap::default());
        this.set(cap);
        this
    }

    /// `None`: no cap.
    pub fn set(&self, cap: Option<usize>) {
        self.0.store(cap.unwrap_or(usize::MAX), Ordering::Relaxed);
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the reader of client frames is in the middle of.
#[derive(Debug, Clone, Copy)]
enum Reading {
    /// A frame header, of which `have` bytes are in `header`.
    Header {
        header: [u8; MAX_HEADER],
        have: usize,
    },
    /// A frame's payload, `left` bytes of it.
    Payload { left: u64 },
}

/// A client frame header: 2 bytes, up to 8 of extended length, 4 of mask.
const MAX_HEADER: usize = 14;

/// A client-to-server WebSocket byte stream whose reads fail once a frame, or a fragmented message, goes over
/// the [`FrameCap`].
pub struct FrameLimited<S> {
    inner: S,
    cap: Arc<FrameCap>,
    reading: Reading,
    /// Payload bytes of the fragmented data message in progress.
    message: u64,
}

/// The error a read fails with when the cap is exceeded.
pub fn is_over_cap(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData && e.to_string().starts_with(OVER_CAP)
}

const OVER_CAP: &str = "frame over the size allowed before login";

impl<S> FrameLimited<S> {
    pub fn new(inner: S, cap: Arc<FrameCap>) -> Self {
        FrameLimited {
            inner,
            cap,
            reading: Reading::Header {
                header: [0; MAX_HEADER],
                have: 0,
            },
            message: 0,
        }
    }

    /// Follows the frame structure through `bytes`; an error when a frame or message goes over the cap.
    fn scan(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.reading {
                Reading::Payload { left } => {
                    let take = (*left).min(bytes.len() as u64);
                    *left -= take;
                    bytes = &bytes[take as usize..];
                    if *left == 0 {
                        self.reading = Reading::Header {
                            header: [0; MAX_HEADER],
                            have: 0,
                        };
                    }
                }
                Reading::Header { header, have } => {
                    header[*have] = bytes[0];
                    *have += 1;
                    bytes = &bytes[1..];
                    let Some((fin, opcode, len)) = parse_header(&header[..*have]) else {
                        continue;
                    };
                    let cap = self.cap.get() as u64;
                    if opcode < 8 {
                        // A data frame or a continuation: its message grows.
                        self.message = self.message.saturating_add(len);
                        if len > cap || self.message > cap {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("{OVER_CAP} ({len} bytes, at most {cap})"),
                            ));
                        }
                        if fin {
                            self.message = 0;
                        }
                    }
                    self.reading = if len == 0 {
                        Reading::Header {
                            header: [0; MAX_HEADER],
                            have: 0,
                        }
                    } else {
                        Reading::Payload { left: len }
                    };
                }
            }
        }
        Ok(())
    }
}

/// FIN, opcode and payload length of a complete header; `None` while more header bytes are needed.
fn parse_header(header: &[u8]) -> Option<(bool, u8, u64)> {
    if header.len() < 2 {
        return None;
    }
    let fin = header[0] & 0x80 != 0;
    let opcode = header[0] & 0x0f;
    let masked = header[1] & 0x80 != 0;
    let (extended, len7) = match header[1] & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(n as u64)),
    };
    let total = 2 + extended + if masked { 4 } else { 0 };
    if header.len() < total {
        return None;
    }
    let len = len7.unwrap_or_else(|| {
        header[2..2 + extended]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64)
    });
    Some((fin, opcode, len))
}

impl<S: AsyncRead + Unpin> AsyncRead for FrameLimited<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => Poll::Ready(this.scan(&buf.filled()[before..])),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FrameLimited<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame header for a payload of `len` bytes.
    fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
        let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match len {
            0..=125 => out.push(0x80 | len as u8),
            126..=0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out
    }

    fn limited(cap: Option<usize>) -> FrameLimited<()> {
        FrameLimited::new((), FrameCap::new(cap))
    }

    #[test]
    fn frames_within_the_cap_pass_byte_by_byte() {
        let mut stream = limited(Some(200));
        let mut bytes = header(true, 1, 200);
        bytes.extend(vec![b'x'; 200]);
        bytes.extend(header(true, 9, 4)); // a ping
        bytes.extend([0; 4]);
        bytes.extend(header(true, 1, 126));
        bytes.extend(vec![b'y'; 126]);
        for b in bytes.chunks(1) {
            stream.scan(b).unwrap();
        }
    }

    #[test]
    fn a_frame_announced_over_the_cap_fails_at_its_header() {
        let mut stream = limited(Some(8 * 1024));
        let err = stream.scan(&header(true, 1, 1 << 20)).unwrap_err();
        assert!(is_over_cap(&err), "{err}");
    }

    #[test]
    fn fragments_count_toward_their_message() {
        let mut stream = limited(Some(100));
        let mut bytes = header(false, 1, 60);
        bytes.extend([0; 60]);
        bytes.extend(header(true, 9, 0)); // a ping between fragments does not count
        stream.scan(&bytes).unwrap();
        assert!(stream.scan(&header(true, 0, 60)).is_err());
    }

    #[test]
    fn lifting_the_cap_lets_large_frames_through() {
        let cap = FrameCap::new(Some(10));
        let mut stream = FrameLimited::new((), cap.clone());
        cap.set(None);
        let mut bytes = header(true, 1, 1 << 20);
        bytes.extend(vec![0; 1 << 20]);
        stream.scan(&bytes).unwrap();
        stream.scan(&header(true, 1, 5)).unwrap();
    }
}
