//! Audio over the gateway through the SDK, against the real server: a bot plays a
//! tone pushed all at once and a listener (on a compressed connection) receives every
//! chunk in order, then `MEDIA_ENDED stopped`; a stream cleared mid-way ends `cleared`
//! with fewer chunks; refusals come back as `Error::Refused`; a subscription survives
//! a RESUME, and a stream cut by one ends `disconnected` and is started again.

use std::time::Duration;

use concord_client::{
    Backoff, BotToken, Compression, Error, Event, Gateway, GatewayConfig, GatewayEvent,
    StaticToken, TokenProvider,
    audio::{AudioChunk, AudioFormat, MediaEndReason, SpeakerStream, StreamEnd, pcm_chunks},
    protocol::{ErrorCode, UserId},
};
use concord_testkit::{TestServer, TestUser, WAIT};
use futures_util::StreamExt;
use serde_json::json;
use tokio::time::timeout;

fn config(server: &TestServer, token: impl TokenProvider) -> GatewayConfig {
    GatewayConfig::new(format!("ws://{}/ws", server.addr), token).with_backoff(Backoff {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
    })
}

/// A server with a voice channel that Alice and a bot are in, and Bob, a member who
/// is not.
struct Scene {
    server: TestServer,
    alice: TestUser,
    bob: TestUser,
    bot_token: String,
    bot_user: UserId,
    voice: String,
}

async fn scene() -> Scene {
    scene_on(TestServer::start().await).await
}

