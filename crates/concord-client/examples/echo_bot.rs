//! A bot that answers `!echo <text>` with `<text>` in the same channel.
//!
//! Create a bot (`POST /bots` as a human, or in the web client), add its user to a
//! server, then:
//!
//! ```text
//! CONCORD_BOT_TOKEN=<token> cargo run -p concord-client --example echo_bot
//! ```
//!
//! `CONCORD_URL` names the server (default `http://127.0.0.1:8080`, as `concord serve`).

use concord_client::{
    BotToken, Event, Gateway, GatewayConfig, GatewayEvent, RestClient, protocol::UserId,
};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("CONCORD_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let token = std::env::var("CONCORD_BOT_TOKEN").map_err(|_| "set CONCORD_BOT_TOKEN")?;
    let ws = format!("{}/ws", url.trim_end_matches('/').replacen("http", "ws", 1));

    // REST with the static token; the gateway with access tokens traded for it.
    let rest = RestClient::new(&url).with_bot_token(&token);
    let gateway = Gateway::new(GatewayConfig::new(ws, BotToken::with_client(&rest, &token)));
    let mut events = gateway.events();
    gateway.connect().await?;

    let mut me: Option<UserId> = None;
    while let Some(event) = events.next().await {
        match event {
            Event::Dispatch {
                event: GatewayEvent::Ready(ready),
                ..
            } => {
                println!("ready as {}", ready.user.username);
                me = Some(ready.user.id);
            }
            Event::Dispatch {
                event: GatewayEvent::MessageCreate(message),
                ..
            } => {
                // Never answer ourselves.
                if message.author_id.is_none() || message.author_id == me {
                    continue;
                }
                if let Some(text) = message.content.strip_prefix("!echo ")
                    && let Err(err) = rest.send_message(message.channel_id, text).await
                {
                    eprintln!("could not answer: {err}");
                }
            }
            Event::Reconnecting { attempt, delay, .. } => {
                eprintln!("reconnecting (attempt {attempt}, in {delay:?})");
            }
            Event::Closed { reason, .. } => eprintln!("closed: {reason}"),
            _ => {}
        }
    }
    Ok(())
}
