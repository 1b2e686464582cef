//! The control channel between carpctl and carpd, spoken in OpenBSD ifconfig's carp words.
//!
//! - [`protocol`]: the request/response types and their one-JSON-object-per-line encoding.
//!
//! Users are network engineers who know OpenBSD; the words, their ranges, their errors and the
//! output are OpenBSD's so that nothing needs relearning (each file says where it differs).
pub mod protocol;

pub use protocol::{Op, Request, Response, Target};
