//! Audio over the gateway (`protocol-v2.md` §15): the chunks a [`crate::Gateway`]
//! receives, per speaker, and the WAV helpers (16-bit PCM mono at 16 or 48 kHz) that
//! turn a file into chunks and chunks back into a file.
//!
//! Receiving: [`crate::Gateway::audio`] gives an [`AudioStreams`], which yields one
//! [`SpeakerStream`] per stream a speaker opens (on its `MEDIA_STARTED`); the speaker
//! stream yields that speaker's [`AudioChunk`]s in order and ends after its
//! `MEDIA_ENDED` ([`SpeakerStream::end`] says why). Sending:
//! [`crate::Gateway::send_audio`] and [`crate::Gateway::play_wav`].

use std::{
    collections::HashMap,
    io::{Read, Seek, Write},
    path::Path,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

pub use concord_protocol::{AudioFormat, MediaEndReason, MediaEnded, MediaStarted};
use concord_protocol::{ChannelId, RelayedHeader, UserId};
use tokio::sync::mpsc;

/// One speaker's 20 ms chunk, as the server's pacer released it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioChunk {
    /// Who is speaking.
    pub speaker: UserId,
    /// The stream's format.
    pub format: AudioFormat,
    /// The sender's sequence number (a gap: chunks were skipped or dropped).
    pub sequence: u32,
    /// The sender's timestamp, milliseconds since the stream's start.
    pub timestamp: u32,
    /// One chunk of audio in `format` (§15.1).
    pub payload: Vec<u8>,
}

/// How a [`SpeakerStream`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEnd {
    /// The server's `MEDIA_ENDED`, with its reason.
    Media(MediaEndReason),
    /// The session it belonged to is gone (a fresh IDENTIFY after the session could
    /// not be resumed, or the gateway stopped): no `MEDIA_ENDED` will come.
    SessionLost,
}

/// What the router and a [`SpeakerStream`] share.
#[derive(Debug, Default)]
struct SpeakerShared {
    end: Mutex<Option<StreamEnd>>,
    dropped: AtomicU64,
}

/// One stream of one speaker: its chunks, in the order the server released them,
/// then the end (after the chunks still buffered are read).
#[derive(Debug)]
pub struct SpeakerStream {
    /// The speaker.
    pub user_id: UserId,
    /// The voice channel.
    pub channel_id: ChannelId,
    /// The stream's format.
    pub format: AudioFormat,
    rx: mpsc::Receiver<AudioChunk>,
    shared: Arc<SpeakerShared>,
}

impl SpeakerStream {
    /// Why the stream ended, once it has; `None` while it is open.
    pub fn end(&self) -> Option<StreamEnd> {
        *self.shared.end.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Chunks dropped because this stream was not read fast enough
    /// ([`crate::GatewayConfig::audio_buffer`] chunks wait at most).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The next chunk; `None` once the stream has ended and every chunk was read.
    pub async fn recv(&mut self) -> Option<AudioChunk> {
        self.rx.recv().await
    }
}

impl futures_util::Stream for SpeakerStream {
    type Item = AudioChunk;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<AudioChunk>> {
        self.rx.poll_recv(cx)
    }
}

/// The speaker streams of the channel a session is subscribed to, one per stream a
/// speaker opens, as they open. Ends when the gateway stops for good.
#[derive(Debug)]
pub struct AudioStreams {
    rx: mpsc::UnboundedReceiver<SpeakerStream>,
}

impl AudioStreams {
    /// The next speaker stream to open; `None` once the gateway has stopped.
    pub async fn recv(&mut self) -> Option<SpeakerStream> {
        self.rx.recv().await
    }
}

impl futures_util::Stream for AudioStreams {
    type Item = SpeakerStream;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SpeakerStream>> {
        self.rx.poll_recv(cx)
    }
}

/// An open speaker stream, on the router's side.
struct OpenSpeaker {
    channel_id: ChannelId,
    format: AudioFormat,
    tx: mpsc::Sender<AudioChunk>,
    shared: Arc<SpeakerShared>,
}

impl OpenSpeaker {
    fn finish(self, end: StreamEnd) {
        *self.shared.end.lock().unwrap_or_else(|e| e.into_inner()) = Some(end);
        // Dropping `tx` ends the stream after the chunks it holds.
    }
}

/// Routes relayed chunks to speaker streams, and opens and ends those on
/// `MEDIA_STARTED` / `MEDIA_ENDED` (run by the connection's task, in frame order).
#[derive(Default)]
pub(crate) struct Router {
    streams: Option<mpsc::UnboundedSender<SpeakerStream>>,
    open: HashMap<UserId, OpenSpeaker>,
    /// The session's own user: its `MEDIA_STARTED` / `MEDIA_ENDED` are about the
    /// session's own stream, never a stream it receives.
    pub(crate) own_user: Option<UserId>,
    capacity: usize,
}

impl Router {
    /// A new receiver of speaker streams, replacing the earlier one.
    pub(crate) fn listen(&mut self, capacity: usize) -> AudioStreams {
        let (tx, rx) = mpsc::unbounded_channel();
        self.streams = Some(tx);
        self.capacity = capacity.max(1);
        AudioStreams { rx }
    }

