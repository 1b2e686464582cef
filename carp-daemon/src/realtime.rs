//! Real-time scheduling and locked memory for carpd's event loop, as keepalived offers them
//! (`vrrp_rt_priority`, `vrrp_no_swap`): TOML `[daemon] realtime_priority = N` or
//! `--realtime-priority N`.
//!
//! At advbase 0 a master advertises every 3.9 ms and a backup declares it down after 11.7 ms:
//! a few milliseconds in which the event loop waits for a CPU that a compiler or a busy
//! process holds, or for a page to come back from swap, look like a dead master. So with a
//! priority set, carpd
//!
//! - locks its memory, present and future, as it is touched (`mlockall(MCL_CURRENT |
//!   MCL_FUTURE | MCL_ONFAULT)`): no page of the event loop, its stack or the advert ring is
//!   ever paged out once used. `MCL_ONFAULT` keeps carpd from populating every reserved
//!   page up front (whole thread stacks, allocator arenas): without it, the resident size
//!   more than doubles (10 to 24 MiB) for pages that are never used;
//! - runs the event loop (the one thread of carpd's current-thread runtime, and the one
//!   that calls [`enter`]) under `SCHED_FIFO` at that priority, and the advert pacer's
//!   thread ([`enter_thread`]) too while it paces intervals under 100 ms (at 1 s timers it
//!   runs under the normal policy: see `daemon::pacer`), and the pacer's standby, with
//!   `SCHED_RESET_ON_FORK`:
//!   every thread and process created from it (tokio's blocking pool, health checks, hooks
//!   and what they exec) starts under the normal policy again and cannot monopolise a CPU.
//!   Memory locks are not inherited across fork either.
//!
//! A priority below the kernel's threaded interrupt handlers (50) is the sensible choice:
//! carpd's work arrives as packets, and the threads that deliver them must not wait for it.
//! The shipped systemd unit uses 10.
//!
//! Both need privileges: `CAP_SYS_NICE` (or an `RLIMIT_RTPRIO` of at least the priority) and
//! `CAP_IPC_LOCK` (or an `RLIMIT_MEMLOCK` as large as carpd). Without them carpd refuses to
//! start, saying which is missing: a daemon asked for real-time that silently ran without
//! it would fail exactly when it matters. Nothing is left half-applied: when the scheduling
//! policy is refused, the memory lock is undone.
use std::io;

use crate::values::Range;

/// `realtime_priority`: a SCHED_FIFO priority.
pub const PRIORITY: Range = Range {
    name: "realtime_priority",
    min: 1,
    max: 99,
};

#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    #[error(
        "realtime_priority {priority}: SCHED_FIFO refused: {source} (needs CAP_SYS_NICE or an \
         RLIMIT_RTPRIO of at least {priority}; under systemd also RestrictRealtime=no; with \
         CONFIG_RT_GROUP_SCHED, a cpu cgroup with real-time runtime)"
    )]
    Schedule { priority: u8, source: io::Error },
    #[error(
        "realtime_priority: locking carpd's memory (mlockall) refused: {source} (needs \
         CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK, e.g. systemd's LimitMEMLOCK=infinity)"
    )]
    LockMemory { source: io::Error },
}

/// Puts the calling thread (carpd's advert pacer) under SCHED_FIFO at `priority`, with
/// SCHED_RESET_ON_FORK, as [`enter`] does for the event loop; the memory is locked already.
pub fn enter_thread(priority: u8) -> Result<(), RealtimeError> {
    fifo(priority).map_err(|source| RealtimeError::Schedule { priority, source })
}

/// Puts the calling thread back under the normal policy (SCHED_OTHER, nice 0), which needs
/// no privilege and cannot fail for the calling thread.
pub fn leave_thread() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` outlives the call; pid 0 is the calling thread.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER | libc::SCHED_RESET_ON_FORK, &param) };
}

/// SCHED_FIFO at `priority` with SCHED_RESET_ON_FORK, for the calling thread.
fn fifo(priority: u8) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: `param` outlives the call; pid 0 is the calling thread.
    let rc = unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Locks carpd's memory and puts the calling thread under SCHED_FIFO at `priority`, with
/// SCHED_RESET_ON_FORK (see the module doc). Call it on the event loop's thread.
pub fn enter(priority: u8) -> Result<(), RealtimeError> {
    // SAFETY: plain system calls with constant flags.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT) } != 0 {
        return Err(RealtimeError::LockMemory {
            source: io::Error::last_os_error(),
        });
    }
    if let Err(source) = fifo(priority) {
        // SAFETY: a plain system call.
        unsafe { libc::munlockall() };
        return Err(RealtimeError::Schedule { priority, source });
    }
    Ok(())
}

/// The calling thread's scheduling policy (`SCHED_*`, without `SCHED_RESET_ON_FORK`) and
/// priority.
pub fn current_policy() -> (i32, i32) {
    // SAFETY: pid 0 is the calling thread; `param` is written by the kernel.
    let policy = unsafe { libc::sched_getscheduler(0) };
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: as above.
    unsafe { libc::sched_getparam(0, &mut param) };
    (policy & !libc::SCHED_RESET_ON_FORK, param.sched_priority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_for_this_thread_and_normal_for_what_it_forks() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: SCHED_FIFO and mlockall need root");
            return;
        }
        // A thread of its own: the policy must not leak into the test harness's threads.
        std::thread::spawn(|| {
            enter(5).expect("enter real time as root");
            assert_eq!(current_policy(), (libc::SCHED_FIFO, 5));
            // A thread and a process created from here run under the normal policy.
            let child_thread = std::thread::spawn(current_policy).join().unwrap();
            assert_eq!(child_thread, (libc::SCHED_OTHER, 0));
            let out = std::process::Command::new("sh")
                .args(["-c", "awk '/^policy/ {print $3}' /proc/self/sched"])
                .output()
                .expect("run sh");
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
            // SAFETY: undoes the lock for the rest of the test process.
            unsafe { libc::munlockall() };
        })
        .join()
        .unwrap();
    }
}
