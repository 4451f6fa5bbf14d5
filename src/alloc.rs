//! The allocator, jemalloc, for every binary that links kfactor (the tests too). Measured
//! with 10,000 live subscribers on one instance (`bench/subscriptions`, bench/RESULTS.md):
//! glibc's malloc held 332 MiB, jemalloc 284 MiB, since its size classes keep the long-lived
//! parts of a socket apart from the short-lived ones of serving it; and what a storm of
//! sockets freed can be handed back to the operating system ([`purge`]).

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Returns the allocator's unused dirty pages, of every arena, to the operating system at
/// once (jemalloc otherwise returns them over about ten seconds, and only while it is being
/// called: an idle instance would keep its busiest moment's memory).
pub fn purge() {
    // jemalloc's MALLCTL_ARENAS_ALL: the command applies to every arena.
    const COMMAND: &[u8] = b"arena.4096.purge\0";
    // SAFETY: a documented mallctl command that takes and returns nothing (null pointers,
    // zero length); the name is NUL-terminated.
    let status = unsafe {
        tikv_jemalloc_sys::mallctl(
            COMMAND.as_ptr().cast(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if status != 0 {
        tracing::debug!(status, "jemalloc refused to purge");
    }
}
