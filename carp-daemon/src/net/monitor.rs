//! Link and address events from the kernel's `RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR` and
//! `RTNLGRP_IPV6_IFADDR` groups.
//!
//! The daemon puts the vhids of a carpdev in INIT when its carrier goes, and restarts their
//! election when it comes back. The kernel sends `RTM_NEWLINK` for many reasons besides
//! those (statistics, MTU, addresses of the link, a macvlan created on top); the monitor
//! passes on only messages that change a link's `(admin_up, carrier)` pair, its creation
//! and its deletion, so a carrier that "returns" without having left does not restart an
//! election. Address additions and removals are passed on as they come: the daemon compares
//! them with what it configured, to notice a virtual address removed behind its back.
use std::collections::HashMap;
use std::net::IpAddr;

use futures::channel::mpsc::UnboundedReceiver;
use futures_util::StreamExt;
use futures_util::TryStreamExt;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::AddressMessage;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use rtnetlink::{Handle, MulticastGroup};
use tokio::task::JoinHandle;

use super::NetError;
use super::link::{IfAddress, LinkInfo, NETLINK_RCVBUF};

/// A change of a link's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    pub ifindex: u32,
    pub name: String,
    /// Up with carrier (`IFF_LOWER_UP`; false whenever the link is admin down).
    pub carrier: bool,
    /// Configured up (`IFF_UP`).
    pub admin_up: bool,
    /// The link was deleted (`RTM_DELLINK`); `carrier` and `admin_up` are then false.
    pub deleted: bool,
    /// The link is new: an ifindex not seen before (a link created, or moved into this
    /// namespace).
    pub created: bool,
}

/// What the monitor reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// A link was created or deleted, or its admin or carrier state changed.
    Link(LinkEvent),
    /// An address was added to (`removed: false`, `RTM_NEWADDR`) or removed from
    /// (`RTM_DELADDR`) the link `ifindex`. The kernel also sends `RTM_NEWADDR` when an
    /// address's flags or lifetimes change.
    Address {
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
        removed: bool,
    },
}

type Messages = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// A subscription to link and address changes in the calling thread's network namespace.
///
/// Create it *before* reading the initial state of the links it is about (e.g. with
/// [`NetHandle::link_by_name`](super::NetHandle::link_by_name)): a change between the
/// read and the subscription would otherwise be missed. The monitor's own baseline is a
/// dump taken right after subscribing, so a change is reported relative to that.
pub struct LinkMonitor {
    messages: Messages,
    /// Last known `(admin_up, carrier)` per ifindex.
    last: HashMap<u32, (bool, bool)>,
    // Kept so that the connection has a request handle for the lifetime of the monitor.
    _handle: Handle,
    connection: JoinHandle<()>,
}

impl Drop for LinkMonitor {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl LinkMonitor {
    /// Subscribes to `RTNLGRP_LINK` and the IPv4 and IPv6 address groups, and records the
    /// current state of every link.
    pub async fn new() -> Result<Self, NetError> {
        let groups = [
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ];
        let (mut connection, handle, messages) = rtnetlink::new_multicast_connection(&groups)
            .map_err(|source| NetError::Socket {
                what: "subscribing to RTNLGRP_LINK and the address groups",
                source,
            })?;
        // A burst of events (many links flapping, a macvlan per vhid created) must not
        // overflow the socket: netlink-proto drops on ENOBUFS with only a log line.
        connection
            .socket_mut()
            .socket_mut()
            .set_rx_buf_sz(NETLINK_RCVBUF)
            .map_err(|source| NetError::Socket {
                what: "setting SO_RCVBUF of the link monitor",
                source,
            })?;
        let connection = tokio::spawn(connection);
        let last = baseline(&handle).await?;
        Ok(LinkMonitor {
            messages,
            last,
            _handle: handle,
            connection,
        })
    }

    /// The next link or address change. Cancel safe (a message is taken from the channel
    /// and handled without awaiting in between), so it can sit in a `tokio::select!` loop.
    pub async fn next(&mut self) -> Result<NetEvent, NetError> {
        loop {
            let Some((message, _)) = self.messages.next().await else {
                return Err(NetError::MonitorClosed);
            };
            if let Some(event) = self.on_message(message) {
                return Ok(event);
            }
        }
    }

