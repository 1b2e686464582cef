//! carpd's configuration: OpenBSD `hostname.carpN` files, unchanged (`hostname.rs`), and TOML
//! files for what those cannot say (`toml.rs`), merged and checked (`validate.rs`) into one
//! [`Config`].
//!
//! Nothing is returned, and so nothing applied, unless every file is valid; every problem
//! found is reported, each with its file and line (or TOML key), one per line:
//!
//! ```text
//! /etc/hostname.carp0:1: advskew 300 is out of range: must be 0 to 254 (255 is reserved ...)
//! /etc/hostname.carp0: no vhid: every carp interface needs a virtual host id ('vhid N', 1 to 255)
//! /etc/carpd.toml:9: [interface carp1] key 'vhid': vhid 0 is out of range: must be 1 to 255
//! ```
//!
//! A hostname.carpN file is one interface, so what is missing from it has no line; in TOML a
//! missing key is reported at its `[[interface]]` header. Warnings read the same, with
//! `warning: ` before the message.
//!
//! How files combine: a `hostname.<ifname>` file describes exactly interface `<ifname>`; a
//! `*.toml` file may describe several (`[[interface]]`) and the daemon settings (`[daemon]`).
//! Interfaces are collected from every file (an interface name may appear once in all of
//! them); each `[daemon]` key may be set in at most one file, so that the order of `--config`
//! options never decides silently which value wins.
//!
//! [`diff`] tells a SIGHUP handler which interfaces were added, removed or changed.
mod balance;
mod checks;
mod diff;
mod error;
mod hostname;
mod secret;
mod toml;
mod validate;
mod vrrp;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

pub use crate::proto::Passphrase;
/// `state master|backup` of a carp interface: forced once it first can run.
pub use crate::values::ForcedState;
pub use balance::{Balancing, LoadBalance, MAX_NODES, Node};
pub use checks::{Check, Probe};
pub use diff::{ConfigDiff, Field, InterfaceChange, diff};
pub use error::{ConfigError, Diagnostic, Family, Location, Origin, Problem, Severity, Table};
pub use vrrp::VrrpSettings;

/// Default bpffs directory for the pinned maps and links.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/carp";
/// Default directory for the control socket and runtime files.
pub const DEFAULT_STATE_DIR: &str = "/run/carpd";

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// Carp interfaces, ordered by name (carp2 before carp10).
    pub interfaces: Vec<CarpInterface>,
    pub daemon: DaemonSettings,
    /// Health checks (`[[check]]`), in configuration order, names unique.
    pub checks: Vec<Check>,
}

/// Daemon-wide settings: TOML `[daemon]`; carpd's command-line options override them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    /// OpenBSD's net.inet.carp.preempt. Off by default, as there.
    pub preempt: bool,
    /// bpffs directory for the pinned maps and links.
    pub pin_dir: PathBuf,
    /// Directory for the control socket and runtime files.
    pub state_dir: PathBuf,
    /// Directory for state kept across reboots (persisted maintenance demotion).
    pub lib_dir: PathBuf,
    /// Executables (absolute paths) run on every state change; see `crate::hooks`.
    pub hooks: Vec<PathBuf>,
    /// Prometheus endpoint address; `None`: no endpoint.
    pub metrics: Option<SocketAddr>,
    /// Demote group carp by this much at start (OpenBSD uses 128 at boot, and lifts it once
    /// the host is ready); 0: no boot demotion.
    pub boot_demote: u8,
    /// SCHED_FIFO priority of the event loop, with all memory locked (`crate::realtime`);
    /// `None`: the normal scheduler.
    pub realtime_priority: Option<u8>,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        Self {
            preempt: false,
            pin_dir: PathBuf::from(DEFAULT_PIN_DIR),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            lib_dir: PathBuf::from(crate::maintenance::DEFAULT_LIB_DIR),
            hooks: Vec::new(),
            metrics: None,
            boot_demote: 0,
            realtime_priority: None,
        }
    }
}

/// An IPv4 address of a carp interface, with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Addr4 {
    pub addr: Ipv4Addr,
    /// 1..=32.
    pub prefix_len: u8,
}

