//! The units of dist/systemd under a real systemd: READY, a watchdog restart, the boot
//! demotion and its lift, the sysctl restore file across restarts.
//!
//! systemd runs as PID 1 of its own PID, mount, network, UTS, IPC and cgroup namespaces
//! (`unshare`), in a cgroup of its own, with private tmpfs mounts for /run, /tmp, /var/tmp, /var/lib
//! and the journal (its tmpfiles clean-up would otherwise empty the machine's /tmp), a
//! private bpffs, and an overlay over /etc in which the units and a configuration are
//! installed as the README says. It boots a target with only the units under test (a lab
//! drop-in drops their default dependencies, so nothing of sysinit.target runs against the
//! machine's files) and is killed with SIGKILL from outside, which ends the whole namespace.
//!
//! Skipped (with the reason) when not root, or without systemd, unshare/nsenter or a cgroup2
//! hierarchy.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

const SYSTEMD: &str = "/lib/systemd/systemd";

/// PID 1 of the lab: private mounts, the units, a veth pair as carpdev, then systemd.
const INNER: &str = r#"#!/bin/sh
set -e
LAB=$1 CARPD=$2 CARPCTL=$3
mount --make-rprivate /
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# Everything from the checkout (the lab directory, the binaries) is taken before the private
# /tmp, /run and /var/tmp hide it: the checkout itself may live under /tmp.
mount -t tmpfs -o mode=0755 tmpfs /usr/local/sbin
touch /usr/local/sbin/carpd /usr/local/sbin/carpctl
mount --bind $CARPD /usr/local/sbin/carpd
mount --bind $CARPCTL /usr/local/sbin/carpctl
mount -t tmpfs -o mode=0755 tmpfs /mnt
cp $LAB/carpd.toml /mnt/
cp -r $LAB/units /mnt/units
mkdir -p /var/log/journal
for d in /run /tmp /var/tmp /var/lib /var/log/journal; do mount -t tmpfs -o mode=0755 tmpfs $d; done
chmod 1777 /tmp /var/tmp
mount -t bpf bpf /sys/fs/bpf
mkdir -p /run/lab/upper /run/lab/work
mount -t overlay overlay -o lowerdir=/etc,upperdir=/run/lab/upper,workdir=/run/lab/work /etc
mkdir -p /etc/carp /etc/systemd/system
cp /mnt/carpd.toml /etc/carp/
cp -r /mnt/units/. /etc/systemd/system/
ip link set lo up
ip link add eth0 type veth peer name peer0
ip link set peer0 up
ip link set eth0 up
# The administrator's values, which carpd changes and must put back.
sysctl -qw net.ipv4.conf.eth0.arp_ignore=2 net.ipv4.conf.eth0.arp_announce=1
export container=carp-lab
exec /lib/systemd/systemd --unit=carp-lab.target --log-target=journal-or-kmsg
"#;

const TARGET: &str = "[Unit]\nDescription=carp lab\nDefaultDependencies=no\n\
    Wants=systemd-journald.service carpd.service carp-undemote.service\n\
    After=systemd-journald.service\n";

const CONFIG: &str = "[[interface]]\nname = \"carp0\"\ncarpdev = \"eth0\"\nvhid = 1\n\
    pass = \"systemd-lab\"\naddresses = [\"192.0.2.10/24\"]\n";

/// The running lab; dropping it kills systemd (and so the namespaces) and removes the cgroup.
struct SystemdLab {
    unshare: Child,
    systemd_pid: u32,
    cgroup: PathBuf,
    dir: PathBuf,
}

