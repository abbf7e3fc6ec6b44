// Voice channels in "gateway audio" mode (docs/protocol-v2.md §15): no WebRTC, the
// audio rides the gateway socket. Joining a channel (REST) subscribes to every
// speaker's stream (MEDIA_SUBSCRIBE) and plays each through a jitter buffer in an
// AudioWorklet; the microphone goes through another AudioWorklet that cuts it into
// 20 ms chunks of 48 kHz PCM, sent as binary frames after MEDIA_START. Mute stops the
// stream (MEDIA_STOP); leave ends it all.
//
// `window.concordAudioStats` counts what flows, for the browser test and the curious:
// {chunksReceived, chunksSent, chunksCaptured (20 ms frames the microphone gave, sent
// or not), chunksPlayed / chunksDropped (relayed chunks the playback worklet played to
// their end / dropped from a too-long jitter buffer), speakers (user ids whose stream is
// open, not our own),
// sending (our own stream is open), received (user id -> chunks), outOfOrder (relayed
// chunks whose sequence number was not above the speaker's last), events ("MEDIA_STARTED
// <user id>" / "MEDIA_ENDED <user id> <reason>", in order), errors (audio ERROR codes,
// and PLAYBACK_WORKLET / CAPTURE_WORKLET when a worklet fails)}.

import { ApiError } from './api.js';
import { byId, el, showError } from './dom.js';
import { AUDIO_MAGIC } from './gateway.js';

const SEND_FORMAT = 'pcm_s16le_48k';
const KIND_UPLINK = 0x01;
const KIND_RELAYED = 0x02;
const UPLINK_HEADER = 12;
const RELAYED_HEADER = 28;
const CHUNK_MS = 20;
/** Relayed formats by their header code: name and sample rate. */
const FORMATS = {
  1: { name: 'pcm_s16le_16k', rate: 16_000 },
  2: { name: 'pcm_s16le_48k', rate: 48_000 },
  3: { name: 'opus_48k', rate: 48_000 },
};
/**
 * Socket backlog (bytes) past which a captured chunk is dropped rather than queued: a
 * stalled connection must not turn into seconds of delay. About half a second of audio.
 */
const MAX_BACKLOG = 48 * 1024;
/** ERROR codes that concern the audio, shown while in a voice channel. */
const AUDIO_ERRORS = new Set(['FORBIDDEN', 'BINARY_NOT_ACCEPTED', 'INVALID_PAYLOAD', 'AUDIO_BUFFER_FULL']);

