//! The three failover tools under test, started the same way on the same lab: carpd (this
//! project), ucarp 1.5.2 and keepalived 2.2.7 (Debian packages).
//!
//! Host 0 of the lab is always the preferred master, host 1 the backup. Each tool gets the
//! same virtual address, the same role and preemption, so that after a fault the bench can
//! put things back (restart, replug, undemote) and the preferred host takes over again.
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use carp_tests::carpd::{carpctl_state, spawn_carpd_with};
use carp_tests::{Host, Lab, LabProcess, Signal};

/// The virtual address every tool manages for vhid 1 (the one the client probes).
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Prefix length of the lab's LAN.
pub const PREFIX: u8 = 24;
/// The CARP passphrase (ucarp and carpd speak the same HMAC; keepalived's VRRPv3 has none).
const PASS: &str = "bench-secret";

/// Which program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tool {
    Carpd,
    Ucarp,
    Keepalived,
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tool::Carpd => "carpd",
            Tool::Ucarp => "ucarp",
            Tool::Keepalived => "keepalived",
        })
    }
}

/// A tool with its timers: what one row of a table measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// advbase and the master's and the backup's advskew (1/256 s).
    Carpd {
        advbase: u8,
        master_skew: u8,
        backup_skew: u8,
    },
    /// advbase (1 s is ucarp's minimum), deadratio (3 by default) and the backup's advskew.
    Ucarp {
        advbase: u8,
        deadratio: u8,
        backup_skew: u8,
    },
    /// VRRPv3 advert_int in centiseconds; priorities 150 (master) and 100 (backup).
    Keepalived { advert_int_cs: u16 },
}

/// carpd's backup advskew at default timers: the smallest that orders the two routers
/// (with equal timers OpenBSD's rules leave the election to timing alone).
pub const CARPD_BACKUP_SKEW: u8 = 1;

impl Setting {
    pub const fn carpd_default() -> Setting {
        Setting::Carpd {
            advbase: 1,
            master_skew: 0,
            backup_skew: CARPD_BACKUP_SKEW,
        }
    }

    /// ucarp as the report's reference figures measured it: both advskew 0 (ucarp breaks the
    /// tie by the lower source address, so r1 wins the first election; roles then swap at
    /// each failover, as nothing makes either side preempt).
    pub const fn ucarp_default() -> Setting {
        Setting::Ucarp {
            advbase: 1,
            deadratio: 3,
            backup_skew: 0,
        }
    }

    /// ucarp's fastest variant: a master is dead after one missed advertisement.
    pub const fn ucarp_fastest() -> Setting {
        Setting::Ucarp {
            advbase: 1,
            deadratio: 1,
            backup_skew: 0,
        }
    }

    pub const fn keepalived_default() -> Setting {
        Setting::Keepalived { advert_int_cs: 100 }
    }

    /// keepalived's minimum advert_int, 10 ms.
    pub const fn keepalived_fastest() -> Setting {
        Setting::Keepalived { advert_int_cs: 1 }
    }

    pub fn tool(&self) -> Tool {
        match self {
            Setting::Carpd { .. } => Tool::Carpd,
            Setting::Ucarp { .. } => Tool::Ucarp,
            Setting::Keepalived { .. } => Tool::Keepalived,
        }
    }

    /// The timers in the tool's own words.
    pub fn timers(&self) -> String {
        match *self {
            Setting::Carpd {
                advbase,
                master_skew,
                backup_skew,
            } => format!("advbase {advbase}, advskew {master_skew}/{backup_skew}"),
            Setting::Ucarp {
                advbase,
                deadratio,
                backup_skew,
            } => format!("advbase {advbase}, advskew 0/{backup_skew}, deadratio {deadratio}"),
            Setting::Keepalived { advert_int_cs } => {
                format!(
                    "advert_int {}, priority 150/100",
                    f64::from(advert_int_cs) / 100.0
                )
            }
        }
    }

    /// "carpd (advbase 1, advskew 0/50)".
    pub fn label(&self) -> String {
        format!("{} ({})", self.tool(), self.timers())
    }

    /// How often the master advertises.
    pub fn advert_interval(&self) -> Duration {
        match *self {
            Setting::Carpd {
                advbase,
                master_skew,
                ..
            } => carp_interval(advbase, master_skew),
            Setting::Ucarp { advbase, .. } => carp_interval(advbase, 0),
            Setting::Keepalived { advert_int_cs } => {
                Duration::from_millis(u64::from(advert_int_cs) * 10)
            }
        }
    }

