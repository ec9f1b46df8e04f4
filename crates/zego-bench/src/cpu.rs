//! CPU time of processes and their threads, from /proc: utime + stime, which the kernel sums over all threads
//! of a process.

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// utime + stime in clock ticks from the text of a /proc stat file. The command name sits in parentheses and
/// may itself contain spaces or parentheses, so fields are counted from the last ')'.
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of stat(5), utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn process_ticks(pid: u32) -> Option<u64> {
    stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Thread id -> (thread name, ticks).
fn thread_ticks(pid: u32) -> HashMap<u32, (String, u64)> {
    let mut threads = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let name = std::fs::read_to_string(entry.path().join("comm"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        if let Some(ticks) = stat_ticks(&stat) {
            threads.insert(tid, (name, ticks));
        }
    }
    threads
}

/// Peak resident memory (VmHWM) in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A process's CPU counters at one instant.
pub struct CpuSample {
    pid: u32,
    at: Instant,
    ticks: Option<u64>,
    threads: HashMap<u32, (String, u64)>,
}

impl CpuSample {
    pub fn take(pid: u32) -> CpuSample {
        CpuSample {
            pid,
            at: Instant::now(),
            ticks: process_ticks(pid),
            threads: thread_ticks(pid),
        }
    }

    /// CPU use between `self` and a later sample of the same process.
    pub fn until(&self, later: &CpuSample) -> CpuUse {
        let tck = ticks_per_second();
        let wall = later.at.duration_since(self.at).as_secs_f64().max(1e-6);
        let percent = |ticks: u64| ticks as f64 / tck / wall * 100.0;
        let total = match (self.ticks, later.ticks) {
            (Some(a), Some(b)) => Some(percent(b.saturating_sub(a))),
            _ => None,
        };
        // Threads are grouped by name: a pool of workers reads as one line.
        let mut by_name: HashMap<String, u64> = HashMap::new();
        for (tid, (name, ticks)) in &later.threads {
            let before = self.threads.get(tid).map_or(0, |(_, t)| *t);
            *by_name.entry(name.clone()).or_default() += ticks.saturating_sub(before);
        }
        let mut threads: Vec<ThreadUse> = by_name
            .into_iter()
            .filter(|(_, ticks)| *ticks > 0)
            .map(|(name, ticks)| ThreadUse {
                name,
                percent: round1(percent(ticks)),
            })
            .collect();
        threads.sort_by(|a, b| b.percent.total_cmp(&a.percent).then(a.name.cmp(&b.name)));
        threads.truncate(8);
        CpuUse {
            percent_of_one_core: total.map(round1),
            wall_s: round1(wall),
            peak_rss_mib: peak_rss_mib(later.pid).map(round1),
            threads,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    /// 100 = one core busy for the whole window.
    pub percent_of_one_core: Option<f64>,
    pub wall_s: f64,
    pub peak_rss_mib: Option<f64>,
    /// The busiest threads (by name) over the window, in % of one core.
    pub threads: Vec<ThreadUse>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThreadUse {
    pub name: String,
    pub percent: f64,
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_past_a_name_with_spaces_and_parentheses() {
        let stat = "1234 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 7 0 100 0 0";
        assert_eq!(stat_ticks(stat), Some(300));
    }

    fn own_cpu_seconds() -> f64 {
        // SAFETY: getrusage writes into the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(usage.ru_utime) + secs(usage.ru_stime)
    }

    #[test]
    fn counts_the_cpu_time_the_process_burned() {
        let pid = std::process::id();
        let before = CpuSample::take(pid);
        // Burn 300 ms of CPU however long the (shared) machine takes to give it.
        let start = own_cpu_seconds();
        let mut x = 0u64;
        while own_cpu_seconds() - start < 0.3 {
            for _ in 0..10_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
        }
        std::hint::black_box(x);
        let used = before.until(&CpuSample::take(pid));
        let percent = used
            .percent_of_one_core
            .expect("own /proc/self/stat is readable");
        let cpu_s = percent / 100.0 * used.wall_s;
        assert!(
            cpu_s > 0.2,
            "300 ms of CPU read as {cpu_s:.3} s ({percent}% over {} s)",
            used.wall_s
        );
    }
}
