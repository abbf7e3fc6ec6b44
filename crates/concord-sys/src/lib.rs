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
