//! TOML configuration files: `[daemon]` settings and `[[interface]]` entries.
//! `examples/carpd.toml` documents every key.
//!
//! The schema is enforced by serde with `deny_unknown_fields`, so a misspelt key is an
//! error naming it rather than a silently ignored setting. Values are deserialized loosely
//! (integers as `i128`, addresses as strings), each with its span, and judged in
//! `validate.rs`: that way `vhid = 300` is "out of range 1 to 255" on the right line, and
//! every such problem in the file is reported.
//!
//! Limit: serde stops at the first *schema* error of a file (a syntax error, an unknown key,
//! a string where a number belongs). That one is reported with its line, and the other files
//! are still checked; the rest of that file is not.
//!
//! Passphrases: the toml crate's messages quote the offending value ("invalid type: integer
//! `123`"), so `pass` is read by a visitor that accepts any type and reports only the type's
//! name, and a syntax error on a `pass` line is reported without the toml crate's words.
//! `pass_file` is read here, where its key's line is known (see `secret.rs`).
use std::path::Path;

use ::toml::Spanned;
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Passphrase;
use super::error::{Diagnostic, Family, Location, Origin, Problem, Table};
use super::secret;
use super::validate::{Draft, DraftDaemon, Located, Num, parse_cidr};

/// What one TOML file contributes.
pub(super) struct TomlFile {
    pub interfaces: Vec<Draft>,
    /// `None` when the file has no `[daemon]` table.
    pub daemon: Option<DraftDaemon>,
    /// The valid `[[check]]` entries (the others are reported).
    pub checks: Vec<super::Check>,
    /// Some `[[interface]]` has a non-empty `pass` in this file itself, so who may read the
    /// file matters.
    pub holds_passphrase: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    daemon: Option<Spanned<RawDaemon>>,
    #[serde(default)]
    interface: Vec<Spanned<RawInterface>>,
    #[serde(default)]
    check: Vec<Spanned<super::checks::RawCheck>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    preempt: Option<Spanned<bool>>,
    pin_dir: Option<Spanned<String>>,
    state_dir: Option<Spanned<String>>,
    lib_dir: Option<Spanned<String>>,
    hooks: Option<Spanned<Vec<Spanned<String>>>>,
    metrics: Option<Spanned<String>>,
    boot_demote: Option<Spanned<i128>>,
    realtime_priority: Option<Spanned<i128>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    name: Option<Spanned<String>>,
    carpdev: Option<Spanned<String>>,
    vhid: Option<Spanned<i128>>,
    advbase: Option<Spanned<i128>>,
    advskew: Option<Spanned<i128>>,
    /// `"1:0,2:100"`, as hostname.if's `carpnodes`.
    carpnodes: Option<Spanned<String>>,
    balancing: Option<Spanned<String>>,
    pass: Option<Spanned<RawPass>>,
    pass_file: Option<Spanned<String>>,
    addresses: Option<Vec<Spanned<String>>>,
    peers: Option<Vec<Spanned<String>>>,
    groups: Option<Vec<Spanned<String>>>,
    carp_group: Option<Spanned<bool>>,
    state: Option<Spanned<String>>,
    up: Option<Spanned<bool>>,
    // VRRPv3 (config/vrrp.rs); `vrid` is `vhid` under its VRRP name.
    protocol: Option<Spanned<String>>,
    vrid: Option<Spanned<i128>>,
    priority: Option<Spanned<i128>>,
    advert_interval: Option<Spanned<i128>>,
    preempt: Option<Spanned<bool>>,
    accept_mode: Option<Spanned<bool>>,
    vrrp_checksum: Option<Spanned<String>>,
}

/// `pass` as written: a string, or the name of the TOML type it wrongly is. Its `Debug`
/// shows neither.
enum RawPass {
    Text(Passphrase),
    Wrong(&'static str),
}

impl std::fmt::Debug for RawPass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawPass::Text(p) => write!(f, "Text({p:?})"),
            RawPass::Wrong(kind) => write!(f, "Wrong({kind})"),
        }
    }
}

impl<'de> Deserialize<'de> for RawPass {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PassVisitor)
    }
}

