//! Which XDP mode carpd attaches in, and why: `--xdp-mode auto` resolved per carpdev.
//!
//! The program answers ARP and neighbour solicitations with XDP_TX, so a mode is right only
//! if XDP_TX frames reach the wire. On most drivers native mode does. A veth is the
//! exception: in native mode it hands XDP_TX frames straight to its peer's receive ring, and
//! they arrive only if the peer runs a native XDP program of its own. Without one,
//! `veth_xdp_xmit` drops them (the peer is not in NAPI mode), and with GRO on the peer (which
//! also puts it in NAPI mode since Linux 5.13) they are queued but never delivered, because
//! `veth_xdp_flush` wakes the peer only when it has an XDP program (seen on Linux 6.18: the
//! carpdev counts `rx_queue_0_xdp_tx` in `ethtool -S`, and nothing reaches the switch). The
//! peer of a container's or a lab's veth is usually a plain bridge port in another
//! namespace, so there native XDP_TX silently never arrives; generic XDP transmits through
//! the stack and always works.
//!
//! `auto` therefore decides per carpdev, at attach time:
//!
//! - driver `veth` (ETHTOOL_GDRVINFO): find the peer (IFLA_LINK; IFLA_LINK_NETNSID when it
//!   is in another namespace). Native if the peer is in this namespace and has a native XDP
//!   program (IFLA_XDP); generic otherwise, also when the peer is in another namespace,
//!   where carpd cannot see it.
//! - any other driver: native; if the driver refuses native XDP (no `ndo_bpf`, as bridges and
//!   VLAN devices), generic, with a warning.
//!
//! The decision is taken once, when carpd attaches: removing the peer's program later
//! silences a native-mode carpdev. `--xdp-mode native|generic` skips all of this for those
//! who set up their peers themselves.
use std::ffi::CStr;
use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use aya::programs::XdpMode;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage, LinkXdp, XdpAttached};
use rtnetlink::packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::AttachMode;

/// The mode a program is (to be) attached in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In the driver, before an skb exists (XDP_FLAGS_DRV_MODE).
    Native,
    /// In the stack, on an skb (XDP_FLAGS_SKB_MODE).
    Generic,
}

impl Mode {
    pub(super) fn xdp_mode(self) -> XdpMode {
        match self {
            Mode::Native => XdpMode::Driver,
            Mode::Generic => XdpMode::Skb,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Native => "native",
            Mode::Generic => "generic",
        })
    }
}

/// What carpd can see of a veth's peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VethPeer {
    /// In this network namespace, with what decides its receive mode.
    Here {
        name: String,
        /// A program attached in native (driver) mode: what makes native XDP_TX arrive
        /// (generic XDP on the peer does not put it in NAPI mode).
        native_xdp: bool,
        /// GRO on: NAPI mode without an XDP program, which is not enough for XDP_TX
        /// (see the module documentation); reported in the reason.
        gro: bool,
    },
    /// In another network namespace (IFLA_LINK_NETNSID): out of sight.
    OtherNamespace,
    /// Not found out (no peer, or a query failed), with why.
    Unknown(String),
}

/// What auto mode learns about a carpdev before choosing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Carpdev {
    /// The driver name from ETHTOOL_GDRVINFO, or why it could not be read.
    pub driver: Result<String, String>,
    /// For a veth, its peer; `None` for other drivers.
    pub veth_peer: Option<VethPeer>,
}

/// The mode to attach in, why, and whether to fall back to generic if the driver refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub mode: Mode,
    pub reason: String,
    pub generic_if_refused: bool,
}

impl Plan {
    /// An explicit `--xdp-mode native|generic`: taken as given, no fallback.
    pub fn fixed(mode: Mode) -> Plan {
        Plan {
            mode,
            reason: format!("--xdp-mode {mode}"),
            generic_if_refused: false,
        }
    }
}

/// The attach plan for `ifname` under `--xdp-mode requested`; only `auto` looks at the
/// carpdev (in the calling thread's network namespace).
pub fn plan_for(ifname: &str, requested: AttachMode) -> Plan {
    match requested {
        AttachMode::Native => Plan::fixed(Mode::Native),
        AttachMode::Generic => Plan::fixed(Mode::Generic),
        AttachMode::Auto => auto_plan(&probe(ifname)),
    }
}

