//! What carpctl and carpd say to each other over the control socket.
//!
//! The socket is a Unix stream socket at `<state_dir>/carpd.sock` (default
//! `/run/carpd/carpd.sock`). Each message is one line of JSON: the client writes one
//! [`RequestEnvelope`] line, the daemon answers with exactly one [`ResponseEnvelope`] line, and
//! the client may send further requests on the same connection. JSON lines rather than a binary
//! framing so that an operator can talk to carpd with `socat` and a shell when carpctl is not at
//! hand, and so that the `--json` output of carpctl is the protocol's own data.
//!
//! Both envelopes carry [`PROTOCOL_VERSION`]; a daemon refuses a request of another version with
//! an [`Response::Error`] rather than guessing, because a misread `Apply` changes an election.
//!
//! The vocabulary is OpenBSD's ifconfig(8) for carp: [`Op`] is one word of
//! `ifconfig carpN ...` or `ifconfig -g GROUP ...`, with the same meaning. The daemon applies
//! an [`Request::Apply`] all or nothing: it checks every op first (including the demote range)
//! and changes nothing when one is refused, so a rejected command leaves no half-applied state.
//!
//! Example exchange:
//!
//! ```text
//! → {"version":1,"request":{"type":"apply","data":{"target":{"group":"carp"},"ops":[{"demote":128}]}}}
//! ← {"version":1,"response":{"type":"ok"}}
//! ```
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::proto::Passphrase;
pub use crate::values::ForcedState;
use crate::values::{self, ADVBASE, ADVSKEW, GroupNameError, PassphraseError, VHID};

/// Version of this protocol. Raise it whenever a message changes incompatibly.
pub const PROTOCOL_VERSION: u32 = 1;

/// Where carpd keeps its control socket unless told otherwise (`--state-dir`): carpd's
/// default state directory, so that carpctl finds it without being told.
pub use crate::config::DEFAULT_STATE_DIR;

/// File name of the control socket inside the state directory.
pub const SOCKET_NAME: &str = "carpd.sock";

/// Longest request line the daemon reads (bytes, without the newline). Requests are tiny; the cap
/// only keeps a broken or hostile client from making the daemon buffer without bound.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Longest response line the client reads. A status of every vhid (up to 1024) stays far below.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Path of the control socket in `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

/// One request line: the protocol version and the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEnvelope {
    pub version: u32,
    pub request: Request,
}

impl RequestEnvelope {
    /// Wraps `request` in the current protocol version.
    pub fn new(request: Request) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            request,
        }
    }
}

/// One response line: the protocol version and the response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseEnvelope {
    pub version: u32,
    pub response: Response,
}

impl ResponseEnvelope {
    /// Wraps `response` in the current protocol version.
    pub fn new(response: Response) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            response,
        }
    }
}

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Request {
    /// `carpctl` / `carpctl NAME`: the status of every carp interface, or of one.
    ///
    /// As in ifconfig, a name that does not end in a digit is first looked up as a group and
    /// answers with its members (`carpctl carp` lists every carp interface). Answer:
    /// [`Response::Interfaces`], or `Error { "NAME: no such interface" }` (ifconfig's wording).
    Status { interface: Option<String> },
    /// `carpctl -g GROUP`: the group's demote counter. Answer: [`Response::Group`], or
    /// `Error { "GROUP: no such group" }`.
    GroupStatus { group: String },
    /// `carpctl carpN WORD...` / `carpctl -g GROUP [-]carpdemote [N]`: change settings, all or
    /// nothing, in the order given. Answer: [`Response::Ok`] or [`Response::Error`].
    Apply { target: Target, ops: Vec<Op> },
    /// `carpctl stats`: protocol and dataplane counters. Answer: [`Response::Stats`].
    Stats,
    /// `carpctl checks`: every health check. Answer: [`Response::Checks`].
    Checks,
    /// `carpctl monitor`: a live stream. Answer: [`Response::Ok`], then one
    /// [`Response::Event`] per event until carpd stops (see [`super::monitor`]). Served by
    /// the control server itself, outside the cap on ordinary connections.
    Monitor,
    /// `carpctl debug xdp on|off`: the XDP program's decision records (into carpd's log and
    /// monitors), off at every start. Answer: [`Response::Ok`].
    DebugXdp { on: bool },
}

