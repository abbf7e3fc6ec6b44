//! The client commands of the real binary against a real server: `login`, `send`,
//! refusals and a server that is down (non-zero exit, a clear message), and `tail`
//! through a graceful server restart, seeing every message exactly once.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
};

use concord_testkit::{TestServer, WAIT};
use serde_json::Value;

fn concord() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_concord"));
    for (name, _) in std::env::vars() {
        if name.starts_with("CONCORD_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs a short command to its end on a blocking thread.
async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        concord()
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("run concord")
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn login_and_send_print_json_and_refusals_exit_non_zero() {
    let server = TestServer::start().await;
    let url = server.url("");
    let alice = server.user("alice").await;
    let guild = alice.create_server("club").await;
    let channel = alice.create_channel(&guild, "general", "text").await;

    let out = run(args(&[
        "login",
        "--url",
        &url,
        "--username",
        "alice",
        "--password",
        "correct-horse-42",
    ]))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tokens: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(tokens["user_id"], alice.id.as_str());
    let access = tokens["access_token"].as_str().unwrap().to_string();
    assert!(tokens["refresh_token"].is_string());

    let out = run(args(&[
        "send",
        "--url",
        &url,
        "--token",
        &access,
        "--channel",
        &channel,
        "hello there",
    ]))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let message: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(message["content"], "hello there");
    let listed = alice
        .api
        .get(&format!("/channels/{channel}/messages"))
        .await;
    assert_eq!(listed.body[0]["id"], message["id"]);

    let out = run(args(&[
        "login",
        "--url",
        &url,
        "--username",
        "alice",
        "--password",
        "wrong-password",
    ]))
    .await;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("HTTP 401"),
        "{}",
        text(&out.stderr)
    );

    // Bob is not a member: the server's 404 is shown and the exit is non-zero.
    let bob = server.user("bob").await;
    let out = run(args(&[
        "send",
        "--url",
        &url,
        "--token",
        &bob.token,
        "--channel",
        &channel,
        "hi",
    ]))
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("HTTP 404"),
        "{}",
        text(&out.stderr)
    );

    // Nobody listening.
    let down = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", probe.local_addr().unwrap())
    };
    for command in [
        args(&[
            "login",
            "--url",
            &down,
            "--username",
            "a",
            "--password",
            "b",
        ]),
        args(&["tail", "--url", &down, "--token", "whatever"]),
    ] {
        let out = run(command).await;
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("cannot reach the server"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// A line from the child: stdout or stderr.
#[derive(Debug)]
enum Line {
    Out(String),
    Err(String),
}

struct Tail {
    child: Child,
    lines: mpsc::Receiver<Line>,
}

impl Tail {
    fn start(args: Vec<String>) -> Self {
        let mut child = concord()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn concord tail");
        let (tx, lines) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        let err = BufReader::new(child.stderr.take().unwrap());
        let out_tx = tx.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let _ = out_tx.send(Line::Out(line));
            }
        });
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                let _ = tx.send(Line::Err(line));
            }
        });
        Self { child, lines }
    }

    /// Lines until (and including) the first that `stop` accepts.
    async fn until(&mut self, stop: impl Fn(&Line) -> bool) -> Vec<Line> {
        let mut seen = Vec::new();
        loop {
            let line = tokio::task::block_in_place(|| self.lines.recv_timeout(WAIT))
                .unwrap_or_else(|_| panic!("tail said nothing in time after {seen:?}"));
            let done = stop(&line);
            seen.push(line);
            if done {
                return seen;
            }
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn contents(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| match line {
            Line::Out(out) => {
                let event: Value = serde_json::from_str(out).expect("one JSON event per line");
                assert_eq!(event["t"], "MESSAGE_CREATE", "--events filters: {out}");
                Some(event["d"]["content"].as_str().unwrap().to_string())
            }
            Line::Err(_) => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_sees_every_message_once_through_a_graceful_restart() {
    let server = TestServer::start().await;
    let url = server.url("");
    let alice = server.user("alice").await;
    let guild = alice.create_server("club").await;
    let channel = alice.create_channel(&guild, "general", "text").await;

    let mut tail = Tail::start(args(&[
        "tail",
        "--url",
        &url,
        "--username",
        "alice",
        "--password",
        "correct-horse-42",
        "--events",
        "MESSAGE_CREATE",
    ]));
    tail.until(|l| matches!(l, Line::Err(e) if e.starts_with("state: ready")))
        .await;
    alice.post(&channel, "one").await;
    let mut seen = contents(&tail.until(|l| matches!(l, Line::Out(_))).await);

    let server = server.restart().await;
    // Posted while tail is still away (backing off): only a RESUME replays it.
    alice.post(&channel, "two").await;
    let back = tail
        .until(|l| matches!(l, Line::Err(e) if e.starts_with("state: resumed")))
        .await;
    assert!(
        back.iter()
            .any(|l| matches!(l, Line::Err(e) if e.starts_with("state: reconnecting"))),
        "{back:?}"
    );
    assert!(
        !back
            .iter()
            .any(|l| matches!(l, Line::Err(e) if e.starts_with("state: ready"))),
        "resumed, not identified afresh: {back:?}"
    );
    seen.extend(contents(&back));
    // Same address and secrets after the restart: alice's client still works.
    alice.post(&channel, "three").await;
    seen.extend(contents(
        &tail
            .until(|l| matches!(l, Line::Out(o) if o.contains("\"three\"")))
            .await,
    ));
    assert_eq!(seen, ["one", "two", "three"]);
    drop(tail);
    server.shutdown().await;
}
