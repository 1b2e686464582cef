//! The rules for the values a user gives carpd, in one place: interface and group names,
//! the passphrase, vhid, advbase, advskew, the forced state, demotion, and the defaults.
//!
//! Both ways in use them: the configuration (`config/`, hostname.carpN and TOML files) and
//! carpctl (`control/words.rs`, and the daemon's [`Op::check`] for any socket client). Each
//! rule answers with a typed reason; each side words it its own way: the configuration as
//! `PATH:LINE: invalid group name 'web1': group names may not end in a digit`, carpctl as
//! OpenBSD's ifconfig prints it, `setifgroup: group names may not end in a digit`. So a value
//! is accepted by one side exactly when it is accepted by the other.
//!
//! | value          | rule                                           | OpenBSD source                  |
//! |----------------|------------------------------------------------|---------------------------------|
//! | vhid           | 1..=255                                        | ifconfig.c `setcarp_vhid`       |
//! | advbase        | 0..=254, default 1                             | ifconfig.c `setcarp_advbase`    |
//! | advskew        | 0..=254, default 0                             | ifconfig.c `setcarp_advskew`    |
//! | pass           | at most 19 bytes, no NUL                       | ifconfig.c `setcarp_passwd`     |
//! | state          | master or backup, any case                     | ifconfig.c `setcarp_state`      |
//! | group name     | 1..=15 bytes, no trailing digit, no whitespace | ifconfig.c `setifgroup`         |
//! | carpdemote N   | 0..=128 per step; the counter stays in 0..=255 | ifconfig.c `setgroupattribs`    |
//! | interface name | 1..=15 bytes, Linux's `dev_valid_name`         | IFNAMSIZ; Linux net/core/dev.c  |
//!
//! Where carpd is stricter than OpenBSD it says so in the reason: a passphrase longer than
//! 19 bytes is refused (ifconfig's `strlcpy` silently shortens it), and a group name with
//! whitespace or a control character is refused (ifconfig lets the kernel take it; such a
//! name cannot be given back to carpctl or a hook as one word). advbase 255 is refused as
//! ifconfig refuses it: a hostname.carpN line is an ifconfig command on OpenBSD, and 255/255
//! is the bow-out advertisement a master sends when taken down.
//!
//! [`Op::check`]: crate::control::protocol::Op::check
use carp_common::wire::{CARP_MAX_ADVSKEW, CARP_MAX_DEMOTE, CARP_MAX_PASSPHRASE_LEN};

pub use crate::proto::ForcedState;

/// The group every carp interface starts in (OpenBSD's `carp_clone_create`) and may leave
/// (`-group carp`); it always exists.
pub const CARP_GROUP: &str = "carp";

/// Longest interface or group name: IFNAMSIZ (16 on Linux and OpenBSD) less the NUL.
pub const NAME_MAX: usize = 15;

/// Longest passphrase: OpenBSD's key is `CARP_KEY_LEN` (20) bytes with the NUL.
pub const PASSPHRASE_MAX: usize = CARP_MAX_PASSPHRASE_LEN;

/// advbase when none is given (OpenBSD's `carp_clone_create`).
pub const DEFAULT_ADVBASE: u8 = 1;

/// advskew when none is given.
pub const DEFAULT_ADVSKEW: u8 = 0;

/// The range a numeric value must be in, and its name in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The ifconfig word (and configuration key) it is given with.
    pub name: &'static str,
    pub min: u8,
    pub max: u8,
}

/// vhid 0 is "no vhid" in OpenBSD's `carpreq`; 255 is the last the one-byte field holds.
pub const VHID: Range = Range {
    name: "vhid",
    min: 1,
    max: 255,
};

/// Seconds. 0 is legal (1/256 s steps); 255 is left to the bow-out advertisement.
pub const ADVBASE: Range = Range {
    name: "advbase",
    min: 0,
    max: 254,
};

/// 1/256 s. 255 is left to the bow-out advertisement.
pub const ADVSKEW: Range = Range {
    name: "advskew",
    min: 0,
    max: CARP_MAX_ADVSKEW,
};