    /// When the backup declares a silent master dead, after its last advertisement.
    pub fn master_down(&self) -> Duration {
        match *self {
            // Current OpenBSD: 3 × the backup's own interval.
            Setting::Carpd {
                advbase,
                backup_skew,
                ..
            } => 3 * carp_interval(advbase, backup_skew),
            // ucarp: deadratio × advbase + advskew/256.
            Setting::Ucarp {
                advbase,
                deadratio,
                backup_skew,
            } => Duration::from_secs(u64::from(deadratio) * u64::from(advbase)) + skew(backup_skew),
            // VRRPv3: 3 × interval + (256 − priority) × interval / 256.
            Setting::Keepalived { .. } => {
                let interval = self.advert_interval();
                3 * interval + interval * (256 - 100) / 256
            }
        }
    }
}

/// CARP's advertisement interval: advbase + advskew/256, 1/256 s when both are 0.
pub fn carp_interval(advbase: u8, advskew: u8) -> Duration {
    if advbase == 0 && advskew == 0 {
        return skew(1);
    }
    Duration::from_secs(u64::from(advbase)) + skew(advskew)
}

fn skew(advskew: u8) -> Duration {
    Duration::from_micros(u64::from(advskew) * 1_000_000 / 256)
}

/// The preferred master or the backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Master,
    Backup,
}

/// What a daemon says its vhid 1 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Init,
    Backup,
    Master,
}

/// Where the bench finds carpd and carpctl.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub carpd: PathBuf,
    pub carpctl: PathBuf,
    /// Extra arguments for every carpd started with these binaries (e.g. a small advert
    /// ring for the flood into it).
    pub carpd_args: Vec<String>,
    /// carpd built with the feature `xdp-no-decision-records` (the records' cost section).
    pub carpd_without_records: PathBuf,
}

/// carpd's `--realtime-priority` in the bench: the shipped systemd unit's.
pub const CARPD_REALTIME_PRIORITY: &str = "10";

impl Binaries {
    /// carpd's arguments with the real-time option: how the shipped unit runs it.
    pub fn realtime_args() -> Vec<String> {
        vec![
            "--realtime-priority".to_owned(),
            CARPD_REALTIME_PRIORITY.to_owned(),
        ]
    }

    /// The same binaries, carpd without its real-time option.
    pub fn without_realtime(&self) -> Binaries {
        let mut args = Vec::new();
        let mut it = self.carpd_args.iter();
        while let Some(a) = it.next() {
            if a == "--realtime-priority" {
                it.next();
            } else {
                args.push(a.clone());
            }
        }
        Binaries {
            carpd_args: args,
            ..self.clone()
        }
    }
}

/// One running tool instance on one host (for ucarp with several vhids: one process each).
pub struct Daemon {
    setting: Setting,
    host_index: usize,
    dir: PathBuf,
    procs: Vec<LabProcess>,
    carpctl: PathBuf,
    /// Number of vhids this instance runs.
    vhids: u8,
}

/// The address of vhid `k`: vhid 1 is the probed [`VIP`], the others come from the
/// benchmarking range 198.18.0.0/15 (inside the lab only).
pub fn vip_of(vhid: u8) -> Ipv4Addr {
    if vhid == 1 {
        VIP
    } else {
        Ipv4Addr::new(198, 18, 0, vhid)
    }
}

