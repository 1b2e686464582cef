//! carpd's end of the control socket.
//!
//! The daemon owns all its state in one task (see `daemon/`), so the server does not call into
//! it: every decoded request is sent, with a oneshot reply channel, as a [`ControlRequest`] on
//! an mpsc channel that the main loop selects on alongside adverts, timers and link events.
//! The server itself only does I/O: framing, size limits, decoding, and access control.
//!
//! Access control: the socket is created mode 0600 inside a state directory carpd creates mode
//! 0700, so only the daemon's user (root) can connect. As a second layer each connection's
//! SO_PEERCRED uid must be 0 or the daemon's own effective uid; that keeps the socket closed
//! even if someone loosens the directory or file mode, and lets an unprivileged carpd (tests,
//! containers) be driven by its own user. Unlike OpenBSD, where any user may run `ifconfig` to
//! look, status is root-only too: one rule is easier to reason about than a split by request.
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::monitor::MonitorHandle;
use super::protocol::{
    MAX_REQUEST_BYTES, Request, Response, ResponseEnvelope, decode_request, encode_line,
    socket_path,
};

/// Connections served at once. carpctl opens one per command; the cap only bounds what a
/// runaway script can make the daemon hold.
const MAX_CONNECTIONS: usize = 16;

/// How long a connection may sit without completing a request line (or without taking its
/// answer) before carpd closes it. carpctl writes its request as soon as it has connected,
/// so only a hung or malicious client ever waits this long; with every slot held by such
/// clients, a new carpctl (which waits 5 s for its answer) is still served within this time.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// One request for the daemon's main loop, with the channel its answer goes back on.
///
/// The main loop must answer every request it receives (dropping `reply` makes the client see
/// "carpd did not answer"), and should answer promptly: carpctl waits a few seconds at most.
#[derive(Debug)]
pub struct ControlRequest {
    pub request: Request,
    pub reply: oneshot::Sender<Response>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create state directory {path}: {source}")]
    StateDir { path: PathBuf, source: io::Error },
    #[error("{path} exists and is not a socket; not removing it")]
    NotASocket { path: PathBuf },
    #[error("another carpd is running (its control socket {path} answers)")]
    AlreadyRunning { path: PathBuf },
    #[error("cannot remove stale control socket {path}: {source}")]
    RemoveStale { path: PathBuf, source: io::Error },
    #[error("cannot bind control socket {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
    #[error("cannot set mode 0600 on control socket {path}: {source}")]
    Permissions { path: PathBuf, source: io::Error },
    #[error("control socket {path}: {source}")]
    Listen { path: PathBuf, source: io::Error },
}

/// A bound control socket, ready to [`serve`](ControlServer::serve).
///
/// Dropping it (or the future of `serve`) removes the socket file, so a stopped carpd leaves
/// none behind and the next start finds a clean directory.
#[derive(Debug)]
pub struct ControlServer {
    listener: std::os::unix::net::UnixListener,
    guard: SocketFile,
    idle_timeout: Duration,
    monitors: Option<MonitorHandle>,
}

