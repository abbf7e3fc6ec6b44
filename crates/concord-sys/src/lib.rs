//! The one place Concord calls into the C library, behind a safe function, with the
//! reading of a process's resident size (`/proc`) that decides when to call it and
//! that the bench reports.
//!
//! glibc's allocator keeps memory that was freed inside its arenas instead of handing
//! it back to the kernel (only the top of the main heap is trimmed on `free`). A server
//! that went through a burst (a reconnect storm of 10k clients: upgrades, READY
//! payloads and queued frames all in flight at once) therefore stays resident at the
//! burst's peak for as long as it runs, though almost all of that memory is free:
//! 221 MB after such a storm against 58 MB once trimmed (BENCHMARKS.md).
//! `malloc_trim(0)` walks every arena and returns its free pages with `madvise`.

/// Gives the C allocator's free memory back to the operating system; `true` when some
/// was returned.
///
/// glibc walks and locks its arenas one after another, so a thread allocating
/// meanwhile may wait for the walk of its arena (milliseconds on a heap of hundreds
/// of MB): call it from a blocking thread, now and then, not per request. Elsewhere
/// (musl, other systems) there is no such call and nothing is done.
#[must_use]
pub fn release_free_memory() -> bool {
    imp::release_free_memory()
}

/// This process's resident memory in bytes (`VmRSS` in `/proc/self/status`), where
/// the system reports it.
#[must_use]
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(status_kib(&status, "VmRSS")? * 1024)
}

/// This process's soft limit on open files (`RLIMIT_NOFILE`, the `Max open files`
/// line of `/proc/self/limits`); `None` where the system does not report it or it is
/// unlimited.
#[must_use]
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits_soft(&limits, "Max open files")
}

/// The soft limit of the `name` row of a `/proc/<pid>/limits` text (`None` when it
/// is missing or `unlimited`).
#[must_use]
pub fn limits_soft(limits: &str, name: &str) -> Option<u64> {
    limits.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The value of a `Name:   1234 kB` line of a `/proc/<pid>/status` text, in KiB
/// (`name` is matched whole: `Vm` finds nothing).
#[must_use]
pub fn status_kib(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    #[allow(unsafe_code)]
    pub(super) fn release_free_memory() -> bool {
        // SAFETY: malloc_trim takes a plain integer, touches only the allocator's own
        // state under its own locks, and has no precondition on the caller.
        unsafe { libc::malloc_trim(0) == 1 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn release_free_memory() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_open_files_limit_is_read_from_its_row() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(limits_soft(text, "Max open files"), Some(1024));
        assert_eq!(limits_soft(text, "Max cpu time"), None);
        assert_eq!(limits_soft(text, "Max processes"), None);
    }
}
