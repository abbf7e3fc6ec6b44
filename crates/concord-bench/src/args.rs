//! Command-line arguments of `concord bench`.

use std::time::Duration;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// A named workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Scenario {
    /// Open N connections, wait for every READY; connect rate and server memory.
    Idle,
    /// N members connected, the owner posts messages; delivery rate, latency, loss.
    Fanout,
    /// Fan-out while connections drop and reconnect at `--churn-rate` per second.
    Churn,
    /// All N connections dropped at once, reconnecting with full-jitter backoff.
    Storm,
    /// Members send PRESENCE_UPDATE; co-members receive it.
    Presence,
    /// Members send TYPING_START; the channel's members receive it.
    Typing,
    /// Audio over the gateway (v2): voice channels of speakers and listeners; speakers
    /// stream 20 ms PCM chunks, the server paces and relays them to the listeners.
    Audio,
}

impl Scenario {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Fanout => "fanout",
            Self::Churn => "churn",
            Self::Storm => "storm",
            Self::Presence => "presence",
            Self::Typing => "typing",
            Self::Audio => "audio",
        }
    }
}

/// The gateway protocol version the members speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
pub enum Protocol {
    /// v1, the Together protocol: READY is the first frame.
    #[default]
    #[value(name = "1")]
    V1,
    /// Concord's v2 (`?v=2`): HELLO (with the heartbeat interval) first, then READY;
    /// every dispatch carries `s`.
    #[value(name = "2")]
    V2,
}

impl Protocol {
    /// The version number, as in `?v=` and in reports.
    pub fn number(self) -> u8 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }
}

