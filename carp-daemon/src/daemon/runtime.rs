//! The event loop and the handling of each event.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::carpif::CarpIf;
use super::event_source::SourceHealth;
use crate::Error;
use crate::config::DaemonSettings;
use crate::control::server::{ControlRequest, ControlServer};
use crate::dataplane::{
    AdvertReader, AttachMode, Dataplane, VhidDataplaneState, master_hold, monotonic_now,
};
use crate::groups::Groups;
use crate::metrics::{ScrapeRequest, Snapshot, VhidMetrics};
use crate::net::NetHandle;
use crate::notify::Notifier;
use crate::proto::{self, fsm};
use crate::send::{advert::AdvertSender, announce::Announcer};

/// What the command line says; the configuration files say the rest.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub config_paths: Vec<PathBuf>,
    /// Overrides the configuration's state directory.
    pub state_dir: Option<PathBuf>,
    /// Overrides the configuration's pin directory.
    pub pin_dir: Option<PathBuf>,
    /// `--preempt` (OR-ed with the configuration's `preempt`).
    pub preempt: bool,
    /// `--boot-demote N`: overrides the configuration's `boot_demote`.
    pub boot_demote: Option<u8>,
    /// `--metrics ADDR`: overrides the configuration's `metrics`.
    pub metrics: Option<std::net::SocketAddr>,
    pub xdp_mode: AttachMode,
    /// `--advert-ring-bytes N`: the advert ring's size instead of the built-in one (tests
    /// make it small); `None` keeps the default.
    pub advert_ring_bytes: Option<u32>,
}

/// A carpdev at run time: its identity, link state and senders.
pub(super) struct Carpdev {
    pub name: String,
    pub ifindex: u32,
    pub carrier: bool,
    pub adverts: AdvertSender,
    pub announcer: Announcer,
    /// The solicited-node groups of the virtual IPv6 addresses, joined on the carpdev so
    /// that neighbour solicitations for them pass the NIC's filter and reach XDP.
    pub groups6: crate::net::SolicitedNodeGroups,
}

pub(super) struct Daemon {
    pub opts: DaemonOptions,
    pub settings: DaemonSettings,
    pub net: NetHandle,
    pub dataplane: Dataplane,
    pub carpdevs: BTreeMap<String, Carpdev>,
    pub ifs: BTreeMap<String, CarpIf>,
    pub groups: Groups,
}