/** The user id in the 16 bytes at `offset` of `view`, in the usual 8-4-4-4-12 form. */
function uuidAt(view, offset) {
  let hex = '';
  for (let i = 0; i < 16; i += 1) hex += view.getUint8(offset + i).toString(16).padStart(2, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The signed 16-bit little-endian samples of `view` from `offset`, as Float32 in [-1, 1). */
function pcmFloats(view, offset) {
  const count = (view.byteLength - offset) >> 1;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 1) out[i] = view.getInt16(offset + i * 2, true) / 0x8000;
  return out;
}

/** Voice in the web client: one channel at a time, over `gateway`. */
export class Voice {
  constructor(session, gateway, chat) {
    this.session = session;
    this.gateway = gateway;
    this.chat = chat;
    /** The voice channel we are in, or null. */
    this.channel = null;
    /** channel id -> Map(user id -> {username, self_mute}), for the channels we know. */
    this.rosters = new Map();
    /** Users whose stream is open in our channel (our own included while sending). */
    this.speaking = new Set();
    this.muted = false;
    /** Our own stream: 'off', 'starting' (MEDIA_START sent) or 'open' (MEDIA_STARTED seen). */
    this.stream = 'off';
    this.seq = 0;
    /** speaker id -> the last sequence number relayed from them. */
    this.lastSeq = new Map();
    /** The audio graph while in a channel: {context, playback, capture, mic}. */
    this.audio = null;
    /** speaker id -> WebCodecs AudioDecoder, for opus_48k streams. */
    this.decoders = new Map();
    this.busy = false;
    this.stats = {
      chunksReceived: 0, chunksSent: 0, chunksCaptured: 0, chunksPlayed: 0, chunksDropped: 0,
      speakers: [], sending: false,
      received: {}, outOfOrder: 0, events: [], errors: [],
    };
    window.concordAudioStats = this.stats;
    gateway.onAudio = (view) => this.relayed(view);
    gateway.addEventListener('dispatch', (e) => this.dispatch(e.detail.t, e.detail.d));
    gateway.addEventListener('error', (e) => this.refused(e.detail));
    gateway.addEventListener('state', (e) => this.connection(e.detail));
    byId('voice-mute').addEventListener('click', () => this.toggleMute().catch((err) => showError(err.message)));
    byId('voice-leave').addEventListener('click', () => this.leave().catch((err) => showError(err.message)));
  }

  get me() {
    return this.session.user?.id;
  }

  // ---- joining and leaving ----

  /** Joins voice channel `channelId` (leaving the one we are in, if another). */
  async join(channelId) {
    if (this.channel === channelId || this.busy) return;
    this.busy = true;
    try {
      if (this.channel) await this.leave();
      await this.session.call('POST', `/channels/${channelId}/voice`);
      this.channel = channelId;
      this.muted = false;
      this.draw();
      await this.loadRoster(channelId);
      await this.startAudio();
      if (this.channel !== channelId) return; // left while the microphone was asked for
      this.subscribe();
    } catch (err) {
      if (this.channel === channelId) await this.leave().catch(() => {});
      throw err;
    } finally {
      this.busy = false;
      this.draw();
    }
  }

  /** Leaves the voice channel: the server ends our stream and subscription. */
  async leave() {
    const channelId = this.channel;
    if (!channelId) return;
    this.teardown();
    try {
      await this.session.call('DELETE', `/channels/${channelId}/voice`);
    } catch (err) {
      // Already out (moved or removed elsewhere): nothing left to leave.
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
    }
  }

  /** Ends voice here (audio, stream, marks) without telling the server. */
  teardown() {
    if (!this.channel) return;
    this.channel = null;
    this.stream = 'off';
    this.stats.sending = false;
    this.speaking.clear();
    this.stats.speakers = [];
    this.lastSeq.clear();
    for (const decoder of this.decoders.values()) decoder.close();
    this.decoders.clear();
    this.stopAudio();
    this.draw();
  }

  /** Subscribes to the channel's audio and, unmuted, opens our stream. */
  subscribe() {
    this.gateway.send('MEDIA_SUBSCRIBE', { speakers: null });
    if (!this.muted && this.audio?.capture) this.startStream();
  }

  startStream() {
    if (this.gateway.send('MEDIA_START', { format: SEND_FORMAT })) {
      this.stream = 'starting';
      this.seq = 0;
    }
  }

  async toggleMute() {
    if (!this.channel) return;
    this.muted = !this.muted;
    if (this.muted) {
      // Chunks stop at once; MEDIA_STOP lets those already sent play out.
      if (this.stream !== 'off') this.gateway.send('MEDIA_STOP');
      this.stream = 'off';
      this.stats.sending = false;
    } else if (this.audio?.capture) {
      this.startStream();
    }
    this.draw();
    await this.session.call('PATCH', `/channels/${this.channel}/voice`, { self_mute: this.muted });
  }

  async loadRoster(channelId) {
    const list = await this.session.call('GET', `/channels/${channelId}/voice`);
    const roster = new Map(list.map((p) => [p.user_id, { username: p.username, self_mute: p.self_mute }]));
    this.rosters.set(channelId, roster);
    // Out of the channel while away (a new session found us gone): voice ends here too.
    if (channelId === this.channel && !this.busy && !roster.has(this.me)) this.teardown();
    this.draw();
  }

  /** Loads who is in each voice channel of `serverId` not known yet. */
  async loadServer(serverId) {
    const voice = [...this.chat.channels.values()].filter((c) => c.server_id === serverId && c.type === 'voice');
    await Promise.all(voice.filter((c) => !this.rosters.has(c.id)).map((c) => this.loadRoster(c.id)));
  }

  // ---- the audio graph ----

  /**
   * The AudioContext at 48 kHz (the wire's rate: no resampling of our own voice or of
   * 48 kHz speakers), the playback worklet, and the microphone through the capture
   * worklet. Without a microphone (none, or refused) we listen only.
   */
  async startAudio() {
    if (!window.AudioContext || !window.AudioWorkletNode) {
      showError('This browser cannot play voice here (AudioWorklet needs HTTPS or localhost).');
      return;
    }
    let context;
    try {
      context = new AudioContext({ sampleRate: 48_000, latencyHint: 'interactive' });
    } catch {
      context = new AudioContext({ latencyHint: 'interactive' }); // the worklets resample
    }
    this.audio = { context, playback: null, capture: null, mic: null };
    await context.audioWorklet.addModule('/app/capture-worklet.js');
    await context.audioWorklet.addModule('/app/playback-worklet.js');
    const playback = new AudioWorkletNode(context, 'concord-playback', {
      numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1],
    });
    playback.onprocessorerror = () => this.stats.errors.push('PLAYBACK_WORKLET');
    playback.port.onmessage = (event) => {
      if (event.data === 'played') this.stats.chunksPlayed += 1;
      else if (event.data === 'dropped') this.stats.chunksDropped += 1;
    };
    playback.connect(context.destination);
    this.audio.playback = playback;
    let mic = null;
    try {
      mic = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      this.muted = true;
      showError(`No microphone (${err.message || err.name}): you can listen, not speak.`);
    }
    if (this.audio?.context !== context) {
      // Left meanwhile.
      mic?.getTracks().forEach((t) => t.stop());
      return;
    }
    if (mic) {
      this.audio.mic = mic;
      const source = context.createMediaStreamSource(mic);
      const capture = new AudioWorkletNode(context, 'concord-capture', {
        numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
        channelCount: 1, channelCountMode: 'explicit', channelInterpretation: 'speakers',
      });
      capture.port.onmessage = (event) => this.captured(event.data);
      capture.onprocessorerror = () => this.stats.errors.push('CAPTURE_WORKLET');
      source.connect(capture);
      capture.connect(context.destination); // silent: keeps the node pulled
      this.audio.capture = capture;
    }
    await context.resume().catch(() => {});
  }

  stopAudio() {
    const audio = this.audio;
    this.audio = null;
    if (!audio) return;
    audio.mic?.getTracks().forEach((t) => t.stop());
    audio.capture?.port.postMessage('stop');
    audio.context.close().catch(() => {});
  }

  /** A 20 ms frame from the capture worklet (header room + 960 samples): send it if our stream is open. */
  captured(frame) {
    this.stats.chunksCaptured += 1;
    if (this.stream !== 'open' || this.muted) return;
    const seq = this.seq;
    this.seq += 1;
    // A stalled socket: skip this chunk (the sequence number says so to the listeners).
    if (this.gateway.buffered > MAX_BACKLOG) return;
    const view = new DataView(frame);
    view.setUint8(0, AUDIO_MAGIC);
    view.setUint8(1, KIND_UPLINK);
    view.setUint16(2, 0);
    view.setUint32(4, seq);
    view.setUint32(8, seq * CHUNK_MS);
    if (this.gateway.sendBinary(frame)) this.stats.chunksSent += 1;
  }

  /** A relayed chunk from the gateway (§15.3): counted, checked, played. */
  relayed(view) {
    if (view.byteLength <= RELAYED_HEADER || view.getUint8(1) !== KIND_RELAYED || !this.channel) return;
    const format = FORMATS[view.getUint8(2)];
    const seq = view.getUint32(4);
    const speaker = uuidAt(view, 12);
    const stats = this.stats;
    stats.chunksReceived += 1;
    stats.received[speaker] = (stats.received[speaker] ?? 0) + 1;
    const last = this.lastSeq.get(speaker);
    if (last !== undefined && seq <= last) stats.outOfOrder += 1;
    this.lastSeq.set(speaker, seq);
    const playback = this.audio?.playback;
    if (!format || !playback) return;
    if (format.name === 'opus_48k') {
      this.decodeOpus(speaker, view, seq);
      return;
    }
    const samples = pcmFloats(view, RELAYED_HEADER);
    playback.port.postMessage({ type: 'chunk', speaker, rate: format.rate, samples }, [samples.buffer]);
  }

  /** Opus through WebCodecs where the browser has it (Chromium does); otherwise not played. */
  decodeOpus(speaker, view, seq) {
    if (!window.AudioDecoder) return;
    let decoder = this.decoders.get(speaker);
    if (!decoder || decoder.state === 'closed') {
      decoder = new AudioDecoder({
        output: (data) => {
          const samples = new Float32Array(data.numberOfFrames);
          data.copyTo(samples, { planeIndex: 0, format: 'f32-planar' });
          data.close();
          this.audio?.playback.port.postMessage({ type: 'chunk', speaker, rate: data.sampleRate, samples }, [samples.buffer]);
        },
        error: () => this.decoders.delete(speaker),
      });
      decoder.configure({ codec: 'opus', sampleRate: 48_000, numberOfChannels: 1 });
      this.decoders.set(speaker, decoder);
    }
    const data = new Uint8Array(view.buffer, view.byteOffset + RELAYED_HEADER, view.byteLength - RELAYED_HEADER);
    decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: seq * CHUNK_MS * 1000, data }));
  }

  // ---- events ----

  dispatch(t, d) {
    switch (t) {
      case 'READY':
        // A new session: what we knew of the rosters may be stale.
        this.rosters.clear();
        if (this.channel) this.loadRoster(this.channel).catch(() => {});
        break;
      case 'VOICE_STATE_UPDATE':
        this.voiceState(d);
        break;
      case 'MEDIA_STARTED':
        this.started(d);
        break;
      case 'MEDIA_ENDED':
        this.ended(d);
        break;
      case 'CHANNEL_DELETE':
        this.rosters.delete(d.id);
        if (this.channel === d.id) this.teardown();
        break;
      default:
        break;
    }
  }

  voiceState(d) {
    for (const roster of this.rosters.values()) roster.delete(d.user_id);
    if (d.channel_id) {
      const roster = this.rosters.get(d.channel_id);
      roster?.set(d.user_id, { username: d.username, self_mute: d.self_mute });
    }
    if (d.user_id === this.me && this.channel && d.channel_id !== this.channel && !this.busy) {
      // Moved or removed from elsewhere (another tab, a moderator): voice ends here.
      this.teardown();
    }
    if (d.channel_id !== this.channel) this.speaking.delete(d.user_id);
    this.draw();
  }

  started(d) {
    if (d.channel_id !== this.channel) return;
    this.stats.events.push(`MEDIA_STARTED ${d.user_id}`);
    this.speaking.add(d.user_id);
    if (d.user_id === this.me) {
      if (this.stream === 'starting') {
        this.stream = 'open';
        this.stats.sending = true;
      }
    } else {
      this.lastSeq.delete(d.user_id); // a new stream numbers afresh
    }
    this.speakersChanged();
  }

  ended(d) {
    this.stats.events.push(`MEDIA_ENDED ${d.user_id} ${d.reason}`);
    this.speaking.delete(d.user_id);
    if (d.user_id === this.me) {
      // An end while a new START is on its way is the old stream's.
      if (this.stream === 'open') {
        this.stream = 'off';
        this.stats.sending = false;
      }
    } else {
      this.audio?.playback?.port.postMessage({ type: 'end', speaker: d.user_id });
      this.decoders.get(d.user_id)?.close();
      this.decoders.delete(d.user_id);
    }
    this.speakersChanged();
  }

  speakersChanged() {
    this.stats.speakers = [...this.speaking].filter((id) => id !== this.me).sort();
    this.draw();
  }

  refused(d) {
    if (!this.channel || !AUDIO_ERRORS.has(d?.code)) return;
    this.stats.errors.push(d.code);
    if (d.code === 'FORBIDDEN' && this.stream === 'starting') {
      this.stream = 'off';
      this.muted = true;
      this.draw();
    }
    showError(`Voice: ${d.message}`);
  }

  connection(state) {
    if (state === 'stopped') {
      this.teardown();
      this.rosters.clear();
    } else if (state === 'connected' && this.channel && !this.busy) {
      // A resumed session keeps its subscription but not its stream; a new session has
      // neither. Both are asked for again (a second SUBSCRIBE only replaces the first).
      this.stream = 'off';
      this.stats.sending = false;
      this.subscribe();
    }
  }

  // ---- drawing ----

  /** The list of who is in voice channel `channelId` (speaking ones marked), for the channel list. */
  roster(channelId) {
    const roster = this.rosters.get(channelId);
    if (!roster || roster.size === 0) return null;
    const items = [...roster.entries()]
      .sort((a, b) => a[1].username.localeCompare(b[1].username))
      .map(([id, p]) => {
        const speaking = channelId === this.channel && this.speaking.has(id);
        return el('li', {
          className: speaking ? 'voice-member speaking' : 'voice-member',
          data: { id, speaking: String(speaking), muted: String(!!p.self_mute) },
        }, el('span', { className: 'speaking-mark', title: speaking ? 'speaking' : '' }, speaking ? '🔊' : ''),
        el('span', { className: 'name' }, p.username), p.self_mute ? el('span', { className: 'muted-mark', title: 'muted' }, ' (muted)') : null);
      });
    return el('ul', { className: 'voice-roster' }, ...items);
  }

  draw() {
    this.chat.drawChannels();
    const panel = byId('voice-panel');
    panel.hidden = !this.channel;
    if (!this.channel) return;
    const channel = this.chat.channels.get(this.channel);
    byId('voice-status').textContent = `Voice: ${channel?.name ?? ''}${this.stream === 'open' ? ' · sending' : ''}`;
    const mute = byId('voice-mute');
    mute.textContent = this.muted ? 'Unmute' : 'Mute';
    mute.setAttribute('aria-pressed', String(this.muted));
    mute.disabled = !this.audio?.capture;
  }
}
