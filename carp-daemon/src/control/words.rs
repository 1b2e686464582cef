//! carpctl's argument words, parsed the way OpenBSD's ifconfig(8) parses its carp words.
//!
//! ifconfig's grammar is positional: an interface name (or `-g GROUP`), then words, some taking
//! the next argument (NEXTARG in ifconfig.c's `cmds[]` table). carpctl keeps that grammar, the
//! spelling of every word, its range (ifconfig's `strtonum()` bounds) and its error messages,
//! from OpenBSD's sbin/ifconfig/ifconfig.c 1.476 (2025):
//!
//! | input                          | message (after "carpctl: ")                        |
//! |--------------------------------|----------------------------------------------------|
//! | `advskew 300`                  | `advskew 300: too large` (also advbase, vhid)      |
//! | `vhid 0` / `vhid x`            | `vhid 0: too small` / `vhid x: invalid`            |
//! | `advskew` (last word)          | `'advskew' requires argument`                      |
//! | `frobnicate`                   | `frobnicate: bad value`                            |
//! | `group web1`                   | `setifgroup: group names may not end in a digit`   |
//! | `group averyveryverylongname`  | `setifgroup: group name too long`                  |
//! | `group 'web db'`               | `setifgroup: group name contains whitespace or ...`|
//! | `-g carp carpdemote 200`       | `carp: invalid carp demotion: too large`           |
//! | a 16-byte interface name       | `interface name 'NAME' too long`                   |
//!
//! Where carpctl is stricter than ifconfig it says so: `pass` longer than 19 bytes is refused
//! (ifconfig silently truncates it), `state` other than master/backup is refused (ifconfig
//! silently sends INIT, which the kernel ignores), a group name with whitespace or a control
//! character is refused (as in the configuration), and ifconfig words carpctl does not handle
//! (addresses, carpdev, ...) get a message naming the configuration instead of "bad value".
//!
//! Every word is checked before anything is sent, so a command with one bad word changes
//! nothing (ifconfig applies words one by one and stops at the first bad one, half-applied).
//!
//! The rules themselves (ranges, name and passphrase limits) live in `crate::values`, shared
//! with the configuration, so both accept the same values; this module reads ifconfig's
//! grammar and words the rules' reasons as ifconfig does.
use super::protocol::{
    ForcedState, Op, Passphrase, Request, Target, check_group_name, check_group_name_to_leave,
    check_pass,
};
use crate::values::{self, ADVBASE, ADVSKEW, DEMOTE_STEP, Range, StateError, VHID};

/// What a carpctl command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `carpctl` (all carp interfaces) or `carpctl NAME` (one, or a group's members).
    Show { name: Option<String> },
    /// `carpctl -g GROUP`: the group's demote counter.
    ShowGroup { group: String },
    /// Settings to change (interface words, or `-g GROUP [-]carpdemote [N]`).
    Apply { target: Target, ops: Vec<Op> },
    /// `carpctl stats`.
    Stats,
    /// `carpctl checks`.
    Checks,
    /// `carpctl monitor`: the live event stream.
    Monitor,
    /// `carpctl debug xdp on|off`.
    DebugXdp { on: bool },
}

impl Command {
    /// The request that carries this command to carpd.
    pub fn request(&self) -> Request {
        match self {
            Command::Show { name } => Request::Status {
                interface: name.clone(),
            },
            Command::ShowGroup { group } => Request::GroupStatus {
                group: group.clone(),
            },
            Command::Apply { target, ops } => Request::Apply {
                target: target.clone(),
                ops: ops.clone(),
            },
            Command::Stats => Request::Stats,
            Command::Checks => Request::Checks,
            Command::Monitor => Request::Monitor,
            Command::DebugXdp { on } => Request::DebugXdp { on: *on },
        }
    }
}

/// A command line carpctl refuses; nothing has been sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WordError {
    /// What ifconfig would print after its program name.
    pub message: String,
    /// Whether the command's shape was wrong (print the usage too), rather than one value.
    pub show_usage: bool,
}

impl WordError {
    fn value(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            show_usage: false,
        }
    }

    fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            show_usage: true,
        }
    }
}

