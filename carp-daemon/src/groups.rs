//! Interface groups and their demote counters, as OpenBSD keeps them.
//!
//! - Every carp interface starts in group `carp` and may leave it (`-group carp`, as OpenBSD's
//!   regress test carp_1.sh does); group `carp` always exists (`ifconfig -g carp` works with no
//!   member), other groups come and go with their members.
//! - Each group has a demote counter (0..=255). A user's `carpdemote`/`-carpdemote` that would
//!   leave that range is refused and changes nothing (OpenBSD: EINVAL/ERANGE); the daemon's
//!   own adjustments (carpdev link loss, failed advert sends) clamp instead
//!   (`carp_group_demote_adj`), and one that takes a group from 0 to 1 is reported, because
//!   then every master advertises at once (`carp_send_ad_all`).
//! - A carp interface advertises the SUM of the counters of the groups it is in (group `all`
//!   skipped), capped at 255 (`carp_group_demote_count`), not the largest; if that sum is 0
//!   while the interface has a pending demotion of its own, it advertises that instead.
//! - Each interface remembers the demotion it caused itself (link loss, send errors); when it
//!   joins or leaves a group, that pending demotion moves with it (`carp_ifgroup_ioctl`).
use std::collections::BTreeMap;

use carp_common::wire::CARP_MAX_DEMOTE;

pub use crate::values::CARP_GROUP;

/// OpenBSD's group of every interface; its counter never counts for carp (`IFG_ALL`).
pub const ALL_GROUP: &str = "all";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("{group}: no such group")]
    NoSuchGroup { group: String },
    #[error(
        "{group}: carpdemote {by}: result out of range (demote count is {current}, range 0..=255)"
    )]
    OutOfRange { group: String, current: u8, by: i16 },
}

/// The demote counters of every group that has members (and of `carp`, always).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups {
    counters: BTreeMap<String, u8>,
}

impl Default for Groups {
    fn default() -> Self {
        Self::new()
    }
}

impl Groups {
    pub fn new() -> Self {
        let mut counters = BTreeMap::new();
        counters.insert(CARP_GROUP.to_owned(), 0);
        Self { counters }
    }

    /// The demote counter of `group`, if it exists.
    pub fn counter(&self, group: &str) -> Option<u8> {
        self.counters.get(group).copied()
    }

