#!/usr/bin/env bash
# GPU training benchmark: one device call (see ../shared/gpu/README.md and bench/gpu_all.sh).
# Trains the release's 4- and 33-layer shapes (d_model 1280, 20 heads, d_hid 5120, token_dim
# 5120, sample 1024) in bf16 autocast on one GPU for a few steps each on a synthetic dataset
# and prints cells/s, tokens/s and model FLOPs utilisation (bench/gpu_train_mfu.py).
# usage (device machine, repository root): BUILD=build-gpu bash bench/gpu_train.sh
# CPU dry run: DEVICE=cpu BUILD=build DMODEL=64 NHEAD=4 TOKDIM=64 B4=4 B33=2 B33CK=4 STEPS=4 \
#   CELLS=400 PY=/usr/bin/python3 bash bench/gpu_train.sh
set -uo pipefail
W=${W:-/tmp/uce-gpu-train}
DEVICE=${DEVICE:-cuda}
DMODEL=${DMODEL:-1280}
NHEAD=${NHEAD:-20}
TOKDIM=${TOKDIM:-5120}
CELLS=${CELLS:-6000}
STEPS=${STEPS:-14}
B4=${B4:-64}
B33=${B33:-24}
B33CK=${B33CK:-64}
SAMPLE=${SAMPLE:-1024}
PEAK=${PEAK:-989}   # H100 SXM / H200 bf16 dense TFLOP/s
PY=${PY:-python3}
BUILD=${BUILD:-build-gpu}
UCE=$BUILD/app/uce
THREADS=$(nproc)
mkdir -p "$W"
if [ ! -f "$W/data/corpus.csv" ]; then
  $UCE synth --out "$W/data" --cells "$CELLS" --genes 20000 --token-dim "$TOKDIM" --single-dataset --seed 3 \
    --threads "$THREADS" --quiet >/dev/null || exit 1
  printf 'path,species\n%s,human\n' "$(ls "$W"/data/*.h5ad | head -1)" >"$W/data/corpus.csv"
