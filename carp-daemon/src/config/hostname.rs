//! OpenBSD `hostname.carpN` files (hostname.if(5)), taken unchanged.
//!
//! On OpenBSD, netstart reads the file line by line and runs each line as
//! `ifconfig carpN <line>`, through the shell (`eval`). This parser follows that:
//!
//! - Words are split as the shell splits them: whitespace separates, `'...'` and `"..."`
//!   quote (so `description "front end"` is one value), a backslash escapes the next
//!   character, and `#` starts a comment only at the start of a word (`pass abc#1` keeps
//!   its `#`, as sh does). Nothing is expanded: `$x` stays `$x`.
//! - A line whose first word starts with `!` is a shell command on OpenBSD; carpd runs
//!   none and warns that it was ignored.
//! - `inet` and `inet6` must be the first word of their line (they are ifconfig's address
//!   family argument). netstart reads `inet ADDR MASK BROADCAST ...` positionally; here the
//!   word after the address is taken as the netmask if it starts with a digit (a dotted quad
//!   or 0x hex), and the word after that as the broadcast address if it starts with a digit
//!   or is `NONE`. So both the historic `inet 10.0.0.1 255.255.255.0 NONE vhid 1` and the
//!   common `inet 10.0.0.1 255.255.255.0 vhid 1` work, as do CIDR (`10.0.0.1/24`) and
//!   ifconfig's own `netmask M`, `broadcast B`, `prefixlen N` words.
//! - As with OpenBSD's ifconfig, a plain `inet` line replaces the first IPv4 address set by
//!   an earlier line (with a warning); `inet alias` (or a trailing `alias`) adds one.
//!   `inet6` always adds.
//! - Carp words may be on an address line or on their own lines, in any order; a later
//!   value overrides an earlier one, as a later ifconfig command would.
//!
//! The parser only records what each line says and where ([`Draft`]); whether the values
//! are acceptable is decided in `validate.rs`.
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use super::Passphrase;
use super::error::{Diagnostic, Family, Location, Problem};
use super::validate::{
    Draft, DraftAddr, Located, Num, derived_broadcast, parse_cidr, parse_prefix_len,
};
use crate::values::CARP_GROUP;

/// Parses the hostname.if text of interface `ifname`. Problems go to `diags`; the draft
/// holds whatever could be understood.
pub(super) fn parse(path: &Path, ifname: &str, text: &str, diags: &mut Vec<Diagnostic>) -> Draft {
    let mut parser = Parser {
        path,
        draft: Draft::hostname(path, ifname),
        diags,
        line: 0,
    };
    for (i, line) in text.lines().enumerate() {
        parser.line = i + 1;
        parser.parse_line(line);
    }
    parser.draft
}

/// Splits a line into words the way sh does (see the module documentation).
fn split_words(line: &str) -> Result<Vec<String>, Problem> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => return Ok(words),
            Some(_) => {}
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            match c {
                '\'' => loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(Problem::UnterminatedQuote('\'')),
                    }
                },
                '"' => loop {
                    match chars.next() {
                        Some('"') => break,
                        // Inside double quotes a backslash escapes only these.
                        Some('\\') => {
                            match chars.next_if(|c| matches!(c, '"' | '\\' | '$' | '`')) {
                                Some(c) => word.push(c),
                                None => word.push('\\'),
                            }
                        }
                        Some(c) => word.push(c),
                        None => return Err(Problem::UnterminatedQuote('"')),
                    }
                },
                '\\' => {
                    if let Some(c) = chars.next() {
                        word.push(c);
                    }
                }
                c => word.push(c),
            }
        }
        words.push(word);
    }
}

/// OpenBSD ifconfig words carpd knows but does not implement, and why.
fn unsupported(word: &str) -> Option<&'static str> {
    Some(match word {
        "lladdr" => "the MAC of a carp interface is the virtual MAC 00:00:5e:00:01:<vhid>",
        "mtu" => "a carp interface takes the MTU of its carpdev",
        "carpdemote" | "-carpdemote" => {
            "demotion is a group setting changed at run time: carpctl -g GROUP carpdemote N"
        }
        "create" | "destroy" => "carpd creates and removes its interfaces itself",
        "delete" | "-alias" => {
            "a configuration file lists the addresses to have; leave the address out instead"
        }
        "dest" => "point-to-point destinations do not apply to carp interfaces",
        "rdomain" | "-rdomain" | "rtlabel" | "-rtlabel" | "priority" | "llprio" | "metric"
        | "media" | "mediaopt" | "-mediaopt" | "arp" | "-arp" | "staticarp" | "-staticarp"
        | "debug" | "-debug" | "monitor" | "-monitor" | "eui64" | "temporary" | "-temporary"
        | "autoconfprivacy" | "-autoconfprivacy" | "anycast" | "-anycast" | "tentative"
        | "-tentative" | "pltime" | "vltime" => "it has no carpd equivalent",
        _ => return None,
    })
}

