//! Flood resilience: bogus protocol-112 multicast from the client, at the generator's
//! maximum rate, reaching master and backup at once (the switch floods multicast to every
//! port): a CARP advert for vhid 1 with a wrong HMAC, the same with TTL 64 (adverts must
//! arrive with 255), and 36 bytes of garbage. During the flood: state changes, each
//! daemon's CPU, and whether the master's adverts still leave on time.
//!
//! Then carpd alone under a flood of adverts with a valid checksum (and a wrong HMAC) into
//! an advert ring of one page ([`SMALL_RING_BYTES`], set with carpd's `--advert-ring-bytes`):
//! the ring is full all the time, and the backup keeps its master only because the XDP fast
//! path takes the master's repeats before the ring. State changes, and how many of the
//! master's adverts the backup's dataplane took on the fast path meanwhile.
use std::time::{Duration, Instant};

use anyhow::Result;
use carp_tests::RawSocket;
use carp_tests::frames::{self, CarpFields};

use super::analysis::{self, Jitter};
use super::cost::cpu_seconds;
use super::tools::{Binaries, Daemon, Role, Setting, VIP};
use super::traffic;
use super::{Ctx, PROBE_IP, PROBE_MAC, Pair, unix_now};

#[derive(Debug, Clone)]
pub struct FloodResult {
    pub setting: Setting,
    pub sent_per_s: f64,
    pub state_changes: usize,
    /// Fraction of one core used by the daemon during the flood.
    pub master_cpu: f64,
    pub backup_cpu: f64,
    /// The master's adverts during the flood.
    pub jitter: Jitter,
}

