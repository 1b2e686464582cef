//! carpctl: look at and change carpd's carp interfaces with OpenBSD ifconfig's carp words.
//!
//! Thin on purpose: parse (clap for the options, `control::words` for ifconfig's positional
//! words), send one request, print the answer with `control::format` (`monitor`: follow
//! the event stream). Exit status: 0 done,
//! 1 carpd refused or failed (or is unreachable), 2 the command line is wrong and nothing was
//! sent.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use carp_daemon::control::format;
use carp_daemon::control::monitor::MonitorEvent;
use carp_daemon::control::protocol::DEFAULT_STATE_DIR;
use carp_daemon::control::words::{self, Command, USAGE, WORDS_HELP};
use carp_daemon::control::{ControlClient, Response};

/// The options before the words. Options must come first, like ifconfig's flags: everything
/// from the first word on is ifconfig grammar (`-group`, `-carpdemote` are words, not options).
#[derive(Debug, Parser)]
#[command(
    name = "carpctl",
    version,
    about = "Show and change carpd's carp interfaces, in OpenBSD ifconfig's words",
    override_usage = USAGE,
    after_long_help = WORDS_HELP
)]
struct Cli {
    /// Directory holding carpd's control socket (carpd.sock).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Print the answer as JSON (the protocol's own fields) instead of ifconfig text.
    #[arg(long)]
    json: bool,
    /// Also show each interface's advertised demote count and its last state change.
    #[arg(short, long)]
    verbose: bool,
    /// Print a shell completion script for SHELL (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    generate_completions: Option<clap_complete::Shell>,
    /// Print carpctl(8), the man page generated from these definitions, and exit.
    #[arg(long, exclusive = true)]
    generate_man: bool,
    /// Interface or -g group, then ifconfig words (see --help).
    #[arg(
        value_name = "WORD",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    words: Vec<String>,
}

const EXIT_DAEMON: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(shell) = cli.generate_completions {
        use clap::CommandFactory;
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "carpctl",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    if cli.generate_man {
        use clap::CommandFactory;
        let man = clap_mangen::Man::new(Cli::command()).section("8");
        return match man.render(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("carpctl: {e}");
                ExitCode::from(EXIT_DAEMON)
            }
        };
    }
    let command = match words::parse(&cli.words) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("carpctl: {e}");
            if e.show_usage {
                eprintln!("usage: {USAGE}");
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if command == Command::Monitor {
        return monitor(&cli);
    }
    let response = match ControlClient::connect(&cli.state_dir)
        .and_then(|mut client| client.request(&command.request()))
    {
        Ok(response) => response,
        Err(e) => {
            eprintln!("carpctl: {e}");
            return ExitCode::from(EXIT_DAEMON);
        }
    };
    match render(&command, response, &cli) {
        Ok(text) => {
            // A closed stdout (carpctl | head) is not worth an error message.
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("carpctl: {message}");
            ExitCode::from(EXIT_DAEMON)
        }
    }
}

/// `carpctl monitor`: prints each event as it comes (a line of text, or of JSON with
/// --json) until carpd stops (exit 0) or the connection breaks (exit 1).
fn monitor(cli: &Cli) -> ExitCode {
    let stream = ControlClient::connect(&cli.state_dir).and_then(ControlClient::monitor);
    let mut stream = match stream {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("carpctl: {e}");
            return ExitCode::from(EXIT_DAEMON);
        }
    };
    let mut out = std::io::stdout().lock();
    loop {
        match stream.next_event() {
            Ok(Some(event)) => {
                let line = if cli.json {
                    serde_json::to_string(&event).expect("events serialize")
                } else {
                    event.to_string()
                };
                // Each event as it comes, also into a pipe; a closed stdout ends the monitor.
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return ExitCode::SUCCESS;
                }
                if event == MonitorEvent::Stopped {
                    return ExitCode::SUCCESS;
                }
            }
            Ok(None) => {
                eprintln!("carpctl: carpd closed the connection");
                return ExitCode::from(EXIT_DAEMON);
            }
            Err(e) => {
                eprintln!("carpctl: {e}");
                return ExitCode::from(EXIT_DAEMON);
            }
        }
    }
}

/// The text for an answer, or the message for a refusal or a mismatched answer.
fn render(command: &Command, response: Response, cli: &Cli) -> Result<String, String> {
    match (command, response) {
        (_, Response::Error { message }) => Err(message),
        (Command::Show { .. }, Response::Interfaces(list)) if cli.json => Ok(format::json(&list)),
        (Command::Show { .. }, Response::Interfaces(list)) => {
            Ok(format::interfaces(&list, cli.verbose))
        }
        (
            Command::ShowGroup { .. },
            Response::Group {
                name,
                demote,
                persisted,
            },
        ) if cli.json => Ok(format::group_json(&name, demote, persisted)),
        (
            Command::ShowGroup { .. },
            Response::Group {
                name,
                demote,
                persisted,
            },
        ) => Ok(format::group(&name, demote, persisted)),
        (Command::Stats, Response::Stats(report)) if cli.json => Ok(format::json(&report)),
        (Command::Stats, Response::Stats(report)) => Ok(format::stats(&report)),
        (Command::Checks, Response::Checks(list)) if cli.json => Ok(format::json(&list)),
        (Command::Checks, Response::Checks(list)) => Ok(format::checks(&list)),
        // ifconfig prints nothing when a change worked.
        (Command::Apply { .. } | Command::DebugXdp { .. }, Response::Ok) => Ok(String::new()),
        (_, other) => Err(format!("unexpected answer from carpd: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("carpctl").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn options_first_then_ifconfig_words_untouched() {
        let c = cli(&["-g", "carp", "-carpdemote", "128"]);
        assert_eq!(c.words, ["-g", "carp", "-carpdemote", "128"]);
        assert!(!c.json);
        assert_eq!(c.state_dir, PathBuf::from("/run/carpd"));

        let c = cli(&[
            "--json",
            "--state-dir",
            "/tmp/x",
            "-v",
            "carp0",
            "-group",
            "web",
        ]);
        assert!(c.json && c.verbose);
        assert_eq!(c.state_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.words, ["carp0", "-group", "web"]);

        let c = cli(&["-a"]);
        assert_eq!(c.words, ["-a"]);
        assert!(cli(&[]).words.is_empty());
    }

    #[test]
    fn answers_render_per_command() {
        let c = cli(&[]);
        let group = Command::ShowGroup {
            group: "carp".into(),
        };
        assert_eq!(
            render(
                &group,
                Response::Group {
                    name: "carp".into(),
                    demote: 0,
                    persisted: 0,
                },
                &c
            ),
            Ok("carp: carp demote count 0\n".into())
        );
        assert_eq!(
            render(&group, Response::error("nope: no such group"), &c),
            Err("nope: no such group".into())
        );
        assert!(render(&group, Response::Ok, &c).is_err());
        let json = render(
            &group,
            Response::Group {
                name: "carp".into(),
                demote: 3,
                persisted: 0,
            },
            &cli(&["--json"]),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["demote"], 3);
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
