//! The audio scenario: voice channels of speakers and listeners on gateway v2
//! (`docs/protocol-v2.md` §15). Speakers stream 20 ms PCM chunks (in real time, or
//! all at once with `--audio-ahead`); listeners subscribe and time each chunk's
//! arrival. Reports loss, the spacing of arrivals per stream (the pacer's jitter as a
//! client sees it), server CPU per relayed chunk and server memory per open stream.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use concord_protocol::{AUDIO_MAGIC, ChannelType, RelayedHeader, UplinkHeader};
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::{Map, Value, json};
use tokio::{net::TcpStream, sync::Barrier};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

use crate::{
    rest::{Auth, Member},
    scenarios::Ctx,
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One chunk of a 48 kHz PCM stream: 960 samples.
const CHUNK_BYTES: usize = 1920;

/// What one listener saw: per chunk, the speaker, its sequence number and when it
/// arrived (ns since the scenario's start).
type Arrivals = Vec<(uuid::Uuid, u32, u64)>;

async fn connect(ws_url: &str, member: &Member) -> anyhow::Result<Ws> {
    let url = format!("{ws_url}?v=2");
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .context("gateway upgrade")?;
    expect_frame(&mut ws, |f| f["op"] == "HELLO", "HELLO").await?;
    send(
        &mut ws,
        json!({"op": "IDENTIFY", "d": {"bot_token": member.token}}),
    )
    .await?;
    expect_frame(&mut ws, |f| f["t"] == "READY", "READY").await?;
    Ok(ws)
}

async fn send(ws: &mut Ws, value: Value) -> anyhow::Result<()> {
    ws.send(Message::Text(value.to_string().into())).await?;
    Ok(())
}

/// Reads until a text frame matching `want`; audio and other events are skipped.
async fn expect_frame(
    ws: &mut Ws,
    want: impl Fn(&Value) -> bool,
    what: &str,
) -> anyhow::Result<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(&text)?;
                if frame["op"] == "ERROR" {
                    bail!("waiting for {what}: {frame}");
                }
                if want(&frame) {
                    return Ok(frame);
                }
            }
            Ok(Some(Ok(Message::Close(close)))) => bail!("closed waiting for {what}: {close:?}"),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(err))) => return Err(err).context(format!("waiting for {what}")),
            Ok(None) => bail!("connection ended waiting for {what}"),
            Err(_) => bail!("timed out waiting for {what}"),
        }
    }
}

/// A speaker: opens its stream, waits for every peer, sends `chunks` chunks, stops,
/// and waits for the server to release the last one.
async fn speak(mut ws: Ws, chunks: u32, ahead: bool, go: Arc<Barrier>) -> anyhow::Result<()> {
    send(
        &mut ws,
        json!({"op": "MEDIA_START", "d": {"format": "pcm_s16le_48k"}}),
    )
    .await?;
    expect_frame(&mut ws, |f| f["t"] == "MEDIA_STARTED", "MEDIA_STARTED").await?;
    go.wait().await;
    let payload: Vec<u8> = (0..CHUNK_BYTES).map(|i| (i % 251) as u8).collect();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for sequence in 0..chunks {
        if !ahead {
            tick.tick().await;
        }
        if sequence % 500 == 499 {
            send(&mut ws, json!({"op": "HEARTBEAT"})).await?;
        }
        let frame = UplinkHeader {
            sequence,
            timestamp: sequence * 20,
        }
        .frame(&payload);
        ws.send(Message::Binary(frame.into())).await?;
    }
    send(&mut ws, json!({"op": "MEDIA_STOP"})).await?;
    expect_frame(&mut ws, |f| f["t"] == "MEDIA_ENDED", "MEDIA_ENDED").await?;
    let _ = ws.close(None).await;
    Ok(())
}