    /// All groups and their counters, `carp` first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u8)> {
        let carp = self.counters.get_key_value(CARP_GROUP);
        carp.into_iter()
            .chain(
                self.counters
                    .iter()
                    .filter(|(g, _)| g.as_str() != CARP_GROUP),
            )
            .map(|(g, c)| (g.as_str(), *c))
    }

    /// What an interface in `groups` (every group it is in) with its own pending demotion
    /// `own_demote` advertises (`carp_group_demote_count`): the sum of the groups' counters,
    /// capped at 255; its own count when that sum is 0.
    pub fn demote_of<'a>(&self, groups: impl IntoIterator<Item = &'a str>, own_demote: u8) -> u8 {
        let sum: u32 = groups
            .into_iter()
            .filter(|g| *g != ALL_GROUP)
            .map(|g| u32::from(self.counters.get(g).copied().unwrap_or(0)))
            .sum();
        let count = if sum == 0 { u32::from(own_demote) } else { sum };
        count.min(u32::from(CARP_MAX_DEMOTE)) as u8
    }

    /// The daemon's own adjustment of every group of an interface (`carp_group_demote_adj`):
    /// clamps each at 0 and 255. True if a raise took some group from 0 to 1, the case in
    /// which every master advertises at once (`carp_send_ad_all`).
    pub fn kernel_adjust<'a>(
        &mut self,
        groups: impl IntoIterator<Item = &'a str>,
        by: i16,
    ) -> bool {
        let mut left_zero = false;
        for g in groups.into_iter().filter(|g| *g != ALL_GROUP) {
            self.clamped_adjust(g, by);
            left_zero |= by > 0 && self.counters.get(g) == Some(&1);
        }
        left_zero
    }

    /// A user's `carpdemote N` (positive) or `-carpdemote N` (negative): all or nothing.
    pub fn user_adjust(&mut self, group: &str, by: i16) -> Result<u8, GroupError> {
        let current = self
            .counters
            .get(group)
            .copied()
            .ok_or_else(|| GroupError::NoSuchGroup {
                group: group.to_owned(),
            })?;
        let next = i16::from(current) + by;
        if !(0..=i16::from(CARP_MAX_DEMOTE)).contains(&next) {
            return Err(GroupError::OutOfRange {
                group: group.to_owned(),
                current,
                by,
            });
        }
        self.counters.insert(group.to_owned(), next as u8);
        Ok(next as u8)
    }

    /// The daemon's own adjustment of one group: clamps at 0 and 255.
    pub fn clamped_adjust(&mut self, group: &str, by: i16) {
        if let Some(c) = self.counters.get_mut(group) {
            *c = (i16::from(*c) + by).clamp(0, i16::from(CARP_MAX_DEMOTE)) as u8;
        }
    }

    /// An interface joins `group`, bringing its own pending demotion (`own_demote`).
    pub fn join(&mut self, group: &str, own_demote: u8) {
        let c = self.counters.entry(group.to_owned()).or_insert(0);
        *c = (u16::from(*c) + u16::from(own_demote)).min(u16::from(CARP_MAX_DEMOTE)) as u8;
    }

    /// An interface leaves `group`, taking its own pending demotion with it. A user group
    /// with no members left disappears, as in OpenBSD.
    pub fn leave(&mut self, group: &str, own_demote: u8, members_left: usize) {
        if group == CARP_GROUP {
            self.clamped_adjust(group, -i16::from(own_demote));
            return;
        }
        if members_left == 0 {
            self.counters.remove(group);
        } else {
            self.clamped_adjust(group, -i16::from(own_demote));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carp_group_always_exists_at_zero() {
        let g = Groups::new();
        assert_eq!(g.counter("carp"), Some(0));
        assert_eq!(g.demote_of(["carp"], 0), 0);
    }

    #[test]
    fn advertised_demote_is_the_capped_sum() {
        let mut g = Groups::new();
        g.join("web", 0);
        g.join("db", 0);
        g.user_adjust("carp", 100).unwrap();
        g.user_adjust("web", 100).unwrap();
        g.user_adjust("db", 20).unwrap();
        assert_eq!(g.demote_of(["carp", "web"], 0), 200, "sum, not max");
        assert_eq!(g.demote_of(["carp", "web", "db"], 0), 220);
        g.user_adjust("db", 100).unwrap();
        assert_eq!(g.demote_of(["carp", "web", "db"], 0), 255, "capped");
        assert_eq!(g.demote_of(["carp", "db"], 0), 220);
        // Only the groups the interface is in count: without carp (`-group carp`).
        assert_eq!(g.demote_of(["web"], 0), 100);
        assert_eq!(g.demote_of(["db"], 0), 120);
    }

    #[test]
    fn group_all_never_counts() {
        let mut g = Groups::new();
        g.join("all", 0);
        g.user_adjust("all", 50).unwrap();
        assert_eq!(g.demote_of(["carp", "all"], 0), 0);
        assert!(!g.kernel_adjust(["all"], 1));
        assert_eq!(g.counter("all"), Some(50));
    }

    #[test]
    fn own_demotion_is_advertised_when_the_groups_sum_to_zero() {
        let mut g = Groups::new();
        g.join("web", 0);
        // An interface in no group with a counter (it left carp, say) still advertises its
        // own link loss (carp_group_demote_count).
        assert_eq!(g.demote_of(["web"], 1), 1);
        assert_eq!(g.demote_of(Vec::<&str>::new(), 2), 2);
        // Once a group has a count, the sum wins, even if smaller.
        g.user_adjust("web", 1).unwrap();
        assert_eq!(g.demote_of(["web"], 3), 1);
    }

    #[test]
    fn kernel_adjust_reports_a_group_leaving_zero() {
        let mut g = Groups::new();
        g.join("web", 0);
        assert!(g.kernel_adjust(["carp", "web"], 1), "0 -> 1");
        assert!(!g.kernel_adjust(["carp", "web"], 1), "1 -> 2");
        assert!(!g.kernel_adjust(["carp", "web"], -1), "lowering never");
        assert_eq!((g.counter("carp"), g.counter("web")), (Some(1), Some(1)));
        // One group still at 0 is enough.
        g.join("db", 0);
        assert!(g.kernel_adjust(["web", "db"], 1));
        // Clamped at 0 going down.
        g.kernel_adjust(["db"], -5);
        assert_eq!(g.counter("db"), Some(0));
    }

    #[test]
    fn user_adjust_out_of_range_changes_nothing() {
        let mut g = Groups::new();
        assert_eq!(g.user_adjust("carp", 128), Ok(128));
        let err = g.user_adjust("carp", 128).unwrap_err();
        assert_eq!(
            err,
            GroupError::OutOfRange {
                group: "carp".into(),
                current: 128,
                by: 128
            }
        );
        assert_eq!(g.counter("carp"), Some(128));
        assert!(g.user_adjust("carp", -129).is_err());
        assert_eq!(g.user_adjust("carp", -128), Ok(0));
        assert_eq!(
            g.user_adjust("nosuch", 1),
            Err(GroupError::NoSuchGroup {
                group: "nosuch".into()
            })
        );
    }

    #[test]
    fn daemon_adjustments_clamp() {
        let mut g = Groups::new();
        g.clamped_adjust("carp", -1);
        assert_eq!(g.counter("carp"), Some(0));
        g.user_adjust("carp", 255).unwrap();
        g.clamped_adjust("carp", 1);
        assert_eq!(g.counter("carp"), Some(255));
    }

    #[test]
    fn pending_demotion_moves_with_the_interface() {
        let mut g = Groups::new();
        g.join("web", 0);
        // carp0 (in web) lost its carpdev link: its groups were demoted by 1.
        g.clamped_adjust("carp", 1);
        g.clamped_adjust("web", 1);
        // carp0 joins db, bringing its pending demotion; leaves web, taking it away.
        g.join("db", 1);
        assert_eq!(g.counter("db"), Some(1));
        g.leave("web", 1, 1);
        assert_eq!(g.counter("web"), Some(0));
        // Last member leaves db: the group disappears.
        g.leave("db", 1, 0);
        assert_eq!(g.counter("db"), None);
    }

    #[test]
    fn iter_lists_carp_first() {
        let mut g = Groups::new();
        g.join("alpha", 0);
        let names: Vec<_> = g.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["carp", "alpha"]);
    }
}
