//! The optional Prometheus endpoint (`--metrics ADDR`, or `daemon.metrics` in TOML): per-vhid
//! state, transitions, adverts sent and received, every drop reason (protocol and
//! dataplane), the group demote counters and the health checks, on `GET /metrics`.
//!
//! The daemon hands over a [`Snapshot`] per scrape; [`render`] turns it into the exposition
//! with the Prometheus client library (prometheus-client, OpenMetrics text), and [`serve`]
//! answers HTTP with hyper: at most [`Limits::connections`] connections at a time (others
//! are closed at once), each closed after one response or after [`Limits::timeout`], so a
//! scraper can never stall the election.
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::debug;

/// The media type of what [`render`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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
    /// Of `adverts_sent`, those the advert pacer's standby thread sent.
    pub adverts_by_standby: u64,
    pub send_errors: u64,
    /// Master-down timers that fired late (this host stood still) and waited once for
    /// adverts held up by the same stall.
    pub master_down_postponed: u64,
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
    /// As [`VhidMetrics::master_down_postponed`].
    pub master_down_postponed: u64,
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

/// A label value as the text format wants it: prometheus-client writes label values as
/// they are, and check or group names may hold `"` or `\`.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Text(String);

impl EncodeLabelValue for Text {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VhidLabels {
    interface: Text,
    carpdev: Text,
    vhid: u8,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: Text,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CounterLabels {
    counter: Text,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: Text,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    check: Text,
    group: Text,
}

/// Registers a family under `name` (a counter's samples get `_total` appended by the
/// library, and the help text a full stop) and fills it with one value per label set.
fn family<L, M>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (L, M::Value)>,
) where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
    M: Settable + Default + prometheus_client::metrics::TypedMetric,
    M: prometheus_client::encoding::EncodeMetric + std::fmt::Debug + Send + Sync + 'static,
{
    let family = Family::<L, M>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).put(value);
    }
    registry.register(name, help, family);
}

/// Gauges and counters set from a snapshot's figures.
trait Settable {
    type Value;
    fn put(&self, value: Self::Value);
}

impl Settable for Gauge {
    type Value = i64;
    fn put(&self, value: i64) {
        self.set(value);
    }
}

impl Settable for Counter {
    type Value = u64;
    fn put(&self, value: u64) {
        self.inc_by(value);
    }
}

