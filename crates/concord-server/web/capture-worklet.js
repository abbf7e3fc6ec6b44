// The microphone's AudioWorklet: takes the context's render quanta (Float32, mono by
// the node's explicit channel count), brings them to 48 kHz when the context runs at
// another rate, and posts one ready frame per 20 ms: an ArrayBuffer holding the 12-byte
// client chunk header (left for the main thread to fill) and 960 samples of signed
// 16-bit little-endian PCM (docs/protocol-v2.md §15.1, §15.3).

import { Resampler } from './resample.js';

const RATE = 48_000;
const SAMPLES = 960; // 20 ms at 48 kHz
const HEADER = 12;

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    // `sampleRate` is the context's rate (a global of the worklet scope).
    this.resampler = new Resampler(sampleRate, RATE);
    this.fresh();
    this.running = true;
    this.port.onmessage = (event) => {
      if (event.data === 'stop') this.running = false;
    };
  }

  fresh() {
    this.frame = new ArrayBuffer(HEADER + SAMPLES * 2);
    this.view = new DataView(this.frame);
    this.fill = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length > 0) {
      for (const sample of this.resampler.push(channels[0])) {
        const s = Math.max(-1, Math.min(1, sample));
        this.view.setInt16(HEADER + this.fill * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
        this.fill += 1;
        if (this.fill === SAMPLES) {
          this.port.postMessage(this.frame, [this.frame]);
          this.fresh();
        }
      }
    }
    // The output stays silent: the node is wired to the destination only so that the
    // graph keeps pulling it.
    return this.running;
  }
}

registerProcessor('concord-capture', Capture);
