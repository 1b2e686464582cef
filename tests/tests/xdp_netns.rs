//! The XDP program on a real veth in a namespace lab: a client's ARP requests and neighbour
//! solicitations for the virtual addresses are answered with the virtual MAC only while the
//! map says master, and the answers stop by themselves once the master entry is no longer
//! refreshed. Also: the verifier accepts the program in generic and native mode, a
//! restarted loader adopts the pinned maps and link without detaching, and auto mode chooses
//! a mode whose answers reach the client on a plain lab.
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use carp_common::maps::VipEntry;
use carp_daemon::dataplane::xdp_mode::{self, Mode, VethPeer};
use carp_daemon::dataplane::{
    AttachMode, Dataplane, VhidDataplaneState, master_hold, monotonic_now,
};
use carp_tests::lab::{Lab, LabSpec};

const VHID: u8 = 1;
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const VMAC: &str = "00:00:5e:00:01:01";

fn lab(name: &str) -> Option<Lab> {
    if !carp_tests::require_root(name) {
        return None;
    }
    Some(
        Lab::new(
            name,
            LabSpec {
                hosts: 1,
                client: true,
                ipv6: true,
                ..Default::default()
            },
        )
        .expect("build lab"),
    )
}

/// Loads the program pinned under a lab-owned pin dir and attaches it to host 1's port.
fn attach(lab: &Lab, mode: AttachMode) -> Dataplane {
    let host = lab.host(0);
    let pin_dir = lab.pin_dir("xdp");
    let ifname = host.ifname().to_owned();
    let (ifindex, mac) = (host.ifindex(), host.mac());
    let mut dp = host
        .in_netns(move || -> Dataplane {
            let mut dp = Dataplane::load_pinned(&pin_dir).expect("load pinned");
            dp.attach(&ifname, mode).expect("attach");
            dp
        })
        .expect("enter host namespace");
    dp.set_carpdev(ifindex, mac).unwrap();
    let vip = VipEntry {
        vhid: VHID as u32,
        flags: 0,
    };
    dp.add_vip4(ifindex, VIP4, vip).unwrap();
    dp.add_vip6(ifindex, VIP6, vip).unwrap();
    dp
}

fn set_master(dp: &mut Dataplane, ifindex: u32, hold: Duration) {
    let until = monotonic_now().unwrap() + hold;
    dp.set_vhid(
        ifindex,
        VHID,
        Duration::from_secs(1),
        VhidDataplaneState::Master { until },
    )
    .unwrap();
}

/// One ARP request from the client; the MAC that answered, if any.
fn arping(lab: &Lab) -> Option<String> {
    let client = lab.client();
    let out = client
        .run([
            "arping",
            "-c",
            "1",
            "-w",
            "1",
            "-i",
            client.ifname(),
            &VIP4.to_string(),
        ])
        .expect("run arping");
    parse_mac(&out.stdout)
}

/// One neighbour solicitation from the client; the target link-layer address, if any.
fn ndisc(lab: &Lab) -> Option<String> {
    let client = lab.client();
    let out = client
        .run([
            "ndisc6",
            "-1",
            "-r",
            "1",
            "-w",
            "1000",
            &VIP6.to_string(),
            client.ifname(),
        ])
        .expect("run ndisc6");
    parse_mac(&out.stdout)
}

fn parse_mac(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .find(|w| w.len() == 17 && w.chars().filter(|c| *c == ':').count() == 5)
        .map(str::to_ascii_lowercase)
}

