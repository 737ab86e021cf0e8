// Spectrograms drawn in a canvas: decode with Web Audio, STFT with a radix-2 FFT, log-magnitude colours.
"use strict";

const Spectrogram = (() => {
  function fft(re, im) {
    const n = re.length;
    for (let i = 1, j = 0; i < n; i++) {
      let bit = n >> 1;
      for (; j & bit; bit >>= 1) j ^= bit;
      j ^= bit;
      if (i < j) {
        [re[i], re[j]] = [re[j], re[i]];
        [im[i], im[j]] = [im[j], im[i]];
      }
    }
    for (let len = 2; len <= n; len <<= 1) {
      const ang = (-2 * Math.PI) / len;
      const wr = Math.cos(ang), wi = Math.sin(ang);
      for (let i = 0; i < n; i += len) {
        let cr = 1, ci = 0;
        for (let k = 0; k < len / 2; k++) {
          const a = i + k, b = a + len / 2;
          const tr = re[b] * cr - im[b] * ci, ti = re[b] * ci + im[b] * cr;
          re[b] = re[a] - tr; im[b] = im[a] - ti;
          re[a] += tr; im[a] += ti;
          const nr = cr * wr - ci * wi;
          ci = cr * wi + ci * wr; cr = nr;
        }
      }
    }
  }

  // A perceptual dark-blue → magenta → yellow ramp (like "magma"), value in [0, 1].
  const STOPS = [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164]];
  function colour(v) {
    const x = Math.max(0, Math.min(1, v)) * (STOPS.length - 1);
    const i = Math.min(STOPS.length - 2, Math.floor(x)), f = x - i;
    const a = STOPS[i], b = STOPS[i + 1];
    return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
  }

  function mono(buffer) {
    const n = buffer.length, out = new Float32Array(n);
    for (let c = 0; c < buffer.numberOfChannels; c++) {
      const d = buffer.getChannelData(c);
      for (let i = 0; i < n; i++) out[i] += d[i] / buffer.numberOfChannels;
    }
    return out;
  }

  // Draw `samples` (Float32Array at `rate`) into `canvas`: time left→right, 0–8 kHz bottom→top.
  function draw(canvas, samples, rate) {
    const ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height, N = 1024;
    const maxBin = Math.min(N / 2, Math.round((8000 / rate) * N));
    const img = ctx.createImageData(W, H);
    const win = new Float32Array(N);
    for (let i = 0; i < N; i++) win[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / N);
    const hop = Math.max(1, (samples.length - N) / Math.max(1, W - 1));
    const cols = [];
    let top = -Infinity;
    for (let x = 0; x < W; x++) {
      const start = Math.floor(x * hop);
      const re = new Float32Array(N), im = new Float32Array(N);
      for (let i = 0; i < N; i++) re[i] = (samples[start + i] || 0) * win[i];
      fft(re, im);
      const db = new Float32Array(maxBin);
      for (let k = 0; k < maxBin; k++) {
        db[k] = 10 * Math.log10(re[k] * re[k] + im[k] * im[k] + 1e-10);
        if (db[k] > top) top = db[k];
      }
      cols.push(db);
    }
    const range = 80;
    for (let x = 0; x < W; x++) {
      for (let y = 0; y < H; y++) {
        const k = Math.min(maxBin - 1, Math.floor(((H - 1 - y) / H) * maxBin));
        const [r, g, b] = colour((cols[x][k] - (top - range)) / range);
        const p = (y * W + x) * 4;
        img.data[p] = r; img.data[p + 1] = g; img.data[p + 2] = b; img.data[p + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    canvas.dataset.drawn = "1";
  }

  // Decode an audio Blob and draw its spectrogram; resolves with the decoded duration.
  async function fromBlob(canvas, blob) {
    const ac = new (window.AudioContext || window.webkitAudioContext)();
    try {
      const buffer = await ac.decodeAudioData(await blob.arrayBuffer());
      draw(canvas, mono(buffer), buffer.sampleRate);
      return buffer.duration;
    } finally {
      ac.close();
    }
  }

  return { fft, draw, fromBlob };
})();
