//! The server's log: formatted lines on stderr, coloured only when stderr is a terminal (a file or a pipe gets
//! plain text), with the secrets of logged frames replaced by [`zego_protocol::redact::secrets`].

use std::io::{self, IsTerminal, Write};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Installs the process's subscriber with this filter.
pub fn init(filter: EnvFilter) {
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(RedactedStderr)
        .init();
}

/// Stderr through [`Redacted`].
pub struct RedactedStderr;

impl<'a> MakeWriter<'a> for RedactedStderr {
    type Writer = Redacted<io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacted(io::stderr())
    }
}

/// Writes each buffer with its secrets redacted. The formatter hands over one whole line per write, so a secret is
/// never split across two writes.
pub struct Redacted<W>(pub W);

impl<W: Write> Write for Redacted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0
            .write_all(zego_protocol::redact::secrets(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