    /// A stream opened (not the session's own).
    pub(crate) fn started(&mut self, started: &MediaStarted) {
        if self.own_user == Some(started.user_id) {
            return;
        }
        if let Some(open) = self.open.get(&started.user_id) {
            if open.channel_id == started.channel_id && open.format == started.format {
                // A SUBSCRIBE announces the streams already open again.
                return;
            }
            if let Some(old) = self.open.remove(&started.user_id) {
                old.finish(StreamEnd::SessionLost);
            }
        }
        let Some(streams) = &self.streams else {
            return;
        };
        let (tx, rx) = mpsc::channel(self.capacity);
        let shared = Arc::new(SpeakerShared::default());
        let stream = SpeakerStream {
            user_id: started.user_id,
            channel_id: started.channel_id,
            format: started.format,
            rx,
            shared: Arc::clone(&shared),
        };
        if streams.send(stream).is_err() {
            self.streams = None;
            return;
        }
        self.open.insert(
            started.user_id,
            OpenSpeaker {
                channel_id: started.channel_id,
                format: started.format,
                tx,
                shared,
            },
        );
    }

    /// A stream ended.
    pub(crate) fn ended(&mut self, ended: &MediaEnded) {
        if let Some(open) = self.open.remove(&ended.user_id) {
            open.finish(StreamEnd::Media(ended.reason));
        }
    }

    /// A binary frame from the server: a relayed chunk goes to its speaker's stream;
    /// a chunk of no open stream, or one the application is too slow for, is dropped.
    pub(crate) fn chunk(&mut self, frame: &[u8]) {
        let Ok((header, payload)) = RelayedHeader::parse(frame) else {
            tracing::debug!(
                len = frame.len(),
                "an audio frame that does not parse; dropped"
            );
            return;
        };
        let Some(open) = self.open.get(&header.speaker) else {
            return;
        };
        let chunk = AudioChunk {
            speaker: header.speaker,
            format: header.format,
            sequence: header.sequence,
            timestamp: header.timestamp,
            payload: payload.to_vec(),
        };
        match open.tx.try_send(chunk) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                open.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The application dropped this speaker's stream.
                self.open.remove(&header.speaker);
            }
        }
    }

    /// Ends every open stream: the session is gone.
    pub(crate) fn end_all(&mut self) {
        for (_, open) in self.open.drain() {
            open.finish(StreamEnd::SessionLost);
        }
    }

    /// Ends every stream and the receiver of streams: the gateway stopped.
    pub(crate) fn close(&mut self) {
        self.end_all();
        self.streams = None;
    }
}

/// Why a WAV file cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// Reading or writing the file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not a WAV file the reader understands.
    #[error("not a readable WAV file: {0}")]
    Malformed(String),
    /// A WAV file of a kind the gateway does not carry (no resampling or mixing is
    /// done: convert it first, e.g. `ffmpeg -i in.wav -ac 1 -ar 48000 -sample_fmt s16 out.wav`).
    #[error(
        "unsupported WAV: {channels} channel(s), {sample_rate} Hz, {bits} bits {kind}; \
         needed: 16-bit integer PCM, mono, 16000 or 48000 Hz"
    )]
    Unsupported {
        /// Its channel count.
        channels: u16,
        /// Its sample rate.
        sample_rate: u32,
        /// Its bits per sample.
        bits: u16,
        /// `integer` or `float`.
        kind: &'static str,
    },
    /// A format WAV files are not written in (Opus).
    #[error("{0} audio is not written as WAV")]
    NotPcm(&'static str),
    /// A payload that is not whole 16-bit samples.
    #[error("a PCM chunk of {0} bytes is not whole 16-bit samples")]
    OddChunk(usize),
}

impl From<hound::Error> for WavError {
    fn from(err: hound::Error) -> Self {
        match err {
            hound::Error::IoError(err) => Self::Io(err),
            other => Self::Malformed(other.to_string()),
        }
    }
}