/// The bogus frames, sent round-robin.
pub fn bogus_frames() -> Vec<Vec<u8>> {
    let src = PROBE_IP;
    let wrong_hmac = CarpFields::advert(1).encode();
    let mut garbage = [0u8; 36];
    let mut x: u32 = 0x9e37_79b9;
    for b in &mut garbage {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    vec![
        frames::advert_v4(PROBE_MAC, src, 255, &wrong_hmac),
        frames::advert_v4(PROBE_MAC, src, 64, &wrong_hmac),
        frames::advert_v4(PROBE_MAC, src, 255, &garbage),
    ]
}

pub fn measure(ctx: &Ctx, setting: Setting, duration: Duration) -> Result<FloodResult> {
    let (pair, m) = Pair::start_stable(ctx, setting, 1)?;
    let (master, backup) = (&pair.routers[m], &pair.routers[1 - m]);
    let changes_before = pair.state_changes();
    let capture = ctx.lab.host(m).capture_sent("ip proto 112", 64)?;
    let socket = RawSocket::open(ctx.lab.client())?;
    let cpu_before = [cpu_seconds(&master.pids()), cpu_seconds(&backup.pids())];
    let from = unix_now();
    let started = Instant::now();
    let sent = traffic::flood(&socket, &bogus_frames(), duration, ctx.interrupted())?;
    let elapsed = started.elapsed().as_secs_f64();
    let to = unix_now();
    ctx.check()?;
    let cpu_after = [cpu_seconds(&master.pids()), cpu_seconds(&backup.pids())];
    let state_changes = pair.state_changes() - changes_before;
    pair.stop(ctx)?;
    let sent_frames = analysis::read_sent(&capture.stop()?, VIP, PROBE_IP)?;
    let jitter = analysis::jitter(
        analysis::window(&sent_frames.adverts, from, to),
        setting.advert_interval().as_secs_f64(),
    );
    Ok(FloodResult {
        setting,
        sent_per_s: sent as f64 / elapsed,
        state_changes,
        master_cpu: (cpu_after[0] - cpu_before[0]) / elapsed,
        backup_cpu: (cpu_after[1] - cpu_before[1]) / elapsed,
        jitter,
    })
}

/// carpd's advert ring for the valid-checksum flood: one page instead of 256 KiB.
pub const SMALL_RING_BYTES: u32 = 4096;

#[derive(Debug, Clone)]
pub struct RingFloodResult {
    pub setting: Setting,
    pub sent_per_s: f64,
    pub state_changes: usize,
    /// Adverts the master sent during the flood, and how many of them the backup's dataplane
    /// took on the fast path.
    pub master_sent: u64,
    pub backup_fastpath: u64,
    /// Adverts the backup's dataplane dropped at "ring full" during the flood.
    pub backup_ring_full: u64,
    pub backup_cpu: f64,
}

/// Adverts for vhid 1 with a valid checksum and a wrong HMAC from the probe's own address and
/// forged from the master's ([`frames::forged_best_adverts`]): without the fast path each
/// would take a ring slot.
pub fn valid_checksum_frames(master_ip: std::net::Ipv4Addr) -> Vec<Vec<u8>> {
    frames::forged_best_adverts(PROBE_MAC, PROBE_IP, master_ip)
}

/// carpd's counters from `carpctl --json stats`: adverts sent, fast-path takes, ring-full
/// drops.
fn carpd_counts(ctx: &Ctx, d: &Daemon) -> Result<(u64, u64, u64)> {
    let json: serde_json::Value =
        serde_json::from_str(&d.carpctl(&ctx.lab, &["--json", "stats"])?)?;
    let n = |section: &str, name: &str| json[section][name].as_u64().unwrap_or(0);
    Ok((
        n("carp", "carps_opackets") + n("carp", "carps_opackets6"),
        n("dataplane", "advert_master_fastpath"),
        n("dataplane", "advert_ring_full"),
    ))
}

/// The valid-checksum flood into a small ring (carpd only).
pub fn measure_small_ring(
    ctx: &Ctx,
    setting: Setting,
    duration: Duration,
) -> Result<RingFloodResult> {
    let bins = Binaries {
        carpd_args: ctx
            .bins
            .carpd_args
            .iter()
            .cloned()
            .chain([
                "--advert-ring-bytes".to_owned(),
                SMALL_RING_BYTES.to_string(),
            ])
            .collect(),
        ..ctx.bins.clone()
    };
    let pair = Pair {
        routers: [
            Daemon::start(&ctx.lab, 0, setting, Role::Master, 1, &bins)?,
            Daemon::start(&ctx.lab, 1, setting, Role::Backup, 1, &bins)?,
        ],
        retired_changes: 0,
    };
    let period = setting.master_down() + 2 * setting.advert_interval();
    let m = pair.wait_stable(ctx, |_| period)?;
    let (master, backup) = (&pair.routers[m], &pair.routers[1 - m]);
    let changes_before = pair.state_changes();
    let socket = RawSocket::open(ctx.lab.client())?;
    let frames = valid_checksum_frames(ctx.lab.host(m).addr4());
    let before = (carpd_counts(ctx, master)?, carpd_counts(ctx, backup)?);
    let cpu_before = cpu_seconds(&backup.pids());
    let started = Instant::now();
    let sent = traffic::flood(&socket, &frames, duration, ctx.interrupted())?;
    let elapsed = started.elapsed().as_secs_f64();
    ctx.check()?;
    let cpu_after = cpu_seconds(&backup.pids());
    // A master-down interval after the flood, for a late takeover to show.
    ctx.sleep(setting.master_down())?;
    let after = (carpd_counts(ctx, master)?, carpd_counts(ctx, backup)?);
    let state_changes = pair.state_changes() - changes_before;
    pair.stop(ctx)?;
    Ok(RingFloodResult {
        setting,
        sent_per_s: sent as f64 / elapsed,
        state_changes,
        master_sent: after.0.0 - before.0.0,
        backup_fastpath: after.1.1 - before.1.1,
        backup_ring_full: after.1.2 - before.1.2,
        backup_cpu: (cpu_after - cpu_before) / elapsed,
    })
}
