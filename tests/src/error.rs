//! The crate's one error type. Every variant names what was being done and where (command,
//! namespace, path), because a lab failure is only debuggable from the message: by the time
//! anyone reads it the namespaces are gone.
use std::path::PathBuf;
use std::time::Duration;

/// Why a lab operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A command could not be started at all (missing binary, bad namespace fd, ...).
    #[error("could not start `{cmd}`{}: {source}", in_netns(netns))]
    Spawn {
        cmd: String,
        netns: Option<String>,
        #[source]
        source: std::io::Error,
    },

    /// A command ran and exited unsuccessfully where success was required.
    #[error("`{cmd}`{} failed ({status}): {}", in_netns(netns), stderr.trim())]
    Command {
        cmd: String,
        netns: Option<String>,
        status: String,
        stderr: String,
    },

    /// A command or condition did not finish within its deadline.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },

    /// A file-system or process operation failed.
    #[error("{what} ({}): {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A system call failed (setns, signals, bpf).
    #[error("{what}{}: {source}", in_netns(netns))]
    Sys {
        what: String,
        netns: Option<String>,
        #[source]
        source: std::io::Error,
    },

    /// Output of a tool did not look as expected (e.g. `ip -o link` without a MAC).
    #[error("could not parse {what} from {text:?}")]
    Parse { what: String, text: String },
}

fn in_netns(netns: &Option<String>) -> String {
    match netns {
        Some(ns) => format!(" in netns {ns}"),
        None => String::new(),
    }
}

impl LabError {
    pub(crate) fn io(
        what: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        LabError::Io {
            what: what.into(),
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(
        what: impl Into<String>,
        netns: Option<&str>,
        source: impl Into<std::io::Error>,
    ) -> Self {
        LabError::Sys {
            what: what.into(),
            netns: netns.map(str::to_owned),
            source: source.into(),
        }
    }
}
