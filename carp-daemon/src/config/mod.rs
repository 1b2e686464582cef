//! carpd's configuration: OpenBSD `hostname.carpN` files, unchanged ([`hostname`]), and a
//! TOML file for what those cannot say ([`toml`]), merged and checked ([`validate`]) into one
//! [`Config`]. Nothing is returned, and so nothing applied, unless every file is valid; every
//! problem found is reported, each with its file and line (or TOML key).
mod hostname;
mod toml;
mod validate;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

pub use validate::system_interface_exists;

/// Default bpffs directory for the pinned maps and links.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/carp";
/// Default directory for the control socket and runtime files.
pub const DEFAULT_STATE_DIR: &str = "/run/carpd";

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Carp interfaces, ordered by name.
    pub interfaces: Vec<CarpInterface>,
    pub daemon: DaemonSettings,
}

/// Daemon-wide settings (TOML `[daemon]`; command-line options override them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    /// OpenBSD's net.inet.carp.preempt. Off by default, as there.
    pub preempt: bool,
    pub pin_dir: PathBuf,
    pub state_dir: PathBuf,
    /// Commands run on every state change (see `hooks`).
    pub hooks: Vec<PathBuf>,
    /// Prometheus endpoint address.
    pub metrics: Option<SocketAddr>,
    /// Demote group carp by this much at start (OpenBSD uses 128 at boot).
    pub boot_demote: u8,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        Self {
            preempt: false,
            pin_dir: PathBuf::from(DEFAULT_PIN_DIR),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            hooks: Vec::new(),
            metrics: None,
            boot_demote: 0,
        }
    }
}

/// `state master|backup` of a carp interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForcedState {
    Master,
    Backup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr4 {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr6 {
    pub addr: Ipv6Addr,
    pub prefix_len: u8,
}

/// One carp interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarpInterface {
    /// The Linux interface carpd creates (carp0, ...).
    pub name: String,
    /// The physical interface it runs on.
    pub carpdev: String,
    pub vhid: u8,
    pub advbase: u8,
    pub advskew: u8,
    /// At most 19 bytes (OpenBSD's key is 20 bytes with a NUL). None: no passphrase.
    pub passphrase: Option<String>,
    pub ipv4: Vec<Addr4>,
    pub ipv6: Vec<Addr6>,
    /// User groups; "carp" is implicit.
    pub groups: Vec<String>,
    pub initial_state: Option<ForcedState>,
    /// `up` / `down`: default up.
    pub up: bool,
    /// Where it was defined.
    pub source: Origin,
}

/// Where a setting came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub path: PathBuf,
    /// 1-based line (hostname files); 0 when not line-based (TOML).
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}", self.path.display(), self.line)
        } else {
            write!(f, "{}", self.path.display())
        }
    }
}

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// "path:line" or "path: [interface carp0] key 'advskew'".
    pub location: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Everything wrong with a configuration, one problem per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "configuration invalid ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// Reads, parses and validates `paths`. A `hostname.<ifname>` file describes interface
/// `<ifname>`; a `*.toml` file may describe several and the daemon settings.
pub fn load(paths: &[PathBuf], iface_exists: &dyn Fn(&str) -> bool) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let mut interfaces = Vec::new();
    let mut daemon: Option<(DaemonSettings, PathBuf)> = None;
    for path in paths {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem {
                    location: path.display().to_string(),
                    message: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        match kind_of(path) {
            Some(Kind::Hostname(ifname)) => match hostname::parse(path, &ifname, &text) {
                Ok(i) => interfaces.push(i),
                Err(p) => problems.extend(p),
            },
            Some(Kind::Toml) => match toml::parse(path, &text) {
                Ok((d, ifs)) => {
                    interfaces.extend(ifs);
                    if let Some(d) = d {
                        if let Some((_, first)) = &daemon {
                            problems.push(Problem {
                                location: path.display().to_string(),
                                message: format!(
                                    "[daemon] is already set in {}; give it in one file only",
                                    first.display()
                                ),
                            });
                        } else {
                            daemon = Some((d, path.clone()));
                        }
                    }
                }
                Err(p) => problems.extend(p),
            },
            None => problems.push(Problem {
                location: path.display().to_string(),
                message: "not a configuration file: name it hostname.<interface> (OpenBSD syntax) or *.toml".into(),
            }),
        }
    }
    problems.extend(validate::check(&interfaces, iface_exists));
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    interfaces.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Config {
        interfaces,
        daemon: daemon.map(|(d, _)| d).unwrap_or_default(),
    })
}

enum Kind {
    Hostname(String),
    Toml,
}

fn kind_of(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_str()?;
    if let Some(ifname) = name.strip_prefix("hostname.") {
        return Some(Kind::Hostname(ifname.to_owned()));
    }
    name.ends_with(".toml").then_some(Kind::Toml)
}

#[cfg(test)]
mod tests;
