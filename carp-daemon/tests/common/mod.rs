//! Shared pieces of the end-to-end tests: carpd instances in lab hosts, carpctl queries,
//! client probes. The binaries come from cargo (CARGO_BIN_EXE_*), so they are always fresh.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use carp_tests::{Host, Lab, LabProcess, LabSpec, wait_until};

pub mod keepalived;

pub const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const VMAC: &str = "00:00:5e:00:01:01";
pub const PASS: &str = "e2e-secret";

pub fn carpd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_carpd")
}

pub fn carpctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_carpctl")
}

/// A lab, or None (with the skip message printed) when not root.
pub fn lab(test: &str, hosts: usize) -> Option<Lab> {
    if !carp_tests::require_root(test) {
        return None;
    }
    let spec = LabSpec {
        hosts,
        ..LabSpec::default()
    };
    Some(Lab::new(test, spec).expect("build the lab"))
}

/// The timers of a test: fast enough for CI, slow enough for a loaded 2-core machine.
#[derive(Clone, Copy, Debug)]
pub struct Timers {
    pub advbase: u8,
    pub advskew: u8,
}

impl Timers {
    pub fn interval(&self) -> Duration {
        if self.advbase == 0 && self.advskew == 0 {
            Duration::from_micros(1_000_000 / 256)
        } else {
            Duration::from_secs(u64::from(self.advbase))
                + Duration::from_micros(u64::from(self.advskew) * 1_000_000 / 256)
        }
    }
    pub fn master_down(&self) -> Duration {
        self.interval() * 3
    }
}

/// A hostname.carp0 for vhid 1 with both virtual addresses.
pub fn hostname_carp0(host: &Host, t: Timers) -> String {
    format!(
        "inet {VIP4} 255.255.255.0 vhid 1 pass {PASS} carpdev {} advbase {} advskew {}\ninet6 {VIP6} 64\n",
        host.ifname(),
        t.advbase,
        t.advskew
    )
}

/// carpd running in a lab host.
pub struct Router<'a> {
    pub lab: &'a Lab,
    pub host: &'a Host,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub process: Option<LabProcess>,
}

impl<'a> Router<'a> {
    /// Starts carpd on `host` with `config` (hostname.carp0 text) and extra arguments.
    pub fn start(lab: &'a Lab, host: &'a Host, config: &str, extra: &[&str]) -> Self {
        Self::start_files(lab, host, &[("hostname.carp0", config)], extra)
    }