/// The synopsis, ifconfig-style, without the leading "usage: " (clap adds its own "Usage: ");
/// continuation lines are indented to line up under either.
pub const USAGE: &str = concat!(
    "carpctl [--state-dir DIR] [--json] [-v] [interface [word ...]]\n",
    "       carpctl [--state-dir DIR] [--json] -g group [[-]carpdemote [N] [--persist]]\n",
    "       carpctl [--state-dir DIR] [--json] stats\n",
    "       carpctl [--state-dir DIR] [--json] checks\n",
    "       carpctl [--state-dir DIR] [--json] monitor\n",
    "       carpctl [--state-dir DIR] debug xdp on|off"
);

/// The words, man-page style, for `carpctl --help`.
pub const WORDS_HELP: &str = "\
WORDS
    carpctl speaks the carp words of OpenBSD's ifconfig(8), with the same spelling, ranges and
    meaning. Several words may follow one interface name; they are all checked before any is
    sent, and carpd applies them all or none.

    carpctl
        Show every carp interface, as ifconfig shows it.
    carpctl carpN
        Show one carp interface. A name that does not end in a digit is taken as a group and
        shows its members: `carpctl carp` lists every carp interface.
    carpctl -g group
        Show the group's demote counter: `carp: carp demote count 0`.
    carpctl -g group carpdemote [N]
        Add N (0..128, default 1) to the group's demote counter. Every member advertises the
        sum of its groups' counters; a higher demotion loses the election, so this moves
        mastership away without taking the host out (it still takes over if every other host
        fails). A change that would take the counter outside 0..255 is refused.
    carpctl -g group -carpdemote [N]
        Subtract N (default 1) from the group's demote counter.
    carpctl -g group [-]carpdemote [N] --persist
        The same, and the same change to the group's persisted demotion (maintenance mode):
        carpd keeps it in its lib directory (/var/lib/carpd) and applies it again at every
        start, on top of any boot demotion, until `-carpdemote N --persist` takes it back.
        A plain carpdemote never changes it; `carpctl -g group` shows it.
    carpctl stats
        Protocol counters as `netstat -s -p carp` prints them, then the XDP dataplane's.
    carpctl checks
        Every health check ([[check]] in carpd.toml): up, down or pending, the last result
        and its reason, the consecutive successes and failures against rise and fall, and
        the demotion it holds on its group.
    carpctl monitor
        Follow what carpd decides, as `route monitor` follows the routing socket: state
        changes with their reason, the demote count each vhid advertises, group demote
        counters, adverts carpd rejected (with the source and why), and, while
        `carpctl debug xdp on`, the XDP program's decisions. One line per event (--json: one
        JSON object per line) until carpd stops or carpctl is interrupted.
    carpctl debug xdp on | off
        Switch the XDP program's decision records, off at every start: each advert it drops
        (reason, source, vhid, carpdev) and each ARP request or neighbour solicitation for a
        virtual address it answers or drops (target, and the state that decided), at most
        20 per CPU and second (then one line says how many were suppressed). They go to
        carpd's log (target carpd::xdp, level info) and to `carpctl monitor`. Adverts with a
        wrong passphrase pass the program (it does not check the HMAC): carpd rejects them,
        and `carpctl monitor` shows that whether or not this is on.

    Words after an interface name:
    up | down
        Bring the interface up, or take it down. A master going down sends one last advert
        (advbase 255, advskew 255) so that a backup takes over at once.
    group name
        Add the interface to a group (created on first use). Group names have at most 15
        bytes, no spaces, and must not end in a digit. Every carp interface starts in group
        carp.
    -group name
        Remove the interface from a group; `-group carp` too, so that carpdemote on group
        carp leaves it alone. Its own pending demotion (link loss) moves with it.
    advskew N
        Skew the advertisement interval by N/256 s (0..254). The lowest interval wins the
        election; use it to prefer one host.
    advbase N
        Base advertisement interval in seconds (0..254). 0 gives 1/256 s steps.
    vhid N
        Virtual host id, 1..255. Hosts sharing addresses use the same vhid; the virtual MAC is
        00:00:5e:00:01:N.
    pass passphrase
        The shared passphrase for the advertisement HMAC, at most 19 bytes (OpenBSD would
        silently use only the first 19; carpctl refuses instead).
    state master | backup
        Force the election state once: master acts as if the master-down timer fired.
        Ignored while the interface is INIT (down, no carpdev link, no addresses).

    Addresses, carpdev and the other ifconfig words are set in carpd's configuration.

