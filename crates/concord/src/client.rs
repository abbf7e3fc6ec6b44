//! The client commands: `tail`, `login`, `send` and `voice`, all through the SDK
//! (`concord-client`).

use std::{collections::HashMap, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use concord_client::{
    BotToken, Event, Gateway, GatewayConfig, RefreshToken, RestClient, RestError, StaticToken,
    audio::{AudioFormat, MediaEndReason, PcmAudio, SpeakerStream, StreamEnd, WavRecorder},
    protocol::{ChannelId, UserId},
};
use futures_util::StreamExt;

/// Where the server is and who to be.
#[derive(Debug, clap::Args)]
pub(crate) struct Connection {
    /// The server's base URL.
    #[arg(long, env = "CONCORD_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An access token (as `concord login` prints it).
    #[arg(long, env = "CONCORD_TOKEN", conflicts_with_all = ["bot_token", "username"])]
    token: Option<String>,
    /// A bot's static token.
    #[arg(long, env = "CONCORD_BOT_TOKEN", conflicts_with = "username")]
    bot_token: Option<String>,
    /// Log in as this user (with --password).
    #[arg(long, requires = "password")]
    username: Option<String>,
    /// The password of --username.
    #[arg(long, env = "CONCORD_PASSWORD", requires = "username")]
    password: Option<String>,
}

/// Print every gateway event as one JSON line on stdout.
#[derive(Debug, clap::Args)]
pub(crate) struct TailArgs {
    #[command(flatten)]
    connection: Connection,
    /// Only these events (comma-separated names, e.g. MESSAGE_CREATE,TYPING_START).
    #[arg(long, value_delimiter = ',')]
    events: Vec<String>,
}

/// Log in and print the tokens as JSON.
#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// The server's base URL.
    #[arg(long, env = "CONCORD_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Username.
    #[arg(long)]
    username: String,
    /// Password.
    #[arg(long, env = "CONCORD_PASSWORD")]
    password: String,
}

/// Send a message to a channel and print it as JSON.
#[derive(Debug, clap::Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    connection: Connection,
    /// The channel's id.
    #[arg(long)]
    channel: ChannelId,
    /// The message.
    text: String,
}

/// Audio over the gateway: play a WAV into a voice channel, or record one.
#[derive(Debug, clap::Args)]
pub(crate) struct VoiceArgs {
    #[command(subcommand)]
    command: VoiceCommand,
}

#[derive(Debug, clap::Subcommand)]
enum VoiceCommand {
    /// Join a voice channel, play a WAV file (16-bit PCM mono, 16 or 48 kHz) into it,
    /// wait until the last chunk has been heard, leave, and print a JSON summary.
    Play(PlayArgs),
    /// Join a voice channel and record every speaker's stream into its own WAV file
    /// (`DIR/<user_id>.wav`, then `<user_id>-2.wav` …), printing one JSON line per
    /// finished file. Ctrl-C or SIGTERM finishes the open files and leaves.
    Record(RecordArgs),
}

/// `concord voice play`.
#[derive(Debug, clap::Args)]
struct PlayArgs {
    #[command(flatten)]
    connection: Connection,
    /// The voice channel's id.
    #[arg(long)]
    channel: ChannelId,
    /// The WAV file: 16-bit PCM, mono, 16000 or 48000 Hz (not converted).
    file: PathBuf,
}

/// `concord voice record`.
#[derive(Debug, clap::Args)]
struct RecordArgs {
    #[command(flatten)]
    connection: Connection,
    /// The voice channel's id.
    #[arg(long)]
    channel: ChannelId,
    /// The directory the WAV files go to (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Exit once this many speaker streams have ended (default: run until Ctrl-C).
    #[arg(long, alias = "max-streams", value_name = "N")]
    exit_after_streams: Option<u32>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// A REST error as a person reads it.
fn explain(err: RestError, url: &str, what: &str) -> anyhow::Error {
    match err {
        RestError::Transport(cause) => {
            anyhow::anyhow!("{what}: cannot reach the server at {url} ({cause})")
        }
        RestError::Http {
            status, message, ..
        } => anyhow::anyhow!("{what}: the server refused (HTTP {status}): {message}"),
        other => anyhow::anyhow!("{what}: {other}"),
    }
}

impl Connection {
    fn rest(&self) -> RestClient {
        RestClient::new(&self.url)
    }

