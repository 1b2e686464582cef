//! From what the files say to the validated model: every check OpenBSD's ifconfig and kernel
//! would make, plus what Linux and carpd need.
//!
//! The parsers (`hostname.rs`, `toml.rs`) only turn syntax into [`Draft`]s: raw values, each
//! with the [`Location`] it came from. Everything about *values* is decided here, once, so a
//! hostname.carpN file and a TOML file are held to exactly the same rules and say the same
//! thing about the same mistake. Numbers stay unparsed ([`Num`]) until here so that
//! `advskew 300` is reported as out of range rather than as "not a u8". The rules for single
//! values (ranges, names, the passphrase, the state) are `crate::values`, shared with
//! carpctl; this module words their reasons and adds what only a whole configuration can
//! tell (missing keys, duplicates, carpdevs).
//!
//! Decisions an operator may trip over (also in the example files):
//! - No address is an **error**: OpenBSD accepts such a carp interface, but it stays in INIT
//!   forever, and carpd has no other way to give it one.
//! - An explicit IPv6 link-local address is **accepted with a warning**: useful as a stable
//!   virtual gateway address, but (as on OpenBSD) left out of the HMAC.
//! - A passphrase longer than 19 bytes is an **error** where OpenBSD silently truncates it.
//! - A vhid without a passphrase is **accepted with a warning**, as OpenBSD accepts it: its
//!   HMAC key is all zeros, so anyone on the LAN can forge its adverts.
//! - carpd does not guess netmasks or pick a carpdev from the addresses' subnet, as OpenBSD
//!   does: both must be given.
//! - An unknown carpdev is an error at load time; the lookup is injected so tests (and
//!   `--check` on another machine, if ever wanted) do not depend on this host's interfaces.
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::balance::{self, Balancing, LoadBalance, Node};
use super::error::{Diagnostic, Family, Location, Origin, Problem, Severity, Table};
use super::{Addr4, Addr6, CarpInterface, Config, DaemonSettings, ForcedState, Passphrase};
use crate::values::{
    self, ADVBASE, ADVSKEW, CARP_GROUP, DEFAULT_ADVBASE, DEFAULT_ADVSKEW, DEMOTE, PassphraseError,
    Range, VHID,
};

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Located<T> {
    pub value: T,
    pub at: Location,
}

impl<T> Located<T> {
    pub fn new(value: T, at: Location) -> Self {
        Self { value, at }
    }
}

/// A number as written: hostname.if words are text, TOML integers are already integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Num {
    Text(String),
    Int(i128),
}

/// An address as written, before its prefix length is known to be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DraftAddr {
    pub addr: IpAddr,
    pub prefix: Option<u8>,
}

/// One carp interface as a file describes it.
#[derive(Debug, Clone)]
pub(super) struct Draft {
    /// From the file name (hostname.carpN) or the `name` key; `None` if TOML has none.
    pub name: Option<Located<String>>,
    pub origin: Origin,
    /// Position (1-based) of the `[[interface]]` entry in a TOML file; `None` for hostname.if.
    pub toml_index: Option<usize>,
    pub carpdev: Option<Located<String>>,
    pub vhid: Option<Located<Num>>,
    pub advbase: Option<Located<Num>>,
    pub advskew: Option<Located<Num>>,
    /// `carpnodes` as written (hostname.if word or TOML key).
    pub carpnodes: Option<Located<String>>,
    /// `balancing` as written.
    pub balancing: Option<Located<String>>,
    /// From `pass`, or read from `pass_file` (located at that key).
    pub pass: Option<Located<Passphrase>>,
    pub addresses: Vec<Located<DraftAddr>>,
    /// Unicast peers as written (`carppeer`, TOML `peers`).
    pub peers: Vec<Located<String>>,
    /// Groups joined besides carp, in order.
    pub groups: Vec<Located<String>>,
    /// In group carp: true unless `-group carp` (hostname.if) or `carp_group = false` (TOML).
    pub carp_group: bool,
    /// Where `carp_group = false` was written (TOML), to point at a contradiction.
    pub carp_group_at: Option<Location>,
    pub state: Option<Located<String>>,
    pub up: bool,
    /// `protocol = "vrrp3"` and its keys (see `vrrp.rs`).
    pub vrrp: super::vrrp::DraftVrrp,
}