struct PassVisitor;

impl<'de> Visitor<'de> for PassVisitor {
    type Value = RawPass;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPass, E> {
        Ok(RawPass::Text(Passphrase::new(v)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawPass, E> {
        Ok(RawPass::Wrong("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawPass, E> {
        Ok(RawPass::Wrong("an integer"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawPass, E> {
        Ok(RawPass::Wrong("an integer"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawPass, E> {
        Ok(RawPass::Wrong("a float"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawPass, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawPass::Wrong("an array"))
    }

    // TOML dates arrive as a map too.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawPass, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(RawPass::Wrong("a table or date"))
    }
}

/// Is the error at `offset` on a line that sets `pass` (`pass = ...`, `"pass" = ...`)?
/// Its text may then be the passphrase, and the toml crate's message may quote it.
fn on_pass_line(text: &str, offset: usize) -> bool {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].trim_start();
    ["pass", "\"pass\"", "'pass'"].iter().any(|key| {
        line.strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    })
}

/// 1-based line of byte `offset` in `text`.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Parses one TOML file. Problems go to `diags`.
pub(super) fn parse(path: &Path, text: &str, diags: &mut Vec<Diagnostic>) -> TomlFile {
    let raw: RawFile = match ::toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let at = match e.span() {
                Some(span) => Location::Line(path.to_owned(), line_of(text, span.start)),
                None => Location::File(path.to_owned()),
            };
            // ("duplicate key 'pass'" names the key only, and says more.)
            if e.span().is_some_and(|span| on_pass_line(text, span.start))
                && !e.message().starts_with("duplicate key")
            {
                diags.push(Diagnostic::new(at, Problem::PassSyntax));
                return TomlFile {
                    interfaces: Vec::new(),
                    daemon: None,
                    checks: Vec::new(),
                    holds_passphrase: false,
                };
            }
            // Say it in TOML's terms rather than serde's, and quote keys as carpd does.
            let message = e
                .message()
                .trim()
                .replace('`', "'")
                .replace("expected i128", "expected an integer")
                .replace("expected a sequence", "expected an array");
            diags.push(Diagnostic::new(at, Problem::Toml(message)));
            return TomlFile {
                interfaces: Vec::new(),
                daemon: None,
                checks: Vec::new(),
                holds_passphrase: false,
            };
        }
    };
    let daemon = raw.daemon.map(|d| daemon(path, text, d.into_inner()));
    let holds_passphrase = raw.interface.iter().any(|entry| {
        matches!(entry.get_ref().pass.as_ref().map(Spanned::get_ref),
            Some(RawPass::Text(p)) if !p.is_empty())
    });
    let interfaces = raw
        .interface
        .into_iter()
        .enumerate()
        .map(|(i, entry)| interface(path, text, i + 1, entry, diags))
        .collect();
    let checks = raw
        .check
        .into_iter()
        .enumerate()
        .filter_map(|(i, entry)| super::checks::from_toml(path, text, i + 1, entry, diags))
        .collect();
    TomlFile {
        interfaces,
        daemon,
        checks,
        holds_passphrase,
    }
}

/// Builds [`Located`] values for the keys of one table.
struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
    table: Table,
}

impl Locator<'_> {
    fn at(&self, key: &str, span: std::ops::Range<usize>) -> Location {
        Location::Key {
            path: self.path.to_owned(),
            line: Some(line_of(self.text, span.start)),
            table: self.table.clone(),
            key: Some(key.to_owned()),
        }
    }

    fn value<T>(&self, key: &str, v: Spanned<T>) -> Located<T> {
        let at = self.at(key, v.span());
        Located::new(v.into_inner(), at)
    }

    fn number(&self, key: &str, v: Spanned<i128>) -> Located<Num> {
        let at = self.at(key, v.span());
        Located::new(Num::Int(v.into_inner()), at)
    }
}

fn daemon(path: &Path, text: &str, raw: RawDaemon) -> DraftDaemon {
    let l = Locator {
        path,
        text,
        table: Table::Daemon,
    };
    let RawDaemon {
        preempt,
        pin_dir,
        state_dir,
        lib_dir,
        hooks,
        metrics,
        boot_demote,
        realtime_priority,
    } = raw;
    DraftDaemon {
        path: path.to_owned(),
        preempt: preempt.map(|v| l.value("preempt", v)),
        pin_dir: pin_dir.map(|v| l.value("pin_dir", v)),
        state_dir: state_dir.map(|v| l.value("state_dir", v)),
        lib_dir: lib_dir.map(|v| l.value("lib_dir", v)),
        hooks: hooks.map(|list| {
            let at = l.at("hooks", list.span());
            let items = list
                .into_inner()
                .into_iter()
                .map(|h| l.value("hooks", h))
                .collect();
            Located::new(items, at)
        }),
        metrics: metrics.map(|v| l.value("metrics", v)),
        boot_demote: boot_demote.map(|v| l.number("boot_demote", v)),
        realtime_priority: realtime_priority.map(|v| l.number("realtime_priority", v)),
    }
}

fn interface(
    path: &Path,
    text: &str,
    index: usize,
    entry: Spanned<RawInterface>,
    diags: &mut Vec<Diagnostic>,
) -> Draft {
    let header_line = line_of(text, entry.span().start);
    let RawInterface {
        name,
        carpdev,
        vhid,
        advbase,
        advskew,
        carpnodes,
        balancing,
        pass,
        pass_file,
        addresses,
        peers,
        groups,
        carp_group,
        state,
        up,
        protocol,
        vrid,
        priority,
        advert_interval,
        preempt,
        accept_mode,
        vrrp_checksum,
    } = entry.into_inner();
    let l = Locator {
        path,
        text,
        table: Table::Interface {
            name: name.as_ref().map(|n| n.get_ref().clone()),
            index,
        },
    };
    let origin = Origin {
        path: path.to_owned(),
        line: Some(header_line),
    };
    let mut d = Draft::toml(name.map(|v| l.value("name", v)), origin, index);
    d.carpdev = carpdev.map(|v| l.value("carpdev", v));
    d.vhid = vhid.map(|v| l.number("vhid", v));
    d.advbase = advbase.map(|v| l.number("advbase", v));
    d.advskew = advskew.map(|v| l.number("advskew", v));
    d.carpnodes = carpnodes.map(|v| l.value("carpnodes", v));
    d.balancing = balancing.map(|v| l.value("balancing", v));
    d.pass = pass.and_then(|v| match l.value("pass", v) {
        Located {
            value: RawPass::Text(p),
            at,
        } => Some(Located::new(p, at)),
        Located {
            value: RawPass::Wrong(kind),
            at,
        } => {
            diags.push(Diagnostic::new(at, Problem::PassNotAString(kind)));
            None
        }
    });
    if let Some(file) = pass_file.map(|v| l.value("pass_file", v)) {
        if d.pass.is_some() {
            diags.push(Diagnostic::new(file.at, Problem::PassAndPassFile));
        } else if !file.value.starts_with('/') {
            let problem = Problem::NotAbsolute("pass_file".to_owned());
            diags.push(Diagnostic::new(file.at, problem));
        } else {
            match secret::read_pass_file(Path::new(&file.value)) {
                Ok((pass, access)) => {
                    if !pass.is_empty() {
                        let euid = nix::unistd::geteuid().as_raw();
                        for problem in secret::exposure(access, euid, Path::new(&file.value)) {
                            diags.push(Diagnostic::new(file.at.clone(), problem));
                        }
                    }
                    d.pass = Some(Located::new(pass, file.at));
                }
                Err(problem) => diags.push(Diagnostic::new(file.at, problem)),
            }
        }
    }
    for a in addresses.into_iter().flatten() {
        let a = l.value("addresses", a);
        match parse_cidr(&a.value, Family::Any) {
            Ok(addr) => d.addresses.push(Located::new(addr, a.at)),
            Err(problem) => diags.push(Diagnostic::new(a.at, problem)),
        }
    }
    d.peers = peers
        .into_iter()
        .flatten()
        .map(|p| l.value("peers", p))
        .collect();
    d.groups = groups
        .into_iter()
        .flatten()
        .map(|g| l.value("groups", g))
        .collect();
    if let Some(v) = carp_group {
        let v = l.value("carp_group", v);
        d.carp_group = v.value;
        d.carp_group_at = (!v.value).then_some(v.at);
    }
    d.state = state.map(|v| l.value("state", v));
    d.up = up.is_none_or(|v| *v.get_ref());
    d.vrrp.protocol = protocol.map(|v| l.value("protocol", v));
    match (d.vhid.as_ref(), vrid.map(|v| l.number("vrid", v))) {
        (Some(_), Some(v)) => diags.push(Diagnostic::new(v.at, Problem::VhidAndVrid)),
        (None, Some(v)) if !d.vrrp.is_vrrp() => {
            diags.push(Diagnostic::new(v.at, Problem::VrrpOnlyKey("vrid")));
        }
        (None, Some(v)) => d.vhid = Some(v),
        (_, None) => {}
    }
    d.vrrp.priority = priority.map(|v| l.number("priority", v));
    d.vrrp.advert_interval = advert_interval.map(|v| l.number("advert_interval", v));
    d.vrrp.preempt = preempt.map(|v| l.value("preempt", v));
    d.vrrp.accept_mode = accept_mode.map(|v| l.value("accept_mode", v));
    d.vrrp.checksum = vrrp_checksum.map(|v| l.value("vrrp_checksum", v));
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example documents every key: with its commented-out settings enabled it still
    /// parses, and every key of every table is set somewhere. The destructuring has no
    /// `..`, so adding a key to the schema fails to compile here until the example (and
    /// this test) show it.
    #[test]
    fn example_shows_every_key() {
        let text = super::super::tests::example_toml_with_all_keys();
        let raw: RawFile = ::toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let RawDaemon {
            preempt,
            pin_dir,
            state_dir,
            lib_dir,
            hooks,
            metrics,
            boot_demote,
            realtime_priority,
        } = raw.daemon.expect("[daemon] in the example").into_inner();
        assert!(preempt.is_some() && pin_dir.is_some() && state_dir.is_some());
        assert!(lib_dir.is_some());
        assert!(hooks.is_some() && metrics.is_some() && boot_demote.is_some());
        assert!(realtime_priority.is_some());
        let mut seen = [false; 22];
        for entry in raw.interface {
            let RawInterface {
                name,
                carpdev,
                vhid,
                advbase,
                advskew,
                carpnodes,
                balancing,
                pass,
                pass_file,
                addresses,
                peers,
                groups,
                carp_group,
                state,
                up,
                protocol,
                vrid,
                priority,
                advert_interval,
                preempt,
                accept_mode,
                vrrp_checksum,
            } = entry.into_inner();
            // Typed with its length, so a key added above without a place here fails to build.
            let set: [bool; 22] = [
                name.is_some(),
                carpdev.is_some(),
                vhid.is_some(),
                advbase.is_some(),
                advskew.is_some(),
                carpnodes.is_some(),
                balancing.is_some(),
                pass.is_some(),
                pass_file.is_some(),
                addresses.is_some(),
                peers.is_some(),
                groups.is_some(),
                carp_group.is_some(),
                state.is_some(),
                up.is_some(),
                protocol.is_some(),
                vrid.is_some(),
                priority.is_some(),
                advert_interval.is_some(),
                preempt.is_some(),
                accept_mode.is_some(),
                vrrp_checksum.is_some(),
            ];
            for (s, now) in seen.iter_mut().zip(set) {
                *s |= now;
            }
        }
        assert_eq!(
            seen, [true; 22],
            "an [[interface]] key is missing from the example"
        );
        let mut probes = std::collections::BTreeSet::new();
        let mut others = [false; 7];
        for entry in raw.check {
            let (kind, set) = entry.into_inner().keys_set();
            probes.extend(kind);
            for (s, now) in others.iter_mut().zip(set) {
                *s |= now;
            }
        }
        assert_eq!(probes.len(), 6, "a [[check]] probe is missing: {probes:?}");
        assert_eq!(
            others, [true; 7],
            "a [[check]] key is missing from the example"
        );
    }

    #[test]
    fn lines_are_counted_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
