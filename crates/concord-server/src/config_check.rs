//! Configuration that cannot work is refused before the server touches anything: a
//! rate limit of 0, a queue bound of 0, a short secret, a data directory that is a file
//! or cannot be written. Each refusal names the key (as written in `concord.toml`) or
//! the path, so the person starting the server knows what to change.

use std::path::{Path, PathBuf};

use crate::config::{Config, PerMinute, Rate};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    /// A key has a value the server cannot run with.
    #[error("{key}: {reason}")]
    Key {
        /// The key, as in `concord.toml` (`limits.rest_per_ip.per_second`).
        key: &'static str,
        /// What is wrong and what would do.
        reason: String,
    },
    /// The data directory cannot hold the server's files.
    #[error("data directory {path}: {reason}")]
    DataDir {
        /// The path, as configured.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Checks `config` without changing anything on disk (a probe file in an existing data
/// directory is written and removed at once).
///
/// # Errors
/// The first problem found.
pub fn check(config: &Config) -> Result<(), ConfigProblem> {
    check_values(config)?;
    check_data_dir(&config.data_dir)
}

fn key(key: &'static str, reason: impl Into<String>) -> ConfigProblem {
    ConfigProblem::Key {
        key,
        reason: reason.into(),
    }
}

fn positive(name: &'static str, value: u64) -> Result<(), ConfigProblem> {
    if value == 0 {
        return Err(key(name, "must be at least 1 (0 cannot work)"));
    }
    Ok(())
}

fn rate(per_second: &'static str, burst: &'static str, rate: Rate) -> Result<(), ConfigProblem> {
    positive(per_second, rate.per_second.into())?;
    positive(burst, rate.burst.into())
}

fn per_minute(
    per_minute: &'static str,
    burst: &'static str,
    rate: PerMinute,
) -> Result<(), ConfigProblem> {
    positive(per_minute, rate.per_minute.into())?;
    positive(burst, rate.burst.into())
}

/// Values that cannot work, whatever the machine.
fn check_values(config: &Config) -> Result<(), ConfigProblem> {
    let limits = &config.limits;
    rate(
        "limits.rest_per_ip.per_second",
        "limits.rest_per_ip.burst",
        limits.rest_per_ip,
    )?;
    rate(
        "limits.auth_per_ip.per_second",
        "limits.auth_per_ip.burst",
        limits.auth_per_ip,
    )?;
    rate(
        "limits.per_bot.per_second",
        "limits.per_bot.burst",
        limits.per_bot,
    )?;
    per_minute(
        "limits.login_per_account.per_minute",
        "limits.login_per_account.burst",
        limits.login_per_account,
    )?;
    let counts: [(&'static str, u64); 14] = [
        ("limits.queue_max_frames", limits.queue_max_frames as u64),
        ("limits.header_read_secs", limits.header_read_secs),
        ("limits.body_read_secs", limits.body_read_secs),
        ("limits.max_body_bytes", limits.max_body_bytes as u64),
        (
            "limits.connections_per_ip",
            limits.connections_per_ip as u64,
        ),
        ("limits.sessions_per_ip", limits.sessions_per_ip as u64),
        ("limits.sessions_per_user", limits.sessions_per_user as u64),
        ("limits.queue_max_bytes", limits.queue_max_bytes as u64),
        (
            "limits.gateway_frames_per_sec",
            limits.gateway_frames_per_sec as u64,
        ),
        ("limits.gateway_idle_secs", limits.gateway_idle_secs),
        ("limits.heartbeat_interval_ms", limits.heartbeat_interval_ms),
        ("limits.identify_timeout_secs", limits.identify_timeout_secs),
        ("listen_backlog", config.listen_backlog.into()),
        ("password.iterations", config.password.iterations.into()),
    ];
    for (name, value) in counts {
        positive(name, value)?;
    }
    if let Some(max) = limits.max_connections {
        positive("limits.max_connections", max as u64)?;
    }
    if config.password.memory_kib < 8 {
        return Err(key("password.memory_kib", "must be at least 8 (KiB)"));
    }
    if config.jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
        return Err(key(
            "jwt_secret",
            "must be at least 32 characters (or leave it out: a secret is generated)",
        ));
    }
    if config.metrics.token.as_ref().is_some_and(|t| t.len() < 32) {
        return Err(key("metrics.token", "must be at least 32 characters"));
    }
    if let Some(url) = &config.database_url
        && !["sqlite://", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
    {
        return Err(key(
            "database_url",
            "must be sqlite://PATH or postgres://USER@HOST:PORT/DATABASE",
        ));
    }
    if let Some(url) = &config.bus_url
        && !url.starts_with("nats://")
    {
        return Err(key(
            "bus_url",
            "must be nats://HOST:PORT (or leave it out: one node, in-process bus)",
        ));
    }
    if config.bus_heartbeat_secs == 0 {
        return Err(key("bus_heartbeat_secs", "must be at least 1"));
    }
    if !concord_bus::valid_prefix(&config.bus_prefix) {
        return Err(key(
            "bus_prefix",
            "must be letters, digits, '-' and '_' in dot-separated parts (\"concord.prod\")",
        ));
    }
    check_webhooks(&config.webhooks)?;
    check_audio(config.audio)?;
    for origin in &config.cors_origins {
        let plain = origin == "*"
            || (origin.contains("://") && axum::http::HeaderValue::from_str(origin).is_ok());
        if !plain {
            return Err(key(
                "cors_origins",
                format!(
                    "{origin:?} is not an origin such as \"https://chat.example.org\" or \"*\""
                ),
            ));
        }
    }
    Ok(())
}

/// Most retries of one delivery, and the longest wait before one (an hour).
const MAX_WEBHOOK_RETRIES: usize = 10;
const MAX_WEBHOOK_DELAY_MS: u64 = 3_600_000;

/// `[webhooks]`: positive bounds, a sane retry schedule.
fn check_webhooks(webhooks: &crate::config::WebhookConfig) -> Result<(), ConfigProblem> {
    positive("webhooks.timeout_secs", webhooks.timeout_secs)?;
    positive("webhooks.queue_size", webhooks.queue_size as u64)?;
    positive("webhooks.workers", webhooks.workers as u64)?;
    if webhooks.workers > 1024 {
        return Err(key("webhooks.workers", "must be at most 1024"));
    }
    if webhooks.retry_delays_ms.len() > MAX_WEBHOOK_RETRIES {
        return Err(key(
            "webhooks.retry_delays_ms",
            format!("at most {MAX_WEBHOOK_RETRIES} retries"),
        ));
    }
    if webhooks
        .retry_delays_ms
        .iter()
        .any(|&ms| ms > MAX_WEBHOOK_DELAY_MS)
    {
        return Err(key(
            "webhooks.retry_delays_ms",
            "each delay must be at most 3600000 (an hour)",
        ));
    }
    Ok(())
}

/// `[audio]`: a buffer of 1 to 60 s per stream, 1 to 1000 chunks per subscriber.
fn check_audio(audio: crate::config::AudioConfig) -> Result<(), ConfigProblem> {
    if !(1..=60).contains(&audio.buffer_secs) {
        return Err(key("audio.buffer_secs", "must be between 1 and 60"));
    }
    if !(1..=1000).contains(&audio.subscriber_queue_chunks) {
        return Err(key(
            "audio.subscriber_queue_chunks",
            "must be between 1 and 1000",
        ));
    }
    Ok(())
}

/// The data directory is a directory the server can write, or does not exist yet
/// (it is created once everything else is known to be fine).
fn check_data_dir(path: &Path) -> Result<(), ConfigProblem> {
    let problem = |reason: String| ConfigProblem::DataDir {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => Err(problem("is a file, not a directory".into())),
        Ok(_) => {
            let probe = path.join(format!(".concord-write-test-{}", std::process::id()));
            match std::fs::write(&probe, b"") {
                Ok(()) => {
                    let _ = std::fs::remove_file(&probe);
                    Ok(())
                }
                Err(err) => Err(problem(format!("is not writable ({err})"))),
            }
        }
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            // Created later: its nearest existing ancestor must be a directory.
            match path.ancestors().skip(1).find(|a| a.exists()) {
                Some(parent) if !parent.as_os_str().is_empty() && !parent.is_dir() => Err(problem(
                    format!("cannot be created: {} is a file", parent.display()),
                )),
                _ => Ok(()),
            }
        }
        Err(err) => Err(problem(format!("cannot be read ({err})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(adjust: impl FnOnce(&mut Config)) -> String {
        let mut config = Config {
            data_dir: std::env::temp_dir().join(format!("concord-check-{}", uuid::Uuid::new_v4())),
            ..Config::default()
        };
        adjust(&mut config);
        check(&config).expect_err("refused").to_string()
    }

    #[test]
    fn the_defaults_pass() {
        let config = Config {
            data_dir: std::env::temp_dir().join(format!("concord-check-{}", uuid::Uuid::new_v4())),
            ..Config::default()
        };
        check(&config).unwrap();
        assert!(!config.data_dir.exists(), "a check creates nothing");
    }

    type Adjust = Box<dyn FnOnce(&mut Config)>;

    #[test]
    fn values_that_cannot_work_are_refused_by_their_key() {
        let cases: [(&str, Adjust); 18] = [
            (
                "limits.rest_per_ip.per_second",
                Box::new(|c| c.limits.rest_per_ip.per_second = 0),
            ),
            (
                "limits.auth_per_ip.burst",
                Box::new(|c| c.limits.auth_per_ip.burst = 0),
            ),
            (
                "limits.login_per_account.per_minute",
                Box::new(|c| c.limits.login_per_account.per_minute = 0),
            ),
            (
                "limits.queue_max_frames",
                Box::new(|c| c.limits.queue_max_frames = 0),
            ),
            (
                "limits.queue_max_bytes",
                Box::new(|c| c.limits.queue_max_bytes = 0),
            ),
            (
                "limits.header_read_secs",
                Box::new(|c| c.limits.header_read_secs = 0),
            ),
            (
                "limits.max_body_bytes",
                Box::new(|c| c.limits.max_body_bytes = 0),
            ),
            (
                "limits.sessions_per_user",
                Box::new(|c| c.limits.sessions_per_user = 0),
            ),
            (
                "limits.max_connections",
                Box::new(|c| c.limits.max_connections = Some(0)),
            ),
            (
                "jwt_secret",
                Box::new(|c| c.jwt_secret = Some("short".into())),
            ),
            (
                "database_url",
                Box::new(|c| c.database_url = Some("mysql://db/concord".into())),
            ),
            (
                "bus_url",
                Box::new(|c| c.bus_url = Some("redis://127.0.0.1:6379".into())),
            ),
            ("bus_prefix", Box::new(|c| c.bus_prefix = "a.>".into())),
            (
                "cors_origins",
                Box::new(|c| c.cors_origins = vec!["chat.example.org".into()]),
            ),
            (
                "webhooks.timeout_secs",
                Box::new(|c| c.webhooks.timeout_secs = 0),
            ),
            (
                "webhooks.queue_size",
                Box::new(|c| c.webhooks.queue_size = 0),
            ),
            ("webhooks.workers", Box::new(|c| c.webhooks.workers = 0)),
            (
                "webhooks.retry_delays_ms",
                Box::new(|c| c.webhooks.retry_delays_ms = vec![1; 11]),
            ),
        ];
        for (name, adjust) in cases {
            let message = refused(adjust);
            assert!(message.starts_with(name), "{name}: {message}");
        }
    }

    #[test]
    fn a_data_dir_that_is_a_file_is_named() {
        let file = std::env::temp_dir().join(format!("concord-file-{}", uuid::Uuid::new_v4()));
        std::fs::write(&file, b"x").unwrap();
        let message = refused(|c| c.data_dir = file.clone());
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(message.contains("is a file"), "{message}");
        let below = file.join("data");
        let message = refused(|c| c.data_dir = below.clone());
        assert!(message.contains("cannot be created"), "{message}");
        std::fs::remove_file(file).unwrap();
    }
}
