//! What can be wrong with a configuration, and where.
//!
//! Every finding is a [`Diagnostic`]: a [`Problem`] (what) at a [`Location`] (where). The
//! parsers and the validator collect them instead of stopping at the first, so one `carpd
//! --check` run lists everything to fix. Whether a problem stops the configuration from being
//! used is a property of the problem itself ([`Problem::severity`]), so the same finding is
//! never an error in one place and a warning in another.
//!
//! Locations print the way compilers and OpenBSD's own tools print them, so that editors can
//! jump to them: `PATH:LINE: message` for hostname.if lines,
//! `PATH:LINE: [interface carp0] key 'advskew': message` for TOML keys (the line is that of
//! the value, or of the `[[interface]]` header when a key is missing).
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::values::{GroupNameError, InterfaceNameError, PASSPHRASE_MAX};

/// Whether a finding stops the configuration from being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Nothing is applied while any error remains.
    Error,
    /// Applied, but probably not what was meant; logged at warn level.
    Warning,
    /// Applied; something was deliberately ignored. Logged at debug level.
    Note,
}

/// The TOML table a key belongs to, named the way an operator would look for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Table {
    /// `[daemon]`.
    Daemon,
    /// One `[[interface]]` entry: by its `name`, or by its position (1-based) in the file
    /// when it has none.
    Interface { name: Option<String>, index: usize },
    /// One `[[check]]` entry, by its `name` or its position in the file.
    Check { name: Option<String>, index: usize },
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Table::Daemon => f.write_str("[daemon]"),
            Table::Interface {
                name: Some(name), ..
            } => write!(f, "[interface {name}]"),
            Table::Interface { name: None, index } => write!(f, "[interface #{index}]"),
            Table::Check {
                name: Some(name), ..
            } => write!(f, "[check {name}]"),
            Table::Check { name: None, index } => write!(f, "[check #{index}]"),
        }
    }
}

/// Where a finding is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A whole file: it cannot be read, or something it should contain is missing
    /// (a hostname.carpN file describes one interface, so "no vhid" has no line).
    File(PathBuf),
    /// A line (1-based) of a file: hostname.if lines, TOML syntax errors.
    Line(PathBuf, usize),
    /// A key of a TOML table.
    Key {
        path: PathBuf,
        /// Line of the value, or of the table header when the key is missing.
        line: Option<usize>,
        table: Table,
        /// `None` when the finding concerns the table as a whole.
        key: Option<String>,
    },
}

impl Location {
    /// The file the finding is in.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Location::File(path) | Location::Line(path, _) | Location::Key { path, .. } => path,
        }
    }

    /// The line the finding is on, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Location::File(_) => None,
            Location::Line(_, line) => Some(*line),
            Location::Key { line, .. } => *line,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path().display())?;
        if let Some(line) = self.line() {
            write!(f, ":{line}")?;
        }
        if let Location::Key { table, key, .. } = self {
            write!(f, ": {table}")?;
            if let Some(key) = key {
                write!(f, " key '{key}'")?;
            }
        }
        Ok(())
    }
}

/// Where an interface was configured: kept in the model for messages and for SIGHUP diffs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub path: PathBuf,
    /// The `[[interface]]` header's line in a TOML file; `None` for a hostname.carpN file,
    /// which is the interface as a whole.
    pub line: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        Ok(())
    }
}

/// The address family a value was expected to be of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
    /// Either (TOML `addresses` take both).
    Any,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
            Family::Any => "IP",
        })
    }
}