async fn scene_on(server: TestServer) -> Scene {
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let guild = alice.create_server("studio").await;
    bob.join(&guild).await;
    let voice = alice.create_channel(&guild, "booth", "voice").await;
    let res = alice.api.post("/bots", &json!({"name": "Speaker"})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let bot_token = res.body["token"].as_str().unwrap().to_string();
    let bot_user: UserId = res.body["bot"]["user_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let bot_api = server.api().bot(&bot_token);
    let res = bot_api.post_empty(&format!("/servers/{guild}/join")).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let res = bot_api
        .post_empty(&format!("/channels/{voice}/voice"))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    alice.join_voice(&voice).await;
    Scene {
        server,
        alice,
        bob,
        bot_token,
        bot_user,
        voice,
    }
}

impl Scene {
    fn bot(&self) -> Gateway {
        Gateway::new(config(
            &self.server,
            BotToken::new(&self.server.url(""), &self.bot_token),
        ))
    }

    fn user(&self, user: &TestUser, compression: Compression) -> Gateway {
        Gateway::new(
            config(&self.server, StaticToken::token(user.token.clone()))
                .with_compression(compression),
        )
    }
}

/// 5 s of a 440 Hz tone at 48 kHz, whose every chunk differs from the others (the
/// amplitude rises chunk by chunk), as 250 chunks of 1920 bytes.
fn tone() -> Vec<Vec<u8>> {
    let samples: Vec<i16> = (0..250 * 960)
        .map(|i| {
            let t = f64::from(i) / 48_000.0;
            let amplitude = 2000.0 + f64::from(i / 960) * 100.0;
            #[allow(clippy::cast_possible_truncation)]
            let sample = ((t * 440.0 * std::f64::consts::TAU).sin() * amplitude) as i16;
            sample
        })
        .collect();
    let chunks = pcm_chunks(AudioFormat::Pcm48k, &samples);
    assert_eq!(chunks.len(), 250);
    chunks
}

async fn next_stream(streams: &mut concord_client::audio::AudioStreams) -> SpeakerStream {
    timeout(WAIT, streams.recv())
        .await
        .expect("a speaker stream in time")
        .expect("the gateway is running")
}

/// Every chunk of a speaker stream until it ends.
async fn drain(speaker: &mut SpeakerStream) -> Vec<AudioChunk> {
    let mut chunks = Vec::new();
    while let Some(chunk) = timeout(WAIT, speaker.next())
        .await
        .expect("a chunk or the end in time")
    {
        chunks.push(chunk);
    }
    chunks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tone_pushed_at_once_arrives_whole_and_in_order_then_ends_stopped() {
    let scene = scene().await;
    let listener = scene.user(&scene.alice, Compression::ZstdStream);
    let mut events = listener.events();
    let mut streams = listener.audio();
    listener.connect().await.unwrap();
    listener.subscribe_audio(None).await.unwrap();

    let bot = scene.bot();
    bot.connect().await.unwrap();
    let tone = tone();
    let sent = bot
        .send_audio(
            AudioFormat::Pcm48k,
            futures_util::stream::iter(tone.clone()),
        )
        .await
        .unwrap();
    assert_eq!(sent, 250);

    let mut speaker = next_stream(&mut streams).await;
    assert_eq!(speaker.user_id, scene.bot_user);
    assert_eq!(speaker.format, AudioFormat::Pcm48k);
    assert_eq!(speaker.channel_id.to_string(), scene.voice);
    let chunks = drain(&mut speaker).await;
    assert_eq!(chunks.len(), 250, "every chunk, none dropped");
    for (i, chunk) in chunks.iter().enumerate() {
        let i = u32::try_from(i).unwrap();
        assert_eq!((chunk.sequence, chunk.timestamp), (i, i * 20));
        assert_eq!(chunk.speaker, scene.bot_user);
        assert_eq!(chunk.format, AudioFormat::Pcm48k);
        assert!(chunk.payload == tone[i as usize], "chunk {i} differs");
    }
    assert_eq!(
        speaker.end(),
        Some(StreamEnd::Media(MediaEndReason::Stopped))
    );
    assert_eq!(speaker.dropped(), 0);
    // The player hears its own end: everything was released.
    assert_eq!(
        timeout(WAIT, bot.audio_end()).await.unwrap().unwrap(),
        MediaEndReason::Stopped
    );

    // The same stream as typed dispatches on the listener's event stream.
    let (mut started, mut ended) = (None, None);
    while ended.is_none() {
        let event = timeout(WAIT, events.next()).await.unwrap().unwrap();
        match event {
            Event::Dispatch {
                event: GatewayEvent::MediaStarted(d),
                ..
            } => started = Some(d),
            Event::Dispatch {
                event: GatewayEvent::MediaEnded(d),
                ..
            } => ended = Some(d),
            _ => {}
        }
    }
    let (started, ended) = (started.unwrap(), ended.unwrap());
    assert_eq!(
        (started.user_id, started.format),
        (scene.bot_user, AudioFormat::Pcm48k)
    );
    assert_eq!(
        (ended.user_id, ended.reason),
        (scene.bot_user, MediaEndReason::Stopped)
    );

    bot.disconnect().await;
    listener.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cleared_mid_way_ends_cleared_and_refusals_are_errors() {
    let scene = scene().await;
    let listener = scene.user(&scene.alice, Compression::ZlibStream);
    let mut streams = listener.audio();
    listener.connect().await.unwrap();
    listener.subscribe_audio(None).await.unwrap();

    let bot = scene.bot();
    bot.connect().await.unwrap();
    bot.start_audio(AudioFormat::Pcm48k).await.unwrap();
    let tone = tone();
    for (i, chunk) in tone.iter().enumerate() {
        let i = u32::try_from(i).unwrap();
        bot.send_audio_chunk(i, i * 20, chunk).await.unwrap();
    }
    let mut speaker = next_stream(&mut streams).await;
    for _ in 0..10 {
        timeout(WAIT, speaker.next()).await.unwrap().unwrap();
    }
    bot.clear_audio().await.unwrap();
    let rest = drain(&mut speaker).await;
    assert!(
        10 + rest.len() < 250,
        "{} chunks after the clear",
        rest.len()
    );
    assert_eq!(
        speaker.end(),
        Some(StreamEnd::Media(MediaEndReason::Cleared))
    );
    assert_eq!(
        timeout(WAIT, bot.audio_end()).await.unwrap().unwrap(),
        MediaEndReason::Cleared
    );

    // Bob is no voice channel: neither a stream nor a subscription.
    let bob = scene.user(&scene.bob, Compression::ZlibStream);
    bob.connect().await.unwrap();
    for refused in [
        bob.subscribe_audio(None).await,
        bob.start_audio(AudioFormat::Pcm16k).await,
    ] {
        match refused {
            Err(Error::Refused(error)) => assert_eq!(error.code, ErrorCode::Forbidden),
            other => panic!("{other:?}"),
        }
    }
    bob.disconnect().await;
    bot.disconnect().await;
    listener.disconnect().await;
}

async fn resumed(events: &mut concord_client::EventStream) {
    loop {
        let event = timeout(WAIT, events.next())
            .await
            .expect("an event in time")
            .expect("the gateway is running");
        if let Event::Resumed { .. } = event {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_survives_a_resume_and_a_stream_is_started_again_after_one() {
    // The presence grace of a real server: a user whose socket drops stays in the
    // voice channel while the session waits for its RESUME (the test default, no
    // grace, takes them out at once, and the subscription with them).
    let server = TestServer::start_with(|config| config.limits.presence_grace_secs = 60).await;
    let scene = scene_on(server).await;
    let listener = scene.user(&scene.alice, Compression::ZlibStream);
    let mut listener_events = listener.events();
    let mut streams = listener.audio();
    listener.connect().await.unwrap();
    listener.subscribe_audio(None).await.unwrap();
    // The listener's socket is closed (4009, resumable) and the session resumed.
    scene
        .server
        .state
        .hub
        .close_user(scene.alice.user_id(), concord_gateway::CloseReason::Expired);
    resumed(&mut listener_events).await;

    let bot = scene.bot();
    let mut bot_events = bot.events();
    bot.connect().await.unwrap();
    let tone = tone();
    bot.start_audio(AudioFormat::Pcm48k).await.unwrap();
    for (i, chunk) in tone.iter().enumerate().take(100) {
        let i = u32::try_from(i).unwrap();
        bot.send_audio_chunk(i, i * 20, chunk).await.unwrap();
    }
    // Still subscribed after the RESUME: the stream arrives.
    let mut first = next_stream(&mut streams).await;
    timeout(WAIT, first.next()).await.unwrap().unwrap();
    // The bot's socket goes mid-stream: the stream ends `disconnected`, for the
    // listener and, replayed on its RESUME, for the bot.
    scene
        .server
        .state
        .hub
        .close_user(scene.bot_user, concord_gateway::CloseReason::Expired);
    let heard = drain(&mut first).await;
    assert!(heard.len() < 100, "{} chunks", heard.len());
    assert_eq!(
        first.end(),
        Some(StreamEnd::Media(MediaEndReason::Disconnected))
    );
    resumed(&mut bot_events).await;
    assert_eq!(
        timeout(WAIT, bot.audio_end()).await.unwrap().unwrap(),
        MediaEndReason::Disconnected
    );

    // Started again on the resumed session, and heard whole.
    let sent = bot
        .send_audio(
            AudioFormat::Pcm48k,
            futures_util::stream::iter(tone[..25].to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(sent, 25);
    let mut second = next_stream(&mut streams).await;
    let chunks = drain(&mut second).await;
    assert_eq!(chunks.len(), 25);
    assert!(chunks.iter().zip(&tone).all(|(c, t)| c.payload == *t));
    assert_eq!(
        second.end(),
        Some(StreamEnd::Media(MediaEndReason::Stopped))
    );
    bot.disconnect().await;
    listener.disconnect().await;
}
