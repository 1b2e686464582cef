//! Notify hooks: a command run on every state change, with the facts in its environment
//! (`CARP_INTERFACE`, `CARP_VHID`, `CARP_OLD_STATE`, `CARP_NEW_STATE`, `CARP_REASON`,
//! `CARP_CARPDEV`). Hooks run detached from the election: carpd hands them over and moves on;
//! a hook that outlives its time limit is killed, and a failing one is logged. Neither ever
//! delays an advert or a state change.
//!
//! What a flapping link may cost is bounded:
//! - At most one run of a hook per carp interface at a time. Changes that arrive meanwhile are
//!   coalesced into one queued run carrying the latest state (its `CARP_OLD_STATE` is the state
//!   the hook was last told about, so what a hook sees always chains); every change dropped
//!   that way is counted ([`skipped_total`], `carpctl stats`).
//! - At most [`MAX_RUNNING_HOOKS`] hooks run at once over all interfaces; the others wait for
//!   a slot (at most one waiting run per interface and hook, so the wait costs no memory to
//!   speak of).
//! - Each hook runs in its own process group; on timeout the whole group is killed, so a
//!   hook's own children (a `sleep`, a stuck `curl`) go with it.
//! - The environment is the `CARP_*` variables and `PATH` only: nothing of carpd's own
//!   environment (`NOTIFY_SOCKET`, `WATCHDOG_*`, ...) leaks into a hook.
//! - At exit carpd waits a few seconds for the hooks still running ([`HookRunner::drain`]);
//!   what is left then is killed with its process group.
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::Semaphore;

/// How long a hook may run before its process group is killed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Hooks running at once over all interfaces.
pub const MAX_RUNNING_HOOKS: usize = 8;

/// `PATH` for hooks when carpd itself has none (systemd's default for services).
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One state change, as hooks see it.
#[derive(Debug, Clone)]
pub struct StateChange {
    pub interface: String,
    pub carpdev: String,
    pub vhid: u8,
    pub old_state: &'static str,
    pub new_state: &'static str,
    pub reason: &'static str,
}

/// Runs `hook` for `change` in the background through the daemon's [`HookRunner`] (needs a
/// tokio runtime).
pub fn spawn(hook: PathBuf, change: StateChange) {
    HookRunner::global().run(hook, change);
}

/// State changes not handed to a hook because a later one for the same interface replaced
/// them while the hook was busy, since carpd started.
pub fn skipped_total() -> u64 {
    HookRunner::global().skipped()
}

/// Runs hooks under the limits described in the module documentation.
#[derive(Clone)]
pub struct HookRunner {
    inner: Arc<Inner>,
}

struct Inner {
    timeout: Duration,
    /// One permit per hook allowed to run.
    slots: Arc<Semaphore>,
    /// Per (hook, interface) with a worker task: the change waiting for it, if any. An entry
    /// exists exactly while its worker runs.
    queues: Mutex<HashMap<(PathBuf, String), Option<StateChange>>>,
    skipped: AtomicU64,
    /// Woken whenever a worker finishes (see [`HookRunner::drain`]).
    idle: tokio::sync::Notify,
}

impl HookRunner {
    /// A runner allowing `max_running` hooks at once, each for at most `timeout`.
    pub fn new(max_running: usize, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                timeout,
                slots: Arc::new(Semaphore::new(max_running)),
                queues: Mutex::new(HashMap::new()),
                skipped: AtomicU64::new(0),
                idle: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The daemon's runner ([`MAX_RUNNING_HOOKS`], [`HOOK_TIMEOUT`]): hooks are processes of
    /// carpd, so their limits are the process's.
    pub fn global() -> &'static HookRunner {
        static RUNNER: OnceLock<HookRunner> = OnceLock::new();
        RUNNER.get_or_init(|| HookRunner::new(MAX_RUNNING_HOOKS, HOOK_TIMEOUT))
    }

    /// Changes replaced by a later one before their hook ran.
    pub fn skipped(&self) -> u64 {
        self.inner.skipped.load(Ordering::Relaxed)
    }

