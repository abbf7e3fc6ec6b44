//! Output for people: a once-a-second progress line on stderr and a table per
//! scenario. Machines read the JSON lines instead.

use std::{
    io::Write,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;

/// A progress line rewritten in place every second until stopped.
pub(crate) struct Progress {
    stop: Option<Arc<AtomicBool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts the display (a no-op when `enabled` is false). `line` is called once a
    /// second from a background task.
    pub(crate) fn start(
        enabled: bool,
        label: &'static str,
        line: impl Fn() -> String + Send + 'static,
    ) -> Self {
        if !enabled {
            return Self {
                stop: None,
                task: None,
            };
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r\x1b[2K[{label} {:>5.0}s] {}",
                    started.elapsed().as_secs_f64(),
                    line()
                );
                let _ = err.flush();
            }
        });
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the display and ends its line.
    pub(crate) fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.store(true, Ordering::Relaxed);
            if let Some(task) = self.task.take() {
                task.abort();
            }
            eprint!("\r\x1b[2K");
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A summary as aligned `key  value` lines, nested objects flattened with dots,
/// under a title that names the scenario and the gateway protocol it measured (so
/// v1 and v2 runs side by side are told apart at a glance).
pub(crate) fn table(summary: &Value) -> String {
    let mut rows = Vec::new();
    flatten("", summary, &mut rows);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    let title = summary["scenario"].as_str().unwrap_or("summary");
    match summary["protocol"].as_u64() {
        Some(v) => out.push_str(&format!("== {title} (protocol v{v}) ==\n")),
        None => out.push_str(&format!("== {title} ==\n")),
    }
    for (key, value) in rows {
        if key == "scenario" || key == "protocol" {
            continue;
        }
        out.push_str(&format!("  {key:<width$}  {value}\n"));
    }
    out
}

fn flatten(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, rows);
            }
        }
        Value::String(s) => rows.push((prefix.to_string(), s.clone())),
        Value::Number(n) => rows.push((prefix.to_string(), human_number(n))),
        other => rows.push((prefix.to_string(), other.to_string())),
    }
}

fn human_number(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() => format!("{f:.2}"),
        _ => n.to_string(),
    }
}

/// A rate for the progress line: `12.3k/s`.
pub(crate) fn per_second(count: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return "-".into();
    }
    let rate = count as f64 / secs;
    if rate >= 10_000.0 {
        format!("{:.1}k/s", rate / 1000.0)
    } else {
        format!("{rate:.0}/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_flattens_and_aligns() {
        let t = table(&json!({
            "scenario": "fanout",
            "lost": 0,
            "deliveries_per_sec": 1234.5678,
            "latency_us": {"p50": 10, "max": 99},
            "completed": true,
            "server_rss_kib": null,
        }));
        assert!(t.starts_with("== fanout ==\n"));
        assert!(t.contains("  lost                "), "{t}");
        assert!(t.contains("deliveries_per_sec  1234.57"), "{t}");
        assert!(t.contains("latency_us.p50      10"), "{t}");
        assert!(t.contains("completed           true"), "{t}");
        assert!(t.contains("server_rss_kib      null"), "{t}");
        assert!(!t.contains("  scenario"));

        let t = table(&json!({"scenario": "fanout", "protocol": 2, "lost": 0}));
        assert!(t.starts_with("== fanout (protocol v2) ==\n"), "{t}");
        assert!(!t.contains("  protocol"), "{t}");
    }

    #[test]
    fn rates() {
        assert_eq!(per_second(500, Duration::from_secs(2)), "250/s");
        assert_eq!(per_second(50_000, Duration::from_secs(2)), "25.0k/s");
        assert_eq!(per_second(5, Duration::ZERO), "-");
    }
}
