//! Elections on real interfaces: two and three routers, the client reaching the virtual
//! addresses by ping and TCP, and seeing only the virtual MAC.
mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::*;

const T1: Timers = Timers {
    advbase: 0,
    advskew: 60,
};
const T2: Timers = Timers {
    advbase: 0,
    advskew: 120,
};
const T3: Timers = Timers {
    advbase: 0,
    advskew: 180,
};

#[test]
fn two_routers_elect_and_the_client_sees_only_the_virtual_mac() {
    let Some(lab) = lab("e2e_two_routers", 2) else {
        return;
    };
    let (r1, r2) = master_and_backup(&lab, T1, T2, &[]);

    let client = lab.client();
    assert!(client.ping(IpAddr::V4(VIP4)).unwrap(), "ping {VIP4}");
    assert!(client.ping(IpAddr::V6(VIP6)).unwrap(), "ping {VIP6}");
    assert_eq!(
        neighbour_mac(client, IpAddr::V4(VIP4)).as_deref(),
        Some(VMAC)
    );
    assert_eq!(
        neighbour_mac(client, IpAddr::V6(VIP6)).as_deref(),
        Some(VMAC)
    );

    // TCP to a service bound to the virtual address on the master.
    for vip in [IpAddr::V4(VIP4), IpAddr::V6(VIP6)] {
        let addr = SocketAddr::new(vip, 8080);
        let listener: TcpListener = lab
            .host(0)
            .in_netns(move || TcpListener::bind(addr))
            .unwrap()
            .unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.write_all(b"hello from the master").unwrap();
        });
        let reply = client
            .in_netns(move || -> std::io::Result<String> {
                let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
                let mut buf = String::new();
                s.read_to_string(&mut buf)?;
                Ok(buf)
            })
            .unwrap()
            .expect("TCP to the virtual address");
        assert_eq!(reply, "hello from the master");
        server.join().unwrap();
    }

    // carpctl prints the interface as OpenBSD's ifconfig does.
    let out = r1.carpctl(&["carp0"]);
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("carp: MASTER carpdev eth0 vhid 1 advbase 0 advskew 60"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("lladdr 00:00:5e:00:01:01"),
        "{}",
        out.stdout
    );
    let out = r2.carpctl(&[]);
    assert!(
        out.stdout.contains("carp: BACKUP carpdev eth0 vhid 1"),
        "{}",
        out.stdout
    );
}

#[test]
fn three_routers_elect_exactly_one_master() {
    let Some(lab) = lab("e2e_three_routers", 3) else {
        return;
    };
    let timers = [T1, T2, T3];
    let routers: Vec<Router<'_>> = (0..3)
        .map(|i| {
            Router::start(
                &lab,
                lab.host(i),
                &hostname_carp0(lab.host(i), timers[i]),
                &[],
            )
        })
        .collect();
    routers[0].wait_state("MASTER", Duration::from_secs(10));
    routers[1].wait_state("BACKUP", Duration::from_secs(10));
    routers[2].wait_state("BACKUP", Duration::from_secs(10));
    assert!(lab.client().ping(IpAddr::V4(VIP4)).unwrap());
    assert_eq!(
        neighbour_mac(lab.client(), IpAddr::V4(VIP4)).as_deref(),
        Some(VMAC)
    );
}
