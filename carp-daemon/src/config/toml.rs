//! The TOML configuration: daemon settings and any number of interfaces. Every key is
//! documented in examples/carpd.toml; unknown keys are errors.
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Addr4, Addr6, CarpInterface, DaemonSettings, ForcedState, Origin, Problem};
use carp_common::wire::{CARP_MAX_ADVSKEW, CARP_MAX_PASSPHRASE_LEN};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    daemon: Option<Daemon>,
    #[serde(default)]
    interface: Vec<Interface>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Daemon {
    preempt: Option<bool>,
    pin_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    hooks: Vec<PathBuf>,
    metrics: Option<String>,
    boot_demote: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Interface {
    name: String,
    carpdev: Option<String>,
    vhid: Option<i64>,
    advbase: Option<i64>,
    advskew: Option<i64>,
    pass: Option<String>,
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    state: Option<String>,
    up: Option<bool>,
}

/// Parses one TOML file: its daemon settings (if it has `[daemon]`) and interfaces.
pub fn parse(
    path: &Path,
    text: &str,
) -> Result<(Option<DaemonSettings>, Vec<CarpInterface>), Vec<Problem>> {
    let file: File = ::toml::from_str(text).map_err(|e| {
        vec![Problem {
            location: path.display().to_string(),
            message: e.to_string().trim().replace('\n', " "),
        }]
    })?;
    let mut problems = Vec::new();
    let mut err = |key: String, message: String| {
        problems.push(Problem {
            location: format!("{}: {key}", path.display()),
            message,
        })
    };
    let daemon = file.daemon.map(|d| {
        let defaults = DaemonSettings::default();
        let metrics = d.metrics.and_then(|m| match m.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                err(
                    "[daemon] key 'metrics'".into(),
                    format!("'{m}' is not an address:port"),
                );
                None
            }
        });
        let boot_demote = match d.boot_demote {
            Some(n) if !(0..=255).contains(&n) => {
                err(
                    "[daemon] key 'boot_demote'".into(),
                    format!("{n} is out of range (0-255)"),
                );
                0
            }
            Some(n) => n as u8,
            None => 0,
        };
        DaemonSettings {
            preempt: d.preempt.unwrap_or(defaults.preempt),
            pin_dir: d.pin_dir.unwrap_or(defaults.pin_dir),
            state_dir: d.state_dir.unwrap_or(defaults.state_dir),
            hooks: d.hooks,
            metrics,
            boot_demote,
        }
    });
    let mut interfaces = Vec::new();
    for i in file.interface {
        let ctx = |key: &str| format!("[interface {}] key '{key}'", i.name);
        let mut range =
            |key: &str, v: Option<i64>, min: i64, max: i64, default: Option<i64>| -> u8 {
                match v.or(default) {
                    Some(n) if (min..=max).contains(&n) => n as u8,
                    Some(n) => {
                        err(ctx(key), format!("{n} is out of range ({min}-{max})"));
                        0
                    }
                    None => {
                        err(ctx(key), "missing".into());
                        0
                    }
                }
            };
        let vhid = range("vhid", i.vhid, 1, 255, None);
        let advbase = range("advbase", i.advbase, 0, 255, Some(1));
        let advskew = range(
            "advskew",
            i.advskew,
            0,
            i64::from(CARP_MAX_ADVSKEW),
            Some(0),
        );
        if let Some(p) = &i.pass {
            if p.len() > CARP_MAX_PASSPHRASE_LEN {
                err(
                    ctx("pass"),
                    format!(
                        "{} bytes is longer than OpenBSD allows ({CARP_MAX_PASSPHRASE_LEN})",
                        p.len()
                    ),
                );
            }
        }
        let initial_state = match i.state.as_deref() {
            None => None,
            Some("master") => Some(ForcedState::Master),
            Some("backup") => Some(ForcedState::Backup),
            Some(other) => {
                err(ctx("state"), format!("'{other}': must be master or backup"));
                None
            }
        };
        let mut ipv4 = Vec::new();
        let mut ipv6 = Vec::new();
        for a in &i.addresses {
            let Some((addr, len)) = a.split_once('/') else {
                err(
                    ctx("addresses"),
                    format!("'{a}': address without prefix length (ADDR/LEN)"),
                );
                continue;
            };
            match (addr.parse::<IpAddr>(), len.parse::<u8>()) {
                (Ok(IpAddr::V4(addr)), Ok(prefix_len)) if prefix_len <= 32 => {
                    ipv4.push(Addr4 { addr, prefix_len })
                }
                (Ok(IpAddr::V6(addr)), Ok(prefix_len)) if prefix_len <= 128 => {
                    ipv6.push(Addr6 { addr, prefix_len })
                }
                _ => err(ctx("addresses"), format!("'{a}': not an address/prefix")),
            }
        }
        interfaces.push(CarpInterface {
            carpdev: i.carpdev.clone().unwrap_or_default(),
            vhid,
            advbase,
            advskew,
            passphrase: i.pass.clone(),
            ipv4,
            ipv6,
            groups: i.groups.iter().filter(|g| *g != "carp").cloned().collect(),
            initial_state,
            up: i.up.unwrap_or(true),
            source: Origin {
                path: path.to_owned(),
                line: 0,
            },
            name: i.name,
        });
    }
    if problems.is_empty() {
        Ok((daemon, interfaces))
    } else {
        Err(problems)
    }
}
