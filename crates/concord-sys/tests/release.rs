//! Freed memory held by the allocator goes back to the OS. This file is its own test
//! process with one test, so no other thread allocates meanwhile.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn resident_bytes() -> u64 {
    concord_sys::resident_bytes().expect("/proc/self/status is readable")
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn memory_freed_in_the_middle_of_the_heap_goes_back() {
    const BLOCKS: usize = 200_000;
    const BLOCK: usize = 256;
    // Fill ~50 MB in small blocks (below the mmap threshold, so they live in the heap),
    // touching each so that its pages are resident.
    let mut blocks: Vec<Vec<u8>> = (0..BLOCKS).map(|i| vec![i as u8; BLOCK]).collect();
    // Keep the last block: it pins the top of the heap, so `free` alone cannot shrink it
    // and the rest stays resident after being freed, as after a burst.
    let pin = blocks.pop();
    drop(blocks);
    let before = resident_bytes();

    let released = concord_sys::release_free_memory();
    let after = resident_bytes();

    assert!(released, "glibc reports that it returned memory");
    assert!(
        before.saturating_sub(after) > 20 << 20,
        "at least 20 MB of the ~50 MB freed goes back (resident {before} → {after} bytes)"
    );
    drop(pin);
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
#[test]
fn elsewhere_nothing_is_released() {
    assert!(!concord_sys::release_free_memory());
}