/// The exposition (OpenMetrics text) of a snapshot.
pub fn render(s: &Snapshot) -> String {
    let mut r = Registry::default();
    let vhid = |v: &VhidMetrics| VhidLabels {
        interface: Text(v.interface.clone()),
        carpdev: Text(v.carpdev.clone()),
        vhid: v.vhid,
    };
    let per_vhid = |f: fn(&VhidMetrics) -> u64| s.vhids.iter().map(move |v| (vhid(v), f(v)));
    family::<_, Gauge>(
        &mut r,
        "carp_vhid_state",
        "Election state: 0 INIT, 1 BACKUP, 2 MASTER",
        s.vhids.iter().map(|v| (vhid(v), i64::from(v.state))),
    );
    family::<_, Gauge>(
        &mut r,
        "carp_vhid_demote",
        "Demote count the vhid advertises",
        s.vhids.iter().map(|v| (vhid(v), i64::from(v.demote))),
    );
    family::<_, Counter>(
        &mut r,
        "carp_vhid_transitions",
        "State changes",
        per_vhid(|v| v.transitions),
    );
    family::<_, Counter>(
        &mut r,
        "carp_vhid_adverts_sent",
        "Advertisement packets sent",
        per_vhid(|v| v.adverts_sent),
    );
    family::<_, Counter>(
        &mut r,
        "carp_vhid_adverts_received",
        "Advertisements received for the vhid",
        per_vhid(|v| v.adverts_received),
    );
    family::<_, Counter>(
        &mut r,
        "carp_vhid_adverts_by_standby",
        "Of the adverts sent, those the pacer's standby thread sent because the pacer's CPU \
         stood still",
        per_vhid(|v| v.adverts_by_standby),
    );
    family::<_, Counter>(
        &mut r,
        "carp_vhid_send_errors",
        "Advertisement packets that failed to send",
        per_vhid(|v| v.send_errors),
    );
    family::<_, Counter>(
        &mut r,
        "carp_vhid_master_down_postponed",
        "Master-down timers that fired late because this host stood still, and waited one \
         interval (at most 50 ms) for adverts held up by the same stall",
        per_vhid(|v| v.master_down_postponed),
    );
    family::<_, Counter>(
        &mut r,
        "carp_rejects",
        "Received advertisements rejected by carpd, by reason",
        s.rejects.iter().map(|(reason, n)| {
            (
                ReasonLabels {
                    reason: Text(reason.clone()),
                },
                *n,
            )
        }),
    );
    family::<_, Counter>(
        &mut r,
        "carp_dataplane",
        "XDP dataplane verdicts, by counter",
        s.dataplane.iter().map(|(counter, n)| {
            (
                CounterLabels {
                    counter: Text((*counter).to_owned()),
                },
                *n,
            )
        }),
    );
    family::<_, Gauge>(
        &mut r,
        "carp_group_demote",
        "Demote counter of an interface group",
        s.groups.iter().map(|(group, n)| {
            (
                GroupLabels {
                    group: Text(group.clone()),
                },
                i64::from(*n),
            )
        }),
    );
    let check = |c: &crate::checks::CheckStatus| CheckLabels {
        check: Text(c.name.clone()),
        group: Text(c.group.clone()),
    };
    family::<_, Gauge>(
        &mut r,
        "carp_check_up",
        "Health check state: 1 up (or no result yet), 0 down",
        s.checks
            .iter()
            .map(|c| (check(c), i64::from(c.state != "down"))),
    );
    family::<_, Gauge>(
        &mut r,
        "carp_check_demote",
        "Demotion a health check holds on its group",
        s.checks.iter().map(|c| (check(c), i64::from(c.held))),
    );
    family::<_, Gauge>(
        &mut r,
        "carp_check_consecutive_failures",
        "Failures in a row of a health check",
        s.checks.iter().map(|c| (check(c), i64::from(c.failures))),
    );
    family::<_, Counter>(
        &mut r,
        "carp_check_runs",
        "Health check runs",
        s.checks.iter().map(|c| (check(c), c.runs)),
    );
    family::<_, Counter>(
        &mut r,
        "carp_check_transitions",
        "Health check up/down changes",
        s.checks.iter().map(|c| (check(c), c.transitions)),
    );
    register_vrrp(s, &mut r);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &r).expect("writing to a String");
    out
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VrrpLabels {
    interface: Text,
    carpdev: Text,
    vrid: u8,
    family: Text,
}