    fn on_message(&mut self, message: NetlinkMessage<RouteNetlinkMessage>) -> Option<NetEvent> {
        let NetlinkPayload::InnerMessage(message) = message.payload else {
            return None;
        };
        match message {
            RouteNetlinkMessage::NewLink(link) => {
                let info = LinkInfo::from_message(&link);
                let state = (info.admin_up, info.carrier);
                let before = self.last.insert(info.ifindex, state);
                if before == Some(state) {
                    return None;
                }
                Some(NetEvent::Link(LinkEvent {
                    ifindex: info.ifindex,
                    name: info.name,
                    carrier: info.carrier,
                    admin_up: info.admin_up,
                    deleted: false,
                    created: before.is_none(),
                }))
            }
            RouteNetlinkMessage::DelLink(link) => {
                let info = LinkInfo::from_message(&link);
                self.last.remove(&info.ifindex);
                Some(NetEvent::Link(LinkEvent {
                    ifindex: info.ifindex,
                    name: info.name,
                    carrier: false,
                    admin_up: false,
                    deleted: true,
                    created: false,
                }))
            }
            RouteNetlinkMessage::NewAddress(msg) => address_event(&msg, false),
            RouteNetlinkMessage::DelAddress(msg) => address_event(&msg, true),
            _ => None,
        }
    }
}

fn address_event(msg: &AddressMessage, removed: bool) -> Option<NetEvent> {
    let address = IfAddress::from_message(msg)?;
    Some(NetEvent::Address {
        ifindex: msg.header.index,
        addr: address.addr,
        prefix_len: address.prefix_len,
        removed,
    })
}

/// `(admin_up, carrier)` of every link now.
async fn baseline(handle: &Handle) -> Result<HashMap<u32, (bool, bool)>, NetError> {
    let dump = |err| NetError::from_rtnetlink("RTM_GETLINK", "dump (link monitor)".into(), err);
    let mut replies = handle.link().get().execute();
    let mut last = HashMap::new();
    while let Some(link) = replies.try_next().await.map_err(dump)? {
        let info = LinkInfo::from_message(&link);
        last.insert(info.ifindex, (info.admin_up, info.carrier));
    }
    Ok(last)
}

#[cfg(test)]
mod netns_tests {
    use super::*;
    use crate::net::NetHandle;
    use crate::net::link::netns_tests::carpdev;
    use crate::net::testns::{TIMEOUT, in_netns, ip};

    /// The next link event about `ifindex`, skipping events of other links (the veth
    /// peer's) and address events.
    async fn next_for(monitor: &mut LinkMonitor, ifindex: u32) -> LinkEvent {
        let wait = async {
            loop {
                if let NetEvent::Link(event) = monitor.next().await.expect("link monitor")
                    && event.ifindex == ifindex
                {
                    return event;
                }
            }
        };
        tokio::time::timeout(TIMEOUT, wait)
            .await
            .unwrap_or_else(|_| panic!("no link event for ifindex {ifindex} within {TIMEOUT:?}"))
    }

    /// A monitor whose netlink connection ended says so, every time it is asked, at once:
    /// the daemon's loop tells that apart from a passing error and stops.
    #[test]
    fn a_closed_connection_reads_as_closed_every_time() {
        in_netns("link_monitor_closed", |_ns| async move {
            let mut monitor = LinkMonitor::new().await.unwrap();
            // What a failing netlink socket does to the connection task: it ends.
            monitor.connection.abort();
            for _ in 0..3 {
                let err = tokio::time::timeout(TIMEOUT, monitor.next())
                    .await
                    .expect("a closed monitor answers at once")
                    .unwrap_err();
                assert!(matches!(err, NetError::MonitorClosed), "{err}");
            }
        });
    }

