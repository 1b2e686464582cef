//! Test support: a fresh network namespace per test, entered by a dedicated thread, and
//! temporary directories. Both are removed by guards, on failure too.
//!
//! The namespaces are the lab harness's ([`carp_tests::OwnedNetns`], entered with
//! [`carp_tests::Netns::enter`]): named, cleaned up and swept after a killed run like a lab's,
//! with the same root check ([`carp_tests::require_root`]). carp-tests is a dev-dependency of
//! this crate and its library depends on no product crate (only its own tests use carpd),
//! so there is no cycle.
//!
//! Network namespaces are per thread: the test body runs on a new thread that `setns`es
//! into the namespace and only then builds its current-thread tokio runtime, so the netlink
//! sockets, `/proc/sys/net` and `/proc/thread-self/net` are the namespace's. `/proc/net` is
//! *not*: it points to `/proc/self/net`, the main thread's view.
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use carp_tests::OwnedNetns as TestNs;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

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

/// Runs `test(namespace_name)` on a new thread inside a fresh network namespace, on a
/// current-thread tokio runtime, and deletes the namespace afterwards, also when the test
/// panics (the panic is then resumed). Skips, with a message, when not root.
pub fn in_netns<F, Fut>(test_name: &str, test: F)
where
    F: FnOnce(String) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    if !carp_tests::require_root(test_name) {
        return;
    }
    let ns = TestNs::create(test_name).expect("creating the test's namespace");
    let name = ns.name().to_owned();
    // A panic in the test is resumed here, and unwinding drops `ns`.
    ns.enter(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(test(name));
    })
    .expect("entering the test's namespace");
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
