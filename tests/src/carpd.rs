//! carpd in a lab host, as the demo and the bench start it: from its binary, with a
//! configuration file and its own state and pin directories, and carpctl's answer read back.
use std::ffi::OsStr;
use std::path::Path;

use crate::LabError;
use crate::lab::Host;
use crate::process::LabProcess;

/// Starts `carpd` in `host` with one configuration file, its own state and pin
/// directories, and an XDP mode (auto, native or generic).
pub fn spawn_carpd(
    host: &Host,
    carpd: &Path,
    config: &Path,
    state_dir: &Path,
    pin_dir: &Path,
    xdp_mode: &str,
) -> Result<LabProcess, LabError> {
    spawn_carpd_with(host, carpd, config, state_dir, pin_dir, xdp_mode, &[])
}

/// [`spawn_carpd`] with extra arguments.
pub fn spawn_carpd_with(
    host: &Host,
    carpd: &Path,
    config: &Path,
    state_dir: &Path,
    pin_dir: &Path,
    xdp_mode: &str,
    extra: &[&str],
) -> Result<LabProcess, LabError> {
    let mut args: Vec<&OsStr> = vec![
        carpd.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
        "--state-dir".as_ref(),
        state_dir.as_os_str(),
        "--pin-dir".as_ref(),
        pin_dir.as_os_str(),
        "--xdp-mode".as_ref(),
        xdp_mode.as_ref(),
    ];
    args.extend(extra.iter().map(|a| OsStr::new(*a)));
    host.spawn(args)
}

/// The `state` of the (first) interface in `carpctl --json IFACE` output.
pub fn carpctl_state(json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let iface = match &value {
        serde_json::Value::Array(list) => list.first()?,
        other => other,
    };
    iface.get("state")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carpctl_state_reads_one_interface_or_the_first_of_a_list() {
        assert_eq!(
            carpctl_state(r#"{"name":"carp0","state":"MASTER"}"#).as_deref(),
            Some("MASTER")
        );
        assert_eq!(
            carpctl_state(r#"[{"state":"BACKUP"},{"state":"MASTER"}]"#).as_deref(),
            Some("BACKUP")
        );
        assert_eq!(carpctl_state("[]"), None);
        assert_eq!(carpctl_state("carpd is not running"), None);
    }
}
