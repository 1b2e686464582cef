//! `carpctl monitor`: a live stream of what carpd decides, as OpenBSD's `route monitor` is
//! for the routing socket.
//!
//! The daemon publishes [`MonitorEvent`]s on a [`MonitorHub`] (state changes, the demote a
//! vhid advertises, group demote counters, adverts carpd rejected, and the XDP program's
//! decisions while `carpctl debug xdp on`). A control connection whose request is
//! [`Request::Monitor`](super::protocol::Request::Monitor) leaves the pool of ordinary
//! connections for one of [`MAX_MONITORS`] monitor slots, is answered `Ok`, and then gets one
//! `Event` response line per event. When carpd stops, each stream ends with
//! [`MonitorEvent::Stopped`] after the last state changes (the bow-out) went out.
//!
//! A monitor that does not read is not waited for: events are queued up to
//! [`QUEUE_EVENTS`] per monitor, older ones are then replaced by one [`MonitorEvent::Lost`],
//! and a write that blocks for the control socket's idle timeout closes the connection.
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

use super::protocol::{CarpState, Response, ResponseEnvelope, encode_line};

/// Monitor connections served at once, on top of the ordinary control connections.
pub const MAX_MONITORS: usize = 8;

/// Events queued per monitor before the oldest are dropped (and counted in a `Lost`).
pub const QUEUE_EVENTS: usize = 1024;

/// One thing carpd decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MonitorEvent {
    /// A vhid changed state.
    State {
        interface: String,
        carpdev: String,
        vhid: u8,
        from: CarpState,
        to: CarpState,
        /// Why, in words (as carpd logs it).
        reason: String,
    },
    /// The demote count a vhid advertises changed.
    Demote {
        interface: String,
        vhid: u8,
        from: u8,
        to: u8,
    },
    /// An interface group's demote counter changed (or the group appeared: `from` 0).
    GroupDemote { group: String, from: u8, to: u8 },
    /// An advert that passed the XDP filter was rejected by carpd.
    Rejected {
        interface: String,
        vhid: u8,
        source: IpAddr,
        /// `badauth` (HMAC: wrong passphrase or address list), `loop` (our own advert), or
        /// `mode` (multicast to a vhid with unicast peers, or the reverse).
        reason: String,
    },
    /// A decision of the XDP program (only while `carpctl debug xdp on`).
    Dataplane { message: String },
    /// This many events were dropped because the monitor did not read fast enough.
    Lost { events: u64 },
    /// carpd is stopping; nothing follows.
    Stopped,
}

impl fmt::Display for MonitorEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MonitorEvent::State {
                interface,
                carpdev,
                vhid,
                from,
                to,
                reason,
            } => write!(
                f,
                "{interface}: vhid {vhid} carpdev {carpdev}: state {} -> {} ({reason})",
                from.as_str(),
                to.as_str()
            ),
            MonitorEvent::Demote {
                interface,
                vhid,
                from,
                to,
            } => write!(f, "{interface}: vhid {vhid}: demote {from} -> {to}"),
            MonitorEvent::GroupDemote { group, from, to } => {
                write!(f, "group {group}: carp demote count {from} -> {to}")
            }
            MonitorEvent::Rejected {
                interface,
                vhid,
                source,
                reason,
            } => write!(
                f,
                "{interface}: vhid {vhid}: advert from {source} rejected: {reason}"
            ),
            MonitorEvent::Dataplane { message } => write!(f, "xdp: {message}"),
            MonitorEvent::Lost { events } => {
                write!(f, "({events} events lost: the monitor did not keep up)")
            }
            MonitorEvent::Stopped => write!(f, "carpd stopped"),
        }
    }
}

/// The protocol's spelling of a state machine's state.
pub fn carp_state(state: crate::proto::fsm::State) -> CarpState {
    use crate::proto::fsm::State;
    match state {
        State::Init => CarpState::Init,
        State::Backup => CarpState::Backup,
        State::Master => CarpState::Master,
    }
}

/// The daemon's end: where events are published.
#[derive(Debug)]
pub struct MonitorHub {
    events: broadcast::Sender<MonitorEvent>,
    slots: Arc<Semaphore>,
    /// The group demote counters last published, to publish only changes.
    groups: std::collections::BTreeMap<String, u8>,
}

impl Default for MonitorHub {
    fn default() -> Self {
        Self::new()
    }
}