/// The address of the line being parsed, until the line's end says whether it is an alias.
struct PendingAddress {
    family: Family,
    addr: Option<IpAddr>,
    /// From CIDR, a netmask or prefixlen.
    prefix: Option<u8>,
    alias: bool,
    broadcast: Option<Ipv4Addr>,
}

struct Words {
    words: Vec<String>,
    pos: usize,
}

impl Words {
    fn peek(&self) -> Option<&str> {
        self.words.get(self.pos).map(String::as_str)
    }

    fn next(&mut self) -> Option<String> {
        let w = self.words.get(self.pos).cloned();
        self.pos += usize::from(w.is_some());
        w
    }

    /// Takes the next word if `f` says it is one.
    fn next_if(&mut self, f: impl Fn(&str) -> bool) -> Option<String> {
        if self.peek().is_some_and(f) {
            self.next()
        } else {
            None
        }
    }
}

fn starts_with_digit(w: &str) -> bool {
    w.starts_with(|c: char| c.is_ascii_digit())
}

struct Parser<'a> {
    path: &'a Path,
    draft: Draft,
    diags: &'a mut Vec<Diagnostic>,
    line: usize,
}

impl Parser<'_> {
    fn at(&self) -> Location {
        Location::Line(self.path.to_owned(), self.line)
    }

    fn report(&mut self, problem: Problem) {
        let at = self.at();
        self.diags.push(Diagnostic::new(at, problem));
    }

    fn located<T>(&self, value: T) -> Located<T> {
        Located::new(value, self.at())
    }

    fn parse_line(&mut self, line: &str) {
        if let Some(command) = line.trim_start().strip_prefix('!') {
            self.report(Problem::CommandIgnored(command.trim().to_owned()));
            return;
        }
        let words = match split_words(line) {
            Ok(words) => words,
            Err(problem) => return self.report(problem),
        };
        let mut words = Words { words, pos: 0 };
        match words.peek() {
            None => {}
            Some("inet") => {
                words.next();
                self.address_line(Family::V4, &mut words);
            }
            Some("inet6") => {
                words.next();
                self.address_line(Family::V6, &mut words);
            }
            // ifconfig's -inet/-inet6 remove every address of the family set so far.
            Some("-inet") => {
                words.next();
                self.draft.addresses.retain(|a| a.value.addr.is_ipv6());
                self.keywords(&mut words, None);
            }
            Some("-inet6") => {
                words.next();
                self.draft.addresses.retain(|a| a.value.addr.is_ipv4());
                self.keywords(&mut words, None);
            }
            Some(_) => self.keywords(&mut words, None),
        }
    }

    /// `inet [alias] ADDR[/LEN] [MASK [BROADCAST|NONE]] [words]` or
    /// `inet6 [alias] ADDR[/LEN] [PREFIXLEN] [words]`.
    fn address_line(&mut self, family: Family, words: &mut Words) {
        let af = if family == Family::V4 {
            "inet"
        } else {
            "inet6"
        };
        let mut pending = PendingAddress {
            family,
            addr: None,
            prefix: None,
            alias: words.next_if(|w| w == "alias").is_some(),
            broadcast: None,
        };
        let Some(addr_word) = words.next() else {
            return self.report(Problem::MissingArgument(af.to_owned()));
        };
        if addr_word == "autoconf" {
            return self.report(Problem::Dynamic(format!("{af} autoconf")));
        }
        match parse_cidr(&addr_word, family) {
            Ok(DraftAddr { addr, prefix }) => {
                pending.addr = Some(addr);
                pending.prefix = prefix;
            }
            Err(problem) => self.report(problem),
        }
        if family == Family::V4 {
            if let Some(mask) = words.next_if(starts_with_digit) {
                self.set_netmask(&mut pending, &mask);
                if let Some(bc) = words.next_if(|w| starts_with_digit(w) || w == "NONE") {
                    self.set_broadcast(&mut pending, &bc);
                }
            }
        } else if let Some(len) = words.next_if(starts_with_digit) {
            self.set_prefix_len(&mut pending, &len);
        }
        self.keywords(words, Some(&mut pending));
        self.add_address(pending);
    }

    fn set_prefix(&mut self, pending: &mut PendingAddress, prefix: u8) {
        match pending.prefix {
            Some(old) if old != prefix => self.report(Problem::PrefixTwice(old, prefix)),
            _ => pending.prefix = Some(prefix),
        }
    }

    fn set_prefix_len(&mut self, pending: &mut PendingAddress, word: &str) {
        match parse_prefix_len(word, pending.family) {
            Ok(len) => self.set_prefix(pending, len),
            Err(problem) => self.report(problem),
        }
    }

    /// A netmask as OpenBSD's ifconfig takes it: dotted quad or 0x hex, contiguous.
    fn set_netmask(&mut self, pending: &mut PendingAddress, word: &str) {
        let mask = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
            Some(hex) if !hex.is_empty() && hex.len() <= 8 => u32::from_str_radix(hex, 16).ok(),
            Some(_) => None,
            None => word.parse::<Ipv4Addr>().ok().map(u32::from),
        };
        let Some(mask) = mask else {
            return self.report(Problem::BadNetmask(word.to_owned()));
        };
        let len = mask.leading_ones();
        if len + mask.trailing_zeros() != 32 {
            return self.report(Problem::NonContiguousNetmask(word.to_owned()));
        }
        if len == 0 {
            return self.report(Problem::BadPrefixLen {
                family: Family::V4,
                value: format!("0 (netmask {word})"),
                max: 32,
            });
        }
        self.set_prefix(pending, len as u8);
    }

    fn set_broadcast(&mut self, pending: &mut PendingAddress, word: &str) {
        if word == "NONE" {
            return;
        }
        match word.parse() {
            Ok(bc) => pending.broadcast = Some(bc),
            Err(_) => self.report(Problem::BadBroadcast(word.to_owned())),
        }
    }

    /// Records the line's address: an alias is added; a plain IPv4 address replaces the
    /// first IPv4 address of an earlier line, as OpenBSD's ifconfig does.
    fn add_address(&mut self, pending: PendingAddress) {
        let Some(addr) = pending.addr else { return };
        if let (IpAddr::V4(a), Some(given), Some(len)) = (addr, pending.broadcast, pending.prefix)
            && let Some(derived) = derived_broadcast(a, len).filter(|d| *d != given)
        {
            self.report(Problem::BroadcastIgnored { given, derived });
        }
        if addr.is_ipv4() && !pending.alias {
            let first = self
                .draft
                .addresses
                .iter()
                .position(|a| a.value.addr.is_ipv4());
            if let Some(i) = first {
                let old = self.draft.addresses.remove(i);
                if let (IpAddr::V4(old), Some(line)) = (old.value.addr, old.at.line()) {
                    self.report(Problem::InetReplaces { old, line });
                }
            }
        }
        let draft_addr = DraftAddr {
            addr,
            prefix: pending.prefix,
        };
        let located = self.located(draft_addr);
        self.draft.addresses.push(located);
    }

    /// The argument of `keyword`, or a report that it has none.
    fn argument(&mut self, words: &mut Words, keyword: &str) -> Option<String> {
        let arg = words.next();
        if arg.is_none() {
            self.report(Problem::MissingArgument(keyword.to_owned()));
        }
        arg
    }

    /// ifconfig words, in any order. An unknown word ends the line: how many arguments it
    /// would take is unknown, so what follows cannot be read reliably.
    fn keywords(&mut self, words: &mut Words, mut pending: Option<&mut PendingAddress>) {
        let mut after_pass = false;
        while let Some(word) = words.next() {
            // An unknown word right after `pass PHRASE` may be the rest of a passphrase
            // with a space in it (`pass my secret`): it is not quoted back.
            let follows_pass = std::mem::take(&mut after_pass);
            match word.as_str() {
                "vhid" | "advbase" | "advskew" => {
                    let Some(arg) = self.argument(words, &word) else {
                        return;
                    };
                    let value = Some(self.located(Num::Text(arg)));
                    match word.as_str() {
                        // ifconfig's `vhid N` makes the interface one node again.
                        "vhid" => {
                            self.draft.vhid = value;
                            self.draft.carpnodes = None;
                        }
                        "advbase" => self.draft.advbase = value,
                        _ if self.draft.carpnodes.is_some() => {
                            self.report(Problem::AdvskewWithCarpnodes);
                        }
                        _ => self.draft.advskew = value,
                    }
                }
                // FreeBSD 15's carp-VRRP words (config/vrrp.rs).
                "carpver" => {
                    let Some(arg) = self.argument(words, &word) else {
                        return;
                    };
                    let protocol = super::vrrp::protocol_of_carpver(&arg);
                    self.draft.vrrp.protocol = Some(self.located(protocol));
                }
                "vrrpprio" | "vrrpinterval" => {
                    let Some(arg) = self.argument(words, &word) else {
                        return;
                    };
                    let value = Some(self.located(Num::Text(arg)));
                    if word == "vrrpprio" {
                        self.draft.vrrp.priority = value;
                    } else {
                        self.draft.vrrp.advert_interval = value;
                    }
                }
                // `setcarp_nodes` replaces every vhid and advskew set before.
                "carpnodes" => {
                    let Some(arg) = self.argument(words, &word) else {
                        return;
                    };
                    self.draft.carpnodes = Some(self.located(arg));
                    self.draft.vhid = None;
                    self.draft.advskew = None;
                }
                "balancing" => {
                    let Some(arg) = self.argument(words, &word) else {
                        return;
                    };
                    self.draft.balancing = Some(self.located(arg));
                }
                "pass" => {
                    let Some(arg) = self.argument(words, &word) else {
                        return;
                    };
                    self.draft.pass = Some(self.located(Passphrase::new(arg)));
                    after_pass = true;
                }
                "carpdev" => {
                    let Some(arg) = self.argument(words, &word) else {
                        return;
                    };
                    self.draft.carpdev = Some(self.located(arg));
                }
                "-carpdev" => self.draft.carpdev = None,
                // OpenBSD keeps one (IPv4) peer and a later `carppeer` replaces it; carpd
                // keeps every one given, of either family. `-carppeer` forgets them all,
                // so adverts go back to the multicast group.
                "carppeer" => {
                    let Some(arg) = self.argument(words, &word) else {
                        return;
                    };
                    let located = self.located(arg);
                    self.draft.peers.push(located);
                }
                "-carppeer" => self.draft.peers.clear(),
                "state" => {
                    let Some(arg) = self.argument(words, &word) else {
                        return;
                    };
                    self.draft.state = Some(self.located(arg));
                }
                "group" => {
                    let Some(arg) = self.argument(words, &word) else {
                        return;
                    };
                    if arg == CARP_GROUP {
                        self.draft.carp_group = true;
                    } else {
                        let located = self.located(arg);
                        self.draft.groups.push(located);
                    }
                }
                "-group" => {
                    let Some(arg) = self.argument(words, &word) else {
                        return;
                    };
                    // OpenBSD's carp_1.sh does `-group carp group NAME` to keep its demotion
                    // apart: carp is a group like the others.
                    if arg == CARP_GROUP && self.draft.carp_group {
                        self.draft.carp_group = false;
                    } else if self.draft.groups.iter().any(|g| g.value == arg) {
                        self.draft.groups.retain(|g| g.value != arg);
                    } else {
                        self.report(Problem::NotInGroup(arg));
                    }
                }
                "up" => self.draft.up = true,
                "down" => self.draft.up = false,
                "description" | "descr" => {
                    if self.argument(words, &word).is_none() {
                        return;
                    }
                    self.report(Problem::DescriptionIgnored);
                }
                "-description" | "-descr" => {}
                "alias" | "netmask" | "broadcast" | "prefixlen" => {
                    let Some(p) = pending.as_deref_mut() else {
                        return self.report(Problem::AddressOptionWithoutAddress(word));
                    };
                    if word == "alias" {
                        p.alias = true;
                        continue;
                    }
                    if p.family == Family::V6 && word != "prefixlen" {
                        let family = p.family;
                        return self.report(Problem::WrongFamilyOption { word, family });
                    }
                    let Some(arg) = self.argument(words, &word) else {
                        return;
                    };
                    match word.as_str() {
                        "netmask" => self.set_netmask(p, &arg),
                        "broadcast" => self.set_broadcast(p, &arg),
                        _ => self.set_prefix_len(p, &arg),
                    }
                }
                "inet" | "inet6" | "-inet" | "-inet6" => {
                    return self.report(Problem::FamilyNotFirst(word));
                }
                "dhcp" | "autoconf" | "-autoconf" | "rtsol" => {
                    return self.report(Problem::Dynamic(word));
                }
                _ if follows_pass => return self.report(Problem::WordAfterPass),
                w => {
                    let problem = match unsupported(w) {
                        Some(why) => Problem::Unsupported { word, why },
                        None => Problem::UnknownKeyword(word),
                    };
                    return self.report(problem);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_sh() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   \t ", &[]),
            ("# all comment", &[]),
            ("vhid 1 # trailing comment", &["vhid", "1"]),
            ("pass abc#1", &["pass", "abc#1"]),
            ("description \"front end\"", &["description", "front end"]),
            ("description 'it''s'", &["description", "its"]),
            ("pass a\\ b", &["pass", "a b"]),
            ("pass \"a\\\"b\\x\"", &["pass", "a\"b\\x"]),
            ("pass \"\"", &["pass", ""]),
            ("pass $x", &["pass", "$x"]),
        ];
        for (line, want) in cases {
            assert_eq!(split_words(line).unwrap(), *want, "{line:?}");
        }
        assert_eq!(
            split_words("description \"open"),
            Err(Problem::UnterminatedQuote('"'))
        );
        assert_eq!(
            split_words("pass 'open"),
            Err(Problem::UnterminatedQuote('\''))
        );
    }
}
