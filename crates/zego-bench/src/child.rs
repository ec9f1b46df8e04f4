//! The bench's side of a role process: starting it, sending commands, waiting for its reports, and ending it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command as Process, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::cli::Role;
use crate::proto::{Command, Report};

/// How long a role gets to finish its Quit before it is killed.
const QUIT_GRACE: Duration = Duration::from_secs(10);

pub struct RoleProcess {
    role: Role,
    child: Child,
    stdin: Option<ChildStdin>,
    reports: Receiver<Option<Report>>,
    /// Every report received so far, in order (quality updates, states, errors...).
    pub history: Vec<Report>,
    /// The role's stdout closed (it exited or crashed).
    closed: bool,
}

impl RoleProcess {
    /// Starts this executable again with `--role` and the given flags.
    pub fn spawn(role: Role, args: &[String]) -> Result<RoleProcess, String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find the bench executable: {e}"))?;
        let role_name = role_name(role);
        let mut child = Process::new(exe)
            .arg("--role")
            .arg(role_name)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the {role_name} process: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("bench-{role_name}-reports"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    match serde_json::from_str::<Report>(&line) {
                        Ok(report) => {
                            if tx.send(Some(report)).is_err() {
                                return;
                            }
                        }
                        // Anything else on stdout (a library printing) is passed on to the user as a log.
                        Err(_) => eprintln!("[{role_name}] {line}"),
                    }
                }
                let _ = tx.send(None);
            })
            .map_err(|e| format!("cannot start a reader thread: {e}"))?;
        Ok(RoleProcess {
            role,
            child,
            stdin,
            reports: rx,
            history: Vec::new(),
            closed: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &'static str {
        role_name(self.role)
    }

    pub fn send(&mut self, command: Command) -> Result<(), String> {
        let name = self.name();
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{name}: stdin already closed"))?;
        let line = serde_json::to_string(&command).expect("commands always serialize");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("{name}: cannot send {command:?}: {e} (did it exit?)"))
    }

    /// Waits until `pick` accepts a report, up to `timeout`. Every report is also kept in `history`.
    pub fn wait_for<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut pick: impl FnMut(&Report) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.closed {
                return Err(format!(
                    "{} exited while waiting for {what}{}",
                    self.name(),
                    self.exit_note()
                ));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.reports.recv_timeout(left) {
                Ok(Some(report)) => {
                    let picked = pick(&report);
                    if let Report::Error {
                        what: call, code, ..
                    } = &report
                    {
                        tracing::warn!(role = self.name(), call, code, "error reported");
                    }
                    self.history.push(report);
                    if let Some(value) = picked {
                        return Ok(value);
                    }
                }
                Ok(None) | Err(RecvTimeoutError::Disconnected) => self.closed = true,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{}: no {what} within {:.1} s{}",
                        self.name(),
                        timeout.as_secs_f64(),
                        self.last_error()
                    ))
                }
            }
        }
    }

    /// Takes in whatever reports have arrived, without waiting.
    pub fn drain(&mut self) {
        while let Ok(message) = self.reports.try_recv() {
            match message {
                Some(report) => self.history.push(report),
                None => self.closed = true,
            }
        }
    }

    /// Asks the role to quit, waits for it, and kills it if it does not exit in time.
    pub fn quit(mut self) -> Vec<Report> {
        if self.send(Command::Quit).is_ok() {
            let _ = self.wait_for(QUIT_GRACE, "Done", |r| {
                matches!(r, Report::Done).then_some(())
            });
        }
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    tracing::warn!(role = self.name(), "did not exit; killing it");
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        std::mem::take(&mut self.history)
    }

    fn exit_note(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => format!(" ({status}){}", self.last_error()),
            _ => self.last_error(),
        }
    }

    fn last_error(&self) -> String {
        self.history
            .iter()
            .rev()
            .find_map(|r| match r {
                Report::Error { what, code, .. } => Some(format!("; last error: {what} -> {code}")),
                _ => None,
            })
            .unwrap_or_default()
    }
}

impl Drop for RoleProcess {
    /// A role left behind by an early return must not outlive the bench.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            drop(self.stdin.take());
            std::thread::sleep(Duration::from_millis(200));
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Server => "server",
        Role::Publisher => "publisher",
        Role::Player => "player",
    }
}
