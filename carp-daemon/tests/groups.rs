//! Interface groups and demotion as OpenBSD users know them, carpctl's words, boot demotion,
//! the systemd notify path, hooks and metrics, end to end.
mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use carp_tests::{Signal, wait_until};
use common::*;

const T1: Timers = Timers {
    advbase: 0,
    advskew: 60,
};
const T2: Timers = Timers {
    advbase: 0,
    advskew: 120,
};

#[test]
fn group_demotion_hands_over_and_promotion_returns_with_preempt() {
    let Some(lab) = lab("e2e_demote", 2) else {
        return;
    };
    let (r1, r2) = master_and_backup(&lab, T1, T2, &["--preempt"]);

    assert_eq!(
        ok(r1.carpctl(&["-g", "carp"])).trim(),
        "carp: carp demote count 0"
    );
    ok(r1.carpctl(&["-g", "carp", "carpdemote", "128"]));
    assert_eq!(
        ok(r1.carpctl(&["-g", "carp"])).trim(),
        "carp: carp demote count 128"
    );
    // The demoted master advertises at once: the handover takes about a round trip, far
    // less than a master-down interval.
    r2.wait_state("MASTER", T2.master_down());
    r1.wait_state("BACKUP", Duration::from_secs(2));
    assert!(lab.client().ping(IpAddr::V4(VIP4)).unwrap());

    ok(r1.carpctl(&["-g", "carp", "-carpdemote", "128"]));
    r1.wait_state("MASTER", Duration::from_secs(5));
    r2.wait_state("BACKUP", Duration::from_secs(5));

    // Out of range: refused, nothing changes.
    let out = r1.carpctl(&["-g", "carp", "-carpdemote", "1"]);
    assert!(!out.success());
    assert_eq!(
        ok(r1.carpctl(&["-g", "carp"])).trim(),
        "carp: carp demote count 0"
    );
}

#[test]
fn a_demoted_master_still_takes_over_when_the_other_host_dies() {
    let Some(lab) = lab("e2e_demoted_takeover", 2) else {
        return;
    };
    let r1 = Router::start(
        &lab,
        lab.host(0),
        &hostname_carp0(lab.host(0), T1),
        &["--preempt"],
    );
    let r2 = Router::start(
        &lab,
        lab.host(1),
        &hostname_carp0(lab.host(1), T2),
        &["--preempt"],
    );
    r1.wait_state("MASTER", Duration::from_secs(10));
    ok(r1.carpctl(&["-g", "carp", "carpdemote", "50"]));
    r2.wait_state("MASTER", Duration::from_secs(5));
    r2.signal(Signal::SIGKILL);
    // Unlike `ifconfig down`, demotion keeps r1 in the election: it takes over.
    r1.wait_state("MASTER", T1.master_down() * 2 + Duration::from_secs(2));
    assert!(time_to_reach(lab.client(), IpAddr::V4(VIP4), Duration::from_secs(5)).is_some());
}

#[test]
fn boot_demotion_keeps_a_joining_host_backup_until_lifted() {
    let Some(lab) = lab("e2e_boot_demote", 2) else {
        return;
    };
    let r2 = Router::start(
        &lab,
        lab.host(1),
        &hostname_carp0(lab.host(1), T2),
        &["--preempt"],
    );
    r2.wait_state("MASTER", Duration::from_secs(10));
    // r1 is more preferred and preempts, but boots demoted by 128.
    let r1 = Router::start(
        &lab,
        lab.host(0),
        &hostname_carp0(lab.host(0), T1),
        &["--preempt", "--boot-demote", "128"],
    );
    r1.wait_state("BACKUP", Duration::from_secs(10));
    assert!(
        wait_until(T2.master_down() * 2, || r1.state().as_deref()
            == Some("MASTER"))
        .is_err(),
        "a boot-demoted host became master"
    );
    ok(r1.carpctl(&["-g", "carp", "-carpdemote", "128"]));
    r1.wait_state("MASTER", Duration::from_secs(5));
    r2.wait_state("BACKUP", Duration::from_secs(5));
}

