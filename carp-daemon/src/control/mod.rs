//! The control channel between carpctl and carpd, spoken in OpenBSD ifconfig's carp words.
//!
//! - [`protocol`]: the request/response types and their one-JSON-object-per-line encoding.
//! - [`server`]: carpd's side: the socket, its permissions, the accept loop, and the hand-off of
//!   each request to the daemon's main task over a channel.
//! - [`monitor`]: `carpctl monitor`'s live event stream, from the daemon's hub to the socket.
//! - [`client`]: carpctl's side: connect, send one request, read one response, with a timeout.
//! - [`words`]: carpctl's argument words (`carp0 advskew 100 group web up`, `-g carp carpdemote`)
//!   parsed as ifconfig parses them, with ifconfig's error messages.
//! - [`format`](mod@format): ifconfig-style and netstat-style text for the responses.
//!
//! Users are network engineers who know OpenBSD; the words, their ranges, their errors and the
//! output are OpenBSD's so that nothing needs relearning (each file says where it differs).
pub mod client;
pub mod format;
pub mod monitor;
pub mod protocol;
pub mod server;
pub mod words;

pub use client::{ClientError, ControlClient, MonitorStream};
pub use protocol::{Op, Request, Response, Target};
pub use server::{ControlRequest, ControlServer, ServerError};