    /// Waits until every queued and running hook has finished, for at most `timeout`; whether
    /// they all did. carpd calls it on its way out, so that the hooks of its last state
    /// changes (a master bowing out) run to their end instead of being killed with the
    /// runtime.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let all_done = async {
            loop {
                let notified = self.inner.idle.notified();
                tokio::pin!(notified);
                // Registered before the check, so a worker finishing in between still wakes us.
                notified.as_mut().enable();
                if self
                    .inner
                    .queues
                    .lock()
                    .expect("hook queue lock")
                    .is_empty()
                {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, all_done).await.is_ok()
    }

    /// Queues `change` for `hook` and returns at once (needs a tokio runtime).
    pub fn run(&self, hook: PathBuf, mut change: StateChange) {
        let key = (hook, change.interface.clone());
        let mut queues = self.inner.queues.lock().expect("hook queue lock");
        if let Some(pending) = queues.get_mut(&key) {
            // A run of this hook for this interface is under way: replace what waits behind
            // it, keeping the old state the replaced change would have reported.
            if let Some(replaced) = pending.take() {
                self.inner.skipped.fetch_add(1, Ordering::Relaxed);
                change.old_state = replaced.old_state;
            }
            *pending = Some(change);
            return;
        }
        queues.insert(key.clone(), Some(change));
        drop(queues);
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.work(key).await });
    }
}

impl Inner {
    /// Runs the queued changes of one (hook, interface) one after the other, always the
    /// latest, until none is left.
    async fn work(&self, key: (PathBuf, String)) {
        loop {
            let permit = self
                .slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let change = {
                let mut queues = self.queues.lock().expect("hook queue lock");
                let pending = queues.get_mut(&key).and_then(Option::take);
                if pending.is_none() {
                    queues.remove(&key);
                }
                pending
            };
            let Some(change) = change else {
                self.idle.notify_waiters();
                return;
            };
            run_one(&key.0, &change, self.timeout).await;
            drop(permit);
        }
    }
}

/// Runs `hook` once for `change` and waits for it, killing its process group on timeout.
async fn run_one(hook: &std::path::Path, change: &StateChange, timeout: Duration) {
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    let mut cmd = tokio::process::Command::new(hook);
    cmd.env_clear()
        .env("PATH", path)
        .env("CARP_INTERFACE", &change.interface)
        .env("CARP_CARPDEV", &change.carpdev)
        .env("CARP_VHID", change.vhid.to_string())
        .env("CARP_OLD_STATE", change.old_state)
        .env("CARP_NEW_STATE", change.new_state)
        .env("CARP_REASON", change.reason)
        .stdin(std::process::Stdio::null())
        // A group of its own (pgid = its pid), so that a timeout can kill what it started.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => {
            tracing::warn!(hook = %hook.display(), error = %err, "hook could not start");
            return;
        }
    };
    // Kills the group if carpd drops this run (runtime shutdown) before the hook ended.
    let group = child
        .id()
        .map(|pid| ProcessGroup(Pid::from_raw(pid as i32)));
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => match status.signal() {
            Some(sig) => tracing::warn!(hook = %hook.display(), signal = sig, "hook killed"),
            None => tracing::warn!(hook = %hook.display(), %status, "hook failed"),
        },
        Ok(Err(err)) => tracing::warn!(hook = %hook.display(), error = %err, "hook wait"),
        Err(_) => {
            tracing::warn!(hook = %hook.display(), ?timeout, "hook timed out; killing its process group");
            drop(group);
            let _ = child.wait().await;
            return;
        }
    }
    // The hook ended by itself: whatever it left running in its group was meant to outlive it.
    if let Some(group) = group {
        std::mem::forget(group);
    }
}

