//! `concord`: the Concord chat server.

use std::{net::SocketAddr, path::PathBuf};

mod client;

use anyhow::Context;
use clap::{Parser, Subcommand};
use concord_server::{Config, config::LogFormat};

/// Concord: a self-hosted real-time chat server (Together-compatible).
///
/// `concord serve` starts the server with its built-in web client: open the address it
/// logs (http://127.0.0.1:8080/ by default) in a browser and chat.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server and its web client (SQLite in the data directory, no setup needed).
    Serve(ServeArgs),
    /// Load-test a server speaking the Together REST API and v1 gateway.
    Bench(concord_bench::BenchArgs),
    /// Connect to a server's gateway and print every event as one JSON line
    /// (connection states on stderr), reconnecting and resuming as needed.
    Tail(client::TailArgs),
    /// Log in and print the tokens as JSON.
    Login(client::LoginArgs),
    /// Send a message to a channel.
    Send(client::SendArgs),
    /// Play a WAV file into a voice channel, or record a voice channel into WAV
    /// files, over the gateway (no WebRTC).
    Voice(client::VoiceArgs),
}

/// Settings come from built-in defaults, then the configuration file, then `CONCORD_*`
/// environment variables, then these flags.
#[derive(Debug, clap::Args)]
#[command(after_help = SERVE_ENV)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]; port 0 picks a free port. The
    /// bound address is printed on stdout as the first line.
    #[arg(long, env = "CONCORD_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory for the database, generated secrets and emoji images
    /// [default: ./concord-data].
    #[arg(long, env = "CONCORD_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file [default: ./concord.toml if it exists, else none].
    #[arg(long, env = "CONCORD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The environment variables `serve` reads besides its flags'.
const SERVE_ENV: &str = "\
More environment variables (they override the configuration file):
  CONCORD_DATABASE_URL   database: sqlite://PATH or postgres://USER@HOST:PORT/DB
                         [default: sqlite://<data-dir>/concord.db]
  CONCORD_BUS_URL        bus between the nodes of a cluster: nats://HOST:PORT
                         [default: none, one node with an in-process bus]
  CONCORD_BUS_PREFIX     NATS subject prefix of the cluster [default: concord]
  CONCORD_BUS_HEARTBEAT_SECS   seconds between node heartbeats [default: 5]
  CONCORD_REGISTRATION   open | invite_only | closed [default: open]
  CONCORD_LOG_FORMAT     text | json [default: text]; RUST_LOG filters the logs
  CONCORD_JWT_SECRET     token signing secret, at least 32 characters
                         [default: generated into <data-dir>/jwt.secret]
  CONCORD_METRICS_TOKEN  bearer token opening GET /metrics from anywhere (>= 32 chars)
  CONCORD_TURN_URL, CONCORD_TURN_SECRET   TURN server for GET /ice-servers

Every key of the configuration file, with its default, is listed in README.md.";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Bench(args) => bench(args),
        Command::Tail(args) => client::tail(args),
        Command::Login(args) => client::login(args),
        Command::Send(args) => client::send(args),
        Command::Voice(args) => client::voice(args),
    }
}

fn bench(args: concord_bench::BenchArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(concord_bench::run(args))
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // The file in use is decided here, so that the start can say which one it is.
    let default_file = std::path::Path::new("concord.toml");
    let file = args
        .config
        .or_else(|| default_file.exists().then(|| default_file.to_path_buf()));
    let mut config = Config::load(file.as_deref(), |name| std::env::var(name).ok())
        .context("loading configuration")?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    concord_server::config_check::check(&config).context("configuration refused")?;
    init_logging(config.log_format);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(run(config, file))
}

async fn run(config: Config, file: Option<PathBuf>) -> anyhow::Result<()> {
    // Bind first: a start that fails on the address creates nothing on disk.
    let listener = concord_server::bind(config.listen, config.listen_backlog)
        .with_context(|| format!("binding {}", config.listen))?;
    let bound = listener.local_addr()?;
    let data_dir = config.data_dir.clone();
    let created = !data_dir.exists();
    let started = async {
        let store = concord_server::open_store(&config)
            .await
            .context("opening the database")?;
        concord_server::build_state(config, store)
            .await
            .context("starting")
    };
    let state = match started.await {
        Ok(state) => state,
        Err(err) => {
            // Leave no half-made data directory behind.
            if created {
                let _ = std::fs::remove_dir_all(&data_dir);
            }
            return Err(err);
        }
    };
    // First line of stdout: the bound address (useful with --listen 127.0.0.1:0).
    println!("{bound}");
    let config = &state.config;
    let data_dir = std::fs::canonicalize(&config.data_dir).unwrap_or(config.data_dir.clone());
    tracing::info!(
        data_dir = %data_dir.display(),
        database = %config.database_url_for_logs(),
        bus = %config.bus_url_for_logs().unwrap_or_else(|| "in-process (one node)".into()),
        config_file = %file.as_ref().map_or("none (defaults and environment)".into(), |f| f.display().to_string()),
        registration = %registration(config.registration),
        "concord starting"
    );
    tracing::info!(%bound, web_client = %format!("http://{}/", browsable(bound)), "concord listening");
    concord_server::serve(listener, state, shutdown_signal())
        .await
        .context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

/// The registration mode as the configuration spells it.
fn registration(mode: concord_server::config::RegistrationMode) -> &'static str {
    use concord_server::config::RegistrationMode;
    match mode {
        RegistrationMode::Open => "open",
        RegistrationMode::InviteOnly => "invite_only",
        RegistrationMode::Closed => "closed",
    }
}

/// The address a browser on this machine opens: a wildcard bind is reached on loopback.
fn browsable(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], bound.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, bound.port()))
        }
        _ => bound,
    }
}

/// Ctrl-C or SIGTERM: ends `serve`, and `voice record` (which then finalizes its files).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colours only for a terminal: log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
