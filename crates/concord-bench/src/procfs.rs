//! Server (and bench) resource use from Linux `/proc`: CPU time and resident memory.
//! CPU time per delivery is steadier than wall-clock rates on a shared machine.

use std::sync::OnceLock;

use concord_sys::status_kib;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ProcSample {
    /// User + system CPU time, microseconds.
    pub(crate) cpu_us: u64,
    /// Resident set size, KiB.
    pub(crate) rss_kib: u64,
    /// Peak resident set size, KiB.
    pub(crate) hwm_kib: u64,
}

impl ProcSample {
    /// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` if the process is
    /// gone or this is not Linux.
    pub(crate) fn read(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Self::parse(&stat, &status, clock_ticks())
    }

    /// The sum over `first` and `more` (the nodes of a cluster); `None` if any is
    /// unreadable.
    pub(crate) fn read_sum(first: u32, more: &[u32]) -> Option<Self> {
        let mut sum = Self::read(first)?;
        for pid in more {
            let one = Self::read(*pid)?;
            sum.cpu_us += one.cpu_us;
            sum.rss_kib += one.rss_kib;
            sum.hwm_kib += one.hwm_kib;
        }
        Some(sum)
    }

    /// The bench process itself.
    pub(crate) fn read_self() -> Option<Self> {
        Self::read(std::process::id())
    }

    pub(crate) fn parse(stat: &str, status: &str, ticks_per_sec: u64) -> Option<Self> {
        let ticks = cpu_ticks(stat)?;
        Some(Self {
            cpu_us: ticks.saturating_mul(1_000_000) / ticks_per_sec.max(1),
            rss_kib: status_kib(status, "VmRSS")?,
            hwm_kib: status_kib(status, "VmHWM").unwrap_or(0),
        })
    }
}

/// `utime + stime` from a `/proc/<pid>/stat` line. The command name (field 2) may
/// contain spaces and parentheses, so fields are counted from the last `)`.
pub(crate) fn cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // After the name: state(3) ppid(4) … utime is field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The soft limit on open files from `/proc/self/limits` text.
pub(crate) fn open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    soft.parse().ok()
}

/// This process's soft open-files limit, if it can be read.
pub(crate) fn own_open_files_limit() -> Option<u64> {
    open_files_limit(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// `USER_HZ`: what `/proc` CPU times count in. Asked of `getconf` once; 100 is the
/// value on every common Linux platform.
fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (concord (x) y) S 1 4242 4242 0 -1 4194560 9000 0 0 0 \
                        1234 567 0 0 20 0 6 0 123456 1000000000 25000 18446744073709551615 \
                        1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    const STATUS: &str = "Name:\tconcord\nUmask:\t0022\nState:\tS (sleeping)\n\
                          VmPeak:\t 1200000 kB\nVmHWM:\t   204800 kB\nVmRSS:\t   102400 kB\n\
                          RssAnon:\t   90000 kB\nThreads:\t6\n";

    #[test]
    fn stat_cpu_fields_survive_odd_names() {
        assert_eq!(cpu_ticks(STAT), Some(1234 + 567));
        assert_eq!(cpu_ticks("garbage"), None);
        assert_eq!(cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_memory_lines() {
        assert_eq!(status_kib(STATUS, "VmRSS"), Some(102_400));
        assert_eq!(status_kib(STATUS, "VmHWM"), Some(204_800));
        assert_eq!(status_kib(STATUS, "Vm"), None, "whole names only");
        assert_eq!(status_kib(STATUS, "VmSwap"), None);
    }

    #[test]
    fn sample_converts_ticks_to_micros() {
        let sample = ProcSample::parse(STAT, STATUS, 100).unwrap();
        assert_eq!(sample.cpu_us, 1801 * 10_000);
        assert_eq!(sample.rss_kib, 102_400);
        assert_eq!(sample.hwm_kib, 204_800);
        assert_eq!(ProcSample::parse(STAT, "Name:\tx\n", 100), None);
    }

    #[test]
    fn open_files_limit_reads_the_soft_value() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            20000                20000                files     \n";
        assert_eq!(open_files_limit(limits), Some(20_000));
        assert_eq!(open_files_limit("Max processes 5 5"), None);
    }

    #[test]
    fn reads_this_process() {
        if std::path::Path::new("/proc/self/stat").exists() {
            let me = ProcSample::read_self().unwrap();
            assert!(me.rss_kib > 0);
        }
    }
}