/// The `vrrp_*` families: VRRPv3 routers and the dataplane's VRRP counters, only when some
/// router is configured (a CARP-only exposition stays as it was).
fn register_vrrp(s: &Snapshot, r: &mut Registry) {
    if s.vrrp.is_empty() {
        return;
    }
    let router = |v: &VrrpMetrics| VrrpLabels {
        interface: Text(v.interface.clone()),
        carpdev: Text(v.carpdev.clone()),
        vrid: v.vrid,
        family: Text(format!("ipv{}", v.family)),
    };
    let per_router = |f: fn(&VrrpMetrics) -> u64| s.vrrp.iter().map(move |v| (router(v), f(v)));
    family::<_, Gauge>(
        r,
        "vrrp_router_state",
        "VRRP state: 0 INIT, 1 BACKUP, 2 MASTER",
        s.vrrp.iter().map(|v| (router(v), i64::from(v.state))),
    );
    family::<_, Gauge>(
        r,
        "vrrp_router_priority",
        "Configured VRRP priority",
        s.vrrp.iter().map(|v| (router(v), i64::from(v.priority))),
    );
    family::<_, Counter>(
        r,
        "vrrp_router_transitions",
        "VRRP state changes",
        per_router(|v| v.transitions),
    );
    family::<_, Counter>(
        r,
        "vrrp_router_adverts_sent",
        "VRRP adverts sent",
        per_router(|v| v.adverts_sent),
    );
    family::<_, Counter>(
        r,
        "vrrp_router_adverts_received",
        "VRRP adverts received",
        per_router(|v| v.adverts_received),
    );
    family::<_, Counter>(
        r,
        "vrrp_router_send_errors",
        "VRRP adverts that failed to send",
        per_router(|v| v.send_errors),
    );
    family::<_, Counter>(
        r,
        "vrrp_router_master_down_postponed",
        "Master-down timers that fired late because this host stood still, and waited one \
         interval (at most 50 ms) for adverts held up by the same stall",
        per_router(|v| v.master_down_postponed),
    );
    family::<_, Counter>(
        r,
        "vrrp_dataplane",
        "XDP dataplane VRRP verdicts, by counter",
        s.vrrp_dataplane.iter().map(|(counter, n)| {
            (
                CounterLabels {
                    counter: Text((*counter).to_owned()),
                },
                *n,
            )
        }),
    );
}

/// The metric names of an exposition's samples (`carp_vhid_transitions_total`, not the
/// family name of its `# TYPE` line): what a dashboard's queries name.
pub fn metric_names(exposition: &str) -> std::collections::BTreeSet<&str> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect()
}

/// A scrape request: the daemon answers with a snapshot.
pub type ScrapeRequest = oneshot::Sender<Snapshot>;

/// What one scraper may hold of carpd.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; one more is closed without an answer.
    pub connections: usize,
    /// From accept to the end of the response (headers included); then the connection is
    /// closed.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 8,
            timeout: Duration::from_secs(5),
        }
    }
}

/// hyper's smallest read buffer: bounds a request's headers.
const MAX_REQUEST_BYTES: usize = 8192;

/// Serves `GET /metrics` on `listener`, asking the daemon for a snapshot per scrape.
pub async fn serve(listener: TcpListener, daemon: mpsc::Sender<ScrapeRequest>, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.connections));
    loop {
        let conn = match listener.accept().await {
            Ok((conn, _)) => conn,
            Err(err) => {
                // Out of descriptors, most likely: let some connections end first.
                debug!(error = %err, "metrics accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(
                limit = limits.connections,
                "metrics connection refused: at the limit"
            );
            continue;
        };
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, daemon.clone()));
            let http = http1::Builder::new()
                .keep_alive(false)
                .timer(TokioTimer::new())
                .header_read_timeout(limits.timeout)
                .max_buf_size(MAX_REQUEST_BYTES)
                .serve_connection(TokioIo::new(conn), service);
            let _ = tokio::time::timeout(limits.timeout, http).await;
            drop(slot);
        });
    }
}

