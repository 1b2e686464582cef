//! Test support: a fresh network namespace per test, entered by a dedicated thread, and
//! temporary directories. Both are removed by guards, on failure too.
//!
//! Network namespaces are per thread: the test body runs on a new thread that `setns`es
//! into the namespace and only then builds its current-thread tokio runtime, so the netlink
//! sockets, `/proc/sys/net` and `/proc/thread-self/net` are the namespace's. `/proc/net` is
//! *not*: it points to `/proc/self/net`, the main thread's view.
use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// `ip netns add` sets /run/netns up on first use, and concurrent first uses race.
static NETNS_LOCK: Mutex<()> = Mutex::new(());

/// Prefix of the namespaces these tests create: `carpnet-<pid>-<n>`.
const PREFIX: &str = "carpnet-";

/// How long a test waits for an event or a condition before failing.
pub const TIMEOUT: Duration = Duration::from_secs(10);

fn unique(tag: &str) -> String {
    format!(
        "{}-{}-{tag}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A directory under the system temp dir, deleted on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("carpd-net-{}", unique(tag)));
        std::fs::create_dir_all(&path).expect("creating a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// True if the tests that need CAP_NET_ADMIN can run.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A named network namespace (`ip netns add`), deleted on drop. [`in_netns`] makes one
/// per test; a test that needs a second one (a peer host) creates it with this.
pub struct TestNs {
    name: String,
}

impl TestNs {
    pub fn create() -> TestNs {
        let _lock = NETNS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        sweep_stale();
        let name = format!("{PREFIX}{}", unique("ns"));
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("running ip");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TestNs { name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _lock = NETNS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Deletes namespaces of this test suite whose process is gone (a run killed before its
/// guards ran). Only names with our prefix and a dead pid are touched.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|r| r.split('-').next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }
}

/// Runs `test(namespace_name)` on a new thread inside a fresh network namespace, on a
/// current-thread tokio runtime, and deletes the namespace afterwards, also when the test
/// panics (the panic is then resumed). Skips, with a message, when not root.
pub fn in_netns<F, Fut>(test_name: &str, test: F)
where
    F: FnOnce(String) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    if !is_root() {
        eprintln!("skipping {test_name}: needs root (CAP_NET_ADMIN) to create network namespaces");
        return;
    }
    let ns = TestNs::create();
    let name = ns.name.clone();
    let result = std::thread::Builder::new()
        .name(test_name.to_owned())
        .spawn(move || {
            let fd = File::open(format!("/run/netns/{name}")).expect("opening the namespace");
            nix::sched::setns(&fd, CloneFlags::CLONE_NEWNET).expect("setns");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(test(name));
        })
        .expect("spawning the test thread")
        .join();
    drop(ns);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// `ip -n <ns> <args>`: its stdout; panics with stderr if it fails.
pub fn ip(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .arg("-n")
        .arg(ns)
        .args(args)
        .output()
        .expect("running ip");
    assert!(
        out.status.success(),
        "ip -n {ns} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip netns exec <ns> <command...>`: whether it succeeded.
pub fn netns_exec_ok(ns: &str, command: &[&str]) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(command)
        .output()
        .expect("running ip netns exec")
        .status
        .success()
}

/// `ip netns exec <ns> sysctl -n <key>`: an independent view of a sysctl in the namespace.
pub fn sysctl_via_ip_netns_exec(ns: &str, key: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sysctl", "-n", key])
        .output()
        .expect("running ip netns exec sysctl");
    assert!(
        out.status.success(),
        "sysctl {key}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Polls `cond` until it holds, failing the test after [`TIMEOUT`]. For states that
/// produce no event to wait for; the poll interval is not a synchronisation.
pub async fn poll_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + TIMEOUT;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
