//! What changed between two configurations, for SIGHUP: only changed interfaces are touched,
//! so an unchanged vhid keeps its state (a master stays master) across a reload.
//!
//! Interfaces are matched by name. Where an interface was written ([`CarpInterface::source`])
//! is not a setting: moving it to another file, or adding a comment line above it, changes
//! nothing.
use super::{CarpInterface, Config};

/// A setting of a carp interface, as [`diff`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Carpdev,
    Vhid,
    Advbase,
    Advskew,
    /// `carpnodes` / `balancing`: the set of elections changes, so a rebuild.
    Balance,
    Passphrase,
    Addresses,
    Peers,
    Groups,
    InitialState,
    Up,
    /// The protocol or a VRRP setting (`protocol`, `priority`, `advert_interval`, ...):
    /// the interface is rebuilt.
    Vrrp,
}

/// An interface present in both configurations whose settings differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceChange {
    pub name: String,
    /// Never empty, in [`Field`] order.
    pub fields: Vec<Field>,
}

impl InterfaceChange {
    /// Only advbase/advskew changed: the election can carry on with new timers
    /// (`fsm::Vhid::set_timing`) instead of the interface being rebuilt.
    pub fn timers_only(&self) -> bool {
        self.fields
            .iter()
            .all(|f| matches!(f, Field::Advbase | Field::Advskew))
    }

    /// Everything that changed is applied to the running interface, without a rebuild:
    /// timers (`fsm::Vhid::set_timing`: the election carries on with them), the passphrase
    /// (a new HMAC key; the replay counter and the state are kept), up/down (OpenBSD's
    /// `ifconfig carpN up|down`: the link stays, only the election stops or starts), a new
    /// group set (its demotion moves, state and counter kept) and a new `state` (forced
    /// once). No rebuild, so no failover.
    pub fn in_place(&self) -> bool {
        self.fields.iter().all(|f| {
            matches!(
                f,
                Field::Advbase
                    | Field::Advskew
                    | Field::Passphrase
                    | Field::Up
                    | Field::Groups
                    | Field::InitialState
            )
        })
    }

    /// The interface's identity on the wire or in the kernel changed (carpdev, vhid,
    /// addresses, where its adverts go): it has to be torn down and created again.
    pub fn needs_rebuild(&self) -> bool {
        self.fields.iter().any(|f| {
            matches!(
                f,
                Field::Carpdev
                    | Field::Vhid
                    | Field::Balance
                    | Field::Addresses
                    | Field::Peers
                    | Field::Vrrp
            )
        })
    }
}

/// What changed between two configurations. Every list is ordered by name as in
/// [`Config::interfaces`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<InterfaceChange>,
    pub unchanged: Vec<String>,
    /// The daemon settings differ. Which of them a running daemon can take over without a
    /// restart (pin_dir and state_dir cannot) is the daemon's decision.
    pub daemon_changed: bool,
}

impl ConfigDiff {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && !self.daemon_changed
    }
}

/// The settings in which `new` differs from `old`, ignoring where each was written.
pub(super) fn changed_fields(old: &CarpInterface, new: &CarpInterface) -> Vec<Field> {
    // Destructured without `..`, so that a new setting cannot be forgotten here.
    let CarpInterface {
        name: _,
        carpdev,
        vhid,
        advbase,
        advskew,
        balance,
        passphrase,
        ipv4,
        ipv6,
        peers,
        groups,
        initial_state,
        up,
        vrrp,
        source: _,
    } = old;
    let mut fields = Vec::new();
    let mut note = |differs: bool, field| {
        if differs {
            fields.push(field);
        }
    };
    note(*carpdev != new.carpdev, Field::Carpdev);
    note(*vhid != new.vhid, Field::Vhid);
    note(*advbase != new.advbase, Field::Advbase);
    note(*advskew != new.advskew, Field::Advskew);
    note(*balance != new.balance, Field::Balance);
    note(*passphrase != new.passphrase, Field::Passphrase);
    note(*ipv4 != new.ipv4 || *ipv6 != new.ipv6, Field::Addresses);
    note(*peers != new.peers, Field::Peers);
    note(*groups != new.groups, Field::Groups);
    note(*initial_state != new.initial_state, Field::InitialState);
    note(*up != new.up, Field::Up);
    note(*vrrp != new.vrrp, Field::Vrrp);
    fields
}

/// Compares two configurations interface by interface (matched by name).
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let mut d = ConfigDiff {
        daemon_changed: old.daemon != new.daemon,
        ..ConfigDiff::default()
    };
    for o in &old.interfaces {
        match new.interfaces.iter().find(|n| n.name == o.name) {
            None => d.removed.push(o.name.clone()),
            Some(n) => {
                let fields = changed_fields(o, n);
                if fields.is_empty() {
                    d.unchanged.push(o.name.clone());
                } else {
                    d.changed.push(InterfaceChange {
                        name: o.name.clone(),
                        fields,
                    });
                }
            }
        }
    }
    for n in &new.interfaces {
        if !old.interfaces.iter().any(|o| o.name == n.name) {
            d.added.push(n.name.clone());
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(fields: &[Field]) -> InterfaceChange {
        InterfaceChange {
            name: "carp0".into(),
            fields: fields.to_vec(),
        }
    }

    #[test]
    fn pass_timers_and_up_apply_in_place_identity_rebuilds() {
        let in_place = change(&[Field::Advskew, Field::Passphrase, Field::Up]);
        assert!(in_place.in_place() && !in_place.needs_rebuild());
        for identity in [Field::Carpdev, Field::Vhid, Field::Addresses, Field::Peers] {
            let c = change(&[Field::Passphrase, identity]);
            assert!(!c.in_place() && c.needs_rebuild(), "{identity:?}");
        }
    }
}
