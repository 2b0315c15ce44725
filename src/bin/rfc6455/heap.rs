//! How the server asks glibc's allocator to keep memory it would otherwise give back.
//!
//! A server echoing or relaying large messages allocates a buffer of the message's size for each
//! one and frees it once it is written. With several such messages under way at once, glibc
//! shrinks its heap each time the freed memory lies at the top and grows it again for the next
//! message: every 4 KiB of the new buffer then costs a page fault and the kernel's zeroing.
//! Measured with ten clients echoing 1 MiB messages (BENCHMARKS.md), that was about 100 000
//! page faults a second and half of the server's time. Keeping [`HEAP_TOP_PAD`] bytes of slack
//! at the top of the heap, as `M_TOP_PAD` asks, ends it: the heap grows by at least that much
//! when it grows, and keeps that much when it shrinks. The memory is only kept once the
//! server has used it, and never more than that amount.
//!
//! The library leaves the allocator alone (it is the application's to choose); this is the
//! binary's choice. An operator's own setting (`MALLOC_TOP_PAD_`, or `GLIBC_TUNABLES`) wins.

/// The slack kept at the top of glibc's heap, in bytes: room for sixteen 1 MiB messages in
/// flight.
pub const HEAP_TOP_PAD: usize = 16 * 1024 * 1024;

/// Sets glibc's `M_TOP_PAD` to [`HEAP_TOP_PAD`], unless the environment sets malloc's
/// parameters already. Call it before any other thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_heap_slack() {
    use std::os::raw::c_int;
    if std::env::var_os("MALLOC_TOP_PAD_").is_some() || std::env::var_os("GLIBC_TUNABLES").is_some()
    {
        return;
    }
    // From glibc's <malloc.h>.
    const M_TOP_PAD: c_int = -2;
    unsafe extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    // SAFETY: mallopt takes two integers and changes a parameter of the allocator; glibc
    // serialises it with allocation, and no other thread runs yet.
    let done = unsafe { mallopt(M_TOP_PAD, HEAP_TOP_PAD as c_int) };
    if done == 0 {
        log::debug!("mallopt(M_TOP_PAD) was refused");
    }
}

/// Other platforms' allocators are left as they are.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_heap_slack() {}