impl MonitorHub {
    pub fn new() -> Self {
        Self {
            events: broadcast::Sender::new(QUEUE_EVENTS),
            slots: Arc::new(Semaphore::new(MAX_MONITORS)),
            groups: Default::default(),
        }
    }

    /// Sends `event` to every monitor (none listening is fine).
    pub fn publish(&self, event: MonitorEvent) {
        let _ = self.events.send(event);
    }

    /// Whether any monitor listens (to skip building events nobody reads).
    pub fn watched(&self) -> bool {
        self.events.receiver_count() > 0
    }

    /// Publishes the group counters that differ from the last ones published.
    pub fn groups_now<'a>(&mut self, groups: impl IntoIterator<Item = (&'a str, u8)>) {
        for (group, to) in groups {
            let from = self.groups.insert(group.to_owned(), to).unwrap_or(0);
            if from != to {
                self.publish(MonitorEvent::GroupDemote {
                    group: group.to_owned(),
                    from,
                    to,
                });
            }
        }
    }

    /// What the control server subscribes through. It does not keep the stream open: once
    /// the hub is dropped, every stream ends.
    pub fn handle(&self) -> MonitorHandle {
        MonitorHandle {
            events: self.events.downgrade(),
            slots: self.slots.clone(),
        }
    }

    /// What waits for the streams to end once the hub is dropped.
    pub fn closer(&self) -> MonitorCloser {
        MonitorCloser {
            slots: self.slots.clone(),
        }
    }
}

/// Waits for every monitor stream to have ended.
#[derive(Debug)]
pub struct MonitorCloser {
    slots: Arc<Semaphore>,
}

impl MonitorCloser {
    /// After the hub was dropped (every stream then sends [`MonitorEvent::Stopped`] and
    /// closes): waits up to `timeout` for the streams to have written it.
    pub async fn wait(self, timeout: Duration) {
        let all = u32::try_from(MAX_MONITORS).expect("small");
        let _ = tokio::time::timeout(timeout, self.slots.acquire_many(all)).await;
    }
}

/// The control server's end: subscribes monitor connections.
#[derive(Debug, Clone)]
pub struct MonitorHandle {
    events: broadcast::WeakSender<MonitorEvent>,
    slots: Arc<Semaphore>,
}

/// A subscribed monitor: its queue and its slot.
#[derive(Debug)]
pub struct Subscription {
    events: broadcast::Receiver<MonitorEvent>,
    _slot: OwnedSemaphorePermit,
}

impl MonitorHandle {
    /// Sends `event` to every monitor, as [`MonitorHub::publish`] (from outside the
    /// daemon's task: the XDP log bridge).
    pub fn publish(&self, event: MonitorEvent) {
        if let Some(events) = self.events.upgrade() {
            let _ = events.send(event);
        }
    }

    /// A new subscription, or why not.
    pub fn subscribe(&self) -> Result<Subscription, String> {
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| format!("too many monitors: carpd serves {MAX_MONITORS} at once"))?;
        let sender = self
            .events
            .upgrade()
            .ok_or_else(|| "carpd is shutting down".to_owned())?;
        Ok(Subscription {
            events: sender.subscribe(),
            _slot: slot,
        })
    }
}

