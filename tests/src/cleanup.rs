//! Lab names that say who owns them, and the sweep that removes what dead owners left.
//!
//! A lab normally cleans up on drop, also while a panic unwinds. What drop cannot cover is a
//! test binary killed with SIGKILL (or a timeout): its namespaces, processes, pins and files
//! would stay forever. So every name a lab creates starts with `carplab-<pid>-`, the PID of
//! the creating process, and the first lab built by any later process removes whatever
//! belongs to PIDs that no longer exist. Labs of live processes (including parallel test
//! binaries) are never touched.
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::netns::{NETNS_RUN_DIR, Netns};
use crate::process::{PidFd, Signal};

/// Prefix of every namespace, pin directory and work directory a lab creates.
pub const LAB_PREFIX: &str = "carplab-";

/// Where labs put their bpffs pin directories.
pub const BPFFS_ROOT: &str = "/sys/fs/bpf";

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// A fresh lab id: `carplab-<pid>-<counter>-<random>`. The PID is for the sweep, the counter
/// separates labs of one process, and the random part separates processes that reuse a PID
/// while an old lab of that PID is still around.
pub(crate) fn new_lab_id() -> String {
    let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
    // RandomState is seeded from the OS once per process and varies per instance.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u16;
    format!("{LAB_PREFIX}{}-{n}-{random:04x}", std::process::id())
}

/// The creating PID encoded in a lab name, if it is one.
pub(crate) fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(LAB_PREFIX)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

fn owner_is_dead(name: &str) -> bool {
    owner_pid(name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

/// Runs the stale sweep once per process (the first lab pays for it; later labs of the same
/// process cannot find anything new that a dead process left).
pub(crate) fn sweep_stale_once() {
    SWEEP.call_once(sweep_stale);
}

/// Removes namespaces (after killing the processes left in them), bpffs pin directories and
/// work directories of labs whose creating process is gone. Best effort: failures are
/// reported on stderr and do not stop the new lab.
pub fn sweep_stale() {
    for name in stale_entries(Path::new(NETNS_RUN_DIR)) {
        let ns = Netns::existing(&name);
        let killed = kill_netns_processes(&ns);
        match ns.delete() {
            Ok(()) => eprintln!(
                "lab sweep: removed stale namespace {name} (killed {} process(es))",
                killed.len()
            ),
            Err(e) => eprintln!("lab sweep: {e}"),
        }
    }
    for dir in stale_entries(Path::new(BPFFS_ROOT))
        .into_iter()
        .map(|n| Path::new(BPFFS_ROOT).join(n))
        .chain(
            stale_entries(&std::env::temp_dir())
                .into_iter()
                .map(|n| std::env::temp_dir().join(n)),
        )
    {
        match remove_dir_all(&dir) {
            Ok(()) => eprintln!("lab sweep: removed stale {}", dir.display()),
            Err(e) => eprintln!("lab sweep: remove {}: {e}", dir.display()),
        }
    }
}

/// Names in `dir` that belong to labs of dead processes.
fn stale_entries(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| owner_is_dead(name))
        .collect()
}

/// SIGKILLs every process left in `ns` and waits (bounded) until they are gone. These can
/// only be processes the lab started or their children: nothing else ever enters a lab
/// namespace. Each is signalled through a pidfd opened after re-checking its namespace, so
/// a PID reused in between is never hit. Returns the PIDs killed.
pub(crate) fn kill_netns_processes(ns: &Netns) -> Vec<u32> {
    let mut killed = Vec::new();
    let mut pidfds = Vec::new();
    for pid in ns.pids() {
        let Ok(pidfd) = PidFd::open(pid) else {
            continue;
        };
        // The pidfd pins the process identity; confirm it is still the one in `ns`.
        if !ns.holds(pid) {
            continue;
        }
        if pidfd.signal(Signal::SIGKILL).is_ok() {
            killed.push(pid);
            pidfds.push(pidfd);
        }
    }
    for pidfd in pidfds {
        let _ = pidfd.wait(Some(Duration::from_secs(5)));
    }
    killed
}

/// `remove_dir_all` that treats an absent directory as removed.
pub(crate) fn remove_dir_all(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The lab's directory for logs and captures.
pub(crate) fn workdir_for(id: &str) -> PathBuf {
    std::env::temp_dir().join(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_encode_the_pid_and_differ() {
        let (a, b) = (new_lab_id(), new_lab_id());
        assert_ne!(a, b);
        assert_eq!(owner_pid(&a), Some(std::process::id()));
        assert_eq!(owner_pid(&format!("{a}-h1")), Some(std::process::id()));
        assert!(!owner_is_dead(&a), "this process is alive");
    }

    #[test]
    fn foreign_names_are_never_stale() {
        for name in ["carp", "carplab-", "carplab-x-1", "other-123-1", "ns1"] {
            assert!(!owner_is_dead(name), "{name}");
        }
        // A PID beyond pid_max cannot be alive: such a lab counts as stale.
        assert!(owner_is_dead("carplab-4294967295-0-abcd-h1"));
    }
}