#[test]
fn answers_only_while_master_and_falls_silent_without_refresh() {
    let Some(lab) = lab("xdp_netns_answers") else {
        return;
    };
    let mut dp = attach(&lab, AttachMode::Generic);
    let ifindex = lab.host(0).ifindex();

    // BACKUP: silent, and the kernel does not answer either (XDP drops the requests).
    dp.set_vhid(
        ifindex,
        VHID,
        Duration::from_secs(1),
        VhidDataplaneState::Backup,
    )
    .unwrap();
    assert_eq!(arping(&lab), None, "backup must not answer ARP");
    assert_eq!(ndisc(&lab), None, "backup must not answer NS");

    // MASTER: answered with the virtual MAC.
    set_master(&mut dp, ifindex, Duration::from_secs(30));
    assert_eq!(arping(&lab).as_deref(), Some(VMAC));
    assert_eq!(ndisc(&lab).as_deref(), Some(VMAC));

    // MASTER, refreshed as carpd does with advbase 1, then carpd "dies": the replies stop
    // within the hold time after the last refresh.
    let hold = master_hold(Duration::from_secs(1));
    set_master(&mut dp, ifindex, hold);
    let last_refresh = Instant::now();
    assert_eq!(arping(&lab).as_deref(), Some(VMAC), "fresh master answers");
    let silent = carp_tests::wait_until(hold + Duration::from_secs(3), || arping(&lab).is_none());
    assert!(silent.is_ok(), "replies did not stop after the deadline");
    let elapsed = last_refresh.elapsed();
    // arping waits up to 1 s per probe, so the first silent probe ends at most 1 s late.
    assert!(
        elapsed <= hold + Duration::from_secs(1) + Duration::from_millis(500),
        "silent only after {elapsed:?}, hold is {hold:?}"
    );
    assert_eq!(ndisc(&lab), None, "expired master must not answer NS");
    let counters = dp.counters().unwrap();
    assert!(counters.arp_replied >= 2 && counters.arp_dropped_not_master >= 2);
    assert!(counters.ns_replied >= 1 && counters.ns_dropped_not_master >= 2);
}

#[test]
fn verifier_accepts_generic_and_native_mode_on_veth() {
    let Some(lab) = lab("xdp_netns_modes") else {
        return;
    };
    // Native XDP_TX on a veth reaches the switch only if the switch-side port receives in
    // NAPI mode: this measurement of native mode opts in to the lab's NAPI peer.
    lab.enable_napi_peer(0).expect("NAPI-mode switch port");
    for mode in [AttachMode::Generic, AttachMode::Native] {
        let mut dp = attach(&lab, mode);
        let ifindex = lab.host(0).ifindex();
        set_master(&mut dp, ifindex, Duration::from_secs(30));
        assert_eq!(arping(&lab).as_deref(), Some(VMAC), "{mode:?}");
        let host = lab.host(0);
        let ifname = host.ifname().to_owned();
        host.in_netns(move || dp.detach(&ifname).unwrap()).unwrap();
    }
}

#[test]
fn restarted_loader_adopts_pinned_maps_and_link() {
    let Some(lab) = lab("xdp_netns_adopt") else {
        return;
    };
    let ifindex = lab.host(0).ifindex();
    let mut first = attach(&lab, AttachMode::Generic);
    set_master(&mut first, ifindex, Duration::from_secs(30));
    assert_eq!(arping(&lab).as_deref(), Some(VMAC));
    // The "daemon" exits without cleaning up (as after SIGKILL): pins keep everything alive.
    drop(first);
    assert_eq!(
        arping(&lab).as_deref(),
        Some(VMAC),
        "pinned link and maps outlive the loader"
    );

    // A new loader adopts the maps (state intact) and swaps its program into the link.
    let host = lab.host(0);
    let pin_dir = lab.pin_dir("xdp");
    let ifname = host.ifname().to_owned();
    let (second, adopted) = host
        .in_netns(move || {
            let mut dp = Dataplane::load_pinned(&pin_dir).unwrap();
            let adopted = dp.attach(&ifname, AttachMode::Generic).unwrap();
            (dp, adopted)
        })
        .unwrap();
    assert!(adopted, "the pinned link was taken over, not replaced");
    let entry = second
        .vhid(ifindex, VHID)
        .expect("adopted map keeps the entry");
    assert_eq!(entry.state, carp_common::maps::VHID_STATE_MASTER);
    assert_eq!(arping(&lab).as_deref(), Some(VMAC));
    let ifname = host.ifname().to_owned();
    let mut second = second;
    host.in_netns(move || {
        second.detach(&ifname).unwrap();
        second.remove_pins().unwrap();
    })
    .unwrap();
    assert_eq!(arping(&lab), None, "detached: nobody answers for the VIP");
}