/// 16-bit PCM mono audio at a rate the gateway carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcmAudio {
    /// [`AudioFormat::Pcm16k`] or [`AudioFormat::Pcm48k`].
    pub format: AudioFormat,
    /// The samples.
    pub samples: Vec<i16>,
}

impl PcmAudio {
    /// Reads a WAV file: 16-bit integer PCM, mono, 16 or 48 kHz.
    ///
    /// # Errors
    /// [`WavError::Unsupported`] for any other kind of WAV (nothing is converted);
    /// [`WavError::Io`] and [`WavError::Malformed`] for a file that cannot be read.
    pub fn read_wav(path: impl AsRef<Path>) -> Result<Self, WavError> {
        let file = std::io::BufReader::new(std::fs::File::open(path)?);
        Self::from_wav(file)
    }

    /// Reads WAV bytes from `reader` (see [`PcmAudio::read_wav`]).
    ///
    /// # Errors
    /// As [`PcmAudio::read_wav`].
    pub fn from_wav(reader: impl Read) -> Result<Self, WavError> {
        let reader = hound::WavReader::new(reader)?;
        let spec = reader.spec();
        let format = match (spec.channels, spec.bits_per_sample, spec.sample_format) {
            (1, 16, hound::SampleFormat::Int) => match spec.sample_rate {
                16_000 => Some(AudioFormat::Pcm16k),
                48_000 => Some(AudioFormat::Pcm48k),
                _ => None,
            },
            _ => None,
        };
        let Some(format) = format else {
            return Err(WavError::Unsupported {
                channels: spec.channels,
                sample_rate: spec.sample_rate,
                bits: spec.bits_per_sample,
                kind: match spec.sample_format {
                    hound::SampleFormat::Int => "integer",
                    hound::SampleFormat::Float => "float",
                },
            });
        };
        let samples = reader
            .into_samples::<i16>()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { format, samples })
    }

    /// The audio as 20 ms chunks of its format (little-endian samples), the last one
    /// padded with silence (zero samples) to a whole chunk.
    pub fn chunks(&self) -> Vec<Vec<u8>> {
        pcm_chunks(self.format, &self.samples)
    }

    /// Writes the audio as a WAV file.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write_wav(&self, path: impl AsRef<Path>) -> Result<(), WavError> {
        let mut writer = WavRecorder::create(path, self.format)?;
        writer.write_samples(&self.samples)?;
        writer.finalize()?;
        Ok(())
    }
}

/// `samples` as 20 ms chunks of `format` (PCM; little-endian), the last padded with
/// zero samples. Empty for no samples.
///
/// # Panics
/// For a format that is not PCM ([`AudioFormat::Opus48k`]).
pub fn pcm_chunks(format: AudioFormat, samples: &[i16]) -> Vec<Vec<u8>> {
    let bytes = format
        .pcm_chunk_bytes()
        .expect("PCM chunks of a PCM format");
    samples
        .chunks(bytes / 2)
        .map(|chunk| {
            let mut out = Vec::with_capacity(bytes);
            for sample in chunk {
                out.extend_from_slice(&sample.to_le_bytes());
            }
            out.resize(bytes, 0);
            out
        })
        .collect()
}

/// A WAV file written chunk by chunk as audio arrives: its header is brought up to
/// date after every chunk (a reader sees a valid file at any time, even if the
/// process dies), and [`WavRecorder::finalize`] closes it.
pub struct WavRecorder<W: Write + Seek = std::io::BufWriter<std::fs::File>> {
    writer: hound::WavWriter<W>,
}

impl<W: Write + Seek> std::fmt::Debug for WavRecorder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavRecorder")
            .field("samples", &self.writer.len())
            .finish_non_exhaustive()
    }
}

fn spec(format: AudioFormat) -> Result<hound::WavSpec, WavError> {
    if format.pcm_chunk_bytes().is_none() {
        return Err(WavError::NotPcm(format.as_str()));
    }
    Ok(hound::WavSpec {
        channels: 1,
        sample_rate: format.sample_rate(),
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    })
}

impl WavRecorder {
    /// Creates (or truncates) the file at `path` for audio of `format`.
    ///
    /// # Errors
    /// [`WavError::NotPcm`] for Opus; the file cannot be created.
    pub fn create(path: impl AsRef<Path>, format: AudioFormat) -> Result<Self, WavError> {
        let spec = spec(format)?;
        Ok(Self {
            writer: hound::WavWriter::create(path, spec)?,
        })
    }
}