/// A listener: subscribes, then records every chunk until `speakers` streams ended.
async fn listen(
    mut ws: Ws,
    speakers: usize,
    started: Instant,
    go: Arc<Barrier>,
) -> anyhow::Result<Arrivals> {
    send(&mut ws, json!({"op": "MEDIA_SUBSCRIBE"})).await?;
    go.wait().await;
    let mut arrivals = Arrivals::new();
    let mut ended = 0;
    let mut heartbeat = tokio::time::interval(Duration::from_secs(15));
    while ended < speakers {
        tokio::select! {
            _ = heartbeat.tick() => send(&mut ws, json!({"op": "HEARTBEAT"})).await?,
            message = ws.next() => match message {
                Some(Ok(Message::Binary(data))) if data.first() == Some(&AUDIO_MAGIC) => {
                    let at = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    let (header, _) = RelayedHeader::parse(&data).context("relayed chunk")?;
                    arrivals.push((header.speaker.get(), header.sequence, at));
                }
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text)?;
                    if frame["t"] == "MEDIA_ENDED" {
                        ended += 1;
                    }
                }
                Some(Ok(Message::Close(close))) => bail!("listener closed: {close:?}"),
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
                None => bail!("listener connection ended"),
            },
        }
    }
    let _ = ws.close(None).await;
    Ok(arrivals)
}

/// The value at quantile `q` of sorted `values`.
fn quantile(values: &[u64], q: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let at = ((values.len() - 1) as f64 * q).round() as usize;
    values[at.min(values.len() - 1)]
}