impl Draft {
    /// An empty draft of a hostname.carpN file.
    pub fn hostname(path: &Path, name: &str) -> Self {
        Self::empty(
            Some(Located::new(
                name.to_owned(),
                Location::File(path.to_owned()),
            )),
            Origin {
                path: path.to_owned(),
                line: None,
            },
            None,
        )
    }

    /// An empty draft of a TOML `[[interface]]` entry.
    pub fn toml(name: Option<Located<String>>, origin: Origin, index: usize) -> Self {
        Self::empty(name, origin, Some(index))
    }

    fn empty(name: Option<Located<String>>, origin: Origin, toml_index: Option<usize>) -> Self {
        Self {
            name,
            origin,
            toml_index,
            carpdev: None,
            vhid: None,
            advbase: None,
            advskew: None,
            carpnodes: None,
            balancing: None,
            pass: None,
            addresses: Vec::new(),
            peers: Vec::new(),
            groups: Vec::new(),
            carp_group: true,
            carp_group_at: None,
            state: None,
            up: true,
            vrrp: Default::default(),
        }
    }

    /// The TOML table label of this entry (hostname.if files have none).
    fn table(&self) -> Option<Table> {
        self.toml_index.map(|index| Table::Interface {
            name: self.name.as_ref().map(|n| n.value.clone()),
            index,
        })
    }

    /// Where to report that `key` is missing: the whole file for hostname.carpN, the
    /// `[[interface]]` header for TOML.
    fn missing_at(&self, key: &str) -> Location {
        match self.table() {
            None => Location::File(self.origin.path.clone()),
            Some(table) => Location::Key {
                path: self.origin.path.clone(),
                line: self.origin.line,
                table,
                key: Some(key.to_owned()),
            },
        }
    }
}

/// `[daemon]` of one TOML file, as written.
#[derive(Debug, Clone)]
pub(super) struct DraftDaemon {
    pub path: PathBuf,
    pub preempt: Option<Located<bool>>,
    pub pin_dir: Option<Located<String>>,
    pub state_dir: Option<Located<String>>,
    pub lib_dir: Option<Located<String>>,
    pub hooks: Option<Located<Vec<Located<String>>>>,
    pub metrics: Option<Located<String>>,
    pub boot_demote: Option<Located<Num>>,
    pub realtime_priority: Option<Located<Num>>,
}

/// `ADDR[/LEN]` of the given family (`Any`: either): the shared syntax of hostname.if CIDR
/// words and TOML `addresses`.
pub(super) fn parse_cidr(text: &str, family: Family) -> Result<DraftAddr, Problem> {
    let (addr_text, len_text) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let bad = || Problem::BadAddress {
        family,
        value: addr_text.to_owned(),
    };
    let addr: IpAddr = match family {
        Family::V4 => IpAddr::V4(addr_text.parse().map_err(|_| bad())?),
        Family::V6 => IpAddr::V6(addr_text.parse().map_err(|_| bad())?),
        Family::Any => addr_text.parse().map_err(|_| bad())?,
    };
    let prefix = len_text
        .map(|l| parse_prefix_len(l, family_of(addr)))
        .transpose()?;
    Ok(DraftAddr { addr, prefix })
}

/// A prefix length: 1..=32 for IPv4, 1..=128 for IPv6 (/0 would claim every address).
pub(super) fn parse_prefix_len(text: &str, family: Family) -> Result<u8, Problem> {
    let max = if family == Family::V4 { 32 } else { 128 };
    match text.parse::<u8>() {
        Ok(len) if (1..=max).contains(&len) && text.bytes().all(|b| b.is_ascii_digit()) => Ok(len),
        _ => Err(Problem::BadPrefixLen {
            family,
            value: text.to_owned(),
            max,
        }),
    }
}

