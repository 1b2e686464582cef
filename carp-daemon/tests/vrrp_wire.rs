//! VRRPv3 on the wire against keepalived 2.2.7 (Debian, `vrrp_version 3`): carpd's advert
//! codec (`proto::vrrp::packet`) decodes what keepalived sends, and keepalived obeys what the
//! codec builds. A test host sends the adverts from a packet socket, one family at a time:
//! - keepalived's own adverts decode, with the pseudo-header checksum, its VRID, priority,
//!   interval and addresses, and priority 0 when it stops;
//! - a higher priority in our adverts makes keepalived's master step back;
//! - our priority 0 makes it take over after its Skew_Time, well before Master_Down_Interval;
//! - adverts with the RFC 9568 IPv4 checksum (no pseudo-header) are refused by this
//!   keepalived ("Invalid VRRPv3 checksum"): why carpd sends the pseudo-header form by
//!   default.
mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use carp_common::vrrp::vrrp_virtual_mac;
use carp_daemon::proto::vrrp::{ChecksumForm, IpEnds, VrrpAddresses, VrrpAdvert};
use carp_tests::{Host, RawSocket, frames, wait_until};
use common::keepalived::{Instance, Keepalived};
use common::lab;

const GROUP4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 5);
const VIP6_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0x5, 0x5);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x5);
/// keepalived's priority and advert_int (centiseconds).
const KA_PRIORITY: u8 = 100;
const KA_INTERVAL_CS: u16 = 100;
/// Our interval, centiseconds: keepalived learns it as Master_Adver_Interval.
const OUR_INTERVAL_CS: u16 = 50;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fam {
    V4,
    V6,
}

impl Fam {
    fn vrid(self) -> u8 {
        match self {
            Fam::V4 => 51,
            Fam::V6 => 52,
        }
    }

    fn addresses(self) -> VrrpAddresses {
        match self {
            Fam::V4 => VrrpAddresses::V4(vec![VIP4]),
            Fam::V6 => VrrpAddresses::V6(vec![VIP6_LL, VIP6]),
        }
    }

    /// keepalived's instance of the family.
    fn instance(self) -> Instance {
        let vips = match self {
            Fam::V4 => vec![format!("{VIP4}/24")],
            Fam::V6 => vec![format!("{VIP6_LL}/64"), format!("{VIP6}/64")],
        };
        Instance {
            name: "VI_1",
            vrid: self.vrid(),
            priority: KA_PRIORITY,
            advert_int_cs: KA_INTERVAL_CS,
            vips,
            preempt: true,
        }
    }
}

/// The EUI-64 link-local address the kernel gives a port with this MAC.
fn link_local_of(mac: [u8; 6]) -> Ipv6Addr {
    let b = [
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ];
    Ipv6Addr::from(b)
}

/// One advert frame of ours, from `host`, with the family's virtual MAC as source.
fn our_frame(host: &Host, fam: Fam, priority: u8, form: ChecksumForm) -> Vec<u8> {
    let advert = VrrpAdvert {
        vrid: fam.vrid(),
        priority,
        max_advert_int: OUR_INTERVAL_CS,
        addresses: fam.addresses(),
    };
    let vmac = vrrp_virtual_mac(fam.vrid(), fam == Fam::V6);
    match fam {
        Fam::V4 => {
            let ends = IpEnds {
                src: host.addr4().into(),
                dst: GROUP4.into(),
            };
            let payload = advert.encode(ends, form).unwrap();
            frames::advert_v4(vmac, host.addr4(), 255, &payload)
        }
        Fam::V6 => {
            let src = link_local_of(host.mac());
            let ends = IpEnds {
                src: src.into(),
                dst: GROUP6.into(),
            };
            let payload = advert.encode(ends, form).unwrap();
            frames::advert_v6(vmac, src, 255, &payload)
        }
    }
}

/// Sends `frame` every [`OUR_INTERVAL_CS`] until `stop` is set.
fn advertise(socket: &RawSocket, frame: &[u8], stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        socket.send(frame).expect("send advert");
        std::thread::sleep(Duration::from_millis(u64::from(OUR_INTERVAL_CS) * 10));
    }
}

/// keepalived's adverts in a capture, decoded by carpd's codec.
fn decode_all(pcap: &carp_tests::pcap::Pcap) -> Vec<(VrrpAdvert, ChecksumForm, IpAddr)> {
    let mut out = Vec::new();
    for p in &pcap.packets {
        let d = &p.data;
        let (ends, payload) = match u16::from_be_bytes([d[12], d[13]]) {
            0x0800 => {
                let ihl = usize::from(d[14] & 0x0f) * 4;
                let src: [u8; 4] = d[26..30].try_into().unwrap();
                let dst: [u8; 4] = d[30..34].try_into().unwrap();
                let ends = IpEnds {
                    src: Ipv4Addr::from(src).into(),
                    dst: Ipv4Addr::from(dst).into(),
                };
                (ends, &d[14 + ihl..])
            }
            0x86dd => {
                let src: [u8; 16] = d[22..38].try_into().unwrap();
                let dst: [u8; 16] = d[38..54].try_into().unwrap();
                let ends = IpEnds {
                    src: Ipv6Addr::from(src).into(),
                    dst: Ipv6Addr::from(dst).into(),
                };
                (ends, &d[54..])
            }
            other => panic!("not an IP frame: ethertype {other:#06x}"),
        };
        let (advert, form) = VrrpAdvert::decode(payload, ends)
            .unwrap_or_else(|e| panic!("keepalived advert {payload:02x?} does not decode: {e}"));
        out.push((advert, form, ends.src));
    }
    out
}

