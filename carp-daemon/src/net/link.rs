//! Carp interfaces and their addresses over rtnetlink: [`NetHandle`].
//!
//! Each public method is one small, named netlink exchange (or a short fixed sequence of
//! them), so that an error says which request failed on what. See the [module
//! doc](super) for why carp interfaces are macvlans whose only link-local address is the one
//! derived from the virtual MAC, and why their addresses have neither DAD nor (the
//! link-local's aside) a prefix route.
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use carp_common::wire::vhid_of_virtual_mac;
use futures_util::TryStreamExt;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo,
    LinkMessage, MacVlanMode, State,
};
use rtnetlink::sys::AsyncSocket;
use rtnetlink::{Handle, LinkMacVlan, LinkUnspec};
use tokio::task::JoinHandle;

use super::NetError;

/// Start of the interface alias (`ip link show` prints it) that marks a link as created by
/// carpd. [`NetHandle::stale_carp_interfaces`] removes only links carrying it: keepalived's
/// `use_vmac` interfaces are macvlans with the very same MAC prefix, and must survive.
pub const CARP_ALIAS_PREFIX: &str = "carpd vhid ";

/// Receive buffer of the netlink sockets: a dump of many links or addresses, or a burst of
/// events, must not overflow it (netlink-proto drops messages silently on `ENOBUFS`).
pub(super) const NETLINK_RCVBUF: i32 = 1 << 20;

/// What carpd needs to know of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub name: String,
    /// The link-layer address; all zero if the link has none of 6 bytes.
    pub mac: [u8; 6],
    /// `IFF_UP`: configured up.
    pub admin_up: bool,
    /// `IFF_LOWER_UP`: up and the carrier is present. The kernel reports it only while
    /// the link is admin up, so a link set down has no carrier either.
    pub carrier: bool,
    /// `IFLA_OPERSTATE` is `UP` (RFC 2863 operational state).
    pub oper_up: bool,
    /// `IFF_NOARP`: the kernel does no ARP, solicited-node joins or DAD on it.
    pub noarp: bool,
    /// `IFLA_INFO_KIND`, e.g. `macvlan`, `veth`; `None` for physical NICs.
    pub kind: Option<String>,
    /// `IFLA_LINK`: the lower device of a macvlan, VLAN, veth peer...
    pub parent_ifindex: Option<u32>,
    /// `IFLA_IFALIAS`.
    pub alias: Option<String>,
    /// IPv6 address generation is off (`addrgenmode none`): the kernel makes no link-local
    /// address itself.
    pub ipv6_addr_gen_none: bool,
}

impl LinkInfo {
    pub(super) fn from_message(msg: &LinkMessage) -> LinkInfo {
        let flags = msg.header.flags;
        let mut info = LinkInfo {
            ifindex: msg.header.index,
            name: String::new(),
            mac: [0; 6],
            admin_up: flags.contains(LinkFlags::Up),
            carrier: flags.contains(LinkFlags::LowerUp),
            oper_up: false,
            noarp: flags.contains(LinkFlags::Noarp),
            kind: None,
            parent_ifindex: None,
            alias: None,
            ipv6_addr_gen_none: false,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(name) => info.name = name.clone(),
                LinkAttribute::Address(mac) => {
                    if let Ok(mac) = <[u8; 6]>::try_from(mac.as_slice()) {
                        info.mac = mac;
                    }
                }
                LinkAttribute::OperState(state) => info.oper_up = *state == State::Up,
                LinkAttribute::Link(parent) => info.parent_ifindex = Some(*parent),
                LinkAttribute::IfAlias(alias) => info.alias = Some(alias.clone()),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let NlLinkInfo::Kind(kind) = i {
                            info.kind = Some(kind.to_string());
                        }
                    }
                }
                LinkAttribute::AfSpecUnspec(specs) => {
                    info.ipv6_addr_gen_none = specs.iter().any(|s| match s {
                        AfSpecUnspec::Inet6(inet6) => inet6
                            .iter()
                            .any(|a| matches!(a, AfSpecInet6::AddrGenMode(In6AddrGenMode::None))),
                        _ => false,
                    });
                }
                _ => {}
            }
        }
        info
    }
}

/// One address of an interface, with the flags carpd cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddress {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// `IFA_F_NODAD`.
    pub nodad: bool,
    /// `IFA_F_NOPREFIXROUTE`.
    pub noprefixroute: bool,
    /// `IFA_F_TENTATIVE`: IPv6 duplicate address detection still running; the address
    /// cannot be bound to yet.
    pub tentative: bool,
    /// `IFA_F_DADFAILED`: IPv6 duplicate address detection found another holder.
    pub dadfailed: bool,
    /// `IFA_F_SECONDARY`: IPv4 address in the subnet of an earlier (primary) one.
    pub secondary: bool,
}

impl IfAddress {
    pub(crate) fn from_message(msg: &AddressMessage) -> Option<IfAddress> {
        let mut local = None;
        let mut address = None;
        // IFA_FLAGS (32 bits) supersedes the 8 flag bits of the header when present.
        let mut flags = AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits()));
        for attr in &msg.attributes {
            match attr {
                AddressAttribute::Local(a) => local = Some(*a),
                AddressAttribute::Address(a) => address = Some(*a),
                AddressAttribute::Flags(f) => flags = *f,
                _ => {}
            }
        }
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
        // point-to-point links, and the only one IPv6 sends.
        let addr = local.or(address)?;
        Some(IfAddress {
            addr,
            prefix_len: msg.header.prefix_len,
            nodad: flags.contains(AddressFlags::Nodad),
            noprefixroute: flags.contains(AddressFlags::Noprefixroute),
            tentative: flags.contains(AddressFlags::Tentative),
            dadfailed: flags.contains(AddressFlags::Dadfailed),
            secondary: flags.contains(AddressFlags::Secondary),
        })
    }
}

