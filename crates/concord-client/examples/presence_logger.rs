//! Logs every presence change the user can see, with the status it replaced.
//!
//! ```text
//! CONCORD_USERNAME=alice CONCORD_PASSWORD=... \
//!     cargo run -p concord-client --example presence_logger
//! ```
//!
//! `CONCORD_URL` names the server (default `http://127.0.0.1:8080`, as `concord serve`).

use concord_client::{
    Event, Gateway, GatewayConfig, GatewayEvent, RefreshToken, RestClient, presence::PresenceCache,
};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("CONCORD_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let username = std::env::var("CONCORD_USERNAME").map_err(|_| "set CONCORD_USERNAME")?;
    let password = std::env::var("CONCORD_PASSWORD").map_err(|_| "set CONCORD_PASSWORD")?;
    let ws = format!("{}/ws", url.trim_end_matches('/').replacen("http", "ws", 1));

    // Log in once; the gateway refreshes the access token whenever it needs one.
    let auth = RestClient::new(&url).login(&username, &password).await?;
    let tokens = RefreshToken::with_access(&url, auth.access_token, auth.refresh_token);
    let gateway = Gateway::new(GatewayConfig::new(ws, tokens));
    let mut events = gateway.events();
    gateway.connect().await?;

    let mut presence = PresenceCache::new();
    while let Some(event) = events.next().await {
        let Event::Dispatch { event, .. } = event else {
            continue;
        };
        if let GatewayEvent::PresenceUpdate(update) = &event {
            let before = presence.status(update.user_id);
            println!(
                "{}: {} -> {}{}",
                update.user_id,
                before.as_str(),
                update.status.as_str(),
                update
                    .custom_status
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            );
        }
        presence.handle(&event);
        if let GatewayEvent::Ready(_) = event {
            println!("ready: {} users known", presence.len());
        }
    }
    Ok(())
}