    /// Starts carpd with several configuration files (name, text); the first is `config`.
    pub fn start_files(
        lab: &'a Lab,
        host: &'a Host,
        files: &[(&str, &str)],
        extra: &[&str],
    ) -> Self {
        let dir = lab.workdir().join(host.name());
        std::fs::create_dir_all(&dir).unwrap();
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(name, text)| {
                let p = dir.join(name);
                std::fs::write(&p, text).unwrap();
                p
            })
            .collect();
        let mut args: Vec<String> = Vec::new();
        for p in &paths[1..] {
            args.push("--config".into());
            args.push(p.display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut r = Router {
            lab,
            host,
            dir,
            config: paths[0].clone(),
            process: None,
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        r.restart(&args);
        r
    }

    /// (Re)starts carpd with the same configuration file.
    pub fn restart(&mut self, extra: &[&str]) {
        let pin_dir = self.lab.pin_dir(self.host.name());
        let mut args: Vec<String> = vec![
            carpd_bin().into(),
            "--config".into(),
            self.config.display().to_string(),
            "--state-dir".into(),
            self.dir.display().to_string(),
            "--pin-dir".into(),
            pin_dir.display().to_string(),
            // No --xdp-mode: auto, as users run it, on the plain lab users have.
            "--log".into(),
            "info".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        self.process = Some(self.host.spawn(args).expect("spawn carpd"));
    }

    pub fn carpctl(&self, args: &[&str]) -> carp_tests::CmdOutput {
        let mut argv = vec![
            carpctl_bin().to_owned(),
            "--state-dir".to_owned(),
            self.dir.display().to_string(),
        ];
        argv.extend(args.iter().map(|s| s.to_string()));
        self.host.run(argv).expect("run carpctl")
    }

    /// carp0's state as carpctl reports it, or None while carpd does not answer.
    pub fn state(&self) -> Option<String> {
        self.state_of("carp0")
    }

    /// The state of carp interface `iface` as carpctl reports it.
    pub fn state_of(&self, iface: &str) -> Option<String> {
        let out = self.carpctl(&["--json", iface]);
        if !out.success() {
            return None;
        }
        carp_tests::carpd::carpctl_state(&out.stdout)
    }

    pub fn wait_state(&self, want: &str, timeout: Duration) {
        if wait_until(timeout, || self.state().as_deref() == Some(want)).is_err() {
            panic!(
                "{} did not become {want} within {timeout:?} (now {:?}); carpd log:\n{}",
                self.host.name(),
                self.state(),
                self.log()
            );
        }
    }

    /// The CARP packets carpd received (IPv4 and IPv6), from `carpctl stats`.
    pub fn adverts_received(&self) -> u64 {
        self.stats_both_families("received (IPv")
    }

    /// The adverts carpd sent (IPv4 and IPv6), from `carpctl stats`.
    pub fn adverts_sent(&self) -> u64 {
        self.stats_both_families("sent (IPv")
    }

    /// The sum of the `carpctl stats` counters whose line holds `label`.
    fn stats_both_families(&self, label: &str) -> u64 {
        let out = self.carpctl(&["stats"]);
        out.stdout
            .lines()
            .filter(|l| l.contains(label))
            .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    pub fn log(&self) -> String {
        self.process.as_ref().map(|p| p.log()).unwrap_or_default()
    }

    /// The state changes carpd logged (one info line each, with from= and to=).
    pub fn state_changes(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains(" from=") && l.contains(" to="))
            .count()
    }

    pub fn signal(&self, sig: carp_tests::Signal) {
        self.process
            .as_ref()
            .expect("running")
            .signal(sig)
            .expect("signal carpd");
    }

    /// Waits for carpd to exit (after SIGTERM) and returns whether it exited cleanly.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        let p = self.process.as_ref().expect("running");
        matches!(p.wait_timeout(timeout), Ok(Some(status)) if status.success())
    }
}

/// Starts carpd on hosts 1 and 2 with timers `t1` and `t2` (the same extra arguments) and
/// waits until host 1 is MASTER and host 2 BACKUP. Host 2 starts once host 1 is MASTER:
/// without preempt (the default) whichever comes up first stays master, and at advbase 0 a
/// host 2 that was quicker to start would keep the role.
pub fn master_and_backup<'a>(
    lab: &'a Lab,
    t1: Timers,
    t2: Timers,
    extra: &[&str],
) -> (Router<'a>, Router<'a>) {
    let r1 = Router::start(lab, lab.host(0), &hostname_carp0(lab.host(0), t1), extra);
    r1.wait_state("MASTER", Duration::from_secs(10));
    let r2 = Router::start(lab, lab.host(1), &hostname_carp0(lab.host(1), t2), extra);
    r2.wait_state("BACKUP", Duration::from_secs(10));
    // A backup that came up after the master's last advert counts its master-down time
    // from its own start, not from that advert: a failover test that began before r2 heard
    // r1 would measure r2's start-up, not the protocol.
    let heard = wait_until(t1.interval() * 2 + Duration::from_secs(5), || {
        r2.adverts_received() > 0
    });
    if heard.is_err() {
        panic!(
            "{} heard no advert from the master; carpd log:\n{}",
            lab.host(1).name(),
            r2.log()
        );
    }
    (r1, r2)
}

/// Sends raw frames out of the client's port (AF_PACKET), `repeat` times each.
pub fn inject(lab: &Lab, frames: Vec<Vec<u8>>, repeat: usize) {
    let socket = carp_tests::RawSocket::open(lab.client()).expect("AF_PACKET socket");
    for _ in 0..repeat {
        for f in &frames {
            socket.send(f).expect("send a frame from the client");
        }
    }
}

/// Polls until the client reaches `addr` by ping; the time it took.
pub fn time_to_reach(client: &Host, addr: IpAddr, timeout: Duration) -> Option<Duration> {
    let start = Instant::now();
    wait_until(timeout, || {
        client
            .run(["ping", "-c", "1", "-W", "0.2", &addr.to_string()])
            .is_ok_and(|o| o.success())
    })
    .ok()
    .map(|_| start.elapsed())
}

/// The MAC the client's neighbour table holds for `addr`.
pub fn neighbour_mac(client: &Host, addr: IpAddr) -> Option<String> {
    let out = client
        .run(["ip", "neigh", "show", &addr.to_string()])
        .ok()?;
    out.stdout
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .map(str::to_ascii_lowercase)
}

/// Interfaces in a host's namespace (names).
pub fn links(host: &Host) -> Vec<String> {
    let out = host.run(["ip", "-o", "link", "show"]).unwrap();
    out.stdout
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}

/// The standard output of a command that must have succeeded (carpctl, mostly).
pub fn ok(out: carp_tests::CmdOutput) -> String {
    assert!(
        out.success(),
        "command failed: {}{}",
        out.stdout,
        out.stderr
    );
    out.stdout
}
