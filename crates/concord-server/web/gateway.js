// The live connection: gateway protocol v2 (/ws?v=2) with IDENTIFY, sequence numbers,
// heartbeats and RESUME after a drop, reconnecting with full-jitter backoff. The token
// goes in IDENTIFY/RESUME, never in the URL (a URL token would make RESUME impossible).
//
// No `compress`: events come as text frames, so every binary frame is audio
// (docs/protocol-v2.md §15.3). The check is on the first byte all the same (0xA7, the
// audio magic), which is also how a compressed connection tells audio from the
// compressed stream: were compression ever turned on here, a binary frame not starting
// with 0xA7 would be the next piece of that stream, for the decoder.

/** First byte of every audio frame, both ways. */
export const AUDIO_MAGIC = 0xa7;

const RESUME_FOR = 120_000;

/**
 * Dispatches `dispatch` (detail: {t, d, s}), `state` (detail: 'connecting' |
 * 'connected' | 'reconnecting' | 'stopped') and `error` (detail: an ERROR's d:
 * {code, message}). A READY means a new session: what was missed before it is
 * unknown, and the listener reloads what it shows. Audio chunks (binary frames) go to
 * `onAudio(DataView)`, set by whoever plays them: 50 a second per speaker, so a plain
 * call rather than an event.
 */
export class Gateway extends EventTarget {
  /** `session` gives the access token (and a refresh). */
  constructor(session) {
    super();
    this.session = session;
    this.ws = null;
    this.sessionId = null;
    this.helloId = null;
    this.lastSeq = 0;
    this.attempt = 0;
    this.droppedAt = null;
    this.stopped = false;
    this.heartbeat = null;
    this.acked = true;
    this.retry = null;
    /** A 4004 close was answered with a refresh and no connection has succeeded since. */
    this.refreshedFor4004 = false;
    /** Called with each audio chunk the server relays (a DataView of the whole frame). */
    this.onAudio = null;
  }

  /** Opens the connection. */
  start() {
    this.stopped = false;
    this.refreshedFor4004 = false;
    this.open();
  }

  /** Closes for good (1000 ends the session on the server). */
  stop() {
    this.stopped = true;
    clearTimeout(this.retry);
    this.stopHeartbeat();
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this.state('stopped');
  }

  /** Sends a command if connected and identified; returns whether it was sent. */
  send(op, d) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.sessionId) return false;
    this.ws.send(JSON.stringify({ op, d }));
    return true;
  }

  /** Sends a binary frame (an audio chunk) if connected and identified; returns whether it was sent. */
  sendBinary(bytes) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.sessionId) return false;
    this.ws.send(bytes);
    return true;
  }

  /** Bytes queued on the socket and not yet sent (a sender backs off when this grows). */
  get buffered() {
    return this.ws?.bufferedAmount ?? 0;
  }

  state(name) {
    this.current = name;
    this.dispatchEvent(new CustomEvent('state', { detail: name }));
  }

  open() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/ws?v=2`);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    if (this.current !== 'reconnecting') this.state('connecting');
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      if (typeof event.data === 'string') {
        this.receive(JSON.parse(event.data));
      } else {
        this.binary(event.data);
      }
    };
    ws.onclose = (event) => {
      if (ws === this.ws) this.closed(event.code);
    };
  }

  /** A binary frame: an audio chunk when it starts with the magic byte (§15.3). */
  binary(buffer) {
    const view = new DataView(buffer);
    if (view.byteLength > 0 && view.getUint8(0) === AUDIO_MAGIC) {
      this.onAudio?.(view);
    }
    // Anything else would be a piece of a compressed stream, which this client never
    // asks for: nothing to decode it with, so it is ignored like any unknown frame.
  }

  receive(frame) {
    switch (frame.op) {
      case 'HELLO':
        this.helloId = frame.d.session_id;
        this.startHeartbeat(frame.d.heartbeat_interval);
        if (this.sessionId && this.lastSeq > 0 && Date.now() - (this.droppedAt ?? 0) < RESUME_FOR) {
          this.ws.send(JSON.stringify({
            op: 'RESUME',
            d: { token: this.session.access, session_id: this.sessionId, seq: this.lastSeq },
          }));
        } else {
          this.identify();
        }
        break;
      case 'HEARTBEAT_ACK':
        this.acked = true;
        break;
      case 'INVALID_SESSION':
        this.identify();
        break;
      case 'RECONNECT':
        // A close (1001) follows; reconnect at once then.
        break;
      case 'DISPATCH':
        if (frame.s <= this.lastSeq) return; // already handled before a RESUME
        this.lastSeq = frame.s;
        if (frame.t === 'READY') this.sessionId = this.helloId;
        this.dispatchEvent(new CustomEvent('dispatch', { detail: frame }));
        if (frame.t === 'READY' || frame.t === 'RESUMED') this.connected();
        break;
      case 'ERROR':
        this.dispatchEvent(new CustomEvent('error', { detail: frame.d }));
        break;
      default:
        break; // anything new: nothing to do here
    }
  }

  identify() {
    this.sessionId = null;
    this.lastSeq = 0;
    this.ws.send(JSON.stringify({ op: 'IDENTIFY', d: { token: this.session.access } }));
  }

  connected() {
    this.refreshedFor4004 = false;
    this.attempt = 0;
    this.droppedAt = null;
    this.state('connected');
  }

  startHeartbeat(interval) {
    this.stopHeartbeat();
    this.acked = true;
    const beat = () => {
      if (!this.acked) {
        // No answer to the last one: a dead connection. 4000 keeps the session resumable.
        this.ws?.close(4000);
        return;
      }
      this.acked = false;
      this.ws?.send(JSON.stringify({ op: 'HEARTBEAT' }));
      this.heartbeat = setTimeout(beat, interval);
    };
    this.heartbeat = setTimeout(beat, interval * Math.random());
  }

  stopHeartbeat() {
    clearTimeout(this.heartbeat);
    this.heartbeat = null;
  }

  async closed(code) {
    this.stopHeartbeat();
    this.ws = null;
    if (this.stopped) return;
    this.droppedAt ??= Date.now();
    this.state('reconnecting');
    if (code === 4005) {
      this.stop();
      return;
    }
    if (code === 4003 || code === 4013 || code === 1011) {
      this.sessionId = null;
      this.lastSeq = 0;
    }
    if (code === 4004 && this.refreshedFor4004) {
      // Refused again with a token refreshed for this very reason: retrying cannot
      // help, and looping would hammer the server. End the login and say so.
      this.stop();
      this.session.signOut('The server refused this sign-in on the live connection.');
      return;
    }
    if (code === 4004 || code === 4009) {
      try {
        await this.session.refresh();
        if (code === 4004) this.refreshedFor4004 = true;
      } catch (err) {
        if (err.status === 401 || err.status === 403) {
          this.stop();
          return;
        }
      }
      if (this.stopped) return;
    }
    const delay = (code === 1001 || code === 4009) && this.attempt === 0
      ? 0 : Math.random() * Math.min(30_000, 1000 * 2 ** this.attempt);
    this.attempt += 1;
    this.retry = setTimeout(() => this.open(), delay);
  }
}