/// An IPv6 address of a carp interface, with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Addr6 {
    pub addr: Ipv6Addr,
    /// 1..=128.
    pub prefix_len: u8,
}

impl fmt::Display for Addr4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl fmt::Display for Addr6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// One carp interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarpInterface {
    /// The Linux interface carpd creates (carp0, ...): 1 to 15 bytes, no '/', ':' or space.
    pub name: String,
    /// The interface it runs on (eth0, bond0, eth0.100, ...); exists on this host.
    pub carpdev: String,
    /// 1..=255; unique per carpdev. With `balance`, the leader node's vhid.
    pub vhid: u8,
    /// Seconds, 0..=254 (default 1).
    pub advbase: u8,
    /// 1/256 s, 0..=254 (default 0). With `balance`, the leader node's advskew.
    pub advskew: u8,
    /// `carpnodes` with several nodes: one election per node and the per-packet balancing
    /// (see `balance.rs`); `None` for a plain carp interface of one vhid.
    pub balance: Option<LoadBalance>,
    /// At most 19 bytes (OpenBSD's key is 20 bytes with a NUL); `None`: no passphrase.
    /// Its `Debug` is redacted, so printing the model never shows it.
    pub passphrase: Option<Passphrase>,
    /// In configuration order, each address once; at least one of `ipv4`/`ipv6` is non-empty.
    pub ipv4: Vec<Addr4>,
    pub ipv6: Vec<Addr6>,
    /// Unicast peers (OpenBSD's `carppeer`, TOML `peers`), each once, in configuration
    /// order. Adverts of a family go to that family's peers; a family without a peer keeps
    /// the multicast group (224.0.0.18 / ff02::12).
    pub peers: Vec<IpAddr>,
    /// Every group the interface is in, each once: "carp" first unless it left it
    /// (`-group carp`, TOML `carp_group = false`), then the others in configuration order.
    pub groups: Vec<String>,
    /// `state master|backup`.
    pub initial_state: Option<ForcedState>,
    /// `up` / `down`; default up.
    pub up: bool,
    /// `protocol = "vrrp3"` (`carpver 3`): a VRRPv3 virtual router whose VRID is `vhid`;
    /// `None`: CARP.
    pub vrrp: Option<VrrpSettings>,
    /// Where it was configured. Not a setting: [`diff`] ignores it.
    pub source: Origin,
}

impl CarpInterface {
    /// The unicast peers of one family (`v6` false: IPv4), in configuration order. Empty:
    /// that family's adverts go to the multicast group.
    pub fn peers_of(&self, v6: bool) -> impl Iterator<Item = IpAddr> + '_ {
        self.peers
            .iter()
            .copied()
            .filter(move |p| p.is_ipv6() == v6)
    }

    /// Every node ("vhost") of the interface, sorted by vhid: the nodes of `carpnodes`, or
    /// the one vhid with its advskew.
    pub fn nodes(&self) -> Vec<Node> {
        match &self.balance {
            Some(lb) => lb.nodes.clone(),
            None => vec![Node {
                vhid: self.vhid,
                advskew: self.advskew,
            }],
        }
    }

    /// The balancing mode (`none` for a plain carp interface).
    pub fn balancing(&self) -> Balancing {
        self.balance.as_ref().map_or(Balancing::None, |lb| lb.mode)
    }

    /// True if both have the same settings, wherever they were written.
    pub fn same_settings(&self, other: &CarpInterface) -> bool {
        diff::changed_fields(self, other).is_empty()
    }
}

/// Orders interface names the way people do: by the alphabetic part, then by the number at
/// the end, so carp2 comes before carp10.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NameOrder(String);

impl NameOrder {
    fn key(&self) -> (&str, Option<u128>, &str) {
        let stem = self.0.trim_end_matches(|c: char| c.is_ascii_digit());
        let number = self.0[stem.len()..].parse().ok();
        (stem, number, &self.0)
    }
}