/// Load-test a server speaking the Together REST API and v1 gateway (or, with
/// `--protocol 2`, Concord's gateway v2).
///
/// The bench creates its own world (an owner, one public server with one text channel,
/// N bots as members), then runs each scenario in turn and prints one JSON summary per
/// scenario on stdout. Every scenario is bounded by `--duration`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Base URL of the REST API; the gateway is `/ws` on the same host.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Gateway URL, when it is not `ws://<host of --url>/ws`.
    #[arg(long)]
    pub ws_url: Option<String>,
    /// More gateways of the same cluster (comma-separated `ws://host:port/ws`):
    /// connection i goes to the (i mod (1 + count))-th gateway, the first being
    /// `--ws-url`'s. REST calls all go to `--url`.
    #[arg(long, value_delimiter = ',')]
    pub also_ws_url: Vec<String>,
    /// Gateway protocol: `1` (the Together protocol, what the reference speaks) or
    /// `2` (Concord's v2: `?v=2`, HELLO before READY, heartbeats required).
    #[arg(long, value_enum, default_value = "1")]
    pub protocol: Protocol,
    /// Scenarios to run, in order (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "idle")]
    pub scenario: Vec<Scenario>,
    /// Number of member connections (N).
    #[arg(short = 'n', long, default_value_t = 100)]
    pub connections: usize,
    /// Messages to post (fanout, churn) or frames to send (presence, typing).
    #[arg(long = "messages", visible_alias = "count", default_value_t = 200)]
    pub messages: u64,
    /// Sends per second in total; 0 = as fast as `--in-flight` allows (fanout) or the
    /// gateway limit allows (presence, typing).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Concurrent message POSTs.
    #[arg(long, default_value_t = 8)]
    pub in_flight: usize,
    /// Message content size in bytes (at least the stamp).
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Fanout: single messages sent one at a time afterwards, each timed from POST to
    /// its last delivery ("one message to all N").
    #[arg(long, default_value_t = 5)]
    pub probes: u32,
    /// Hard cap on each scenario (e.g. `60s`, `5m`, `1500ms`); every wait is bounded
    /// by it and a scenario cut short reports `"completed": false`.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub duration: Duration,
    /// Cap on creating the world (owner, server, bots, joins).
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub setup_timeout: Duration,
    /// After the last send, how long to wait for the stragglers of a scenario whose
    /// deliveries cannot be counted up front (churn, typing), and for the presence
    /// flood to calm down after `idle`.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub settle: Duration,
    /// Server process id: report its CPU time per delivery and its memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// More server processes (the other nodes of a cluster, comma-separated): their
    /// CPU time and memory are added to `--server-pid`'s.
    #[arg(long, value_delimiter = ',')]
    pub also_server_pid: Vec<u32>,
    /// Loopback source addresses to spread connections over (127.0.0.<first>..),
    /// so that N is not limited by one address's ephemeral ports; 0 = let the OS
    /// choose. Only used when the server address is loopback.
    #[arg(long, default_value_t = 16)]
    pub sources: u8,
    /// Last octet of the first source address.
    #[arg(long, default_value_t = 2)]
    pub first_source: u8,
    /// Worker processes to split the connections over (idle, fanout, storm); one
    /// process may hold only about 19.9k file descriptors on the bench machines.
    #[arg(long, default_value_t = 1)]
    pub procs: usize,
    /// Connection attempts in flight at once while connecting.
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,
    /// Give up on one connection attempt (upgrade + READY) after this long.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub ready_timeout: Duration,
    /// Concurrent REST calls while creating bots and joining.
    #[arg(long, default_value_t = 32)]
    pub setup_concurrency: usize,
    /// Public servers to spread the members over (member i joins server i mod K).
    /// With K = N no member shares a server with another, so `idle` measures connect
    /// and READY without the v1 presence flood. Only idle and storm run with K > 1:
    /// the other scenarios count deliveries to the first server's channel.
    #[arg(long, default_value_t = 1)]
    pub servers: usize,
    /// Members join the server only once the first scenario has them all connected
    /// (READY without the server): no connect announces presence to anyone, so a
    /// large N is not dominated by the v1 presence flood (N² frames). Every later
    /// connect of the run (storm, churn) announces as usual.
    #[arg(long)]
    pub join_after_connect: bool,
    /// Churn: connections dropped and reconnected per second.
    #[arg(long, default_value_t = 10.0)]
    pub churn_rate: f64,
    /// Reconnect backoff: bound of the first attempt (storm, churn, failed connects).
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub backoff_base: Duration,
    /// Reconnect backoff: largest bound.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub backoff_cap: Duration,
    /// Audio: speakers per voice channel (the channels are N / (speakers + listeners)).
    #[arg(long, default_value_t = 2)]
    pub audio_speakers: usize,
    /// Audio: listeners per voice channel.
    #[arg(long, default_value_t = 10)]
    pub audio_listeners: usize,
    /// Audio: each speaker pushes all its chunks (`--messages` of them) at once, as a
    /// bot playing a file does, instead of one every 20 ms.
    #[arg(long)]
    pub audio_ahead: bool,
    /// Print only the JSON lines (no table, no progress).
    #[arg(long)]
    pub json: bool,
    /// Internal: run as a worker process fed by the parent over stdin.
    #[arg(long, hide = true)]
    pub worker: bool,
}

/// Parses `250ms`, `30s`, `5m`, `1h` or a bare number of seconds (fractions allowed).
///
/// # Errors
/// A text that is none of these.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 30s or 5m"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown duration unit {other:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