pub(super) fn family_of(addr: IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

/// Collects findings and remembers whether any was an error.
struct Sink<'a> {
    diags: &'a mut Vec<Diagnostic>,
    errors: usize,
}

impl Sink<'_> {
    fn push(&mut self, at: &Location, problem: Problem) {
        if problem.severity() == Severity::Error {
            self.errors += 1;
        }
        self.diags.push(Diagnostic::new(at.clone(), problem));
    }
}

/// A value in `range` (its key is the range's name). Text is parsed as a (wide) integer
/// first, so that `256` gets "out of range" and only `abc` gets "not a number".
fn number(sink: &mut Sink<'_>, range: Range, value: &Located<Num>) -> Option<u8> {
    // Why the range ends below 255, when it does.
    let note = if range == ADVBASE || range == ADVSKEW {
        " (255 is reserved for the bow-out advertisement)"
    } else {
        ""
    };
    let out_of_range = |text: String| Problem::OutOfRange {
        key: range.name,
        value: text,
        min: range.min,
        max: range.max,
        note,
    };
    let result = match &value.value {
        Num::Int(n) => range.check(*n).map_err(|_| out_of_range(n.to_string())),
        Num::Text(text) => {
            let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                Err(Problem::NotANumber {
                    key: range.name,
                    value: text.clone(),
                })
            } else {
                // Too many digits for an i128 is out of range as well.
                text.parse::<i128>()
                    .ok()
                    .and_then(|n| range.check(n).ok())
                    .ok_or_else(|| out_of_range(text.clone()))
            }
        }
    };
    result.map_err(|p| sink.push(&value.at, p)).ok()
}

/// Why an address cannot be a virtual address, if it cannot.
fn unusable(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(a) if a.is_unspecified() => Some("it is the unspecified address"),
        IpAddr::V4(a) if a.is_broadcast() => Some("it is the limited broadcast address"),
        IpAddr::V4(a) if a.is_multicast() => Some("it is a multicast address"),
        IpAddr::V4(a) if a.is_loopback() => Some("it is a loopback address"),
        IpAddr::V6(a) if a.is_unspecified() => Some("it is the unspecified address"),
        IpAddr::V6(a) if a.is_multicast() => Some("it is a multicast address"),
        IpAddr::V6(a) if a.is_loopback() => Some("it is the loopback address"),
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => {
            Some("it is IPv4-mapped; configure the IPv4 address instead")
        }
        _ => None,
    }
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// One interface's values once checked; `ok` is false if any of them had an error, in which
/// case the cross-checks still see the values that were fine.
struct Checked {
    ok: bool,
    name: Option<String>,
    carpdev: Option<(String, Location)>,
    vhid: Option<(u8, Location)>,
    advbase: u8,
    advskew: u8,
    balance: Option<LoadBalance>,
    passphrase: Option<Passphrase>,
    ipv4: Vec<(Addr4, Location)>,
    ipv6: Vec<(Addr6, Location)>,
    peers: Vec<IpAddr>,
    groups: Vec<String>,
    initial_state: Option<ForcedState>,
    vrrp: Option<super::VrrpSettings>,
}