/// Runs carpd until SIGTERM/SIGINT, then hands over and cleans up.
pub async fn run(opts: DaemonOptions) -> Result<(), Error> {
    let config = super::lifecycle::load_config(&opts.config_paths)?;
    // One carpd per pin directory, checked before anything on the system is touched.
    let pin_dir = opts.pin_dir.as_ref().unwrap_or(&config.daemon.pin_dir);
    let _pin_lock = super::pinlock::lock_pin_dir(pin_dir)?;
    // The control socket first: it also finds out whether another carpd already runs with
    // this state directory, before anything on the system is touched.
    let state_dir = opts
        .state_dir
        .clone()
        .unwrap_or_else(|| config.daemon.state_dir.clone());
    let server = ControlServer::bind(&state_dir).map_err(|e| Error::Other(e.to_string()))?;
    // Subscribe to link events before reading any link's state, so no change is missed.
    let mut links = crate::net::LinkMonitor::new().await?;
    let mut daemon = Daemon::start(opts, config).await?;
    let ring = daemon
        .dataplane
        .take_advert_ring()
        .ok_or_else(|| Error::Other("advert ring buffer already taken".into()))?;
    let mut adverts = AdvertReader::new(ring).map_err(|source| Error::Io {
        what: "polling the advert ring buffer",
        path: daemon.settings.pin_dir.clone(),
        source,
    })?;
    let io_err = |what: &'static str| {
        move |source| Error::Io {
            what,
            path: PathBuf::from("signal"),
            source,
        }
    };
    let mut sigterm =
        signal(SignalKind::terminate()).map_err(io_err("installing SIGTERM handler"))?;
    let mut sigint =
        signal(SignalKind::interrupt()).map_err(io_err("installing SIGINT handler"))?;
    let mut sighup = signal(SignalKind::hangup()).map_err(io_err("installing SIGHUP handler"))?;

    // carpctl: requests reach this loop through a channel and are answered in turn.
    let (control_tx, mut control_rx) = mpsc::channel::<ControlRequest>(16);
    let control_task = tokio::spawn(server.serve(control_tx));

    // Prometheus scrapes, likewise.
    let (scrape_tx, mut scrape_rx) = mpsc::channel::<ScrapeRequest>(4);
    let metrics_task = match daemon.settings.metrics {
        Some(addr) => {
            let listener = crate::metrics::bind(addr)
                .await
                .map_err(|source| Error::Io {
                    what: "binding the metrics listener",
                    path: PathBuf::from(addr.to_string()),
                    source,
                })?;
            info!(%addr, "metrics endpoint listening");
            Some(tokio::spawn(crate::metrics::serve(listener, scrape_tx)))
        }
        None => None,
    };

    let notifier = Notifier::from_env().map_err(io_err("reading NOTIFY_SOCKET"))?;
    let mut watchdog = notifier
        .watchdog_interval()
        .map(|period| tokio::time::interval(period));
    notifier.ready(&format!("{} carp interface(s)", daemon.ifs.len()));
    info!(interfaces = daemon.ifs.len(), "carpd running");

    // A source that closed ends the loop with an error (see event_source).
    let mut ring_health = SourceHealth::new("advert ring buffer");
    let mut link_health = SourceHealth::new("link monitor");
    let failure = loop {
        let sleep = daemon.time_to_next_deadline();
        tokio::select! {
            batch = adverts.next_batch() => match batch {
                Ok(batch) => {
                    ring_health.delivered();
                    // Under a flood a batch holds thousands of (mostly bogus) adverts: keep
                    // firing due timers between chunks so our own adverts leave on time.
                    for chunk in batch.chunks(ADVERT_CHUNK) {
                        for event in chunk {
                            daemon.on_advert(event);
                        }
                        daemon.on_timers();
                    }
                }
                Err(err) => if let Err(fatal) = ring_health.failed(&err) { break Some(fatal) },
            },
            () = tokio::time::sleep(sleep) => daemon.on_timers(),
            event = links.next() => match event {
                Ok(event) => { link_health.delivered(); daemon.on_net_event(event).await }
                Err(err) => if let Err(fatal) = link_health.failed(&err) { break Some(fatal) },
            },
            Some(req) = control_rx.recv() => {
                let response = daemon.on_control(req.request).await;
                let _ = req.reply.send(response);
            }
            Some(reply) = scrape_rx.recv() => { let _ = reply.send(daemon.metrics_snapshot()); }
            _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                notifier.watchdog();
            }
            _ = sigterm.recv() => { info!("SIGTERM: handing over and shutting down"); break None }
            _ = sigint.recv() => { info!("SIGINT: handing over and shutting down"); break None }
            _ = sighup.recv() => daemon.reload().await,
        }
    };
    if let Some(fatal) = &failure {
        error!(error = %fatal, "handing over and shutting down");
    }
    notifier.stopping();
    control_task.abort();
    if let Some(task) = metrics_task {
        task.abort();
    }
    let stopped = daemon.shutdown().await;
    // The hooks of the last state changes (bowing out) run to their end, within limits.
    if !crate::hooks::HookRunner::global()
        .drain(HOOK_DRAIN_TIMEOUT)
        .await
    {
        warn!(timeout = ?HOOK_DRAIN_TIMEOUT, "hooks still running at exit; killed");
    }
    match failure {
        Some(fatal) => {
            if let Err(err) = stopped {
                warn!(error = %err, "shutting down");
            }
            Err(fatal)
        }
        None => stopped,
    }
}

/// Received adverts handled between two checks of the timers.
const ADVERT_CHUNK: usize = 64;

/// How long carpd waits at exit for hooks still running (systemd's TimeoutStopSec is 10 s).
const HOOK_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