/// One `carpdemote N` / `-carpdemote N` step.
pub const DEMOTE_STEP: Range = Range {
    name: "carpdemote",
    min: 0,
    max: 128,
};

/// A group's demote counter (`carp_group_demote_adj`), and so carpd's boot demotion.
pub const DEMOTE: Range = Range {
    name: "demote",
    min: 0,
    max: CARP_MAX_DEMOTE,
};

/// Why a number is not in its [`Range`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("too small")]
    TooSmall,
    #[error("too large")]
    TooLarge,
}

impl Range {
    /// `n` as a `u8` if it is in the range.
    pub fn check(self, n: i128) -> Result<u8, RangeError> {
        if n < i128::from(self.min) {
            Err(RangeError::TooSmall)
        } else if n > i128::from(self.max) {
            Err(RangeError::TooLarge)
        } else {
            Ok(n as u8)
        }
    }
}

/// Why a name cannot be a Linux interface name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InterfaceNameError {
    #[error("empty")]
    Empty,
    #[error("longer than 15 bytes (Linux IFNAMSIZ)")]
    TooLong,
    #[error("'.' and '..' are reserved")]
    Reserved,
    #[error("contains '/'")]
    Slash,
    #[error("contains ':'")]
    Colon,
    #[error("contains whitespace")]
    Whitespace,
    #[error("contains a NUL byte")]
    Nul,
}

/// A name for an interface carpd creates (or a carpdev), as Linux's `dev_valid_name` checks
/// it. carpctl, which only looks names up, checks the length alone, as ifconfig does: a name
/// no interface can have is answered "no such interface" by carpd.
pub fn check_interface_name(name: &str) -> Result<(), InterfaceNameError> {
    if name.is_empty() {
        Err(InterfaceNameError::Empty)
    } else if name.len() > NAME_MAX {
        Err(InterfaceNameError::TooLong)
    } else if name == "." || name == ".." {
        Err(InterfaceNameError::Reserved)
    } else if name.contains('/') {
        Err(InterfaceNameError::Slash)
    } else if name.contains(':') {
        Err(InterfaceNameError::Colon)
    } else if name.chars().any(char::is_whitespace) {
        Err(InterfaceNameError::Whitespace)
    } else if name.contains('\0') {
        Err(InterfaceNameError::Nul)
    } else {
        Ok(())
    }
}

/// Why a name cannot be a group name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupNameError {
    #[error("empty")]
    Empty,
    #[error("longer than 15 bytes")]
    TooLong,
    #[error("group names may not end in a digit")]
    EndsInDigit,
    #[error("contains whitespace or a control character")]
    Whitespace,
}

/// A group to join (`group NAME`), as OpenBSD's ifconfig `setifgroup` checks it, and no
/// whitespace or control character. The trailing-digit rule keeps group names apart from
/// interface names: ifconfig and pf take a name ending in a digit as an interface
/// (`carpctl carp` is a group, `carpctl carp0` is not).
pub fn check_group_name(name: &str) -> Result<(), GroupNameError> {
    check_group_name_to_leave(name)?;
    if name.ends_with(|c: char| c.is_ascii_digit()) {
        Err(GroupNameError::EndsInDigit)
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(GroupNameError::Whitespace)
    } else {
        Ok(())
    }
}

/// A group to leave (`-group NAME`): ifconfig's `unsetifgroup` checks only the length and
/// leaves the rest to the kernel ("not a member"); an empty name, which can never name a
/// group, is refused too.
pub fn check_group_name_to_leave(name: &str) -> Result<(), GroupNameError> {
    if name.is_empty() {
        Err(GroupNameError::Empty)
    } else if name.len() > NAME_MAX {
        Err(GroupNameError::TooLong)
    } else {
        Ok(())
    }
}

/// Why a passphrase cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassphraseError {
    /// Longer than [`PASSPHRASE_MAX`] bytes (`len`): OpenBSD would silently keep the first
    /// 19, so hosts given the whole phrase would not agree on the key.
    TooLong { len: usize },
    /// ifconfig's C string would end at the NUL.
    ContainsNul,
}

