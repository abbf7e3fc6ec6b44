// A streaming linear resampler for the audio worklets: one per stream, fed chunk after
// chunk, so the interpolation runs on across chunk edges with no clicks. Linear is
// plenty for speech (16 kHz → 48 kHz, or the 48 kHz wire ↔ a device rate).

/** Resamples a mono stream of Float32 samples from `from` Hz to `to` Hz. */
export class Resampler {
  constructor(from, to) {
    this.step = from / to;
    this.same = from === to;
    // Where the next output sample lies, in input samples relative to the first sample
    // of the next chunk; -1 is the last sample of the chunk before, kept in `last`.
    this.pos = 0;
    this.last = 0;
  }

  /** The output for the next chunk `input` (a Float32Array); a new array unless the rates are equal. */
  push(input) {
    if (this.same) return input;
    const n = input.length;
    if (n === 0) return input;
    const out = new Float32Array(Math.ceil((n - this.pos) / this.step) + 1);
    let count = 0;
    let pos = this.pos;
    while (pos < n - 1) {
      const i = Math.floor(pos);
      const frac = pos - i;
      const a = i < 0 ? this.last : input[i];
      out[count] = a + (input[i + 1] - a) * frac;
      count += 1;
      pos += this.step;
    }
    this.pos = pos - n;
    this.last = input[n - 1];
    return out.subarray(0, count);
  }
}
