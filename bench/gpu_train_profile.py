"""Where a training step's time goes on the GPU (issue 4's 40 % MFU target for 33 layers), to
decide what to change in model/src/network.cpp and trainer.cpp. Mirrors what `uce train`
runs per encoder layer: fp32 master weights under bf16 autocast, packed q/k/v projection,
scaled-dot-product attention with a boolean key mask when the micro-batch's sentences differ
in length (they do: 1,024 genes plus one start and one end token per chromosome present),
dropout 0.05 after attention, after ReLU and after linear2, post-norm LayerNorms.

Variants of a stack of LAYERS layers, forward + backward (the baseline is the first):
  as trainer    masked keys (lengths drawn like real sentences), autocast, fp32 weights
  equal length  the same without a mask (every sentence as long as the longest)
  bf16 weights  no mask, weights and activations in bf16 without autocast (no casts)
  --bf16-layers no mask, fp32 weights cast to bf16 each pass, activations in bf16, no autocast
  no dropout    no mask, autocast, dropout off
  fastest       --bf16-layers without dropout (uce train --equal-lengths --bf16-layers --no-dropout)
  sustained     equal length again for SUSTAIN seconds (power-limit clocks); SM clocks via nvidia-smi
Then AdamW over the parameters of N33 layers (the release's 33-layer shape): a loop over
parameters (what LibTorch's C++ AdamW does), foreach and fused, each as a share of a 33-layer
step of the baseline; and the kernel table of the baseline (torch profiler).

Prints microseconds a cell a layer, TFLOP/s (3 x forward FLOPs, as bench/gpu_train_mfu.py),
MFU against PEAK and each variant's speed-up over the baseline.

usage: python3 bench/gpu_train_profile.py [BATCH=24] [LEN=1075]
  env: LAYERS (4), N33 (33), PEAK (989 TFLOP/s), DEVICE (cuda), D/H/HID (1280/20/5120)
  CPU dry run: DEVICE=cpu D=64 H=4 HID=128 N33=2 python3 bench/gpu_train_profile.py 4 80
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

B = int(sys.argv[1]) if len(sys.argv) > 1 else 24
L = int(sys.argv[2]) if len(sys.argv) > 2 else 1075
D, H, HID = int(os.environ.get("D", 1280)), int(os.environ.get("H", 20)), int(os.environ.get("HID", 5120))
LAYERS = int(os.environ.get("LAYERS", 4))
N33 = int(os.environ.get("N33", 33))
PEAK = float(os.environ.get("PEAK", 989))
dev = os.environ.get("DEVICE", "cuda")
P_DROP = 0.05
torch.manual_seed(0)


def sync():
    if dev == "cuda":
        torch.cuda.synchronize()


def make_layer(dtype):
    def p(*shape, scale=0.02):
        return (torch.randn(*shape, device=dev) * scale).to(dtype).requires_grad_()
    one = lambda: torch.ones(D, device=dev, dtype=dtype).requires_grad_()  # noqa: E731
    zero = lambda: torch.zeros(D, device=dev, dtype=dtype).requires_grad_()  # noqa: E731
    return dict(qkv=p(3 * D, D), qkv_b=p(3 * D), out=p(D, D), out_b=p(D), l1=p(HID, D), l1_b=p(HID),
                l2=p(D, HID), l2_b=p(D), n1w=one(), n1b=zero(), n2w=one(), n2b=zero())


def sdpa(q, k, v, attn_mask=None):
    if hasattr(F, "scaled_dot_product_attention"):  # PyTorch >= 2 (the device machine)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    s = q @ k.transpose(-2, -1) / (q.shape[-1] ** 0.5)  # the CPU dry run on Debian's 1.13
    if attn_mask is not None:
        s = s.masked_fill(~attn_mask, float("-inf"))
    return s.softmax(-1) @ v


def layer(W, x, mask, drop):
    b, n, _ = x.shape
    qkv = F.linear(x, W["qkv"], W["qkv_b"]).view(b, n, 3, H, D // H).permute(2, 0, 3, 1, 4)
    a = sdpa(qkv[0], qkv[1], qkv[2], attn_mask=mask)
    a = F.linear(a.permute(0, 2, 1, 3).reshape(b, n, D), W["out"], W["out_b"])
    x = F.layer_norm(x + F.dropout(a, drop, True), (D,), W["n1w"], W["n1b"], 1e-5)
    h = F.dropout(F.relu(F.linear(x, W["l1"], W["l1_b"])), drop, True)
    return F.layer_norm(x + F.dropout(F.linear(h, W["l2"], W["l2_b"]), drop, True), (D,), W["n2w"], W["n2b"], 1e-5)


# Sentence lengths as the trainer sees them: up to 51 tokens of chromosome starts and ends
# around 1,024 genes, a few missing per cell. Keys past a sentence's length are masked.
lengths = L - torch.randint(0, 7, (B,))
lengths[0] = L
key_mask = (torch.arange(L)[None, :] < lengths[:, None]).to(dev).view(B, 1, 1, L)


def step_fn(layers, autocast, mask, drop, dtype, cast=False):
    x = torch.randn(B, L, D, device=dev, dtype=dtype, requires_grad=True)

    def run():
        with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=autocast):
            y = x
            for W in layers:
                if cast:  # uce train --bf16-layers: each pass casts the fp32 masters
                    W = {k: v.to(torch.bfloat16) for k, v in W.items()}
                y = layer(W, y, mask, drop)
            loss = y[:, 0].float().square().mean()
        loss.backward()
    return run


class Clocks:
    """The SM clock (MHz), sampled by nvidia-smi every 100 ms while a timing runs (CUDA only)."""

    def __enter__(self):
        self.proc = None
        if dev == "cuda" and shutil.which("nvidia-smi"):
            line_buffered = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []  # it is killed at the end
            self.proc = subprocess.Popen(line_buffered + ["nvidia-smi", "--query-gpu=clocks.sm",
                                                          "--format=csv,noheader,nounits", "-lms", "100"],
                                         stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc):
        self.mhz = []
        if self.proc:
            self.proc.terminate()
            out, _ = self.proc.communicate()
            self.mhz = [float(x) for x in out.split() if x.replace(".", "").isdigit()]

    def __str__(self):
        return f"  SM clock median {statistics.median(self.mhz):.0f} MHz (min {min(self.mhz):.0f})" if self.mhz else ""


def timeit(fn, reps=5, clocks=None):
    for _ in range(2):
        fn()
    sync()
    with Clocks() as c:
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        sync()
        secs = (time.perf_counter() - t) / reps
    if clocks is not None:
        clocks.append(str(c))
    return secs


flop = 2 * L * (4 * D * D + 2 * D * HID) + 4 * L * L * D  # forward, per cell per layer
print(f"training layers: {LAYERS} x (d {D}, heads {H}, d_hid {HID}), batch {B}, length {L} "
      f"(lengths {int(lengths.min())}-{int(lengths.max())}), dropout {P_DROP}, device {dev}; peak {PEAK} TFLOP/s")
fp32_layers = [make_layer(torch.float32) for _ in range(LAYERS)]
bf16_layers = [make_layer(torch.bfloat16) for _ in range(LAYERS)]
variants = [
    ("as trainer (mask, autocast)", step_fn(fp32_layers, True, key_mask, P_DROP, torch.float32)),
    ("equal length (no mask)", step_fn(fp32_layers, True, None, P_DROP, torch.float32)),
    ("bf16 weights, no autocast, no mask", step_fn(bf16_layers, False, None, P_DROP, torch.bfloat16)),
    ("--bf16-layers (fp32 masters cast), no mask", step_fn(fp32_layers, False, None, P_DROP, torch.bfloat16, True)),
    ("no dropout (no mask, autocast)", step_fn(fp32_layers, True, None, 0.0, torch.float32)),
    ("--bf16-layers, no dropout, no mask", step_fn(fp32_layers, False, None, 0.0, torch.bfloat16, True)),
]
# The equal-length variant again for SUSTAIN seconds (default 4, about a 33-layer training run's
# dozen steps): a GPU at its power limit runs slower after a while than in the short timings.
sustain = float(os.environ.get("SUSTAIN", 4))
variants.append((f"equal length, sustained {sustain:g} s", variants[1][1]))
base = None
for name, fn in variants:
    reps = 5
    try:
        if name.startswith("equal length, sustained"):
            reps = max(5, round(sustain / (timeit(fn, reps=2))))
        clocks = []
        secs = timeit(fn, reps=reps, clocks=clocks)
    except Exception as e:  # noqa: BLE001
        print(f"{name:44s} unavailable ({str(e).splitlines()[0][:90]})")
        continue
    us = secs / B / LAYERS * 1e6
    tflops = 3 * flop * B * LAYERS / secs / 1e12
    base = base or secs
    print(f"{name:44s} {us:8.1f} us/cell/layer  {tflops:6.1f} TFLOP/s  MFU {100 * tflops / PEAK:5.1f} %  "
          f"speed-up {base / secs:5.2f}x  ({reps} reps){clocks[0]}")
base_us_cell_layer = base / B / LAYERS * 1e6 if base else float("nan")
for W in fp32_layers + bf16_layers:
    for t in W.values():
        t.grad = None

# AdamW over a 33-layer parameter set (fp32 master weights, gradients present).
params = [t for _ in range(N33) for t in make_layer(torch.float32).values()]
for t in params:
    t.grad = torch.randn_like(t) * 1e-3
n_params = sum(t.numel() for t in params)
step33 = base_us_cell_layer * 1e-6 * B * 33
print(f"AdamW over {N33} layers' {len(params)} tensors ({n_params / 1e6:.0f} M parameters); "
      f"a 33-layer baseline step of batch {B} takes {step33 * 1e3:.0f} ms")
loop_secs = None
for name, kw in [("loop over parameters (LibTorch C++ AdamW)", dict(foreach=False)),
                 ("foreach (multi-tensor)", dict(foreach=True)), ("fused", dict(fused=True))]:
    try:
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01, **kw)
        secs = timeit(opt.step, reps=5)
    except Exception as e:  # noqa: BLE001
        print(f"  {name:42s} unavailable ({str(e).splitlines()[0][:80]})")
        continue
    loop_secs = loop_secs or secs
    print(f"  {name:42s} {secs * 1e3:7.1f} ms  ({100 * secs / step33:4.1f} % of the step)  "
          f"speed-up {loop_secs / secs:5.2f}x")
    del opt
del params

if dev == "cuda":
    from torch.profiler import ProfilerActivity, profile
    fn = variants[0][1]
    fn()
    sync()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            fn()
        sync()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=70))