/// What `--xdp-mode auto` chooses for a carpdev with these facts, and why. Pure.
pub fn auto_plan(facts: &Carpdev) -> Plan {
    let generic = |reason: String| Plan {
        mode: Mode::Generic,
        reason,
        generic_if_refused: false,
    };
    let native = |reason: String, generic_if_refused| Plan {
        mode: Mode::Native,
        reason,
        generic_if_refused,
    };
    match (facts.driver.as_deref(), &facts.veth_peer) {
        (Ok("veth"), Some(VethPeer::Here { name, native_xdp, gro })) => {
            if *native_xdp {
                native(
                    format!("veth whose peer {name} has a native XDP program: native XDP_TX reaches it"),
                    false,
                )
            } else if *gro {
                generic(format!(
                    "veth whose peer {name} has GRO on but no native XDP program: native XDP_TX would be queued to it and never delivered"
                ))
            } else {
                generic(format!(
                    "veth whose peer {name} has no native XDP program: native XDP_TX would be dropped"
                ))
            }
        }
        (Ok("veth"), Some(VethPeer::OtherNamespace)) => generic(
            "veth whose peer is in another network namespace: native XDP_TX would be dropped unless that peer has a native XDP program".into(),
        ),
        (Ok("veth"), Some(VethPeer::Unknown(why))) => generic(format!(
            "veth whose peer could not be inspected ({why}): native XDP_TX would be dropped unless it has a native XDP program"
        )),
        (Ok("veth"), None) => generic("veth whose peer was not looked up".into()),
        (Ok(driver), _) => native(format!("driver {driver}"), true),
        (Err(why), _) => native(format!("driver unknown ({why})"), true),
    }
}

/// Finds out what [`auto_plan`] needs about `ifname`, in the calling thread's network namespace.
/// Nothing here fails: what cannot be found out is recorded as unknown.
pub fn probe(ifname: &str) -> Carpdev {
    let driver = driver_name(ifname).map_err(|e| format!("ETHTOOL_GDRVINFO: {e}"));
    let veth_peer = match driver.as_deref() {
        Ok("veth") => Some(veth_peer(ifname)),
        _ => None,
    };
    Carpdev { driver, veth_peer }
}

/// The mode the XDP program attached to `ifname` runs in (IFLA_XDP_ATTACHED), for an
/// adopted link; `None` if nothing is attached or it cannot be read.
pub fn attached_mode(ifname: &str) -> Option<Mode> {
    let ifindex = nix::net::if_::if_nametoindex(ifname).ok()?;
    let link = get_link(ifindex).ok()?;
    let mut attached = None;
    let (mut drv, mut skb) = (false, false);
    for attr in &link.attributes {
        if let LinkAttribute::Xdp(xdp) = attr {
            for x in xdp {
                match x {
                    LinkXdp::Attached(a) => attached = Some(*a),
                    LinkXdp::DrvProgId(_) => drv = true,
                    LinkXdp::SkbProgId(_) => skb = true,
                    _ => {}
                }
            }
        }
    }
    match attached? {
        XdpAttached::Driver => Some(Mode::Native),
        XdpAttached::SocketBuffer => Some(Mode::Generic),
        XdpAttached::Multiple if drv && !skb => Some(Mode::Native),
        XdpAttached::Multiple if skb && !drv => Some(Mode::Generic),
        _ => None,
    }
}

fn veth_peer(ifname: &str) -> VethPeer {
    let ifindex = match nix::net::if_::if_nametoindex(ifname) {
        Ok(i) => i,
        Err(e) => return VethPeer::Unknown(format!("{ifname}: {e}")),
    };
    let link = match get_link(ifindex) {
        Ok(link) => link,
        Err(e) => return VethPeer::Unknown(format!("RTM_GETLINK {ifname}: {e}")),
    };
    let mut peer = None;
    for attr in &link.attributes {
        match attr {
            // Reported only when the peer's namespace is not the carpdev's.
            LinkAttribute::LinkNetNsId(_) => return VethPeer::OtherNamespace,
            LinkAttribute::Link(index) if *index != 0 => peer = Some(*index),
            _ => {}
        }
    }
    let Some(peer) = peer else {
        return VethPeer::Unknown("no peer (IFLA_LINK)".into());
    };
    let link = match get_link(peer) {
        Ok(link) => link,
        Err(e) => {
            return VethPeer::Unknown(format!("RTM_GETLINK of the peer, ifindex {peer}: {e}"));
        }
    };
    let mut name = None;
    let mut native_xdp = false;
    for attr in &link.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Xdp(xdp) => {
                native_xdp |= xdp.iter().any(|x| {
                    matches!(
                        x,
                        LinkXdp::Attached(XdpAttached::Driver) | LinkXdp::DrvProgId(_)
                    )
                })
            }
            _ => {}
        }
    }
    let Some(name) = name else {
        return VethPeer::Unknown(format!("the peer, ifindex {peer}, has no name"));
    };
    match gro_enabled(&name) {
        Ok(gro) => VethPeer::Here {
            name,
            native_xdp,
            gro,
        },
        Err(e) => VethPeer::Unknown(format!("ETHTOOL_GGRO on {name}: {e}")),
    }
}

/// One RTM_GETLINK request for `ifindex`, answered synchronously.
fn get_link(ifindex: u32) -> std::io::Result<LinkMessage> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut request = LinkMessage::default();
    request.header.index = ifindex;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    header.sequence_number = 1;
    let mut msg = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetLink(request)),
    );
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let (reply, _) = socket.recv_from_full()?;
    let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    match reply.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => Ok(link),
        NetlinkPayload::Error(e) => Err(e.to_io()),
        other => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unexpected RTM_GETLINK reply {other:?}"),
        )),
    }
}

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GGRO: u32 = 0x2b;

/// struct ethtool_drvinfo (linux/ethtool.h).
#[repr(C)]
struct DrvInfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// struct ethtool_value.
#[repr(C)]
struct Value {
    cmd: u32,
    data: u32,
}