/// The addresses adverts are sent from (OpenBSD: the carpdev's own addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceAddrs {
    /// The first primary IPv4 address.
    pub v4: Option<Ipv4Addr>,
    /// The first usable (not tentative, not duplicate) IPv6 link-local address.
    pub v6_link_local: Option<Ipv6Addr>,
}

/// An rtnetlink connection whose task runs on the tokio runtime that created it. All
/// requests act on the network namespace of the thread that called [`NetHandle::new`].
pub struct NetHandle {
    handle: Handle,
    connection: JoinHandle<()>,
}

impl Drop for NetHandle {
    fn drop(&mut self) {
        // The connection task would end by itself once every request handle is gone; do
        // not leave that to timing.
        self.connection.abort();
    }
}

fn is_errno(err: &rtnetlink::Error, errnos: &[i32]) -> bool {
    matches!(err, rtnetlink::Error::NetlinkError(msg) if errnos.contains(&-msg.raw_code()))
}

fn on_ifindex(ifindex: u32) -> String {
    format!("ifindex {ifindex}")
}

impl NetHandle {
    /// Opens an rtnetlink socket and spawns its connection on the current runtime.
    pub async fn new() -> Result<Self, NetError> {
        let (mut connection, handle, _unsolicited) =
            rtnetlink::new_connection().map_err(|source| NetError::Socket {
                what: "opening NETLINK_ROUTE",
                source,
            })?;
        connection
            .socket_mut()
            .socket_mut()
            .set_rx_buf_sz(NETLINK_RCVBUF)
            .map_err(|source| NetError::Socket {
                what: "setting SO_RCVBUF",
                source,
            })?;
        let connection = tokio::spawn(connection);
        Ok(NetHandle { handle, connection })
    }

    /// The link called `name`, or `None` if there is none.
    pub async fn link_by_name(&self, name: &str) -> Result<Option<LinkInfo>, NetError> {
        let request = self.handle.link().get().match_name(name.to_owned());
        let mut replies = request.execute();
        match replies.try_next().await {
            Ok(msg) => Ok(msg.as_ref().map(LinkInfo::from_message)),
            // A lookup by name answers ENODEV when there is no such link.
            Err(err) if is_errno(&err, &[libc::ENODEV]) => Ok(None),
            Err(err) => Err(NetError::from_rtnetlink(
                "RTM_GETLINK",
                format!("name {name}"),
                err,
            )),
        }
    }

    /// The link with index `ifindex`, or `None` if there is none.
    pub async fn link_by_index(&self, ifindex: u32) -> Result<Option<LinkInfo>, NetError> {
        let mut replies = self.handle.link().get().match_index(ifindex).execute();
        match replies.try_next().await {
            Ok(msg) => Ok(msg.as_ref().map(LinkInfo::from_message)),
            Err(err) if is_errno(&err, &[libc::ENODEV]) => Ok(None),
            Err(err) => Err(NetError::from_rtnetlink(
                "RTM_GETLINK",
                on_ifindex(ifindex),
                err,
            )),
        }
    }

    /// Every link of the namespace.
    pub async fn links(&self) -> Result<Vec<LinkInfo>, NetError> {
        let dump = |err| NetError::from_rtnetlink("RTM_GETLINK", "dump".into(), err);
        let mut replies = self.handle.link().get().execute();
        let mut links = Vec::new();
        while let Some(msg) = replies.try_next().await.map_err(dump)? {
            links.push(LinkInfo::from_message(&msg));
        }
        Ok(links)
    }

    /// Creates the carp interface `name`: a macvlan in bridge mode on the carpdev, with the
    /// virtual MAC `vmac`, IPv6 address generation off and the carpd alias, left down.
    /// Returns its ifindex. If a step after the creation fails, the half-made link is
    /// deleted again. Fails with `EEXIST` if `name` already exists.
    ///
    /// ARP is on: the kernel must resolve neighbours on it (replies to a client's link-local
    /// address leave through it). What keeps a BACKUP's kernel from sending from the virtual
    /// MAC is the dataplane's egress guard, which the caller attaches before bringing the
    /// interface up (see the [module doc](super)).
    pub async fn create_carp_interface(
        &self,
        name: &str,
        carpdev_ifindex: u32,
        vmac: [u8; 6],
    ) -> Result<u32, NetError> {
        self.add_macvlan(name, carpdev_ifindex, vmac).await?;
        let ifindex = self
            .link_by_name(name)
            .await?
            .ok_or_else(|| NetError::NoSuchLink {
                what: format!("carp interface {name} right after its creation"),
            })?
            .ifindex;
        if let Err(err) = self.configure_carp_interface(ifindex, name, vmac).await {
            // Best effort: the error that matters is the one that made us undo.
            let _ = self.delete_link(ifindex).await;
            return Err(err);
        }
        Ok(ifindex)
    }

    /// RTM_NEWLINK of the macvlan. The MAC goes in at creation, so the link never carries a
    /// random one.
    async fn add_macvlan(&self, name: &str, carpdev: u32, vmac: [u8; 6]) -> Result<(), NetError> {
        let message = LinkMacVlan::new(name, carpdev, MacVlanMode::Bridge)
            .address(vmac.to_vec())
            .build();
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(|err| {
                NetError::from_rtnetlink(
                    "RTM_NEWLINK",
                    format!(
                        "macvlan {name} on ifindex {carpdev} with MAC {}",
                        fmt_mac(&vmac)
                    ),
                    err,
                )
            })
    }