fn run(test: &str, fam: Fam) {
    let Some(lab) = lab(test, 2) else {
        return;
    };
    let (us, peer) = (lab.host(0), lab.host(1));
    let filter = match fam {
        Fam::V4 => "ip proto 112",
        Fam::V6 => "ip6 proto 112",
    };
    let capture = peer.capture_sent(filter, 0).expect("capture keepalived");
    let ka = Keepalived::start(&lab, peer, "wire", &fam.instance());
    // Alone, keepalived takes over after its Master_Down_Interval (3.6 s at 1 s, prio 100).
    ka.wait_state("MASTER", Duration::from_secs(15));

    let socket = RawSocket::open(us).expect("packet socket");
    let stop = AtomicBool::new(false);

    // RFC 9568's IPv4 form: keepalived 2.2.7 refuses it and stays master. (IPv6 has a
    // single form.)
    if fam == Fam::V4 {
        let frame = our_frame(us, fam, 200, ChecksumForm::MessageOnly);
        std::thread::scope(|s| {
            s.spawn(|| advertise(&socket, &frame, &stop));
            let refused = wait_until(Duration::from_secs(5), || {
                ka.process.log().contains("Invalid VRRPv3 checksum")
            });
            stop.store(true, Ordering::Relaxed);
            assert!(
                refused.is_ok(),
                "keepalived did not refuse the message-only checksum; log:\n{}",
                ka.process.log()
            );
        });
        assert_eq!(ka.state().as_deref(), Some("MASTER"));
        stop.store(false, Ordering::Relaxed);
    }

    // A better master (pseudo-header form): keepalived steps back.
    let better = our_frame(us, fam, 200, ChecksumForm::PseudoHeader);
    let resign = our_frame(us, fam, 0, ChecksumForm::PseudoHeader);
    std::thread::scope(|s| {
        s.spawn(|| advertise(&socket, &better, &stop));
        ka.wait_state("BACKUP", Duration::from_secs(5));
        // Stay followed for a while: keepalived must not time us out.
        assert!(
            wait_until(Duration::from_secs(3), || ka.state().as_deref()
                != Some("BACKUP"))
            .is_err(),
            "keepalived left BACKUP while our adverts kept coming; log:\n{}",
            ka.process.log()
        );
        stop.store(true, Ordering::Relaxed);
    });
    // The sender has stopped: priority 0 now.
    socket.send(&resign).expect("send priority 0");
    let waited = ka.wait_state("MASTER", Duration::from_secs(5));
    // Skew_Time at our 0.5 s and its priority 100 is 156/256 × 0.5 s = 305 ms;
    // Master_Down_Interval would be 1.8 s after the last advert.
    let skew = Duration::from_micros(156 * 500_000 / 256);
    let master_down = Duration::from_millis(1500) + skew;
    eprintln!(
        "{test}: keepalived took over {waited:?} after our priority 0 (skew {skew:?}, master down {master_down:?})"
    );
    assert!(
        waited < master_down - Duration::from_millis(500),
        "keepalived took {waited:?} after priority 0: it waited for master-down, not skew"
    );

    // keepalived's own adverts, as carpd's codec reads them, and its priority 0 at stop.
    ka.stop();
    let pcap = capture.stop_and_read().expect("read capture");
    let adverts = decode_all(&pcap);
    assert!(
        adverts.len() >= 3,
        "too few keepalived adverts captured: {adverts:?}"
    );
    for (advert, form, _) in &adverts {
        assert_eq!(advert.vrid, fam.vrid());
        assert_eq!(advert.max_advert_int, KA_INTERVAL_CS);
        assert_eq!(advert.addresses, fam.addresses());
        assert_eq!(*form, ChecksumForm::PseudoHeader, "keepalived's default");
    }
    assert!(adverts.iter().any(|(a, _, _)| a.priority == KA_PRIORITY));
    assert_eq!(
        adverts.last().map(|(a, _, _)| a.priority),
        Some(0),
        "keepalived's last advert at SIGTERM is priority 0"
    );
}

#[test]
fn keepalived_ipv4_adverts_both_ways() {
    run("e2e_vrrp_wire_v4", Fam::V4);
}

#[test]
fn keepalived_ipv6_adverts_both_ways() {
    run("e2e_vrrp_wire_v6", Fam::V6);
}