/// What an [`Request::Apply`] changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A carp interface (`ifconfig carp0 ...`).
    Interface(String),
    /// An interface group (`ifconfig -g GROUP ...`): only [`Op::Demote`] and [`Op::Promote`].
    Group(String),
}

/// One ifconfig word with its argument, already parsed and range-checked by the client (the
/// daemon checks again with [`Op::check`]: the socket may have other clients).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `group NAME`: join a group (a no-op when already a member, as EEXIST is in ifconfig).
    AddGroup(String),
    /// `-group NAME`: leave a group, [`values::CARP_GROUP`] included (OpenBSD allows it).
    RemoveGroup(String),
    /// `-g GROUP carpdemote [N]`: add N (default 1) to the group's demote counter.
    Demote(u8),
    /// `-g GROUP -carpdemote [N]`: subtract N (default 1).
    Promote(u8),
    /// `-g GROUP carpdemote [N] --persist`: add N to the counter and to the group's
    /// persisted demotion, applied again at every start.
    PersistDemote(u8),
    /// `-g GROUP -carpdemote [N] --persist`: subtract N from both.
    PersistPromote(u8),
    /// `advskew N` (0..=254).
    AdvSkew(u8),
    /// `advbase N` (0..=254 seconds; 0 is legal, see the spec's timers).
    AdvBase(u8),
    /// `vhid N` (1..=255).
    Vhid(u8),
    /// `pass PHRASE` (at most 19 bytes; empty means no passphrase).
    Pass(Passphrase),
    /// `state master|backup`: force the election state.
    State(ForcedState),
    /// `up`: set the interface administratively up.
    Up,
    /// `down`: take it down (a master sends the bow-out advert first).
    Down,
}

impl Op {
    /// The ifconfig word this op stands for, for messages.
    pub fn word(&self) -> &'static str {
        match self {
            Op::AddGroup(_) => "group",
            Op::RemoveGroup(_) => "-group",
            Op::Demote(_) => "carpdemote",
            Op::Promote(_) => "-carpdemote",
            Op::PersistDemote(_) => "carpdemote --persist",
            Op::PersistPromote(_) => "-carpdemote --persist",
            Op::AdvSkew(_) => "advskew",
            Op::AdvBase(_) => "advbase",
            Op::Vhid(_) => "vhid",
            Op::Pass(_) => "pass",
            Op::State(_) => "state",
            Op::Up => "up",
            Op::Down => "down",
        }
    }

    /// Checks what can be checked without the daemon's state: value ranges, name rules, and
    /// that the op applies to `target`'s kind. Messages use ifconfig's wording where it has one.
    /// State-dependent checks (the demote counter's range, membership) are the daemon's.
    pub fn check(&self, target: &Target) -> Result<(), String> {
        let for_group = matches!(
            self,
            Op::Demote(_) | Op::Promote(_) | Op::PersistDemote(_) | Op::PersistPromote(_)
        );
        match (target, for_group) {
            (Target::Group(g), false) => {
                return Err(format!(
                    "{g}: {}: only carpdemote and -carpdemote apply to a group",
                    self.word()
                ));
            }
            (Target::Interface(i), true) => {
                return Err(format!(
                    "{i}: {}: applies to a group (carpctl -g GROUP {} [N])",
                    self.word(),
                    self.word()
                ));
            }
            _ => {}
        }
        match self {
            Op::AddGroup(g) => check_group_name(g, "setifgroup"),
            Op::RemoveGroup(g) => check_group_name_to_leave(g),
            Op::Demote(_) | Op::Promote(_) | Op::PersistDemote(_) | Op::PersistPromote(_) => Ok(()),
            Op::AdvSkew(v) => check_number(ADVSKEW, *v),
            Op::AdvBase(v) => check_number(ADVBASE, *v),
            Op::Vhid(v) => check_number(VHID, *v),
            Op::Pass(p) => check_pass(p.expose()),
            Op::State(_) | Op::Up | Op::Down => Ok(()),
        }
    }
}

/// A value the wire type holds but the rule may not take (advskew 255, vhid 0), worded as
/// ifconfig's `strtonum()` failure: `advskew 255: too large`.
fn check_number(range: values::Range, v: u8) -> Result<(), String> {
    range
        .check(i128::from(v))
        .map(drop)
        .map_err(|e| format!("{} {v}: {e}", range.name))
}