/// Everything carpd can find wrong with (or worth saying about) a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    // --- files -------------------------------------------------------------------------
    #[error("cannot read: {0}")]
    Read(String),
    #[error(
        "not a carpd configuration file: name it hostname.<ifname> (OpenBSD hostname.if(5)) or *.toml"
    )]
    UnknownFileKind,
    #[error("given more than once")]
    DuplicatePath,
    /// A TOML syntax or schema error, in the toml crate's words (which name the key).
    #[error("{0}")]
    Toml(String),

    // --- hostname.if syntax ------------------------------------------------------------
    #[error("unterminated {0} quote")]
    UnterminatedQuote(char),
    #[error("unknown keyword '{0}'")]
    UnknownKeyword(String),
    #[error("'{word}' is not supported by carpd: {why}")]
    Unsupported { word: String, why: &'static str },
    #[error("'{0}' is not supported on carp interfaces: a carp address must be static")]
    Dynamic(String),
    #[error("'{0}' requires an argument")]
    MissingArgument(String),
    #[error(
        "'{0}' must be the first word of its line (hostname.if(5): one ifconfig command per line, address family first)"
    )]
    FamilyNotFirst(String),
    #[error("'{0}' belongs to an address: it must follow 'inet' or 'inet6' on the same line")]
    AddressOptionWithoutAddress(String),
    #[error("'{word}' does not apply to {family} addresses")]
    WrongFamilyOption { word: String, family: Family },
    #[error("invalid {family} address '{value}' (carpd does not resolve host names)")]
    BadAddress { family: Family, value: String },
    #[error("invalid netmask '{0}': expected a dotted quad (255.255.255.0) or hex (0xffffff00)")]
    BadNetmask(String),
    #[error("netmask {0} is not contiguous; carpd needs one that is a prefix length")]
    NonContiguousNetmask(String),
    #[error("invalid broadcast address '{0}' (expected an IPv4 address or NONE)")]
    BadBroadcast(String),
    #[error("invalid {family} prefix length '{value}': must be a number from 1 to {max}")]
    BadPrefixLen {
        family: Family,
        value: String,
        max: u8,
    },
    #[error("prefix length given twice, as /{0} and as /{1}")]
    PrefixTwice(u8, u8),

    // --- values --------------------------------------------------------------------------
    #[error("{key} '{value}' is not a number")]
    NotANumber { key: &'static str, value: String },
    #[error("{key} {value} is out of range: must be {min} to {max}{note}")]
    OutOfRange {
        key: &'static str,
        value: String,
        min: u8,
        max: u8,
        /// Why the range is what it is, when that is not obvious (starts with a space).
        note: &'static str,
    },
    #[error("state '{0}': must be master or backup")]
    BadState(String),
    #[error(
        "passphrase is {len} bytes long; CARP keeps at most {max} (OpenBSD would silently use only the first {max}, so the hosts would not agree on what the key is)",
        max = PASSPHRASE_MAX
    )]
    PassphraseTooLong { len: usize },
    #[error("passphrase contains a NUL byte (OpenBSD's ifconfig would stop there)")]
    PassphraseContainsNul,
    /// A `pass` that is not a string: its TOML type is named, its value never shown.
    #[error("pass must be a string, not {0} (the value is not shown: it may be a passphrase)")]
    PassNotAString(&'static str),
    #[error("'pass' and 'pass_file' are both set; give the passphrase one way")]
    PassAndPassFile,
    #[error("cannot read pass_file {path}: {why}")]
    PassFile { path: String, why: String },
    /// A TOML syntax error on a `pass` line: the toml crate's message may quote the text.
    #[error(
        "invalid 'pass' value (not shown: it may be a passphrase); write it as a quoted string, e.g. pass = \"...\""
    )]
    PassSyntax,
    /// An unknown word right after `pass PHRASE` is likely the rest of a passphrase with a
    /// space in it, so it is not quoted back.
    #[error(
        "unknown word after the passphrase (not shown: it may be part of it); quote a passphrase that contains spaces"
    )]
    WordAfterPass,
    #[error("invalid interface name '{name}': {why}")]
    BadInterfaceName {
        name: String,
        why: InterfaceNameError,
    },
    #[error("invalid group name '{name}': {why}")]
    BadGroupName { name: String, why: GroupNameError },
    #[error(
        "'groups' lists carp while 'carp_group' is false: leave carp out of 'groups', or drop 'carp_group = false'"
    )]
    CarpGroupContradiction,
    #[error("{0} must be an absolute path")]
    NotAbsolute(String),
    #[error(
        "invalid listen address '{0}': expected ADDRESS:PORT, e.g. 127.0.0.1:9712 or [::1]:9712"
    )]
    BadListenAddress(String),

    // --- an interface as a whole ---------------------------------------------------------
    #[error(
        "carpnodes: cannot read '{0}': expected VHID:ADVSKEW pairs separated by commas, e.g. carpnodes 1:0,2:100"
    )]
    BadCarpnode(String),
    #[error("carpnodes: {0} nodes; at most 32 (OpenBSD's CARP_MAXNODES)")]
    TooManyNodes(usize),
    #[error("carpnodes: vhid {0} is given twice")]
    RepeatedNode(u8),
    #[error("balancing {0}: unknown mode: must be none, ip, ip-stealth or ip-unicast")]
    UnknownBalancing(String),
    #[error(
        "balancing arp: OpenBSD removed the arp mode in 2015; use ip, ip-stealth or ip-unicast"
    )]
    BalancingArpRemoved,
    #[error(
        "'vhid' and 'carpnodes' are both set: give one vhid, or every node (with its advskew) in carpnodes"
    )]
    VhidAndCarpnodes,
    #[error("'advskew' with 'carpnodes': each node's advskew is given in carpnodes (VHID:ADVSKEW)")]
    AdvskewWithCarpnodes,
    #[error("no {key}: {hint}")]
    Missing {
        key: &'static str,
        hint: &'static str,
    },
    #[error(
        "no address: a carp interface needs at least one to leave INIT (OpenBSD accepts an address-less carp interface, but it never runs)"
    )]
    NoAddress,
    #[error(
        "address {addr} has no prefix length: write {addr}/{example} (or, in hostname.if, give a netmask); carpd does not guess one"
    )]
    MissingPrefix { addr: IpAddr, example: u8 },
    #[error("{addr} cannot be a carp address: {why}")]
    UnusableAddress { addr: IpAddr, why: &'static str },
    #[error("peer '{0}' is not an IPv4 or IPv6 address")]
    BadPeer(String),
    #[error("{addr} cannot be a unicast peer: {why}")]
    UnusablePeer { addr: IpAddr, why: &'static str },
    #[error(
        "peer {0} is an address of this carp interface: its adverts would come back to itself; name the other router's address"
    )]
    PeerIsOwnAddress(IpAddr),
    #[error(
        "peer {addr} is an address of this host (on {ifname}): its adverts would come back here; name the other router's address"
    )]
    PeerIsHostAddress { addr: IpAddr, ifname: String },
    #[error("peer {0} is given twice; the second is ignored")]
    RepeatedPeer(IpAddr),
    #[error(
        "peer {addr} is {family}, but the carp interface has no {family} address, so it sends no {family} adverts to it"
    )]
    PeerFamilyUnused { addr: IpAddr, family: Family },
    #[error("carpdev {0} is the carp interface itself")]
    CarpdevIsSelf(String),
    #[error(
        "carpdev {0} is a carp interface of this configuration; a carpdev must be a physical, VLAN or bond interface"
    )]
    CarpdevIsCarp(String),
    #[error("carpdev {0} does not exist on this system")]
    NoSuchCarpdev(String),

    // --- across interfaces and files ---------------------------------------------------
    // --- VRRPv3 interfaces (config/vrrp.rs) ------------------------------------------------
    #[error(
        "protocol '{0}' is not known: 'carp' (the default) or 'vrrp3' (hostname.if: carpver 2 or 3)"
    )]
    BadProtocol(String),
    #[error("'{0}' applies to VRRP interfaces only (protocol = \"vrrp3\", carpver 3)")]
    VrrpOnlyKey(&'static str),
    #[error("'{key}' does not apply to a VRRP interface: {why}")]
    CarpOnlyKey {
        key: &'static str,
        why: &'static str,
    },
    #[error("{key} {value} is out of range: must be {min} to {max}")]
    VrrpOutOfRange {
        key: &'static str,
        value: String,
        min: u16,
        max: u16,
    },
    #[error("give 'vhid' or 'vrid' (its VRRP name), not both")]
    VhidAndVrid,
    #[error(
        "vrrp_checksum '{0}' is not known: 'pseudo-header' (the default, as keepalived and FreeBSD) or 'message-only' (RFC 9568)"
    )]
    BadVrrpChecksum(String),
    #[error(
        "a VRRP interface has addresses of one family: an IPv4 and an IPv6 virtual router are separate (RFC 5798), with different virtual MACs; configure the IPv6 addresses on a second interface with the same vrid"
    )]
    VrrpBothFamilies,
    #[error(
        "the first IPv6 address of a VRRP interface must be its link-local virtual address (RFC 5798 5.2.9), not {0}"
    )]
    VrrpFirstNotLinkLocal(Ipv6Addr),

    #[error("interface {name} is also configured in {other}")]
    DuplicateInterface { name: String, other: Origin },
    #[error("vhid {vhid} on {carpdev} is already used by {other} ({at})")]
    DuplicateVhid {
        vhid: u8,
        carpdev: String,
        other: String,
        at: Origin,
    },
    /// `what` says which number on which carpdev and the MAC, e.g. "vrid 1 on eth0 would
    /// share the virtual MAC 00:00:5e:00:01:01".
    #[error("{what} with {other} ({at}); give one of them another number")]
    SharedVirtualMac {
        what: String,
        other: String,
        at: Origin,
    },
    #[error("address {addr} is also configured on {other} ({at})")]
    DuplicateAddress {
        addr: IpAddr,
        other: String,
        at: Origin,
    },
    #[error("daemon key '{key}' is also set in {other}; set each [daemon] key in one file only")]
    DaemonKeyConflict { key: &'static str, other: PathBuf },

    // --- warnings --------------------------------------------------------------------------
    #[error("'!' command ignored: carpd runs no commands from configuration files ({0})")]
    CommandIgnored(String),
    #[error(
        "this 'inet' replaces {old} from line {line}, as OpenBSD's ifconfig does; write 'inet alias' to add an address"
    )]
    InetReplaces { old: Ipv4Addr, line: usize },
    #[error("'-group {0}': the interface is not in that group")]
    NotInGroup(String),
    #[error("address {0} is given twice; it is configured once")]
    RepeatedAddress(IpAddr),
    #[error(
        "broadcast {given} ignored: Linux derives it from the prefix ({derived}); only the standard broadcast is supported"
    )]
    BroadcastIgnored { given: Ipv4Addr, derived: Ipv4Addr },
    #[error(
        "{0} is link-local: it is configured, but (as on OpenBSD) not covered by the advertisement HMAC, so a peer with a different link-local address is not detected"
    )]
    LinkLocal(Ipv6Addr),
    /// A `[[check]]` value that cannot be used; the text says which and why.
    #[error("{0}")]
    BadCheck(String),
    #[error("check '{name}' is also defined in {other}")]
    DuplicateCheck { name: String, other: Origin },
    #[error("balancing {0} ignored: one node only, so nothing to balance (OpenBSD sets none)")]
    BalancingOneNode(crate::config::Balancing),
    #[error(
        "balancing none with several nodes balances by ip, as OpenBSD does by default (with none every host would accept every packet)"
    )]
    BalancingNoneWithNodes,
    #[error("no carp interfaces configured")]
    NoInterfaces,
    #[error(
        "no passphrase: the advertisements' HMAC is keyed with zeros, so any host on the LAN can take this vhid over; set 'pass' (or 'pass_file' in TOML)"
    )]
    NoPassphrase,
    /// A file holding a passphrase is readable by more than its owner (`mode` is the
    /// permission bits). OpenBSD's netstart warns about hostname.if files the same way.
    #[error(
        "holds a passphrase and is readable by {whom} (mode {mode:04o}); make it readable by its owner only: chmod 600 {path}",
        whom = readable_by(*.mode)
    )]
    SecretReadable { mode: u32, path: String },
    #[error(
        "holds a passphrase but is owned by uid {uid}, not root: whoever owns it can change the key; chown root {path}"
    )]
    SecretOwner { uid: u32, path: String },

    // --- notes ---------------------------------------------------------------------------
    #[error("description ignored (Linux interfaces have an alias instead; carpd does not set it)")]
    DescriptionIgnored,
}