impl Daemon {
    /// What a Prometheus scrape shows now.
    pub fn metrics_snapshot(&self) -> Snapshot {
        let vhids = self
            .ifs
            .values()
            .map(|c| VhidMetrics {
                interface: c.cfg.name.clone(),
                carpdev: c.cfg.carpdev.clone(),
                vhid: c.cfg.vhid,
                state: match c.fsm.state() {
                    fsm::State::Init => 0,
                    fsm::State::Backup => 1,
                    fsm::State::Master => 2,
                },
                demote: c.fsm.demote(),
                transitions: c.stats.transitions,
                adverts_sent: c.stats.sent_v4 + c.stats.sent_v6,
                adverts_received: c.stats.received_v4 + c.stats.received_v6,
                send_errors: c.stats.send_errors,
            })
            .collect();
        let rejects = vec![
            (
                "badauth".to_owned(),
                self.ifs.values().map(|c| c.stats.rejected_auth).sum(),
            ),
            (
                "loop".to_owned(),
                self.ifs.values().map(|c| c.stats.rejected_loop).sum(),
            ),
        ];
        let dataplane = self
            .dataplane
            .counters()
            .map(|d| crate::dataplane::counter_list(&d))
            .unwrap_or_default();
        let groups = self.groups.iter().map(|(g, n)| (g.to_owned(), n)).collect();
        Snapshot {
            vhids,
            rejects,
            dataplane,
            groups,
        }
    }

    /// How long until the earliest state-machine deadline (an hour when none is pending).
    fn time_to_next_deadline(&self) -> Duration {
        let now = now();
        self.ifs
            .values()
            .filter_map(|c| c.fsm.next_deadline())
            .min()
            .map(|d| d.saturating_sub(now))
            .unwrap_or(Duration::from_secs(3600))
    }