fn check_interface(sink: &mut Sink<'_>, d: &Draft) -> Checked {
    let errors_before = sink.errors;
    let name = match &d.name {
        None => {
            sink.push(
                &d.missing_at("name"),
                Problem::Missing {
                    key: "name",
                    hint: "every [[interface]] needs a name, e.g. name = \"carp0\"",
                },
            );
            None
        }
        Some(n) => match values::check_interface_name(&n.value) {
            Ok(()) => Some(n.value.clone()),
            Err(why) => {
                let problem = Problem::BadInterfaceName {
                    name: n.value.clone(),
                    why,
                };
                sink.push(&n.at, problem);
                None
            }
        },
    };
    let carpdev = match &d.carpdev {
        None => {
            let hint = "carpd needs the interface the carp interface sits on ('carpdev eth0'); \
                        unlike OpenBSD it does not pick one from the addresses' subnet";
            sink.push(
                &d.missing_at("carpdev"),
                Problem::Missing {
                    key: "carpdev",
                    hint,
                },
            );
            None
        }
        Some(c) => match values::check_interface_name(&c.value) {
            Ok(()) => Some((c.value.clone(), c.at.clone())),
            Err(why) => {
                let problem = Problem::BadInterfaceName {
                    name: c.value.clone(),
                    why,
                };
                sink.push(&c.at, problem);
                None
            }
        },
    };
    let (nodes, balance) = check_balance(sink, d);
    let vhid = match &d.vhid {
        None if d.carpnodes.is_some() => {
            let at = d.carpnodes.as_ref().map(|c| c.at.clone());
            nodes.first().zip(at).map(|(n, at)| (n.vhid, at))
        }
        // A VRRP interface's carpnodes is refused on its own (config/vrrp.rs).
        Some(v) if d.carpnodes.is_some() && !d.vrrp.is_vrrp() => {
            sink.push(&v.at, Problem::VhidAndCarpnodes);
            None
        }
        None => {
            let hint = "every carp interface needs a virtual host id ('vhid N', 1 to 255)";
            sink.push(
                &d.missing_at("vhid"),
                Problem::Missing { key: "vhid", hint },
            );
            None
        }
        Some(v) => number(sink, VHID, v).map(|n| (n, v.at.clone())),
    };
    let advbase = d
        .advbase
        .as_ref()
        .and_then(|v| number(sink, ADVBASE, v))
        .unwrap_or(DEFAULT_ADVBASE);
    let advskew = match (&d.advskew, nodes.first()) {
        (Some(v), Some(_)) => {
            sink.push(&v.at, Problem::AdvskewWithCarpnodes);
            DEFAULT_ADVSKEW
        }
        (None, Some(leader)) => leader.advskew,
        (v, None) => v
            .as_ref()
            .and_then(|v| number(sink, ADVSKEW, v))
            .unwrap_or(DEFAULT_ADVSKEW),
    };
    let passphrase = d.pass.as_ref().and_then(|p| {
        match values::check_passphrase(p.value.expose()) {
            Ok(()) => {}
            Err(PassphraseError::TooLong { len }) => {
                sink.push(&p.at, Problem::PassphraseTooLong { len });
            }
            Err(PassphraseError::ContainsNul) => {
                sink.push(&p.at, Problem::PassphraseContainsNul);
            }
        }
        // An empty passphrase is OpenBSD's "no pass": the key is 20 zero bytes either way.
        (!p.value.is_empty()).then(|| p.value.clone())
    });
    if passphrase.is_none() && !d.vrrp.is_vrrp() {
        let at = d
            .pass
            .as_ref()
            .map_or_else(|| d.missing_at("pass"), |p| p.at.clone());
        sink.push(&at, Problem::NoPassphrase);
    }
    let initial_state: Option<ForcedState> = d.state.as_ref().and_then(|s| {
        values::parse_state(&s.value)
            .map_err(|_| sink.push(&s.at, Problem::BadState(s.value.clone())))
            .ok()
    });
    // Every carp interface starts in group carp (OpenBSD's carp_clone_create); it may leave it.
    let mut groups: Vec<String> = Vec::new();
    if d.carp_group {
        groups.push(CARP_GROUP.to_owned());
    }
    for g in &d.groups {
        match values::check_group_name(&g.value) {
            Err(why) => {
                let problem = Problem::BadGroupName {
                    name: g.value.clone(),
                    why,
                };
                sink.push(&g.at, problem);
            }
            Ok(()) if g.value == CARP_GROUP && !d.carp_group => {
                let at = d.carp_group_at.as_ref().unwrap_or(&g.at);
                sink.push(at, Problem::CarpGroupContradiction);
            }
            Ok(()) if groups.contains(&g.value) => {}
            Ok(()) => groups.push(g.value.clone()),
        }
    }
    let (ipv4, ipv6) = check_addresses(sink, d);
    if ipv4.is_empty() && ipv6.is_empty() && d.addresses.is_empty() {
        sink.push(&d.missing_at("addresses"), Problem::NoAddress);
    }
    let peers = check_peers(sink, d, &ipv4, &ipv6);
    let vrrp = super::vrrp::check(d, &ipv4, &ipv6, &mut |at, problem| sink.push(at, problem));
    Checked {
        ok: sink.errors == errors_before,
        name,
        carpdev,
        vhid,
        advbase,
        advskew,
        balance,
        passphrase,
        ipv4,
        ipv6,
        peers,
        groups,
        initial_state,
        vrrp,
    }
}

