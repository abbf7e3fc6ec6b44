//! Splitting a fleet over worker processes (one process may hold only ~19.9k file
//! descriptors on the bench machines). The parent re-executes its own binary with
//! the same arguments plus `--worker`; commands go to the worker's stdin and events
//! come back on its stdout, one JSON object per line.

use std::{
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStdin, Command},
    sync::mpsc,
};

use crate::{
    fleet::{Collected, ConnectInfo, FleetPlan, LocalFleet, SeqDone, Snapshot, deadline_instant},
    stats::{Bitmap, MessageTable},
};

/// Parent → worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
enum WorkerCmd {
    Start { plan: Box<FleetPlan> },
    AwaitSeq { seq: usize },
    Drain { accepted: Bitmap },
    Quiet { ms: u64 },
    Storm,
    Finish { table: Option<MessageTable> },
}

/// Worker → parent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
enum WorkerEvent {
    Progress { snapshot: Snapshot },
    Connected { info: ConnectInfo },
    Seq { done: SeqDone },
    Done { complete: bool },
    Result { collected: Box<Collected> },
}

/// Extra time the parent grants a worker past the scenario deadline (closing
/// thousands of sockets cleanly takes a moment).
const GRACE: Duration = Duration::from_secs(60);

/// Runs this process as a worker: the plan and commands arrive on stdin.
///
/// # Errors
/// Unreadable input or a closed stdout.
pub(crate) async fn worker_main() -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(line) = rx.recv().await {
            if out.write_all(line.as_bytes()).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });
    let emit = move |event: &WorkerEvent| {
        if let Ok(mut line) = serde_json::to_string(event) {
            line.push('\n');
            let _ = tx.send(line);
        }
    };
    let first = lines
        .next_line()
        .await?
        .context("worker: no plan on stdin")?;
    let WorkerCmd::Start { plan } = serde_json::from_str(&first).context("worker: bad plan")?
    else {
        bail!("worker: the first command must be start");
    };
    let fleet = LocalFleet::start(*plan);
    let progress = {
        let read = fleet.snapshots();
        let emit = emit.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                emit(&WorkerEvent::Progress { snapshot: read() });
            }
        })
    };
    let info = fleet.wait_connected().await;
    emit(&WorkerEvent::Connected { info });
    let mut table = None;
    while let Some(line) = lines.next_line().await? {
        match serde_json::from_str::<WorkerCmd>(&line).context("worker: bad command")? {
            WorkerCmd::Start { .. } => bail!("worker: started twice"),
            WorkerCmd::AwaitSeq { seq } => emit(&WorkerEvent::Seq {
                done: fleet.await_seq(seq).await,
            }),
            WorkerCmd::Drain { accepted } => emit(&WorkerEvent::Done {
                complete: fleet.drain(&accepted).await,
            }),
            WorkerCmd::Quiet { ms } => emit(&WorkerEvent::Done {
                complete: fleet.wait_quiet(Duration::from_millis(ms)).await,
            }),
            WorkerCmd::Storm => emit(&WorkerEvent::Done {
                complete: fleet.storm().await,
            }),
            WorkerCmd::Finish { table: t } => {
                table = t;
                break;
            }
        }
    }
    let collected = fleet.finish(table.as_ref()).await;
    progress.abort();
    emit(&WorkerEvent::Result {
        collected: Box::new(collected),
    });
    drop(emit);
    let _ = writer.await;
    Ok(())
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    events: mpsc::UnboundedReceiver<WorkerEvent>,
}

/// A fleet spread over worker processes.
pub(crate) struct RemoteFleet {
    workers: Vec<Worker>,
    progress: Arc<Vec<Mutex<Snapshot>>>,
    deadline: Instant,
}

