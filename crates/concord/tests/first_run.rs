//! The first run as a newcomer meets it (issue 17): the binary's help, what a start
//! logs, and starts that fail, which must say why and leave nothing on disk.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

/// A guard against hangs, not a timing assertion: a refused start exits at once.
const WAIT: Duration = Duration::from_secs(20);

fn concord() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_concord"));
    // Only what the test sets: no CONCORD_* from the environment running the tests.
    for (name, _) in std::env::vars() {
        if name.starts_with("CONCORD_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", "info");
    command
}

/// A fresh scratch directory (created) for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "concord-first-run-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs to the end, killing the process if it is still running after [`WAIT`] (a
/// start that should have been refused and serves instead).
fn finish(mut command: Command) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn concord");
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT) {
        Ok(output) => output.expect("concord output"),
        Err(_) => {
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!("concord was still running: the start should have been refused");
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_every_subcommand_and_serve_shows_defaults_and_variables() {
    let help = finish({
        let mut c = concord();
        c.arg("--help");
        c
    });
    assert!(help.status.success());
    let help = text(&help.stdout);
    for sub in ["serve", "bench"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(sub)),
            "{sub} missing from:\n{help}"
        );
    }
    let serve = finish({
        let mut c = concord();
        c.args(["serve", "--help"]);
        c
    });
    assert!(serve.status.success());
    let serve = text(&serve.stdout);
    for needle in [
        "[default: 127.0.0.1:8080]",
        "[default: ./concord-data]",
        "[env: CONCORD_LISTEN=]",
        "[env: CONCORD_DATA_DIR=]",
        "[env: CONCORD_CONFIG=]",
        "CONCORD_DATABASE_URL",
        "CONCORD_REGISTRATION",
        "CONCORD_LOG_FORMAT",
        "CONCORD_JWT_SECRET",
        "CONCORD_METRICS_TOKEN",
        "CONCORD_TURN_URL",
    ] {
        assert!(serve.contains(needle), "{needle} missing from:\n{serve}");
    }
}

#[test]
fn config_that_cannot_work_is_refused_by_key_and_creates_nothing() {
    for (toml, key) in [
        (
            "[limits]\nqueue_max_frames = 0\n",
            "limits.queue_max_frames",
        ),
        (
            "[limits]\nrest_per_ip = { per_second = 0, burst = 20 }\n",
            "limits.rest_per_ip.per_second",
        ),
        ("jwt_secret = \"short\"\n", "jwt_secret"),
    ] {
        let dir = scratch("refused");
        let file = dir.join("concord.toml");
        std::fs::write(&file, toml).unwrap();
        let data = dir.join("data");
        let output = finish({
            let mut c = concord();
            c.args(["serve", "--listen", "127.0.0.1:0", "--config"])
                .arg(&file)
                .arg("--data-dir")
                .arg(&data);
            c
        });
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{key}: started");
        assert!(stderr.contains(key), "{key} not named in:\n{stderr}");
        assert!(!data.exists(), "{key}: the data directory was created");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_data_dir_that_is_a_file_is_named_with_its_path() {
    let dir = scratch("file");
    let data = dir.join("not-a-dir");
    std::fs::write(&data, b"x").unwrap();
    let output = finish({
        let mut c = concord();
        c.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .current_dir(&dir);
        c
    });
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&data.display().to_string()) && stderr.contains("is a file"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_start_that_cannot_bind_leaves_no_data_directory() {
    let dir = scratch("bind");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = dir.join("data");
    let output = finish({
        let mut c = concord();
        c.args(["serve", "--listen", &addr, "--data-dir"])
            .arg(&data)
            .current_dir(&dir);
        c
    });
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&addr), "{stderr}");
    assert!(!data.exists(), "the data directory was created");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A running `concord serve`, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_start_logs_where_everything_is_and_the_web_client_url() {
    let dir = scratch("start");
    let data = dir.join("data");
    let mut child = concord()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("CONCORD_REGISTRATION", "invite_only")
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn concord");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let _running = Running(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next().and_then(Result::ok));
    });
    let bound = rx
        .recv_timeout(WAIT)
        .expect("the bound address on stdout")
        .expect("a first line");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("concord listening") {
                break;
            }
        }
        let _ = tx.send(seen);
    });
    let log = rx.recv_timeout(WAIT).expect("the start's log lines");
    let data = std::fs::canonicalize(&data).unwrap();
    for needle in [
        format!("data_dir={}", data.display()),
        format!("database=sqlite://{}", data.join("concord.db").display()),
        "config_file=none".to_owned(),
        "registration=invite_only".to_owned(),
        format!("web_client=http://{bound}/"),
    ] {
        assert!(log.contains(&needle), "{needle} missing from:\n{log}");
    }
    drop(_running);
    std::fs::remove_dir_all(dir).unwrap();
}