    #[test]
    fn reports_carrier_loss_and_return_and_nothing_in_between() {
        in_netns("link_monitor_carrier", |ns| async move {
            let net = NetHandle::new().await.unwrap();
            let cdev = carpdev(&ns, &net).await;
            let mut monitor = LinkMonitor::new().await.unwrap();

            // An MTU change is an RTM_NEWLINK too, but changes neither admin state nor
            // carrier: the first event must be the carrier loss that follows it.
            ip(&ns, &["link", "set", "cdev", "mtu", "1400"]);
            ip(&ns, &["link", "set", "cpeer", "down"]);
            let lost = next_for(&mut monitor, cdev.ifindex).await;
            let expected = LinkEvent {
                ifindex: cdev.ifindex,
                name: "cdev".into(),
                carrier: false,
                admin_up: true,
                deleted: false,
                created: false,
            };
            assert_eq!(lost, expected);

            ip(&ns, &["link", "set", "cpeer", "up"]);
            let back = next_for(&mut monitor, cdev.ifindex).await;
            assert_eq!(
                back,
                LinkEvent {
                    carrier: true,
                    ..expected.clone()
                }
            );

            ip(&ns, &["link", "set", "cdev", "down"]);
            let down = next_for(&mut monitor, cdev.ifindex).await;
            assert_eq!(
                down,
                LinkEvent {
                    carrier: false,
                    admin_up: false,
                    ..expected.clone()
                }
            );

            // Deleting one end of a veth pair deletes both.
            ip(&ns, &["link", "del", "cpeer"]);
            let gone = next_for(&mut monitor, cdev.ifindex).await;
            assert!(gone.deleted && !gone.carrier && !gone.admin_up, "{gone:?}");
        });
    }

    /// The next address event about `ifindex`.
    async fn next_address(monitor: &mut LinkMonitor, ifindex: u32) -> NetEvent {
        let wait = async {
            loop {
                let event = monitor.next().await.expect("link monitor");
                if matches!(event, NetEvent::Address { ifindex: i, .. } if i == ifindex) {
                    return event;
                }
            }
        };
        tokio::time::timeout(TIMEOUT, wait)
            .await
            .unwrap_or_else(|_| panic!("no address event for ifindex {ifindex} within {TIMEOUT:?}"))
    }

    #[test]
    fn reports_creation_and_address_changes() {
        in_netns("link_monitor_addresses", |ns| async move {
            let net = NetHandle::new().await.unwrap();
            let mut monitor = LinkMonitor::new().await.unwrap();
            ip(
                &ns,
                &["link", "add", "dm0", "type", "veth", "peer", "name", "dm1"],
            );
            let dm0 = net.link_by_name("dm0").await.unwrap().unwrap().ifindex;
            let created = next_for(&mut monitor, dm0).await;
            assert!(created.created && !created.deleted, "{created:?}");
            assert_eq!(created.name, "dm0");

            ip(&ns, &["addr", "add", "192.0.2.7/24", "dev", "dm0"]);
            let v4: IpAddr = "192.0.2.7".parse().unwrap();
            let added = NetEvent::Address {
                ifindex: dm0,
                addr: v4,
                prefix_len: 24,
                removed: false,
            };
            assert_eq!(next_address(&mut monitor, dm0).await, added);
            ip(&ns, &["addr", "del", "192.0.2.7/24", "dev", "dm0"]);
            let removed = NetEvent::Address {
                ifindex: dm0,
                addr: v4,
                prefix_len: 24,
                removed: true,
            };
            assert_eq!(next_address(&mut monitor, dm0).await, removed);

            ip(
                &ns,
                &["addr", "add", "2001:db8::7/64", "dev", "dm0", "nodad"],
            );
            ip(&ns, &["addr", "del", "2001:db8::7/64", "dev", "dm0"]);
            let v6: IpAddr = "2001:db8::7".parse().unwrap();
            let mut seen = Vec::new();
            while !seen.contains(&(v6, true)) {
                if let NetEvent::Address { addr, removed, .. } =
                    next_address(&mut monitor, dm0).await
                {
                    seen.push((addr, removed));
                }
            }
            assert!(seen.contains(&(v6, false)), "{seen:?}");
        });
    }
}