/// `group NAME` by [`values::check_group_name`], worded as OpenBSD's ifconfig `setifgroup()`
/// words it; `context` prefixes the message the way its errx() does ("setifgroup").
pub fn check_group_name(name: &str, context: &str) -> Result<(), String> {
    values::check_group_name(name).map_err(|e| group_name_message(context, e))
}

/// `-group NAME` by [`values::check_group_name_to_leave`], as ifconfig's `unsetifgroup()`.
pub fn check_group_name_to_leave(name: &str) -> Result<(), String> {
    values::check_group_name_to_leave(name).map_err(|e| group_name_message("unsetifgroup", e))
}

/// ifconfig's words for a refused group name (the whitespace rule is carpd's own).
fn group_name_message(context: &str, e: GroupNameError) -> String {
    match e {
        GroupNameError::Empty => format!("{context}: group name empty"),
        GroupNameError::TooLong => format!("{context}: group name too long"),
        GroupNameError::EndsInDigit => format!("{context}: group names may not end in a digit"),
        GroupNameError::Whitespace => {
            format!("{context}: group name contains whitespace or a control character")
        }
    }
}

/// `pass PHRASE` by [`values::check_passphrase`]. OpenBSD silently keeps the first 19 bytes;
/// carpctl refuses longer ones instead, because a silently shortened key is a classic "why
/// don't my hosts agree" hunt.
pub fn check_pass(pass: &str) -> Result<(), String> {
    values::check_passphrase(pass).map_err(|e| match e {
        PassphraseError::TooLong { len } => format!(
            "pass: too long ({len} bytes, at most {})",
            values::PASSPHRASE_MAX
        ),
        PassphraseError::ContainsNul => "pass: contains a NUL byte".to_owned(),
    })
}

/// A vhid's election state, spelled as ifconfig's `carp:` line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CarpState {
    Init,
    Backup,
    Master,
}

impl CarpState {
    /// "INIT", "BACKUP" or "MASTER" (OpenBSD's CARP_STATES).
    pub fn as_str(self) -> &'static str {
        match self {
            CarpState::Init => "INIT",
            CarpState::Backup => "BACKUP",
            CarpState::Master => "MASTER",
        }
    }
}

/// What the daemon answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Response {
    /// Answer to [`Request::Status`], in interface order (by name).
    Interfaces(Vec<InterfaceStatus>),
    /// Answer to [`Request::GroupStatus`].
    Group {
        name: String,
        demote: u8,
        /// The part of it persisted across restarts (`carpdemote N --persist`).
        #[serde(default)]
        persisted: u8,
    },
    /// Answer to [`Request::Stats`] (boxed: it is ten times the size of the other answers).
    Stats(Box<StatsReport>),
    /// Answer to [`Request::Checks`], by check name.
    Checks(Vec<CheckStatus>),
    /// An [`Request::Apply`] was applied completely.
    Ok,
    /// One event of a [`Request::Monitor`] stream.
    Event(super::monitor::MonitorEvent),
    /// The request was refused or failed; nothing was changed. `message` is shown to the user
    /// after "carpctl: ", so it reads like ifconfig's errors ("carp9: no such interface").
    Error { message: String },
}

impl Response {
    /// An error response.
    pub fn error(message: impl Into<String>) -> Self {
        Response::Error {
            message: message.into(),
        }
    }
}

/// What `carpctl checks` shows of one health check.
pub use crate::checks::CheckStatus;

