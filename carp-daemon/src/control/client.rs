//! carpctl's end of the control socket.
//!
//! Blocking std I/O with socket timeouts rather than tokio: carpctl sends one request and
//! prints one answer, and a runtime would only add start-up time and failure modes to a
//! command people type in a hurry during an outage.
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::monitor::MonitorEvent;
use super::protocol::{
    MAX_RESPONSE_BYTES, PROTOCOL_VERSION, Request, RequestEnvelope, Response, ResponseEnvelope,
    encode_line, socket_path,
};

/// How long carpctl waits for carpd, per send and per answer. The daemon answers from its
/// main loop between events, normally within milliseconds; seconds mean it is stuck.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("carpd is not running (no socket at {})", path.display())]
    NotRunning { path: PathBuf },
    #[error("carpd is not running (nothing listens on {})", path.display())]
    NotListening { path: PathBuf },
    #[error("permission denied on {} (carpctl must run as root)", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("cannot connect to carpd at {}: {source}", path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("carpd did not answer within {} s", timeout.as_secs_f32())]
    Timeout { timeout: Duration },
    #[error("carpd closed the connection without answering")]
    Closed,
    #[error("{0}")]
    Refused(String),
    #[error("talking to carpd: {0}")]
    Io(io::Error),
    #[error("carpd's answer is longer than {MAX_RESPONSE_BYTES} bytes")]
    TooLong,
    #[error("carpd's answer is not understood ({0}); are carpctl and carpd the same version?")]
    BadResponse(String),
    #[error("carpd speaks protocol version {0}, carpctl {PROTOCOL_VERSION}: use carpd's carpctl")]
    Version(u32),
}

/// A connection to carpd.
/// The events of `carpctl monitor`, as carpd sends them.
#[derive(Debug)]
pub struct MonitorStream {
    client: ControlClient,
}

impl MonitorStream {
    /// The next event; `None` when carpd closed the stream (after
    /// [`MonitorEvent::Stopped`] when it stopped cleanly).
    pub fn next_event(&mut self) -> Result<Option<MonitorEvent>, ClientError> {
        match self.client.read_response() {
            Ok(Response::Event(event)) => Ok(Some(event)),
            Ok(other) => Err(ClientError::BadResponse(format!("{other:?}"))),
            Err(ClientError::Closed) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[derive(Debug)]
pub struct ControlClient {
    reader: BufReader<UnixStream>,
    timeout: Duration,
}

impl ControlClient {
    /// Connects to `<state_dir>/carpd.sock`, telling "carpd is not running" apart from a
    /// permissions problem, since the fixes differ (start carpd vs. use root).
    pub fn connect(state_dir: &Path) -> Result<Self, ClientError> {
        let path = socket_path(state_dir);
        let stream = UnixStream::connect(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => ClientError::NotRunning { path: path.clone() },
            io::ErrorKind::ConnectionRefused => ClientError::NotListening { path: path.clone() },
            io::ErrorKind::PermissionDenied => ClientError::PermissionDenied { path: path.clone() },
            _ => ClientError::Connect {
                path: path.clone(),
                source,
            },
        })?;
        let mut client = Self {
            reader: BufReader::new(stream),
            timeout: DEFAULT_TIMEOUT,
        };
        client.set_timeout(DEFAULT_TIMEOUT)?;
        Ok(client)
    }

    /// Changes how long a request may take (send and answer each).
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), ClientError> {
        let stream = self.reader.get_ref();
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(ClientError::Io)?;
        self.timeout = timeout;
        Ok(())
    }

    /// Sends `request` and waits for its answer. A [`Response::Error`] is an answer, not an
    /// `Err`: the caller shows the daemon's message as it is.
    pub fn request(&mut self, request: &Request) -> Result<Response, ClientError> {
        let line = encode_line(&RequestEnvelope::new(request.clone()));
        let timeout = self.timeout;
        self.reader
            .get_mut()
            .write_all(&line)
            .map_err(|e| io_error(e, timeout))?;
        self.read_response()
    }

    /// The next response line.
    fn read_response(&mut self) -> Result<Response, ClientError> {
        let answer = self.read_line()?;
        let envelope: ResponseEnvelope = serde_json::from_slice(&answer).map_err(|e| {
            // A daemon of another protocol version may use shapes this client cannot read;
            // say "version" rather than "bad JSON" when the version field tells so.
            match serde_json::from_slice::<serde_json::Value>(&answer)
                .ok()
                .and_then(|v| v.get("version")?.as_u64())
            {
                Some(v) if v != u64::from(PROTOCOL_VERSION) => {
                    ClientError::Version(u32::try_from(v).unwrap_or(u32::MAX))
                }
                _ => ClientError::BadResponse(e.to_string()),
            }
        })?;
        if envelope.version != PROTOCOL_VERSION {
            return Err(ClientError::Version(envelope.version));
        }
        Ok(envelope.response)
    }

    /// `carpctl monitor`: asks for the event stream; carpd's refusal (too many monitors)
    /// comes back as [`ClientError::Refused`].
    pub fn monitor(mut self) -> Result<MonitorStream, ClientError> {
        match self.request(&Request::Monitor)? {
            Response::Ok => {}
            Response::Error { message } => return Err(ClientError::Refused(message)),
            other => return Err(ClientError::BadResponse(format!("{other:?}"))),
        }
        // Events come when they come.
        self.reader
            .get_ref()
            .set_read_timeout(None)
            .map_err(ClientError::Io)?;
        Ok(MonitorStream { client: self })
    }

    /// One response line, capped at [`MAX_RESPONSE_BYTES`].
    fn read_line(&mut self) -> Result<Vec<u8>, ClientError> {
        let timeout = self.timeout;
        let mut line = Vec::new();
        loop {
            let buf = self.reader.fill_buf().map_err(|e| io_error(e, timeout))?;
            if buf.is_empty() {
                return Err(ClientError::Closed);
            }
            let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], true),
                None => (buf, false),
            };
            if line.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ClientError::TooLong);
            }
            line.extend_from_slice(chunk);
            let used = chunk.len() + usize::from(done);
            self.reader.consume(used);
            if done {
                return Ok(line);
            }
        }
    }
}