/// `pass PHRASE`. Bytes, not characters, count. An empty passphrase is OpenBSD's "no pass".
pub fn check_passphrase(pass: &str) -> Result<(), PassphraseError> {
    if pass.len() > PASSPHRASE_MAX {
        Err(PassphraseError::TooLong { len: pass.len() })
    } else if pass.contains('\0') {
        Err(PassphraseError::ContainsNul)
    } else {
        Ok(())
    }
}

/// Why a word is not a state `state` can force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// `init`: OpenBSD's kernel refuses to force INIT (take the interface down instead).
    Init,
    /// Anything else.
    Unknown,
}

/// `state master|backup`, compared without case as ifconfig's `strcasecmp`.
pub fn parse_state(word: &str) -> Result<ForcedState, StateError> {
    if word.eq_ignore_ascii_case("master") {
        Ok(ForcedState::Master)
    } else if word.eq_ignore_ascii_case("backup") {
        Ok(ForcedState::Backup)
    } else if word.eq_ignore_ascii_case("init") {
        Err(StateError::Init)
    } else {
        Err(StateError::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_defaults() {
        assert_eq!(VHID.check(0), Err(RangeError::TooSmall));
        assert_eq!(VHID.check(1), Ok(1));
        assert_eq!(VHID.check(255), Ok(255));
        assert_eq!(VHID.check(256), Err(RangeError::TooLarge));
        assert_eq!(ADVBASE.check(0), Ok(0));
        assert_eq!(ADVBASE.check(254), Ok(254));
        assert_eq!(ADVBASE.check(255), Err(RangeError::TooLarge));
        assert_eq!(ADVBASE.check(-1), Err(RangeError::TooSmall));
        assert_eq!(ADVSKEW.check(254), Ok(254));
        assert_eq!(ADVSKEW.check(255), Err(RangeError::TooLarge));
        assert_eq!(DEMOTE_STEP.check(128), Ok(128));
        assert_eq!(DEMOTE_STEP.check(129), Err(RangeError::TooLarge));
        assert_eq!(DEMOTE.check(255), Ok(255));
        assert_eq!(DEMOTE.check(i128::MAX), Err(RangeError::TooLarge));
        assert_eq!(DEMOTE.check(i128::MIN), Err(RangeError::TooSmall));
        assert!(ADVBASE.check(i128::from(DEFAULT_ADVBASE)).is_ok());
        assert!(ADVSKEW.check(i128::from(DEFAULT_ADVSKEW)).is_ok());
        assert_eq!((DEFAULT_ADVBASE, DEFAULT_ADVSKEW), (1, 0));
        assert_eq!(RangeError::TooLarge.to_string(), "too large");
    }

    #[test]
    fn interface_names() {
        use InterfaceNameError::*;
        for ok in ["carp0", "eth0.100", "a", "abcdefghijklmno", "br-lan_1"] {
            assert_eq!(check_interface_name(ok), Ok(()), "{ok}");
        }
        for (name, why) in [
            ("", Empty),
            ("abcdefghijklmnop", TooLong),
            (".", Reserved),
            ("..", Reserved),
            ("eth/0", Slash),
            ("eth:0", Colon),
            ("eth 0", Whitespace),
            ("eth\t0", Whitespace),
            ("eth\0x", Nul),
        ] {
            assert_eq!(check_interface_name(name), Err(why), "{name:?}");
        }
        // Bytes, not characters: 8 two-byte characters are 16 bytes.
        assert_eq!(check_interface_name(&"é".repeat(8)), Err(TooLong));
    }

    #[test]
    fn group_names() {
        use GroupNameError::*;
        for ok in ["carp", "web", "abcdefghijklmno", "db-a", "a:b", "x1y"] {
            assert_eq!(check_group_name(ok), Ok(()), "{ok}");
        }
        for (name, why) in [
            ("", Empty),
            ("abcdefghijklmnop", TooLong),
            ("web1", EndsInDigit),
            ("carp0", EndsInDigit),
            ("a b", Whitespace),
            ("tab\tx", Whitespace),
            ("bell\x07x", Whitespace),
        ] {
            assert_eq!(check_group_name(name), Err(why), "{name:?}");
        }
        // Leaving checks only what ifconfig's unsetifgroup does.
        assert_eq!(check_group_name_to_leave("web1"), Ok(()));
        assert_eq!(check_group_name_to_leave("a b"), Ok(()));
        assert_eq!(check_group_name_to_leave(""), Err(Empty));
        assert_eq!(check_group_name_to_leave(&"g".repeat(16)), Err(TooLong));
    }

    #[test]
    fn passphrases() {
        assert_eq!(check_passphrase(""), Ok(()));
        assert_eq!(check_passphrase(&"a".repeat(19)), Ok(()));
        assert_eq!(
            check_passphrase(&"a".repeat(20)),
            Err(PassphraseError::TooLong { len: 20 })
        );
        assert_eq!(
            check_passphrase(&"é".repeat(10)),
            Err(PassphraseError::TooLong { len: 20 })
        );
        assert_eq!(check_passphrase("a\0b"), Err(PassphraseError::ContainsNul));
    }

    #[test]
    fn states() {
        assert_eq!(parse_state("master"), Ok(ForcedState::Master));
        assert_eq!(parse_state("MASTER"), Ok(ForcedState::Master));
        assert_eq!(parse_state("Backup"), Ok(ForcedState::Backup));
        assert_eq!(parse_state("init"), Err(StateError::Init));
        assert_eq!(parse_state("INIT"), Err(StateError::Init));
        assert_eq!(parse_state("primary"), Err(StateError::Unknown));
        assert_eq!(parse_state(""), Err(StateError::Unknown));
    }

    /// The configuration and carpctl accept the same values and refuse the same ones: each
    /// value is given once as a hostname.carp0 word and once as a carpctl word.
    #[test]
    fn config_and_carpctl_agree() {
        use crate::config::{Source, check_sources};
        use crate::control::words;

        let long = |n: usize| "a".repeat(n);
        let cases: Vec<(&str, String)> = [
            (
                "vhid",
                vec!["0", "1", "2", "255", "256", "-1", "x", "0x10", "+7"],
            ),
            ("advbase", vec!["0", "1", "254", "255", "256", "-1", "1.5"]),
            (
                "advskew",
                vec!["0", "100", "254", "255", "300", "-1", "ten"],
            ),
            (
                "state",
                vec!["master", "BACKUP", "Master", "init", "primary"],
            ),
            (
                "group",
                vec![
                    "web",
                    "web1",
                    "",
                    "a b",
                    "tab\tx",
                    "abcdefghijklmno",
                    "abcdefghijklmnop",
                    "db-a",
                    "a:b",
                ],
            ),
        ]
        .into_iter()
        .flat_map(|(word, values)| values.into_iter().map(move |v| (word, v.to_owned())))
        .chain([
            ("pass", long(1)),
            ("pass", long(19)),
            ("pass", long(20)),
            ("pass", "é".repeat(9)),
            ("pass", "é".repeat(10)),
        ])
        .collect();

        for (word, value) in cases {
            // Quoted as sh would take it, so that spaces and empty values stay one word.
            let mut line = format!("inet 10.0.0.1/24 carpdev em0 pass x\n{word} \"{value}\"\n");
            if word != "vhid" {
                line.insert_str(0, "vhid 1\n");
            }
            let source = Source {
                path: "hostname.carp0".into(),
                text: line,
            };
            let config_ok = check_sources(&[source], &|n| n == "em0").result.is_ok();
            let argv = ["carp0".to_owned(), word.to_owned(), value.clone()];
            let carpctl_ok = words::parse(&argv).is_ok();
            assert_eq!(
                config_ok, carpctl_ok,
                "{word} {value:?}: config accepts: {config_ok}, carpctl accepts: {carpctl_ok}"
            );
        }
    }
}
