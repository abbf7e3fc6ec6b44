//! Route: ICE servers for WebRTC voice (`rest.md` §7.19).
//!
//! TURN credentials follow the "TURN REST API" convention that coturn implements with
//! `use-auth-secret`: the user name carries its own expiry, the password is an HMAC of
//! it under the shared secret, so the TURN server needs no call back to us.

use axum::extract::State;
use base64::Engine;
use concord_protocol::{IceServer, IceServers, Timestamp};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{auth::Principal, state::AppState};

/// How long TURN credentials stay valid, in seconds (also the answer's `ttl`).
const CREDENTIAL_TTL_SECS: i64 = 86_400;

const STUN_SERVERS: [&str; 2] = [
    "stun:stun.l.google.com:19302",
    "stun:stun1.l.google.com:19302",
];

/// The ice routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ice_servers))
}

#[utoipa::path(
    get,
    path = "/ice-servers",
    tag = "ice",
    description = "STUN servers, and the configured TURN server with short-lived \
                   credentials (TURN REST API convention).",
    security(("bearer" = []), ("bot_token" = [])),
    responses(
        (status = 200, description = "The ICE servers.", body = IceServers),
    ),
)]
async fn ice_servers(
    State(state): State<AppState>,
    principal: Principal,
) -> axum::Json<IceServers> {
    let mut servers: Vec<IceServer> = STUN_SERVERS
        .iter()
        .map(|url| IceServer {
            urls: (*url).to_owned(),
            username: None,
            credential: None,
        })
        .collect();
    if let (Some(url), Some(secret)) = (&state.config.ice.turn_url, &state.config.ice.turn_secret) {
        let expiry = Timestamp::now().as_secs() + CREDENTIAL_TTL_SECS;
        let username = format!("{expiry}:{}", principal.user.username);
        servers.push(IceServer {
            urls: url.clone(),
            credential: Some(turn_credential(secret, &username)),
            username: Some(username),
        });
    }
    axum::Json(IceServers {
        ice_servers: servers,
        ttl: CREDENTIAL_TTL_SECS,
    })
}

/// base64(HMAC-SHA1(secret, username)).
fn turn_credential(secret: &str, username: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_matches_a_known_hmac_sha1() {
        // RFC 2202 test case 2: HMAC-SHA1("Jefe", "what do ya want for nothing?").
        let expected = base64::engine::general_purpose::STANDARD
            .encode(hex::decode("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79").unwrap());
        assert_eq!(
            turn_credential("Jefe", "what do ya want for nothing?"),
            expected
        );
    }
}