impl Problem {
    /// Whether this finding stops the configuration from being used.
    pub fn severity(&self) -> Severity {
        use Problem::*;
        match self {
            CommandIgnored(_)
            | InetReplaces { .. }
            | NotInGroup(_)
            | RepeatedAddress(_)
            | RepeatedPeer(_)
            | BroadcastIgnored { .. }
            | LinkLocal(_)
            | BalancingOneNode(_)
            | BalancingNoneWithNodes
            | NoInterfaces
            | NoPassphrase
            | SecretReadable { .. }
            | SecretOwner { .. } => Severity::Warning,
            DescriptionIgnored => Severity::Note,
            _ => Severity::Error,
        }
    }
}

/// "group", "others" or "group and others", from permission bits.
fn readable_by(mode: u32) -> &'static str {
    match (mode & 0o040 != 0, mode & 0o004 != 0) {
        (true, true) => "group and others",
        (true, false) => "group",
        _ => "others",
    }
}

/// One finding: what, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub at: Location,
    pub problem: Problem,
}

impl Diagnostic {
    pub fn new(at: Location, problem: Problem) -> Self {
        Self { at, problem }
    }

    pub fn severity(&self) -> Severity {
        self.problem.severity()
    }
}

impl fmt::Display for Diagnostic {
    /// `PATH:LINE: message`; warnings and notes say so after the location, as compilers do.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.severity() {
            Severity::Error => "",
            Severity::Warning => "warning: ",
            Severity::Note => "note: ",
        };
        write!(f, "{}: {prefix}{}", self.at, self.problem)
    }
}

/// Why a configuration was refused: every error found, in file and line order. Its Display
/// is one diagnostic per line, so `carpd --check` can print it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Never empty; only [`Severity::Error`] findings.
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