impl<W: Write + Seek> WavRecorder<W> {
    /// Writes a WAV of `format` to `writer`.
    ///
    /// # Errors
    /// [`WavError::NotPcm`] for Opus; the header cannot be written.
    pub fn new(writer: W, format: AudioFormat) -> Result<Self, WavError> {
        let spec = spec(format)?;
        Ok(Self {
            writer: hound::WavWriter::new(writer, spec)?,
        })
    }

    /// Appends one chunk's payload (little-endian 16-bit samples) and brings the
    /// header up to date.
    ///
    /// # Errors
    /// [`WavError::OddChunk`] for a payload of an odd length; the write fails.
    pub fn write_chunk(&mut self, payload: &[u8]) -> Result<(), WavError> {
        if !payload.len().is_multiple_of(2) {
            return Err(WavError::OddChunk(payload.len()));
        }
        {
            let mut samples = self.writer.get_i16_writer(
                u32::try_from(payload.len() / 2).map_err(|_| WavError::OddChunk(payload.len()))?,
            );
            for pair in payload.chunks_exact(2) {
                samples.write_sample(i16::from_le_bytes([pair[0], pair[1]]));
            }
            samples.flush()?;
        }
        self.writer.flush()?;
        Ok(())
    }

    /// Appends samples and brings the header up to date.
    ///
    /// # Errors
    /// The write fails.
    pub fn write_samples(&mut self, samples: &[i16]) -> Result<(), WavError> {
        for sample in samples {
            self.writer.write_sample(*sample)?;
        }
        self.writer.flush()?;
        Ok(())
    }

    /// Samples written so far.
    pub fn samples(&self) -> u32 {
        self.writer.len()
    }

    /// Closes the file with its header's sizes final; returns the samples written.
    ///
    /// # Errors
    /// The write fails.
    pub fn finalize(self) -> Result<u32, WavError> {
        let samples = self.writer.len();
        self.writer.finalize()?;
        Ok(samples)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn wav(spec: hound::WavSpec, samples: u32) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        {
            let mut writer = hound::WavWriter::new(&mut out, spec).unwrap();
            for i in 0..samples * u32::from(spec.channels) {
                match (spec.sample_format, spec.bits_per_sample) {
                    (hound::SampleFormat::Float, _) => writer.write_sample(0.5f32).unwrap(),
                    (_, 8) => writer.write_sample(i8::try_from(i % 100).unwrap()).unwrap(),
                    _ => writer
                        .write_sample(i16::try_from(i % 30_000).unwrap())
                        .unwrap(),
                }
            }
            writer.finalize().unwrap();
        }
        out.into_inner()
    }

