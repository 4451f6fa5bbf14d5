//! The allocator, jemalloc, for every binary that links kfactor (the tests too). Measured
//! with 10,000 live subscribers on one instance (`bench/subscriptions`, bench/RESULTS.md):
//! glibc's malloc held 332 MiB, jemalloc 284 MiB, since its size classes keep the long-lived
//! parts of a socket apart from the short-lived ones of serving it; and what a storm of
//! sockets freed can be handed back to the operating system ([`purge`]).

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once when it starts (`_RJEM_MALLOC_CONF` in the environment
/// still overrides them). `tcache:false`: no per-thread caches of freed blocks. Each thread
/// (the runtime's workers, every SQLite connection's thread) kept up to hundreds of freed
/// blocks per size class, and a thread that went idle after a storm of sockets kept them
/// for good: a purge returns only pages no block is held on, so 10,000 subscribers leaving
/// left 83 MiB resident against a 47 MiB idle, 66 MiB without the caches; fan-out p99 was
/// the same (bench/RESULTS.md). `slab_sizes:1-4096:4`: slabs of the size classes up to 4 KiB
/// span 4 pages (many were 1 page, e.g. four 1 KiB blocks). jemalloc describes each slab
/// with a record taken from memory it never returns, so the number of slabs at the peak
/// stays resident for good: 10,000 subscribers connecting needed ≈ 52,000 such records
/// (14 MiB), ≈ 33,000 (11.8 MiB) with these slabs, and left 2.5 MiB less resident after.
// SAFETY (of the symbol): jemalloc declares `const char *malloc_conf` weak for a program to
// define; this one is a NUL-terminated string that lives for the whole process.
#[used]
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: &u8 = &b"tcache:false,slab_sizes:1-4096:4\0"[0];

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

#[cfg(test)]
mod tests {
    /// The options above are the ones jemalloc runs with (the symbol was linked).
    #[test]
    fn threads_cache_no_freed_blocks() {
        let mut enabled = true;
        let mut len = std::mem::size_of::<bool>();
        // SAFETY: "opt.tcache" reads a bool into a buffer of its size.
        let status = unsafe {
            tikv_jemalloc_sys::mallctl(
                c"opt.tcache".as_ptr(),
                (&mut enabled as *mut bool).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(status, 0);
        assert!(!enabled, "jemalloc runs with per-thread caches");
    }

    /// Slabs of the small size classes span at least 4 pages (the 1 KiB class had 1).
    #[test]
    fn small_slabs_span_four_pages() {
        let read = |name: &std::ffi::CStr| {
            let mut value = 0usize;
            let mut len = std::mem::size_of::<usize>();
            // SAFETY: these mallctl names read a size_t into a buffer of its size.
            let status = unsafe {
                tikv_jemalloc_sys::mallctl(
                    name.as_ptr(),
                    (&mut value as *mut usize).cast(),
                    &mut len,
                    std::ptr::null_mut(),
                    0,
                )
            };
            assert_eq!(status, 0, "{name:?}");
            value
        };
        // Size class 20 is 1 KiB (16-byte quantum, 4 KiB pages).
        assert_eq!(read(c"arenas.bin.20.size"), 1024);
        assert_eq!(read(c"arenas.bin.20.slab_size"), 4 * read(c"arenas.page"));
    }
}