impl BenchArgs {
    /// Checks combinations clap cannot express.
    ///
    /// # Errors
    /// A description of the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if self.procs == 0 {
            return Err("--procs must be at least 1".into());
        }
        if self.in_flight == 0 || self.connect_concurrency == 0 || self.setup_concurrency == 0 {
            return Err(
                "--in-flight, --connect-concurrency and --setup-concurrency must be positive"
                    .into(),
            );
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return Err("--rate must be a non-negative number".into());
        }
        if !(self.churn_rate >= 0.0 && self.churn_rate.is_finite()) {
            return Err("--churn-rate must be a non-negative number".into());
        }
        if self.servers == 0 || self.servers > self.connections {
            return Err("--servers must be between 1 and --connections".into());
        }
        if self.servers > 1 {
            self.only(
                |s| matches!(s, Scenario::Idle | Scenario::Storm),
                "--servers > 1 supports idle and storm; run {} with --servers 1",
            )?;
        }
        if self.procs > 1 {
            self.only(
                |s| matches!(s, Scenario::Idle | Scenario::Fanout | Scenario::Storm),
                "--procs > 1 supports idle, fanout and storm; run {} with --procs 1",
            )?;
        }
        if self.backoff_base.is_zero() || self.backoff_cap < self.backoff_base {
            return Err("need 0 < --backoff-base <= --backoff-cap".into());
        }
        Ok(())
    }

    /// Fails with `message`, its `{}` replaced by the scenarios asked for that
    /// `supported` refuses.
    fn only(&self, supported: fn(&Scenario) -> bool, message: &str) -> Result<(), String> {
        let refused: Vec<&str> = self
            .scenario
            .iter()
            .filter(|s| !supported(s))
            .map(|s| s.name())
            .collect();
        if refused.is_empty() {
            Ok(())
        } else {
            Err(message.replace("{}", &refused.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.url, "http://127.0.0.1:8080");
        assert_eq!(a.scenario, [Scenario::Idle]);
        assert_eq!(a.connections, 100);
        assert_eq!(a.messages, 200);
        assert_eq!(a.in_flight, 8);
        assert_eq!(a.duration, Duration::from_secs(60));
        assert_eq!(a.sources, 16);
        assert_eq!(a.first_source, 2);
        assert_eq!(a.procs, 1);
        assert_eq!(a.servers, 1);
        assert_eq!(a.backoff_base, Duration::from_secs(1));
        assert_eq!(a.backoff_cap, Duration::from_secs(30));
        assert!(!a.json && !a.worker);
        assert_eq!(a.protocol, Protocol::V1);
        assert_eq!(a.validate(), Ok(()));
    }

    #[test]
    fn protocol_versions() {
        assert_eq!(parse(&["--protocol", "1"]).unwrap().protocol, Protocol::V1);
        let a = parse(&["--protocol", "2"]).unwrap();
        assert_eq!(a.protocol, Protocol::V2);
        assert_eq!(a.protocol.number(), 2);
        assert_eq!(Protocol::V1.number(), 1);
        assert!(parse(&["--protocol", "3"]).is_err());
        assert!(parse(&["--protocol", "v2"]).is_err());
    }

    #[test]
    fn scenario_list_and_aliases() {
        let a = parse(&[
            "--scenario",
            "idle,fanout,storm",
            "-n",
            "1000",
            "--count",
            "50",
            "--duration",
            "2m",
            "--server-pid",
            "77",
            "--json",
        ])
        .unwrap();
        assert_eq!(
            a.scenario,
            [Scenario::Idle, Scenario::Fanout, Scenario::Storm]
        );
        assert_eq!(a.connections, 1000);
        assert_eq!(a.messages, 50);
        assert_eq!(a.duration, Duration::from_secs(120));
        assert_eq!(a.server_pid, Some(77));
        assert!(a.json);
        assert!(parse(&["--scenario", "nope"]).is_err());
        assert!(parse(&["--duration", "forever"]).is_err());
    }

    #[test]
    fn validation() {
        let mut a = parse(&["--procs", "3", "--scenario", "fanout,typing"]).unwrap();
        assert!(a.validate().unwrap_err().contains("typing"));
        a.scenario = vec![Scenario::Idle, Scenario::Fanout];
        assert_eq!(a.validate(), Ok(()));
        a.connections = 0;
        assert!(a.validate().is_err());
        let a = parse(&["--rate", "-3"]);
        assert!(a.is_err() || a.unwrap().validate().is_err());
        let a = parse(&["--backoff-base", "10s", "--backoff-cap", "1s"]).unwrap();
        assert!(a.validate().is_err());

        let mut a = parse(&["-n", "10", "--servers", "10", "--scenario", "idle,storm"]).unwrap();
        assert_eq!(a.validate(), Ok(()));
        a.scenario.push(Scenario::Fanout);
        assert!(a.validate().unwrap_err().contains("fanout"));
        a.scenario.pop();
        a.servers = 11;
        assert!(a.validate().is_err());
        a.servers = 0;
        assert!(a.validate().is_err());
    }
}