/// `carpnodes` and `balancing`: the nodes (empty without `carpnodes`) and the balancing
/// they amount to, with OpenBSD's defaults (see `balance.rs`).
fn check_balance(sink: &mut Sink<'_>, d: &Draft) -> (Vec<Node>, Option<LoadBalance>) {
    let mode = d.balancing.as_ref().and_then(|b| {
        Balancing::parse(&b.value)
            .map_err(|p| sink.push(&b.at, p))
            .ok()
            .map(|m| (m, &b.at))
    });
    let nodes = match &d.carpnodes {
        Some(c) => match balance::parse_nodes(&c.value) {
            Ok(nodes) => nodes,
            Err(p) => {
                sink.push(&c.at, p);
                return (Vec::new(), None);
            }
        },
        None => Vec::new(),
    };
    // Without carpnodes the interface is one node: a mode alone is ignored, as there.
    let (balance, warning) = balance::normalise(nodes.clone(), mode.map(|(m, _)| m));
    if let Some(w) = warning {
        let at = mode
            .map(|(_, at)| at.clone())
            .or_else(|| d.carpnodes.as_ref().map(|c| c.at.clone()));
        if let Some(at) = at {
            sink.push(&at, w);
        }
    }
    (nodes, balance)
}

/// Why an address cannot be a unicast peer, if it cannot.
fn unusable_peer(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(a) if a.is_broadcast() => Some("it is the limited broadcast address"),
        IpAddr::V4(a) if a.is_multicast() => {
            Some("it is a multicast address; leave 'carppeer' out to advertise to 224.0.0.18")
        }
        IpAddr::V6(a) if a.is_multicast() => {
            Some("it is a multicast address; leave the peer out to advertise to ff02::12")
        }
        _ => unusable(addr),
    }
}

/// The unicast peers: real unicast addresses, each once, not one of this interface's own
/// addresses (adverts to itself would be dropped as a loop), and of a family the interface
/// advertises (it sends IPv6 adverts only when it has an IPv6 address).
fn check_peers(sink: &mut Sink<'_>, d: &Draft, v4: &Checked4, v6: &Checked6) -> Vec<IpAddr> {
    let mut peers: Vec<IpAddr> = Vec::new();
    for p in &d.peers {
        let Ok(addr) = p.value.parse::<IpAddr>() else {
            sink.push(&p.at, Problem::BadPeer(p.value.clone()));
            continue;
        };
        let own = match addr {
            IpAddr::V4(a) => v4.iter().any(|(x, _)| x.addr == a),
            IpAddr::V6(a) => v6.iter().any(|(x, _)| x.addr == a),
        };
        let problem = if let Some(why) = unusable_peer(addr) {
            Problem::UnusablePeer { addr, why }
        } else if own {
            Problem::PeerIsOwnAddress(addr)
        } else if peers.contains(&addr) {
            Problem::RepeatedPeer(addr)
        } else if (addr.is_ipv4() && v4.is_empty()) || (addr.is_ipv6() && v6.is_empty()) {
            let family = if addr.is_ipv4() {
                Family::V4
            } else {
                Family::V6
            };
            Problem::PeerFamilyUnused { addr, family }
        } else {
            peers.push(addr);
            continue;
        };
        sink.push(&p.at, problem);
    }
    peers
}