    fn mono16(rate: u32) -> hound::WavSpec {
        hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        }
    }

    fn relayed(speaker: UserId, sequence: u32) -> Vec<u8> {
        let mut frame = Vec::new();
        RelayedHeader {
            format: AudioFormat::Pcm16k,
            sequence,
            timestamp: sequence * 20,
            speaker,
        }
        .write(&mut frame);
        frame.extend_from_slice(&[u8::try_from(sequence % 256).unwrap(); 640]);
        frame
    }

    #[tokio::test]
    async fn the_router_gives_each_speaker_stream_its_own_chunks_and_end() {
        let (me, ann, bo, channel) = (
            UserId::new(),
            UserId::new(),
            UserId::new(),
            ChannelId::new(),
        );
        let started = |user_id| MediaStarted {
            user_id,
            channel_id: channel,
            format: AudioFormat::Pcm16k,
        };
        let mut router = Router {
            own_user: Some(me),
            ..Router::default()
        };
        // No receiver yet: a stream that opens now is not delivered, nor its chunks.
        router.started(&started(bo));
        router.chunk(&relayed(bo, 0));
        let mut streams = router.listen(2);
        router.started(&started(me));
        router.started(&started(ann));
        router.started(&started(ann)); // announced again by a second SUBSCRIBE
        let mut ann_stream = streams.recv().await.unwrap();
        assert_eq!((ann_stream.user_id, ann_stream.channel_id), (ann, channel));
        assert!(
            streams.rx.try_recv().is_err(),
            "one stream for Ann, none for me"
        );
        for sequence in 0..3 {
            router.chunk(&relayed(ann, sequence));
        }
        router.chunk(&relayed(me, 9));
        router.chunk(b"\xA7 short");
        router.ended(&MediaEnded {
            user_id: ann,
            channel_id: channel,
            reason: MediaEndReason::Cleared,
        });
        // Two chunks fit; the third was dropped, not waited for.
        assert_eq!(ann_stream.dropped(), 1);
        assert_eq!(
            ann_stream.end(),
            Some(StreamEnd::Media(MediaEndReason::Cleared))
        );
        let first = ann_stream.recv().await.unwrap();
        assert_eq!(
            (first.sequence, first.timestamp, first.payload[0]),
            (0, 0, 0)
        );
        assert_eq!(ann_stream.recv().await.unwrap().sequence, 1);
        assert_eq!(ann_stream.recv().await, None);

        // A session lost ends what is open; closing ends the receiver of streams.
        router.started(&started(bo));
        let mut bo_stream = streams.recv().await.unwrap();
        router.end_all();
        assert_eq!(bo_stream.recv().await, None);
        assert_eq!(bo_stream.end(), Some(StreamEnd::SessionLost));
        router.close();
        assert!(streams.recv().await.is_none());
    }

    #[test]
    fn a_wav_is_cut_into_20_ms_chunks_and_the_last_is_zero_padded() {
        // 16 kHz: 320 samples a chunk; 1000 samples = 3 chunks and 40 samples.
        let audio = PcmAudio::from_wav(Cursor::new(wav(mono16(16_000), 1000))).unwrap();
        assert_eq!(audio.format, AudioFormat::Pcm16k);
        let chunks = audio.chunks();
        assert_eq!(chunks.len(), 4);
        assert!(chunks.iter().all(|c| c.len() == 640));
        let samples: Vec<i16> = chunks
            .concat()
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(&samples[..1000], &audio.samples[..]);
        assert_eq!(audio.samples[999], 999);
        assert!(samples[1000..].iter().all(|s| *s == 0));
        for chunk in &chunks {
            assert!(AudioFormat::Pcm16k.check_chunk(chunk).is_ok());
        }

        // 48 kHz, an exact number of chunks: no padding chunk.
        let audio = PcmAudio::from_wav(Cursor::new(wav(mono16(48_000), 960 * 2))).unwrap();
        assert_eq!(audio.format, AudioFormat::Pcm48k);
        let chunks = audio.chunks();
        assert_eq!(chunks.len(), 2);
        assert!(chunks.iter().all(|c| c.len() == 1920));
        assert!(pcm_chunks(AudioFormat::Pcm48k, &[]).is_empty());
    }

    #[test]
    fn wavs_of_another_rate_width_or_channel_count_are_refused() {
        let cases = [
            mono16(44_100),
            hound::WavSpec {
                channels: 2,
                ..mono16(48_000)
            },
            hound::WavSpec {
                bits_per_sample: 8,
                ..mono16(16_000)
            },
            hound::WavSpec {
                bits_per_sample: 32,
                sample_format: hound::SampleFormat::Float,
                ..mono16(48_000)
            },
        ];
        for spec in cases {
            let err = PcmAudio::from_wav(Cursor::new(wav(spec, 10))).unwrap_err();
            assert!(
                matches!(err, WavError::Unsupported { .. }),
                "{spec:?}: {err}"
            );
            assert!(err.to_string().contains("needed: 16-bit"), "{err}");
        }
        let err = PcmAudio::from_wav(Cursor::new(b"RIFF not a wav".to_vec())).unwrap_err();
        assert!(matches!(err, WavError::Malformed(_)), "{err}");
    }

    #[test]
    fn the_recorder_writes_chunks_back_into_the_same_samples() {
        let original: Vec<i16> = (0..700).map(|i| i * 37 - 12_000).collect();
        let chunks = pcm_chunks(AudioFormat::Pcm16k, &original);
        let mut out = Cursor::new(Vec::new());
        let mut recorder = WavRecorder::new(&mut out, AudioFormat::Pcm16k).unwrap();
        recorder.write_chunk(&chunks[0]).unwrap();
        assert_eq!(recorder.samples(), 320);
        for chunk in &chunks[1..] {
            recorder.write_chunk(chunk).unwrap();
        }
        assert!(matches!(
            recorder.write_chunk(&[1, 2, 3]),
            Err(WavError::OddChunk(3))
        ));
        assert_eq!(recorder.finalize().unwrap(), 960);
        let back = PcmAudio::from_wav(Cursor::new(out.into_inner())).unwrap();
        assert_eq!(back.format, AudioFormat::Pcm16k);
        assert_eq!(&back.samples[..700], &original[..]);
        assert!(back.samples[700..].iter().all(|s| *s == 0));
        assert!(matches!(
            WavRecorder::new(Cursor::new(Vec::new()), AudioFormat::Opus48k),
            Err(WavError::NotPcm("opus_48k"))
        ));
    }
}