    /// RTM_SETLINK of IPv6 `addrgenmode none` and the carpd alias. The kernel refuses the
    /// IPv6 part in the creating RTM_NEWLINK (`EAFNOSUPPORT`), hence a second request,
    /// made while the link is still down so the kernel never generates a link-local address
    /// (or DAD for one) itself: carpd adds the carp one ([`NetHandle::add_link_local`]).
    async fn configure_carp_interface(
        &self,
        ifindex: u32,
        name: &str,
        vmac: [u8; 6],
    ) -> Result<(), NetError> {
        let addr_gen_none =
            LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(
                In6AddrGenMode::None,
            )])]);
        let message = LinkUnspec::new_with_index(ifindex)
            .append_extra_attribute(addr_gen_none)
            .alias(format!("{CARP_ALIAS_PREFIX}{}", vmac[5]))
            .build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|err| {
                NetError::from_rtnetlink(
                    "RTM_SETLINK",
                    format!("{name} ({}): addrgenmode none, alias", on_ifindex(ifindex)),
                    err,
                )
            })
    }

    /// Sets a link administratively up or down.
    pub async fn set_up(&self, ifindex: u32, up: bool) -> Result<(), NetError> {
        let builder = LinkUnspec::new_with_index(ifindex);
        let message = if up { builder.up() } else { builder.down() }.build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|err| {
                let what = if up { "up" } else { "down" };
                NetError::from_rtnetlink(
                    "RTM_SETLINK",
                    format!("{} {what}", on_ifindex(ifindex)),
                    err,
                )
            })
    }

    /// Deletes a link. A link that is already gone (`ENODEV`) is not an error: cleanup
    /// after a crash or a racing `ip link del` must not fail.
    pub async fn delete_link(&self, ifindex: u32) -> Result<(), NetError> {
        match self.handle.link().del(ifindex).execute().await {
            Ok(()) => Ok(()),
            Err(err) if is_errno(&err, &[libc::ENODEV]) => Ok(()),
            Err(err) => Err(NetError::from_rtnetlink(
                "RTM_DELLINK",
                on_ifindex(ifindex),
                err,
            )),
        }
    }

    /// Adds a virtual address with `IFA_F_NODAD | IFA_F_NOPREFIXROUTE` (see the module
    /// doc). Adding an address that is already there succeeds (`EEXIST`), whatever flags
    /// the existing one has: carp interfaces are carpd's own, nobody else adds to them.
    pub async fn add_address(
        &self,
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), NetError> {
        let mut request = self.handle.address().add(ifindex, addr, prefix_len);
        let message = request.message_mut();
        message.header.flags = AddressHeaderFlags::Nodad;
        message.attributes.push(AddressAttribute::Flags(
            AddressFlags::Nodad | AddressFlags::Noprefixroute,
        ));
        match request.execute().await {
            Ok(()) => Ok(()),
            Err(err) if is_errno(&err, &[libc::EEXIST]) => Ok(()),
            Err(err) => Err(NetError::from_rtnetlink(
                "RTM_NEWADDR",
                format!("{addr}/{prefix_len} on {}", on_ifindex(ifindex)),
                err,
            )),
        }
    }

    /// Adds the carp interface's IPv6 link-local address (see [`carp_link_local`]) as a
    /// `/64` with `IFA_F_NODAD`: both routers hold it, as they hold every virtual address.
    /// Unlike those it keeps its prefix route: `fe80::/64 dev carpN` is how replies to a
    /// client's link-local address, which arrived on carpN, leave through carpN. Adding it
    /// again succeeds (`EEXIST`).
    pub async fn add_link_local(&self, ifindex: u32, addr: Ipv6Addr) -> Result<(), NetError> {
        let mut request =
            self.handle
                .address()
                .add(ifindex, IpAddr::V6(addr), LINK_LOCAL_PREFIX_LEN);
        let message = request.message_mut();
        message.header.flags = AddressHeaderFlags::Nodad;
        message
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        match request.execute().await {
            Ok(()) => Ok(()),
            Err(err) if is_errno(&err, &[libc::EEXIST]) => Ok(()),
            Err(err) => Err(NetError::from_rtnetlink(
                "RTM_NEWADDR",
                format!("{addr}/{LINK_LOCAL_PREFIX_LEN} on {}", on_ifindex(ifindex)),
                err,
            )),
        }
    }

    /// Removes an address. One that is not there (`EADDRNOTAVAIL`, `ENOENT`), or whose
    /// link is gone (`ENODEV`), is not an error. The prefix length must be the one it was
    /// added with: IPv6 matches on it, so another length also means "not there".
    pub async fn remove_address(
        &self,
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), NetError> {
        let message = match addr {
            IpAddr::V4(a) => rtnetlink::AddressMessageBuilder::<Ipv4Addr>::new()
                .index(ifindex)
                .address(a, prefix_len)
                .build(),
            IpAddr::V6(a) => rtnetlink::AddressMessageBuilder::<Ipv6Addr>::new()
                .index(ifindex)
                .address(a, prefix_len)
                .build(),
        };
        let gone = [libc::EADDRNOTAVAIL, libc::ENOENT, libc::ENODEV];
        match self.handle.address().del(message).execute().await {
            Ok(()) => Ok(()),
            Err(err) if is_errno(&err, &gone) => Ok(()),
            Err(err) => Err(NetError::from_rtnetlink(
                "RTM_DELADDR",
                format!("{addr}/{prefix_len} on {}", on_ifindex(ifindex)),
                err,
            )),
        }
    }

    /// The addresses of a link, IPv4 and IPv6, in the kernel's order (IPv4 primary
    /// addresses before their secondaries).
    pub async fn addresses(&self, ifindex: u32) -> Result<Vec<IfAddress>, NetError> {
        let dump = |err| NetError::from_rtnetlink("RTM_GETADDR", on_ifindex(ifindex), err);
        // RTM_GETADDR dumps every address of the namespace (both families);
        // rtnetlink keeps those of `ifindex`.
        let request = self.handle.address().get().set_link_index_filter(ifindex);
        let mut replies = request.execute();
        let mut addresses = Vec::new();
        while let Some(msg) = replies.try_next().await.map_err(dump)? {
            addresses.extend(IfAddress::from_message(&msg));
        }
        Ok(addresses)
    }

    /// The addresses adverts go out from on this link (the carpdev): its first primary
    /// IPv4 address and its first usable IPv6 link-local address.
    pub async fn source_addresses(&self, ifindex: u32) -> Result<SourceAddrs, NetError> {
        let addresses = self.addresses(ifindex).await?;
        Ok(pick_sources(&addresses))
    }

    /// Carp interfaces an earlier carpd left behind (it crashed or was killed): macvlans
    /// with a virtual MAC and carpd's alias. Links of other software with the same MAC
    /// prefix (keepalived's `use_vmac`) lack the alias and are left alone.
    pub async fn stale_carp_interfaces(&self) -> Result<Vec<LinkInfo>, NetError> {
        let mut links = self.links().await?;
        links.retain(is_carpd_link);
        Ok(links)
    }

    /// Unlabelled leftovers of an earlier carpd's half-made carp interfaces (see
    /// [`is_half_made_carp_link`]) among the links carpd is about to create: down, no
    /// address, nothing else uses them, and they would make the creation fail with `EEXIST`.
    pub async fn half_made_carp_interfaces(
        &self,
        planned: &[PlannedCarpLink],
    ) -> Result<Vec<LinkInfo>, NetError> {
        let mut found = Vec::new();
        for p in planned {
            let Some(link) = self.link_by_name(&p.name).await? else {
                continue;
            };
            if is_half_made_carp_link(&link, p) && self.addresses(link.ifindex).await?.is_empty() {
                found.push(link);
            }
        }
        Ok(found)
    }
}

