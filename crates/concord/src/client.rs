//! The client commands: `tail`, `login` and `send`, all through the SDK
//! (`concord-client`).

use std::time::Duration;

use anyhow::{Context, bail};
use concord_client::{
    BotToken, Event, Gateway, GatewayConfig, RefreshToken, RestClient, RestError, StaticToken,
    protocol::ChannelId,
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
