//! VRRPv3: carpd (`protocol = "vrrp3"`) against keepalived at the same timers and
//! priorities (advert_int 1 s, 150 master / 100 backup): how long the backup takes to
//! declare a SIGKILLed master down and become master (as each tool reports its own state:
//! carpctl, keepalived's log), and what the master costs per advert (scheduler runtime of
//! every process of the instance over a window, adverts counted at its switch port).
//!
//! Both run RFC 5798's timers, so the failover should be the same Master_Down_Interval
//! (3 × 1 s + 156/256 s after the last advert) for both: the figures show the daemons'
//! overhead on top of it, and the CPU column their cost.
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::Ctx;
use super::tools::{Daemon, Role, Setting, State, Tool, reset_host};

/// keepalived's default advert_int, carpd's default advert_interval.
pub const ADVERT_INT_CS: u16 = 100;

/// One tool's row.
#[derive(Debug, Clone)]
pub struct VrrpRow {
    pub tool: Tool,
    /// SIGKILL of the master to the backup reporting MASTER, one per run.
    pub failovers: Vec<Duration>,
    /// Master CPU seconds per advert it sent.
    pub cpu_per_advert: f64,
    pub adverts_per_s: f64,
}

fn start(ctx: &Ctx, tool: Tool, index: usize, role: Role) -> Result<Daemon> {
    match tool {
        Tool::Carpd => Daemon::start_carpd_vrrp(&ctx.lab, index, role, ADVERT_INT_CS, &ctx.bins),
        Tool::Keepalived => Daemon::start(
            &ctx.lab,
            index,
            Setting::Keepalived {
                advert_int_cs: ADVERT_INT_CS,
            },
            role,
            1,
            &ctx.bins,
        ),
        Tool::Ucarp => bail!("ucarp speaks no VRRP"),
    }
}

/// Waits until router 0 is master and router 1 backup.
fn settle(ctx: &Ctx, routers: &[Daemon; 2]) -> Result<()> {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        ctx.check()?;
        let states = [routers[0].state(&ctx.lab), routers[1].state(&ctx.lab)];
        if states == [Some(State::Master), Some(State::Backup)] {
            return Ok(());
        }
        if Instant::now() >= until {
            bail!("no master/backup pair after 20 s (states {states:?})");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Measures `tool`: `runs` failovers, and the cost over `window` before the first.
pub fn measure(ctx: &Ctx, tool: Tool, runs: usize, window: Duration) -> Result<VrrpRow> {
    let mut row = VrrpRow {
        tool,
        failovers: Vec::new(),
        cpu_per_advert: f64::NAN,
        adverts_per_s: f64::NAN,
    };
    for run in 0..runs {
        let routers = [
            start(ctx, tool, 0, Role::Master)?,
            start(ctx, tool, 1, Role::Backup)?,
        ];
        let outcome = (|| -> Result<()> {
            settle(ctx, &routers)?;
            if run == 0 {
                let capture = ctx.lab.host(0).capture_sent("ip proto 112", 64)?;
                let pids = routers[0].pids();
                let before = super::cost::cpu_seconds(&pids);
                let started = Instant::now();
                ctx.sleep(window)?;
                let cpu = super::cost::cpu_seconds(&pids) - before;
                let elapsed = started.elapsed().as_secs_f64();
                let adverts = capture.stop_and_read()?.packets.len() as f64;
                row.adverts_per_s = adverts / elapsed;
                if adverts > 0.0 {
                    row.cpu_per_advert = cpu / adverts;
                }
            }
            let killed = Instant::now();
            routers[0].kill()?;
            loop {
                ctx.check()?;
                if routers[1].state(&ctx.lab) == Some(State::Master) {
                    row.failovers.push(killed.elapsed());
                    break;
                }
                if killed.elapsed() > Duration::from_secs(15) {
                    bail!("the backup did not take over within 15 s");
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(())
        })();
        let _ = routers[1].terminate();
        if outcome.is_err() {
            let _ = routers[0].kill();
        }
        drop(routers);
        for index in 0..2 {
            reset_host(&ctx.lab, index)?;
        }
        outcome?;
    }
    Ok(row)
}