/// Streams `sub`'s events to `write` until carpd stops (then [`MonitorEvent::Stopped`]),
/// the client closes its end (`read` at end of stream), or a write blocks for
/// `write_timeout`.
pub async fn stream<R, W>(
    mut sub: Subscription,
    mut read: R,
    mut write: W,
    write_timeout: Duration,
) -> io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let send = async |write: &mut W, event: MonitorEvent| -> io::Result<()> {
        let line = encode_line(&ResponseEnvelope::new(Response::Event(event)));
        tokio::time::timeout(write_timeout, write.write_all(&line))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "monitor not reading"))?
    };
    loop {
        let event = tokio::select! {
            event = sub.events.recv() => event,
            // Anything from the client, or its close, ends the stream: a monitor only reads.
            _ = read.fill_buf() => return Ok(()),
        };
        match event {
            Ok(event) => send(&mut write, event).await?,
            Err(broadcast::error::RecvError::Lagged(events)) => {
                send(&mut write, MonitorEvent::Lost { events }).await?;
            }
            Err(broadcast::error::RecvError::Closed) => {
                send(&mut write, MonitorEvent::Stopped).await?;
                return write.shutdown().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, BufReader};

    fn state(to: CarpState) -> MonitorEvent {
        MonitorEvent::State {
            interface: "carp0".into(),
            carpdev: "eth0".into(),
            vhid: 1,
            from: CarpState::Backup,
            to,
            reason: "master down timer expired".into(),
        }
    }

    #[test]
    fn events_read_as_text_and_json() {
        assert_eq!(
            state(CarpState::Master).to_string(),
            "carp0: vhid 1 carpdev eth0: state BACKUP -> MASTER (master down timer expired)"
        );
        let rejected = MonitorEvent::Rejected {
            interface: "carp0".into(),
            vhid: 1,
            source: "192.0.2.7".parse().unwrap(),
            reason: "badauth".into(),
        };
        assert_eq!(
            rejected.to_string(),
            "carp0: vhid 1: advert from 192.0.2.7 rejected: badauth"
        );
        let json = serde_json::to_string(&rejected).unwrap();
        assert!(json.starts_with("{\"event\":\"rejected\""), "{json}");
        assert_eq!(
            serde_json::from_str::<MonitorEvent>(&json).unwrap(),
            rejected
        );
    }

    #[test]
    fn group_counters_publish_changes_only() {
        let mut hub = MonitorHub::new();
        let handle = hub.handle();
        let mut sub = handle.subscribe().unwrap();
        hub.groups_now([("carp", 0)]);
        hub.groups_now([("carp", 0)]);
        hub.groups_now([("carp", 128)]);
        assert_eq!(
            sub.events.try_recv().unwrap(),
            MonitorEvent::GroupDemote {
                group: "carp".into(),
                from: 0,
                to: 128
            }
        );
        assert!(
            sub.events.try_recv().is_err(),
            "an unchanged counter was published"
        );
    }

    #[test]
    fn monitors_are_capped() {
        let hub = MonitorHub::new();
        let handle = hub.handle();
        let subs: Vec<Subscription> = (0..MAX_MONITORS)
            .map(|_| handle.subscribe().unwrap())
            .collect();
        assert!(
            handle
                .subscribe()
                .unwrap_err()
                .contains("too many monitors")
        );
        drop(subs);
        assert!(handle.subscribe().is_ok(), "a freed slot is reused");
    }

    /// The stream carries events in order, and a stop ends it with `Stopped` and EOF.
    #[tokio::test]
    async fn stream_ends_with_stopped_when_the_hub_closes() {
        let hub = MonitorHub::new();
        let sub = hub.handle().subscribe().unwrap();
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (server_read, server_write) = tokio::io::split(server);
        let task = tokio::spawn(stream(
            sub,
            BufReader::new(server_read),
            server_write,
            Duration::from_secs(2),
        ));
        hub.publish(state(CarpState::Master));
        let closer = hub.closer();
        drop(hub);
        closer.wait(Duration::from_secs(2)).await;
        task.await.unwrap().unwrap();
        let (mut client_read, _client_write) = tokio::io::split(client);
        let mut text = String::new();
        client_read.read_to_string(&mut text).await.unwrap();
        let events: Vec<MonitorEvent> = text
            .lines()
            .map(|l| {
                match serde_json::from_str::<ResponseEnvelope>(l)
                    .unwrap()
                    .response
                {
                    Response::Event(e) => e,
                    other => panic!("not an event: {other:?}"),
                }
            })
            .collect();
        assert_eq!(events, [state(CarpState::Master), MonitorEvent::Stopped]);
    }

    /// A client that closes its end frees its slot without any event being sent.
    #[tokio::test]
    async fn stream_ends_when_the_client_leaves() {
        let hub = MonitorHub::new();
        let handle = hub.handle();
        let sub = handle.subscribe().unwrap();
        let (client, server) = tokio::io::duplex(1024);
        let (server_read, server_write) = tokio::io::split(server);
        let task = tokio::spawn(stream(
            sub,
            BufReader::new(server_read),
            server_write,
            Duration::from_secs(2),
        ));
        drop(client);
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("the stream noticed the close")
            .unwrap()
            .unwrap();
        let subs: Vec<Subscription> = (0..MAX_MONITORS)
            .map(|_| handle.subscribe().unwrap())
            .collect();
        assert_eq!(subs.len(), MAX_MONITORS);
    }
}