impl ControlServer {
    /// Creates `state_dir` (mode 0700) if missing, clears a stale socket, binds
    /// `<state_dir>/carpd.sock` and makes it mode 0600.
    ///
    /// A socket file that still answers belongs to a running carpd and is left alone
    /// ([`ServerError::AlreadyRunning`]); anything at that path that is not a socket is never
    /// deleted. An existing directory keeps its mode: the state directory may be one the
    /// operator chose, and the socket's own mode is what guards it.
    ///
    /// Synchronous and runtime-free, so the daemon can bind before it starts tokio and fail
    /// early; [`serve`](Self::serve) needs the runtime.
    pub fn bind(state_dir: &Path) -> Result<Self, ServerError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|source| ServerError::StateDir {
                path: state_dir.to_owned(),
                source,
            })?;
        let path = socket_path(state_dir);
        clear_stale_socket(&path)?;
        let listener =
            std::os::unix::net::UnixListener::bind(&path).map_err(|source| ServerError::Bind {
                path: path.clone(),
                source,
            })?;
        // From here on the file is ours: remove it on every early return too.
        let guard = SocketFile(path.clone());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|source| ServerError::Permissions { path, source })?;
        Ok(Self {
            listener,
            guard,
            idle_timeout: IDLE_TIMEOUT,
            monitors: None,
        })
    }

    /// Replaces [`IDLE_TIMEOUT`].
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Serves [`Request::Monitor`] from `monitors` (without, it is refused).
    pub fn with_monitors(mut self, monitors: MonitorHandle) -> Self {
        self.monitors = Some(monitors);
        self
    }

    /// Path of the bound socket.
    pub fn path(&self) -> &Path {
        &self.guard.0
    }

    /// Accepts connections until the listener fails, handing each request to `daemon`.
    ///
    /// Runs until cancelled (the daemon drops the future on shutdown, which removes the
    /// socket file) or until accepting fails for good. Each connection is served in its own
    /// task, so a slow client never stalls another or the daemon.
    pub async fn serve(self, daemon: mpsc::Sender<ControlRequest>) -> Result<(), ServerError> {
        let Self {
            listener,
            guard,
            idle_timeout,
            monitors,
        } = self;
        let listen_err = |source| ServerError::Listen {
            path: guard.0.clone(),
            source,
        };
        listener.set_nonblocking(true).map_err(listen_err)?;
        let listener = UnixListener::from_std(listener).map_err(listen_err)?;
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let own_uid = nix::unistd::geteuid().as_raw();
        loop {
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                // Per-connection failures (the peer went away before accept, fd limits for a
                // moment) must not end the server; they are transient by nature.
                Err(e) if is_transient_accept_error(&e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => return Err(listen_err(e)),
            };
            let daemon = daemon.clone();
            let monitors = monitors.clone();
            tokio::spawn(async move {
                let conn = Connection {
                    daemon,
                    monitors,
                    own_uid,
                    idle_timeout,
                    slot: permit,
                };
                if let Err(e) = serve_connection(stream, conn).await {
                    tracing::debug!(error = %e, "control connection ended");
                }
            });
        }
    }
}

fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::EINTR
                | libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
        )
    )
}

/// Removes the socket file when dropped.
#[derive(Debug)]
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Makes `path` free for a new socket: nothing there, or a socket nobody listens on.
fn clear_stale_socket(path: &Path) -> Result<(), ServerError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ServerError::RemoveStale {
                path: path.to_owned(),
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ServerError::NotASocket {
            path: path.to_owned(),
        });
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ServerError::AlreadyRunning {
            path: path.to_owned(),
        });
    }
    std::fs::remove_file(path).map_err(|source| ServerError::RemoveStale {
        path: path.to_owned(),
        source,
    })
}

/// What one connection is served with.
struct Connection {
    daemon: mpsc::Sender<ControlRequest>,
    monitors: Option<MonitorHandle>,
    own_uid: u32,
    idle_timeout: Duration,
    /// Its place among the ordinary connections, given up when it turns into a monitor.
    slot: OwnedSemaphorePermit,
}

