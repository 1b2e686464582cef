//! What the event loop does when one of its event sources fails.
//!
//! A source that has closed (the netlink link monitor's connection ended, the advert ring
//! buffer's poll registration is gone) will never deliver again, and `select!` would poll it
//! again at once: carpd would spin at 100 % CPU while the elections run blind. So a closed
//! source ends carpd with an error naming it (a non-zero exit, which the supervisor answers
//! with a restart); so does a run of [`MAX_CONSECUTIVE_ERRORS`] errors without one success
//! in between, which is a closed source that does not say so. A lone error is logged and
//! the loop goes on.
use std::fmt::Display;

use tracing::warn;

use crate::Error;

/// Errors in a row, without a success in between, after which a source counts as broken.
pub const MAX_CONSECUTIVE_ERRORS: u32 = 100;

/// Whether an event source's error means that it will never deliver again.
pub trait SourceError: Display {
    fn is_closed(&self) -> bool;
}

impl SourceError for crate::net::NetError {
    fn is_closed(&self) -> bool {
        matches!(self, crate::net::NetError::MonitorClosed)
    }
}

impl SourceError for crate::dataplane::AdvertReadError {
    fn is_closed(&self) -> bool {
        // The ring buffer has no transient errors: see AdvertReadError.
        true
    }
}

/// The error record of one event source.
#[derive(Debug)]
pub struct SourceHealth {
    name: &'static str,
    consecutive_errors: u32,
}

impl SourceHealth {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            consecutive_errors: 0,
        }
    }

    /// The source delivered.
    pub fn delivered(&mut self) {
        self.consecutive_errors = 0;
    }

    /// The source failed with `err`: `Ok` to go on (the error is logged), or the error that
    /// ends carpd.
    pub fn failed(&mut self, err: &impl SourceError) -> Result<(), Error> {
        if err.is_closed() {
            return Err(Error::EventSourceFailed {
                source_name: self.name,
                reason: err.to_string(),
            });
        }
        self.consecutive_errors += 1;
        if self.consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
            return Err(Error::EventSourceFailed {
                source_name: self.name,
                reason: format!(
                    "{} errors in a row, the last: {err}",
                    self.consecutive_errors
                ),
            });
        }
        warn!(source = self.name, error = %err, "event source error");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::AdvertReadError;
    use crate::net::NetError;

    #[test]
    fn closed_sources_end_carpd_at_once() {
        assert!(NetError::MonitorClosed.is_closed());
        let mut links = SourceHealth::new("link monitor");
        let err = links.failed(&NetError::MonitorClosed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "event source link monitor failed: link monitor: netlink event stream ended"
        );

        let closed = AdvertReadError::Closed {
            source: std::io::Error::other("I/O driver shut down"),
        };
        assert!(closed.is_closed());
        let mut ring = SourceHealth::new("advert ring buffer");
        assert!(ring.failed(&closed).is_err());
        assert!(ring.failed(&AdvertReadError::HangUp).is_err());
    }

    #[test]
    fn transient_errors_are_tolerated_until_they_never_stop() {
        let transient = NetError::Socket {
            what: "reading link events",
            source: std::io::Error::from_raw_os_error(libc::ENOBUFS),
        };
        assert!(!transient.is_closed());
        let mut links = SourceHealth::new("link monitor");
        for _ in 0..5 {
            for _ in 1..MAX_CONSECUTIVE_ERRORS {
                links.failed(&transient).unwrap();
            }
            // A success in between starts the count again.
            links.delivered();
        }
        for _ in 1..MAX_CONSECUTIVE_ERRORS {
            links.failed(&transient).unwrap();
        }
        let err = links.failed(&transient).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("event source link monitor failed: 100 errors in a row, the last: "),
            "{err}"
        );
    }
}
