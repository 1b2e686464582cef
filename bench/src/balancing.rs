//! Load balancing (OpenBSD `carpnodes`, `balancing ip`): packets per second accepted across
//! 1, 2 and 3 hosts under a flood of varied flows, and how long one bucket stays dark when
//! its host's carpd is killed.
//!
//! A lab of its own (three routers and a client: the main lab has two routers). Host i of
//! n prefers node i + 1 (`carpnodes 1:0,2:100,...` rotated); one host is a plain carp
//! interface (`vhid 1`: one node means no balancing). The client floods UDP from 256 source
//! addresses to the carp MAC from one AF_PACKET socket per core; what each host accepted is
//! its XDP program's counter (`lb_accepted`, or `vmac_accepted` for the single host), read
//! through carpctl.
//!
//! The outage: with two hosts, the client pings the shared address every 2 ms from an
//! address whose bucket is host 2's node; host 2's carpd is SIGKILLed; the longest gap
//! between two replies is the bucket's outage: host 2 keeps serving it until its
//! fail-silent deadline, host 1 takes the node over at its master-down time.
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use carp_tests::{Host, Lab, LabProcess, LabSpec, frames, wait_until};

use super::tools::Binaries;
use super::traffic;

/// The shared address. The client (192.0.2.100) folds with it to 0x65: bucket 1 of 2,
/// host 2's node.
const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PASS: &str = "bench-lb";
const MCAST_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x01, 0x01];
const UCAST_MAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x01];

/// What `hosts` routers accepted together.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub hosts: usize,
    /// Frames the client sent per second.
    pub offered_per_s: f64,
    /// Frames accepted per second, per host.
    pub per_host: Vec<f64>,
}

impl Accepted {
    pub fn total_per_s(&self) -> f64 {
        self.per_host.iter().sum()
    }
}

#[derive(Debug, Clone)]
pub struct BalanceResult {
    pub accepted: Vec<Accepted>,
    /// The longest gap between ping replies of the killed host's bucket.
    pub outage: Duration,
    pub window: Duration,
}

/// The configuration of host `index` of `hosts`.
fn config(host: &Host, index: usize, hosts: usize) -> String {
    if hosts == 1 {
        return format!(
            "inet {VIP} 255.255.255.0 carpdev {} vhid 1 pass {PASS}\n",
            host.ifname()
        );
    }
    let nodes: Vec<String> = (0..hosts)
        .map(|n| format!("{}:{}", n + 1, if n == index { 0 } else { 100 }))
        .collect();
    format!(
        "inet {VIP} 255.255.255.0 carpdev {} carpnodes {} balancing ip pass {PASS}\n",
        host.ifname(),
        nodes.join(",")
    )
}

/// carpd on one lab host.
struct Router<'a> {
    host: &'a Host,
    dir: PathBuf,
    carpctl: &'a Path,
    process: LabProcess,
}