EXIT STATUS
    0 on success, 1 when carpd refused or failed the request (or is not running),
    2 when the command line is wrong (nothing was sent).

EXAMPLES
    carpctl -g carp carpdemote 128       # move every master away (e.g. before maintenance)
    carpctl -g carp -carpdemote 128      # and back
    carpctl carp0 advskew 100 group web up
    carpctl --json carp0";

/// ifconfig words carpctl leaves to carpd's configuration; named so the user learns where to
/// go instead of reading "bad value" for a word they know is valid.
const CONFIG_ONLY_WORDS: &[&str] = &[
    "carpdev",
    "-carpdev",
    "carppeer",
    "-carppeer",
    "carpnodes",
    "balancing",
    "inet",
    "inet6",
    "-inet",
    "-inet6",
    "alias",
    "-alias",
    "delete",
    "netmask",
    "broadcast",
    "prefixlen",
    "mtu",
    "lladdr",
    "llprio",
    "priority",
    "metric",
    "description",
    "descr",
    "-description",
    "-descr",
    "rdomain",
    "-rdomain",
    "create",
    "destroy",
];

/// Parses carpctl's words (everything after the global options).
pub fn parse(words: &[String]) -> Result<Command, WordError> {
    let Some(first) = words.first() else {
        return Ok(Command::Show { name: None });
    };
    match first.as_str() {
        "-g" => parse_group(&words[1..]),
        // ifconfig -a / -A: every interface.
        "-a" | "-A" if words.len() == 1 => Ok(Command::Show { name: None }),
        "stats" if words.len() == 1 => Ok(Command::Stats),
        "stats" => Err(WordError::usage("stats: takes no words")),
        "checks" if words.len() == 1 => Ok(Command::Checks),
        "checks" => Err(WordError::usage("checks: takes no words")),
        "monitor" if words.len() == 1 => Ok(Command::Monitor),
        "monitor" => Err(WordError::usage("monitor: takes no words")),
        "debug" => match &words[1..] {
            [what, on] if what == "xdp" && on == "on" => Ok(Command::DebugXdp { on: true }),
            [what, off] if what == "xdp" && off == "off" => Ok(Command::DebugXdp { on: false }),
            _ => Err(WordError::usage(
                "debug: expected `debug xdp on` or `debug xdp off`",
            )),
        },
        flag if flag.starts_with('-') => Err(WordError::usage(format!("unknown option {flag}"))),
        name => {
            check_name(name)?;
            let rest = &words[1..];
            if rest.is_empty() {
                return Ok(Command::Show {
                    name: Some(name.to_owned()),
                });
            }
            Ok(Command::Apply {
                target: Target::Interface(name.to_owned()),
                ops: parse_interface_words(rest)?,
            })
        }
    }
}

/// ifconfig: `interface name '%s' too long` (its name buffer is IFNAMSIZ). A name carpctl
/// looks up (an interface or a group) is checked for length only, as ifconfig does.
fn check_name(name: &str) -> Result<(), WordError> {
    if name.len() > values::NAME_MAX {
        return Err(WordError::value(format!(
            "interface name '{name}' too long"
        )));
    }
    Ok(())
}