/// Serves one connection: request lines in, one response line out for each, until EOF or
/// until the client leaves it idle for `idle_timeout` (then it is closed). A
/// [`Request::Monitor`] turns it into an event stream ([`super::monitor::stream`]).
async fn serve_connection(stream: UnixStream, conn: Connection) -> io::Result<()> {
    let Connection {
        daemon,
        monitors,
        own_uid,
        idle_timeout,
        slot,
    } = conn;
    let idle = |e: tokio::time::error::Elapsed| {
        io::Error::new(io::ErrorKind::TimedOut, format!("idle connection: {e}"))
    };
    let peer_uid = stream.peer_cred()?.uid();
    let (read, mut write) = stream.into_split();
    if peer_uid != 0 && peer_uid != own_uid {
        let refusal = Response::error(format!(
            "permission denied: carpctl must run as root (caller uid {peer_uid})"
        ));
        let refused = async {
            write
                .write_all(&encode_line(&ResponseEnvelope::new(refusal)))
                .await?;
            write.shutdown().await
        };
        return tokio::time::timeout(idle_timeout, refused)
            .await
            .map_err(idle)?;
    }
    let mut read = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        let next = read_line_capped(&mut read, &mut line, MAX_REQUEST_BYTES);
        let response = match tokio::time::timeout(idle_timeout, next)
            .await
            .map_err(idle)??
        {
            LineRead::Eof => return Ok(()),
            LineRead::TooLong => Response::error(format!(
                "bad request: line longer than {MAX_REQUEST_BYTES} bytes"
            )),
            LineRead::Line => match decode_request(&line) {
                Ok(Request::Monitor) => match monitors.as_ref().map(MonitorHandle::subscribe) {
                    Some(Ok(sub)) => {
                        let ok = encode_line(&ResponseEnvelope::new(Response::Ok));
                        tokio::time::timeout(idle_timeout, write.write_all(&ok))
                            .await
                            .map_err(idle)??;
                        drop(slot);
                        return super::monitor::stream(sub, read, write, idle_timeout).await;
                    }
                    Some(Err(refusal)) => Response::error(refusal),
                    None => Response::error("this carpd does not serve monitors"),
                },
                Ok(request) => ask_daemon(&daemon, request).await,
                Err(e) => Response::error(e.to_string()),
            },
        };
        let answer = encode_line(&ResponseEnvelope::new(response));
        tokio::time::timeout(idle_timeout, write.write_all(&answer))
            .await
            .map_err(idle)??;
    }
}

/// Hands `request` to the main loop and waits for its answer.
async fn ask_daemon(daemon: &mpsc::Sender<ControlRequest>, request: Request) -> Response {
    let (reply, answer) = oneshot::channel();
    if daemon
        .send(ControlRequest { request, reply })
        .await
        .is_err()
    {
        return Response::error("carpd is shutting down");
    }
    answer
        .await
        .unwrap_or_else(|_| Response::error("carpd did not answer the request"))
}

#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// `line` holds one line without its newline (a last line without one counts too).
    Line,
    /// The line was longer than the cap; it has been consumed up to its newline and dropped,
    /// so the next read starts cleanly at the next request.
    TooLong,
    Eof,
}

