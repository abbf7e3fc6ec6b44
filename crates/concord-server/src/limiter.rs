//! REST rate limits (`rest.md` §4): per client IP, stricter on auth routes, per bot.

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::HeaderMap,
    middleware::Next,
    response::{IntoResponse, Response},
};
use concord_protocol::UserId;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use crate::{config::Rate, error::ApiError, state::AppState};

/// The three keyed limiters.
#[derive(Debug)]
pub struct Limiters {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    auth_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_bot: DefaultKeyedRateLimiter<UserId>,
    login_per_account: DefaultKeyedRateLimiter<String>,
    trusted_proxies: Vec<IpAddr>,
    /// On a node of a cluster: bot requests let through since the node last told the
    /// others ([`Limiters::take_bot_requests`]); `None` on a lone node.
    bot_requests: std::sync::Mutex<Option<std::collections::HashMap<UserId, u32>>>,
    /// The per-bot burst: the most one report can take from a bucket.
    bot_burst: u32,
}

fn quota(rate: Rate) -> Quota {
    let per_second = NonZeroU32::new(rate.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(rate.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_second).allow_burst(burst)
}

fn slow_quota(rate: crate::config::PerMinute) -> Quota {
    let period = std::time::Duration::from_secs(60) / rate.per_minute.max(1);
    let burst = NonZeroU32::new(rate.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Limiters {
    /// Limiters from configuration.
    pub fn new(limits: &crate::config::Limits) -> Self {
        Self {
            per_ip: RateLimiter::keyed(quota(limits.rest_per_ip)),
            auth_per_ip: RateLimiter::keyed(quota(limits.auth_per_ip)),
            per_bot: RateLimiter::keyed(quota(limits.per_bot)),
            login_per_account: RateLimiter::keyed(slow_quota(limits.login_per_account)),
            trusted_proxies: limits.trusted_proxies.clone(),
            bot_requests: std::sync::Mutex::new(None),
            bot_burst: limits.per_bot.burst.max(1),
        }
    }

    /// The client's address: the peer, or for a trusted proxy the right-most
    /// `X-Forwarded-For` hop that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .rev()
            .find(|ip| !self.trusted_proxies.contains(ip))
            .unwrap_or(peer)
    }

    fn check(limiter: &DefaultKeyedRateLimiter<IpAddr>, ip: IpAddr) -> Result<(), ApiError> {
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            ApiError::too_many_requests(Some(wait.as_secs_f64().ceil().max(1.0) as u64))
        })
    }

    /// The per-bot limit (429 without `Retry-After`).
    ///
    /// # Errors
    /// 429 when exceeded.
    pub fn check_bot(&self, bot_user: UserId) -> Result<(), ApiError> {
        self.per_bot
            .check_key(&bot_user)
            .map_err(|_| ApiError::too_many_requests(None))?;
        if let Some(counts) = self.bot_requests().as_mut() {
            *counts.entry(bot_user).or_default() += 1;
        }
        Ok(())
    }

    fn bot_requests(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<std::collections::HashMap<UserId, u32>>> {
        self.bot_requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on, counts the bot requests this node lets through, for the node to
    /// tell the others ([`Limiters::take_bot_requests`]): a node of a cluster.
    pub fn share_bot_requests(&self) {
        self.bot_requests().get_or_insert_with(Default::default);
    }

    /// The bot requests let through since the last call, per bot.
    pub fn take_bot_requests(&self) -> Vec<(UserId, u32)> {
        self.bot_requests()
            .as_mut()
            .map(|counts| counts.drain().collect())
            .unwrap_or_default()
    }

    /// Takes `n` requests that another node let through from `bot_user`'s bucket, so
    /// the per-bot limit is the cluster's, not each node's.
    pub fn note_bot(&self, bot_user: UserId, n: u32) {
        for _ in 0..n.min(self.bot_burst) {
            if self.per_bot.check_key(&bot_user).is_err() {
                break;
            }
        }
    }

    /// One login attempt for `username`, whichever address it comes from (429 with
    /// `Retry-After` once the account's bucket is empty). Counted before the password
    /// is checked, so a throttled guess costs no hashing either.
    ///
    /// # Errors
    /// 429 when exceeded.
    pub fn check_login(&self, username: &str) -> Result<(), ApiError> {
        let key = username.to_owned();
        self.login_per_account.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            ApiError::too_many_requests(Some(wait.as_secs_f64().ceil().max(1.0) as u64))
        })
    }

    /// Counts a login attempt for `username` that another node of the cluster let
    /// through, so the account's bucket is the cluster's, not this node's.
    pub fn note_login(&self, username: &str) {
        let _ = self.login_per_account.check_key(&username.to_owned());
    }

    /// Forgets idle keys so that the maps do not grow without bound.
    pub fn prune(&self) {
        self.per_ip.retain_recent();
        self.auth_per_ip.retain_recent();
        self.per_bot.retain_recent();
        self.login_per_account.retain_recent();
        self.per_ip.shrink_to_fit();
        self.auth_per_ip.shrink_to_fit();
        self.per_bot.shrink_to_fit();
        self.login_per_account.shrink_to_fit();
    }
}