/// A child's process group, killed (SIGKILL) when dropped (hooks, exec checks).
pub(crate) struct ProcessGroup(pub(crate) Pid);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let _ = killpg(self.0, Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("carpd-hook-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        fn script(&self, name: &str, body: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn change(interface: &str, old_state: &'static str, new_state: &'static str) -> StateChange {
        StateChange {
            interface: interface.into(),
            carpdev: "eth0".into(),
            vhid: 7,
            old_state,
            new_state,
            reason: "master_down_timer",
        }
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether `pid` still runs (a zombie counts as gone).
    fn alive(pid: i32) -> bool {
        stat_after_comm(pid).is_some_and(|rest| !rest.starts_with(" Z"))
    }

    /// `/proc/PID/stat` after the command name: " STATE PPID ...".
    fn stat_after_comm(pid: i32) -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some(stat.rsplit_once(')')?.1.to_owned())
    }

    /// Live children of this process whose command name (a script's is its file name) is
    /// `comm`: the hooks themselves, not the forks of their shells.
    fn live(comm: &str) -> std::collections::HashSet<i32> {
        let me = std::process::id().to_string();
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim_end() == comm)
                    && stat_after_comm(*pid).is_some_and(|rest| {
                        let mut f = rest.split_whitespace();
                        f.next() != Some("Z") && f.next() == Some(me.as_str())
                    })
            })
            .collect()
    }

    /// How many processes named `comm` were alive together at one instant: a scan of /proc
    /// is not atomic, but a process seen in two scans in a row lived through the moment
    /// between them, so the ones in both are a true lower bound (never an overcount).
    fn count_live_together(comm: &str) -> usize {
        let first = live(comm);
        live(comm).intersection(&first).count()
    }

    #[tokio::test]
    async fn a_hook_sees_only_the_change_and_path_and_does_not_block() {
        let dir = TempDir::new("env");
        let out = dir.0.join("env.txt");
        // The shell's initial environment, exactly as exec'd (the shell adds PWD etc. later).
        let hook = dir.script(
            "hook.sh",
            &format!(
                "sleep 1\ntr '\\0' '\\n' < /proc/$$/environ | sort > {0}.tmp\nmv {0}.tmp {0}\n",
                out.display()
            ),
        );
        let runner = HookRunner::new(2, Duration::from_secs(10));
        let started = Instant::now();
        runner.run(hook, change("carp0", "BACKUP", "MASTER"));
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "run blocked"
        );
        wait_for("the hook's output", || out.exists()).await;
        let env = std::fs::read_to_string(&out).unwrap();
        let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into());
        assert_eq!(
            env,
            format!(
                "CARP_CARPDEV=eth0\nCARP_INTERFACE=carp0\nCARP_NEW_STATE=MASTER\nCARP_OLD_STATE=BACKUP\nCARP_REASON=master_down_timer\nCARP_VHID=7\nPATH={path}\n"
            )
        );
    }

    /// 2,000 changes over 50 interfaces to a hook that takes a while: never more than the cap
    /// alive, never two runs for one interface at once, every change run or counted as
    /// skipped, and each interface's last run reports its last state.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_storm_of_changes_never_runs_more_than_the_cap() {
        const CAP: usize = 4;
        const INTERFACES: usize = 50;
        const CHANGES: usize = 2000;
        let dir = TempDir::new("storm");
        let log = dir.0.join("log");
        // Each run logs its start and end with its pid (O_APPEND lines are atomic).
        let hook = dir.script(
            "storm-hook",
            &format!(
                "echo \"start $$ $CARP_INTERFACE $CARP_OLD_STATE $CARP_NEW_STATE\" >> {0}\n\
                 sleep 0.05\necho \"end $$ $CARP_INTERFACE\" >> {0}\n",
                log.display()
            ),
        );
        let runner = HookRunner::new(CAP, Duration::from_secs(10));
        let states = ["BACKUP", "MASTER"];
        let sampler = {
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let stop2 = stop.clone();
            let handle = std::thread::spawn(move || {
                let mut max = 0;
                while !stop2.load(Ordering::Relaxed) {
                    max = max.max(count_live_together("storm-hook"));
                    std::thread::sleep(Duration::from_millis(2));
                }
                max
            });
            (stop, handle)
        };
        for i in 0..CHANGES {
            let n = i / INTERFACES;
            runner.run(
                hook.clone(),
                change(
                    &format!("carp{}", i % INTERFACES),
                    states[n % 2],
                    states[(n + 1) % 2],
                ),
            );
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        assert!(
            runner.drain(Duration::from_secs(60)).await,
            "hooks still running"
        );
        sampler.0.store(true, Ordering::Relaxed);
        let sampled_max = sampler.1.join().unwrap();

        let text = std::fs::read_to_string(&log).unwrap();
        let mut live = 0usize;
        let mut max_live = 0usize;
        let mut running: HashMap<String, i32> = HashMap::new();
        let mut last: HashMap<String, (String, String)> = HashMap::new();
        let mut runs = 0u64;
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let pid: i32 = f[1].parse().unwrap();
            match f[0] {
                "start" => {
                    runs += 1;
                    live += 1;
                    max_live = max_live.max(live);
                    let prev = running.insert(f[2].to_owned(), pid);
                    assert!(prev.is_none(), "two runs for {} at once: {line}", f[2]);
                    if let Some((_, new)) = last.get(f[2]) {
                        assert_eq!(new, f[3], "{} runs do not chain: {line}", f[2]);
                    }
                    last.insert(f[2].to_owned(), (f[3].to_owned(), f[4].to_owned()));
                }
                _ => {
                    live -= 1;
                    assert_eq!(running.remove(f[2]), Some(pid));
                }
            }
        }
        assert!(max_live <= CAP, "{max_live} hooks ran at once (cap {CAP})");
        assert!(sampled_max <= CAP, "{sampled_max} hooks alive at once");
        assert!(sampled_max >= 1, "the sampler never saw a hook");
        assert_eq!(runs + runner.skipped(), CHANGES as u64);
        assert!(runner.skipped() > 0);
        // Each interface saw 40 changes; the last one (n = 39) went MASTER -> BACKUP.
        assert_eq!(last.len(), INTERFACES);
        for (interface, (_, new)) in &last {
            assert_eq!(new, "BACKUP", "{interface}'s last run");
        }
    }

    #[tokio::test]
    async fn drain_waits_for_running_and_queued_hooks_within_its_limit() {
        let dir = TempDir::new("drain");
        let log = dir.0.join("log");
        let hook = dir.script(
            "slow.sh",
            &format!(
                "echo \"start $CARP_NEW_STATE\" >> {0}\nsleep 0.3\necho \"end $CARP_NEW_STATE\" >> {0}\n",
                log.display()
            ),
        );
        let runner = HookRunner::new(2, Duration::from_secs(10));
        assert!(runner.drain(Duration::ZERO).await, "nothing to wait for");
        runner.run(hook.clone(), change("carp0", "MASTER", "INIT"));
        wait_for("the first run", || log.exists()).await;
        runner.run(hook, change("carp0", "INIT", "BACKUP"));
        // One run under way, one queued behind it: 0.6 s in all.
        assert!(!runner.drain(Duration::from_millis(100)).await);
        assert!(runner.drain(Duration::from_secs(10)).await);
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "start INIT\nend INIT\nstart BACKUP\nend BACKUP\n"
        );
    }

    #[tokio::test]
    async fn a_hook_that_times_out_is_killed_with_its_children() {
        let dir = TempDir::new("timeout");
        let pids = dir.0.join("pids");
        let done = dir.0.join("done");
        // The hook starts a child that would outlive it, records both pids, then hangs.
        let hook = dir.script(
            "hang.sh",
            &format!(
                "sleep 1000 &\necho $$ $! > {0}.tmp\nmv {0}.tmp {0}\nsleep 1000\ntouch {1}\n",
                pids.display(),
                done.display()
            ),
        );
        let runner = HookRunner::new(1, Duration::from_millis(500));
        runner.run(hook.clone(), change("carp0", "INIT", "BACKUP"));
        wait_for("the hook's pids", || pids.exists()).await;
        let recorded = std::fs::read_to_string(&pids).unwrap();
        let (shell, child) = recorded.trim().split_once(' ').unwrap();
        let (shell, child): (i32, i32) = (shell.parse().unwrap(), child.parse().unwrap());
        assert!(alive(shell) && alive(child));
        wait_for("the hook and its child to be killed", || {
            !alive(shell) && !alive(child)
        })
        .await;
        assert!(!done.exists());
        // The slot is free again: the next change runs (and is killed in turn).
        let _ = std::fs::remove_file(&pids);
        runner.run(hook, change("carp0", "BACKUP", "MASTER"));
        wait_for("the next run", || pids.exists()).await;
        wait_for("the queue to drain", || {
            runner.inner.queues.lock().unwrap().is_empty()
        })
        .await;
    }
}