fi
# The GPU's SM clock and power, sampled every 200 ms while a run trains (CUDA with nvidia-smi):
# a GPU held at its power limit clocks down in a long run, which a short profile does not see.
clocks_start() {
  smi_pid=
  [ "$DEVICE" = cuda ] && command -v nvidia-smi >/dev/null || return 0
  # Line-buffered: the sampler is killed at the end, and a block buffer would lose its last lines.
  stdbuf -oL nvidia-smi --query-gpu=clocks.sm,power.draw,temperature.gpu,memory.used,memory.total --format=csv,noheader,nounits -lms 200 \
    >"$W/$1.smi" &
  smi_pid=$!
}
clocks_stop() {
  [ -n "$smi_pid" ] || return 0
  kill "$smi_pid" 2>/dev/null
  wait "$smi_pid" 2>/dev/null
  $PY - "$W/$1.smi" <<'PY'
import statistics, sys
rows = []
for line in open(sys.argv[1]):
    try:
        rows.append([float(x) for x in line.split(",")])
    except ValueError:
        pass
busy = [r for r in rows if r[1] > 200] or rows  # samples while the GPU works (start-up excluded)
if busy:
    clk, pw, tc = ([r[i] for r in busy] for i in range(3))
    mem = f", memory used max {max(r[3] for r in rows) / 1024:.1f} of {rows[0][4] / 1024:.1f} GiB" if len(rows[0]) > 4 else ""
    print(f"  GPU while busy ({len(busy)} samples): SM clock median {statistics.median(clk):.0f} MHz "
          f"(min {min(clk):.0f}, max {max(clk):.0f}), power median {statistics.median(pw):.0f} W "
          f"(max {max(pw):.0f}), temperature max {max(tc):.0f} C{mem}")
PY
}
train() {  # label layers batch extra-flags...
  local label=$1 layers=$2 batch=$3
  shift 3
  rm -rf "$W/$label"
  local t0=$(date +%s)
  clocks_start "$label"
  if ! $UCE train --corpus "$W/data/corpus.csv" --assets "$W/data/assets" --out "$W/$label" --nlayers "$layers" \
      --d-model "$DMODEL" --nhead "$NHEAD" --d-hid $((4 * DMODEL)) --output-dim "$DMODEL" --batch-size "$batch" \
      --max-steps "$STEPS" --sample-size "$SAMPLE" --validate-every 1000000 --checkpoint-every 1000000 --val-cells 16 --device "$DEVICE" \
      --threads "$THREADS" --quiet "$@" >"$W/$label.log" 2>&1; then
    clocks_stop "$label" >/dev/null
    rm -rf "${W:?}/$label/checkpoints" "$W/$label/model.torch"
    echo "train $label FAILED:"; tail -5 "$W/$label.log"; return 1
  fi
  local secs=$(( $(date +%s) - t0 ))
  echo "[$label: batch $batch $*; $secs s incl. start-up]"
  $PY bench/gpu_train_mfu.py "$W/$label/metrics.jsonl" "$layers" "$DMODEL" $((4 * DMODEL)) "$TOKDIM" "$DMODEL" 64 "$PEAK"
  clocks_stop "$label"
  # A 33-layer run leaves about 11 GB (model.torch and the final checkpoint with the optimizer's
  # state): keep the metrics and the log only, or a call's runs fill the device's 64 GiB disk.
  rm -rf "${W:?}/$label/checkpoints" "$W/$label/model.torch"
}
# How far run B's losses and gradient norms are from run A's, over the steps both logged.
compare() {  # title folder-a folder-b (under $W)
  $PY - "$W" "$@" <<'PY'
import json, sys
w, title, da, db = sys.argv[1:5]
def rows(d):
    return {m["step"]: m for m in map(json.loads, open(f"{w}/{d}/metrics.jsonl")) if "loss" in m and "step" in m}
a, b = rows(da), rows(db)
steps = sorted(set(a) & set(b))
dl = max(abs(a[k]["loss"] - b[k]["loss"]) for k in steps)
dg = max(abs(a[k]["grad_norm"] - b[k]["grad_norm"]) / a[k]["grad_norm"] for k in steps)
print(f"{title} over {len(steps)} steps: max |loss difference| {dl:.2e} ({da} {a[steps[0]]['loss']:.4f} -> "
      f"{a[steps[-1]]['loss']:.4f}, {db} -> {b[steps[-1]]['loss']:.4f}); max relative grad-norm difference {dg:.2e}")
PY
}
RUNS=${RUNS:-all}
want() { [[ " $RUNS " == *" all "* || " $RUNS " == *" $1 "* ]]; }
want l4 && train l4 4 "$B4"
want l33 && train l33 33 "$B33"
want l33_ckpt && train l33_ckpt 33 "$B33CK" --activation-checkpointing
# Equal-length sentences: no padding, no attention mask, so the fused (flash / cuDNN) attention
# kernels run in the forward and backward passes; compare with l4 and l33 above.
want l4_eq && train l4_eq 4 "$B4" --equal-lengths
want l33_eq && train l33_eq 33 "$B33" --equal-lengths
# The layers wholly in bf16 (--bf16-layers: weights cast each pass from the fp32 masters; the
# residual adds, LayerNorm and dropout in bf16, not fp32 between autocast's casts): against l33_eq
# and l4 in the same call. l33_eq_bf16 also prints how far its losses are from l33_eq's (the same
# seed, data and dropout draws: the 33-layer numerics check).
want l4_bf16 && train l4_bf16 4 "$B4" --bf16-layers
if want l33_eq_bf16; then
  train l33_eq_bf16 33 "$B33" --equal-lengths --bf16-layers
  [ -f "$W/l33_eq/metrics.jsonl" ] && compare "33 layers, bf16 layers vs autocast" l33_eq l33_eq_bf16
fi
# The fastest settings together (RUNS=l33_fast): equal lengths, bf16 layers and no dropout (as the
# demo model's recipe trains); l33_fast_b48 at twice the batch, l4_fast the 4-layer shape. Against
# l33_eq / l4 in the same call; l33_fast also prints how far its losses are from l33_eq's.
want l4_fast && train l4_fast 4 "$B4" --equal-lengths --bf16-layers --no-dropout
if want l33_fast; then
  train l33_fast 33 "$B33" --equal-lengths --bf16-layers --no-dropout
  [ -f "$W/l33_eq/metrics.jsonl" ] && compare "33 layers, fastest settings vs autocast with dropout" l33_eq l33_fast
