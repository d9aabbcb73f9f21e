// Runs umap-js on the data and kNN graph that bench_analysis_umap wrote, and writes its map.
// usage: node umap_js_run.js DIR DIMS EPOCHS SEED   (NODE_PATH must reach umap-js)
// Reads DIR/data.f32 [n, dim], DIR/knn_idx.i32 and DIR/knn_dist.f32 [n, 15] (self first, as
// umap-learn's and umap-js's own kNN are), DIR/shape.txt "n dim k"; writes DIR/umapjs.f32
// [n, DIMS] and prints "umapjs_seconds S".
const fs = require('fs');
const path = require('path');
const { UMAP } = require('umap-js');
const [dir, dims, epochs, seed] = process.argv.slice(2);
const [n, dim, k] = fs.readFileSync(path.join(dir, 'shape.txt'), 'utf8').trim().split(/\s+/).map(Number);
const f32 = (f) => { const b = fs.readFileSync(path.join(dir, f)); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); };
const i32 = (f) => { const b = fs.readFileSync(path.join(dir, f)); return new Int32Array(b.buffer, b.byteOffset, b.length / 4); };
const x = f32('data.f32'), ki = i32('knn_idx.i32'), kd = f32('knn_dist.f32');
const data = [], idx = [], dist = [];
for (let i = 0; i < n; i++) {
  data.push(Array.from(x.subarray(i * dim, (i + 1) * dim)));
  idx.push(Array.from(ki.subarray(i * k, (i + 1) * k)));
  dist.push(Array.from(kd.subarray(i * k, (i + 1) * k)));
}
// Seeded generator (mulberry32) so a run is reproducible.
let s = Number(seed) >>> 0;
const random = () => { s = (s + 0x6D2B79F5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
const umap = new UMAP({ nComponents: Number(dims), nEpochs: Number(epochs), nNeighbors: k, minDist: 0.5, spread: 1.0, random });
umap.setPrecomputedKNN(idx, dist);
const t0 = process.hrtime.bigint();
const emb = umap.fit(data);
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const out = new Float32Array(n * Number(dims));
for (let i = 0; i < n; i++) for (let d = 0; d < Number(dims); d++) out[i * Number(dims) + d] = emb[i][d];
fs.writeFileSync(path.join(dir, 'umapjs.f32'), Buffer.from(out.buffer));
console.log('umapjs_seconds ' + secs.toFixed(3));
