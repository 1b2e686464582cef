//! Packet captures with tcpdump inside a lab namespace.
//!
//! tcpdump prints "listening on IF" only after the socket is open and the filter attached, so
//! [`Host::capture`](crate::Host::capture) returns once that line appeared: every packet sent
//! afterwards reaches the file. `-U --immediate-mode` makes each packet reach the file as
//! tcpdump reads it, so SIGTERM loses nothing tcpdump holds; but a frame can still sit in the
//! capture socket, unread, when the signal lands (the frame reached its receiver before
//! tcpdump ran). A test that needs a frame it knows was sent waits for it in the file first:
//! [`Capture::wait_for_packets`].
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::pcap::{self, Pcap};
use crate::{Host, LabError, LabProcess};

/// How long tcpdump may take to start capturing.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long tcpdump may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running tcpdump writing a pcap file. Dropping it kills tcpdump; the file stays (until the
/// lab's work directory is removed with the lab).
#[derive(Debug)]
pub struct Capture {
    process: LabProcess,
    path: PathBuf,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Capture {
    /// Starts `tcpdump -i <host's LAN port>` with `filter` (pcap-filter syntax; empty for
    /// everything) and returns once it is capturing.
    pub(crate) fn start(host: &Host, filter: &str, path: PathBuf) -> Result<Capture, LabError> {
        let cmd_for = |args: Vec<&str>| host.command(args);
        Capture::start_with(host, cmd_for, host.ifname(), &[], filter, path)
    }

    /// Starts tcpdump on the switch-side end of `host`'s cable, keeping only the frames the
    /// host sent (`-Q in`: received by the switch port). Several hosts can share one MAC (a
    /// CARP virtual MAC), so this is how to tell which host answered. `snaplen` 0 keeps
    /// whole frames.
    pub(crate) fn start_at_switch(
        host: &Host,
        filter: &str,
        snaplen: u32,
        path: PathBuf,
    ) -> Result<Capture, LabError> {
        let snap = snaplen.to_string();
        let cmd_for = |args: Vec<&str>| host.switch_netns().command(args);
        Capture::start_with(
            host,
            cmd_for,
            host.switch_port(),
            &["-Q", "in", "-s", &snap],
            filter,
            path,
        )
    }

    fn start_with(
        host: &Host,
        cmd_for: impl FnOnce(Vec<&str>) -> crate::NetnsCommand,
        ifname: &str,
        extra: &[&str],
        filter: &str,
        path: PathBuf,
    ) -> Result<Capture, LabError> {
        let path_str = path.to_string_lossy().into_owned();
        let mut args = vec![
            "tcpdump",
            "-i",
            ifname,
            "-n",
            "-U",
            "--immediate-mode",
            // Stay root: the dropped-privilege user could not write into the work directory.
            "-Z",
            "root",
            "-w",
            &path_str,
        ];
        args.extend_from_slice(extra);
        if !filter.trim().is_empty() {
            args.push(filter);
        }
        let mut cmd = cmd_for(args);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let display = cmd.display().to_owned();
        let process = host.spawn_command_labelled(cmd, "tcpdump")?;
        let pipe = process.take_stderr().expect("stderr was piped");

        // Read stderr until EOF on a thread: report the "listening on" line, and keep the
        // text for error messages (also so tcpdump never blocks on a full pipe).
        let stderr = Arc::new(Mutex::new(String::new()));
        let (listening_tx, listening_rx) = mpsc::channel();
        let reader = {
            let stderr = Arc::clone(&stderr);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if line.contains("listening on") {
                        let _ = listening_tx.send(());
                    }
                    let mut text = stderr.lock().unwrap_or_else(|e| e.into_inner());
                    text.push_str(&line);
                    text.push('\n');
                }
            })
        };
        let capture = Capture {
            process,
            path,
            stderr,
            reader: Some(reader),
        };
        match listening_rx.recv_timeout(START_TIMEOUT) {
            Ok(()) => Ok(capture),
            // Disconnected: tcpdump exited (bad filter, no such interface) before listening.
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(LabError::Command {
                cmd: display,
                netns: Some(host.netns().to_owned()),
                status: "exited before capturing".into(),
                stderr: capture.stderr_text(),
            }),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(LabError::Timeout {
                what: format!(
                    "`{display}` to start capturing (stderr: {})",
                    capture.stderr_text()
                ),
                after: START_TIMEOUT,
            }),
        }
    }

    /// The pcap file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What tcpdump printed on stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until the packets written so far satisfy `done` (the file is read as it grows)
    /// and returns them; a timeout names `what` was awaited.
    pub fn wait_for_packets(
        &self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&Pcap) -> bool,
    ) -> Result<Pcap, LabError> {
        let mut last = None;
        crate::wait_for(what, timeout, || {
            // A read can catch the file between a record's header and its data: try again.
            match pcap::read(&self.path) {
                Ok(pcap) if done(&pcap) => {
                    last = Some(pcap);
                    true
                }
                _ => false,
            }
        })?;
        Ok(last.expect("set when the wait succeeded"))
    }

    /// Stops tcpdump (SIGTERM, so it closes the file properly) and returns the pcap path.
    pub fn stop(mut self) -> Result<PathBuf, LabError> {
        self.process.terminate(STOP_TIMEOUT)?;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        Ok(self.path.clone())
    }

    /// Stops tcpdump and reads the file.
    pub fn stop_and_read(self) -> Result<Pcap, LabError> {
        let path = self.stop()?;
        pcap::read(&path)
    }
}
