// The speakers' AudioWorklet: a small jitter buffer per speaker, mixed into one mono
// output. The main thread posts {type: 'chunk', speaker, rate, samples: Float32Array}
// for every relayed chunk (16 kHz streams are brought to the context's rate here),
// {type: 'end', speaker} when a stream ends (what is queued still plays), and
// {type: 'reset'} when the listener leaves the channel.
//
// A speaker starts (and restarts after running dry) once PREBUFFER chunks are queued,
// 60 ms that ride out network jitter; past MAX_QUEUED the oldest are dropped, so a
// burst never turns into lasting delay. An ended stream plays out what it has. The
// worklet posts 'played' for each chunk it has played to its end and 'dropped' for each
// one it dropped, for the page's counters.

import { Resampler } from './resample.js';

const PREBUFFER = 3;
const MAX_QUEUED = 12;

class Playback extends AudioWorkletProcessor {
  constructor() {
    super();
    /** speaker id -> {queue: Float32Array[], offset, playing, ending, rate, resampler} */
    this.speakers = new Map();
    this.port.onmessage = (event) => this.message(event.data);
  }

  message(m) {
    if (m.type === 'reset') {
      this.speakers.clear();
      return;
    }
    let speaker = this.speakers.get(m.speaker);
    if (m.type === 'end') {
      if (speaker) speaker.ending = true;
      return;
    }
    if (m.type !== 'chunk') return;
    if (!speaker || speaker.rate !== m.rate) {
      speaker = {
        queue: [], offset: 0, playing: false, ending: false, rate: m.rate,
        resampler: new Resampler(m.rate, sampleRate),
      };
      this.speakers.set(m.speaker, speaker);
    }
    speaker.ending = false;
    speaker.queue.push(speaker.resampler.push(m.samples));
    while (speaker.queue.length > MAX_QUEUED) {
      speaker.queue.shift();
      speaker.offset = 0;
      this.port.postMessage('dropped');
    }
  }

  process(_inputs, outputs) {
    const output = outputs[0];
    const mix = output[0];
    for (const [id, speaker] of this.speakers) {
      if (!speaker.playing) {
        if (speaker.queue.length >= PREBUFFER || (speaker.ending && speaker.queue.length > 0)) {
          speaker.playing = true;
        } else {
          if (speaker.ending) this.speakers.delete(id);
          continue;
        }
      }
      let at = 0;
      while (at < mix.length && speaker.queue.length > 0) {
        const chunk = speaker.queue[0];
        const take = Math.min(mix.length - at, chunk.length - speaker.offset);
        for (let i = 0; i < take; i += 1) mix[at + i] += chunk[speaker.offset + i];
        at += take;
        speaker.offset += take;
        if (speaker.offset === chunk.length) {
          speaker.queue.shift();
          speaker.offset = 0;
          this.port.postMessage('played');
        }
      }
      if (speaker.queue.length === 0) {
        // Ran dry: wait for a fresh prebuffer (or, ended, go).
        speaker.playing = false;
        if (speaker.ending) this.speakers.delete(id);
      }
    }
    for (let i = 0; i < mix.length; i += 1) mix[i] = Math.max(-1, Math.min(1, mix[i]));
    for (let c = 1; c < output.length; c += 1) output[c].set(mix);
    return true;
  }
}

registerProcessor('concord-playback', Playback);