/// A carp interface carpd is about to create: its name, carpdev and virtual MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCarpLink {
    pub name: String,
    pub carpdev_ifindex: u32,
    pub vmac: [u8; 6],
}

/// True for the leftover of a carpd that died between creating a carp interface's macvlan
/// and labelling it ([`NetHandle::create_carp_interface`] takes two requests): a macvlan
/// with exactly the planned name, carpdev and virtual MAC, no alias, still down. The caller
/// also checks that it holds no address. Other software's virtual-MAC macvlans
/// (keepalived's `use_vmac`) differ in name, are up, or have addresses, and stay.
pub fn is_half_made_carp_link(link: &LinkInfo, planned: &PlannedCarpLink) -> bool {
    link.kind.as_deref() == Some("macvlan")
        && link.name == planned.name
        && link.parent_ifindex == Some(planned.carpdev_ifindex)
        && link.mac == planned.vmac
        && link.alias.is_none()
        && !link.admin_up
}

/// True for a link carpd created: see [`NetHandle::stale_carp_interfaces`].
pub fn is_carpd_link(link: &LinkInfo) -> bool {
    link.kind.as_deref() == Some("macvlan")
        && (vhid_of_virtual_mac(&link.mac).is_some()
            || carp_common::vrrp::vrid_of_v6_virtual_mac(&link.mac).is_some())
        && link
            .alias
            .as_deref()
            .is_some_and(|a| a.starts_with(CARP_ALIAS_PREFIX))
}

pub(crate) fn pick_sources(addresses: &[IfAddress]) -> SourceAddrs {
    let v4 = addresses.iter().find_map(|a| match a.addr {
        IpAddr::V4(v4) if !a.secondary => Some(v4),
        _ => None,
    });
    let v6_link_local = addresses.iter().find_map(|a| match a.addr {
        IpAddr::V6(v6) if v6.is_unicast_link_local() && !a.tentative && !a.dadfailed => Some(v6),
        _ => None,
    });
    SourceAddrs { v4, v6_link_local }
}

/// Prefix length of the carp interface's link-local address (RFC 4291 2.5.6).
pub const LINK_LOCAL_PREFIX_LEN: u8 = 64;

/// The IPv6 link-local address of a carp interface: `fe80::/64` with the modified EUI-64
/// interface identifier of its MAC (RFC 4291 2.5.1, appendix A: `ff:fe` in the middle, the
/// universal/local bit flipped). For the virtual MAC `00:00:5e:00:01:<vhid>` that is
/// `fe80::200:5eff:fe00:1<vhid in hex>`, the address OpenBSD gives `carpN` (e.g.
/// `fe80::200:5eff:fe00:102%carp0` for vhid 2).
pub fn carp_link_local(mac: [u8; 6]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a[0] = 0xfe;
    a[1] = 0x80;
    a[8] = mac[0] ^ 0x02;
    a[9] = mac[1];
    a[10] = mac[2];
    a[11] = 0xff;
    a[12] = 0xfe;
    a[13] = mac[3];
    a[14] = mac[4];
    a[15] = mac[5];
    Ipv6Addr::from(a)
}

