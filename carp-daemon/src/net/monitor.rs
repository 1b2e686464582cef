//! Link events: carrier and admin state changes from the kernel's `RTNLGRP_LINK` group.
//!
//! The daemon puts the vhids of a carpdev in INIT when its carrier goes, and restarts their
//! election when it comes back. The kernel sends `RTM_NEWLINK` for many reasons besides
//! those (statistics, MTU, addresses of the link, a macvlan created on top); the monitor
//! passes on only messages that change a link's `(admin_up, carrier)` pair, so a carrier
//! that "returns" without having left does not restart an election.
use std::collections::HashMap;

use futures::channel::mpsc::UnboundedReceiver;
use futures_util::StreamExt;
use futures_util::TryStreamExt;
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use rtnetlink::{Handle, MulticastGroup};
use tokio::task::JoinHandle;

use super::NetError;
use super::link::{LinkInfo, NETLINK_RCVBUF};

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
}

type Messages = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// A subscription to link state changes in the calling thread's network namespace.
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
    /// Subscribes to `RTNLGRP_LINK` and records the current state of every link.
    pub async fn new() -> Result<Self, NetError> {
        let (mut connection, handle, messages) =
            rtnetlink::new_multicast_connection(&[MulticastGroup::Link]).map_err(|source| {
                NetError::Socket {
                    what: "subscribing to RTNLGRP_LINK",
                    source,
                }
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

    /// The next change of a link's admin or carrier state. Cancel safe (a message is
    /// taken from the channel and handled without awaiting in between), so it can sit in a
    /// `tokio::select!` loop.
    pub async fn next(&mut self) -> Result<LinkEvent, NetError> {
        loop {
            let Some((message, _)) = self.messages.next().await else {
                return Err(NetError::MonitorClosed);
            };
            if let Some(event) = self.on_message(message) {
                return Ok(event);
            }
        }
    }

    fn on_message(&mut self, message: NetlinkMessage<RouteNetlinkMessage>) -> Option<LinkEvent> {
        match message.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                let info = LinkInfo::from_message(&link);
                let state = (info.admin_up, info.carrier);
                if self.last.insert(info.ifindex, state) == Some(state) {
                    return None;
                }
                Some(LinkEvent {
                    ifindex: info.ifindex,
                    name: info.name,
                    carrier: info.carrier,
                    admin_up: info.admin_up,
                    deleted: false,
                })
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                let info = LinkInfo::from_message(&link);
                self.last.remove(&info.ifindex);
                Some(LinkEvent {
                    ifindex: info.ifindex,
                    name: info.name,
                    carrier: false,
                    admin_up: false,
                    deleted: true,
                })
            }
            _ => None,
        }
    }
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

    /// The next event about `ifindex`, skipping events of other links (the veth peer's).
    async fn next_for(monitor: &mut LinkMonitor, ifindex: u32) -> LinkEvent {
        let wait = async {
            loop {
                let event = monitor.next().await.expect("link monitor");
                if event.ifindex == ifindex {
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
}
