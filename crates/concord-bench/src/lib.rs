#![doc = include_str!("../README.md")]

mod args;
mod audio;
mod backoff;
mod content;
mod fleet;
mod procfs;
mod remote;
mod report;
mod rest;
mod scenarios;
mod stats;
mod target;

use std::{
    io::Write,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::Value;
use target::Target;

pub use args::{BenchArgs, Protocol, Scenario, parse_duration};

/// The fleet's per-frame receive work, for the `decoder` criterion bench only
/// (`benches/decoder.rs`): not part of the bench's interface.
#[doc(hidden)]
pub mod receive {
    use concord_client::{GatewayEvent, protocol::ServerMessage, raw};

    use crate::content::{Marker, Stamp, event_name};

    /// What a receiver takes from one MESSAGE_CREATE frame: the event name and the
    /// stamp (`seq`, `sent_ns`) of this run.
    pub type Seen<'a> = (&'a str, Option<(u64, u64)>);

    /// A run's marker and both ways of reading a frame.
    #[derive(Debug, Clone)]
    pub struct Receive {
        marker: Marker,
    }

    impl Receive {
        /// For run `run_id`.
        pub fn new(run_id: &str) -> Self {
            Self {
                marker: Marker::new(run_id),
            }
        }

        /// The message content the bench sends: the stamp padded to `size` bytes.
        pub fn content(&self, seq: u64, sent_ns: u64, size: usize) -> String {
            self.marker.encode(Stamp { seq, sent_ns }, size)
        }

        /// The fleet's lean path (`fleet/conn.rs`, `on_text`): the event name by
        /// scanning, then the stamp found in the raw text.
        pub fn lean<'a>(&self, text: &'a str) -> Option<Seen<'a>> {
            let name = event_name(text)?;
            let stamp = self.marker.find(text).map(|s| (s.seq, s.sent_ns));
            Some((name, stamp))
        }

        /// The SDK's path: the message typed with [`raw::decode`], then the stamp
        /// found in the typed message's content.
        pub fn sdk(&self, message: &[u8]) -> Option<(ServerMessage, Option<(u64, u64)>)> {
            let message = raw::decode(message).ok()?;
            let stamp = match &message {
                ServerMessage::Dispatch {
                    event: GatewayEvent::MessageCreate(m),
                    ..
                } => self.marker.find(&m.content).map(|s| (s.seq, s.sent_ns)),
                _ => None,
            };
            Some((message, stamp))
        }
    }
}

/// Runs the bench as `args` says and prints one JSON line per scenario on stdout
/// (plus a table and a progress line on stderr unless `--json`).
///
/// # Errors
/// Bad arguments, a server that cannot be reached or refuses the setup, or a worker
/// process that fails.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    run_to(args, &mut stdout).await.map(|_| ())
}

/// Like [`run`], writing the JSON lines to `out`; also returns the summaries.
///
/// # Errors
/// As [`run`].
pub async fn run_to(args: BenchArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<Vec<Value>> {
    if args.worker {
        remote::worker_main().await?;
        return Ok(Vec::new());
    }
    args.validate().map_err(anyhow::Error::msg)?;
    let per_process = args.connections.div_ceil(args.procs);
    if let Some(limit) = procfs::own_open_files_limit() {
        // Room for the REST pool, stdio and the runtime besides the sockets.
        let room = limit.saturating_sub(256);
        if per_process as u64 > room {
            bail!(
                "{per_process} connections per process exceed the open-files limit of {limit}; \
                 use --procs {}",
                args.connections
                    .div_ceil(usize::try_from(room.max(1)).unwrap_or(1))
            );
        }
    }
    let progress = !args.json;
    let target = Target::resolve(
        &args.url,
        args.ws_url.as_deref(),
        &args.also_ws_url,
        args.sources,
        args.first_source,
        args.protocol,
    )
    .await?;
    let rest = Arc::new(rest::Rest::new(&args.url, &target.sources)?);
    let run_id = backoff::Rng::from_entropy(u64::from(std::process::id())).id(8);
    if progress {
        eprintln!(
            "bench run {run_id}: {} connections against {} (protocol v{}, {} source addresses, {} process(es))",
            args.connections,
            target.ws_url,
            args.protocol.number(),
            target.sources.len().max(1),
            args.procs
        );
    }
    let setup_started = Instant::now();
    let world = rest::World::create(
        &rest,
        &run_id,
        args.connections,
        args.servers,
        !args.join_after_connect,
        args.setup_concurrency,
        setup_started + args.setup_timeout,
        progress,
    )
    .await
    .context("creating the bench world")?;
    if progress {
        eprintln!(
            "world ready in {:.1}s: server {} channel {} ({} server(s) in all)",
            setup_started.elapsed().as_secs_f64(),
            world.server_id,
            world.channel_id,
            args.servers
        );
    }
    let scenarios = args.scenario.clone();
    let ctx = scenarios::Ctx {
        args,
        rest,
        world,
        target,
        run_id,
        progress,
    };
    let mut summaries = Vec::new();
    for (i, scenario) in scenarios.iter().enumerate() {
        if i > 0 {
            settle_server(&ctx).await;
        }
        let summary = scenarios::run(&ctx, *scenario)
            .await
            .with_context(|| format!("scenario {}", scenario.name()))?;
        if progress {
            eprint!("{}", report::table(&summary));
        }
        writeln!(out, "{summary}")?;
        out.flush()?;
        summaries.push(summary);
    }
    Ok(summaries)
}

/// Between scenarios: wait until the server has digested the previous one (its
/// disconnect presence flood, for instance), so one scenario's cost is not billed to
/// the next. Bounded: at most 30 s.
async fn settle_server(ctx: &scenarios::Ctx) {
    let Some(pid) = ctx.args.server_pid else {
        tokio::time::sleep(ctx.args.settle).await;
        return;
    };
    let step = Duration::from_millis(250);
    let give_up = Instant::now() + Duration::from_secs(30);
    let mut last = procfs::ProcSample::read_sum(pid, &ctx.args.also_server_pid);
    let mut calm = 0;
    while calm < 2 && Instant::now() < give_up {
        tokio::time::sleep(step).await;
        let now = procfs::ProcSample::read_sum(pid, &ctx.args.also_server_pid);
        let busy_us = match (last, now) {
            (Some(a), Some(b)) => b.cpu_us.saturating_sub(a.cpu_us),
            _ => return,
        };
        // Under 5% of one core counts as idle.
        calm = if busy_us * 20 < 250_000 { calm + 1 } else { 0 };
        last = now;
    }
}
