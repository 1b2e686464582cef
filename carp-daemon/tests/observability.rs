//! Observability end to end: the metrics endpoint of a running carpd (parsed by the
//! Prometheus project's own parser, promtool, and holding every metric the Grafana
//! dashboard in dist/ queries), and `carpctl monitor` following a failover.
mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use carp_tests::{Signal, wait_until};
use common::*;

const T1: Timers = Timers {
    advbase: 0,
    advskew: 60,
};

const T2: Timers = Timers {
    advbase: 0,
    advskew: 120,
};

const METRICS: &str = "127.0.0.1:9714";

/// The dashboard every deployment can import.
fn dashboard() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/grafana/carp-dashboard.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The metric names in every PromQL expression of the dashboard (panel targets and
/// template variable queries): the identifiers that start with `carp_`.
fn dashboard_metrics(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(expr)) => out.extend(
                        expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                            .filter(|word| word.starts_with("carp_"))
                            .map(str::to_owned),
                    ),
                    _ => dashboard_metrics(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_metrics(v, out)),
        _ => {}
    }
}

/// One `GET /metrics` inside the router's namespace: the response's body.
fn scrape(router: &Router<'_>) -> String {
    let response = router
        .host
        .in_netns(|| -> std::io::Result<String> {
            let addr: SocketAddr = METRICS.parse().unwrap();
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: carpd\r\n\r\n")?;
            let mut response = String::new();
            s.read_to_string(&mut response)?;
            Ok(response)
        })
        .unwrap()
        .expect("scrape carpd");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    let (_, body) = response
        .split_once("\r\n\r\n")
        .expect("a header/body split");
    body.to_owned()
}

/// `promtool check metrics` on an exposition: it parses with the Prometheus text parser
/// (exit 1 and "parsing error" otherwise), then lints. The one finding allowed is the
/// OpenMetrics naming of counters: the family `x` (`# TYPE x counter`) has the samples
/// `x_total`, which the classic text parser files as a family of their own, without help.
fn promtool_accepts(exposition: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "promtool not runnable ({e}): it comes with Debian's prometheus package, \
             which `cargo xtask setup` installs"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(1),
        "promtool could not parse:\n{text}\n{exposition}"
    );
    for finding in text.lines().filter(|l| !l.trim().is_empty()) {
        let counter_sample = finding
            .strip_suffix(" no help text")
            .and_then(|name| name.strip_suffix("_total"))
            .is_some_and(|family| exposition.contains(&format!("# TYPE {family} counter\n")));
        assert!(counter_sample, "promtool: {finding}\n{exposition}");
    }
}