#[test]
fn auto_mode_answers_on_a_plain_lab() {
    let Some(lab) = lab("xdp_netns_auto") else {
        return;
    };
    // A plain lab: the host's eth0 is a veth whose peer is a bridge port in the switch
    // namespace, out of carpd's sight. Auto must choose generic, and the answers arrive.
    let host = lab.host(0);
    let facts = host.in_netns(|| xdp_mode::probe("eth0")).unwrap();
    assert_eq!(facts.driver.as_deref(), Ok("veth"));
    assert_eq!(facts.veth_peer, Some(VethPeer::OtherNamespace));
    let mut dp = attach(&lab, AttachMode::Auto);
    let attached = host.in_netns(|| xdp_mode::attached_mode("eth0")).unwrap();
    assert_eq!(attached, Some(Mode::Generic));
    set_master(&mut dp, host.ifindex(), Duration::from_secs(30));
    assert_eq!(
        arping(&lab).as_deref(),
        Some(VMAC),
        "ARP reply in auto mode"
    );
    assert_eq!(ndisc(&lab).as_deref(), Some(VMAC), "NA in auto mode");
}

#[test]
fn auto_mode_sees_a_veth_peer_in_the_same_namespace() {
    let Some(lab) = lab("xdp_netns_peer") else {
        return;
    };
    let host = lab.host(0);
    // A second veth pair, both ends in the host's namespace (removed with it).
    host.run_ok([
        "ip", "link", "add", "va", "type", "veth", "peer", "name", "vb",
    ])
    .unwrap();
    host.run_ok(["ip", "link", "set", "va", "up"]).unwrap();
    host.run_ok(["ip", "link", "set", "vb", "up"]).unwrap();
    let probe = || host.in_netns(|| xdp_mode::probe("va")).unwrap();
    let plain = probe();
    assert_eq!(
        plain.veth_peer,
        Some(VethPeer::Here {
            name: "vb".into(),
            native_xdp: false,
            gro: false
        }),
        "veth GRO is off by default"
    );
    assert_eq!(xdp_mode::auto_plan(&plain).mode, Mode::Generic);

    host.run_ok(["ethtool", "-K", "vb", "gro", "on"]).unwrap();
    let gro = probe();
    assert!(
        matches!(gro.veth_peer, Some(VethPeer::Here { gro: true, .. })),
        "{gro:?}"
    );
    // GRO alone puts the peer in NAPI mode but does not deliver XDP_TX: still generic.
    assert_eq!(xdp_mode::auto_plan(&gro).mode, Mode::Generic);
    host.run_ok(["ethtool", "-K", "vb", "gro", "off"]).unwrap();

    // A native XDP program on the peer (any program: ours, unpinned) is what delivers XDP_TX.
    let peer_program = host
        .in_netns(|| {
            let mut dp = Dataplane::load_unpinned().expect("load");
            dp.attach("vb", AttachMode::Native).expect("attach to vb");
            dp
        })
        .unwrap();
    let xdp = probe();
    assert!(
        matches!(
            xdp.veth_peer,
            Some(VethPeer::Here {
                native_xdp: true,
                gro: false,
                ..
            })
        ),
        "{xdp:?}"
    );
    assert_eq!(xdp_mode::auto_plan(&xdp).mode, Mode::Native);
    drop(peer_program);
}

#[test]
fn auto_mode_falls_back_to_generic_where_the_driver_refuses_native() {
    let Some(lab) = lab("xdp_netns_fallback") else {
        return;
    };
    let host = lab.host(0);
    // A bridge has no native XDP (no ndo_bpf), nor have VLAN devices.
    host.run_ok(["ip", "link", "add", "brx", "type", "bridge"])
        .unwrap();
    host.run_ok(["ip", "link", "set", "brx", "up"]).unwrap();
    host.in_netns(|| {
        let mut dp = Dataplane::load_unpinned().expect("load");
        assert!(
            dp.attach("brx", AttachMode::Native).is_err(),
            "explicit native is not silently changed"
        );
        let plan = xdp_mode::plan_for("brx", AttachMode::Auto);
        assert_eq!((plan.mode, plan.generic_if_refused), (Mode::Native, true));
        dp.attach("brx", AttachMode::Auto).expect("auto attaches");
        assert_eq!(xdp_mode::attached_mode("brx"), Some(Mode::Generic));
    })
    .unwrap();
}