fn fmt_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The solicited-node multicast group of an IPv6 address (RFC 4291 2.7.1):
/// `ff02::1:ffXX:XXXX` with the address's low 24 bits. Neighbour solicitations for the
/// address are sent there.
pub fn solicited_node_group(addr: &Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// Membership of the carpdev in the solicited-node groups of the virtual IPv6 addresses.
///
/// The kernel joins these groups on carpN too, but the MLD reports it sends for them leave
/// from the virtual MAC and so only while this host is master (the egress guard drops them
/// otherwise): a BACKUP, or a master that joined while it was backup, would be left out by
/// an MLD-snooping switch. Without a membership it reports, neighbour solicitations for the
/// virtual addresses are dropped by such a switch (or by the carpdev NIC's multicast filter,
/// should the macvlan not have synced the group to it), and the XDP program cannot answer
/// them. Joining on the carpdev puts the group in its filter and sends the MLD report from
/// the carpdev's own MAC and link-local address, which is harmless on a BACKUP.
///
/// Two virtual addresses can share a group (same low 24 bits), so memberships are counted.
/// Dropping this leaves every group (the kernel does, with the socket).
pub struct SolicitedNodeGroups {
    socket: socket2::Socket,
    carpdev_ifindex: u32,
    joined: BTreeMap<Ipv6Addr, usize>,
}

impl SolicitedNodeGroups {
    /// A membership socket for the carpdev `carpdev_ifindex`, in the calling thread's
    /// network namespace.
    pub fn open(carpdev_ifindex: u32) -> Result<Self, NetError> {
        let socket = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None)
            .map_err(|source| NetError::Socket {
                what: "opening the IPv6 multicast membership socket",
                source,
            })?;
        Ok(SolicitedNodeGroups {
            socket,
            carpdev_ifindex,
            joined: BTreeMap::new(),
        })
    }

    /// Joins the solicited-node group of `vip` (once per group, however many addresses).
    pub fn join(&mut self, vip: &Ipv6Addr) -> Result<(), NetError> {
        let group = solicited_node_group(vip);
        if let Some(n) = self.joined.get_mut(&group) {
            *n += 1;
            return Ok(());
        }
        self.socket
            .join_multicast_v6(&group, self.carpdev_ifindex)
            .map_err(|source| NetError::Membership {
                op: "IPV6_ADD_MEMBERSHIP",
                group,
                vip: *vip,
                ifindex: self.carpdev_ifindex,
                source,
            })?;
        self.joined.insert(group, 1);
        Ok(())
    }

    /// Leaves the solicited-node group of `vip` when no other joined address needs it.
    pub fn leave(&mut self, vip: &Ipv6Addr) -> Result<(), NetError> {
        let group = solicited_node_group(vip);
        let Some(n) = self.joined.get_mut(&group) else {
            return Ok(());
        };
        *n -= 1;
        if *n > 0 {
            return Ok(());
        }
        self.joined.remove(&group);
        self.socket
            .leave_multicast_v6(&group, self.carpdev_ifindex)
            .map_err(|source| NetError::Membership {
                op: "IPV6_DROP_MEMBERSHIP",
                group,
                vip: *vip,
                ifindex: self.carpdev_ifindex,
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solicited_node_group_takes_low_24_bits() {
        let vip: Ipv6Addr = "2001:db8::12:3456:789a".parse().unwrap();
        assert_eq!(
            solicited_node_group(&vip),
            "ff02::1:ff56:789a".parse::<Ipv6Addr>().unwrap()
        );
    }

    fn addr(a: &str, flags: &[&str]) -> IfAddress {
        IfAddress {
            addr: a.parse().unwrap(),
            prefix_len: 24,
            nodad: false,
            noprefixroute: false,
            tentative: flags.contains(&"tentative"),
            dadfailed: flags.contains(&"dadfailed"),
            secondary: flags.contains(&"secondary"),
        }
    }

    #[test]
    fn advert_sources_skip_secondary_tentative_and_global() {
        let addresses = [
            addr("2001:db8::1", &[]),
            addr("fe80::1", &["tentative"]),
            addr("192.0.2.9", &["secondary"]),
            addr("fe80::2", &[]),
            addr("192.0.2.1", &[]),
        ];
        let s = pick_sources(&addresses);
        assert_eq!(s.v4, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(s.v6_link_local, Some("fe80::2".parse().unwrap()));
        assert_eq!(pick_sources(&[]), SourceAddrs::default());
    }

    #[test]
    fn half_made_means_planned_name_carpdev_and_mac_unlabelled_and_down() {
        let planned = PlannedCarpLink {
            name: "carp1".into(),
            carpdev_ifindex: 2,
            vmac: [0, 0, 0x5e, 0, 1, 1],
        };
        let half = LinkInfo {
            ifindex: 5,
            name: "carp1".into(),
            mac: planned.vmac,
            admin_up: false,
            carrier: false,
            oper_up: false,
            noarp: true,
            kind: Some("macvlan".into()),
            parent_ifindex: Some(2),
            alias: None,
            ipv6_addr_gen_none: false,
        };
        assert!(is_half_made_carp_link(&half, &planned));
        let not = |change: &dyn Fn(&mut LinkInfo)| {
            let mut l = half.clone();
            change(&mut l);
            !is_half_made_carp_link(&l, &planned)
        };
        assert!(not(&|l| l.name = "vrrp.1".into()));
        assert!(not(&|l| l.parent_ifindex = Some(3)));
        assert!(not(&|l| l.mac[5] = 2));
        assert!(not(&|l| l.admin_up = true));
        assert!(not(&|l| l.alias = Some("keepalived".into())));
        assert!(not(&|l| l.kind = Some("dummy".into())));
    }

    #[test]
    fn carp_link_local_is_the_modified_eui64_of_the_mac() {
        use carp_common::wire::virtual_mac;
        let ll = |vhid| carp_link_local(virtual_mac(vhid)).to_string();
        // OpenBSD's carp0 addresses (ifconfig shows fe80::200:5eff:fe00:102%carp0 for vhid 2).
        assert_eq!(ll(1), "fe80::200:5eff:fe00:101");
        assert_eq!(ll(2), "fe80::200:5eff:fe00:102");
        assert_eq!(ll(0x2a), "fe80::200:5eff:fe00:12a");
        assert_eq!(ll(255), "fe80::200:5eff:fe00:1ff");
        // The universal/local bit is flipped, not set: a local MAC loses it.
        assert_eq!(
            carp_link_local([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]).to_string(),
            "fe80::11:22ff:fe33:4455"
        );
        assert!(carp_link_local(virtual_mac(7)).is_unicast_link_local());
    }

    #[test]
    fn only_aliased_virtual_mac_macvlans_are_carpds() {
        let mut link = LinkInfo {
            ifindex: 5,
            name: "carp1".into(),
            mac: [0, 0, 0x5e, 0, 1, 1],
            admin_up: true,
            carrier: true,
            oper_up: true,
            noarp: false,
            kind: Some("macvlan".into()),
            parent_ifindex: Some(2),
            alias: Some(format!("{CARP_ALIAS_PREFIX}1")),
            ipv6_addr_gen_none: true,
        };
        assert!(is_carpd_link(&link));
        link.alias = None; // keepalived's vrrp.1
        assert!(!is_carpd_link(&link));
        link.alias = Some(format!("{CARP_ALIAS_PREFIX}1"));
        link.mac = [2, 0, 0, 0, 0, 1];
        assert!(!is_carpd_link(&link));
        link.mac = [0, 0, 0x5e, 0, 1, 1];
        link.kind = Some("dummy".into());
        assert!(!is_carpd_link(&link));
    }
}

/// Root-only tests, each in a fresh network namespace with a veth pair `cdev`/`cpeer` as
/// the carpdev.
#[cfg(test)]
pub(super) mod netns_tests {
    use super::*;
    use crate::net::testns::{in_netns, ip, poll_until};
    use carp_common::wire::virtual_mac;

    /// Creates the veth pair `cdev` (the carpdev) and `cpeer`, both up, and waits for the
    /// carrier on `cdev`. IPv6 DAD is off on `cdev` so its link-local address is usable at
    /// once.
    pub(crate) async fn carpdev(ns: &str, net: &NetHandle) -> LinkInfo {
        ip(
            ns,
            &[
                "link", "add", "cdev", "type", "veth", "peer", "name", "cpeer",
            ],
        );
        std::fs::write("/proc/sys/net/ipv6/conf/cdev/accept_dad", "0").unwrap();
        ip(ns, &["link", "set", "cdev", "up"]);
        ip(ns, &["link", "set", "cpeer", "up"]);
        let net = &net;
        poll_until("carrier on cdev", move || async move {
            net.link_by_name("cdev")
                .await
                .unwrap()
                .is_some_and(|l| l.carrier)
        })
        .await;
        net.link_by_name("cdev").await.unwrap().unwrap()
    }

    #[test]
    fn carp_interface_is_a_macvlan_with_the_virtual_mac_and_only_the_carp_link_local() {
        in_netns("carp_interface_is_a_macvlan", |ns| async move {
            let net = NetHandle::new().await.unwrap();
            let cdev = carpdev(&ns, &net).await;
            let vmac = virtual_mac(1);
            let ifindex = net
                .create_carp_interface("carp1", cdev.ifindex, vmac)
                .await
                .unwrap();

            let link = net
                .link_by_index(ifindex)
                .await
                .unwrap()
                .expect("carp1 exists");
            assert_eq!(link.name, "carp1");
            assert_eq!(link.kind.as_deref(), Some("macvlan"));
            assert_eq!(link.mac, vmac);
            assert_eq!(link.parent_ifindex, Some(cdev.ifindex));
            assert!(
                !link.noarp,
                "carp1 resolves neighbours (the egress guard keeps it quiet)"
            );
            assert!(link.ipv6_addr_gen_none, "carp1 must have addrgenmode none");
            assert!(!link.admin_up, "carp1 is left down");
            assert_eq!(link.alias.as_deref(), Some("carpd vhid 1"));
            let details = ip(&ns, &["-d", "link", "show", "carp1"]);
            assert!(details.contains("macvlan mode bridge"), "{details}");

            // Control: a plain macvlan on the same carpdev does get a link-local address.
            ip(
                &ns,
                &[
                    "link", "add", "link", "cdev", "name", "ctl0", "type", "macvlan", "mode",
                    "bridge",
                ],
            );
            ip(&ns, &["link", "set", "ctl0", "up"]);
            net.set_up(ifindex, true).await.unwrap();
            let ctl0 = net.link_by_name("ctl0").await.unwrap().unwrap().ifindex;
            let n = &net;
            poll_until(
                "a link-local address on the control macvlan",
                move || async move {
                    let addrs = n.addresses(ctl0).await.unwrap();
                    addrs
                        .iter()
                        .any(|a| matches!(a.addr, IpAddr::V6(v6) if v6.is_unicast_link_local()))
                },
            )
            .await;
            // Link-local addresses are generated when a link comes up with a carrier; the
            // control has its own, so carp1 would have one by now.
            let link = net.link_by_index(ifindex).await.unwrap().unwrap();
            assert!(link.admin_up && link.carrier, "{link:?}");
            assert_eq!(
                net.addresses(ifindex).await.unwrap(),
                vec![],
                "carp1 has no address"
            );

            // The carp link-local: no DAD, a /64 with its prefix route, usable at once.
            let ll = carp_link_local(vmac);
            for _ in 0..2 {
                // The second round proves adding is idempotent.
                net.add_link_local(ifindex, ll).await.unwrap();
            }
            let addrs = net.addresses(ifindex).await.unwrap();
            assert_eq!(addrs.len(), 1, "{addrs:?}");
            let a = addrs[0];
            assert_eq!(a.addr, IpAddr::V6(ll));
            assert_eq!(a.prefix_len, LINK_LOCAL_PREFIX_LEN);
            assert!(a.nodad && !a.noprefixroute, "{a:?}");
            assert!(!a.tentative && !a.dadfailed, "{a:?}");
            let routes = ip(&ns, &["-6", "route", "show", "dev", "carp1"]);
            assert!(routes.contains("fe80::/64"), "{routes}");
            let shown = ip(&ns, &["-6", "addr", "show", "dev", "carp1"]);
            assert!(
                shown.contains("inet6 fe80::200:5eff:fe00:101/64 scope link nodad"),
                "{shown}"
            );

            let again = net.create_carp_interface("carp1", cdev.ifindex, vmac).await;
            let err = again.expect_err("carp1 exists already");
            assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");
            assert!(err.to_string().contains("macvlan carp1"), "{err}");
        });
    }

    #[test]
    fn addresses_have_no_dad_and_no_prefix_route_and_are_idempotent() {
        in_netns(
            "addresses_have_no_dad_and_no_prefix_route",
            |ns| async move {
                let net = NetHandle::new().await.unwrap();
                let cdev = carpdev(&ns, &net).await;
                let ifindex = net
                    .create_carp_interface("carp1", cdev.ifindex, virtual_mac(1))
                    .await
                    .unwrap();
                net.set_up(ifindex, true).await.unwrap();
                let v4: IpAddr = "192.0.2.10".parse().unwrap();
                let v6: IpAddr = "2001:db8::10".parse().unwrap();
                for _ in 0..2 {
                    // The second round proves adding is idempotent.
                    net.add_address(ifindex, v4, 24).await.unwrap();
                    net.add_address(ifindex, v6, 64).await.unwrap();
                }
                let addrs = net.addresses(ifindex).await.unwrap();
                assert_eq!(addrs.len(), 2, "{addrs:?}");
                for a in &addrs {
                    assert!(a.noprefixroute, "{a:?}");
                    // IPv4 has no DAD; the kernel does not keep IFA_F_NODAD on IPv4 addresses.
                    assert_eq!(a.nodad, a.addr.is_ipv6(), "{a:?}");
                    assert!(!a.tentative && !a.dadfailed, "{a:?}");
                }
                assert!(addrs.iter().any(|a| a.addr == v4 && a.prefix_len == 24));
                assert!(addrs.iter().any(|a| a.addr == v6 && a.prefix_len == 64));

                // No connected route via carp1, yet the addresses are local.
                assert_eq!(ip(&ns, &["-4", "route", "show", "dev", "carp1"]).trim(), "");
                let v6_routes = ip(&ns, &["-6", "route", "show", "dev", "carp1"]);
                assert!(!v6_routes.contains("2001:db8::/64"), "{v6_routes}");
                let local = ip(&ns, &["route", "show", "table", "local", "dev", "carp1"]);
                assert!(local.contains("local 192.0.2.10"), "{local}");
                let local6 = ip(
                    &ns,
                    &["-6", "route", "show", "table", "local", "dev", "carp1"],
                );
                assert!(local6.contains("local 2001:db8::10"), "{local6}");
                // Not NOARP: the kernel joins the solicited-node group on carp1 (its MLD
                // reports leave only through the dataplane's egress guard, i.e. as master).
                let groups = ip(&ns, &["-6", "maddr", "show", "dev", "carp1"]);
                assert!(groups.contains("ff02::1:ff00:10"), "{groups}");

                for _ in 0..2 {
                    // The second round proves removing is idempotent.
                    net.remove_address(ifindex, v4, 24).await.unwrap();
                    net.remove_address(ifindex, v6, 64).await.unwrap();
                }
                assert_eq!(net.addresses(ifindex).await.unwrap(), vec![]);

                net.delete_link(ifindex).await.unwrap();
                assert_eq!(net.link_by_index(ifindex).await.unwrap(), None);
                assert_eq!(net.link_by_name("carp1").await.unwrap(), None);
                net.delete_link(ifindex).await.unwrap();
                net.remove_address(ifindex, v4, 24).await.unwrap();
            },
        );
    }

    #[test]
    fn advert_sources_are_the_carpdevs_primary_ipv4_and_link_local() {
        in_netns("advert_sources", |ns| async move {
            let net = NetHandle::new().await.unwrap();
            let cdev = carpdev(&ns, &net).await;
            ip(&ns, &["addr", "add", "198.51.100.1/24", "dev", "cdev"]);
            ip(&ns, &["addr", "add", "198.51.100.2/24", "dev", "cdev"]);
            let n = &net;
            poll_until("a usable link-local address on cdev", move || async move {
                n.source_addresses(cdev.ifindex)
                    .await
                    .unwrap()
                    .v6_link_local
                    .is_some()
            })
            .await;
            let sources = net.source_addresses(cdev.ifindex).await.unwrap();
            assert_eq!(sources.v4, Some(Ipv4Addr::new(198, 51, 100, 1)));
            assert!(sources.v6_link_local.unwrap().is_unicast_link_local());
        });
    }

    #[test]
    fn stale_carp_interfaces_are_carpds_only() {
        in_netns("stale_carp_interfaces", |ns| async move {
            let net = NetHandle::new().await.unwrap();
            let cdev = carpdev(&ns, &net).await;
            net.create_carp_interface("carp7", cdev.ifindex, virtual_mac(7))
                .await
                .unwrap();
            // keepalived's use_vmac: same MAC prefix, no carpd alias. Must survive.
            ip(
                &ns,
                &[
                    "link",
                    "add",
                    "link",
                    "cdev",
                    "name",
                    "vrrp.8",
                    "address",
                    "00:00:5e:00:01:08",
                    "type",
                    "macvlan",
                ],
            );
            ip(
                &ns,
                &[
                    "link", "add", "link", "cdev", "name", "mv0", "type", "macvlan",
                ],
            );
            // "Crash": the handle is gone, the interface stays.
            drop(net);

            let net = NetHandle::new().await.unwrap();
            let stale = net.stale_carp_interfaces().await.unwrap();
            let names: Vec<&str> = stale.iter().map(|l| l.name.as_str()).collect();
            assert_eq!(names, ["carp7"]);
            net.delete_link(stale[0].ifindex).await.unwrap();
            assert_eq!(net.stale_carp_interfaces().await.unwrap(), vec![]);
            assert!(net.link_by_name("vrrp.8").await.unwrap().is_some());
        });
    }

    #[test]
    fn a_half_made_carp_interface_is_found_and_a_used_one_is_not() {
        in_netns("half_made_carp_interface", |ns| async move {
            let net = NetHandle::new().await.unwrap();
            let cdev = carpdev(&ns, &net).await;
            // What a carpd killed between the two requests leaves: the NOARP macvlan
            // with the virtual MAC, no alias, no addrgenmode, down.
            let half_made = |name: &str, mac: &str| {
                ip(
                    &ns,
                    &[
                        "link", "add", "link", "cdev", "name", name, "address", mac, "arp", "off",
                        "type", "macvlan", "mode", "bridge",
                    ],
                )
            };
            half_made("carp1", "00:00:5e:00:01:01");
            half_made("carp2", "00:00:5e:00:01:02");
            ip(&ns, &["addr", "add", "192.0.2.2/24", "dev", "carp2"]);
            half_made("carp3", "00:00:5e:00:01:03");
            let planned = |name: &str, vhid: u8| PlannedCarpLink {
                name: name.into(),
                carpdev_ifindex: cdev.ifindex,
                vmac: virtual_mac(vhid),
            };
            let plan = [
                planned("carp1", 1),
                planned("carp2", 2),
                planned("carp4", 4),
            ];
            let found = net.half_made_carp_interfaces(&plan).await.unwrap();
            let names: Vec<&str> = found.iter().map(|l| l.name.as_str()).collect();
            // carp2 holds an address (someone uses it), carp3 is not planned.
            assert_eq!(names, ["carp1"]);
            assert_eq!(net.stale_carp_interfaces().await.unwrap(), vec![]);
        });
    }

    #[test]
    fn errors_name_the_request_the_target_and_the_errno() {
        in_netns("errors_name_the_request", |_ns| async move {
            let net = NetHandle::new().await.unwrap();
            let err = net.set_up(999_999, true).await.unwrap_err();
            assert_eq!(err.errno(), Some(libc::ENODEV), "{err}");
            let text = err.to_string();
            assert!(
                text.contains("RTM_SETLINK") && text.contains("ifindex 999999 up"),
                "{text}"
            );

            let addr: IpAddr = "192.0.2.1".parse().unwrap();
            let err = net.add_address(999_999, addr, 24).await.unwrap_err();
            assert_eq!(err.errno(), Some(libc::ENODEV), "{err}");
            assert!(
                err.to_string().contains("192.0.2.1/24 on ifindex 999999"),
                "{err}"
            );
        });
    }

    #[test]
    fn solicited_node_groups_are_joined_on_the_carpdev_once_per_group() {
        in_netns("solicited_node_groups", |ns| async move {
            let net = NetHandle::new().await.unwrap();
            let cdev = carpdev(&ns, &net).await;
            let mut groups = SolicitedNodeGroups::open(cdev.ifindex).unwrap();
            // Same low 24 bits: one group.
            let a: Ipv6Addr = "2001:db8::10".parse().unwrap();
            let b: Ipv6Addr = "2001:db8:1::10".parse().unwrap();
            let joined =
                || ip(&ns, &["-6", "maddr", "show", "dev", "cdev"]).contains("ff02::1:ff00:10");
            groups.join(&a).unwrap();
            groups.join(&b).unwrap();
            assert!(joined());
            groups.leave(&a).unwrap();
            assert!(joined(), "b still needs the group");
            groups.leave(&b).unwrap();
            assert!(!joined());
            groups.leave(&b).unwrap(); // not joined: nothing to do
        });
    }
}
