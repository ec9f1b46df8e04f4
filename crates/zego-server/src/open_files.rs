//! The process's open-file limit. Every connection holds a file descriptor, and the usual soft limit (1024) is far
//! below what a server holds; the hard limit is what the administrator allows, so the server raises to it at start.

use std::io;

/// The soft and hard limits on open files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard limit; returns the limits before and after.
#[cfg(unix)]
pub fn raise_to_hard_limit() -> io::Result<(OpenFileLimit, OpenFileLimit)> {
    let before = get()?;
    if before.soft < before.hard {
        let raised = libc::rlimit {
            rlim_cur: before.hard as libc::rlim_t,
            rlim_max: before.hard as libc::rlim_t,
        };
        // SAFETY: setrlimit reads the struct it is given and nothing else.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((before, get()?))
}

#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every unix
fn get() -> io::Result<OpenFileLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(OpenFileLimit {
        soft: limit.rlim_cur as u64,
        hard: limit.rlim_max as u64,
    })
}

#[cfg(not(unix))]
pub fn raise_to_hard_limit() -> io::Result<(OpenFileLimit, OpenFileLimit)> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no open-file limit to raise on this platform",
    ))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let (before, after) = raise_to_hard_limit().unwrap();
        assert_eq!(after.hard, before.hard);
        assert_eq!(after.soft, after.hard);
        assert!(after.soft >= before.soft);
    }
}