/// `-g GROUP [[-]carpdemote [N]]` (ifconfig's `printgroupattribs` / `setgroupattribs`).
fn parse_group(words: &[String]) -> Result<Command, WordError> {
    let Some(group) = words.first() else {
        return Err(WordError::usage("-g: a group name is required"));
    };
    check_name(group)?;
    let Some(word) = words.get(1) else {
        return Ok(Command::ShowGroup {
            group: group.clone(),
        });
    };
    let raise = match word.as_str() {
        "carpdemote" => true,
        "-carpdemote" => false,
        other => {
            return Err(WordError::usage(format!(
                "{other}: only carpdemote [N] and -carpdemote [N] apply to a group"
            )));
        }
    };
    // `--persist` last: the change is also kept across restarts.
    let persist = words.len() > 2 && words.last().is_some_and(|w| w == "--persist");
    let words = if persist {
        &words[..words.len() - 1]
    } else {
        words
    };
    let by = match words.get(2) {
        None => 1,
        Some(n) => {
            let n = strtonum(n, i64::from(DEMOTE_STEP.min), i64::from(DEMOTE_STEP.max))
                .map_err(|e| WordError::value(format!("{group}: invalid carp demotion: {e}")))?;
            u8::try_from(n).expect("range-checked above")
        }
    };
    if let Some(extra) = words.get(3) {
        return Err(WordError::usage(format!(
            "{extra}: unexpected after {word} (one change per command)"
        )));
    }
    let op = match (raise, persist) {
        (true, false) => Op::Demote(by),
        (false, false) => Op::Promote(by),
        (true, true) => Op::PersistDemote(by),
        (false, true) => Op::PersistPromote(by),
    };
    Ok(Command::Apply {
        target: Target::Group(group.clone()),
        ops: vec![op],
    })
}

/// The words after an interface name, left to right, each with its argument.
fn parse_interface_words(words: &[String]) -> Result<Vec<Op>, WordError> {
    let mut ops = Vec::new();
    let mut iter = words.iter();
    while let Some(word) = iter.next() {
        let word = word.as_str();
        let mut arg = || {
            iter.next()
                .map(String::as_str)
                .ok_or_else(|| WordError::value(format!("'{word}' requires argument")))
        };
        let op = match word {
            "up" => Op::Up,
            "down" => Op::Down,
            "group" => {
                let g = arg()?;
                check_group_name(g, "setifgroup").map_err(WordError::value)?;
                Op::AddGroup(g.to_owned())
            }
            "-group" => {
                let g = arg()?;
                check_group_name_to_leave(g).map_err(WordError::value)?;
                Op::RemoveGroup(g.to_owned())
            }
            "advskew" => Op::AdvSkew(number(arg()?, ADVSKEW)?),
            "advbase" => Op::AdvBase(number(arg()?, ADVBASE)?),
            "vhid" => Op::Vhid(number(arg()?, VHID)?),
            "pass" => {
                let p = arg()?;
                check_pass(p).map_err(WordError::value)?;
                Op::Pass(Passphrase::new(p))
            }
            "state" => Op::State(forced_state(arg()?)?),
            "carpdemote" | "-carpdemote" => {
                return Err(WordError::value(format!(
                    "{word}: applies to a group: carpctl -g GROUP {word} [N]"
                )));
            }
            // No ifconfig word starts with "--": this is an option given too late.
            w if w.starts_with("--") => {
                return Err(WordError::usage(format!(
                    "{w}: options go before the interface name"
                )));
            }
            w if CONFIG_ONLY_WORDS.contains(&w) => {
                return Err(WordError::value(format!(
                    "{w}: not supported by carpctl (set it in carpd's configuration)"
                )));
            }
            // ifconfig takes any other word as an address, and fails to parse it.
            w => return Err(WordError::value(format!("{w}: bad value"))),
        };
        ops.push(op);
    }
    Ok(ops)
}

/// A numeric word's argument, as ifconfig reads it: `strtonum(val, min, max)`, and on failure
/// `errx(1, "%s %s: %s", word, val, errstr)`.
fn number(val: &str, range: Range) -> Result<u8, WordError> {
    let n = strtonum(val, i64::from(range.min), i64::from(range.max))
        .map_err(|e| WordError::value(format!("{} {val}: {e}", range.name)))?;
    Ok(u8::try_from(n).expect("range-checked above"))
}

/// `state master|backup` by [`values::parse_state`].
fn forced_state(val: &str) -> Result<ForcedState, WordError> {
    values::parse_state(val).map_err(|e| match e {
        StateError::Init => WordError::value(
            "state init: only master or backup can be forced (take the interface down instead)",
        ),
        StateError::Unknown => {
            WordError::value(format!("state {val}: unknown state (master or backup)"))
        }
    })
}