impl SystemdLab {
    /// Why this lab cannot run here, if it cannot.
    fn unavailable() -> Option<String> {
        if !nix::unistd::geteuid().is_root() {
            return Some("needs root".into());
        }
        if !Path::new(SYSTEMD).exists() {
            return Some(format!("{SYSTEMD} not installed (Debian package systemd)"));
        }
        for tool in ["unshare", "nsenter", "sysctl"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !found {
                return Some(format!("{tool} not found"));
            }
        }
        if cgroup2_root().is_none() {
            return Some("no cgroup2 hierarchy mounted".into());
        }
        // A container may forbid new namespaces or mounts even to root.
        let probe = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--mount",
                "--net",
                "--cgroup",
                "--mount-proc",
            ])
            .args(["sh", "-c", "mount -t tmpfs tmpfs /tmp"])
            .stderr(Stdio::null())
            .status();
        if !probe.is_ok_and(|s| s.success()) {
            return Some("cannot create PID, mount, network and cgroup namespaces here".into());
        }
        None
    }

    fn start(test: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let units = dir.join("units");
        std::fs::create_dir_all(&units).unwrap();
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/systemd");
        for unit in ["carpd.service", "carp-undemote.service"] {
            std::fs::copy(dist.join(unit), units.join(unit)).unwrap();
            // Only ordering changes: no sysinit.target against the machine's files.
            let dropin = units.join(format!("{unit}.d"));
            std::fs::create_dir_all(&dropin).unwrap();
            std::fs::write(dropin.join("lab.conf"), "[Unit]\nDefaultDependencies=no\n").unwrap();
        }
        std::fs::write(units.join("carp-lab.target"), TARGET).unwrap();
        // network-online.target pulls this in; there is no network to configure here.
        std::os::unix::fs::symlink("/dev/null", units.join("networking.service")).unwrap();
        std::fs::write(dir.join("carpd.toml"), CONFIG).unwrap();
        std::fs::write(dir.join("inner.sh"), INNER).unwrap();

        let cgroup = cgroup2_root()
            .unwrap()
            .join(format!("carp-lab-{}", std::process::id()));
        std::fs::create_dir_all(&cgroup).unwrap();
        // Enter the cgroup first, so that it is the root of the lab's cgroup namespace.
        let outer = format!(
            "echo $$ > {}/cgroup.procs && exec unshare --pid --fork --mount --net --uts --ipc \
             --cgroup --mount-proc --propagation private sh {}/inner.sh {} {} {}",
            cgroup.display(),
            dir.display(),
            dir.display(),
            common::carpd_bin(),
            common::carpctl_bin(),
        );
        let unshare = Command::new("sh")
            .args(["-c", &outer])
            .stdin(Stdio::null())
            .spawn()
            .expect("start unshare");
        let unshare_pid = unshare.id();
        let mut lab = SystemdLab {
            unshare,
            systemd_pid: 0,
            cgroup,
            dir,
        };
        // systemd is unshare's only child (after the exec in inner.sh).
        lab.systemd_pid = wait_for("systemd to start", Duration::from_secs(20), || {
            let children =
                std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children"))
                    .ok()?;
            let pid: u32 = children.split_whitespace().next()?.parse().ok()?;
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            (exe == Path::new(SYSTEMD) || exe.ends_with("systemd")).then_some(pid)
        });
        lab
    }

    /// Runs `script` with sh inside the lab; its stdout, trimmed.
    fn sh(&self, script: &str) -> String {
        let out = Command::new("nsenter")
            .args([
                "-t",
                &self.systemd_pid.to_string(),
                "-a",
                "sh",
                "-c",
                script,
            ])
            .output()
            .expect("nsenter");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn show(&self, unit: &str, property: &str) -> String {
        self.sh(&format!("systemctl show -P {property} {unit}"))
    }

    fn main_pid(&self) -> u32 {
        self.show("carpd", "MainPID").parse().unwrap_or(0)
    }

    /// Waits until carpd is active (READY=1 received) with a main process other than `old`,
    /// after `restarts` automatic restarts; returns its pid.
    fn wait_active(&self, old: u32, restarts: u32, timeout: Duration) -> u32 {
        wait_for(
            &format!("carpd active after {restarts} restart(s), not pid {old}"),
            timeout,
            || {
                let pid = self.main_pid();
                (self.show("carpd", "ActiveState") == "active"
                    && self.show("carpd", "NRestarts") == restarts.to_string()
                    && pid != 0
                    && pid != old)
                    .then_some(pid)
            },
        )
    }

    fn demote(&self) -> String {
        self.sh("carpctl -g carp")
    }

    fn sysctls(&self) -> String {
        self.sh("sysctl -n net.ipv4.conf.eth0.arp_ignore net.ipv4.conf.eth0.arp_announce")
            .replace('\n', " ")
    }

    /// How many times carpd applied the boot demotion, per its log.
    fn boot_demotions(&self) -> usize {
        self.sh("journalctl --no-pager -o cat -u carpd")
            .lines()
            .filter(|l| l.contains("boot demotion of group carp demote=128"))
            .count()
    }
}