fi
want l33_fast_b48 && train l33_fast_b48 33 $((2 * B33)) --equal-lengths --bf16-layers --no-dropout
# Four times the batch (session 21: batch 48 used 61 of the H200's 140 GiB): what is still paid
# once a step.
want l33_fast_b96 && train l33_fast_b96 33 $((4 * B33)) --equal-lengths --bf16-layers --no-dropout
# The next micro-batch read and tokenized while the GPU runs (--prefetch, on by default on CUDA
# since session 21) against preparing it between steps: RUNS="l33_fast_nopf l33_fast" (or _b48).
want l33_fast_nopf && train l33_fast_nopf 33 "$B33" --equal-lengths --bf16-layers --no-dropout --prefetch off
want l33_fast_b48_nopf && train l33_fast_b48_nopf 33 $((2 * B33)) --equal-lengths --bf16-layers --no-dropout --prefetch off
# The caching allocator with expandable segments (RUNS=l33_eq_expseg): a run near the GPU's memory
# that has to free and re-reserve cached blocks (a device sync each time) gets faster with them;
# the same computation. Against l33_eq; the runs print their largest memory use.
want l33_eq_expseg &&
  PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True train l33_eq_expseg 33 "$B33" --equal-lengths
# Twice the 33-layer batch (RUNS=l33_eq_b48): how much of a step is paid once a step, not once a
# cell. It keeps twice l33_eq's activations, which may not fit an H100 (the run then fails alone).
want l33_eq_b48 && train l33_eq_b48 33 $((2 * B33)) --equal-lengths
# AdamW (and the gradient-norm clip) as LibTorch's per-parameter loop, the baseline of the runs
# above (--adamw auto: fused on CUDA with LibTorch >= 2.1).
want l4_loop && train l4_loop 4 "$B4" --adamw loop
want l33_loop && train l33_loop 33 "$B33" --adamw loop
want l33_eq_loop && train l33_eq_loop 33 "$B33" --equal-lengths --adamw loop
# Where a 33-layer step's time goes (RUNS=l33_eq_trace): UCE_TRAIN_TRACE=1 waits for the device
# after each phase of a step (the forward pass split into the inputs, the 33 layers and the head);
# the medians of steps 4 on, in ms. l33_eq_bf16_trace: the same with --bf16-layers; l33_fast_trace:
# with --bf16-layers --no-dropout.
traced() {  # label extra-flags...
  local label=$1
  shift
  UCE_TRAIN_TRACE=1 train "$label" 33 "$B33" --equal-lengths "$@"
  grep '^trace: step' "$W/$label.log" | sed 's/[a-z:+,]//g; s/  */ /g' | awk '$1 > 3' | $PY -c '
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
names = ["read", "tokenize", "upload", "inputs", "layers", "head", "backward", "update", "step"]
print("traced step, median ms of", len(rows), "steps:", ", ".join(f"{n} {statistics.median(r[i + 1] for r in rows):.1f}" for i, n in enumerate(names)))'
}
want l33_eq_trace && traced l33_eq_trace
want l33_eq_bf16_trace && traced l33_eq_bf16_trace --bf16-layers
want l33_fast_trace && traced l33_fast_trace --bf16-layers --no-dropout
# Checkpoints on the GPU (RUNS=l4_ckpt): the 4-layer shape with a checkpoint every 4 steps, traced:
# what each costs the training thread (the copy from the device and the optimizer's serialisation)
# and how long its write takes in the background; l4_ckpt_sync writes them on the training thread.
ckpt_run() {  # label extra-flags...
  UCE_TRAIN_TRACE=1 train "$1" 4 "$B4" --checkpoint-every 4 --keep-checkpoints 2 "${@:2}" &&
    grep '^trace: checkpoint' "$W/$1.log"
}
want l4_ckpt && ckpt_run l4_ckpt
want l4_ckpt_sync && ckpt_run l4_ckpt_sync --sync-checkpoints
# A small model (2 layers, d_model 256, batch 32, sample 512) for the update and resume checks.
small() {  # log steps out-dir extra...
  local log=$1 steps=$2 out=$3
  shift 3
  $UCE train --corpus "$W/data/corpus.csv" --assets "$W/data/assets" --out "$out" --nlayers 2 --d-model 256 \
    --nhead 8 --d-hid 512 --output-dim 256 --batch-size 32 --max-steps "$steps" --sample-size 512 \
    --validate-every 1000000 --val-cells 16 --device "$DEVICE" --threads "$THREADS" --quiet "$@" >>"$log" 2>&1
}
# Two small runs without dropout, 30 steps each from the same seed, that differ only in their
# flags (each given as one word); then how far the second's losses and gradient norms are from the
# first's (compare).
small_pair() {  # name title folder-a flags-a folder-b flags-b
  local name=$1 title=$2 run dir flags
  rm -rf "${W:?}/$3" "$W/$5" "$W/$name.log"
  for run in "$3|$4" "$5|$6"; do
    dir=${run%%|*} flags=${run#*|}
    # shellcheck disable=SC2086  # the flags are words
    small "$W/$name.log" 30 "$W/$dir" --no-dropout --checkpoint-every 1000000 $flags ||
      { echo "$name check ($dir) FAILED:"; tail -5 "$W/$name.log"; }
  done
  compare "$title" "$3" "$5"
}
# The fused update against the loop (RUNS=fused): the losses and gradient norms should agree to
# float noise. bf16 layers against autocast alone (RUNS=bf16): to bf16 rounding, both falling.
want fused && small_pair fused "fused vs loop AdamW" fu_loop "--adamw loop" fu_fused "--adamw fused"
want bf16 && small_pair bf16 "bf16 layers vs autocast" bf_autocast "" bf_bf16 "--bf16-layers"
# Resume on the GPU (RUNS=resume): a small model with dropout trains 6 steps with a checkpoint
# every 3; copies of its output folder, cut back to the step-3 checkpoint, --resume to 6. The
# checkpoint holds the CUDA generator's state (rng-cuda.pt), so the resumed steps draw the same
# dropout masks: their losses should match the straight run's to float noise (GPU kernels are not
# bitwise deterministic). The control resumes without rng-cuda.pt: fresh masks, so its losses
# move by dropout's noise.
if want resume; then
  every3() { small "$W/resume.log" 6 "$1" --checkpoint-every 3 --keep-checkpoints 5 "${@:2}"; }
  cut_back() {  # straight-run copy -> resumable from step 3
    cp -r "$W/rs_straight" "$1" && rm -rf "$1"/checkpoints/step-0000006 "$1/model.torch"
  }
  rm -rf "$W"/rs_* "$W/resume.log"
  every3 "$W/rs_straight" && cut_back "$W/rs_resumed" && cut_back "$W/rs_control" &&
    rm -f "$W"/rs_control/checkpoints/*/rng-cuda.pt && every3 "$W/rs_resumed" --resume &&
    every3 "$W/rs_control" --resume || { echo "resume check FAILED:"; tail -5 "$W/resume.log"; }
  ls "$W"/rs_resumed/checkpoints/*/rng-cuda.pt >/dev/null 2>&1 || echo "resume check: no rng-cuda.pt in the checkpoints"
  $PY - "$W" <<'PY'
import json, sys
w = sys.argv[1]
def losses(d):
    out = {}
    for line in open(f"{w}/{d}/metrics.jsonl"):
        m = json.loads(line)
        if "loss" in m and "step" in m:
            out[m["step"]] = m["loss"]
    return out
s, r, c = losses("rs_straight"), losses("rs_resumed"), losses("rs_control")
steps = [k for k in (4, 5, 6) if k in s and k in r and k in c]
dr = max(abs(s[k] - r[k]) for k in steps)
dc = max(abs(s[k] - c[k]) for k in steps)
print(f"resume on {len(steps)} steps after the checkpoint: max |loss straight - resumed| {dr:.2e}; "
      f"without the CUDA RNG state (control) {dc:.2e}")
PY
fi
