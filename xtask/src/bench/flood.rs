//! Flood resilience: bogus protocol-112 multicast from the client, at the generator's
//! maximum rate, reaching master and backup at once (the switch floods multicast to every
//! port): a CARP advert for vhid 1 with a wrong HMAC, the same with TTL 64 (adverts must
//! arrive with 255), and 36 bytes of garbage. During the flood: state changes, each
//! daemon's CPU, and whether the master's adverts still leave on time.
use std::time::{Duration, Instant};

use anyhow::Result;
use carp_tests::frames::{self, CarpFields};

use super::analysis::{self, Jitter};
use super::cost::cpu_seconds;
use super::rawsock::{self, RawSocket};
use super::tools::{Setting, VIP};
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
    let sent = rawsock::flood(&socket, &bogus_frames(), duration, ctx.interrupted())?;
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