/// Reads one `\n`-terminated line into `line` without ever buffering more than `cap` bytes of
/// it; `AsyncBufReadExt::read_until` has no limit, so a client sending no newline could make
/// the daemon grow a buffer until memory runs out.
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> io::Result<LineRead> {
    line.clear();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if too_long {
                LineRead::TooLong
            } else if line.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        let (chunk, found_newline) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        if !too_long {
            if line.len() + chunk.len() > cap {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = chunk.len() + usize::from(found_newline);
        reader.consume(used);
        if found_newline {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::client::{ClientError, ControlClient};
    use crate::control::protocol::{Op, RequestEnvelope, ResponseEnvelope, Target};
    use std::io::{BufRead, Read, Write};
    use std::time::Instant;

    /// A directory under the system temp dir, removed on drop (no tempfile dependency).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "carpctl-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// What the daemon's main loop does, reduced to a fixed answer per request kind.
    async fn fake_daemon(mut rx: mpsc::Receiver<ControlRequest>) {
        while let Some(ControlRequest { request, reply }) = rx.recv().await {
            let response = match request {
                Request::GroupStatus { group } if group == "carp" => Response::Group {
                    name: group,
                    demote: 0,
                    persisted: 0,
                },
                Request::GroupStatus { group } => {
                    Response::error(format!("{group}: no such group"))
                }
                Request::Apply { target, ops } => {
                    match ops.iter().try_for_each(|op| op.check(&target)) {
                        Ok(()) => Response::Ok,
                        Err(e) => Response::error(e),
                    }
                }
                Request::Status { .. } => Response::Interfaces(vec![]),
                Request::Stats => Response::Stats(Default::default()),
                Request::Checks => Response::Checks(vec![]),
                Request::Monitor => unreachable!("served by the server"),
                Request::DebugXdp { .. } => Response::Ok,
            };
            let _ = reply.send(response);
        }
    }

    /// Binds a server in a fresh directory, serves it with the fake daemon, and returns the
    /// directory (keep it alive) and the server task.
    fn start(tag: &str) -> (TempDir, tokio::task::JoinHandle<Result<(), ServerError>>) {
        start_with_idle_timeout(tag, IDLE_TIMEOUT)
    }

    fn start_with_idle_timeout(
        tag: &str,
        idle: Duration,
    ) -> (TempDir, tokio::task::JoinHandle<Result<(), ServerError>>) {
        let dir = TempDir::new(tag);
        let server = ControlServer::bind(&dir.0.join("state"))
            .unwrap()
            .with_idle_timeout(idle);
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(fake_daemon(rx));
        let task = tokio::spawn(server.serve(tx));
        (dir, task)
    }

    /// Raw exchange: write `bytes`, read one response line (blocking std I/O, off the runtime).
    async fn raw(dir: &Path, bytes: Vec<u8>) -> Response {
        let path = socket_path(dir);
        tokio::task::spawn_blocking(move || {
            let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(&bytes).unwrap();
            let mut line = String::new();
            std::io::BufReader::new(s).read_line(&mut line).unwrap();
            let env: ResponseEnvelope = serde_json::from_str(&line).unwrap();
            env.response
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn bind_sets_modes_and_serve_answers_through_the_channel() {
        let (dir, _task) = start("modes");
        let state = dir.0.join("state");
        let dir_mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let sock_mode = std::fs::metadata(socket_path(&state))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(sock_mode, 0o600);

        let state2 = state.clone();
        let answers = tokio::task::spawn_blocking(move || {
            let mut c = ControlClient::connect(&state2).unwrap();
            let a = c
                .request(&Request::GroupStatus {
                    group: "carp".into(),
                })
                .unwrap();
            // A second request on the same connection.
            let b = c
                .request(&Request::Apply {
                    target: Target::Interface("carp0".into()),
                    ops: vec![Op::AdvSkew(255)],
                })
                .unwrap();
            (a, b)
        })
        .await
        .unwrap();
        assert_eq!(
            answers.0,
            Response::Group {
                name: "carp".into(),
                demote: 0,
                persisted: 0,
            }
        );
        assert_eq!(answers.1, Response::error("advskew 255: too large"));
    }

    #[tokio::test]
    async fn bad_lines_get_specific_errors_and_the_connection_stays_usable() {
        let (dir, _task) = start("bad");
        let state = dir.0.join("state");
        let Response::Error { message } = raw(&state, b"{nope\n".to_vec()).await else {
            panic!("expected an error")
        };
        assert!(message.starts_with("bad request: not JSON"), "{message}");

        let r = raw(
            &state,
            b"{\"version\":1,\"request\":{\"type\":\"reboot\"}}\n".to_vec(),
        )
        .await;
        assert_eq!(r, Response::error("unknown request 'reboot'"));

        let r = raw(
            &state,
            b"{\"version\":9,\"request\":{\"type\":\"stats\"}}\n".to_vec(),
        )
        .await;
        assert_eq!(
            r,
            Response::error("protocol version 9 not supported (carpd speaks version 1)")
        );

        // An oversized line, then a good request on the same connection: the first gets the
        // size error, the second its answer.
        let path = socket_path(&state);
        let (first, second) = tokio::task::spawn_blocking(move || {
            let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut big = vec![b'x'; MAX_REQUEST_BYTES + 10];
            big.push(b'\n');
            s.write_all(&big).unwrap();
            s.write_all(&encode_line(&RequestEnvelope::new(Request::Stats)))
                .unwrap();
            let mut r = std::io::BufReader::new(s);
            let mut a = String::new();
            let mut b = String::new();
            r.read_line(&mut a).unwrap();
            r.read_line(&mut b).unwrap();
            let a: ResponseEnvelope = serde_json::from_str(&a).unwrap();
            let b: ResponseEnvelope = serde_json::from_str(&b).unwrap();
            (a.response, b.response)
        })
        .await
        .unwrap();
        assert_eq!(
            first,
            Response::error("bad request: line longer than 65536 bytes")
        );
        assert_eq!(second, Response::Stats(Default::default()));
    }

    /// A request through carpctl's own client, timed.
    async fn timed_stats(state: &Path) -> (Response, Duration) {
        let state = state.to_owned();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut c = ControlClient::connect(&state).unwrap();
            let r = c.request(&Request::Stats).unwrap();
            (r, started.elapsed())
        })
        .await
        .unwrap()
    }

    /// Connects and sends `bytes` (maybe nothing), then reads until carpd closes the
    /// connection; how long that took.
    fn hung_client(state: &Path, bytes: &'static [u8]) -> std::thread::JoinHandle<Duration> {
        let path = socket_path(state);
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.write_all(bytes).unwrap();
            let mut rest = Vec::new();
            s.read_to_end(&mut rest)
                .expect("closed by carpd, not timed out");
            assert!(rest.is_empty(), "an idle client got an answer");
            started.elapsed()
        })
    }

    #[tokio::test]
    async fn an_idle_client_neither_blocks_others_nor_stays_forever() {
        let idle = Duration::from_secs(2);
        let (dir, _task) = start_with_idle_timeout("idle", idle);
        let state = dir.0.join("state");
        // One client that connects and says nothing, one that stops in the middle of a line.
        let silent = hung_client(&state, b"");
        let halfway = hung_client(&state, b"{\"version\":1,");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (answer, took) = timed_stats(&state).await;
        assert_eq!(answer, Response::Stats(Default::default()));
        assert!(took < Duration::from_secs(1), "carpctl waited {took:?}");
        for client in [silent, halfway] {
            let open = tokio::task::spawn_blocking(move || client.join().unwrap())
                .await
                .unwrap();
            assert!(
                open >= idle - Duration::from_millis(200) && open < idle * 4,
                "an idle connection was closed after {open:?}"
            );
        }
    }

    #[tokio::test]
    async fn every_slot_held_by_idle_clients_delays_carpctl_by_the_idle_timeout_at_most() {
        let idle = Duration::from_millis(800);
        let (dir, _task) = start_with_idle_timeout("slots", idle);
        let state = dir.0.join("state");
        let hung: Vec<_> = (0..MAX_CONNECTIONS)
            .map(|_| hung_client(&state, b""))
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (answer, took) = timed_stats(&state).await;
        assert_eq!(answer, Response::Stats(Default::default()));
        assert!(
            took < idle + Duration::from_secs(2),
            "carpctl waited {took:?} behind {MAX_CONNECTIONS} idle clients"
        );
        for client in hung {
            tokio::task::spawn_blocking(move || client.join().unwrap())
                .await
                .unwrap();
        }
    }

    /// Monitors sit beside the ordinary connections: with every monitor slot taken and all
    /// but one ordinary slot held by idle clients, carpctl is still answered at once; one
    /// monitor too many is refused.
    #[tokio::test]
    async fn monitors_do_not_count_against_the_connection_cap() {
        let idle = Duration::from_secs(10);
        let dir = TempDir::new("monitors");
        let state = dir.0.join("state");
        let hub = crate::control::monitor::MonitorHub::new();
        let server = ControlServer::bind(&state)
            .unwrap()
            .with_idle_timeout(idle)
            .with_monitors(hub.handle());
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(fake_daemon(rx));
        let _task = tokio::spawn(server.serve(tx));
        let monitors = {
            let state = state.clone();
            tokio::task::spawn_blocking(move || {
                (0..crate::control::monitor::MAX_MONITORS)
                    .map(|_| ControlClient::connect(&state).unwrap().monitor().unwrap())
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap()
        };
        let refused = {
            let state = state.clone();
            tokio::task::spawn_blocking(move || {
                ControlClient::connect(&state)
                    .unwrap()
                    .monitor()
                    .unwrap_err()
            })
            .await
            .unwrap()
        };
        assert!(
            refused.to_string().contains("too many monitors"),
            "{refused}"
        );
        let hung: Vec<_> = (0..MAX_CONNECTIONS - 1)
            .map(|_| hung_client(&state, b""))
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (answer, took) = timed_stats(&state).await;
        assert_eq!(answer, Response::Stats(Default::default()));
        assert!(took < Duration::from_secs(2), "carpctl waited {took:?}");
        // The monitors still stream, and end with `stopped` when the hub goes.
        hub.publish(crate::control::monitor::MonitorEvent::Lost { events: 0 });
        drop(hub);
        let ends = tokio::task::spawn_blocking(move || {
            monitors
                .into_iter()
                .map(|mut m| {
                    let mut seen = Vec::new();
                    while let Some(event) = m.next_event().unwrap() {
                        seen.push(event);
                    }
                    seen
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        for seen in ends {
            assert_eq!(
                seen,
                [
                    crate::control::monitor::MonitorEvent::Lost { events: 0 },
                    crate::control::monitor::MonitorEvent::Stopped
                ]
            );
        }
        drop(hung);
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
        let dir = TempDir::new("stale");
        let state = dir.0.join("state");
        let first = ControlServer::bind(&state).unwrap();
        // A second daemon must not steal a live socket...
        assert!(matches!(
            ControlServer::bind(&state),
            Err(ServerError::AlreadyRunning { .. })
        ));
        // ...but takes over one left behind by a crashed daemon (file present, nobody
        // listening). Simulate the crash by closing the listener without removing the file.
        let path = first.path().to_owned();
        std::mem::forget(first.guard);
        drop(first.listener);
        assert!(path.exists());
        let second = ControlServer::bind(&state).unwrap();
        drop(second);
        assert!(!path.exists(), "dropping the server removes its socket");

        // A non-socket in the way is never deleted.
        std::fs::write(&path, b"precious").unwrap();
        assert!(matches!(
            ControlServer::bind(&state),
            Err(ServerError::NotASocket { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }

    #[tokio::test]
    async fn a_daemon_that_went_away_yields_an_error_not_a_hang() {
        let dir = TempDir::new("gone");
        let state = dir.0.join("state");
        let server = ControlServer::bind(&state).unwrap();
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        tokio::spawn(server.serve(tx));
        let r = raw(&state, encode_line(&RequestEnvelope::new(Request::Stats))).await;
        assert_eq!(r, Response::error("carpd is shutting down"));
    }

    #[test]
    fn client_says_when_carpd_is_not_running() {
        let dir = TempDir::new("absent");
        let err = ControlClient::connect(&dir.0).unwrap_err();
        assert!(matches!(err, ClientError::NotRunning { .. }));
        assert_eq!(
            err.to_string(),
            format!(
                "carpd is not running (no socket at {})",
                socket_path(&dir.0).display()
            )
        );
    }

    #[tokio::test]
    async fn capped_reader_frames_lines() {
        let data: &[u8] = b"abc\n\nxxxxxxxxxx\ndef";
        let mut r = BufReader::with_capacity(4, data);
        let mut line = Vec::new();
        assert_eq!(
            read_line_capped(&mut r, &mut line, 5).await.unwrap(),
            LineRead::Line
        );
        assert_eq!(line, b"abc");
        assert_eq!(
            read_line_capped(&mut r, &mut line, 5).await.unwrap(),
            LineRead::Line
        );
        assert_eq!(line, b"");
        assert_eq!(
            read_line_capped(&mut r, &mut line, 5).await.unwrap(),
            LineRead::TooLong
        );
        assert_eq!(
            read_line_capped(&mut r, &mut line, 5).await.unwrap(),
            LineRead::Line
        );
        assert_eq!(line, b"def");
        assert_eq!(
            read_line_capped(&mut r, &mut line, 5).await.unwrap(),
            LineRead::Eof
        );
    }
}