    /// The gateway URL of the base URL.
    fn ws_url(&self) -> anyhow::Result<String> {
        let base = self.url.trim_end_matches('/');
        if let Some(rest) = base.strip_prefix("http://") {
            Ok(format!("ws://{rest}/ws"))
        } else if let Some(rest) = base.strip_prefix("https://") {
            Ok(format!("wss://{rest}/ws"))
        } else if base.starts_with("ws://") || base.starts_with("wss://") {
            Ok(format!("{base}/ws"))
        } else {
            bail!("--url must be http://host[:port] or https://host[:port]: {base}")
        }
    }

    /// An authenticated REST client and a token provider for the gateway.
    async fn login(&self) -> anyhow::Result<(RestClient, Box<dyn FnOnce() -> GatewayConfig>)> {
        let rest = self.rest();
        let ws = self.ws_url()?;
        if let Some(token) = &self.token {
            let config = GatewayConfig::new(ws, StaticToken::token(token.clone()));
            // Checked now, so that a bad token or a server that is down says so at once.
            let rest = rest.with_bearer(token);
            rest.me()
                .await
                .map_err(|e| explain(e, &self.url, "checking the token"))?;
            Ok((rest, Box::new(move || config)))
        } else if let Some(bot) = &self.bot_token {
            let rest = rest.with_bot_token(bot);
            rest.me()
                .await
                .map_err(|e| explain(e, &self.url, "checking the bot token"))?;
            let provider = BotToken::with_client(&rest, bot);
            Ok((rest, Box::new(move || GatewayConfig::new(ws, provider))))
        } else if let (Some(user), Some(password)) = (&self.username, &self.password) {
            let auth = rest
                .login(user, password)
                .await
                .map_err(|e| explain(e, &self.url, "logging in"))?;
            let provider =
                RefreshToken::with_access(&self.url, &auth.access_token, auth.refresh_token);
            let rest = rest.with_bearer(&auth.access_token);
            Ok((rest, Box::new(move || GatewayConfig::new(ws, provider))))
        } else {
            bail!("give --token, --bot-token, or --username and --password")
        }
    }
}

/// `concord tail`.
pub(crate) fn tail(args: TailArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let (_, config) = args.connection.login().await?;
        let gateway = Gateway::new(config());
        let mut events = gateway.events();
        gateway
            .connect()
            .await
            .context("connecting to the gateway")?;
        let wanted = |name: &str| args.events.is_empty() || args.events.iter().any(|e| e == name);
        let mut last_error = None;
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                _ = tokio::signal::ctrl_c() => {
                    gateway.disconnect().await;
                    break;
                }
            };
            let Some(event) = event else { break };
            match event {
                Event::Dispatch { seq, event } => {
                    if wanted(event.name()) {
                        let line = serde_json::json!({
                            "t": event.name(),
                            "s": seq,
                            "d": event.payload().context("encoding an event")?,
                        });
                        println!("{line}");
                    }
                }
                Event::Open => eprintln!("state: open"),
                Event::Ready { session_id } => {
                    eprintln!("state: ready session={}", session_id.unwrap_or_default());
                }
                Event::Resumed { replayed } => eprintln!("state: resumed replayed={replayed}"),
                Event::Reconnecting {
                    attempt,
                    delay,
                    code,
                } => eprintln!(
                    "state: reconnecting attempt={attempt} delay_ms={} code={}",
                    delay.as_millis(),
                    code.map_or_else(|| "none".into(), |c| c.to_string())
                ),
                Event::Closed { code, reason } => {
                    eprintln!(
                        "state: closed code={} reason={reason}",
                        code.map_or_else(|| "none".into(), |c| c.to_string())
                    );
                    last_error = Some(format!("the gateway closed for good: {reason}"));
                }
                Event::Refused(error) => eprintln!("state: refused {error:?}"),
                other => eprintln!("state: {other:?}"),
            }
        }
        match last_error {
            Some(err) if gateway.state() == concord_client::ReadyState::Closed => bail!(err),
            _ => Ok(()),
        }
    })
}