/// Everything `carpctl carpN` shows about one carp interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    /// Interface name (carp0, ...).
    pub name: String,
    pub state: CarpState,
    /// The interface the vhid runs on; `None` prints as "none", as ifconfig does.
    pub carpdev: Option<String>,
    /// 0 when no vhid is configured (ifconfig then prints no `carp:` line).
    pub vhid: u8,
    pub advbase: u8,
    pub advskew: u8,
    /// Unicast peers (OpenBSD `carppeer`), in configuration order; empty: adverts go to the
    /// multicast group. ifconfig prints one `carppeer ADDRESS` line each.
    #[serde(default)]
    pub peers: Vec<IpAddr>,
    /// What the interface advertises: the sum of its groups' demote counters, capped at 255.
    /// ifconfig does not print it (only `-g GROUP` shows a counter); `--json` and `-v` do.
    pub demote: u8,
    /// Group names, "carp" first, then in joining order.
    pub groups: Vec<String>,
    /// The interface's MAC, "00:00:5e:00:01:01" (lower-case hex, as OpenBSD's ether_ntoa).
    pub lladdr: String,
    pub addresses: Vec<InterfaceAddress>,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// IFF_RUNNING: the vhid is out of INIT (carpdev has link, the interface has addresses).
    pub running: bool,
    pub mtu: u32,
    pub ifindex: u32,
    /// The most recent state change, if any since carpd started.
    pub last_transition: Option<Transition>,
    /// A VRRPv3 interface (its `vhid` is the VRID): printed as FreeBSD's `vrrp:` line
    /// instead of `carp:`. Absent for CARP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrrp: Option<VrrpStatus>,
    /// OpenBSD's `balancing` mode of a balanced interface (`carpnodes`: "ip",
    /// "ip-stealth", "ip-unicast"); absent for a plain carp interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancing: Option<String>,
    /// The nodes of a balanced interface in vhid order, each its own election; empty for
    /// a plain one (`vhid`, `advskew` and `state` are then the interface's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeStatus>,
}

/// The VRRPv3 side of an interface (`carpctl carpN`, `--json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpStatus {
    pub priority: u8,
    /// Our Advertisement_Interval, centiseconds.
    pub advert_interval: u16,
    /// Master_Adver_Interval: the master's, as learnt from its adverts (ours until then).
    pub master_adver_interval: u16,
    pub preempt: bool,
    pub accept_mode: bool,
    /// "pseudo-header" or "message-only": the IPv4 checksum sent.
    pub checksum: String,
    /// Protocol counters of this router, apart from CARP's.
    pub adverts_received: u64,
    pub adverts_sent: u64,
    pub send_errors: u64,
    pub became_master: u64,
    pub resignations_received: u64,
}

/// One node of a balanced interface, as ifconfig's `state S vhid V advskew A` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub vhid: u8,
    pub advskew: u8,
    pub state: CarpState,
}

/// One address of a carp interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceAddress {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// IPv4 broadcast address; `None` for IPv6 and for "broadcast NONE".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<Ipv4Addr>,
}

impl InterfaceAddress {
    /// An address with the broadcast address OpenBSD derives when none is given
    /// (address | ~netmask); IPv6 has none.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Self {
        let broadcast = match addr {
            IpAddr::V4(a) => {
                let mask = ipv4_mask(prefix_len);
                Some(Ipv4Addr::from(u32::from(a) | !mask))
            }
            IpAddr::V6(_) => None,
        };
        Self {
            addr,
            prefix_len,
            broadcast,
        }
    }
}

/// The IPv4 netmask of a prefix length, host order (prefix lengths above 32 count as 32).
pub fn ipv4_mask(prefix_len: u8) -> u32 {
    match prefix_len {
        0 => 0,
        n if n >= 32 => u32::MAX,
        n => u32::MAX << (32 - u32::from(n)),
    }
}

/// A MAC address as ifconfig prints it: "00:00:5e:00:01:01".
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// The last state change of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Why, in words: "BACKUP -> MASTER: master down timer expired".
    pub reason: String,
    /// How long ago, in whole seconds (relative, so the client needs no clock agreement).
    pub seconds_ago: u64,
}

/// `carpctl stats`: the protocol counters and the dataplane's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReport {
    pub carp: CarpStats,
    /// Adverts dropped because they carried this host's own counter ("replay or network loop
    /// detected" in OpenBSD, which logs it but has no counter for it).
    pub loops_detected: u64,
    /// The XDP program's counters, summed over CPUs; `None` when no dataplane is attached.
    pub dataplane: Option<DataplaneStats>,
    /// State changes a busy hook never saw: a later change of the same interface replaced
    /// them while they waited (see `crate::hooks`).
    #[serde(default)]
    pub hooks_skipped: u64,
    /// VRRPv3 counters, apart from CARP's; `None` when no VRRP interface is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrrp: Option<VrrpStats>,
}