/// Middleware: the per-IP limit on every route it wraps, plus the auth limit on auth
/// routes.
pub async fn limit_requests(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let limiters: &Arc<Limiters> = &state.limiters;
    let ip = limiters.client_ip(peer.ip(), request.headers());
    if let Err(err) = Limiters::check(&limiters.per_ip, ip) {
        return err.into_response();
    }
    if is_auth_route(request.uri().path())
        && let Err(err) = Limiters::check(&limiters.auth_per_ip, ip)
    {
        return err.into_response();
    }
    next.run(request).await
}

fn is_auth_route(path: &str) -> bool {
    let path = path.strip_prefix("/api").unwrap_or(path);
    matches!(
        path,
        "/auth/register"
            | "/auth/login"
            | "/auth/refresh"
            | "/auth/forgot-password"
            | "/auth/reset-password"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let limiters = Limiters::new(&Limits {
            trusted_proxies: vec![proxy],
            ..Limits::default()
        });
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.1".parse().unwrap());
        assert_eq!(
            limiters.client_ip(proxy, &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(limiters.client_ip(stranger, &headers), stranger);
    }

    #[test]
    fn burst_then_refusal_with_retry_after() {
        let limits = Limits {
            rest_per_ip: Rate {
                per_second: 1,
                burst: 2,
            },
            ..Limits::default()
        };
        let limiters = Limiters::new(&limits);
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        assert!(Limiters::check(&limiters.per_ip, ip).is_ok());
        assert!(Limiters::check(&limiters.per_ip, ip).is_ok());
        let err = Limiters::check(&limiters.per_ip, ip).unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(Limiters::check(&limiters.per_ip, "127.0.0.10".parse().unwrap()).is_ok());
    }

    #[test]
    fn auth_routes_are_recognised_with_and_without_api_prefix() {
        assert!(is_auth_route("/auth/login"));
        assert!(is_auth_route("/api/auth/refresh"));
        assert!(!is_auth_route("/users/@me"));
    }

    #[test]
    fn bot_requests_are_counted_for_the_cluster_only_when_shared() {
        let limiters = Limiters::new(&Limits {
            per_bot: Rate {
                per_second: 1,
                burst: 3,
            },
            ..Limits::default()
        });
        let (bot, other) = (UserId::new(), UserId::new());
        // A lone node keeps no counts.
        limiters.check_bot(bot).unwrap();
        assert!(limiters.take_bot_requests().is_empty());
        limiters.share_bot_requests();
        limiters.check_bot(bot).unwrap();
        limiters.check_bot(other).unwrap();
        let mut taken = limiters.take_bot_requests();
        taken.sort();
        let mut want = vec![(bot, 1), (other, 1)];
        want.sort();
        assert_eq!(taken, want);
        assert!(limiters.take_bot_requests().is_empty());
        // Another node's report takes from the bucket (never more than a burst).
        limiters.note_bot(other, u32::MAX);
        assert!(limiters.check_bot(other).is_err());
        // bot had 1 token left; refusals are not counted.
        limiters.check_bot(bot).unwrap();
        assert!(limiters.check_bot(bot).is_err());
        assert_eq!(limiters.take_bot_requests(), vec![(bot, 1)]);
    }
}