/// carp0 (vhid 1, group web) and carp1 (vhid 2) on one router.
fn two_interfaces(host: &carp_tests::Host, t: Timers) -> Vec<(String, String)> {
    vec![
        (
            "hostname.carp0".into(),
            format!(
                "inet 192.0.2.1 255.255.255.0 vhid 1 pass {PASS} carpdev {} advbase {} advskew {}\ngroup web\n",
                host.ifname(),
                t.advbase,
                t.advskew
            ),
        ),
        (
            "hostname.carp1".into(),
            format!(
                "inet 192.0.2.2 255.255.255.0 vhid 2 pass {PASS} carpdev {} advbase {} advskew {}\n",
                host.ifname(),
                t.advbase,
                t.advskew
            ),
        ),
    ]
}

#[test]
fn demoting_a_user_group_moves_only_its_interfaces() {
    let Some(lab) = lab("e2e_user_group", 2) else {
        return;
    };
    let mut routers = Vec::new();
    for (i, t) in [(0, T1), (1, T2)] {
        let host = lab.host(i);
        let files = two_interfaces(host, t);
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        routers.push(Router::start_files(&lab, host, &files, &["--preempt"]));
    }
    let (r1, r2) = (&routers[0], &routers[1]);
    wait_until(Duration::from_secs(10), || {
        r1.state_of("carp0").as_deref() == Some("MASTER")
            && r1.state_of("carp1").as_deref() == Some("MASTER")
    })
    .expect("r1 master of both");
    ok(r1.carpctl(&["-g", "web", "carpdemote", "10"]));
    wait_until(Duration::from_secs(5), || {
        r2.state_of("carp0").as_deref() == Some("MASTER")
    })
    .expect("carp0 (in web) moved to r2");
    assert_eq!(
        r1.state_of("carp1").as_deref(),
        Some("MASTER"),
        "carp1 is not in web"
    );
    assert_eq!(r2.state_of("carp1").as_deref(), Some("BACKUP"));
    let json = ok(r1.carpctl(&["--json", "carp0"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let v = v.as_array().map(|a| a[0].clone()).unwrap_or(v);
    assert_eq!(v["demote"], 10);
    assert_eq!(v["groups"], serde_json::json!(["carp", "web"]));
}

#[test]
fn carpctl_words_apply_all_or_nothing_with_ifconfig_errors() {
    let Some(lab) = lab("e2e_carpctl", 1) else {
        return;
    };
    let r1 = Router::start(&lab, lab.host(0), &hostname_carp0(lab.host(0), T1), &[]);
    r1.wait_state("MASTER", Duration::from_secs(10));
    ok(r1.carpctl(&["carp0", "advskew", "100", "group", "web"]));
    let text = ok(r1.carpctl(&["carp0"]));
    assert!(text.contains("advskew 100"), "{text}");
    assert!(text.contains("groups: carp web"), "{text}");
    ok(r1.carpctl(&["carp0", "-group", "web"]));
    // A bad word anywhere: usage error, nothing applied.
    let out = r1.carpctl(&["carp0", "advskew", "50", "advbase", "300"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(ok(r1.carpctl(&["carp0"])).contains("advskew 100"));
    let out = r1.carpctl(&["carp0", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = r1.carpctl(&["carp9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("carp9"), "{}", out.stderr);
    // state backup: forced.
    ok(r1.carpctl(&["carp0", "state", "backup"]));
    assert_eq!(r1.state().as_deref(), Some("BACKUP"));
    // down: bow-out, INIT; up again: runs.
    ok(r1.carpctl(&["carp0", "down"]));
    r1.wait_state("INIT", Duration::from_secs(2));
    ok(r1.carpctl(&["carp0", "up"]));
    r1.wait_state("MASTER", Duration::from_secs(10));
}

#[test]
fn stats_count_the_bad_packets_that_hit_the_dataplane() {
    let Some(lab) = lab("e2e_stats", 1) else {
        return;
    };
    let r1 = Router::start(&lab, lab.host(0), &hostname_carp0(lab.host(0), T1), &[]);
    r1.wait_state("MASTER", Duration::from_secs(10));
    let client = lab.client();
    let (mac, src) = (client.mac(), client.addr4());
    use carp_tests::frames::{CarpFields, advert_v4};
    let mut bad_sum = CarpFields::advert(1).encode();
    bad_sum[7] ^= 1;
    let frames = [
        advert_v4(mac, src, 64, &CarpFields::advert(1).encode()),
        advert_v4(mac, src, 255, &bad_sum),
        advert_v4(mac, src, 255, &CarpFields::advert(1).encode()), // wrong HMAC
    ];
    inject(&lab, frames.to_vec(), 1);
    let counted = wait_until(Duration::from_secs(5), || {
        let json = r1.carpctl(&["--json", "stats"]).stdout;
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        v["carp"]["carps_badttl"] == 1
            && v["carp"]["carps_badsum"] == 1
            && v["carp"]["carps_badauth"] == 1
    });
    assert!(counted.is_ok(), "{}", r1.carpctl(&["stats"]).stdout);
    let text = ok(r1.carpctl(&["stats"]));
    assert!(text.contains("bad checksum"), "{text}");
}

#[test]
fn notify_watchdog_hooks_and_metrics() {
    let Some(lab) = lab("e2e_notify", 1) else {
        return;
    };
    let host = lab.host(0);
    let dir = lab.workdir().join("notify");
    std::fs::create_dir_all(&dir).unwrap();
    // NOTIFY_SOCKET as systemd sets it: a datagram socket the test reads.
    let sock_path = dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // A hook that records its environment.
    let hook_out = dir.join("hook.env");
    let hook = dir.join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nenv | grep ^CARP_ | sort >> {}\n",
            hook_out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let toml = dir.join("carpd.toml");
    std::fs::write(
        &toml,
        format!(
            "[daemon]\nhooks = [\"{}\"]\nmetrics = \"127.0.0.1:9712\"\n\n[[interface]]\nname = \"carp0\"\ncarpdev = \"eth0\"\nvhid = 1\nadvbase = 0\nadvskew = 60\npass = \"{PASS}\"\naddresses = [\"{VIP4}/24\"]\n",
            hook.display()
        ),
    )
    .unwrap();
    let pin = lab.pin_dir("notify");
    let mut cmd = host.command([
        carpd_bin(),
        "--config",
        toml.to_str().unwrap(),
        "--state-dir",
        dir.to_str().unwrap(),
        "--pin-dir",
        pin.to_str().unwrap(),
    ]);
    cmd.env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000");
    let carpd = host.spawn_command(cmd).unwrap();
    let mut buf = [0u8; 512];
    let n = notify.recv(&mut buf).expect("READY=1");
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("READY=1"),
        "{}",
        carpd.log()
    );
    let n = notify.recv(&mut buf).expect("WATCHDOG=1");
    assert_eq!(&buf[..n], b"WATCHDOG=1");

    // The hook saw INIT -> BACKUP -> MASTER.
    wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&hook_out).is_ok_and(|s| s.contains("CARP_NEW_STATE=MASTER"))
    })
    .expect("hook for MASTER");
    let env = std::fs::read_to_string(&hook_out).unwrap();
    assert!(
        env.contains("CARP_INTERFACE=carp0\n") && env.contains("CARP_VHID=1\n"),
        "{env}"
    );
    assert!(
        env.contains("CARP_OLD_STATE=BACKUP\n") && env.contains("CARP_REASON="),
        "{env}"
    );

    // Metrics, scraped inside the router's namespace.
    let body = host
        .in_netns(|| -> std::io::Result<String> {
            let addr: SocketAddr = "127.0.0.1:9712".parse().unwrap();
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })
        .unwrap()
        .unwrap();
    assert!(
        body.contains("carp_vhid_state{interface=\"carp0\",carpdev=\"eth0\",vhid=\"1\"} 2"),
        "{body}"
    );
    assert!(
        body.contains("carp_group_demote{group=\"carp\"} 0"),
        "{body}"
    );
    assert!(
        body.contains("carp_dataplane_total{counter=\"advert_bad_checksum\"}"),
        "{body}"
    );

    carpd.signal(Signal::SIGTERM).unwrap();
    let n = notify.recv(&mut buf).expect("STOPPING=1");
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(text == "STOPPING=1" || text == "WATCHDOG=1", "{text}");
}