    /// Fires every state machine whose deadline has passed.
    pub fn on_timers(&mut self) {
        let now = now();
        let due: Vec<String> = self
            .ifs
            .iter()
            .filter(|(_, c)| c.fsm.next_deadline().is_some_and(|d| d <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            self.report_master_repeats(&name);
            self.drive(&name, fsm::Event::TimerExpired);
        }
    }

    /// Before a BACKUP's timer fires: tells its state machine when the dataplane last
    /// consumed a repeat of the followed master's advert, per family (see
    /// [`fsm::Event::AdvertSeen`]); the machine re-arms from that time if it is newer than
    /// what armed the timer.
    fn report_master_repeats(&mut self, name: &str) {
        let Some(cif) = self.ifs.get(name) else {
            return;
        };
        if cif.fsm.state() != fsm::State::Backup {
            return;
        }
        let (ifindex, vhid) = (cif.carpdev_ifindex, cif.cfg.vhid);
        for (family, code) in [
            (fsm::Family::V4, carp_common::maps::FAMILY_V4),
            (fsm::Family::V6, carp_common::maps::FAMILY_V6),
        ] {
            if let Some(at) = self.dataplane.master_advert_seen(ifindex, vhid, code) {
                self.drive(name, fsm::Event::AdvertSeen { family, at });
            }
        }
    }

    /// Stops the dataplane's fast path for a vhid's master: its adverts reach carpd again
    /// until it follows one anew. Called whenever the verdict on the published advert could
    /// change (state, timers, passphrase, demotion).
    pub fn forget_master_advert(&mut self, name: &str) {
        let Some(cif) = self.ifs.get(name) else {
            return;
        };
        if let Err(err) = self
            .dataplane
            .clear_master_advert(cif.carpdev_ifindex, cif.cfg.vhid)
        {
            warn!(interface = %name, error = %err, "clearing the followed master advert");
        }
    }

    /// A received advert from the XDP ring buffer.
    pub fn on_advert(&mut self, event: &carp_common::maps::AdvertEvent) {
        let vhid = event.carp[1];
        let Some(name) = self
            .ifs
            .iter()
            .find(|(_, c)| c.carpdev_ifindex == event.ifindex && c.cfg.vhid == vhid)
            .map(|(n, _)| n.clone())
        else {
            debug!(
                ifindex = event.ifindex,
                vhid, "advert for a vhid not configured"
            );
            return;
        };
        let cif = self.ifs.get_mut(&name).expect("found above");
        if event.family == 6 {
            cif.stats.received_v6 += 1;
        } else {
            cif.stats.received_v4 += 1;
        }
        match proto::verify_delivered(&event.carp, &cif.auth, cif.counter) {
            Ok(header) => {
                let family = if event.family == 6 {
                    fsm::Family::V6
                } else {
                    fsm::Family::V4
                };
                let was_backup = cif.fsm.state() == fsm::State::Backup;
                let (ifindex, vhid) = (cif.carpdev_ifindex, cif.cfg.vhid);
                self.drive(&name, fsm::Event::advert(family, &header));
                let follows = was_backup
                    && self
                        .ifs
                        .get(&name)
                        .is_some_and(|c| c.fsm.state() == fsm::State::Backup);
                if follows {
                    // The master this backup follows: its repeats need not wake carpd.
                    if let Err(err) = self.dataplane.publish_master_advert(
                        ifindex,
                        vhid,
                        event.family,
                        event.src,
                        event.carp,
                    ) {
                        warn!(interface = %name, error = %err, "publishing the followed master advert");
                    }
                }
            }
            Err(reject) => {
                match reject {
                    proto::Reject::Loop => cif.stats.rejected_loop += 1,
                    _ => cif.stats.rejected_auth += 1,
                }
                debug!(interface = %name, reason = reject.as_str(), "advert rejected");
            }
        }
    }

    /// Carrier of an interface changed; only carpdevs matter.
    pub fn on_link(&mut self, ifindex: u32, carrier: bool) {
        let Some(dev) = self.carpdevs.values_mut().find(|d| d.ifindex == ifindex) else {
            return;
        };
        if dev.carrier == carrier {
            return;
        }
        dev.carrier = carrier;
        let devname = dev.name.clone();
        info!(carpdev = %devname, carrier, "carpdev link {}", if carrier { "up" } else { "down" });
        let members: Vec<String> = self
            .ifs
            .iter()
            .filter(|(_, c)| c.cfg.carpdev == devname)
            .map(|(n, _)| n.clone())
            .collect();
        for name in members {
            // OpenBSD carp_carpdev_state: link loss demotes the interface's groups by 1
            // (undone on return) and puts its vhids in INIT.
            self.adjust_own_demote(&name, if carrier { -1 } else { 1 });
            if carrier {
                self.bring_up(&name);
            } else {
                self.drive(&name, fsm::Event::LinkDown);
            }
        }
    }

    /// Starts the election of an interface if it can run: configured up, carpdev with
    /// carrier, addresses present (OpenBSD carp_setrun).
    pub fn bring_up(&mut self, name: &str) {
        let Some(cif) = self.ifs.get(name) else {
            return;
        };
        let carrier = self
            .carpdevs
            .get(&cif.cfg.carpdev)
            .is_some_and(|d| d.carrier);
        let families = cif.families();
        if cif.cfg.up && carrier && !families.is_empty() {
            self.drive(name, fsm::Event::Up(families));
            self.apply_pending_state(name);
        }
    }

    /// `state master|backup`, once: forced now if the vhid runs, else kept until it first
    /// leaves INIT ([`Daemon::bring_up`]). Never again after that: a carpdev link that
    /// comes back goes INIT → BACKUP and listens like any other.
    pub fn apply_pending_state(&mut self, name: &str) {
        let Some(cif) = self.ifs.get_mut(name) else {
            return;
        };
        if cif.fsm.state() == fsm::State::Init {
            return;
        }
        if let Some(forced) = cif.pending_state.take() {
            self.drive(name, fsm::Event::ForceState(forced));
        }
    }

    /// A reload changed `state`: the new value is applied once (as [`CarpIf::new`] takes
    /// it at start), now if the vhid runs; no value cancels one still pending.
    pub fn set_initial_state(&mut self, name: &str, state: Option<crate::config::ForcedState>) {
        let Some(cif) = self.ifs.get_mut(name) else {
            return;
        };
        cif.cfg.initial_state = state;
        cif.pending_state = state;
        self.apply_pending_state(name);
    }

    /// Moves an interface to the group set `groups` in place (`ifconfig carpN [-]group`):
    /// its pending own demotion leaves the groups it leaves and joins those it joins
    /// (`carp_ifgroup_ioctl`); state and counter are untouched. The new advertised demote
    /// goes out with the next advert.
    pub fn set_groups(&mut self, name: &str, groups: Vec<String>) {
        let Some(cif) = self.ifs.get(name) else {
            return;
        };
        let own = cif.own_demote;
        let old = cif.cfg.groups.clone();
        for g in groups.iter().filter(|g| !old.contains(g)) {
            self.groups.join(g, own);
        }
        for g in old.iter().filter(|g| !groups.contains(g)) {
            let left = self
                .ifs
                .values()
                .filter(|c| c.cfg.name != name && c.cfg.groups.contains(g))
                .count();
            self.groups.leave(g, own, left);
        }
        if let Some(cif) = self.ifs.get_mut(name) {
            info!(interface = %name, groups = ?groups, "groups changed");
            cif.cfg.groups = groups;
        }
        self.propagate_demote();
    }

    /// Changes the demotion an interface caused itself (carpdev link loss, send errors), and
    /// its groups' counters with it (`carp_group_demote_adj`). A raise that takes one of its
    /// groups from 0 to 1 makes every master of every carp interface advertise at once
    /// (`carp_send_ad_all`); any other change goes out with the next advert.
    pub fn adjust_own_demote(&mut self, name: &str, by: i16) {
        let Some(cif) = self.ifs.get_mut(name) else {
            return;
        };
        let new = (i16::from(cif.own_demote) + by).clamp(0, 255) as u8;
        let applied = i16::from(new) - i16::from(cif.own_demote);
        cif.own_demote = new;
        let groups = cif.cfg.groups.clone();
        let send_all = self
            .groups
            .kernel_adjust(groups.iter().map(String::as_str), applied);
        self.propagate_demote();
        if send_all {
            let every: Vec<String> = self.ifs.keys().cloned().collect();
            self.advertise_masters(&every);
        }
    }

    /// Tells every state machine whose advertised demote changed; they send it with their
    /// next advert.
    pub fn propagate_demote(&mut self) {
        let changes: Vec<(String, u8)> = self
            .ifs
            .iter()
            .map(|(n, c)| {
                let groups = c.cfg.groups.iter().map(String::as_str);
                (n.clone(), self.groups.demote_of(groups, c.own_demote))
            })
            .filter(|(n, d)| self.ifs.get(n).is_some_and(|c| c.fsm.demote() != *d))
            .collect();
        for (name, demote) in changes {
            self.drive(&name, fsm::Event::DemoteChanged(demote));
        }
    }

    /// The masters among `names` send an advert now (`carp_send_ad`); the others ignore it.
    pub fn advertise_masters(&mut self, names: &[String]) {
        for name in names {
            self.drive(name, fsm::Event::AdvertiseNow);
        }
    }

    /// Feeds one event to an interface's state machine and carries out what it asks for.
    pub fn drive(&mut self, name: &str, event: fsm::Event) {
        let now = now();
        let Some(cif) = self.ifs.get_mut(name) else {
            return;
        };
        let actions = cif.fsm.handle(now, event);
        if matches!(event, fsm::Event::DemoteChanged(_)) {
            // The followed advert may now mean a takeover: let carpd see the next one.
            self.forget_master_advert(name);
        }
        for action in actions {
            self.execute(name, now, action);
        }
    }

    fn execute(&mut self, name: &str, now: Duration, action: fsm::Action) {
        match action {
            fsm::Action::SendAdvert {
                advbase,
                advskew,
                demote,
            } => {
                let results = self.send_advert(name, advbase, advskew, demote);
                let is_master = self
                    .ifs
                    .get(name)
                    .is_some_and(|c| c.fsm.state() == fsm::State::Master);
                if is_master && advbase != carp_common::wire::CARP_BOW_OUT {
                    // Every advert a master sends pushes the dataplane's deadline forward.
                    self.set_dataplane(name, now, fsm::State::Master);
                }
                for ok in results {
                    let Some(cif) = self.ifs.get_mut(name) else {
                        return;
                    };
                    let follow_up = cif.fsm.handle(now, fsm::Event::AdvertSendResult { ok });
                    for a in follow_up {
                        self.execute(name, now, a);
                    }
                }
            }
            fsm::Action::Announce(kind) => self.announce(name, kind),
            fsm::Action::StateChanged { from, to, reason } => {
                info!(interface = %name, %from, %to, reason = reason.as_str(), "{}", reason.description());
                self.forget_master_advert(name);
                self.set_dataplane(name, now, to);
                if let Some(cif) = self.ifs.get(name) {
                    for hook in &self.settings.hooks {
                        crate::hooks::spawn(
                            hook.clone(),
                            crate::hooks::StateChange {
                                interface: name.to_owned(),
                                carpdev: cif.cfg.carpdev.clone(),
                                vhid: cif.cfg.vhid,
                                old_state: from.as_str(),
                                new_state: to.as_str(),
                                reason: reason.as_str(),
                            },
                        );
                    }
                }
                if let Some(cif) = self.ifs.get_mut(name) {
                    cif.stats.transitions += 1;
                    if to == fsm::State::Master {
                        cif.stats.became_master += 1;
                    }
                    cif.last_transition = Some((reason.description().to_owned(), Instant::now()));
                }
            }
            fsm::Action::AdjustDemote(by) => self.adjust_own_demote(name, i16::from(by)),
        }
    }

    /// Writes the dataplane's view of the vhid: master with a fresh deadline, or silent.
    fn set_dataplane(&mut self, name: &str, now: Duration, state: fsm::State) {
        let Some(cif) = self.ifs.get(name) else {
            return;
        };
        let mono = monotonic_now().unwrap_or(now);
        let dp_state = match state {
            fsm::State::Master => VhidDataplaneState::Master {
                until: mono + master_hold(cif.interval()),
            },
            fsm::State::Backup => VhidDataplaneState::Backup,
            fsm::State::Init => VhidDataplaneState::Init,
        };
        if let Err(err) =
            self.dataplane
                .set_vhid(cif.carpdev_ifindex, cif.cfg.vhid, cif.interval(), dp_state)
        {
            warn!(interface = %name, error = %err, "updating the dataplane");
        }
    }

    /// Sends one advert per address family the interface has; the result of each packet.
    fn send_advert(&mut self, name: &str, advbase: u8, advskew: u8, demote: u8) -> Vec<bool> {
        let Some(cif) = self.ifs.get_mut(name) else {
            return Vec::new();
        };
        let Some(dev) = self.carpdevs.get_mut(&cif.cfg.carpdev) else {
            return Vec::new();
        };
        let header = cif.advert(advbase, advskew, demote);
        let mut results = Vec::with_capacity(2);
        // The carp interface's own first address: the source only if the carpdev has none.
        if let Some(own_v4) = cif.cfg.ipv4.first().map(|a| a.addr) {
            match dev.adverts.send_v4(cif.vmac, Some(own_v4), &header) {
                Ok(()) => {
                    cif.stats.sent_v4 += 1;
                    results.push(true);
                }
                Err(err) => {
                    results.push(false);
                    cif.stats.send_errors += 1;
                    warn!(interface = %name, error = %err, "advert not sent");
                }
            }
        }
        if !cif.cfg.ipv6.is_empty() {
            match dev.adverts.send_v6(cif.vmac, &header) {
                Ok(()) => {
                    cif.stats.sent_v6 += 1;
                    results.push(true);
                }
                Err(err) => {
                    results.push(false);
                    cif.stats.send_errors += 1;
                    warn!(interface = %name, error = %err, "IPv6 advert not sent");
                }
            }
        }
        results
    }

    /// Gratuitous ARP for every IPv4 address of the interface, and with
    /// [`fsm::Announcement::ArpAndNa`] an unsolicited NA for every IPv6 address.
    fn announce(&mut self, name: &str, kind: fsm::Announcement) {
        let Some(cif) = self.ifs.get(name) else {
            return;
        };
        let Some(dev) = self.carpdevs.get(&cif.cfg.carpdev) else {
            return;
        };
        let router = ipv6_forwarding();
        for addr in cif.ipv4() {
            if let Err(err) = dev.announcer.gratuitous_arp(cif.vmac, addr) {
                warn!(interface = %name, error = %err, "gratuitous ARP not sent");
            }
        }
        if kind == fsm::Announcement::ArpOnly {
            return;
        }
        for addr in cif.ipv6() {
            if let Err(err) = dev.announcer.unsolicited_na(cif.vmac, addr, router) {
                warn!(interface = %name, error = %err, "neighbour advertisement not sent");
            }
        }
    }
}

/// The state machines' clock: CLOCK_MONOTONIC, the dataplane's clock too.
pub(super) fn now() -> Duration {
    monotonic_now().expect("CLOCK_MONOTONIC is always readable")
}

/// Whether this host forwards IPv6 (then NAs carry the router flag, as OpenBSD's do).
pub(super) fn ipv6_forwarding() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding")
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}