impl RemoteFleet {
    async fn start(plans: Vec<FleetPlan>) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the bench binary")?;
        let args: Vec<_> = std::env::args_os().skip(1).collect();
        let deadline = deadline_instant(plans.first().map_or(0, |p| p.deadline_ns));
        let progress: Arc<Vec<Mutex<Snapshot>>> = Arc::new(
            plans
                .iter()
                .map(|p| {
                    Mutex::new(Snapshot {
                        size: p.members.len(),
                        ..Snapshot::default()
                    })
                })
                .collect(),
        );
        let mut workers = Vec::with_capacity(plans.len());
        for (i, plan) in plans.into_iter().enumerate() {
            let mut child = Command::new(&exe)
                .args(&args)
                .arg("--worker")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting worker {i} ({})", exe.display()))?;
            let mut stdin = child.stdin.take().context("worker stdin")?;
            let stdout = child.stdout.take().context("worker stdout")?;
            let (tx, events) = mpsc::unbounded_channel();
            let cells = progress.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match serde_json::from_str::<WorkerEvent>(&line) {
                        Ok(WorkerEvent::Progress { snapshot }) => {
                            *cells[i].lock().unwrap_or_else(|e| e.into_inner()) = snapshot;
                        }
                        Ok(event) => {
                            let _ = tx.send(event);
                        }
                        Err(_) => eprintln!("worker {i}: {line}"),
                    }
                }
            });
            send(
                &mut stdin,
                &WorkerCmd::Start {
                    plan: Box::new(plan),
                },
            )
            .await?;
            workers.push(Worker {
                child,
                stdin,
                events,
            });
        }
        Ok(Self {
            workers,
            progress,
            deadline,
        })
    }

    fn snapshots(&self) -> impl Fn() -> Snapshot + Send + Sync + 'static {
        let cells = self.progress.clone();
        move || {
            let mut total = Snapshot::default();
            for cell in cells.iter() {
                total.add(&cell.lock().unwrap_or_else(|e| e.into_inner()));
            }
            total
        }
    }

    async fn broadcast(&mut self, cmd: &WorkerCmd) -> anyhow::Result<()> {
        for w in &mut self.workers {
            send(&mut w.stdin, cmd).await?;
        }
        Ok(())
    }

    /// The next event of every worker, in worker order.
    async fn gather(&mut self) -> anyhow::Result<Vec<WorkerEvent>> {
        let limit = self.deadline + GRACE;
        let mut out = Vec::with_capacity(self.workers.len());
        for (i, w) in self.workers.iter_mut().enumerate() {
            let event = tokio::time::timeout_at(limit.into(), w.events.recv())
                .await
                .map_err(|_| anyhow!("worker {i} did not answer in time"))?
                .ok_or_else(|| anyhow!("worker {i} exited early"))?;
            out.push(event);
        }
        Ok(out)
    }

    async fn all_done(&mut self) -> anyhow::Result<bool> {
        let mut complete = true;
        for event in self.gather().await? {
            match event {
                WorkerEvent::Done { complete: c } => complete &= c,
                other => bail!("worker answered {other:?}"),
            }
        }
        Ok(complete)
    }
}

async fn send(stdin: &mut ChildStdin, cmd: &WorkerCmd) -> anyhow::Result<()> {
    let mut line = serde_json::to_string(cmd)?;
    line.push('\n');
    stdin
        .write_all(line.as_bytes())
        .await
        .context("writing to a worker")?;
    stdin.flush().await.context("writing to a worker")
}

/// The connections of one scenario, here or in worker processes.
pub(crate) enum Fleet {
    Local(LocalFleet),
    Remote(RemoteFleet),
}

/// Splits `plan`'s members into `parts` contiguous, nearly equal plans.
fn split(plan: FleetPlan, parts: usize) -> Vec<FleetPlan> {
    let total = plan.members.len();
    let parts = parts.clamp(1, total.max(1));
    let mut members = plan.members.clone().into_iter();
    (0..parts)
        .map(|p| {
            let take = total / parts + usize::from(p < total % parts);
            FleetPlan {
                members: members.by_ref().take(take).collect(),
                ..plan.clone()
            }
        })
        .collect()
}

impl Fleet {
    /// Starts connecting `plan`'s members, in this process or over `procs` workers.
    pub(crate) async fn start(plan: FleetPlan, procs: usize) -> anyhow::Result<Self> {
        if procs <= 1 {
            Ok(Self::Local(LocalFleet::start(plan)))
        } else {
            Ok(Self::Remote(RemoteFleet::start(split(plan, procs)).await?))
        }
    }

    /// The in-process fleet, for scenarios that drive connections one by one.
    pub(crate) fn local(&self) -> Option<&LocalFleet> {
        match self {
            Self::Local(l) => Some(l),
            Self::Remote(_) => None,
        }
    }

    pub(crate) fn snapshots(&self) -> Box<dyn Fn() -> Snapshot + Send + Sync> {
        match self {
            Self::Local(l) => Box::new(l.snapshots()),
            Self::Remote(r) => Box::new(r.snapshots()),
        }
    }

    pub(crate) async fn wait_connected(&mut self) -> anyhow::Result<ConnectInfo> {
        match self {
            Self::Local(l) => Ok(l.wait_connected().await),
            Self::Remote(r) => {
                let mut total = ConnectInfo::default();
                for event in r.gather().await? {
                    match event {
                        WorkerEvent::Connected { info } => total.add(&info),
                        other => bail!("worker answered {other:?}"),
                    }
                }
                Ok(total)
            }
        }
    }

    /// When sequence number `seq` had reached every READY connection.
    pub(crate) async fn await_seq(&mut self, seq: usize) -> anyhow::Result<SeqDone> {
        match self {
            Self::Local(l) => Ok(l.await_seq(seq).await),
            Self::Remote(r) => {
                r.broadcast(&WorkerCmd::AwaitSeq { seq }).await?;
                let mut total = SeqDone {
                    complete: true,
                    ..SeqDone::default()
                };
                for event in r.gather().await? {
                    match event {
                        WorkerEvent::Seq { done } => {
                            total.count += done.count;
                            total.last_ns = total.last_ns.max(done.last_ns);
                            total.complete &= done.complete;
                        }
                        other => bail!("worker answered {other:?}"),
                    }
                }
                Ok(total)
            }
        }
    }