/// Runs the scenario.
pub(crate) async fn run(ctx: &Ctx) -> anyhow::Result<Value> {
    let args = &ctx.args;
    let group = args.audio_speakers + args.audio_listeners;
    if args.audio_speakers == 0 || args.audio_listeners == 0 {
        bail!("--audio-speakers and --audio-listeners must be positive");
    }
    let channels = ctx.world.members.len() / group;
    if channels == 0 {
        bail!("--connections must be at least speakers + listeners ({group})");
    }
    let chunks = u32::try_from(args.messages).unwrap_or(u32::MAX);
    let limit = args.duration;

    // One voice channel per group; every member joins its group's channel.
    let voice: Vec<String> = stream::iter(0..channels)
        .map(|g| async move {
            ctx.world
                .create_channel(&ctx.rest, &format!("voice {g}"), ChannelType::Voice, limit)
                .await
        })
        .buffered(args.setup_concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let members = &ctx.world.members[..channels * group];
    let joins: Vec<anyhow::Result<()>> = stream::iter(members.iter().enumerate())
        .map(|(i, member)| {
            let channel = &voice[i / group];
            async move {
                let reply = ctx
                    .rest
                    .call(
                        reqwest::Method::POST,
                        &format!("/channels/{channel}/voice"),
                        Auth::Bot(&member.token),
                        Some(&json!({})),
                        limit,
                    )
                    .await?;
                if reply.status.as_u16() != 201 {
                    bail!("joining voice: HTTP {} {}", reply.status, reply.body);
                }
                Ok(())
            }
        })
        .buffer_unordered(args.setup_concurrency)
        .collect()
        .await;
    joins.into_iter().collect::<anyhow::Result<()>>()?;

    let ws_url = ctx.target.ws_url.clone();
    let sockets: Vec<anyhow::Result<Ws>> = stream::iter(members.iter())
        .map(|member| connect(&ws_url, member))
        .buffered(args.connect_concurrency)
        .collect()
        .await;
    let sockets = sockets.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    // Let connect-time presence settle before measuring.
    tokio::time::sleep(args.settle).await;

    let streams = channels * args.audio_speakers;
    let listeners = channels * args.audio_listeners;
    // Everyone (and this task) passes the barrier once streams are open and
    // subscriptions made.
    let go = Arc::new(Barrier::new(sockets.len() + 1));
    let started = Instant::now();
    let mut speaking = Vec::new();
    let mut listening = Vec::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        let go = Arc::clone(&go);
        if i % group < args.audio_speakers {
            speaking.push(tokio::spawn(speak(ws, chunks, args.audio_ahead, go)));
        } else {
            listening.push(tokio::spawn(listen(ws, args.audio_speakers, started, go)));
        }
    }
    let baseline = ctx.server();
    go.wait().await;
    let sending = Instant::now();
    let before = ctx.server();
    // Server memory while the streams are open: sampled until the speakers are done.
    let mut rss_peak = before.map_or(0, |s| s.rss_kib);
    let mut done = 0;
    while done < speaking.len() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(sample) = ctx.server() {
            rss_peak = rss_peak.max(sample.rss_kib);
        }
        done = speaking.iter().filter(|h| h.is_finished()).count();
        if sending.elapsed() > limit {
            break;
        }
    }
    let mut speaker_errors = Vec::new();
    for handle in speaking {
        match tokio::time::timeout(limit, handle).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => speaker_errors.push(err.to_string()),
            Ok(Err(err)) => speaker_errors.push(err.to_string()),
            Err(_) => speaker_errors.push("speaker timed out".into()),
        }
    }
    let mut all = Vec::new();
    let mut listener_errors = Vec::new();
    for handle in listening {
        match tokio::time::timeout(limit, handle).await {
            Ok(Ok(Ok(arrivals))) => all.push(arrivals),
            Ok(Ok(Err(err))) => listener_errors.push(err.to_string()),
            Ok(Err(err)) => listener_errors.push(err.to_string()),
            Err(_) => listener_errors.push("listener timed out".into()),
        }
    }
    let window = sending.elapsed();
    let after = ctx.server();

    // Spacing of consecutive chunks of one stream at one listener.
    let mut gaps = Vec::new();
    let mut received = 0u64;
    let mut out_of_order = 0u64;
    for arrivals in &all {
        received += arrivals.len() as u64;
        let mut by_speaker: std::collections::HashMap<uuid::Uuid, Vec<(u32, u64)>> =
            std::collections::HashMap::new();
        for &(speaker, sequence, at) in arrivals {
            by_speaker.entry(speaker).or_default().push((sequence, at));
        }
        for stream in by_speaker.values() {
            for pair in stream.windows(2) {
                if pair[1].0 <= pair[0].0 {
                    out_of_order += 1;
                } else if pair[1].0 == pair[0].0 + 1 {
                    gaps.push(pair[1].1.saturating_sub(pair[0].1) / 1000);
                }
            }
        }
    }
    let mut deviations: Vec<u64> = gaps.iter().map(|g| g.abs_diff(20_000)).collect();
    gaps.sort_unstable();
    deviations.sort_unstable();
    let expected = u64::from(chunks) * streams as u64 * args.audio_listeners as u64;

    let mut m = Map::new();
    m.insert("scenario".into(), json!("audio"));
    m.insert("run_id".into(), json!(ctx.run_id));
    m.insert("url".into(), json!(args.url));
    m.insert("voice_channels".into(), json!(channels));
    m.insert("streams".into(), json!(streams));
    m.insert("listeners".into(), json!(listeners));
    m.insert("chunks_per_stream".into(), json!(chunks));
    m.insert("ahead".into(), json!(args.audio_ahead));
    m.insert("expected_chunks".into(), json!(expected));
    m.insert("received_chunks".into(), json!(received));
    m.insert("lost".into(), json!(expected.saturating_sub(received)));
    m.insert("out_of_order".into(), json!(out_of_order));
    m.insert("window_s".into(), json!(window.as_secs_f64()));
    m.insert(
        "arrival_gap_us".into(),
        json!({"p1": quantile(&gaps, 0.01), "p50": quantile(&gaps, 0.5), "p99": quantile(&gaps, 0.99), "max": gaps.last()}),
    );
    m.insert(
        "jitter_us".into(),
        json!({"p50": quantile(&deviations, 0.5), "p99": quantile(&deviations, 0.99), "max": deviations.last()}),
    );
    if let (Some(b), Some(a)) = (before, after) {
        let cpu = a.cpu_us.saturating_sub(b.cpu_us);
        m.insert("server_cpu_ms".into(), json!(cpu as f64 / 1000.0));
        if received > 0 {
            m.insert(
                "server_cpu_us_per_relayed_chunk".into(),
                json!(cpu as f64 / received as f64),
            );
        }
    }
    if let Some(base) = baseline {
        m.insert("server_rss_before_kib".into(), json!(base.rss_kib));
        m.insert("server_rss_peak_kib".into(), json!(rss_peak));
        m.insert(
            "server_kib_per_stream".into(),
            json!(rss_peak.saturating_sub(base.rss_kib) as f64 / streams as f64),
        );
    }
    m.insert("speaker_errors".into(), json!(speaker_errors));
    m.insert("listener_errors".into(), json!(listener_errors));
    m.insert(
        "completed".into(),
        json!(speaker_errors.is_empty() && listener_errors.is_empty()),
    );
    Ok(Value::Object(m))
}