/// A socket timeout shows up as WouldBlock (or TimedOut); name it for what it means here.
fn io_error(e: io::Error, timeout: Duration) -> ClientError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout { timeout },
        _ => ClientError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A one-shot fake daemon on a std listener: reads one line, writes `answer`.
    fn fake(tag: &str, answer: Option<&'static [u8]>) -> (PathBuf, std::thread::JoinHandle<()>) {
        let dir = std::env::temp_dir().join(format!("carpctl-client-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let listener = UnixListener::bind(socket_path(&dir)).unwrap();
        let handle = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s);
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            match answer {
                Some(a) => r.get_mut().write_all(a).unwrap(),
                // Hold the connection open without answering, until the client gives up.
                None => std::thread::sleep(Duration::from_millis(600)),
            }
        });
        (dir, handle)
    }

    #[test]
    fn times_out_when_carpd_hangs() {
        let (dir, h) = fake("hang", None);
        let mut c = ControlClient::connect(&dir).unwrap();
        c.set_timeout(Duration::from_millis(200)).unwrap();
        let e = c.request(&Request::Stats).unwrap_err();
        assert!(matches!(e, ClientError::Timeout { .. }), "{e}");
        h.join().unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn refuses_another_protocol_version() {
        let (dir, h) = fake(
            "version",
            Some(b"{\"version\":2,\"response\":{\"type\":\"shiny\"}}\n"),
        );
        let mut c = ControlClient::connect(&dir).unwrap();
        let e = c.request(&Request::Stats).unwrap_err();
        assert!(matches!(e, ClientError::Version(2)), "{e}");
        h.join().unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn closed_without_answer_is_reported() {
        let (dir, h) = fake("closed", Some(b""));
        let mut c = ControlClient::connect(&dir).unwrap();
        let e = c.request(&Request::Stats).unwrap_err();
        h.join().unwrap();
        assert!(matches!(e, ClientError::Closed), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_socket_nobody_listens_on_means_not_running() {
        let dir = std::env::temp_dir().join(format!("carpctl-client-dead-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        drop(UnixListener::bind(socket_path(&dir)).unwrap());
        let e = ControlClient::connect(&dir).unwrap_err();
        assert!(matches!(e, ClientError::NotListening { .. }), "{e}");
        assert!(e.to_string().starts_with("carpd is not running"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