impl Daemon {
    /// Starts `setting`'s tool on host `host_index` in `role`, running vhids 1..=`vhids`.
    pub fn start(
        lab: &Lab,
        host_index: usize,
        setting: Setting,
        role: Role,
        vhids: u8,
        bins: &Binaries,
    ) -> Result<Daemon> {
        let host = lab.host(host_index);
        let dir = lab
            .workdir()
            .join(format!("{}-{}", host.name(), setting.tool()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let procs = match setting {
            Setting::Carpd {
                advbase,
                master_skew,
                backup_skew,
            } => {
                let skew = if role == Role::Master {
                    master_skew
                } else {
                    backup_skew
                };
                vec![start_carpd(lab, host, &dir, bins, advbase, skew, vhids)?]
            }
            Setting::Ucarp {
                advbase,
                deadratio,
                backup_skew,
            } => {
                let skew = if role == Role::Master { 0 } else { backup_skew };
                start_ucarp(host, &dir, advbase, skew, deadratio, vhids)?
            }
            Setting::Keepalived { advert_int_cs } => {
                let priority = if role == Role::Master { 150 } else { 100 };
                vec![start_keepalived(
                    host,
                    &dir,
                    advert_int_cs,
                    priority,
                    vhids,
                )?]
            }
        };
        Ok(Daemon {
            setting,
            host_index,
            dir,
            procs,
            carpctl: bins.carpctl.clone(),
            vhids,
        })
    }

    pub fn setting(&self) -> Setting {
        self.setting
    }

    pub fn host_index(&self) -> usize {
        self.host_index
    }

    /// The state of vhid 1, as the tool logs it (carpd: carpctl until its first state line).
    pub fn state(&self, lab: &Lab) -> Option<State> {
        match self.setting.tool() {
            Tool::Carpd => self.carpd_state(lab),
            Tool::Ucarp => {
                let log = plain(&self.procs.first()?.log());
                last_state(&log, "Switching to state: ", carp_state_word)
            }
            Tool::Keepalived => {
                let log = plain(&self.procs.first()?.log());
                last_state(&log, "(VI_1) Entering ", |w| match w {
                    "MASTER" => Some(State::Master),
                    "BACKUP" => Some(State::Backup),
                    "FAULT" | "INIT" => Some(State::Init),
                    _ => None,
                })
            }
        }
    }

    /// carpd's state of carp1 from its log, as the peers' states are read: a carpctl run per
    /// look (every few ms while a failover is awaited) would load the CPUs of the lab it
    /// measures, and add a process start to the time carpd is seen to take. Before
    /// carpd logged a state, carpctl says (INIT until the first election).
    fn carpd_state(&self, lab: &Lab) -> Option<State> {
        let log = plain(&self.procs.first()?.log());
        if let Some(state) = carpd_logged_state(&log, "carp1") {
            return Some(state);
        }
        let out = self.carpctl(lab, &["--json", "carp1"]).ok()?;
        match carpctl_state(&out)?.as_str() {
            "MASTER" => Some(State::Master),
            "BACKUP" => Some(State::Backup),
            _ => Some(State::Init),
        }
    }

    /// Runs carpctl against this carpd.
    pub fn carpctl(&self, lab: &Lab, args: &[&str]) -> Result<String> {
        let host = lab.host(self.host_index);
        let mut argv: Vec<&std::ffi::OsStr> = vec![
            self.carpctl.as_os_str(),
            "--state-dir".as_ref(),
            self.dir.as_os_str(),
        ];
        argv.extend(args.iter().map(std::ffi::OsStr::new));
        Ok(host.run_ok(argv)?.stdout)
    }

    /// How many state changes the tool logged so far (every vhid, the initial election
    /// included).
    pub fn state_changes(&self) -> usize {
        let needle = match self.setting.tool() {
            Tool::Carpd => "to=",
            Tool::Ucarp => "Switching to state: ",
            Tool::Keepalived => ") Entering ",
        };
        self.procs
            .iter()
            .map(|p| {
                plain(&p.log())
                    .lines()
                    .filter(|l| {
                        l.contains(needle)
                            && (self.setting.tool() != Tool::Carpd || l.contains("from="))
                    })
                    .count()
            })
            .sum()
    }

    /// Every process of the instance and its descendants (keepalived's VRRP child), for CPU
    /// and memory.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.procs.iter().map(LabProcess::pid).collect();
        let mut i = 0;
        while i < pids.len() {
            let children = children_of(pids[i]);
            pids.extend(children);
            i += 1;
        }
        pids
    }

    /// The main processes' logs, for error messages.
    pub fn logs(&self) -> String {
        self.procs
            .iter()
            .map(|p| p.log())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A crash: SIGKILL to every process of the instance (keepalived's child too).
    pub fn kill(&self) -> Result<()> {
        let children: Vec<u32> = self.pids();
        for p in &self.procs {
            p.signal(Signal::SIGKILL)?;
        }
        // keepalived's VRRP child is not our child: it is signalled by its pid, which was
        // read from /proc a moment ago and is still that process (it cannot be reaped by
        // anyone but its parent, which we just killed: it is re-parented, not gone).
        for pid in children {
            if !self.procs.iter().any(|p| p.pid() == pid) {
                let _ = nix_kill(pid, libc::SIGKILL);
                reap(pid);
            }
        }
        for p in &self.procs {
            let _ = p.wait_timeout(Duration::from_secs(5));
        }
        Ok(())
    }

    /// A clean stop: SIGTERM, then wait for the exit.
    pub fn terminate(&self) -> Result<()> {
        for p in &self.procs {
            p.signal(Signal::SIGTERM)?;
        }
        for p in &self.procs {
            if p.wait_timeout(Duration::from_secs(10))?.is_none() {
                bail!("{} did not exit within 10 s of SIGTERM", p.label());
            }
        }
        Ok(())
    }

    /// Sent after a kill, before a restart: a killed ucarp or keepalived leaves its
    /// addresses on the interface (nobody ran its down script), which an operator's
    /// supervisor would have to clean up too. carpd's addresses live on its own carp
    /// interfaces, which the restarted carpd adopts.
    pub fn remove_leftover_addresses(&self, lab: &Lab) {
        if self.setting.tool() == Tool::Carpd {
            return;
        }
        let host = lab.host(self.host_index);
        for vhid in 1..=self.vhids {
            let addr = format!("{}/{PREFIX}", vip_of(vhid));
            let _ = host.run(["ip", "addr", "del", &addr, "dev", host.ifname()]);
        }
    }
}

/// Removes whatever a tool may have left on router `index`: carp (macvlan) interfaces,
/// addresses on the LAN port other than the host's own, and carpd's pins (which detaches
/// a pinned XDP program).
pub fn reset_host(lab: &Lab, index: usize) -> Result<()> {
    let host = lab.host(index);
    let links = host
        .run_ok(["ip", "-o", "link", "show", "type", "macvlan"])?
        .stdout;
    for line in links.lines() {
        let name = line
            .split(':')
            .nth(1)
            .map(|n| n.trim().split('@').next().unwrap_or(""))
            .unwrap_or("");
        if !name.is_empty() {
            let _ = host.run(["ip", "link", "del", name]);
        }
    }
    let own = format!("{}/", host.addr4());
    let addrs = host
        .run_ok(["ip", "-o", "-4", "addr", "show", "dev", host.ifname()])?
        .stdout;
    for line in addrs.lines() {
        let mut words = line.split_whitespace();
        if let Some(addr) = words.find(|w| *w == "inet").and_then(|_| words.next())
            && !addr.starts_with(&own)
        {
            let _ = host.run(["ip", "addr", "del", addr, "dev", host.ifname()]);
        }
    }
    let pins = lab.pin_dir(host.name());
    if pins.exists() {
        std::fs::remove_dir_all(&pins).with_context(|| format!("removing {}", pins.display()))?;
    }
    Ok(())
}

/// `text` without terminal escape sequences (`ESC [ ... letter`), which a tool may put in
/// its log even when it goes to a file.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // Skip "[", parameters, and the final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The state carpd last logged for `interface` (its state-change lines carry
/// `interface=NAME from=OLD to=NEW`, CARP's and VRRP's alike).
fn carpd_logged_state(log: &str, interface: &str) -> Option<State> {
    let tag = format!("interface={interface} ");
    log.lines()
        .rev()
        .filter(|l| l.contains(&tag) && l.contains(" from="))
        .find_map(|l| {
            let rest = &l[l.find(" to=")? + " to=".len()..];
            carp_state_word(rest.split_whitespace().next()?)
        })
}

/// A CARP state as ucarp and carpd write it.
fn carp_state_word(word: &str) -> Option<State> {
    match word {
        "MASTER" => Some(State::Master),
        "BACKUP" => Some(State::Backup),
        "INIT" => Some(State::Init),
        _ => None,
    }
}

/// The state word after the last `marker` in `log`.
fn last_state(log: &str, marker: &str, word: impl Fn(&str) -> Option<State>) -> Option<State> {
    log.lines().rev().find_map(|l| {
        let rest = &l[l.find(marker)? + marker.len()..];
        word(rest.split_whitespace().next()?)
    })
}

/// Child processes of `pid` (from /proc/PID/task/*/children).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Reaps a killed process if it was ours to reap (harmless otherwise): a zombie keepalived
/// child would make the next keepalived believe it "is already running".
fn reap(pid: u32) {
    for _ in 0..100 {
        // SAFETY: waitpid on a specific pid with WNOHANG; a pid that is not our child gives ECHILD.
        let rc = unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG) };
        if rc != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn nix_kill(pid: u32, sig: libc::c_int) -> std::io::Result<()> {
    // SAFETY: kill(2) with a pid read from /proc of a process started by this bench.
    if unsafe { libc::kill(pid as libc::pid_t, sig) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn start_carpd(
    lab: &Lab,
    host: &Host,
    dir: &Path,
    bins: &Binaries,
    advbase: u8,
    advskew: u8,
    vhids: u8,
) -> Result<LabProcess> {
    let mut toml = String::from("[daemon]\npreempt = true\n");
    for vhid in 1..=vhids {
        toml.push_str(&format!(
            "\n[[interface]]\nname = \"carp{vhid}\"\ncarpdev = \"{}\"\nvhid = {vhid}\n\
             advbase = {advbase}\nadvskew = {advskew}\npass = \"{PASS}\"\n\
             addresses = [\"{}/{PREFIX}\"]\n",
            host.ifname(),
            vip_of(vhid)
        ));
    }
    let file = dir.join("carpd.toml");
    std::fs::write(&file, toml).with_context(|| format!("writing {}", file.display()))?;
    // Native XDP, explicitly, where the lab puts the switch side of every cable in NAPI mode
    // (LabSpec::napi_peers), as native XDP_TX on a veth needs; on the plain lab (--plain-lab)
    // the default mode, as users run it.
    let xdp_mode = if lab.napi_peers() { "native" } else { "auto" };
    let extra: Vec<&str> = bins.carpd_args.iter().map(String::as_str).collect();
    spawn_carpd_with(
        host,
        &bins.carpd,
        &file,
        dir,
        &lab.pin_dir(host.name()),
        xdp_mode,
        &extra,
    )
    .map_err(anyhow::Error::from)
}

impl Daemon {
    /// carpd as a VRRPv3 router (`protocol = "vrrp3"`) for the VIP, with keepalived's
    /// priorities (150 master, 100 backup) and interval, for the VRRP section
    /// (`vrrp.rs`). It is a carpd instance: states, kills and cleanup are carpd's.
    pub fn start_carpd_vrrp(
        lab: &Lab,
        host_index: usize,
        role: Role,
        advert_int_cs: u16,
        bins: &Binaries,
    ) -> Result<Daemon> {
        let host = lab.host(host_index);
        let dir = lab.workdir().join(format!("{}-carpd-vrrp", host.name()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let priority = if role == Role::Master { 150 } else { 100 };
        let toml = format!(
            "[[interface]]\nname = \"carp1\"\ncarpdev = \"{}\"\nprotocol = \"vrrp3\"\nvrid = 1\n\
             priority = {priority}\nadvert_interval = {advert_int_cs}\naddresses = [\"{VIP}/{PREFIX}\"]\n",
            host.ifname()
        );
        let file = dir.join("carpd.toml");
        std::fs::write(&file, toml).with_context(|| format!("writing {}", file.display()))?;
        let xdp_mode = if lab.napi_peers() { "native" } else { "auto" };
        let extra: Vec<&str> = bins.carpd_args.iter().map(String::as_str).collect();
        let process = spawn_carpd_with(
            host,
            &bins.carpd,
            &file,
            &dir,
            &lab.pin_dir(host.name()),
            xdp_mode,
            &extra,
        )?;
        Ok(Daemon {
            // Only the tool matters to the instance (state from carpctl, kill, cleanup).
            setting: Setting::carpd_default(),
            host_index,
            dir,
            procs: vec![process],
            carpctl: bins.carpctl.clone(),
            vhids: 1,
        })
    }
}

fn start_ucarp(
    host: &Host,
    dir: &Path,
    advbase: u8,
    advskew: u8,
    deadratio: u8,
    vhids: u8,
) -> Result<Vec<LabProcess>> {
    // ucarp runs scripts to add and remove the address: `script <interface> <address>`.
    let up = dir.join("vip-up.sh");
    let down = dir.join("vip-down.sh");
    write_script(
        &up,
        &format!("exec ip addr add \"$2\"/{PREFIX} dev \"$1\"\n"),
    )?;
    write_script(
        &down,
        &format!("exec ip addr del \"$2\"/{PREFIX} dev \"$1\"\n"),
    )?;
    let src = host.addr4().to_string();
    let mut procs = Vec::new();
    for vhid in 1..=vhids {
        let vip = vip_of(vhid).to_string();
        let (vhid, advbase, advskew, deadratio) = (
            vhid.to_string(),
            advbase.to_string(),
            advskew.to_string(),
            deadratio.to_string(),
        );
        procs.push(host.spawn([
            "ucarp".as_ref(),
            "--interface".as_ref(),
            host.ifname().as_ref(),
            "--srcip".as_ref(),
            src.as_ref(),
            "--vhid".as_ref(),
            vhid.as_ref(),
            "--pass".as_ref(),
            PASS.as_ref(),
            "--addr".as_ref(),
            vip.as_ref(),
            "--advbase".as_ref(),
            advbase.as_ref(),
            "--advskew".as_ref(),
            advskew.as_ref(),
            "--deadratio".as_ref(),
            deadratio.as_ref(),
            "--preempt".as_ref(),
            "--neutral".as_ref(),
            "--shutdown".as_ref(),
            "--upscript".as_ref(),
            up.as_os_str(),
            "--downscript".as_ref(),
            down.as_os_str(),
        ] as [&std::ffi::OsStr; 24])?);
    }
    Ok(procs)
}

fn start_keepalived(
    host: &Host,
    dir: &Path,
    advert_int_cs: u16,
    priority: u8,
    vhids: u8,
) -> Result<LabProcess> {
    let mut conf = format!(
        "global_defs {{\n    router_id {}\n    vrrp_version 3\n}}\n",
        host.name()
    );
    for vhid in 1..=vhids {
        conf.push_str(&format!(
            "vrrp_instance VI_{vhid} {{\n    state BACKUP\n    interface {}\n    \
             virtual_router_id {vhid}\n    priority {priority}\n    advert_int {}\n    \
             virtual_ipaddress {{\n        {}/{PREFIX}\n    }}\n}}\n",
            host.ifname(),
            f64::from(advert_int_cs) / 100.0,
            vip_of(vhid)
        ));
    }
    Ok(carp_tests::peers::spawn_keepalived(host, dir, &conf)?)
}

fn write_script(path: &Path, body: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, format!("#!/bin/sh\n{body}"))
        .with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carp_intervals_follow_openbsd() {
        assert_eq!(carp_interval(1, 0), Duration::from_secs(1));
        assert_eq!(carp_interval(0, 0), Duration::from_micros(3906));
        assert_eq!(carp_interval(0, 128), Duration::from_millis(500));
        assert_eq!(
            Setting::carpd_default().master_down(),
            3 * carp_interval(1, CARPD_BACKUP_SKEW)
        );
    }

    #[test]
    fn peers_master_down_follow_their_rules() {
        // ucarp: deadratio × advbase (+ advskew/256, 0 here).
        assert_eq!(
            Setting::ucarp_default().master_down(),
            Duration::from_secs(3)
        );
        assert_eq!(
            Setting::ucarp_fastest().master_down(),
            Duration::from_secs(1)
        );
        // VRRPv3 at 10 ms and priority 100: 30 ms + 156/256 × 10 ms.
        assert_eq!(
            Setting::keepalived_fastest().master_down(),
            Duration::from_nanos(36_093_750)
        );
    }

    #[test]
    fn escape_codes_are_stripped() {
        let coloured =
            "\x1b[3mfrom\x1b[0m\x1b[2m=\x1b[0mBACKUP \x1b[3mto\x1b[0m\x1b[2m=\x1b[0mMASTER";
        assert_eq!(plain(coloured), "from=BACKUP to=MASTER");
        assert_eq!(plain("plain"), "plain");
    }

    #[test]
    fn carpd_state_is_the_last_one_logged_for_the_interface() {
        let log = "2026-12-02T06:40:00.1Z  INFO carp up interface=carp1 from=INIT to=BACKUP reason=up\n\
                   2026-12-02T06:40:00.2Z  INFO master down timer expired interface=carp1 from=BACKUP to=MASTER reason=master-down\n\
                   2026-12-02T06:40:00.3Z  INFO carp up interface=carp10 from=INIT to=BACKUP reason=up\n\
                   2026-12-02T06:40:00.4Z  INFO groups changed interface=carp1 groups=[\"carp\"]\n";
        assert_eq!(carpd_logged_state(log, "carp1"), Some(State::Master));
        assert_eq!(carpd_logged_state(log, "carp10"), Some(State::Backup));
        assert_eq!(carpd_logged_state(log, "carp2"), None);
    }

    #[test]
    fn state_is_read_from_the_last_log_line() {
        let log = "x Switching to state: BACKUP\ny\nz Switching to state: MASTER\n";
        let word = |w: &str| match w {
            "MASTER" => Some(State::Master),
            "BACKUP" => Some(State::Backup),
            _ => None,
        };
        assert_eq!(
            last_state(log, "Switching to state: ", word),
            Some(State::Master)
        );
        assert_eq!(last_state("nothing", "Switching to state: ", word), None);
    }
}