/// `carpctl stats` for VRRPv3 interfaces: carpd's counters summed over them, and the XDP
/// program's VRRP counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpStats {
    pub received: u64,
    pub sent: u64,
    pub send_errors: u64,
    pub became_master: u64,
    pub resignations_received: u64,
    pub dataplane: Option<carp_common::maps::VrrpCounters>,
}

/// The protocol counters of OpenBSD's `struct carpstats`, named as there, in the order
/// `netstat -s -p carp` prints them. Counters carpd cannot meet on Linux stay 0 and are still
/// printed, as netstat prints every line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarpStats {
    /// Adverts received over IPv4.
    pub carps_ipackets: u64,
    /// Adverts received over IPv6.
    pub carps_ipackets6: u64,
    /// Received on an interface that is not a carpdev (or the carp interface is down), or
    /// sent the other way than the vhid's (multicast to one with unicast peers, or unicast
    /// to one without), which OpenBSD's carp_proto_input ignores too.
    pub carps_badif: u64,
    /// TTL / hop limit not 255.
    pub carps_badttl: u64,
    /// Shorter than the CARP header.
    pub carps_hdrops: u64,
    /// Bad CARP checksum.
    pub carps_badsum: u64,
    /// Version not 2 (or type not advertisement).
    pub carps_badver: u64,
    /// IP payload length does not match the CARP header.
    pub carps_badlen: u64,
    /// HMAC did not verify.
    pub carps_badauth: u64,
    /// vhid not configured on the receiving carpdev.
    pub carps_badvhid: u64,
    /// Address list mismatch (kept for netstat's shape; OpenBSD no longer counts it).
    pub carps_badaddrs: u64,
    /// Adverts sent over IPv4.
    pub carps_opackets: u64,
    /// Adverts sent over IPv6.
    pub carps_opackets6: u64,
    /// Sends that failed (OpenBSD: no mbuf; carpd: the send call failed).
    pub carps_onomem: u64,
    /// Transitions to MASTER.
    pub carps_preempt: u64,
}

/// The XDP program's counters, summed over CPUs: the map's own type, so that `bpftool map
/// dump` and `carpctl --json stats` use the same field names.
pub type DataplaneStats = carp_common::maps::DataplaneCounters;

/// Why a request line could not be turned into a [`Request`]; the text is what the client
/// sees in the [`Response::Error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("bad request: not JSON: {0}")]
    NotJson(String),
    #[error("bad request: no protocol version (expected \"version\": {PROTOCOL_VERSION})")]
    NoVersion,
    #[error("protocol version {0} not supported (carpd speaks version {PROTOCOL_VERSION})")]
    Version(u64),
    #[error("unknown request '{0}'")]
    UnknownRequest(String),
    #[error("bad request: {0}")]
    Malformed(String),
}

/// Names of the request types, as they appear in `"type"`.
const REQUEST_TYPES: &[&str] = &[
    "status",
    "group_status",
    "apply",
    "stats",
    "checks",
    "monitor",
    "debug_xdp",
];

/// Decodes one request line, telling apart the ways it can be wrong so that the client (or a
/// human with socat) learns which: not JSON, wrong version, unknown request, bad fields.
pub fn decode_request(line: &[u8]) -> Result<Request, DecodeError> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    let version = value
        .get("version")
        .ok_or(DecodeError::NoVersion)?
        .as_u64()
        .ok_or(DecodeError::NoVersion)?;
    if version != u64::from(PROTOCOL_VERSION) {
        return Err(DecodeError::Version(version));
    }
    if let Some(kind) = value
        .get("request")
        .and_then(|r| r.get("type"))
        .and_then(|t| t.as_str())
        && !REQUEST_TYPES.contains(&kind)
    {
        return Err(DecodeError::UnknownRequest(kind.to_owned()));
    }
    let envelope: RequestEnvelope =
        serde_json::from_value(value).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    Ok(envelope.request)
}

