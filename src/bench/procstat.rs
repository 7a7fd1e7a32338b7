//! Samples of a broker process from /proc: CPU time and resident memory.

use std::io;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Clock ticks per second of the CPU times in /proc/<pid>/stat (USER_HZ,
/// 100 on every Linux architecture this runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// When it was taken.
    pub(crate) at: Instant,
    /// User plus system CPU time, in clock ticks.
    pub(crate) cpu_ticks: u64,
    /// Resident set size (VmRSS), in KiB.
    pub(crate) rss_kb: u64,
}

/// Reads /proc/<pid>/stat and /proc/<pid>/status.
pub(crate) fn sample(pid: u32) -> io::Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let invalid = |what| io::Error::new(io::ErrorKind::InvalidData, what);
    Ok(Sample {
        at: Instant::now(),
        cpu_ticks: cpu_ticks(&stat).ok_or_else(|| invalid("no CPU times in /proc stat"))?,
        rss_kb: rss_kb(&status).ok_or_else(|| invalid("no VmRSS in /proc status"))?,
    })
}

/// utime + stime (fields 14 and 15) of a /proc/<pid>/stat line. The command
/// name in field 2 may hold spaces and parentheses, so fields are counted
/// from the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The VmRSS line of /proc/<pid>/status, in KiB.
fn rss_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the broker used during a run.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct BrokerUsage {
    /// The process observed.
    pub(crate) pid: u32,
    /// CPU seconds spent during the measured phase.
    pub(crate) cpu_seconds: f64,
    /// Average CPU use during the measured phase, in percent of one core.
    pub(crate) cpu_percent: f64,
    /// RSS when the run started (before its connections), KiB.
    pub(crate) rss_start_kb: u64,
    /// Highest RSS sampled, KiB.
    pub(crate) rss_peak_kb: u64,
    /// RSS at the end of the measured phase, KiB.
    pub(crate) rss_end_kb: u64,
}

/// Follows a broker process over a run.
#[derive(Debug)]
pub(crate) struct Monitor {
    pid: u32,
    start: Sample,
    phase: Sample,
    peak_kb: u64,
}

impl Monitor {
    /// Takes the baseline sample.
    pub(crate) fn start(pid: u32) -> io::Result<Self> {
        let start = sample(pid)?;
        Ok(Self {
            pid,
            start,
            phase: start,
            peak_kb: start.rss_kb,
        })
    }

    /// Marks the start of the measured phase (CPU is counted from here).
    pub(crate) fn begin_phase(&mut self) {
        if let Ok(s) = sample(self.pid) {
            self.phase = s;
            self.peak_kb = self.peak_kb.max(s.rss_kb);
        }
    }

    /// Takes a sample to follow the peak; returns the current RSS in KiB.
    pub(crate) fn tick(&mut self) -> Option<u64> {
        let s = sample(self.pid).ok()?;
        self.peak_kb = self.peak_kb.max(s.rss_kb);
        Some(s.rss_kb)
    }

    /// The usage from the start of the phase to now.
    pub(crate) fn usage(&mut self) -> BrokerUsage {
        let end = sample(self.pid).unwrap_or(self.phase);
        self.peak_kb = self.peak_kb.max(end.rss_kb);
        let cpu_seconds =
            end.cpu_ticks.saturating_sub(self.phase.cpu_ticks) as f64 / TICKS_PER_SECOND;
        let wall = end.at.duration_since(self.phase.at).as_secs_f64();
        BrokerUsage {
            pid: self.pid,
            cpu_seconds,
            cpu_percent: if wall > 0.0 {
                100.0 * cpu_seconds / wall
            } else {
                0.0
            },
            rss_start_kb: self.start.rss_kb,
            rss_peak_kb: self.peak_kb,
            rss_end_kb: end.rss_kb,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_ticks_with_odd_command_names() {
        let stat = "1234 (my (odd) broker) S 1 1234 1234 0 -1 4194560 500 0 0 0 \
                    250 75 0 0 20 0 4 0 100 123456 789 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(325));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn parses_vmrss() {
        let status = "Name:\tgirder\nVmPeak:\t  99999 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(rss_kb(status), Some(12345));
        assert_eq!(rss_kb("Name:\tx\n"), None);
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kb > 0);
        let mut monitor = Monitor::start(std::process::id()).unwrap();
        monitor.begin_phase();
        let usage = monitor.usage();
        assert_eq!(usage.pid, std::process::id());
        assert!(usage.rss_peak_kb >= usage.rss_start_kb);
    }
}
