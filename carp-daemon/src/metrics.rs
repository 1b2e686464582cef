//! The optional Prometheus endpoint (`--metrics ADDR`, or `daemon.metrics` in TOML): per-vhid
//! state, transitions, adverts sent and received, every drop reason (protocol and
//! dataplane), and the group demote counters, in the text exposition format on
//! `GET /metrics`. The daemon renders a snapshot on each scrape; the HTTP side is a minimal
//! server on tokio (one request per connection, bounded header size, 5 s timeout), so a
//! scraper can never stall the election.
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// One vhid's figures.
#[derive(Debug, Clone, Default)]
pub struct VhidMetrics {
    pub interface: String,
    pub carpdev: String,
    pub vhid: u8,
    /// 0 INIT, 1 BACKUP, 2 MASTER.
    pub state: u8,
    pub demote: u8,
    pub transitions: u64,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub send_errors: u64,
}

/// One VRRPv3 router's figures, apart from the CARP vhids'.
#[derive(Debug, Clone, Default)]
pub struct VrrpMetrics {
    pub interface: String,
    pub carpdev: String,
    pub vrid: u8,
    /// 4 or 6.
    pub family: u8,
    /// 0 INIT, 1 BACKUP, 2 MASTER.
    pub state: u8,
    pub priority: u8,
    pub transitions: u64,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub send_errors: u64,
}

/// Everything one scrape shows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// VRRPv3 routers (`vrrp_*` families).
    pub vrrp: Vec<VrrpMetrics>,
    /// The XDP program's VRRP counters by name.
    pub vrrp_dataplane: Vec<(&'static str, u64)>,
    pub vhids: Vec<VhidMetrics>,
    /// Protocol rejects by reason name.
    pub rejects: Vec<(String, u64)>,
    /// Dataplane counters by name ([`crate::dataplane::counter_list`]).
    pub dataplane: Vec<(&'static str, u64)>,
    pub groups: Vec<(String, u8)>,
    /// Health checks.
    pub checks: Vec<crate::checks::CheckStatus>,
}

/// Prometheus text format of a snapshot.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(
        "carp_vhid_state",
        "gauge",
        "Election state: 0 INIT, 1 BACKUP, 2 MASTER.",
    );
    family(
        "carp_vhid_demote",
        "gauge",
        "Demote count the vhid advertises.",
    );
    family("carp_vhid_transitions_total", "counter", "State changes.");
    family(
        "carp_vhid_adverts_sent_total",
        "counter",
        "Advertisement packets sent.",
    );
    family(
        "carp_vhid_adverts_received_total",
        "counter",
        "Advertisements received for the vhid.",
    );
    family(
        "carp_vhid_send_errors_total",
        "counter",
        "Advertisement packets that failed to send.",
    );
    family(
        "carp_rejects_total",
        "counter",
        "Received advertisements rejected by carpd, by reason.",
    );
    family(
        "carp_dataplane_total",
        "counter",
        "XDP dataplane verdicts, by counter.",
    );
    family(
        "carp_group_demote",
        "gauge",
        "Demote counter of an interface group.",
    );
    family(
        "carp_check_up",
        "gauge",
        "Health check state: 1 up (or no result yet), 0 down.",
    );
    family(
        "carp_check_demote",
        "gauge",
        "Demotion a health check holds on its group.",
    );
    family(
        "carp_check_consecutive_failures",
        "gauge",
        "Failures in a row of a health check.",
    );
    family("carp_check_runs_total", "counter", "Health check runs.");
    family(
        "carp_check_transitions_total",
        "counter",
        "Health check up/down changes.",
    );
    for v in &s.vhids {
        let labels = format!(
            "interface=\"{}\",carpdev=\"{}\",vhid=\"{}\"",
            v.interface, v.carpdev, v.vhid
        );
        let _ = writeln!(out, "carp_vhid_state{{{labels}}} {}", v.state);
        let _ = writeln!(out, "carp_vhid_demote{{{labels}}} {}", v.demote);
        let _ = writeln!(
            out,
            "carp_vhid_transitions_total{{{labels}}} {}",
            v.transitions
        );
        let _ = writeln!(
            out,
            "carp_vhid_adverts_sent_total{{{labels}}} {}",
            v.adverts_sent
        );
        let _ = writeln!(
            out,
            "carp_vhid_adverts_received_total{{{labels}}} {}",
            v.adverts_received
        );
        let _ = writeln!(
            out,
            "carp_vhid_send_errors_total{{{labels}}} {}",
            v.send_errors
        );
    }
    for (reason, n) in &s.rejects {
        let _ = writeln!(out, "carp_rejects_total{{reason=\"{reason}\"}} {n}");
    }
    for (counter, n) in &s.dataplane {
        let _ = writeln!(out, "carp_dataplane_total{{counter=\"{counter}\"}} {n}");
    }
    for (group, n) in &s.groups {
        let _ = writeln!(out, "carp_group_demote{{group=\"{group}\"}} {n}");
    }
    render_vrrp(s, &mut out);
    for c in &s.checks {
        // Check and group names have no spaces but may hold any other character.
        let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let labels = format!(
            "check=\"{}\",group=\"{}\"",
            escape(&c.name),
            escape(&c.group)
        );
        let up = u8::from(c.state != "down");
        let _ = writeln!(out, "carp_check_up{{{labels}}} {up}");
        let _ = writeln!(out, "carp_check_demote{{{labels}}} {}", c.held);
        let _ = writeln!(
            out,
            "carp_check_consecutive_failures{{{labels}}} {}",
            c.failures
        );
        let _ = writeln!(out, "carp_check_runs_total{{{labels}}} {}", c.runs);
        let _ = writeln!(
            out,
            "carp_check_transitions_total{{{labels}}} {}",
            c.transitions
        );
    }
    out
}