impl Ord for NameOrder {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for NameOrder {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A configuration file's name and text, for [`check_sources`] (tests, or a caller that
/// reads files itself).
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// The outcome of checking a configuration: the model or every error, and in both cases
/// the warnings and notes (which never stop a configuration from being used).
#[derive(Debug, Clone)]
pub struct Checked {
    pub result: Result<Config, ConfigError>,
    /// [`Severity::Warning`] and [`Severity::Note`] findings, in file and line order.
    pub warnings: Vec<Diagnostic>,
}

/// Reads, parses and validates `paths`, logging warnings (warn level) and notes (debug
/// level) through `tracing`. This is what carpd calls at start, on SIGHUP and for `--check`.
///
/// `interface_exists` answers "does this carpdev exist?": pass [`system_interface_exists`],
/// or a fake in tests.
pub fn load<P: AsRef<Path>>(
    paths: &[P],
    interface_exists: &dyn Fn(&str) -> bool,
) -> Result<Config, ConfigError> {
    let checked = check_files(paths, interface_exists);
    for w in &checked.warnings {
        match w.severity() {
            Severity::Note => tracing::debug!("{w}"),
            _ => tracing::warn!("{w}"),
        }
    }
    let config = checked.result?;
    let errors = peers_on_this_host(&config, &system_addresses());
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError { errors })
    }
}

/// Every address of this host's interfaces, with the interface's name (getifaddrs).
pub fn system_addresses() -> Vec<(String, IpAddr)> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| {
            let sa = a.address?;
            let ip = if let Some(v4) = sa.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else {
                IpAddr::V6(sa.as_sockaddr_in6()?.ip())
            };
            Some((a.interface_name, ip))
        })
        .collect()
}

/// Unicast peers that are addresses of this host (`host`: interface and address, see
/// [`system_addresses`]): its adverts would go to itself, and the real peer would hear none.
/// The interface's own virtual addresses are refused by validation already.
pub fn peers_on_this_host(config: &Config, host: &[(String, IpAddr)]) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    for i in &config.interfaces {
        for peer in &i.peers {
            if let Some((ifname, _)) = host.iter().find(|(_, a)| a == peer) {
                let at = match i.source.line {
                    Some(line) => Location::Line(i.source.path.clone(), line),
                    None => Location::File(i.source.path.clone()),
                };
                let problem = Problem::PeerIsHostAddress {
                    addr: *peer,
                    ifname: ifname.clone(),
                };
                errors.push(Diagnostic::new(at, problem));
            }
        }
    }
    errors
}

/// Like [`load`], but hands the warnings back instead of logging them.
///
/// A file holding a passphrase that others than its owner can read, or that someone other
/// than root or carpd's user owns, gets a warning (see `secret.rs` for why not an error).
pub fn check_files<P: AsRef<Path>>(
    paths: &[P],
    interface_exists: &dyn Fn(&str) -> bool,
) -> Checked {
    let inputs = paths
        .iter()
        .map(|p| {
            let path = p.as_ref().to_owned();
            let text = read_with_access(&path).map_err(|e| e.to_string());
            (path, text)
        })
        .collect();
    check_inputs(inputs, interface_exists)
}

/// A file's text and its owner and mode, both from the one open file.
fn read_with_access(path: &Path) -> std::io::Result<(String, Option<secret::FileAccess>)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let access = secret::FileAccess::of(&file.metadata()?);
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok((text, Some(access)))
}

/// Parses and validates configuration texts that were read already (their permissions are
/// not known, so not checked).
pub fn check_sources(sources: &[Source], interface_exists: &dyn Fn(&str) -> bool) -> Checked {
    let inputs = sources
        .iter()
        .map(|s| (s.path.clone(), Ok((s.text.clone(), None))))
        .collect();
    check_inputs(inputs, interface_exists)
}

/// Does `name` exist on this host? Asks the kernel (`if_nametoindex`), which also sees
/// interfaces in the current network namespace only, as carpd does.
pub fn system_interface_exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

enum Kind {
    Hostname(String),
    Toml,
}