/// struct ifreq with the ifr_data member of its union, padded to the union's size.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// One SIOCETHTOOL request on `ifname`; `cmd` is the struct the command reads and writes.
fn ethtool<T>(ifname: &str, cmd: &mut T) -> std::io::Result<()> {
    if ifname.len() >= libc::IFNAMSIZ {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: (cmd as *mut T).cast(),
        _pad: [0; 16],
    };
    req.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
    // SAFETY: plain socket(2); checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `req` is a valid struct ifreq whose data points at the command struct the
    // kernel expects for its `cmd` field; both outlive the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), SIOCETHTOOL as _, &mut req) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The driver of `ifname` as `ethtool -i` prints it (`veth`, `virtio_net`, `bridge`, ...).
pub fn driver_name(ifname: &str) -> std::io::Result<String> {
    let mut info = DrvInfo {
        cmd: ETHTOOL_GDRVINFO,
        driver: [0; 32],
        version: [0; 32],
        fw_version: [0; 32],
        bus_info: [0; 32],
        erom_version: [0; 32],
        reserved2: [0; 12],
        n_priv_flags: 0,
        n_stats: 0,
        testinfo_len: 0,
        eedump_len: 0,
        regdump_len: 0,
    };
    ethtool(ifname, &mut info)?;
    let driver = CStr::from_bytes_until_nul(&info.driver)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
    Ok(driver.to_string_lossy().into_owned())
}

/// Whether GRO is on for `ifname` (`ethtool -k`'s generic-receive-offload).
fn gro_enabled(ifname: &str) -> std::io::Result<bool> {
    let mut value = Value {
        cmd: ETHTOOL_GGRO,
        data: 0,
    };
    ethtool(ifname, &mut value)?;
    Ok(value.data != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn veth(peer: VethPeer) -> Carpdev {
        Carpdev {
            driver: Ok("veth".into()),
            veth_peer: Some(peer),
        }
    }

    fn here(native_xdp: bool, gro: bool) -> VethPeer {
        VethPeer::Here {
            name: "sw-h1".into(),
            native_xdp,
            gro,
        }
    }

    #[test]
    fn explicit_modes_are_taken_as_given() {
        // No lookup: not even a missing interface changes an explicit mode.
        let p = plan_for("no-such-if0", AttachMode::Native);
        assert_eq!(p, Plan::fixed(Mode::Native));
        assert_eq!(
            (p.reason.as_str(), p.generic_if_refused),
            ("--xdp-mode native", false)
        );
        let p = plan_for("no-such-if0", AttachMode::Generic);
        assert_eq!(
            (p.mode, p.reason.as_str()),
            (Mode::Generic, "--xdp-mode generic")
        );
    }

    #[test]
    fn veth_with_a_native_xdp_peer_is_native() {
        for gro in [false, true] {
            let p = auto_plan(&veth(here(true, gro)));
            assert_eq!(p.mode, Mode::Native, "{p:?}");
            assert!(!p.generic_if_refused, "veth always has native XDP");
            assert!(p.reason.contains("sw-h1 has a native XDP program"), "{p:?}");
        }
    }

    #[test]
    fn veth_whose_peer_has_only_gro_is_generic() {
        let p = auto_plan(&veth(here(false, true)));
        assert_eq!(p.mode, Mode::Generic, "{p:?}");
        assert!(
            p.reason.contains("GRO on but no native XDP program"),
            "{p:?}"
        );
    }

    #[test]
    fn veth_with_a_plain_or_hidden_peer_is_generic() {
        let plain = auto_plan(&veth(here(false, false)));
        assert_eq!(plain.mode, Mode::Generic);
        assert!(plain.reason.contains("would be dropped"), "{plain:?}");
        let away = auto_plan(&veth(VethPeer::OtherNamespace));
        assert_eq!(away.mode, Mode::Generic);
        assert!(
            away.reason
                .starts_with("veth whose peer is in another network namespace")
        );
        let unknown = auto_plan(&veth(VethPeer::Unknown("EPERM".into())));
        assert_eq!(unknown.mode, Mode::Generic);
        assert!(unknown.reason.contains("EPERM"));
    }

    #[test]
    fn other_drivers_are_native_with_a_generic_fallback() {
        for driver in [Ok("virtio_net".to_owned()), Err("ENODEV".to_owned())] {
            let facts = Carpdev {
                driver: driver.clone(),
                veth_peer: None,
            };
            let p = auto_plan(&facts);
            assert_eq!((p.mode, p.generic_if_refused), (Mode::Native, true));
            let name = driver.unwrap_or_else(|e| e);
            assert!(p.reason.contains(&name), "{p:?}");
        }
    }

    #[test]
    fn a_missing_interface_is_recorded_as_unknown() {
        let facts = probe("no-such-if0");
        assert!(facts.driver.is_err(), "{facts:?}");
        assert_eq!(facts.veth_peer, None);
        assert_eq!(auto_plan(&facts).mode, Mode::Native);
        assert_eq!(attached_mode("no-such-if0"), None);
    }
}