type Checked4 = Vec<(Addr4, Location)>;
type Checked6 = Vec<(Addr6, Location)>;

fn check_addresses(sink: &mut Sink<'_>, d: &Draft) -> (Checked4, Checked6) {
    let mut v4: Checked4 = Vec::new();
    let mut v6: Checked6 = Vec::new();
    for a in &d.addresses {
        let DraftAddr { addr, prefix } = a.value;
        let Some(prefix_len) = prefix else {
            let example = if addr.is_ipv4() { 24 } else { 64 };
            sink.push(&a.at, Problem::MissingPrefix { addr, example });
            continue;
        };
        if let Some(why) = unusable(addr) {
            sink.push(&a.at, Problem::UnusableAddress { addr, why });
            continue;
        }
        let seen = match addr {
            IpAddr::V4(x) => v4.iter().any(|(y, _)| y.addr == x),
            IpAddr::V6(x) => v6.iter().any(|(y, _)| y.addr == x),
        };
        if seen {
            sink.push(&a.at, Problem::RepeatedAddress(addr));
            continue;
        }
        match addr {
            IpAddr::V4(addr) => v4.push((Addr4 { addr, prefix_len }, a.at.clone())),
            IpAddr::V6(addr) => {
                // VRRP's IPv6 list starts with the link-local virtual address; no HMAC.
                if is_link_local(&addr) && !d.vrrp.is_vrrp() {
                    sink.push(&a.at, Problem::LinkLocal(addr));
                }
                v6.push((Addr6 { addr, prefix_len }, a.at.clone()));
            }
        }
    }
    (v4, v6)
}

/// Merges the `[daemon]` tables of several files: each key may be set in one file only, so
/// that no file order silently decides which value wins.
fn merge_daemon(sink: &mut Sink<'_>, daemons: &[DraftDaemon]) -> DaemonSettings {
    fn pick<'a, T>(
        sink: &mut Sink<'_>,
        key: &'static str,
        daemons: &'a [DraftDaemon],
        get: impl Fn(&'a DraftDaemon) -> Option<&'a Located<T>>,
    ) -> Option<&'a Located<T>> {
        let mut first: Option<(&'a Located<T>, &'a Path)> = None;
        for d in daemons {
            let Some(v) = get(d) else { continue };
            match first {
                None => first = Some((v, &d.path)),
                Some((_, path)) => {
                    let other = path.to_owned();
                    sink.push(&v.at, Problem::DaemonKeyConflict { key, other });
                }
            }
        }
        first.map(|(v, _)| v)
    }
    fn absolute(sink: &mut Sink<'_>, key: &'static str, v: &Located<String>) -> Option<PathBuf> {
        let path = PathBuf::from(&v.value);
        if path.is_absolute() {
            Some(path)
        } else {
            let what = format!("{key} '{}'", v.value);
            sink.push(&v.at, Problem::NotAbsolute(what));
            None
        }
    }

    let mut s = DaemonSettings::default();
    if let Some(v) = pick(sink, "preempt", daemons, |d| d.preempt.as_ref()) {
        s.preempt = v.value;
    }
    if let Some(v) = pick(sink, "pin_dir", daemons, |d| d.pin_dir.as_ref()) {
        s.pin_dir = absolute(sink, "pin_dir", v).unwrap_or(s.pin_dir);
    }
    if let Some(v) = pick(sink, "state_dir", daemons, |d| d.state_dir.as_ref()) {
        s.state_dir = absolute(sink, "state_dir", v).unwrap_or(s.state_dir);
    }
    if let Some(v) = pick(sink, "lib_dir", daemons, |d| d.lib_dir.as_ref()) {
        s.lib_dir = absolute(sink, "lib_dir", v).unwrap_or(s.lib_dir);
    }
    if let Some(v) = pick(sink, "hooks", daemons, |d| d.hooks.as_ref()) {
        // A relative hook would be looked up in root's PATH at every state change.
        s.hooks = v
            .value
            .iter()
            .filter_map(|h| absolute(sink, "hook", h))
            .collect();
    }
    if let Some(v) = pick(sink, "metrics", daemons, |d| d.metrics.as_ref()) {
        match v.value.parse::<SocketAddr>() {
            Ok(addr) => s.metrics = Some(addr),
            Err(_) => sink.push(&v.at, Problem::BadListenAddress(v.value.clone())),
        }
    }
    if let Some(v) = pick(sink, "boot_demote", daemons, |d| d.boot_demote.as_ref()) {
        let boot_demote = Range {
            name: "boot_demote",
            ..DEMOTE
        };
        s.boot_demote = number(sink, boot_demote, v).unwrap_or(0);
    }
    if let Some(v) = pick(sink, "realtime_priority", daemons, |d| {
        d.realtime_priority.as_ref()
    }) {
        s.realtime_priority = number(sink, crate::realtime::PRIORITY, v);
    }
    s
}

