//! `concord`: the Concord chat server.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use concord_server::{Config, config::LogFormat};

/// Concord: a self-hosted real-time chat server (Together-compatible).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (SQLite in the data directory, no setup needed).
    Serve(ServeArgs),
    /// Load-test a server speaking the Together REST API and v1 gateway.
    Bench(concord_bench::BenchArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. The bound address is printed on
    /// stdout as the first line.
    #[arg(long, env = "CONCORD_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory for the database and generated secrets.
    #[arg(long, env = "CONCORD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file (default: ./concord.toml if it exists).
    #[arg(long, env = "CONCORD_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Bench(args) => bench(args),
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
    let mut config = Config::load(args.config.as_deref(), |name| std::env::var(name).ok())
        .context("loading configuration")?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    init_logging(config.log_format);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let store = concord_server::open_store(&config)
        .await
        .context("opening the database")?;
    let listener = concord_server::bind(config.listen, config.listen_backlog)
        .with_context(|| format!("binding {}", config.listen))?;
    let bound = listener.local_addr()?;
    let state = concord_server::build_state(config, store)
        .await
        .context("starting")?;
    // First line of stdout: the bound address (useful with --listen 127.0.0.1:0).
    println!("{bound}");
    tracing::info!(%bound, "concord listening");
    concord_server::serve(listener, state, shutdown_signal())
        .await
        .context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

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