/// `concord login`.
pub(crate) fn login(args: LoginArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let auth = RestClient::new(&args.url)
            .login(&args.username, &args.password)
            .await
            .map_err(|e| explain(e, &args.url, "logging in"))?;
        let out = serde_json::json!({
            "access_token": auth.access_token,
            "refresh_token": auth.refresh_token,
            "user_id": auth.user.id,
            "username": auth.user.username,
        });
        println!("{out}");
        Ok(())
    })
}

/// `concord send`.
pub(crate) fn send(args: SendArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let url = args.connection.url.clone();
        let rest = match (&args.connection.token, &args.connection.bot_token) {
            (Some(token), _) => args.connection.rest().with_bearer(token),
            (None, Some(bot)) => args.connection.rest().with_bot_token(bot),
            (None, None) => args.connection.login().await?.0,
        };
        let message = rest
            .with_timeout(Duration::from_secs(30))
            .send_message(args.channel, &args.text)
            .await
            .map_err(|e| explain(e, &url, "sending"))?;
        println!(
            "{}",
            serde_json::to_string(&message).context("encoding the message")?
        );
        Ok(())
    })
}

/// `concord voice`.
pub(crate) fn voice(args: VoiceArgs) -> anyhow::Result<()> {
    match args.command {
        VoiceCommand::Play(args) => play(args),
        VoiceCommand::Record(args) => record(args),
    }
}

/// The wire name of a stream's end, for the JSON lines.
fn end_name(end: Option<StreamEnd>) -> String {
    match end {
        Some(StreamEnd::Media(reason)) => reason_name(reason),
        Some(StreamEnd::SessionLost) => "session_lost".into(),
        Some(_) => "unknown".into(),
        None => "interrupted".into(),
    }
}

fn reason_name(reason: MediaEndReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{reason:?}"))
}