/// Checks every draft and the daemon settings, adds every finding to `diags`, and returns the
/// model. The model is only meaningful if no error was added: the caller must check.
pub(super) fn validate(
    drafts: &[Draft],
    daemons: &[DraftDaemon],
    interface_exists: &dyn Fn(&str) -> bool,
    diags: &mut Vec<Diagnostic>,
) -> Config {
    let mut sink = Sink { diags, errors: 0 };
    let daemon = merge_daemon(&mut sink, daemons);
    let checked: Vec<Checked> = drafts
        .iter()
        .map(|d| check_interface(&mut sink, d))
        .collect();

    // Interface names, first come first kept.
    let mut names: HashMap<&str, &Origin> = HashMap::new();
    let mut ok = vec![true; drafts.len()];
    for (i, (d, c)) in drafts.iter().zip(&checked).enumerate() {
        let (Some(name), Some(located)) = (&c.name, &d.name) else {
            continue;
        };
        if let Some(other) = names.get(name.as_str()) {
            let problem = Problem::DuplicateInterface {
                name: name.clone(),
                other: (*other).clone(),
            };
            sink.push(&located.at, problem);
            ok[i] = false;
        } else {
            names.insert(name, &d.origin);
        }
    }

    // carpdevs: not a carp interface, and present on this system.
    for (i, c) in checked.iter().enumerate() {
        let Some((carpdev, at)) = &c.carpdev else {
            continue;
        };
        let problem = if c.name.as_deref() == Some(carpdev.as_str()) {
            Problem::CarpdevIsSelf(carpdev.clone())
        } else if names.contains_key(carpdev.as_str()) {
            Problem::CarpdevIsCarp(carpdev.clone())
        } else if !interface_exists(carpdev) {
            Problem::NoSuchCarpdev(carpdev.clone())
        } else {
            continue;
        };
        sink.push(at, problem);
        ok[i] = false;
    }

    // One virtual MAC once per carpdev (OpenBSD's SIOCSVH refuses a second vhid with
    // EINVAL): both would claim it on the same segment. A VRRP VRID's IPv4 virtual MAC is
    // the CARP vhid's of the same number (00:00:5e:00:01:N); its IPv6 one is its own.
    // Every node of a balanced interface counts (carp_check_dup_vhids).
    let mut vmacs: HashMap<(&str, [u8; 6]), (&str, &Origin, bool)> = HashMap::new();
    for (i, (d, c)) in drafts.iter().zip(&checked).enumerate() {
        let (Some((carpdev, _)), Some((vhid, at))) = (&c.carpdev, &c.vhid) else {
            continue;
        };
        let me = c.name.as_deref().unwrap_or("?");
        let vrrp = d.vrrp.is_vrrp();
        let v6 = c.vrrp.is_some_and(|v| v.v6);
        let node_vhids = match &c.balance {
            Some(lb) => lb.nodes.iter().map(|n| n.vhid).collect(),
            None => vec![*vhid],
        };
        for vhid in node_vhids {
            let vmac = carp_common::vrrp::vrrp_virtual_mac(vhid, v6);
            match vmacs.get(&(carpdev.as_str(), vmac)) {
                Some((other, other_at, other_vrrp)) if !vrrp && !*other_vrrp => {
                    let problem = Problem::DuplicateVhid {
                        vhid,
                        carpdev: carpdev.clone(),
                        other: (*other).to_owned(),
                        at: (*other_at).clone(),
                    };
                    sink.push(at, problem);
                    ok[i] = false;
                }
                Some((other, other_at, _)) => {
                    let what = if vrrp { "vrid" } else { "vhid" };
                    let mac = crate::control::protocol::format_mac(&vmac);
                    let problem = Problem::SharedVirtualMac {
                        what: format!(
                            "{what} {vhid} on {carpdev} would share the virtual MAC {mac}"
                        ),
                        other: (*other).to_owned(),
                        at: (*other_at).clone(),
                    };
                    sink.push(at, problem);
                    ok[i] = false;
                }
                None => {
                    vmacs.insert((carpdev, vmac), (me, &d.origin, vrrp));
                }
            }
        }
    }

    // One address on one interface: two carp interfaces (even on different carpdevs) would
    // fight over it in the kernel's address table.
    let mut addrs: HashMap<IpAddr, (&str, &Origin)> = HashMap::new();
    for (i, (d, c)) in drafts.iter().zip(&checked).enumerate() {
        let me = c.name.as_deref().unwrap_or("?");
        let all = c.ipv4.iter().map(|(a, at)| (IpAddr::V4(a.addr), at));
        let all = all.chain(c.ipv6.iter().map(|(a, at)| (IpAddr::V6(a.addr), at)));
        for (addr, at) in all {
            if let Some((other, other_at)) = addrs.get(&addr) {
                let problem = Problem::DuplicateAddress {
                    addr,
                    other: (*other).to_owned(),
                    at: (*other_at).clone(),
                };
                sink.push(at, problem);
                ok[i] = false;
            } else {
                addrs.insert(addr, (me, &d.origin));
            }
        }
    }

    let mut interfaces = BTreeMap::new();
    for ((d, c), ok) in drafts.iter().zip(checked).zip(ok) {
        let (true, true, Some(name), Some((carpdev, _)), Some((vhid, _))) =
            (ok, c.ok, c.name, c.carpdev, c.vhid)
        else {
            continue;
        };
        let interface = CarpInterface {
            name: name.clone(),
            carpdev,
            vhid,
            advbase: c.advbase,
            advskew: c.advskew,
            balance: c.balance,
            passphrase: c.passphrase,
            ipv4: c.ipv4.into_iter().map(|(a, _)| a).collect(),
            ipv6: c.ipv6.into_iter().map(|(a, _)| a).collect(),
            peers: c.peers,
            groups: c.groups,
            initial_state: c.initial_state,
            up: d.up,
            vrrp: c.vrrp,
            source: d.origin.clone(),
        };
        interfaces.insert(super::NameOrder(name), interface);
    }
    Config {
        interfaces: interfaces.into_values().collect(),
        daemon,
        checks: Vec::new(),
    }
}

/// The broadcast address Linux derives for an IPv4 address (none for /31 and /32).
pub(super) fn derived_broadcast(addr: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Addr> {
    (prefix_len <= 30).then(|| Ipv4Addr::from(u32::from(addr) | (u32::MAX >> prefix_len)))
}
