//! `concord voice play` heard by `concord voice record`, both real binaries against a
//! real server: the WAV recorded equals the WAV played, sample for sample (the
//! player's last partial chunk padded with silence), and both leave the channel.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
};

use concord_testkit::{TestServer, WAIT};
use serde_json::{Value, json};

fn concord() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_concord"));
    for (name, _) in std::env::vars() {
        if name.starts_with("CONCORD_") {
            command.env_remove(name);
        }
    }
    command
}

/// 1.5 s and 100 samples of a 16 kHz ramp (every sample differs from its
/// neighbours): 75 whole chunks and a partial one.
fn write_ramp(path: &Path) -> Vec<i16> {
    let samples: Vec<i16> = (0..24_100i32)
        .map(|i| i16::try_from((i * 37) % 60_000 - 30_000).unwrap())
        .collect();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for sample in &samples {
        writer.write_sample(*sample).unwrap();
    }
    writer.finalize().unwrap();
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wav_played_is_recorded_sample_for_sample() {
    let server = TestServer::start().await;
    let url = server.url("");
    let alice = server.user("alice").await;
    let guild = alice.create_server("radio").await;
    let voice = alice.create_channel(&guild, "studio", "voice").await;
    let res = alice.api.post("/bots", &json!({"name": "Jingle"})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let bot_token = res.body["token"].as_str().unwrap().to_string();
    let bot_user = res.body["bot"]["user_id"].as_str().unwrap().to_string();
    let res = server
        .api()
        .bot(&bot_token)
        .post_empty(&format!("/servers/{guild}/join"))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);

    let dir = std::env::temp_dir().join(format!("concord-voice-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let played_file = dir.join("ramp.wav");
    let played = write_ramp(&played_file);
    let out = dir.join("recorded");

    // The recorder (Alice, by access token) first; it says when it is subscribed.
    let mut recorder = concord()
        .args([
            "voice",
            "record",
            "--url",
            &url,
            "--token",
            &alice.token,
            "--channel",
            &voice,
            "--out",
            out.to_str().unwrap(),
            "--exit-after-streams",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn concord voice record");
    let (tx, lines) = mpsc::channel();
    let stderr = BufReader::new(recorder.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut said = Vec::new();
    loop {
        let line = tokio::task::block_in_place(|| lines.recv_timeout(WAIT))
            .unwrap_or_else(|_| panic!("the recorder did not start: {said:?}"));
        let ready = line.starts_with("voice: recording");
        said.push(line);
        if ready {
            break;
        }
    }

    // The player (the bot) joins, plays the whole file, and exits once it was heard.
    let play = {
        let args = [
            "voice".to_string(),
            "play".into(),
            "--url".into(),
            url.clone(),
            "--bot-token".into(),
            bot_token.clone(),
            "--channel".into(),
            voice.clone(),
            played_file.to_str().unwrap().to_string(),
        ];
        tokio::task::spawn_blocking(move || {
            concord()
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .expect("run concord voice play")
        })
        .await
        .unwrap()
    };
    let stderr = String::from_utf8_lossy(&play.stderr);
    assert!(play.status.success(), "{stderr}");
    let summary: Value = serde_json::from_slice(&play.stdout).expect("one JSON summary");
    assert_eq!(summary["chunks"], 76, "{summary}");
    assert_eq!(summary["format"], "pcm_s16le_16k");

    // The recorder exits after the one stream ended.
    let recorded = tokio::task::spawn_blocking(move || recorder.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        recorded.status.success(),
        "{:?}",
        lines.try_iter().collect::<Vec<_>>()
    );
    let line: Value = serde_json::from_slice(&recorded.stdout).expect("one JSON line");
    assert_eq!(line["user_id"], bot_user.as_str());
    assert_eq!(line["reason"], "stopped");
    assert_eq!(line["chunks"], 76);
    assert_eq!(line["gaps"], 0);
    let file = out.join(format!("{bot_user}.wav"));
    assert_eq!(line["file"], file.to_str().unwrap());

    let mut reader = hound::WavReader::open(&file).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 16_000, 16)
    );
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    assert_eq!(samples.len(), 76 * 320);
    assert!(
        samples[..played.len()] == played[..],
        "the recording differs"
    );
    assert!(
        samples[played.len()..].iter().all(|s| *s == 0),
        "the padding is silence"
    );

    // Both left the channel.
    let res = alice.api.get(&format!("/channels/{voice}/voice")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body.as_array().map(Vec::len), Some(0), "{}", res.body);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A name no other run of this test uses at the same time.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// A WAV the gateway does not carry is refused before anything is joined, with the
/// reason (nothing is resampled).
#[test]
fn a_wav_of_another_rate_is_refused_with_a_clear_message() {
    let dir = std::env::temp_dir().join(format!("concord-voice-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cd.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&file, spec).unwrap();
    for _ in 0..882 {
        writer.write_sample(0i16).unwrap();
    }
    writer.finalize().unwrap();
    let out = concord()
        .args([
            "voice",
            "play",
            "--url",
            "http://127.0.0.1:9",
            "--bot-token",
            "unused",
            "--channel",
            "00000000-0000-0000-0000-000000000000",
            file.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("unsupported WAV: 2 channel(s), 44100 Hz"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
