//! `cargo xtask demo`: two routers and a client in network namespaces, carpd on both routers
//! with one IPv4 and one IPv6 virtual address, an election, the client reaching the address,
//! the master's carpd killed with SIGKILL, and the failover time the client saw.
//!
//! Everything lives in a [`carp_tests::Lab`]: namespaces, processes and pins are removed when
//! the demo ends, also on error or Ctrl-C (the lab's Drop runs; a killed demo's lab is swept
//! by the next one).
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use carp_tests::{Host, Lab, LabProcess, LabSpec, Signal, wait_until};

use crate::{command, run_inherit, setup, workspace_root};

const VIP4: &str = "192.0.2.1";
const VIP6: &str = "2001:db8::1";
const PASS: &str = "demo-secret";

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> Result<()> {
    setup::setup(false)?;
    let bin = build()?;
    if !carp_tests::require_root("cargo xtask demo") {
        bail!("the demo builds network namespaces and loads XDP programs: run it as root");
    }
    println!();
    println!("carp demo: routers r1 (advskew 0) and r2 (advskew 100), a client, one switch;");
    println!("           vhid 1 carries {VIP4}/24 and {VIP6}/64, advbase 1");
    let lab = Lab::new("demo", LabSpec::default()).context("building the lab")?;
    let routers = [lab.host(0), lab.host(1)];
    let mut daemons = Vec::new();
    let started = Instant::now();
    for (i, host) in routers.iter().enumerate() {
        daemons.push(start_carpd(&lab, host, &bin, i as u8 * 100)?);
    }
    wait_until(Duration::from_secs(15), || {
        state(&bin, &lab, routers[0]).as_deref() == Some("MASTER")
    })
    .map_err(|_| anyhow::anyhow!("r1 did not become master; its log:\n{}", daemons[0].log()))?;
    println!(
        "election: r1 MASTER, r2 {} ({:.1} s after start)",
        state(&bin, &lab, routers[1]).unwrap_or_default(),
        started.elapsed().as_secs_f64()
    );
    if let Some(line) = daemons[0]
        .log()
        .lines()
        .find(|l| l.contains("XDP attached"))
    {
        // carpd's own words: which XDP mode auto chose on r1's veth, and why.
        let fields = line.split_once("XDP attached").map_or(line, |(_, f)| f);
        println!("r1 dataplane:{fields}");
    }
    println!();
    println!("r1# carpctl carp0");
    print_indented(&carpctl(&bin, &lab, routers[0], &["carp0"])?);
    println!("r2# carpctl carp0");
    print_indented(&carpctl(&bin, &lab, routers[1], &["carp0"])?);

    let client = lab.client();
    let ok4 = client.ping(VIP4.parse::<std::net::IpAddr>()?)?;
    let ok6 = client.ping(VIP6.parse::<std::net::IpAddr>()?)?;
    let neigh = client.run(["ip", "neigh", "show", VIP4])?.stdout;
    println!(
        "client: ping {VIP4} {}, ping {VIP6} {}, neighbour {}",
        if ok4 { "ok" } else { "FAILED" },
        if ok6 { "ok" } else { "FAILED" },
        neigh
            .split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .unwrap_or("?")
    );

    // Probe the virtual address every 10 ms from the client while the master dies.
    let probe = client.spawn(["ping", "-D", "-n", "-i", "0.01", "-W", "0.05", VIP4])?;
    wait_until(Duration::from_secs(5), || {
        probe.log().contains("bytes from")
    })
    .map_err(|_| anyhow::anyhow!("the client's probe got no reply"))?;
    println!();
    println!("killing carpd on r1 with SIGKILL ...");
    daemons[0].signal(Signal::SIGKILL)?;
    wait_until(Duration::from_secs(15), || {
        state(&bin, &lab, routers[1]).as_deref() == Some("MASTER")
    })
    .map_err(|_| anyhow::anyhow!("r2 did not take over; its log:\n{}", daemons[1].log()))?;
    // Keep probing a moment after r2 took over, so the first replies from it are counted.
    wait_until(Duration::from_secs(3), || {
        replies_after_gap(&probe.log()).is_some()
    })
    .map_err(|_| anyhow::anyhow!("the client never reached {VIP4} again"))?;
    probe.signal(Signal::SIGINT)?;
    let _ = probe.wait_timeout(Duration::from_secs(2));
    let gap = replies_after_gap(&probe.log()).unwrap_or_default();
    println!(
        "failover: the client could not reach {VIP4} for {:.0} ms; r2 is now {}",
        gap.as_secs_f64() * 1000.0,
        state(&bin, &lab, routers[1]).unwrap_or_default()
    );
    println!(
        "          (r1's dataplane fell silent on its own {:.1} s after its last advert;",
        2.0
    );
    println!("           r2 declared r1 down after 3 advertisement intervals)");
    println!();
    drop(daemons);
    drop(lab);
    println!("lab removed: namespaces, processes and pins are gone");
    Ok(())
}

/// Builds carpd and carpctl; returns the directory holding them.
fn build() -> Result<PathBuf> {
    let mut cargo = command("cargo")?;
    cargo.current_dir(workspace_root()).args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "carp-daemon",
        "--bins",
    ]);
    run_inherit(&mut cargo)?;
    Ok(workspace_root().join("target/release"))
}

fn start_carpd(lab: &Lab, host: &Host, bin: &Path, advskew: u8) -> Result<LabProcess> {
    let dir = lab.workdir().join(host.name());
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("hostname.carp0");
    std::fs::write(
        &file,
        format!(
            "inet {VIP4} 255.255.255.0 vhid 1 pass {PASS} carpdev {} advbase 1 advskew {advskew}\ninet6 {VIP6} 64\n",
            host.ifname()
        ),
    )?;
    Ok(carp_tests::carpd::spawn_carpd(
        host,
        &bin.join("carpd"),
        &file,
        &dir,
        &lab.pin_dir(host.name()),
        // As users run it: auto chooses generic on the lab's plain veths, and says so.
        "auto",
    )?)
}

fn carpctl(bin: &Path, lab: &Lab, host: &Host, args: &[&str]) -> Result<String> {
    let dir = lab.workdir().join(host.name());
    let carpctl = bin.join("carpctl");
    let mut argv: Vec<&std::ffi::OsStr> =
        vec![carpctl.as_os_str(), "--state-dir".as_ref(), dir.as_os_str()];
    argv.extend(args.iter().map(|a| std::ffi::OsStr::new(*a)));
    Ok(host.run_ok(argv)?.stdout)
}

/// The state carpctl reports for carp0 on `host`, if carpd answers.
fn state(bin: &Path, lab: &Lab, host: &Host) -> Option<String> {
    let json = carpctl(bin, lab, host, &["--json", "carp0"]).ok()?;
    carp_tests::carpd::carpctl_state(&json)
}

/// The longest silence between two replies in `ping -D` output, once replies resumed after it.
fn replies_after_gap(log: &str) -> Option<Duration> {
    let stamps: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    let (i, gap) = stamps
        .windows(2)
        .map(|w| w[1] - w[0])
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    // Replies after the gap: at least a few, so the gap is over and not still growing.
    (stamps.len() > i + 5 && gap > 0.05).then(|| Duration::from_secs_f64(gap))
}

fn print_indented(text: &str) {
    for line in text.lines() {
        println!("    {line}");
    }
}
