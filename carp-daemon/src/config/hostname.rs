//! OpenBSD `hostname.carpN` files (hostname.if(5)): each line is one ifconfig command,
//! `#` starts a comment. Accepted, on one line or spread over several:
//!
//! ```text
//! inet [alias] ADDR NETMASK [BROADCAST|NONE]    netmask dotted or 0x hex; or ADDR/LEN
//! inet6 [alias] ADDR PREFIXLEN                   or ADDR/LEN
//! vhid N  pass SECRET  carpdev IF  advbase N  advskew N  state master|backup
//! group NAME  up  down  description "TEXT"      !command lines are not run (warned)
//! ```
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use super::{Addr4, Addr6, CarpInterface, ForcedState, Origin, Problem};
use carp_common::wire::{CARP_MAX_ADVSKEW, CARP_MAX_PASSPHRASE_LEN};

/// Parses one file describing interface `ifname`.
pub fn parse(path: &Path, ifname: &str, text: &str) -> Result<CarpInterface, Vec<Problem>> {
    let mut iface = CarpInterface {
        name: ifname.to_owned(),
        carpdev: String::new(),
        vhid: 0,
        advbase: 1,
        advskew: 0,
        passphrase: None,
        ipv4: Vec::new(),
        ipv6: Vec::new(),
        groups: Vec::new(),
        initial_state: None,
        up: true,
        source: Origin {
            path: path.to_owned(),
            line: 1,
        },
    };
    let mut problems = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let mut err = |message: String| {
            problems.push(Problem {
                location: format!("{}:{line_no}", path.display()),
                message,
            })
        };
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('!') {
            tracing::warn!(file = %path.display(), line = line_no, "!command lines are not run by carpd");
            continue;
        }
        let words = split_words(line);
        let mut it = words.iter().map(String::as_str).peekable();
        while let Some(word) = it.next() {
            let result: Result<(), String> = match word {
                "inet" => parse_inet(&mut it).map(|a| iface.ipv4.push(a)),
                "inet6" => parse_inet6(&mut it).map(|a| iface.ipv6.push(a)),
                "vhid" => number(&mut it, "vhid", 1, 255).map(|v| iface.vhid = v as u8),
                "advbase" => number(&mut it, "advbase", 0, 255).map(|v| iface.advbase = v as u8),
                "advskew" => number(&mut it, "advskew", 0, u32::from(CARP_MAX_ADVSKEW))
                    .map(|v| iface.advskew = v as u8),
                "pass" => value(&mut it, "pass").and_then(|p| {
                    if p.len() > CARP_MAX_PASSPHRASE_LEN {
                        Err(format!(
                            "pass: {} bytes is longer than OpenBSD allows ({CARP_MAX_PASSPHRASE_LEN})",
                            p.len()
                        ))
                    } else {
                        iface.passphrase = Some(p.to_owned());
                        Ok(())
                    }
                }),
                "carpdev" => value(&mut it, "carpdev").map(|d| iface.carpdev = d.to_owned()),
                "state" => value(&mut it, "state").and_then(|s| match s {
                    "master" => Ok(iface.initial_state = Some(ForcedState::Master)),
                    "backup" => Ok(iface.initial_state = Some(ForcedState::Backup)),
                    other => Err(format!("state {other}: must be master or backup")),
                }),
                "group" => value(&mut it, "group").map(|g| {
                    if g != "carp" && !iface.groups.iter().any(|x| x == g) {
                        iface.groups.push(g.to_owned());
                    }
                }),
                "up" => Ok(iface.up = true),
                "down" => Ok(iface.up = false),
                "description" | "descr" => value(&mut it, "description").map(drop),
                "dhcp" | "autoconf" => Err(format!("{word}: a carp interface takes fixed addresses")),
                "carpnodes" | "balancing" | "carppeer" => {
                    Err(format!("{word}: not supported by carpd (yet)"))
                }
                other => Err(format!("unknown keyword '{other}'")),
            };
            if let Err(message) = result {
                err(message);
                break;
            }
        }
    }
    if problems.is_empty() {
        Ok(iface)
    } else {
        Err(problems)
    }
}

/// Splits on white space, keeping "double quoted" words together.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn value<'a>(it: &mut impl Iterator<Item = &'a str>, what: &str) -> Result<&'a str, String> {
    it.next().ok_or_else(|| format!("{what}: value missing"))
}

fn number<'a>(
    it: &mut impl Iterator<Item = &'a str>,
    what: &str,
    min: u32,
    max: u32,
) -> Result<u32, String> {
    let v = value(it, what)?;
    let n: u32 = v.parse().map_err(|_| format!("{what} {v}: not a number"))?;
    if n < min || n > max {
        return Err(format!("{what} {n}: out of range ({min}-{max})"));
    }
    Ok(n)
}

fn parse_inet<'a>(
    it: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>,
) -> Result<Addr4, String> {
    if it.peek() == Some(&"alias") {
        it.next();
    }
    let a = value(it, "inet")?;
    let (addr, prefix_len) = if let Some((a, len)) = a.split_once('/') {
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| format!("inet {a}/{len}: bad prefix length"))?;
        (a, len)
    } else {
        let mask = it
            .next()
            .ok_or_else(|| format!("inet {a}: address without netmask"))?;
        (a, netmask_to_prefix(mask)?)
    };
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("inet {addr}: not an IPv4 address"))?;
    // Optional broadcast address (or NONE): derived by the kernel anyway.
    if let Some(next) = it.peek() {
        if *next == "NONE" || next.parse::<Ipv4Addr>().is_ok() {
            it.next();
        } else if *next == "broadcast" {
            it.next();
            it.next();
        } else if *next == "netmask" {
            return Err("inet: netmask given twice".into());
        }
    }
    Ok(Addr4 { addr, prefix_len })
}

fn netmask_to_prefix(mask: &str) -> Result<u8, String> {
    let bits: u32 = if let Some(hex) = mask.strip_prefix("0x") {
        u32::from_str_radix(hex, 16).map_err(|_| format!("netmask {mask}: not a netmask"))?
    } else {
        u32::from(
            mask.parse::<Ipv4Addr>()
                .map_err(|_| format!("netmask {mask}: not a netmask"))?,
        )
    };
    if bits.leading_ones() + bits.trailing_zeros() != 32 {
        return Err(format!("netmask {mask}: not contiguous"));
    }
    Ok(bits.leading_ones() as u8)
}

fn parse_inet6<'a>(
    it: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>,
) -> Result<Addr6, String> {
    if it.peek() == Some(&"alias") {
        it.next();
    }
    let a = value(it, "inet6")?;
    let (addr, len) = match a.split_once('/') {
        Some((a, len)) => (a, len),
        None => {
            let mut len = it
                .next()
                .ok_or_else(|| format!("inet6 {a}: address without prefix length"))?;
            if len == "prefixlen" {
                len = value(it, "prefixlen")?;
            }
            (a, len)
        }
    };
    let prefix_len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= 128)
        .ok_or_else(|| format!("inet6 {a}: bad prefix length '{len}'"))?;
    let addr: Ipv6Addr = addr
        .parse()
        .map_err(|_| format!("inet6 {addr}: not an IPv6 address"))?;
    Ok(Addr6 { addr, prefix_len })
}