impl<'a> Router<'a> {
    fn start(lab: &'a Lab, bins: &'a Binaries, index: usize, hosts: usize) -> Result<Self> {
        let host = lab.host(index);
        let dir = lab.workdir().join(format!("lb-{}", host.name()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("hostname.carp0");
        std::fs::write(&file, config(host, index, hosts))?;
        let xdp_mode = if lab.napi_peers() { "native" } else { "auto" };
        let process = carp_tests::carpd::spawn_carpd_with(
            host,
            &bins.carpd,
            &file,
            &dir,
            &lab.pin_dir(host.name()),
            xdp_mode,
            &[],
        )?;
        Ok(Router {
            host,
            dir,
            carpctl: &bins.carpctl,
            process,
        })
    }

    fn carpctl(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut argv = vec![
            self.carpctl.display().to_string(),
            "--state-dir".into(),
            self.dir.display().to_string(),
            "--json".into(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        let out = self.host.run_ok(argv)?;
        serde_json::from_str(&out.stdout).context("carpctl JSON")
    }

    /// The vhids this host masters.
    fn mastered(&self) -> Vec<u64> {
        let Ok(v) = self.carpctl(&["carp0"]) else {
            return Vec::new();
        };
        let iface = v.as_array().and_then(|a| a.first()).unwrap_or(&v);
        match iface["nodes"].as_array() {
            Some(nodes) => nodes
                .iter()
                .filter(|n| n["state"] == "MASTER")
                .filter_map(|n| n["vhid"].as_u64())
                .collect(),
            None if iface["state"] == "MASTER" => vec![1],
            None => Vec::new(),
        }
    }

    fn accepted(&self) -> Result<u64> {
        let v = self.carpctl(&["stats"])?;
        let d = &v["dataplane"];
        Ok(d["lb_accepted"].as_u64().unwrap_or(0) + d["vmac_accepted"].as_u64().unwrap_or(0))
    }

    fn stop(self) -> Result<()> {
        self.process.terminate(Duration::from_secs(10))?;
        Ok(())
    }
}

/// Starts `hosts` routers and waits until each masters its own node.
fn start_all<'a>(lab: &'a Lab, bins: &'a Binaries, hosts: usize) -> Result<Vec<Router<'a>>> {
    let routers = (0..hosts)
        .map(|i| Router::start(lab, bins, i, hosts))
        .collect::<Result<Vec<_>>>()?;
    for (i, r) in routers.iter().enumerate() {
        if wait_until(Duration::from_secs(20), || r.mastered() == [i as u64 + 1]).is_err() {
            bail!(
                "{} masters {:?}, not node {} (log:\n{})",
                r.host.name(),
                r.mastered(),
                i + 1,
                r.process.log()
            );
        }
    }
    Ok(routers)
}

/// 256 UDP datagrams to the shared address from 198.51.100.0/24.
fn flows(dst_mac: [u8; 6], client_mac: [u8; 6]) -> Vec<Vec<u8>> {
    (0..=255u8)
        .map(|last| {
            let src = Ipv4Addr::new(198, 51, 100, last);
            let udp = [0x30, 0x39, 0x00, 0x09, 0x00, 0x08, 0x00, 0x00];
            frames::ethernet(
                dst_mac,
                client_mac,
                0x0800,
                &frames::ipv4(src, VIP, 17, 64, &udp),
            )
        })
        .collect()
}

fn accepted_rate(
    lab: &Lab,
    bins: &Binaries,
    hosts: usize,
    window: Duration,
    interrupted: &AtomicBool,
) -> Result<Accepted> {
    let routers = start_all(lab, bins, hosts)?;
    let dst = if hosts == 1 { UCAST_MAC } else { MCAST_MAC };
    let frames = flows(dst, lab.client().mac());
    let before = routers
        .iter()
        .map(Router::accepted)
        .collect::<Result<Vec<_>>>()?;
    let started = Instant::now();
    let sent = traffic::flood_all_cores(lab.client(), &frames, window, interrupted)?;
    let elapsed = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(100));
    let after = routers
        .iter()
        .map(Router::accepted)
        .collect::<Result<Vec<_>>>()?;
    for r in routers {
        r.stop()?;
    }
    Ok(Accepted {
        hosts,
        offered_per_s: sent as f64 / elapsed,
        per_host: after
            .iter()
            .zip(&before)
            .map(|(a, b)| (a - b) as f64 / elapsed)
            .collect(),
    })
}

/// Two hosts; the client's own bucket is host 2's; SIGKILL of host 2's carpd.
fn bucket_outage(lab: &Lab, bins: &Binaries) -> Result<Duration> {
    let routers = start_all(lab, bins, 2)?;
    let client = lab.client();
    // -D: a timestamp per reply; 2 ms apart; long enough for master-down (about 4.2 s).
    let ping = client.spawn([
        "ping",
        "-D",
        "-n",
        "-i",
        "0.002",
        "-w",
        "9",
        &VIP.to_string(),
    ])?;
    std::thread::sleep(Duration::from_secs(1));
    routers[1].process.kill()?;
    if wait_until(Duration::from_secs(10), || routers[0].mastered() == [1, 2]).is_err() {
        bail!("host 1 did not take node 2 over");
    }
    let _ = ping.wait_timeout(Duration::from_secs(15))?;
    let log = ping.log();
    let mut times: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    times.sort_by(f64::total_cmp);
    if times.len() < 2 {
        bail!("ping got {} replies:\n{log}", times.len());
    }
    let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0f64, f64::max);
    routers.into_iter().next().expect("two").stop()?;
    Ok(Duration::from_secs_f64(gap))
}

/// The whole section, in a lab of its own.
pub fn measure(
    bins: &Binaries,
    window: Duration,
    napi_peers: bool,
    interrupted: &AtomicBool,
) -> Result<BalanceResult> {
    let lab = Lab::new(
        "bench-lb",
        LabSpec {
            hosts: 3,
            client: true,
            ipv6: false,
            napi_peers,
        },
    )
    .context("building the load-balancing lab")?;
    let mut accepted = Vec::new();
    for hosts in 1..=3 {
        let a = accepted_rate(&lab, bins, hosts, window, interrupted)
            .with_context(|| format!("{hosts} host(s)"))?;
        println!(
            "  {hosts} host(s): {:.0} of {:.0} frames/s accepted ({})",
            a.total_per_s(),
            a.offered_per_s,
            a.per_host
                .iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(" + ")
        );
        accepted.push(a);
    }
    let outage = bucket_outage(&lab, bins).context("bucket outage")?;
    println!(
        "  one bucket dark for {:.0} ms after SIGKILL of its host's carpd",
        outage.as_secs_f64() * 1e3
    );
    Ok(BalanceResult {
        accepted,
        outage,
        window,
    })
}