/// OpenBSD's strtonum(3): a base-10 integer with optional leading blanks and sign, nothing
/// after it, within `min..=max`; the error strings are strtonum's own ("invalid", "too small",
/// "too large") because ifconfig prints them verbatim.
pub fn strtonum(val: &str, min: i64, max: i64) -> Result<i64, &'static str> {
    let t = val.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if min > max || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid");
    }
    // Saturate instead of overflowing: strtoll clamps to LLONG_MIN/MAX with ERANGE, which
    // strtonum reports as too small/too large, and so do these bounds.
    let magnitude = digits.bytes().fold(0u128, |acc, b| {
        (acc * 10 + u128::from(b - b'0')).min(u128::from(u64::MAX))
    });
    let value = if negative {
        -(magnitude as i128)
    } else {
        magnitude as i128
    };
    if value < i128::from(min) {
        Err("too small")
    } else if value > i128::from(max) {
        Err("too large")
    } else {
        Ok(value as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn ok(s: &str) -> Command {
        parse(&words(s)).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        parse(&words(s)).expect_err(s).message
    }

    fn apply(name: &str, ops: Vec<Op>) -> Command {
        Command::Apply {
            target: Target::Interface(name.into()),
            ops,
        }
    }

    fn group(name: &str, op: Op) -> Command {
        Command::Apply {
            target: Target::Group(name.into()),
            ops: vec![op],
        }
    }

    #[test]
    fn shows() {
        assert_eq!(ok(""), Command::Show { name: None });
        assert_eq!(ok("-a"), Command::Show { name: None });
        assert_eq!(
            ok("carp0"),
            Command::Show {
                name: Some("carp0".into())
            }
        );
        assert_eq!(
            ok("carp"),
            Command::Show {
                name: Some("carp".into())
            }
        );
        assert_eq!(
            ok("-g carp"),
            Command::ShowGroup {
                group: "carp".into()
            }
        );
        assert_eq!(ok("stats"), Command::Stats);
        assert_eq!(ok("checks"), Command::Checks);
        assert_eq!(ok("checks").request(), Request::Checks);
        assert_eq!(ok("monitor").request(), Request::Monitor);
        assert_eq!(ok("debug xdp on").request(), Request::DebugXdp { on: true });
        assert_eq!(
            ok("debug xdp off").request(),
            Request::DebugXdp { on: false }
        );
        assert!(err("debug xdp").contains("debug xdp on"));
    }

    #[test]
    fn group_demotion_words() {
        assert_eq!(ok("-g carp carpdemote 128"), group("carp", Op::Demote(128)));
        assert_eq!(
            ok("-g carp -carpdemote 128"),
            group("carp", Op::Promote(128))
        );
        assert_eq!(ok("-g carp carpdemote"), group("carp", Op::Demote(1)));
        assert_eq!(ok("-g carp -carpdemote"), group("carp", Op::Promote(1)));
        assert_eq!(ok("-g web carpdemote 0"), group("web", Op::Demote(0)));
        assert_eq!(
            ok("-g carp carpdemote 50 --persist"),
            group("carp", Op::PersistDemote(50))
        );
        assert_eq!(
            ok("-g carp -carpdemote --persist"),
            group("carp", Op::PersistPromote(1))
        );
    }

    #[test]
    fn interface_words() {
        assert_eq!(
            ok("carp0 group mygroup"),
            apply("carp0", vec![Op::AddGroup("mygroup".into())])
        );
        assert_eq!(
            ok("carp0 -group mygroup"),
            apply("carp0", vec![Op::RemoveGroup("mygroup".into())])
        );
        assert_eq!(
            ok("carp0 advskew 100"),
            apply("carp0", vec![Op::AdvSkew(100)])
        );
        assert_eq!(
            ok("carp0 advskew 254"),
            apply("carp0", vec![Op::AdvSkew(254)])
        );
        assert_eq!(ok("carp0 advbase 1"), apply("carp0", vec![Op::AdvBase(1)]));
        assert_eq!(ok("carp0 advbase 0"), apply("carp0", vec![Op::AdvBase(0)]));
        assert_eq!(ok("carp0 vhid 2"), apply("carp0", vec![Op::Vhid(2)]));
        assert_eq!(ok("carp0 vhid 255"), apply("carp0", vec![Op::Vhid(255)]));
        assert_eq!(
            ok("carp0 pass NEWPASS"),
            apply("carp0", vec![Op::Pass("NEWPASS".into())])
        );
        assert_eq!(
            ok("carp0 state master"),
            apply("carp0", vec![Op::State(ForcedState::Master)])
        );
        assert_eq!(
            ok("carp0 state BACKUP"),
            apply("carp0", vec![Op::State(ForcedState::Backup)])
        );
        assert_eq!(ok("carp0 down"), apply("carp0", vec![Op::Down]));
        assert_eq!(ok("carp0 up"), apply("carp0", vec![Op::Up]));
        assert_eq!(
            ok("carp0 advskew 100 group web up"),
            apply(
                "carp0",
                vec![Op::AdvSkew(100), Op::AddGroup("web".into()), Op::Up]
            )
        );
        // A value that looks like a word or a flag is still the value (NEXTARG).
        assert_eq!(
            ok("carp0 pass -group"),
            apply("carp0", vec![Op::Pass("-group".into())])
        );
        // Exactly 19 bytes is the longest passphrase.
        assert_eq!(
            parse(&["carp0".into(), "pass".into(), "a".repeat(19)]).unwrap(),
            apply("carp0", vec![Op::Pass("a".repeat(19).into())])
        );
    }

    #[test]
    fn unknown_words_and_missing_values() {
        assert_eq!(err("carp0 frobnicate"), "frobnicate: bad value");
        assert_eq!(err("carp0 up frobnicate"), "frobnicate: bad value");
        assert_eq!(err("carp0 advskew"), "'advskew' requires argument");
        assert_eq!(err("carp0 advbase"), "'advbase' requires argument");
        assert_eq!(err("carp0 vhid"), "'vhid' requires argument");
        assert_eq!(err("carp0 pass"), "'pass' requires argument");
        assert_eq!(err("carp0 state"), "'state' requires argument");
        assert_eq!(err("carp0 group"), "'group' requires argument");
        assert_eq!(err("carp0 -group"), "'-group' requires argument");
        assert_eq!(
            err("carp0 carpdev eth0"),
            "carpdev: not supported by carpctl (set it in carpd's configuration)"
        );
        assert_eq!(
            err("carp0 carpdemote 5"),
            "carpdemote: applies to a group: carpctl -g GROUP carpdemote [N]"
        );
        assert_eq!(
            err("carp0 state init").split(':').next(),
            Some("state init")
        );
        assert_eq!(
            err("carp0 state primary"),
            "state primary: unknown state (master or backup)"
        );
        assert_eq!(err("stats now"), "stats: takes no words");
        assert_eq!(err("checks web"), "checks: takes no words");
        assert_eq!(
            err("carp0 --json"),
            "--json: options go before the interface name"
        );
        assert_eq!(err("-x"), "unknown option -x");
    }

    #[test]
    fn values_out_of_range_use_strtonum_words() {
        assert_eq!(err("carp0 advskew 255"), "advskew 255: too large");
        assert_eq!(err("carp0 advskew 300"), "advskew 300: too large");
        assert_eq!(err("carp0 advskew -1"), "advskew -1: too small");
        assert_eq!(err("carp0 advskew 1x"), "advskew 1x: invalid");
        assert_eq!(err("carp0 advbase 255"), "advbase 255: too large");
        assert_eq!(err("carp0 vhid 0"), "vhid 0: too small");
        assert_eq!(err("carp0 vhid 256"), "vhid 256: too large");
        assert_eq!(err("carp0 vhid one"), "vhid one: invalid");
        assert_eq!(
            err("carp0 vhid 99999999999999999999999"),
            "vhid 99999999999999999999999: too large"
        );
        assert_eq!(
            err("-g carp carpdemote 129"),
            "carp: invalid carp demotion: too large"
        );
        assert_eq!(
            err("-g carp -carpdemote -1"),
            "carp: invalid carp demotion: too small"
        );
        assert_eq!(
            err("-g carp carpdemote lots"),
            "carp: invalid carp demotion: invalid"
        );
    }

    #[test]
    fn names_and_groups() {
        let e = parse(&words("-g")).unwrap_err();
        assert!(e.show_usage);
        assert_eq!(e.message, "-g: a group name is required");
        let e = parse(&words("-g carp up")).unwrap_err();
        assert!(e.show_usage, "{}", e.message);
        assert_eq!(
            err("-g carp carpdemote 1 2"),
            "2: unexpected after carpdemote (one change per command)"
        );
        assert_eq!(
            err("carp0123456789abc"),
            "interface name 'carp0123456789abc' too long"
        );
        assert_eq!(
            err("-g averyveryverylongname"),
            "interface name 'averyveryverylongname' too long"
        );
        assert_eq!(
            err("carp0 group web1"),
            "setifgroup: group names may not end in a digit"
        );
        assert_eq!(
            err("carp0 group averyveryverylong"),
            "setifgroup: group name too long"
        );
        // carpd's own rule, the configuration's too: a group name is one word.
        assert_eq!(
            parse(&["carp0".into(), "group".into(), "web db".into()])
                .unwrap_err()
                .message,
            "setifgroup: group name contains whitespace or a control character"
        );
        assert_eq!(
            parse(&["carp0".into(), "group".into(), String::new()])
                .unwrap_err()
                .message,
            "setifgroup: group name empty"
        );
        assert_eq!(
            err("carp0 -group averyveryverylong"),
            "unsetifgroup: group name too long"
        );
        // 15 bytes fits (IFNAMSIZ 16 with the NUL).
        assert!(parse(&words("carp0 group abcdefghijklmno")).is_ok());
        // -group follows ifconfig: no digit rule (the kernel answers "not a member").
        assert!(parse(&words("carp0 -group web1")).is_ok());
    }

    #[test]
    fn pass_too_long_is_refused_not_truncated() {
        let e = parse(&["carp0".into(), "pass".into(), "a".repeat(20)]).unwrap_err();
        assert!(
            e.message.starts_with("pass: too long (20 bytes"),
            "{}",
            e.message
        );
        // Bytes, not characters: 10 two-byte characters are 20 bytes.
        assert!(parse(&["carp0".into(), "pass".into(), "é".repeat(10)]).is_err());
    }

    #[test]
    fn a_bad_word_anywhere_sends_nothing() {
        // The whole line fails, so there is no Apply with the good words before it.
        assert!(parse(&words("carp0 advskew 100 group web advbase 900 up")).is_err());
    }

    #[test]
    fn strtonum_matches_openbsd() {
        assert_eq!(strtonum("42", 0, 100), Ok(42));
        assert_eq!(strtonum(" +42", 0, 100), Ok(42));
        assert_eq!(strtonum("", 0, 100), Err("invalid"));
        assert_eq!(strtonum("-", 0, 100), Err("invalid"));
        assert_eq!(strtonum("4 2", 0, 100), Err("invalid"));
        assert_eq!(strtonum("0x10", 0, 100), Err("invalid"));
        assert_eq!(strtonum("101", 0, 100), Err("too large"));
        assert_eq!(
            strtonum("-99999999999999999999999", 0, 100),
            Err("too small")
        );
        assert_eq!(strtonum("5", 10, 1), Err("invalid"));
    }

    #[test]
    fn requests_carry_the_command() {
        assert_eq!(ok("").request(), Request::Status { interface: None });
        assert_eq!(
            ok("-g carp").request(),
            Request::GroupStatus {
                group: "carp".into()
            }
        );
        assert_eq!(ok("stats").request(), Request::Stats);
        assert_eq!(
            ok("-g carp carpdemote").request(),
            Request::Apply {
                target: Target::Group("carp".into()),
                ops: vec![Op::Demote(1)]
            }
        );
    }

    /// Every op the parser produces passes the daemon-side check too (the two agree).
    #[test]
    fn parsed_ops_pass_the_protocol_check() {
        for line in [
            "carp0 advskew 254 advbase 254 vhid 1 pass x state master group web -group db up down",
            "-g carp carpdemote 128",
        ] {
            let Command::Apply { target, ops } = ok(line) else {
                panic!("{line}")
            };
            for op in &ops {
                assert_eq!(op.check(&target), Ok(()), "{op:?}");
            }
        }
    }
}