/// `concord voice play`.
fn play(args: PlayArgs) -> anyhow::Result<()> {
    // A file that cannot be played fails before anything is joined.
    let audio = PcmAudio::read_wav(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    runtime()?.block_on(async move {
        let url = args.connection.url.clone();
        let (rest, config) = args.connection.login().await?;
        rest.join_voice(args.channel)
            .await
            .map_err(|e| explain(e, &url, "joining the voice channel"))?;
        let gateway = Gateway::new(config());
        let played = async {
            gateway
                .connect()
                .await
                .context("connecting to the gateway")?;
            let chunks = audio.chunks();
            let sent = gateway
                .send_audio(audio.format, futures_util::stream::iter(chunks))
                .await
                .context("streaming the audio")?;
            eprintln!("voice: {sent} chunks sent; waiting until they have been heard");
            let reason = gateway
                .audio_end()
                .await
                .context("waiting for the end of the stream")?;
            if reason != MediaEndReason::Stopped {
                bail!(
                    "the stream ended early: {} (not all of the file was heard)",
                    reason_name(reason)
                );
            }
            Ok(sent)
        };
        let played = tokio::select! {
            played = played => played,
            () = crate::shutdown_signal() => {
                let _ = gateway.clear_audio().await;
                Err(anyhow::anyhow!("interrupted"))
            }
        };
        // Leave before the gateway goes: the server drops the voice state of a user
        // whose last session closes, and then a leave finds nothing to leave.
        let left = leave(&rest, args.channel).await;
        gateway.disconnect().await;
        let sent = played?;
        left.map_err(|e| explain(e, &url, "leaving the voice channel"))?;
        let summary = serde_json::json!({
            "file": args.file.display().to_string(),
            "format": audio.format.as_str(),
            "samples": audio.samples.len(),
            "chunks": sent,
            "reason": "stopped",
        });
        println!("{summary}");
        Ok(())
    })
}

/// `DELETE /channels/{id}/voice`; not being in it (any more) is no error.
async fn leave(rest: &RestClient, channel: ChannelId) -> Result<(), RestError> {
    match rest.leave_voice(channel).await {
        Err(RestError::Http { status: 404, .. }) => Ok(()),
        other => other,
    }
}

/// What a recorded stream became.
struct Recorded {
    user_id: UserId,
    format: AudioFormat,
    file: Option<PathBuf>,
    chunks: u64,
    samples: u32,
    gaps: u64,
    end: Option<StreamEnd>,
}

/// Writes one speaker stream into `file` (PCM; Opus is drained and skipped) until
/// it ends or `stop` says so; the file is finalized either way.
async fn record_stream(
    mut stream: SpeakerStream,
    file: PathBuf,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Recorded> {
    let mut recorder = if stream.format == AudioFormat::Opus48k {
        eprintln!(
            "voice: warning: {} speaks opus_48k, which is not recorded (no Opus decoder); skipped",
            stream.user_id
        );
        None
    } else {
        Some(
            WavRecorder::create(&file, stream.format)
                .with_context(|| format!("creating {}", file.display()))?,
        )
    };
    let (mut chunks, mut gaps, mut last) = (0u64, 0u64, None::<u32>);
    let stopped = loop {
        let chunk = tokio::select! {
            chunk = stream.recv() => chunk,
            _ = stop.wait_for(|stop| *stop) => break true,
        };
        let Some(chunk) = chunk else { break false };
        if last.is_some_and(|last| chunk.sequence != last.wrapping_add(1)) {
            gaps += 1;
        }
        last = Some(chunk.sequence);
        chunks += 1;
        if let Some(recorder) = recorder.as_mut() {
            recorder
                .write_chunk(&chunk.payload)
                .with_context(|| format!("writing {}", file.display()))?;
        }
    };
    let samples = match recorder {
        Some(recorder) => recorder
            .finalize()
            .with_context(|| format!("finishing {}", file.display()))?,
        None => 0,
    };
    Ok(Recorded {
        user_id: stream.user_id,
        format: stream.format,
        file: (stream.format != AudioFormat::Opus48k).then_some(file),
        chunks,
        samples,
        gaps: gaps + stream.dropped(),
        end: if stopped { None } else { stream.end() },
    })
}

/// `concord voice record`.
fn record(args: RecordArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    runtime()?.block_on(async move {
        let url = args.connection.url.clone();
        let (rest, config) = args.connection.login().await?;
        rest.join_voice(args.channel)
            .await
            .map_err(|e| explain(e, &url, "joining the voice channel"))?;
        let gateway = Gateway::new(config());
        let mut streams = gateway.audio();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut writers = tokio::task::JoinSet::new();
        let recorded = async {
            gateway
                .connect()
                .await
                .context("connecting to the gateway")?;
            gateway
                .subscribe_audio(None)
                .await
                .context("subscribing to the channel's audio")?;
            eprintln!(
                "voice: recording channel {} into {}",
                args.channel,
                args.out.display()
            );
            let mut per_user: HashMap<UserId, u32> = HashMap::new();
            let mut ended = 0u32;
            loop {
                if args.exit_after_streams.is_some_and(|n| ended >= n) {
                    return Ok(());
                }
                tokio::select! {
                    stream = streams.recv() => {
                        let Some(stream) = stream else {
                            bail!("the gateway closed");
                        };
                        let n = per_user.entry(stream.user_id).or_insert(0);
                        *n += 1;
                        let name = if *n == 1 {
                            format!("{}.wav", stream.user_id)
                        } else {
                            format!("{}-{n}.wav", stream.user_id)
                        };
                        eprintln!("voice: {} started ({})", stream.user_id, stream.format.as_str());
                        writers.spawn(record_stream(stream, args.out.join(name), stopped.clone()));
                    }
                    Some(done) = writers.join_next() => {
                        report(done)?;
                        ended += 1;
                    }
                    () = crate::shutdown_signal() => return Ok(()),
                }
            }
        };
        let result: anyhow::Result<()> = recorded.await;
        // Finish every file still open.
        let _ = stop.send(true);
        while let Some(done) = writers.join_next().await {
            if let Err(err) = report(done) {
                eprintln!("voice: {err:#}");
            }
        }
        let left = leave(&rest, args.channel).await;
        gateway.disconnect().await;
        result?;
        left.map_err(|e| explain(e, &url, "leaving the voice channel"))?;
        Ok(())
    })
}

/// Prints one finished stream as a JSON line.
fn report(done: Result<anyhow::Result<Recorded>, tokio::task::JoinError>) -> anyhow::Result<()> {
    let recorded = done.context("a recording task failed")??;
    let line = serde_json::json!({
        "user_id": recorded.user_id,
        "format": recorded.format.as_str(),
        "file": recorded.file.map(|f| f.display().to_string()),
        "chunks": recorded.chunks,
        "samples": recorded.samples,
        "gaps": recorded.gaps,
        "reason": end_name(recorded.end),
    });
    println!("{line}");
    Ok(())
}
