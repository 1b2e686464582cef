//! The source addresses of adverts: the carpdev's own (spec "Packet"), read from the kernel
//! and cached per carpdev.
//!
//! With adverts built as whole frames the kernel no longer picks the source, so carpd reads
//! the carpdev's addresses itself: an `RTM_GETADDR` dump for the one link, again after the
//! link monitor reported an address change on it ([`SourceCache::invalidate`]), at the
//! latest after [`REFRESH`] (in case an event was lost), and sooner ([`RETRY_MISSING`]) while
//! the address a send needs is missing. The dump is synchronous: it is a short local
//! request, far rarer than adverts, and keeps the send path free of awaits. (Reading it every
//! few seconds instead cost a netlink socket and a dump per advert at 1 s timers and one
//! vhid, a fifth of carpd's CPU per advert there.)
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use rtnetlink::packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::AddressMessage;
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use tracing::warn;

use crate::net::SourceAddrs;
use crate::net::link::{IfAddress, pick_sources};

/// How long a read of the carpdev's addresses is trusted without an address event.
pub const REFRESH: Duration = Duration::from_secs(300);
/// How often to read again while an address a send needs is missing.
pub const RETRY_MISSING: Duration = Duration::from_secs(1);
/// Longest wait for one datagram of the address dump.
const DUMP_TIMEOUT: Duration = Duration::from_millis(500);

/// The cached advert sources of one carpdev.
pub struct SourceCache {
    ifname: String,
    ifindex: u32,
    sources: SourceAddrs,
    read_at: Option<Instant>,
}

impl SourceCache {
    /// An empty cache: the first lookup reads the addresses.
    pub fn new(ifname: &str, ifindex: u32) -> Self {
        Self {
            ifname: ifname.to_owned(),
            ifindex,
            sources: SourceAddrs::default(),
            read_at: None,
        }
    }

    /// The carpdev's primary IPv4 address, if it has one.
    pub fn v4(&mut self, now: Instant) -> Option<Ipv4Addr> {
        let missing = self.sources.v4.is_none();
        self.refresh_if_due(now, missing);
        self.sources.v4
    }

    /// The carpdev's usable IPv6 link-local address, if it has one.
    pub fn v6_link_local(&mut self, now: Instant) -> Option<Ipv6Addr> {
        let missing = self.sources.v6_link_local.is_none();
        self.refresh_if_due(now, missing);
        self.sources.v6_link_local
    }

    /// An address of the carpdev changed: the next lookup reads them again.
    pub fn invalidate(&mut self) {
        self.read_at = None;
    }

    fn refresh_if_due(&mut self, now: Instant, missing: bool) {
        let max_age = if missing { RETRY_MISSING } else { REFRESH };
        if self
            .read_at
            .is_some_and(|t| now.saturating_duration_since(t) < max_age)
        {
            return;
        }
        self.read_at = Some(now);
        match read_sources(self.ifindex) {
            Ok(sources) => self.sources = sources,
            // Keep what was read last: an address does not go away because netlink failed.
            Err(err) => warn!(
                carpdev = %self.ifname,
                error = %err,
                "reading the carpdev's addresses for advert sources"
            ),
        }
    }
}

/// One `RTM_GETADDR` dump of the link `ifindex`: its first primary IPv4 address and its first
/// usable IPv6 link-local address, chosen as `pick_sources` does.
pub fn read_sources(ifindex: u32) -> std::io::Result<SourceAddrs> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    // With strict checking (Linux 4.20+) the kernel dumps only this link's addresses; older
    // kernels dump them all, and the loop below keeps this link's.
    let _ = socket.set_netlink_get_strict_chk(true);
    // The kernel answers a dump at once; a bound keeps the event loop from ever hanging here.
    socket2::SockRef::from(&socket).set_read_timeout(Some(DUMP_TIMEOUT))?;
    socket.connect(&SocketAddr::new(0, 0))?;

    let mut query = AddressMessage::default();
    query.header.index = ifindex;
    let mut request = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::from(RouteNetlinkMessage::GetAddress(query)),
    );
    request.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    request.header.sequence_number = 1;
    request.finalize();
    let mut buf = vec![0; request.buffer_len()];
    request.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut addresses = Vec::new();
    loop {
        let (data, _) = socket.recv_from_full()?;
        let mut rest = &data[..];
        while !rest.is_empty() {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            // Messages in a datagram are 4-byte aligned (NLMSG_ALIGN).
            let len = (msg.header.length as usize).div_ceil(4) * 4;
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(pick_sources(&addresses)),
                NetlinkPayload::Error(err) => return Err(err.to_io()),
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a))
                    if a.header.index == ifindex =>
                {
                    addresses.extend(IfAddress::from_message(&a));
                }
                _ => {}
            }
            if len == 0 || len > rest.len() {
                break;
            }
            rest = &rest[len..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loopback link always has 127.0.0.1 (and ::1, not link-local): a real dump.
    #[test]
    fn reads_the_loopback_links_addresses() {
        let sources = read_sources(1).expect("RTM_GETADDR on lo");
        assert_eq!(sources.v4, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(sources.v6_link_local, None);
    }

    #[test]
    fn an_address_event_makes_the_next_lookup_read_again() {
        let start = Instant::now();
        let mut cache = SourceCache::new("lo", 1);
        cache.v4(start);
        cache.v4(start + Duration::from_secs(1));
        assert_eq!(cache.read_at, Some(start));
        cache.invalidate();
        let later = start + Duration::from_secs(2);
        assert_eq!(cache.v4(later), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(cache.read_at, Some(later));
    }

    #[test]
    fn a_missing_address_is_read_again_sooner_than_a_present_one() {
        let start = Instant::now();
        let mut cache = SourceCache::new("lo", 1);
        assert_eq!(cache.v4(start), Some(Ipv4Addr::LOCALHOST));
        let first = cache.read_at;
        // Present: not read again before REFRESH.
        cache.v4(start + REFRESH - Duration::from_millis(1));
        assert_eq!(cache.read_at, first);
        cache.v4(start + REFRESH);
        assert_eq!(cache.read_at, Some(start + REFRESH));
        // Missing (lo has no link-local): read again after RETRY_MISSING, not before.
        let t = start + REFRESH;
        cache.v6_link_local(t + RETRY_MISSING - Duration::from_millis(1));
        assert_eq!(cache.read_at, Some(t));
        cache.v6_link_local(t + RETRY_MISSING);
        assert_eq!(cache.read_at, Some(t + RETRY_MISSING));
    }
}