/// Encodes a message as one line (with the trailing newline).
pub fn encode_line<T: Serialize>(message: &T) -> Vec<u8> {
    // Serializing these types cannot fail: every map key is a string and nothing is
    // a non-finite float.
    let mut line = serde_json::to_vec(message).expect("protocol types always serialize");
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn sample_status() -> InterfaceStatus {
        InterfaceStatus {
            name: "carp0".into(),
            state: CarpState::Master,
            carpdev: Some("eth0".into()),
            vhid: 1,
            advbase: 1,
            advskew: 0,
            peers: vec![],
            demote: 0,
            groups: vec!["carp".into(), "web".into()],
            lladdr: format_mac(&[0, 0, 0x5e, 0, 1, 1]),
            addresses: vec![
                InterfaceAddress::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 24),
                InterfaceAddress::new(IpAddr::V6("2001:db8::10".parse::<Ipv6Addr>().unwrap()), 64),
            ],
            up: true,
            running: true,
            mtu: 1500,
            ifindex: 5,
            last_transition: Some(Transition {
                reason: "BACKUP -> MASTER: master down timer expired".into(),
                seconds_ago: 42,
            }),
            vrrp: None,
            balancing: None,
            nodes: vec![],
        }
    }

    fn round_trip_request(r: Request) {
        let line = encode_line(&RequestEnvelope::new(r.clone()));
        assert_eq!(line.last(), Some(&b'\n'));
        assert!(!line[..line.len() - 1].contains(&b'\n'), "one line");
        assert_eq!(decode_request(&line[..line.len() - 1]), Ok(r));
    }

    fn round_trip_response(r: Response) {
        let line = encode_line(&ResponseEnvelope::new(r.clone()));
        let back: ResponseEnvelope = serde_json::from_slice(&line).unwrap();
        assert_eq!(back.version, PROTOCOL_VERSION);
        assert_eq!(back.response, r);
    }

    #[test]
    fn every_request_round_trips() {
        round_trip_request(Request::Status { interface: None });
        round_trip_request(Request::Status {
            interface: Some("carp0".into()),
        });
        round_trip_request(Request::GroupStatus {
            group: "carp".into(),
        });
        round_trip_request(Request::Stats);
        round_trip_request(Request::Monitor);
        round_trip_request(Request::DebugXdp { on: true });
        round_trip_request(Request::Apply {
            target: Target::Interface("carp0".into()),
            ops: vec![
                Op::AddGroup("web".into()),
                Op::RemoveGroup("db".into()),
                Op::AdvSkew(100),
                Op::AdvBase(1),
                Op::Vhid(2),
                Op::Pass("SeCrEt".into()),
                Op::State(ForcedState::Master),
                Op::State(ForcedState::Backup),
                Op::Up,
                Op::Down,
            ],
        });
        round_trip_request(Request::Apply {
            target: Target::Group("carp".into()),
            ops: vec![Op::Demote(128), Op::Promote(1)],
        });
    }

    #[test]
    fn every_response_round_trips() {
        round_trip_response(Response::Interfaces(vec![sample_status()]));
        round_trip_response(Response::Interfaces(vec![]));
        round_trip_response(Response::Group {
            name: "carp".into(),
            demote: 128,
            persisted: 0,
        });
        round_trip_response(Response::Stats(Box::new(StatsReport {
            carp: CarpStats {
                carps_ipackets: 7,
                carps_preempt: 1,
                ..CarpStats::default()
            },
            loops_detected: 2,
            dataplane: Some(DataplaneStats {
                arp_replied: 3,
                ..DataplaneStats::default()
            }),
            hooks_skipped: 5,
            vrrp: Some(VrrpStats {
                received: 4,
                dataplane: Some(carp_common::maps::VrrpCounters {
                    vrrp_bad_checksum: 1,
                    ..Default::default()
                }),
                ..VrrpStats::default()
            }),
        })));
        round_trip_response(Response::Ok);
        round_trip_response(Response::error("carp9: no such interface"));
    }

    /// The wire shape is part of the interface (socat users, other clients): pin it.
    #[test]
    fn wire_shape_is_stable() {
        let line = encode_line(&RequestEnvelope::new(Request::Apply {
            target: Target::Group("carp".into()),
            ops: vec![Op::Demote(128)],
        }));
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "{\"version\":1,\"request\":{\"type\":\"apply\",\"data\":{\"target\":{\"group\":\"carp\"},\"ops\":[{\"demote\":128}]}}}\n"
        );
        let line = encode_line(&ResponseEnvelope::new(Response::Ok));
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "{\"version\":1,\"response\":{\"type\":\"ok\"}}\n"
        );
        let line = encode_line(&RequestEnvelope::new(Request::Stats));
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "{\"version\":1,\"request\":{\"type\":\"stats\"}}\n"
        );
        // The state machine's ForcedState, spelled as ifconfig's `state` word.
        assert_eq!(
            serde_json::to_string(&Op::State(ForcedState::Backup)).unwrap(),
            "{\"state\":\"backup\"}"
        );
        let json = serde_json::to_value(sample_status()).unwrap();
        assert_eq!(json["state"], "MASTER");
        assert_eq!(json["addresses"][0]["addr"], "192.0.2.10");
        assert_eq!(json["addresses"][0]["broadcast"], "192.0.2.255");
        assert!(json["addresses"][1].get("broadcast").is_none());
    }

    #[test]
    fn decode_tells_the_failures_apart() {
        assert!(matches!(
            decode_request(b"{not json"),
            Err(DecodeError::NotJson(_))
        ));
        assert_eq!(
            decode_request(br#"{"request":{"type":"stats"}}"#),
            Err(DecodeError::NoVersion)
        );
        assert_eq!(
            decode_request(br#"{"version":"1","request":{"type":"stats"}}"#),
            Err(DecodeError::NoVersion)
        );
        assert_eq!(
            decode_request(br#"{"version":2,"request":{"type":"stats"}}"#),
            Err(DecodeError::Version(2))
        );
        assert_eq!(
            decode_request(br#"{"version":1,"request":{"type":"reboot"}}"#),
            Err(DecodeError::UnknownRequest("reboot".into()))
        );
        assert!(matches!(
            decode_request(br#"{"version":1,"request":{"type":"group_status","data":{}}}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_request(br#"{"version":1,"request":{"type":"apply","data":{"target":{"interface":"carp0"},"ops":[{"advskew":300}]}}}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert_eq!(
            DecodeError::Version(2).to_string(),
            "protocol version 2 not supported (carpd speaks version 1)"
        );
    }

    #[test]
    fn op_check_matches_ifconfig_limits() {
        let ifc = Target::Interface("carp0".into());
        let grp = Target::Group("carp".into());
        assert_eq!(Op::AdvSkew(254).check(&ifc), Ok(()));
        assert_eq!(
            Op::AdvSkew(255).check(&ifc),
            Err("advskew 255: too large".into())
        );
        assert_eq!(
            Op::AdvBase(255).check(&ifc),
            Err("advbase 255: too large".into())
        );
        assert_eq!(Op::AdvBase(0).check(&ifc), Ok(()));
        assert_eq!(Op::Vhid(0).check(&ifc), Err("vhid 0: too small".into()));
        assert_eq!(Op::Vhid(255).check(&ifc), Ok(()));
        assert_eq!(Op::Pass("x".repeat(19).into()).check(&ifc), Ok(()));
        assert!(Op::Pass("x".repeat(20).into()).check(&ifc).is_err());
        assert_eq!(
            Op::Pass("a\0b".into()).check(&ifc),
            Err("pass: contains a NUL byte".into())
        );
        assert_eq!(
            Op::AddGroup("web db".into()).check(&ifc),
            Err("setifgroup: group name contains whitespace or a control character".into())
        );
        assert_eq!(
            Op::AddGroup("web1".into()).check(&ifc),
            Err("setifgroup: group names may not end in a digit".into())
        );
        assert_eq!(
            Op::Demote(200).check(&grp),
            Ok(()),
            "the daemon checks the sum"
        );
        assert_eq!(
            Op::Up.check(&grp),
            Err("carp: up: only carpdemote and -carpdemote apply to a group".into())
        );
        assert!(Op::Demote(1).check(&ifc).is_err());
    }

    #[test]
    fn broadcast_and_masks() {
        let a = InterfaceAddress::new(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), 8);
        assert_eq!(a.broadcast, Some(Ipv4Addr::new(10, 255, 255, 255)));
        let a = InterfaceAddress::new(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), 32);
        assert_eq!(a.broadcast, Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(ipv4_mask(0), 0);
        assert_eq!(ipv4_mask(24), 0xffff_ff00);
        assert_eq!(ipv4_mask(40), u32::MAX);
    }
}
