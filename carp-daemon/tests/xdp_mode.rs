//! carpd where users run it: on a plain lab (veth ports on a bridge, nothing attached to the
//! switch side), `--xdp-mode auto` chooses generic, says so, and the client gets its ARP
//! replies and neighbour advertisements from the master; explicit modes are taken as given;
//! and carpd started through `ip netns exec` (no bpffs under the fresh /sys) says what is
//! missing and how to get out.
mod common;

use std::time::Duration;

use carp_tests::{Host, Signal, wait_until};
use common::*;

const T1: Timers = Timers {
    advbase: 1,
    advskew: 0,
};
const T2: Timers = Timers {
    advbase: 1,
    advskew: 100,
};

/// One ARP request for the IPv4 VIP from the client; the MAC that answered, if any.
fn arping(client: &Host) -> Option<String> {
    let out = client
        .run([
            "arping",
            "-c",
            "1",
            "-w",
            "1",
            "-i",
            client.ifname(),
            "192.0.2.1",
        ])
        .expect("run arping");
    first_mac(&out.stdout)
}

/// One neighbour solicitation for the IPv6 VIP from the client; the target link-layer
/// address of the advertisement, if any.
fn ndisc(client: &Host) -> Option<String> {
    let out = client
        .run([
            "ndisc6",
            "-1",
            "-r",
            "1",
            "-w",
            "1000",
            "2001:db8::1",
            client.ifname(),
        ])
        .expect("run ndisc6");
    first_mac(&out.stdout)
}

fn first_mac(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .find(|w| w.len() == 17 && w.chars().filter(|c| *c == ':').count() == 5)
        .map(str::to_ascii_lowercase)
}

/// The "XDP attached" line of a carpd log, once it is there.
fn attach_line(router: &Router<'_>, timeout: Duration) -> String {
    let found = |log: &str| {
        log.lines()
            .find(|l| l.contains("XDP attached") && l.contains("carpdev=eth0"))
            .map(str::to_owned)
    };
    if wait_until(timeout, || found(&router.log()).is_some()).is_err() {
        panic!("no XDP attached line; carpd log:\n{}", router.log());
    }
    found(&router.log()).expect("just seen")
}

#[test]
fn auto_mode_on_a_plain_lab_answers_arp_and_ns_from_the_master() {
    let Some(lab) = lab("e2e_xdp_auto", 2) else {
        return;
    };
    let (r1, _r2) = master_and_backup(&lab, T1, T2, &[]);
    let line = attach_line(&r1, Duration::from_secs(1));
    eprintln!("{line}");
    assert!(line.contains("mode=generic"), "{line}");
    assert!(
        line.contains("reason=\"veth whose peer is in another network namespace"),
        "{line}"
    );

    // The answers leave through the master's port: capture what each router sent.
    let client = lab.client();
    let replies_r1 = lab
        .host(0)
        .capture_sent("arp[6:2] = 2 or icmp6", 0)
        .unwrap();
    let replies_r2 = lab
        .host(1)
        .capture_sent("arp[6:2] = 2 or icmp6", 0)
        .unwrap();
    assert_eq!(
        arping(client).as_deref(),
        Some(VMAC),
        "ARP reply for the VIP"
    );
    assert_eq!(ndisc(client).as_deref(), Some(VMAC), "NA for the VIP");
    let is_arp_reply = |d: &[u8]| d.len() >= 22 && d[12..14] == [0x08, 0x06] && d[20..22] == [0, 2];
    // ICMPv6 type 136 (neighbour advertisement), after 14 + 40 bytes of headers.
    let is_na = |d: &[u8]| d.len() > 54 && d[12..14] == [0x86, 0xdd] && d[20] == 58 && d[54] == 136;
    let count = |pcap: &carp_tests::pcap::Pcap, f: &dyn Fn(&[u8]) -> bool| {
        pcap.packets.iter().filter(|p| f(&p.data)).count()
    };
    // The client has both answers, so they crossed the master's port; tcpdump may not have
    // read them yet: wait for them in the file rather than stop it under their feet.
    let from_r1 = replies_r1.wait_for_packets(
        "the master's ARP reply and NA in the capture at its port",
        Duration::from_secs(5),
        |pcap| count(pcap, &is_arp_reply) >= 1 && count(pcap, &is_na) >= 1,
    );
    if let Err(e) = from_r1 {
        let pcap = replies_r1.stop_and_read().unwrap();
        panic!(
            "{e}: {} ARP replies, {} NAs from the master",
            count(&pcap, &is_arp_reply),
            count(&pcap, &is_na)
        )
    }
    drop(replies_r1);
    let from_r2 = replies_r2.stop_and_read().unwrap();
    // The target address follows the 8-byte ICMPv6 header.
    let vip6: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
    let is_na_for_vip = |d: &[u8]| is_na(d) && d.len() >= 78 && d[62..78] == vip6.octets();
    assert_eq!(count(&from_r2, &is_arp_reply), 0, "the backup stays silent");
    assert_eq!(
        count(&from_r2, &is_na_for_vip),
        0,
        "the backup stays silent"
    );

    // A restarted carpd adopts the pinned link and logs the mode it runs in.
    let mut r1 = r1;
    r1.signal(Signal::SIGKILL);
    let _ = r1
        .process
        .as_ref()
        .unwrap()
        .wait_timeout(Duration::from_secs(5));
    r1.restart(&[]);
    let line = attach_line(&r1, Duration::from_secs(10));
    assert!(line.contains("mode=generic"), "{line}");
    assert!(line.contains("adopted"), "{line}");
}