#[test]
fn metrics_parse_and_hold_every_dashboard_metric() {
    let Some(lab) = lab("e2e_metrics", 1) else {
        return;
    };
    let host = lab.host(0);
    // A health check too, so that its families have samples.
    let toml = format!(
        "[daemon]\nmetrics = \"{METRICS}\"\n\n[[interface]]\nname = \"carp0\"\n\
         carpdev = \"{}\"\nvhid = 1\nadvbase = {}\nadvskew = {}\npass = \"{PASS}\"\n\
         addresses = [\"{VIP4}/24\"]\n\n[[check]]\nname = \"loopback\"\ninterface = \"lo\"\n",
        host.ifname(),
        T1.advbase,
        T1.advskew
    );
    let router = Router::start_files(&lab, host, &[("carpd.toml", &toml)], &[]);
    router.wait_state("MASTER", Duration::from_secs(10));
    let body = scrape(&router);

    promtool_accepts(&body);

    let mut wanted = BTreeSet::new();
    dashboard_metrics(&dashboard(), &mut wanted);
    // State, transitions, demotion and drop reasons at the least.
    for needed in [
        "carp_vhid_state",
        "carp_vhid_transitions_total",
        "carp_vhid_demote",
        "carp_rejects_total",
        "carp_dataplane_total",
    ] {
        assert!(
            wanted.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
    let served = carp_daemon::metrics::metric_names(&body);
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|m| !served.contains(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, which a scrape does not have:\n{body}"
    );
    assert!(
        body.contains("carp_vhid_state{interface=\"carp0\",carpdev=\"eth0\",vhid=\"1\"} 2\n"),
        "{body}"
    );
}

/// The JSON events `carpctl --json monitor` has printed so far.
fn monitor_events(monitor: &carp_tests::LabProcess) -> Vec<serde_json::Value> {
    monitor
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `carpctl monitor` (with `--json` if `json`) following `router`'s carpd, once it is
/// subscribed: it has reported a change made after it started (a demotion of group carp by
/// 1 and back, which moves no election: the router must be BACKUP or alone).
fn start_monitor(router: &Router<'_>, json: bool) -> carp_tests::LabProcess {
    let mut argv = vec![carpctl_bin(), "--state-dir", router.dir.to_str().unwrap()];
    if json {
        argv.push("--json");
    }
    argv.push("monitor");
    let monitor = router.host.spawn(argv).expect("spawn carpctl monitor");
    let subscribed = || {
        let log = monitor.log();
        log.contains("group carp: carp demote count 0 -> 1")
            || log.contains("\"event\":\"group_demote\",\"group\":\"carp\",\"from\":0,\"to\":1")
    };
    wait_until(Duration::from_secs(10), || {
        ok(router.carpctl(&["-g", "carp", "carpdemote", "1"]));
        ok(router.carpctl(&["-g", "carp", "-carpdemote", "1"]));
        subscribed()
    })
    .unwrap_or_else(|_| panic!("the monitor saw no demotion:\n{}", monitor.log()));
    monitor
}

/// `carpctl monitor` on the backup sees it take over when the master stops, and ends on
/// its own (exit 0, `stopped` last) when its carpd stops.
#[test]
fn monitor_follows_a_failover_and_ends_with_carpd() {
    let Some(lab) = lab("e2e_monitor", 2) else {
        return;
    };
    let (r1, r2) = master_and_backup(&lab, T1, T2, &[]);
    let monitor = start_monitor(&r2, true);

    r1.signal(Signal::SIGKILL);
    r2.wait_state("MASTER", Duration::from_secs(10));
    wait_until(Duration::from_secs(5), || {
        monitor_events(&monitor).iter().any(|e| {
            e["event"] == "state"
                && e["interface"] == "carp0"
                && e["vhid"] == 1
                && e["from"] == "BACKUP"
                && e["to"] == "MASTER"
        })
    })
    .unwrap_or_else(|_| panic!("the monitor missed the takeover:\n{}", monitor.log()));

    r2.signal(Signal::SIGTERM);
    let status = monitor
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap_or_else(|| panic!("the monitor outlived carpd:\n{}", monitor.log()));
    assert!(status.success(), "{status:?}\n{}", monitor.log());
    let events = monitor_events(&monitor);
    assert_eq!(
        events.last().map(|e| e["event"].clone()),
        Some("stopped".into()),
        "{}",
        monitor.log()
    );
    // The bow-out went out before the end: MASTER -> INIT.
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "state" && e["from"] == "MASTER"),
        "{}",
        monitor.log()
    );
}

/// How many lines of `log` contain `needle`.
fn lines_with(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// `carpctl debug xdp on|off` at run time: a wrong-TTL advert (dropped by the XDP program)
/// and a wrong-passphrase advert (it passes the program, which does not check the HMAC,
/// and carpd rejects it) each leave their record with the source while on, and none while
/// off, before and after; an ARP request for the virtual address leaves the program's
/// answer with the state that decided it. The records reach the journal (carpd's log) and
/// `carpctl monitor`, the carpdev named.
#[test]
fn decision_records_follow_the_debug_switch() {
    use carp_tests::frames::{CarpFields, advert_v4, arp_request};
    let Some(lab) = lab("e2e_xdp_log", 1) else {
        return;
    };
    let host = lab.host(0);
    let r1 = Router::start(&lab, host, &hostname_carp0(host, T1), &[]);
    r1.wait_state("MASTER", Duration::from_secs(10));
    let client = lab.client();
    let (mac, src) = (client.mac(), client.addr4());
    let bad_ttl = advert_v4(mac, src, 64, &CarpFields::advert(1).encode());
    let bad_auth = advert_v4(mac, src, 255, &CarpFields::advert(1).encode());
    let monitor = start_monitor(&r1, false);
    // Both counted `n` times: the program and carpd have decided on each copy.
    let counted = |n: u64| {
        wait_until(Duration::from_secs(5), || {
            let json = r1.carpctl(&["--json", "stats"]).stdout;
            let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
            v["carp"]["carps_badttl"] == n && v["carp"]["carps_badauth"] == n
        })
        .unwrap_or_else(|_| panic!("not counted {n} times: {}", ok(r1.carpctl(&["stats"]))));
    };
    let ttl_line = format!(
        "advert dropped: src={src} vhid=1 carpdev={} reason=bad_ttl",
        host.ifname()
    );
    let auth_line = format!(
        "advert rejected by carpd: badauth src={src} vhid=1 carpdev={}",
        host.ifname()
    );
    let arp_line = format!(
        "arp answered: target={VIP4} carpdev={} state=MASTER",
        host.ifname()
    );

    // Off (the default).
    inject(&lab, vec![bad_ttl.clone(), bad_auth.clone()], 1);
    counted(1);

    ok(r1.carpctl(&["debug", "xdp", "on"]));
    inject(&lab, vec![bad_ttl.clone(), bad_auth.clone()], 1);
    counted(2);
    inject(&lab, vec![arp_request(mac, src, VIP4)], 1);
    wait_until(Duration::from_secs(5), || {
        let log = r1.log();
        lines_with(&log, &ttl_line) >= 1
            && lines_with(&log, &auth_line) >= 1
            && lines_with(&log, &arp_line) >= 1
    })
    .unwrap_or_else(|_| {
        panic!(
            "records missing while on ({ttl_line:?}, {auth_line:?}, {arp_line:?}):\n{}",
            r1.log()
        )
    });
    wait_until(Duration::from_secs(5), || {
        lines_with(&monitor.log(), &format!("xdp: {ttl_line}")) == 1
    })
    .unwrap_or_else(|_| panic!("the monitor missed the record:\n{}", monitor.log()));

    ok(r1.carpctl(&["debug", "xdp", "off"]));
    inject(&lab, vec![bad_ttl, bad_auth], 1);
    counted(3);
    // An ARP answered while off is followed by one line while on again: whatever the off
    // phases wrote would stand before it.
    inject(&lab, vec![arp_request(mac, src, VIP4)], 1);
    ok(r1.carpctl(&["debug", "xdp", "on"]));
    inject(&lab, vec![arp_request(mac, src, VIP4)], 1);
    wait_until(Duration::from_secs(5), || {
        lines_with(&r1.log(), &arp_line) == 2
    })
    .unwrap_or_else(|_| panic!("no record after switching on again:\n{}", r1.log()));
    let log = r1.log();
    assert_eq!(lines_with(&log, &ttl_line), 1, "records while off:\n{log}");
    assert_eq!(lines_with(&log, &auth_line), 1, "records while off:\n{log}");
    assert_eq!(lines_with(&log, &arp_line), 2, "records while off:\n{log}");
    // carpd reports the rejection to the monitor whether or not the records are on.
    let rejected = format!("carp0: vhid 1: advert from {src} rejected: badauth");
    wait_until(Duration::from_secs(5), || {
        lines_with(&monitor.log(), &rejected) == 3
    })
    .unwrap_or_else(|_| panic!("{}", monitor.log()));
}

/// A flood while the records are on: the program writes at most 20 records per CPU and
/// second, then one line says how many it suppressed; the journal gets no flood.
#[test]
fn decision_records_are_rate_limited_in_the_program() {
    use carp_tests::frames::{CarpFields, advert_v4};
    let Some(lab) = lab("e2e_xdp_log_rate", 1) else {
        return;
    };
    let host = lab.host(0);
    let r1 = Router::start(&lab, host, &hostname_carp0(host, T1), &[]);
    r1.wait_state("MASTER", Duration::from_secs(10));
    let client = lab.client();
    let bad_ttl = advert_v4(
        client.mac(),
        client.addr4(),
        64,
        &CarpFields::advert(1).encode(),
    );
    ok(r1.carpctl(&["debug", "xdp", "on"]));
    const FLOOD: u64 = 2000;
    inject(&lab, vec![bad_ttl.clone()], FLOOD as usize);
    wait_until(Duration::from_secs(10), || {
        let json = r1.carpctl(&["--json", "stats"]).stdout;
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        v["carp"]["carps_badttl"] == FLOOD
    })
    .unwrap_or_else(|_| panic!("flood not counted: {}", ok(r1.carpctl(&["stats"]))));
    // Once a new window has begun, the next record is preceded by the count of the
    // suppressed ones.
    wait_until(Duration::from_secs(10), || {
        inject(&lab, vec![bad_ttl.clone()], 1);
        r1.log().contains("records suppressed by the rate limit")
    })
    .unwrap_or_else(|_| panic!("no line about suppressed records:\n{}", r1.log()));
    let log = r1.log();
    let written = lines_with(&log, "reason=bad_ttl") as u64;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    // The flood's windows, and the frames injected while waiting for the next window.
    assert!(
        written <= 20 * cpus * 3 + 20,
        "{written} records of a {FLOOD}-frame flood:\n{log}"
    );
    // "N records suppressed by the rate limit (...)": N > 0 (a CPU that sees no frame after
    // its window never reports its count, so the sum need not reach the flood).
    let suppressed: u64 = log
        .lines()
        .filter_map(|l| {
            l.split(" records suppressed by the rate limit")
                .next()
                .filter(|_| l.contains("records suppressed"))
        })
        .filter_map(|before| before.split_whitespace().last()?.parse::<u64>().ok())
        .sum();
    assert!(suppressed > 0, "{log}");
}

/// The records in native mode too (the mode decides nothing about them, but the program
/// runs in the driver's context there): a wrong-TTL advert's record while on.
#[test]
fn decision_records_in_native_mode() {
    use carp_tests::frames::{CarpFields, advert_v4};
    let Some(lab) = lab("e2e_xdp_log_native", 1) else {
        return;
    };
    let host = lab.host(0);
    let r1 = Router::start(
        &lab,
        host,
        &hostname_carp0(host, T1),
        &["--xdp-mode", "native"],
    );
    r1.wait_state("MASTER", Duration::from_secs(10));
    assert!(r1.log().contains("mode=native"), "{}", r1.log());
    let client = lab.client();
    let src = client.addr4();
    ok(r1.carpctl(&["debug", "xdp", "on"]));
    inject(
        &lab,
        vec![advert_v4(
            client.mac(),
            src,
            1,
            &CarpFields::advert(1).encode(),
        )],
        1,
    );
    let line = format!(
        "advert dropped: src={src} vhid=1 carpdev={} reason=bad_ttl",
        host.ifname()
    );
    wait_until(Duration::from_secs(5), || r1.log().contains(&line))
        .unwrap_or_else(|_| panic!("no record in native mode:\n{}", r1.log()));
}

/// Requests that the metrics endpoint answers without the event loop (404) keep carpd's
/// runtime thread at work while the loop has nothing to do. The advert pacer must not take
/// that for a hung loop (it asks the loop to go round first): the master keeps
/// advertising, the backup never takes over.
#[test]
fn a_flood_on_the_metrics_port_does_not_stop_the_masters_adverts() {
    let Some(lab) = lab("e2e_metrics_flood", 2) else {
        return;
    };
    let (r1, r2) = master_and_backup(&lab, T1, T2, &["--metrics", METRICS]);
    let changes = (r1.state_changes(), r2.state_changes());
    let sent = r1.adverts_sent();
    let flood = Duration::from_secs(6);
    let answered: usize = std::thread::scope(|s| {
        let floods: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    lab.host(0)
                        .in_netns(|| {
                            let addr: SocketAddr = METRICS.parse().unwrap();
                            let end = std::time::Instant::now() + flood;
                            let mut answered = 0;
                            while std::time::Instant::now() < end {
                                let Ok(mut s) =
                                    TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                                else {
                                    continue;
                                };
                                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                                let _ = s.write_all(b"GET /nope HTTP/1.1\r\nHost: carpd\r\n\r\n");
                                let mut head = [0u8; 12];
                                if s.read_exact(&mut head).is_ok() && &head[9..12] == b"404" {
                                    answered += 1;
                                }
                            }
                            answered
                        })
                        .unwrap()
                })
            })
            .collect();
        floods.into_iter().map(|f| f.join().unwrap()).sum()
    });
    assert!(answered > 100, "the flood got {answered} answers");
    assert_eq!(
        (r1.state_changes(), r2.state_changes()),
        changes,
        "a state changed under {answered} requests:\n--- r1 ---\n{}\n--- r2 ---\n{}",
        r1.log(),
        r2.log()
    );
    // The master sent an advert every interval meanwhile (a quarter spared for timing).
    let expected = (flood.as_secs_f64() / T1.interval().as_secs_f64() * 0.75) as u64;
    let got = r1.adverts_sent() - sent;
    assert!(
        got >= expected,
        "{got} adverts in {flood:?}, expected {expected}"
    );
}
