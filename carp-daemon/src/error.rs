//! The crate's error type at its boundary: every module's own error folds into it.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Dataplane(#[from] crate::dataplane::DataplaneError),
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    #[error(transparent)]
    Send(#[from] crate::send::SendError),
    #[error(transparent)]
    Auth(#[from] crate::proto::AuthError),
    #[error(transparent)]
    Param(#[from] crate::proto::ParamError),
    #[error(transparent)]
    Realtime(#[from] crate::realtime::RealtimeError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "pin directory {} is in use by another carpd{}; give each carpd its own pin directory (--pin-dir)",
        dir.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    PinDirInUse {
        dir: PathBuf,
        /// The holder of the lock, when /proc/locks tells.
        pid: Option<u32>,
    },
    #[error("carpdev {name} of {interface} does not exist")]
    NoCarpdev { name: String, interface: String },
    /// An event source of the main loop closed or keeps failing: carpd must be restarted.
    #[error("event source {source_name} failed: {reason}")]
    EventSourceFailed {
        source_name: &'static str,
        reason: String,
    },
    /// The carpdev has no Ethernet address (loopback, a tunnel): no frames to carry a virtual
    /// MAC, no macvlan on top.
    #[error(
        "carpdev {name} of {interface} has no Ethernet address; a carp interface needs an \
         Ethernet carpdev"
    )]
    CarpdevNotEthernet { name: String, interface: String },
    #[error("{name}: no such interface")]
    NoInterface { name: String },
    /// New settings of an interface were refused, and building it again with the old ones
    /// failed too: the interface is gone.
    #[error("{refused}; restoring the old interface failed too: {restore}")]
    RestoreFailed {
        refused: Box<Error>,
        restore: Box<Error>,
    },
    /// `boot_demote` could not be applied to the group `carp`.
    #[error("boot demotion of group carp: {0}")]
    BootDemote(#[source] crate::groups::GroupError),
    /// The persisted (maintenance) demotion could not be applied on top of the boot one.
    #[error("persisted demotion: {0}")]
    PersistedDemote(#[source] crate::groups::GroupError),
    /// The persisted demotion file could not be read or was refused.
    #[error(transparent)]
    Maintenance(#[from] crate::maintenance::MaintenanceError),
    /// The control socket for carpctl could not be set up.
    #[error(transparent)]
    ControlSocket(#[from] crate::control::server::ServerError),
    /// The dataplane handed its advert ring buffer out before (it has one reader, carpd's
    /// main loop).
    #[error("advert ring buffer already taken")]
    AdvertRingTaken,
    #[error(transparent)]
    VrrpParam(#[from] crate::proto::vrrp::VrrpParamError),
}
