//! The dataplane's answer rate: the client floods ARP requests for the VIP at the
//! generator's maximum rate, and the router answers either from carpd's XDP program (as
//! master) or from the kernel stack (the VIP on eth0, no XDP program on it: what ucarp and
//! keepalived rely on). Replies are counted by the switch port of the router (frames it
//! sent), requests offered by the generator's own count.
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use carp_tests::{Host, frames};

use super::tools::{self, PREFIX, Setting, VIP};
use super::traffic;
use super::{Ctx, PROBE_IP, PROBE_MAC, Pair};

/// One responder's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rate {
    /// Frames the generator sent per second.
    pub sent_per_s: f64,
    /// Frames the router sent per second (its answers).
    pub replies_per_s: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct RateResult {
    pub xdp: Rate,
    pub kernel: Rate,
    pub window: Duration,
}

pub fn measure(ctx: &Ctx, window: Duration) -> Result<RateResult> {
    // carpd as master, with a backup beside it as in production (silent: it is backup).
    let (pair, m) = Pair::start_stable(ctx, Setting::carpd_default(), 1)?;
    let xdp = flood_arp(ctx, m, window)?;
    pair.stop(ctx)?;

    let r1 = ctx.lab.host(0);
    let vip = format!("{VIP}/{PREFIX}");
    r1.run_ok(["ip", "addr", "add", &vip, "dev", r1.ifname()])?;
    let kernel = flood_arp(ctx, 0, window);
    tools::reset_host(&ctx.lab, 0)?;
    Ok(RateResult {
        xdp,
        kernel: kernel?,
        window,
    })
}

/// Floods from the client; counts what router `index` sent meanwhile.
pub fn flood_arp(ctx: &Ctx, index: usize, window: Duration) -> Result<Rate> {
    let frame = frames::arp_request(PROBE_MAC, PROBE_IP, VIP);
    let router = ctx.lab.host(index);
    let before = port_rx_packets(router)?;
    let started = Instant::now();
    let sent = traffic::flood_all_cores(ctx.lab.client(), &[frame], window, ctx.interrupted())?;
    let elapsed = started.elapsed().as_secs_f64();
    ctx.check()?;
    // Replies still in flight when the generator stops are counted too.
    ctx.sleep(Duration::from_millis(100))?;
    let after = port_rx_packets(router)?;
    Ok(Rate {
        sent_per_s: sent as f64 / elapsed,
        replies_per_s: (after - before) as f64 / elapsed,
    })
}

/// Frames the switch port of `host` received, i.e. frames the host sent.
fn port_rx_packets(host: &Host) -> Result<u64> {
    let out =
        host.switch_netns()
            .command(["ip", "-s", "-o", "link", "show", "dev", host.switch_port()]);
    let out = carp_tests::process::run_ok(out, Duration::from_secs(10))?.stdout;
    parse_rx_packets(&out).with_context(|| format!("no RX counters in `ip -s -o link`: {out}"))
}

/// `... RX: bytes packets errors ... \    123 456 0 ...` → 456.
fn parse_rx_packets(text: &str) -> Option<u64> {
    let after = &text[text.find("RX:")?..];
    let numbers = after.split('\\').nth(1)?;
    numbers.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_packets_come_from_the_second_column() {
        let line = "4: sw-h1@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master br0 state UP mode DEFAULT group default qlen 1000\\    link/ether 5a:1e:7e:3b:07:0b brd ff:ff:ff:ff:ff:ff link-netns x\\    RX:  bytes packets errors dropped  missed   mcast           \\         12345     678      0       0       0       0 \\    TX:  bytes packets errors dropped carrier collsns           \\          9999      77      0       0       0       0 ";
        assert_eq!(parse_rx_packets(line), Some(678));
        assert_eq!(parse_rx_packets("no counters"), None);
    }
}