/// The `vrrp_*` families: VRRPv3 routers and the dataplane's VRRP counters.
fn render_vrrp(s: &Snapshot, out: &mut String) {
    if s.vrrp.is_empty() {
        return;
    }
    let families: [(&str, &str, &str); 7] = [
        (
            "vrrp_router_state",
            "gauge",
            "VRRP state: 0 INIT, 1 BACKUP, 2 MASTER.",
        ),
        ("vrrp_router_priority", "gauge", "Configured VRRP priority."),
        (
            "vrrp_router_transitions_total",
            "counter",
            "VRRP state changes.",
        ),
        (
            "vrrp_router_adverts_sent_total",
            "counter",
            "VRRP adverts sent.",
        ),
        (
            "vrrp_router_adverts_received_total",
            "counter",
            "VRRP adverts received.",
        ),
        (
            "vrrp_router_send_errors_total",
            "counter",
            "VRRP adverts that failed to send.",
        ),
        (
            "vrrp_dataplane_total",
            "counter",
            "XDP dataplane VRRP verdicts, by counter.",
        ),
    ];
    for (name, kind, help) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    for v in &s.vrrp {
        let labels = format!(
            "interface=\"{}\",carpdev=\"{}\",vrid=\"{}\",family=\"ipv{}\"",
            v.interface, v.carpdev, v.vrid, v.family
        );
        for (name, value) in [
            ("vrrp_router_state", u64::from(v.state)),
            ("vrrp_router_priority", u64::from(v.priority)),
            ("vrrp_router_transitions_total", v.transitions),
            ("vrrp_router_adverts_sent_total", v.adverts_sent),
            ("vrrp_router_adverts_received_total", v.adverts_received),
            ("vrrp_router_send_errors_total", v.send_errors),
        ] {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
    for (counter, n) in &s.vrrp_dataplane {
        let _ = writeln!(out, "vrrp_dataplane_total{{counter=\"{counter}\"}} {n}");
    }
}

/// A scrape request: the daemon answers with a snapshot.
pub type ScrapeRequest = oneshot::Sender<Snapshot>;

/// Serves `GET /metrics` on `listener`, asking the daemon for a snapshot per scrape.
pub async fn serve(listener: TcpListener, daemon: mpsc::Sender<ScrapeRequest>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                let mut buf = vec![0u8; 4096];
                let mut len = 0;
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    if len == buf.len() {
                        return;
                    }
                    match conn.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                }
                let request = String::from_utf8_lossy(&buf[..len]);
                let response = if request.starts_with("GET /metrics ") {
                    let (tx, rx) = oneshot::channel();
                    if daemon.send(tx).await.is_err() {
                        return;
                    }
                    let Ok(snapshot) = rx.await else { return };
                    let body = render(&snapshot);
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
                };
                let _ = conn.write_all(response.as_bytes()).await;
            })
            .await;
        });
    }
}

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            vrrp: Vec::new(),
            vrrp_dataplane: Vec::new(),
            vhids: vec![VhidMetrics {
                interface: "carp0".into(),
                carpdev: "eth0".into(),
                vhid: 1,
                state: 2,
                demote: 0,
                transitions: 2,
                adverts_sent: 10,
                adverts_received: 3,
                send_errors: 0,
            }],
            rejects: vec![("bad_auth".into(), 4)],
            dataplane: vec![("arp_replied", 9)],
            groups: vec![("carp".into(), 0)],
            checks: vec![crate::checks::CheckStatus {
                name: "web\"1".into(),
                kind: "http".into(),
                group: "carp".into(),
                state: "down".into(),
                last_result: Some("failure".into()),
                reason: Some("HTTP 503".into()),
                successes: 0,
                failures: 3,
                rise: 2,
                fall: 3,
                weight: 50,
                held: 50,
                runs: 7,
                transitions: 1,
            }],
        }
    }

    #[test]
    fn renders_every_family() {
        let text = render(&snapshot());
        assert!(
            text.contains("carp_vhid_state{interface=\"carp0\",carpdev=\"eth0\",vhid=\"1\"} 2\n")
        );
        assert!(text.contains("carp_rejects_total{reason=\"bad_auth\"} 4\n"));
        assert!(text.contains("carp_dataplane_total{counter=\"arp_replied\"} 9\n"));
        assert!(text.contains("carp_group_demote{group=\"carp\"} 0\n"));
        assert!(text.contains("# TYPE carp_vhid_transitions_total counter\n"));
        let check = "check=\"web\\\"1\",group=\"carp\"";
        assert!(
            text.contains(&format!("carp_check_up{{{check}}} 0\n")),
            "{text}"
        );
        assert!(text.contains(&format!("carp_check_demote{{{check}}} 50\n")));
        assert!(text.contains(&format!("carp_check_runs_total{{{check}}} 7\n")));
    }

    #[test]
    fn vrrp_routers_are_their_own_families() {
        assert!(!render(&snapshot()).contains("vrrp_"));
        let s = Snapshot {
            vrrp: vec![VrrpMetrics {
                interface: "vrrp1".into(),
                carpdev: "eth0".into(),
                vrid: 7,
                family: 6,
                state: 1,
                priority: 100,
                adverts_received: 5,
                ..Default::default()
            }],
            vrrp_dataplane: vec![("vrrp_bad_checksum", 2)],
            ..snapshot()
        };
        let text = render(&s);
        let labels = "interface=\"vrrp1\",carpdev=\"eth0\",vrid=\"7\",family=\"ipv6\"";
        assert!(
            text.contains(&format!("vrrp_router_state{{{labels}}} 1\n")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "vrrp_router_adverts_received_total{{{labels}}} 5\n"
        )));
        assert!(text.contains("vrrp_dataplane_total{counter=\"vrrp_bad_checksum\"} 2\n"));
        assert!(text.contains("# TYPE vrrp_router_state gauge\n"));
    }

    #[tokio::test]
    async fn serves_a_scrape() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel::<ScrapeRequest>(4);
        tokio::spawn(serve(listener, tx));
        tokio::spawn(async move {
            while let Some(reply) = rx.recv().await {
                let _ = reply.send(snapshot());
            }
        });
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        conn.read_to_string(&mut body).await.unwrap();
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        assert!(body.contains(
            "carp_vhid_adverts_sent_total{interface=\"carp0\",carpdev=\"eth0\",vhid=\"1\"} 10"
        ));
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut body = String::new();
        conn.read_to_string(&mut body).await.unwrap();
        assert!(body.starts_with("HTTP/1.1 404"));
    }
}
