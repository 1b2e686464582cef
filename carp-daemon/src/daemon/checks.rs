//! Health check results into group demotion: each result goes through the check's rise/fall
//! state machine (`crate::checks`); a change in what it holds moves its group's demote
//! counter the way a user's carpdemote does, so a raise goes out at once. A reload starts,
//! stops and restarts checks by name and leaves the unchanged ones (and what they hold)
//! alone.
use tracing::{info, warn};

use super::Daemon;
use crate::checks::Report;
use crate::config::Check;

impl Daemon {
    /// Starts the configured checks (at start).
    pub(super) fn start_checks(&mut self, checks: Vec<Check>) {
        for check in checks {
            info!(check = %check.name, kind = check.probe.kind(), group = %check.group, "health check started");
            self.checks.start(check);
        }
    }

    /// One result of a check's probe.
    pub fn on_check_report(&mut self, report: Report) {
        let Some(running) = self.checks.current_mut(&report) else {
            return; // from a check replaced or removed by a reload
        };
        let (rise, fall) = (running.check.rise, running.check.fall);
        let reason = report.outcome.reason.clone();
        let Some(change) = running.state.record(report.outcome.clone(), rise, fall) else {
            return;
        };
        let group = running.check.group.clone();
        let name = running.check.name.clone();
        let by = i16::from(change.to) - i16::from(change.from);
        let applied = self.adjust_group_demote(&group, by);
        if let Some(running) = self.checks.current_mut(&report) {
            // What the counter really took (clamped at 255), so that giving it back is exact.
            running.state.held = (i16::from(change.from) + applied).clamp(0, 255) as u8;
        }
        let demote = self.groups.counter(&group);
        match change.went_down {
            Some(true) => {
                warn!(check = %name, %group, held = change.to, ?demote, %reason, "health check down: group demoted")
            }
            Some(false) => {
                info!(check = %name, %group, ?demote, %reason, "health check up: demotion given back")
            }
            None => {
                info!(check = %name, %group, held = change.to, ?demote, %reason, "health check demotion changed")
            }
        }
    }

    /// SIGHUP: checks added start, removed ones stop and give their demotion back, changed
    /// ones do both; the others keep running with their state.
    pub(super) fn reload_checks(&mut self, new: Vec<Check>) {
        for name in self.checks.names() {
            let keep = new.iter().any(|c| {
                c.name == name
                    && self
                        .checks
                        .get(&name)
                        .is_some_and(|r| r.check.same_settings(c))
            });
            if keep {
                continue;
            }
            if let Some((check, state)) = self.checks.stop(&name) {
                if state.held > 0 {
                    self.adjust_group_demote(&check.group, -i16::from(state.held));
                }
                info!(check = %name, gave_back = state.held, "SIGHUP: health check stopped");
            }
        }
        for check in new {
            if self.checks.get(&check.name).is_none() {
                info!(check = %check.name, kind = check.probe.kind(), group = %check.group, "SIGHUP: health check started");
                self.checks.start(check);
            }
        }
    }

    /// What `carpctl checks` shows.
    pub fn check_statuses(&self) -> Vec<crate::checks::CheckStatus> {
        self.checks.iter().map(|r| r.status()).collect()
    }
}