    pub(crate) async fn drain(&mut self, accepted: &Bitmap) -> anyhow::Result<bool> {
        match self {
            Self::Local(l) => Ok(l.drain(accepted).await),
            Self::Remote(r) => {
                r.broadcast(&WorkerCmd::Drain {
                    accepted: accepted.clone(),
                })
                .await?;
                r.all_done().await
            }
        }
    }

    pub(crate) async fn wait_quiet(&mut self, quiet: Duration) -> anyhow::Result<bool> {
        match self {
            Self::Local(l) => Ok(l.wait_quiet(quiet).await),
            Self::Remote(r) => {
                let ms = u64::try_from(quiet.as_millis()).unwrap_or(u64::MAX);
                r.broadcast(&WorkerCmd::Quiet { ms }).await?;
                r.all_done().await
            }
        }
    }

    pub(crate) async fn storm(&mut self) -> anyhow::Result<bool> {
        match self {
            Self::Local(l) => Ok(l.storm().await),
            Self::Remote(r) => {
                r.broadcast(&WorkerCmd::Storm).await?;
                r.all_done().await
            }
        }
    }

    /// Closes everything and gathers the results.
    pub(crate) async fn finish(self, table: Option<&MessageTable>) -> anyhow::Result<Collected> {
        match self {
            Self::Local(l) => Ok(l.finish(table).await),
            Self::Remote(mut r) => {
                r.broadcast(&WorkerCmd::Finish {
                    table: table.cloned(),
                })
                .await?;
                let mut total = Collected::default();
                for event in r.gather().await? {
                    match event {
                        WorkerEvent::Result { collected } => total.merge(*collected),
                        other => bail!("worker answered {other:?}"),
                    }
                }
                for w in &mut r.workers {
                    let _ = tokio::time::timeout(Duration::from_secs(10), w.child.wait()).await;
                }
                Ok(total)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fleet::Carrier, rest::Member, target::Target};

    fn plan(n: usize) -> FleetPlan {
        FleetPlan {
            run_id: "r".into(),
            target: Target {
                addr: "127.0.0.1:1".parse().unwrap(),
                ws_url: "ws://127.0.0.1:1/ws".into(),
                sources: vec![],
                protocol: crate::args::Protocol::V2,
                more: vec![],
            },
            carrier: Carrier::Message,
            slots: 3,
            timed_below: 3,
            connect_concurrency: 1,
            ready_timeout_ms: 1,
            backoff_base_ms: 1,
            backoff_cap_ms: 1,
            deadline_ns: 0,
            members: (0..n)
                .map(|i| {
                    (
                        i,
                        Member {
                            token: format!("t{i}"),
                            user_id: format!("u{i}"),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn split_is_even_and_keeps_global_indices() {
        let parts = split(plan(10), 3);
        let sizes: Vec<usize> = parts.iter().map(|p| p.members.len()).collect();
        assert_eq!(sizes, [4, 3, 3]);
        let globals: Vec<usize> = parts
            .iter()
            .flat_map(|p| p.members.iter().map(|(g, _)| *g))
            .collect();
        assert_eq!(globals, (0..10).collect::<Vec<_>>());
        assert_eq!(split(plan(2), 5).len(), 2, "no empty workers");
        // The protocol travels to the workers with the target.
        let line = serde_json::to_string(&WorkerCmd::Start {
            plan: Box::new(parts[1].clone()),
        })
        .unwrap();
        let WorkerCmd::Start { plan: back } = serde_json::from_str(&line).unwrap() else {
            panic!("start round-trips");
        };
        assert_eq!(back.target.protocol, crate::args::Protocol::V2);
    }

    #[test]
    fn protocol_lines_round_trip() {
        let cmd = WorkerCmd::Drain {
            accepted: Bitmap::full(5),
        };
        let line = serde_json::to_string(&cmd).unwrap();
        assert!(line.starts_with(r#"{"cmd":"drain""#), "{line}");
        let back: WorkerCmd = serde_json::from_str(&line).unwrap();
        assert!(matches!(back, WorkerCmd::Drain { accepted } if accepted.count() == 5));
        let ev = WorkerEvent::Seq {
            done: SeqDone {
                count: 3,
                last_ns: 9,
                complete: true,
            },
        };
        let line = serde_json::to_string(&ev).unwrap();
        let back: WorkerEvent = serde_json::from_str(&line).unwrap();
        assert!(matches!(back, WorkerEvent::Seq { done } if done.count == 3 && done.last_ns == 9));
    }
}