/// One request's response.
async fn answer(
    req: Request<Incoming>,
    daemon: mpsc::Sender<ScrapeRequest>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = |code: StatusCode| {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = code;
        Ok(response)
    };
    if req.uri().path() != "/metrics" {
        return status(StatusCode::NOT_FOUND);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let (tx, rx) = oneshot::channel();
    if daemon.send(tx).await.is_err() {
        return status(StatusCode::SERVICE_UNAVAILABLE);
    }
    let Ok(snapshot) = rx.await else {
        return status(StatusCode::SERVICE_UNAVAILABLE);
    };
    let mut response = Response::new(Full::new(Bytes::from(render(&snapshot))));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(CONTENT_TYPE),
    );
    Ok(response)
}

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
                adverts_by_standby: 1,
                send_errors: 0,
                master_down_postponed: 1,
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
        assert!(text.contains("# TYPE carp_vhid_transitions counter\n"));
        assert!(text.contains(
            "carp_vhid_transitions_total{interface=\"carp0\",carpdev=\"eth0\",vhid=\"1\"} 2\n"
        ));
        let check = "check=\"web\\\"1\",group=\"carp\"";
        assert!(
            text.contains(&format!("carp_check_up{{{check}}} 0\n")),
            "{text}"
        );
        assert!(text.contains(&format!("carp_check_demote{{{check}}} 50\n")));
        assert!(text.contains(&format!("carp_check_runs_total{{{check}}} 7\n")));
        assert!(text.ends_with("# EOF\n"), "{text}");
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

    /// Every family's samples, as [`metric_names`] reads them.
    #[test]
    fn names_every_sample() {
        let text = render(&snapshot());
        let names = metric_names(&text);
        for name in [
            "carp_vhid_state",
            "carp_vhid_demote",
            "carp_vhid_transitions_total",
            "carp_vhid_adverts_sent_total",
            "carp_vhid_adverts_received_total",
            "carp_vhid_adverts_by_standby_total",
            "carp_vhid_master_down_postponed_total",
            "carp_vhid_send_errors_total",
            "carp_rejects_total",
            "carp_dataplane_total",
            "carp_group_demote",
            "carp_check_up",
            "carp_check_demote",
            "carp_check_consecutive_failures",
            "carp_check_runs_total",
            "carp_check_transitions_total",
        ] {
            assert!(names.contains(name), "{name} missing from {names:?}");
        }
        assert!(!names.contains("EOF"));
    }

    async fn serve_snapshots(limits: Limits) -> SocketAddr {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel::<ScrapeRequest>(4);
        tokio::spawn(serve(listener, tx, limits));
        tokio::spawn(async move {
            while let Some(reply) = rx.recv().await {
                let _ = reply.send(snapshot());
            }
        });
        addr
    }

    async fn get(addr: SocketAddr, request: &[u8]) -> String {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(request).await.unwrap();
        let mut body = String::new();
        conn.read_to_string(&mut body).await.unwrap();
        body
    }

    #[tokio::test]
    async fn serves_a_scrape() {
        let addr = serve_snapshots(Limits::default()).await;
        // HTTP/1.1 without `Connection: close`: the server still closes after answering.
        let body = get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        assert!(
            body.to_ascii_lowercase()
                .contains(&format!("content-type: {CONTENT_TYPE}")),
            "{body}"
        );
        assert!(body.contains(
            "carp_vhid_adverts_sent_total{interface=\"carp0\",carpdev=\"eth0\",vhid=\"1\"} 10"
        ));
        let body = get(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(body.starts_with("HTTP/1.1 404"), "{body}");
        let body = get(addr, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(body.starts_with("HTTP/1.1 405"), "{body}");
    }

    /// Idle connections take the slots; one more is closed unanswered; a slot frees when
    /// an idle connection times out, and a scrape is answered again.
    #[tokio::test]
    async fn caps_connections_and_times_out_idle_ones() {
        let limits = Limits {
            connections: 2,
            timeout: Duration::from_millis(500),
        };
        let addr = serve_snapshots(limits).await;
        let mut idle = Vec::new();
        for _ in 0..limits.connections {
            let conn = tokio::net::TcpStream::connect(addr).await.unwrap();
            idle.push(conn);
        }
        // The listener accepts in order: the extra connection is refused once the idle
        // ones hold both slots, so it reads end-of-stream without a response.
        let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = extra
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let mut answer = Vec::new();
        // End of stream, or a reset when the request was still unread at the close.
        let _ = extra.read_to_end(&mut answer).await;
        assert!(
            answer.is_empty(),
            "a connection over the limit was answered"
        );
        // The idle ones are closed by the server after the timeout.
        for mut conn in idle {
            let mut rest = Vec::new();
            let read = tokio::time::timeout(limits.timeout * 4, conn.read_to_end(&mut rest)).await;
            assert!(read.is_ok(), "an idle connection outlived the timeout");
        }
        let body = get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    }
}