/// `*.toml` is TOML; otherwise `hostname.<ifname>` is a hostname.if(5) file. The extension
/// is looked at first so that a `hostname.carp0.toml` is not taken for interface
/// "carp0.toml".
fn kind_of(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(".toml") {
        return Some(Kind::Toml);
    }
    name.strip_prefix("hostname.")
        .map(|ifname| Kind::Hostname(ifname.to_owned()))
}

/// A file's name, and its text and access bits or why it could not be read.
type Input = (
    PathBuf,
    Result<(String, Option<secret::FileAccess>), String>,
);

fn check_inputs(inputs: Vec<Input>, interface_exists: &dyn Fn(&str) -> bool) -> Checked {
    let euid = nix::unistd::geteuid().as_raw();
    let mut diags = Vec::new();
    let mut drafts = Vec::new();
    let mut daemons = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    let mut seen: Vec<&Path> = Vec::new();
    for (path, text) in &inputs {
        let at = Location::File(path.clone());
        if seen.contains(&path.as_path()) {
            diags.push(Diagnostic::new(at, Problem::DuplicatePath));
            continue;
        }
        seen.push(path);
        let (text, access) = match text {
            Ok((text, access)) => (text, *access),
            Err(e) => {
                diags.push(Diagnostic::new(at, Problem::Read(e.clone())));
                continue;
            }
        };
        let holds_passphrase = match kind_of(path) {
            Some(Kind::Hostname(ifname)) => {
                let draft = hostname::parse(path, &ifname, text, &mut diags);
                let holds = draft.pass.as_ref().is_some_and(|p| !p.value.is_empty());
                drafts.push(draft);
                holds
            }
            Some(Kind::Toml) => {
                let file = toml::parse(path, text, &mut diags);
                drafts.extend(file.interfaces);
                daemons.extend(file.daemon);
                for check in file.checks {
                    match checks.iter().find(|c| c.name == check.name) {
                        Some(other) => {
                            let at = Location::Line(path.clone(), check.source.line.unwrap_or(0));
                            let problem = Problem::DuplicateCheck {
                                name: check.name.clone(),
                                other: other.source.clone(),
                            };
                            diags.push(Diagnostic::new(at, problem));
                        }
                        None => checks.push(check),
                    }
                }
                file.holds_passphrase
            }
            None => {
                diags.push(Diagnostic::new(at, Problem::UnknownFileKind));
                false
            }
        };
        if let Some(access) = access.filter(|_| holds_passphrase) {
            for problem in secret::exposure(access, euid, path) {
                diags.push(Diagnostic::new(Location::File(path.clone()), problem));
            }
        }
    }
    let mut config = validate::validate(&drafts, &daemons, interface_exists, &mut diags);
    // A check's group must be one some carp interface is in, or its demotion would reach
    // no one (group carp always exists).
    for check in &checks {
        let member = check.group == crate::values::CARP_GROUP
            || config
                .interfaces
                .iter()
                .any(|i| i.groups.contains(&check.group))
            || drafts
                .iter()
                .any(|d| d.groups.iter().any(|g| g.value == check.group));
        if !member {
            let at = Location::Line(check.source.path.clone(), check.source.line.unwrap_or(0));
            let why = format!(
                "check '{}': no carp interface is in group '{}', so its demotion would reach none",
                check.name, check.group
            );
            diags.push(Diagnostic::new(at, Problem::BadCheck(why)));
        }
    }
    config.checks = checks;
    if drafts.is_empty()
        && let Some((path, _)) = inputs.first()
    {
        let at = Location::File(path.clone());
        diags.push(Diagnostic::new(at, Problem::NoInterfaces));
    }

    // File order as given, then line order; a finding about a whole file comes first.
    let file_index = |d: &Diagnostic| inputs.iter().position(|(p, _)| p == d.at.path());
    diags.sort_by_key(|d| (file_index(d), d.at.line().unwrap_or(0)));
    let (errors, warnings): (Vec<_>, Vec<_>) = diags
        .into_iter()
        .partition(|d| d.severity() == Severity::Error);
    let result = if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError { errors })
    };
    Checked { result, warnings }
}