impl Drop for SystemdLab {
    fn drop(&mut self) {
        if self.systemd_pid != 0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.systemd_pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.unshare.wait();
        // systemd's own cgroups below ours, deepest first, once their processes are gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cgroup.exists() && Instant::now() < deadline {
            let _ = Command::new("find")
                .arg(&self.cgroup)
                .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"])
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where a cgroup2 hierarchy is mounted: the root on a unified host, `unified` on a hybrid one.
fn cgroup2_root() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.procs").exists())
}

fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn units_under_systemd_restart_and_restore() {
    if let Some(why) = SystemdLab::unavailable() {
        eprintln!("skipping units_under_systemd_restart_and_restore: {why}");
        return;
    }
    let lab = SystemdLab::start("systemd-units");

    // First start since "boot": READY reaches systemd, the boot demotion is applied and
    // carp-undemote lifts it.
    let first = lab.wait_active(0, 0, Duration::from_secs(60));
    wait_for("carp-undemote", Duration::from_secs(30), || {
        (lab.show("carp-undemote", "ActiveState") == "active").then_some(())
    });
    assert_eq!(lab.demote(), "carp: carp demote count 0");
    wait_for(
        "the boot demotion in the journal",
        Duration::from_secs(10),
        || (lab.boot_demotions() == 1).then_some(()),
    );
    assert_eq!(lab.sysctls(), "1 2", "carpd's carpdev sysctls");
    // --realtime-priority 10 in the unit: the event loop (main thread) runs SCHED_FIFO (1)
    // at the kernel's prio 99 - 10, with memory locked; the unit grants what that needs.
    let sched = lab.sh(&format!(
        "awk -F: '/^policy|^prio/ {{gsub(/ /, \"\", $2); printf \"%s \", $2}}' /proc/{first}/sched; \
         awk '/^VmLck/ {{print ($2 > 0)}}' /proc/{first}/status"
    ));
    assert_eq!(sched, "1 89 1", "carpd's policy, priority and memory lock");

    // A crash: systemd restarts carpd, which keeps the restore file and starts undemoted.
    lab.sh(&format!("kill -KILL {first}"));
    let second = lab.wait_active(first, 1, Duration::from_secs(30));
    assert_eq!(lab.demote(), "carp: carp demote count 0");
    assert_eq!(
        lab.boot_demotions(),
        1,
        "an automatic restart demoted again"
    );

    // A hang: the watchdog (WatchdogSec=10) kills the stopped carpd and systemd restarts it.
    lab.sh(&format!("kill -STOP {second}"));
    let hung_at = Instant::now();
    lab.wait_active(second, 2, Duration::from_secs(60));
    // carpd pings every 5 s, so the 10 s limit runs out 5 to 10 s after the stop.
    assert!(
        hung_at.elapsed() >= Duration::from_secs(5),
        "restarted after {:?}, before the watchdog timeout",
        hung_at.elapsed()
    );
    let journal = lab.sh("journalctl --no-pager -o cat -u carpd");
    assert!(
        journal.contains("carpd.service: Watchdog timeout"),
        "no watchdog timeout in the journal:\n{journal}"
    );
    assert_eq!(lab.demote(), "carp: carp demote count 0");
    assert_eq!(lab.boot_demotions(), 1);

    // A clean stop restores the administrator's values, recorded before the first start and
    // kept across both restarts, and removes the runtime directory.
    lab.sh("systemctl stop carpd");
    assert_eq!(lab.sysctls(), "2 1", "the administrator's sysctls");
    assert_eq!(lab.sh("test -e /run/carpd && echo present"), "");

    // The next start demotes again and carp-undemote, pulled in again, lifts it.
    lab.sh("systemctl start carpd");
    wait_for("carpd active again", Duration::from_secs(30), || {
        (lab.show("carpd", "ActiveState") == "active").then_some(())
    });
    wait_for(
        "the lift after the new start",
        Duration::from_secs(30),
        || {
            (lab.show("carp-undemote", "ActiveState") == "active"
                && lab.demote() == "carp: carp demote count 0")
                .then_some(())
        },
    );
    wait_for(
        "the second boot demotion in the journal",
        Duration::from_secs(10),
        || (lab.boot_demotions() == 2).then_some(()),
    );
}
