//! What carpd puts on the wire: advertisements ([`advert`]) and the announcements a new
//! master makes, gratuitous ARP and unsolicited neighbour advertisements ([`announce`]).
//! Both are whole Ethernet frames from the virtual MAC ([`frame`]); adverts take their IP
//! source from the carpdev ([`source`]).
//!
//! Receiving is not here: the XDP program hands received adverts to carpd through a ring
//! buffer (see `dataplane`), so these sockets only ever send.

pub mod advert;
pub mod announce;
pub mod frame;
pub mod neighbour;
pub mod source;

/// Errors of the send path; each names the interface and what failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{what} on {ifname}: {source}")]
    Socket {
        what: &'static str,
        ifname: String,
        source: std::io::Error,
    },
    /// A unicast peer's MAC is not in the neighbour table yet; the kernel was asked to
    /// resolve it (see `neighbour`).
    #[error("peer {peer} on {ifname} is not resolved yet (no ARP/neighbour entry)")]
    Unresolved {
        peer: std::net::IpAddr,
        ifname: String,
    },
    /// Neither the carpdev nor (for IPv4) the carp interface has an address to send from.
    #[error("no {family} address on {ifname} to send the advert from")]
    NoSource {
        family: &'static str,
        ifname: String,
    },
    /// A VRRP advert could not be encoded (see `proto::vrrp::VrrpEncodeError`).
    #[error(transparent)]
    VrrpEncode(#[from] crate::proto::vrrp::VrrpEncodeError),
}

pub(crate) fn sock_err(
    what: &'static str,
    ifname: &str,
) -> impl FnOnce(std::io::Error) -> SendError {
    let ifname = ifname.to_owned();
    move |source| SendError::Socket {
        what,
        ifname,
        source,
    }
}
