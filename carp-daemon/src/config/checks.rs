//! `[[check]]` tables: health checks whose failure demotes a group (keepalived's
//! `vrrp_script`, `track_process`, `track_file`, `track_interface`, in carp terms: a weight
//! added to a group's demote counter). `examples/carpd.toml` documents every key.
//!
//! Each key is judged here with the line it was written on; names are unique across files
//! (checked in `mod.rs`, where every file's checks meet).
use std::path::{Path, PathBuf};
use std::time::Duration;

use ::toml::Spanned;
use serde::Deserialize;

use super::error::{Diagnostic, Location, Origin, Problem, Table};
use crate::values::{self, CARP_GROUP};

/// Default seconds between two runs of a check.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Default seconds a run may take before it counts as a failure.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default consecutive successes (failures) before a check is up (down): keepalived's 1.
pub const DEFAULT_RISE: u32 = 1;
pub const DEFAULT_FALL: u32 = 1;
/// Default demotion a failed check adds.
pub const DEFAULT_WEIGHT: u8 = 1;

/// One health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Unique among all checks.
    pub name: String,
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successes that bring a down check up.
    pub rise: u32,
    /// Consecutive failures that take an up check down.
    pub fall: u32,
    /// 1..=255: what the check adds to its group's demote counter while down (for a `file`
    /// check: per unit of the file's number).
    pub weight: u8,
    pub group: String,
    /// Where it was configured. Not a setting.
    pub source: Origin,
}

impl Check {
    /// True if both have the same settings, wherever they were written.
    pub fn same_settings(&self, other: &Check) -> bool {
        Check {
            source: other.source.clone(),
            ..self.clone()
        } == *other
    }
}

/// What a check looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Runs a program (absolute path and arguments): exit status 0 is up.
    Exec(Vec<String>),
    /// A TCP connection to `host:port` succeeds.
    Tcp(String),
    /// An HTTP/1.1 GET answered 2xx or 3xx.
    Http {
        /// `host:port` to connect to (port 80 when not given).
        authority: String,
        /// Starts with '/'.
        path: String,
    },
    /// A process of this name (its /proc/PID/comm) runs.
    Process(String),
    /// The integer in this file, times the weight, is the demotion (0: up).
    File(PathBuf),
    /// This interface's link is up.
    Interface(String),
}

impl Probe {
    /// The key it is configured with.
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Exec(_) => "exec",
            Probe::Tcp(_) => "tcp",
            Probe::Http { .. } => "http",
            Probe::Process(_) => "process",
            Probe::File(_) => "file",
            Probe::Interface(_) => "interface",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    name: Option<Spanned<String>>,
    exec: Option<Spanned<Vec<String>>>,
    tcp: Option<Spanned<String>>,
    http: Option<Spanned<String>>,
    process: Option<Spanned<String>>,
    file: Option<Spanned<String>>,
    interface: Option<Spanned<String>>,
    /// Integers and floats both arrive as f64 (serde widens integers).
    interval: Option<Spanned<f64>>,
    timeout: Option<Spanned<f64>>,
    rise: Option<Spanned<i128>>,
    fall: Option<Spanned<i128>>,
    weight: Option<Spanned<i128>>,
    group: Option<Spanned<String>>,
}

impl RawCheck {
    /// For the test that the example shows every key: the probe keys set, and whether
    /// each other key is set. No `..`, so a new key fails to compile here.
    #[cfg(test)]
    pub(super) fn keys_set(&self) -> (Vec<&'static str>, [bool; 7]) {
        let RawCheck {
            name,
            exec,
            tcp,
            http,
            process,
            file,
            interface,
            interval,
            timeout,
            rise,
            fall,
            weight,
            group,
        } = self;
        let probes = [
            ("exec", exec.is_some()),
            ("tcp", tcp.is_some()),
            ("http", http.is_some()),
            ("process", process.is_some()),
            ("file", file.is_some()),
            ("interface", interface.is_some()),
        ];
        let kinds = probes.iter().filter(|(_, s)| *s).map(|(k, _)| *k).collect();
        let others = [
            name.is_some(),
            interval.is_some(),
            timeout.is_some(),
            rise.is_some(),
            fall.is_some(),
            weight.is_some(),
            group.is_some(),
        ];
        (kinds, others)
    }
}