#[test]
fn explicit_native_mode_is_taken_as_given() {
    let Some(lab) = lab("e2e_xdp_native", 1) else {
        return;
    };
    let host = lab.host(0);
    let r1 = Router::start(
        &lab,
        host,
        &hostname_carp0(host, T1),
        &["--xdp-mode", "native"],
    );
    let line = attach_line(&r1, Duration::from_secs(10));
    assert!(line.contains("mode=native"), "{line}");
    assert!(line.contains("reason=\"--xdp-mode native\""), "{line}");
    let attached = host
        .run_ok(["ip", "-d", "link", "show", "eth0"])
        .unwrap()
        .stdout;
    assert!(
        attached.contains("xdp ") || attached.contains("xdpdrv"),
        "{attached}"
    );
    assert!(!attached.contains("xdpgeneric"), "{attached}");
}

#[test]
fn ip_netns_exec_is_told_what_is_missing() {
    let Some(lab) = lab("e2e_netns_exec", 1) else {
        return;
    };
    let host = lab.host(0);
    let dir = lab.workdir().join("netns-exec");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("hostname.carp0");
    std::fs::write(&config, hostname_carp0(host, T1)).unwrap();
    let config = config.to_str().unwrap();
    let netns_exec = |args: &[&str]| {
        let mut argv = vec!["ip", "netns", "exec", host.netns(), carpd_bin()];
        argv.extend_from_slice(args);
        let out = std::process::Command::new(argv[0])
            .args(&argv[1..])
            .output()
            .expect("run ip netns exec");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let says_what_to_do = |stderr: &str| {
        stderr.contains("is not on a bpf filesystem")
            && stderr.contains("/sys/fs/bpf is on sysfs")
            && stderr.contains("mount -t bpf bpf /sys/fs/bpf")
            && stderr.contains("nsenter --net=/run/netns/NAME")
    };

    // --check: the configuration is valid, the default pin directory is not usable.
    let (ok, stderr) = netns_exec(&["--check", "-c", config]);
    assert!(!ok, "--check passed under ip netns exec");
    assert!(says_what_to_do(&stderr), "{stderr}");

    // Starting fails the same way, before anything is built.
    let pin_dir = lab.pin_dir("netns-exec");
    let before = links(host);
    let (ok, stderr) = netns_exec(&[
        "-c",
        config,
        "--state-dir",
        dir.to_str().unwrap(),
        "--pin-dir",
        pin_dir.to_str().unwrap(),
    ]);
    assert!(!ok, "carpd started under ip netns exec");
    assert!(says_what_to_do(&stderr), "{stderr}");
    assert_eq!(links(host), before, "interfaces changed");

    // Entering only the network namespace keeps the host's bpffs: --check passes.
    let check = host.run([carpd_bin(), "--check", "-c", config]).unwrap();
    assert!(check.success(), "{}", check.stderr);
}
