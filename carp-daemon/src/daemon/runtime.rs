//! The event loop and the handling of each event.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::deadline_timer::DeadlineTimer;
use super::event_source::SourceHealth;
use super::loop_watch::LoopWatch;
use super::{Daemon, DaemonOptions, now};
use crate::Error;
use crate::control::monitor::MonitorEvent;
use crate::control::server::{ControlRequest, ControlServer};
use crate::dataplane::AdvertReader;
use crate::metrics::{ScrapeRequest, Snapshot, VhidMetrics};
use crate::notify::Notifier;
use crate::proto::{self, fsm};

/// Runs carpd until SIGTERM/SIGINT, then hands over and cleans up, on a tokio runtime of its
/// own: one thread, whose wake-ups and idle waits the advert pacer's loop watch is told of
/// (a task that keeps the thread and never yields stops the pacer; see `loop_watch`).
pub fn run(opts: DaemonOptions) -> Result<(), Error> {
    let watch = LoopWatch::default();
    let runtime = super::loop_watch::runtime(&watch).map_err(|source| Error::Io {
        what: "starting the tokio runtime",
        path: PathBuf::from("tokio"),
        source,
    })?;
    runtime.block_on(serve(opts, watch))
}

async fn serve(opts: DaemonOptions, watch: LoopWatch) -> Result<(), Error> {
    let config = super::lifecycle::load_config(&opts.config_paths)?;
    // Real time on this thread, the event loop's, before any other thread or child exists.
    if let Some(priority) = opts.realtime_priority.or(config.daemon.realtime_priority) {
        crate::realtime::enter(priority)?;
        info!(priority, "event loop under SCHED_FIFO, memory locked");
    }
    // One carpd per pin directory, checked before anything on the system is touched.
    let pin_dir = opts.pin_dir.as_ref().unwrap_or(&config.daemon.pin_dir);
    let _pin_lock = super::pinlock::lock_pin_dir(pin_dir)?;
    // The control socket first: it also finds out whether another carpd already runs with
    // this state directory, before anything on the system is touched.
    let state_dir = opts
        .state_dir
        .clone()
        .unwrap_or_else(|| config.daemon.state_dir.clone());
    let server = ControlServer::bind(&state_dir)?;
    // Subscribe to link events before reading any link's state, so no change is missed.
    let mut links = crate::net::LinkMonitor::new().await?;
    let mut daemon = Daemon::start(opts, config, watch.clone()).await?;
    let ring = daemon
        .dataplane
        .take_advert_ring()
        .ok_or(Error::AdvertRingTaken)?;
    let mut check_results = daemon.check_results.take().expect("taken once, here");
    // The XDP program's decision records (`carpctl debug xdp on`), into tracing and monitors.
    let bridge = crate::dataplane::xdp_log::Bridge::new(daemon.monitor.handle());
    let xdp_log_task = match daemon.dataplane.take_xdp_logger(bridge) {
        Ok(logger) => Some(tokio::spawn(crate::dataplane::xdp_log::pump(logger))),
        Err(err) => {
            warn!(error = %err, "XDP decision records unavailable");
            None
        }
    };
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
    let server = server.with_monitors(daemon.monitor.handle());
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
            Some(tokio::spawn(crate::metrics::serve(
                listener,
                scrape_tx,
                crate::metrics::Limits::default(),
            )))
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
    let mut timer = DeadlineTimer::new().map_err(io_err("creating the timerfd"))?;
    let pacer_failures = daemon.pacer.failures();
    // Every handler starts with `watch.busy()`: the pacer stops for a loop hung in one.
    let failure = loop {
        let deadline = daemon.next_deadline();
        watch.waiting();
        tokio::select! {
            batch = adverts.next_batch() => match batch {
                Ok(batch) => {
                    ring_health.delivered();
                    // Under a flood a batch holds thousands of (mostly bogus) adverts: keep
                    // firing due timers between chunks so our own adverts leave on time.
                    for chunk in batch.chunks(ADVERT_CHUNK) {
                        // Each chunk is progress, not a hang (see loop_watch).
                        watch.busy();
                        for event in chunk {
                            daemon.on_advert(event);
                        }
                        daemon.on_timers();
                    }
                }
                Err(err) => if let Err(fatal) = ring_health.failed(&err) { break Some(fatal) },
            },
            fired = timer.expired(deadline) => match fired {
                Ok(()) => { watch.busy(); daemon.on_timers() }
                Err(source) => break Some(Error::Io { what: "waiting for the timerfd", path: PathBuf::from("timerfd"), source }),
            },
            () = pacer_failures.notified() => { watch.busy(); daemon.on_pacer_failures() }
            // These may change any vhid's adverts behind its state machine (addresses, timers,
            // a reload) or read its counters: the pacer's adverts come back first.
            event = links.next() => match event {
                Ok(event) => {
                    watch.busy();
                    link_health.delivered();
                    daemon.take_back_all_adverts();
                    daemon.on_net_event(event).await
                }
                Err(err) => if let Err(fatal) = link_health.failed(&err) { break Some(fatal) },
            },
            Some(req) = control_rx.recv() => {
                watch.busy();
                daemon.take_back_all_adverts();
                let response = daemon.on_control(req.request).await;
                let _ = req.reply.send(response);
            }
            // A check's demotion reaches each vhid through its state machine (drive).
            Some(report) = check_results.recv() => { watch.busy(); daemon.on_check_report(report) }
            Some(reply) = scrape_rx.recv() => {
                watch.busy();
                // The counters include what the pacer sent.
                daemon.take_back_all_adverts();
                let _ = reply.send(daemon.metrics_snapshot());
            }
            // The pacer asks whether the loop still runs: going round is the answer.
            () = watch.poked() => {}
            _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                notifier.watchdog();
            }
            _ = sigterm.recv() => { info!("SIGTERM: handing over and shutting down"); break None }
            _ = sigint.recv() => { info!("SIGINT: handing over and shutting down"); break None }
            _ = sighup.recv() => {
                watch.busy();
                daemon.take_back_all_adverts();
                daemon.reload().await
            }
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
    if let Some(task) = xdp_log_task {
        task.abort();
    }
    let monitors = daemon.monitor.closer();
    let stopped = daemon.shutdown().await;
    // The daemon is gone: monitors get their last events (the bow-out), then `stopped`.
    monitors.wait(MONITOR_DRAIN_TIMEOUT).await;
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

/// How long carpd waits at exit for `carpctl monitor` streams to take their last events.
const MONITOR_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// How long carpd waits at exit for hooks still running (systemd's TimeoutStopSec is 10 s).
const HOOK_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// At most one warning per vhid this often about a peer advertising the other way
/// (multicast to a vhid with unicast peers, or the reverse).
const MODE_WARNING_EVERY: Duration = Duration::from_secs(60);

/// The name a carpd-side rejection has in the metrics (`carp_rejects_total{reason}`) and
/// the monitor.
fn reject_reason(reject: proto::Reject) -> &'static str {
    match reject {
        proto::Reject::Loop => "loop",
        _ => "badauth",
    }
}

/// The IP source of a delivered advert.
fn source_address(event: &carp_common::maps::AdvertEvent) -> IpAddr {
    if event.family == 6 {
        IpAddr::V6(Ipv6Addr::from(event.src))
    } else {
        let [a, b, c, d, ..] = event.src;
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }
}

impl Daemon {
    /// What a Prometheus scrape shows now.
    pub fn metrics_snapshot(&self) -> Snapshot {
        let vhids = self
            .ifs
            .values()
            .filter(|c| c.vrrp.is_none())
            .map(|c| VhidMetrics {
                interface: c.cfg.name.clone(),
                carpdev: c.cfg.carpdev.clone(),
                vhid: c.cfg.vhid,
                state: match c.state() {
                    fsm::State::Init => 0,
                    fsm::State::Backup => 1,
                    fsm::State::Master => 2,
                },
                demote: c.fsm.demote(),
                transitions: c.stats.transitions,
                adverts_sent: c.stats.sent_v4 + c.stats.sent_v6,
                adverts_received: c.stats.received_v4 + c.stats.received_v6,
                adverts_by_standby: c.stats.sent_by_standby,
                send_errors: c.stats.send_errors,
                master_down_postponed: c.stats.master_down_postponed,
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
        let (vrrp, vrrp_dataplane) = self.vrrp_metrics();
        Snapshot {
            vrrp,
            vrrp_dataplane,
            vhids,
            rejects,
            dataplane,
            groups,
            checks: self.check_statuses(),
        }
    }

    /// The earliest state-machine deadline (CLOCK_MONOTONIC), if any timer runs.
    fn next_deadline(&self) -> Option<Duration> {
        self.ifs.values().filter_map(|c| c.next_deadline()).min()
    }

    /// Fires every state machine whose deadline has passed.
    pub fn on_timers(&mut self) {
        let now = now();
        let due: Vec<String> = self
            .ifs
            .iter()
            .filter(|(_, c)| c.is_due(now))
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

    /// A received advert from the XDP ring buffer.
    pub fn on_advert(&mut self, event: &carp_common::maps::AdvertEvent) {
        if event.carp[0] >> 4 == carp_common::vrrp::VRRP_VERSION {
            self.on_vrrp_advert(event);
            return;
        }
        let vhid = event.carp[1];
        let Some(name) = self
            .ifs
            .iter()
            .find(|(_, c)| {
                c.carpdev_ifindex == event.ifindex && c.cfg.vhid == vhid && c.vrrp.is_none()
            })
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
        // OpenBSD's carp_proto_input: a vhid with a peer ignores multicast adverts, one
        // without ignores unicast ones. Both routers then become master, so say which peer
        // is configured the other way (only for an advert that authenticates: the warning
        // must name a real member of this vhid), at most once a minute.
        let has_peers = cif.cfg.peers_of(event.family == 6).next().is_some();
        if (event.unicast != 0) != has_peers {
            cif.stats.rejected_mode += 1;
            let now = Instant::now();
            let due = cif
                .mode_warned_at
                .is_none_or(|at| now.duration_since(at) >= MODE_WARNING_EVERY);
            let source = source_address(event);
            self.monitor.publish(MonitorEvent::Rejected {
                interface: name.clone(),
                vhid,
                source,
                reason: "mode".to_owned(),
            });
            if due && proto::verify_delivered(&event.carp, &cif.auth, cif.counter).is_ok() {
                cif.mode_warned_at = Some(now);
                let peer = source_address(event);
                if has_peers {
                    warn!(interface = %name, %peer, "ignoring multicast adverts: this vhid has unicast peers (carppeer) but {peer} advertises to the multicast group; configure the peers on every router of the vhid, or none");
                } else {
                    warn!(interface = %name, %peer, "ignoring unicast adverts: {peer} sends this vhid's adverts to this host (carppeer) but this vhid has no peers and advertises to the multicast group; configure the peers on every router of the vhid, or none");
                }
            }
            return;
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
                let source = source_address(event);
                let reason = reject_reason(reject);
                if self.dataplane.carpd_record_due() {
                    // The HMAC is carpd's check, not the XDP program's: with the program's
                    // records on (`carpctl debug xdp on`), carpd writes this one, alike.
                    let carpdev = &cif.cfg.carpdev;
                    info!(target: "carpd::xdp", interface = %name, "advert rejected by carpd: {reason} src={source} vhid={vhid} carpdev={carpdev}");
                } else {
                    debug!(interface = %name, %source, reason = reject.as_str(), "advert rejected");
                }
                self.monitor.publish(MonitorEvent::Rejected {
                    interface: name,
                    vhid,
                    source,
                    reason: reason.to_owned(),
                });
            }
        }
    }
}