/// Longest interval or timeout accepted: a day.
const MAX_SECONDS: f64 = 86_400.0;
/// Shortest: 10 ms, so that a check cannot spin.
const MIN_SECONDS: f64 = 0.01;
/// Most rise/fall runs: more would take longer than anyone waits for a failover.
const MAX_COUNT: i128 = 1000;

/// Turns one `[[check]]` table into a [`Check`], or reports every problem with it.
pub(super) fn from_toml(
    path: &Path,
    text: &str,
    index: usize,
    entry: Spanned<RawCheck>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Check> {
    let header_line = super::toml::line_of(text, entry.span().start);
    let raw = entry.into_inner();
    let table = Table::Check {
        name: raw.name.as_ref().map(|n| n.get_ref().clone()),
        index,
    };
    let at = |key: &str, span: Option<std::ops::Range<usize>>| Location::Key {
        path: path.to_owned(),
        line: Some(span.map_or(header_line, |s| super::toml::line_of(text, s.start))),
        table: table.clone(),
        key: Some(key.to_owned()),
    };
    let before = diags.len();
    let mut bad = |key: &str, span: Option<std::ops::Range<usize>>, why: String| {
        diags.push(Diagnostic::new(at(key, span), Problem::BadCheck(why)));
    };

    let name = match &raw.name {
        None => {
            bad("name", None, "no name: every check needs one".into());
            None
        }
        Some(n) if n.get_ref().is_empty() || n.get_ref().chars().any(char::is_whitespace) => {
            let why = format!("invalid name '{}': not empty, no spaces", n.get_ref());
            bad("name", Some(n.span()), why);
            None
        }
        Some(n) => Some(n.get_ref().clone()),
    };

    let mut probes: Vec<(&'static str, std::ops::Range<usize>)> = Vec::new();
    let mut probe = None;
    if let Some(v) = &raw.exec {
        probes.push(("exec", v.span()));
        let argv = v.get_ref();
        match argv.first() {
            None => bad(
                "exec",
                Some(v.span()),
                "exec is empty: give [\"/path\", args...]".into(),
            ),
            Some(p) if !p.starts_with('/') => bad(
                "exec",
                Some(v.span()),
                format!("exec program '{p}' must be an absolute path"),
            ),
            Some(_) => probe = Some(Probe::Exec(argv.clone())),
        }
    }
    if let Some(v) = &raw.tcp {
        probes.push(("tcp", v.span()));
        match host_port(v.get_ref(), None) {
            Ok(hp) => probe = Some(Probe::Tcp(hp)),
            Err(why) => bad(
                "tcp",
                Some(v.span()),
                format!("tcp '{}': {why}", v.get_ref()),
            ),
        }
    }
    if let Some(v) = &raw.http {
        probes.push(("http", v.span()));
        match parse_http_url(v.get_ref()) {
            Ok((authority, path)) => probe = Some(Probe::Http { authority, path }),
            Err(why) => bad(
                "http",
                Some(v.span()),
                format!("http '{}': {why}", v.get_ref()),
            ),
        }
    }
    if let Some(v) = &raw.process {
        probes.push(("process", v.span()));
        let n = v.get_ref();
        // /proc/PID/comm holds at most 15 bytes (TASK_COMM_LEN 16 with the NUL).
        if n.is_empty() || n.len() > 15 || n.contains('/') {
            let why = format!("process '{n}': a command name of 1 to 15 bytes, no '/'");
            bad("process", Some(v.span()), why);
        } else {
            probe = Some(Probe::Process(n.clone()));
        }
    }
    if let Some(v) = &raw.file {
        probes.push(("file", v.span()));
        if v.get_ref().starts_with('/') {
            probe = Some(Probe::File(PathBuf::from(v.get_ref())));
        } else {
            bad(
                "file",
                Some(v.span()),
                format!("file '{}' must be an absolute path", v.get_ref()),
            );
        }
    }
    if let Some(v) = &raw.interface {
        probes.push(("interface", v.span()));
        match values::check_interface_name(v.get_ref()) {
            Ok(()) => probe = Some(Probe::Interface(v.get_ref().clone())),
            Err(why) => bad(
                "interface",
                Some(v.span()),
                format!("interface '{}': {why}", v.get_ref()),
            ),
        }
    }
    match probes.as_slice() {
        [] => bad(
            "name",
            None,
            "no probe: give exactly one of exec, tcp, http, process, file, interface".into(),
        ),
        [_] => {}
        [_, (key, span), ..] => {
            let keys: Vec<&str> = probes.iter().map(|(k, _)| *k).collect();
            let why = format!("several probes ({}): give exactly one", keys.join(", "));
            bad(key, Some(span.clone()), why);
        }
    }

    let mut seconds = |key: &'static str, v: &Option<Spanned<f64>>, default: Duration| match v {
        None => Some(default),
        Some(s) => {
            let n = *s.get_ref();
            if n.is_finite() && (MIN_SECONDS..=MAX_SECONDS).contains(&n) {
                Some(Duration::from_secs_f64(n))
            } else {
                let why = format!(
                    "{key} {n} is out of range: must be {MIN_SECONDS} to {MAX_SECONDS} seconds"
                );
                bad(key, Some(s.span()), why);
                None
            }
        }
    };
    let interval = seconds("interval", &raw.interval, DEFAULT_INTERVAL);
    let timeout = seconds("timeout", &raw.timeout, DEFAULT_TIMEOUT);

    let mut count =
        |key: &'static str, v: &Option<Spanned<i128>>, min: i128, max: i128, default: i128| match v
        {
            None => Some(default),
            Some(n) if (min..=max).contains(n.get_ref()) => Some(*n.get_ref()),
            Some(n) => {
                let why = format!(
                    "{key} {} is out of range: must be {min} to {max}",
                    n.get_ref()
                );
                bad(key, Some(n.span()), why);
                None
            }
        };
    let rise = count("rise", &raw.rise, 1, MAX_COUNT, i128::from(DEFAULT_RISE));
    let fall = count("fall", &raw.fall, 1, MAX_COUNT, i128::from(DEFAULT_FALL));
    let weight = count("weight", &raw.weight, 1, 255, i128::from(DEFAULT_WEIGHT));

    let group = match &raw.group {
        None => Some(CARP_GROUP.to_owned()),
        Some(g) => match values::check_group_name(g.get_ref()) {
            Ok(()) => Some(g.get_ref().clone()),
            Err(why) => {
                bad(
                    "group",
                    Some(g.span()),
                    format!("invalid group name '{}': {why}", g.get_ref()),
                );
                None
            }
        },
    };
    if diags.len() > before {
        return None;
    }
    Some(Check {
        name: name?,
        probe: probe?,
        interval: interval?,
        timeout: timeout?,
        rise: rise? as u32,
        fall: fall? as u32,
        weight: weight? as u8,
        group: group?,
        source: Origin {
            path: path.to_owned(),
            line: Some(header_line),
        },
    })
}

/// `host:port` (a bracketed IPv6 address, an IP address or a host name), with `default_port`
/// when the port is left out and one is allowed.
fn host_port(text: &str, default_port: Option<u16>) -> Result<String, String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed '['")?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (text, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match (port, default_port) {
        (Some(p), _) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("port '{p}' must be 1 to 65535"))?,
        (None, Some(p)) => p,
        (None, None) => return Err("expected HOST:PORT".into()),
    };
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// `http://host[:port][/path]`: the authority to connect to and the path to GET. No TLS:
/// carpd talks plain HTTP/1.1 to a local service, without a TLS dependency.
pub(crate) fn parse_http_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported (no TLS)")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if path
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("the path contains a space or control character".into());
    }
    Ok((host_port(authority, Some(80))?, path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports() {
        assert_eq!(host_port("127.0.0.1:80", None).unwrap(), "127.0.0.1:80");
        assert_eq!(host_port("[::1]:8080", None).unwrap(), "[::1]:8080");
        assert_eq!(host_port("localhost:1", None).unwrap(), "localhost:1");
        assert!(host_port("127.0.0.1", None).is_err());
        assert!(host_port("127.0.0.1:0", None).is_err());
        assert!(host_port("::1", None).is_err());
        assert_eq!(
            parse_http_url("http://10.0.0.1/health").unwrap(),
            ("10.0.0.1:80".into(), "/health".into())
        );
        assert_eq!(
            parse_http_url("http://[::1]:81").unwrap(),
            ("[::1]:81".into(), "/".into())
        );
        assert!(parse_http_url("https://x/").is_err());
    }
}
