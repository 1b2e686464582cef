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

/// `carpctl monitor` on the backup sees it take over when the master stops, and ends on
/// its own (exit 0, `stopped` last) when its carpd stops.
#[test]
fn monitor_follows_a_failover_and_ends_with_carpd() {
    let Some(lab) = lab("e2e_monitor", 2) else {
        return;
    };
    let (r1, r2) = master_and_backup(&lab, T1, T2, &[]);
    let monitor = r2
        .host
        .spawn([
            carpctl_bin(),
            "--state-dir",
            r2.dir.to_str().unwrap(),
            "--json",
            "monitor",
        ])
        .expect("spawn carpctl monitor");
    // Subscribed once it reports a change made after it started: a group demotion on the
    // backup (which changes no election).
    let subscribed = || {
        monitor_events(&monitor)
            .iter()
            .any(|e| e["event"] == "group_demote" && e["group"] == "carp" && e["to"] == 1)
    };
    wait_until(Duration::from_secs(10), || {
        ok(r2.carpctl(&["-g", "carp", "carpdemote", "1"]));
        ok(r2.carpctl(&["-g", "carp", "-carpdemote", "1"]));
        subscribed()
    })
    .unwrap_or_else(|_| panic!("the monitor saw no demotion:\n{}", monitor.log()));

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
